//! Merging recordings of many processes into one graph, and checking it for cycles.

use super::*;

/// A dependency merged over every recording: the bits of all, the first record's origin.
#[derive(Clone, Debug)]
pub struct MergedDependency {
    /// Stable id of the class held.
    pub from: u64,
    /// Stable id of the class acquired.
    pub to: u64,
    /// Union of the dependency types seen anywhere.
    pub dep: u8,
    /// The smallest distance seen.
    pub distance: u16,
    /// The record that first carried its stack.
    pub first: RecordedDependency,
    /// The process of that record.
    pub process: ProcessInfo,
    /// The file of that record.
    pub file: String,
}

impl MergedDependency {
    /// Where it was first seen, as reports print it: `process EXE[PID], test NAME`.
    pub fn origin(&self) -> String {
        let mut s = self.process.describe();
        if let Some(t) = &self.first.test {
            s.push_str(&format!(", test {t}"));
        }
        s
    }
}

/// The classes, dependencies and chains of many recordings, merged by stable class id.
#[derive(Clone, Debug, Default)]
pub struct Merged {
    /// Classes, one per stable id, in the order first found.
    pub classes: Vec<RecordedClass>,
    /// Dependencies, one per pair, in the order first found.
    pub dependencies: Vec<MergedDependency>,
    /// Distinct chains.
    pub chains: Vec<RecordedChain>,
    /// The processes merged, in order.
    pub processes: Vec<ProcessInfo>,
    /// Warnings of the recordings.
    pub warnings: Vec<String>,
}

impl Merged {
    /// Merges recordings, in the order given (which decides whose stack is "first seen").
    pub fn new<'a>(recordings: impl IntoIterator<Item = &'a Recording>) -> Merged {
        let mut m = Merged::default();
        let mut classes: HashMap<u64, usize> = HashMap::new();
        let mut deps: HashMap<(u64, u64), usize> = HashMap::new();
        let mut chains: HashSet<RecordedChain> = HashSet::new();
        for r in recordings {
            m.processes.push(r.process.clone());
            m.warnings.extend(r.warnings.iter().cloned());
            for c in &r.classes {
                if let Some(&i) = classes.get(&c.stable_id) {
                    m.classes[i].usage |= c.usage;
                } else {
                    classes.insert(c.stable_id, m.classes.len());
                    m.classes.push(c.clone());
                }
            }
            for d in &r.dependencies {
                match deps.get(&(d.from, d.to)) {
                    Some(&i) => {
                        let e = &mut m.dependencies[i];
                        e.dep |= d.dep;
                        e.distance = e.distance.min(d.distance);
                        if !e.first.has_stack && d.has_stack {
                            e.first = d.clone();
                            e.process = r.process.clone();
                            e.file = r.file.clone();
                        }
                    }
                    None => {
                        deps.insert((d.from, d.to), m.dependencies.len());
                        m.dependencies.push(MergedDependency {
                            from: d.from,
                            to: d.to,
                            dep: d.dep,
                            distance: d.distance,
                            first: d.clone(),
                            process: r.process.clone(),
                            file: r.file.clone(),
                        });
                    }
                }
            }
            for c in &r.chains {
                if chains.insert(c.clone()) {
                    m.chains.push(c.clone());
                }
            }
        }
        m
    }

    /// Feeds the merged graph through a fresh engine: every class is imported by stable id,
    /// every dependency through [`Engine::import_dependency`] (the engine's own strong-cycle
    /// rules), with its first-seen stack, task and origin. Returns the engine (for the /proc
    /// views) and one circular report per distinct cycle found.
    pub fn check(&self) -> Checked {
        let engine = Engine::new();
        let mut ids = HashMap::new();
        for c in &self.classes {
            let id = engine.import_class(
                &c.name,
                c.stable_id,
                c.wait_inner,
                c.wait_outer,
                c.site.as_deref(),
                c.usage,
            );
            ids.insert(c.stable_id, id);
        }
        let mut reports = Vec::new();
        for d in &self.dependencies {
            let (Some(&from), Some(&to)) = (ids.get(&d.from), ids.get(&d.to)) else {
                continue;
            };
            let frames = d
                .first
                .frames
                .iter()
                .map(|f| stack::intern(&f.to_string()))
                .collect();
            let task = TaskRef {
                name: d.first.task.as_str().into(),
                pid: d.first.tid,
                origin: Some(d.origin().into()),
            };
            let site = |s: &Option<String>| {
                s.as_deref()
                    .map_or(Site::Unknown, |s| Site::Text(stack::intern(s)))
            };
            let sites = Some((site(&d.first.held_site), site(&d.first.site)));
            reports.extend(engine.import_dependency_at(
                from,
                to,
                d.dep,
                Arc::new(StackTrace::symbolic(frames)),
                task,
                sites,
            ));
        }
        let chains = self
            .chains
            .iter()
            .filter_map(|c| {
                let classes: Option<Vec<ClassId>> =
                    c.classes.iter().map(|s| ids.get(s).copied()).collect();
                Some(ChainInfo {
                    irq_context: c.irq_context,
                    classes: classes?,
                })
            })
            .collect();
        Checked {
            engine,
            reports,
            ids,
            chains,
        }
    }
}

/// What [`Merged::check`] gives.
#[derive(Debug)]
pub struct Checked {
    /// The engine holding the merged graph (less the dependencies that closed a cycle).
    pub engine: Engine,
    /// One circular report per distinct cycle.
    pub reports: Vec<Report>,
    /// The engine's class for each stable id.
    pub ids: HashMap<u64, ClassId>,
    /// The recorded chains, in the engine's class ids.
    pub chains: Vec<ChainInfo>,
}

impl Checked {
    /// The edges (stable ids) of every cycle reported, including the one that closed it.
    pub fn cycle_edges(&self) -> HashSet<(u64, u64)> {
        let stable: HashMap<ClassId, u64> = self.ids.iter().map(|(s, c)| (*c, *s)).collect();
        let mut out = HashSet::new();
        for r in &self.reports {
            // chain = [held, ..., acquired]: the path runs acquired -> ... -> held, and the
            // report's dependency held -> acquired closes it.
            let ids: Vec<u64> = r
                .chain
                .iter()
                .filter_map(|l| stable.get(&l.class.id).copied())
                .collect();
            if ids.len() != r.chain.len() || ids.is_empty() {
                continue;
            }
            for w in ids.windows(2) {
                out.insert((w[1], w[0]));
            }
            out.insert((ids[0], ids[ids.len() - 1]));
        }
        out
    }
}
