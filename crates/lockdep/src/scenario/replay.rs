//! The replay driver: a parsed [`Case`] through a fresh [`Engine`].
//!
//! Every statement maps to one engine call (or two: `might_lock` is an acquire and a release;
//! the `might_sleep` of a blocking `mutex` or `rwsem` acquisition is the engine's). The driver adds
//! no rule of its own; it only keeps the per-case objects (keys, maps, tasks), gives each event
//! its site, and keeps at most one report per event: the first problem found.

use std::collections::HashMap;

use super::{Case, CaseResult, Op, Scenario, Scope, WwOutcome};
use crate::engine::held::Task;
use crate::engine::reclaim::ReclaimMaps;
use crate::engine::ww::WwCtxState;
use crate::engine::{Engine, Options};
use crate::lock::class::LockClassKey;
use crate::lock::gfp;
use crate::lock::map::{Acquire, FileLine, LockMap, Site};
use crate::report::stack;
use crate::report::{LockInfo, Report};

/// The fake address of the first declared instance of a case (the predeclared `fs_reclaim`);
/// each later declaration is 0x40 above the previous one. Reports print these instead of real
/// addresses, so that a replay's output is the same on every run.
pub const FAKE_ADDRESS_BASE: usize = 0xffff_8880_1000_0000;

/// The distance between the fake addresses of two consecutive declarations.
pub const FAKE_ADDRESS_STRIDE: usize = 0x40;

/// Replays every case of a scenario, in order.
pub fn replay(scenario: &Scenario) -> Vec<CaseResult> {
    scenario.cases.iter().map(replay_case).collect()
}

/// Replays one case through a fresh engine and compares its reports with its expectations.
pub fn replay_case(case: &Case) -> CaseResult {
    replay_case_in(case, &Engine::with_options(Options::default()))
}

/// Replays one case through `engine`, which should be fresh (one with an observer, to record the
/// case; or one to look at afterwards, as `lockdep replay --dump` does).
pub fn replay_case_in(case: &Case, engine: &Engine) -> CaseResult {
    let mut live = Live::default();
    for step in &case.steps {
        live.step(engine, case, step);
    }
    live.finish(case)
}

/// What [`replay_stream`] asks of its caller: an engine per case, and what to do with it after.
pub trait CaseDriver {
    /// A fresh engine for the next case (its steps are not known yet).
    fn engine(&mut self, case: &Case) -> Engine;
    /// `case` (without its steps) has been replayed through `engine`.
    fn done(&mut self, case: &Case, result: CaseResult, engine: Engine);
}

/// Parses and replays a scenario file statement by statement, as it is read: no case is ever
/// held whole, so memory stays bounded by the declarations and reports of one case, however
/// large the file. Each case gets an engine from `driver` and is handed back to it when it ends.
/// Returns the number of cases.
///
/// A malformed statement stops the replay with its error, after the cases before it were
/// replayed: to replay nothing of a malformed file (as [`parse`](super::parse) does), call
/// [`validate`](super::validate) on it first.
///
/// ```
/// use lockdep::scenario::{self, Case, CaseDriver, CaseResult};
/// use lockdep::Engine;
///
/// struct Verdicts(Vec<bool>);
/// impl CaseDriver for Verdicts {
///     fn engine(&mut self, _: &Case) -> Engine {
///         Engine::new()
///     }
///     fn done(&mut self, _: &Case, result: CaseResult, _: Engine) {
///         self.0.push(result.passed);
///     }
/// }
/// let text = "mutex A\nlock A\nlock A\nexpect recursive\n";
/// let mut v = Verdicts(Vec::new());
/// assert_eq!(scenario::replay_stream("aa.lockdep", text.as_bytes(), &mut v), Ok(1));
/// # #[cfg(not(feature = "disabled"))] {
/// assert_eq!(v.0, [true]);
/// # }
/// ```
pub fn replay_stream(
    file: &str,
    reader: impl std::io::BufRead,
    driver: &mut dyn CaseDriver,
) -> Result<usize, super::ParseError> {
    struct Stream<'a> {
        driver: &'a mut dyn CaseDriver,
        cur: Option<(Engine, Live)>,
        cases: usize,
    }
    impl super::parse::Sink for Stream<'_> {
        fn streams(&self) -> bool {
            true
        }
        fn step(&mut self, case: &Case, step: &super::Step) {
            if self.cur.is_none() {
                self.cur = Some((self.driver.engine(case), Live::default()));
            }
            if let Some((engine, live)) = &mut self.cur {
                live.step(engine, case, step);
            }
        }
        fn case(&mut self, case: Case) {
            let (engine, live) = match self.cur.take() {
                Some(c) => c,
                None => (self.driver.engine(&case), Live::default()),
            };
            let result = live.finish(&case);
            self.cases += 1;
            self.driver.done(&case, result, engine);
        }
    }
    let mut s = Stream {
        driver,
        cur: None,
        cases: 0,
    };
    super::parse::run(file, reader, &mut s)?;
    Ok(s.cases)
}

/// The text `lockdep replay` prints for a case: its reports in the kernel's format, then
/// `case NAME: ok` or `case NAME: FAILED (expected [KIND, ...], got [KIND, ...])`.
pub fn render_case(result: &CaseResult) -> String {
    let mut out = String::new();
    for r in &result.reports {
        out.push_str(&r.render());
    }
    if result.passed {
        out.push_str(&format!("case {}: ok\n", result.name));
    } else {
        let list =
            |kinds: &mut dyn Iterator<Item = &'static str>| kinds.collect::<Vec<_>>().join(", ");
        out.push_str(&format!(
            "case {}: FAILED (expected [{}], got [{}])\n",
            result.name,
            list(&mut result.expected.iter().map(|k| k.name())),
            list(&mut result.reports.iter().map(|r| r.kind.name())),
        ));
    }
    out
}

/// The allocation-scope saves of one task, one stack per [`Scope`].
type Scopes = [Vec<bool>; 3];

/// The replay of one case, grown as the case's declarations and tasks appear: one key per class
/// (sited at its declaration line), one boxed map per instance (so that each keeps its address,
/// the engine's instance identity, for the whole case), one simulated task per task.
#[derive(Default)]
struct Live {
    /// Boxed: the vector grows during the case, and a map must never move.
    #[allow(clippy::vec_box)]
    maps: Vec<Box<LockMap>>,
    keys: Vec<&'static LockClassKey>,
    /// The fake address of each map, by its real one.
    fake: HashMap<usize, usize>,
    tasks: Vec<Task>,
    scopes: Vec<Scopes>,
    current: usize,
    /// The validator's state of each ww acquire context, by instance.
    ww: HashMap<usize, WwCtxState>,
    reports: Vec<Report>,
    /// The case's file, once its first event made a site of it.
    file: Option<FileLine>,
}

impl Live {
    /// Makes the keys, maps and tasks `case` declared since the last call.
    fn sync(&mut self, case: &Case) {
        // Each class's site is its declaration line in the scenario file (the predeclared maps
        // have none in the file: the case's line stands for them).
        while self.keys.len() < case.classes.len() {
            let i = self.keys.len();
            let line = match case.class_lines.get(i) {
                Some(&l) if l != 0 => l,
                _ => case.line,
            };
            self.keys.push(LockClassKey::new_dynamic_at(
                &case.classes[i],
                &format!("{}:{line}", case.file),
            ));
        }
        while self.maps.len() < case.instances.len() {
            let i = self.maps.len();
            let inst = &case.instances[i];
            // `parse` guarantees every class index is in range; a key is made on the spot if not.
            let key = match self.keys.get(inst.class) {
                Some(k) => *k,
                None => LockClassKey::new_dynamic(inst.name.as_str()),
            };
            let map = Box::new(LockMap::named(key).with_wait(inst.inner, inst.outer));
            let addr = FAKE_ADDRESS_BASE.wrapping_add(FAKE_ADDRESS_STRIDE.wrapping_mul(i));
            self.fake.insert(map.instance(), addr);
            self.maps.push(map);
        }
        while self.tasks.len() < case.tasks.len() {
            let t = &case.tasks[self.tasks.len()];
            self.tasks.push(Task::simulated(t.name.as_str(), t.pid));
            self.scopes.push(Default::default());
        }
        if self.tasks.is_empty() {
            self.tasks.push(Task::simulated("main", 1));
            self.scopes.push(Default::default());
        }
    }

    fn step(&mut self, engine: &Engine, case: &Case, step: &super::Step) {
        self.sync(case);
        if let Some(mut report) = self.statement(engine, case, step.line, &step.op) {
            rewrite_addresses(&mut report, &self.fake);
            self.reports.push(*report);
        }
    }

    fn finish(self, case: &Case) -> CaseResult {
        let reports = self.reports;
        let passed = reports.len() == case.expected.len()
            && reports
                .iter()
                .zip(&case.expected)
                .all(|(r, k)| r.kind == *k);
        CaseResult {
            name: case.name.clone(),
            reports,
            expected: case.expected.clone(),
            passed,
        }
    }

    /// The report of a statement, if any. Boxed: a report is some 500 bytes, and most events
    /// have none, which a pointer says without copying an empty report from call to call.
    fn statement(
        &mut self,
        engine: &Engine,
        case: &Case,
        line: usize,
        op: &Op,
    ) -> Option<Box<Report>> {
        // Statements that shape the task, not events.
        match op {
            Op::Thread(t) => {
                if *t < self.tasks.len() {
                    self.current = *t;
                }
                return None;
            }
            Op::Call(f) => {
                self.task().push_frame(stack::intern(f));
                return None;
            }
            Op::Ret => {
                // `parse` rejects a `ret` with nothing to pop.
                self.task().pop_frame();
                return None;
            }
            _ => {}
        }
        // An event: its site is the innermost simulated frame, or `FILE:LINE` of the statement
        // when the stack is empty. In that case the statement is also the one frame of the
        // stack the engine captures, so backtraces and dependency stacks show it too.
        let here = self.line_site(case, line);
        let pushed = self.task().current_frame().is_none();
        if pushed {
            self.task().push_frame_site(here);
        }
        let site = self.task().current_frame().unwrap_or(here);
        let report = self.event(engine, op, site);
        if pushed {
            self.task().pop_frame();
        }
        report
    }

    /// The site `FILE:LINE` of the statement at `line`: a [`Site::Line`], two words that stay
    /// valid for the life of the process (as the kernel's static strings do) and cost nothing
    /// per line. Every event line of a scenario is a site of its own, and a large file has
    /// millions of them.
    fn line_site(&mut self, case: &Case, line: usize) -> Site {
        match (self.file, u32::try_from(line)) {
            (Some(file), Ok(line)) => Site::Line(file.with_line(line)),
            _ => {
                // The case's first event, or a case past the file names a `FileLine` can name
                // (each of its sites is then an interned text).
                let site = Site::file_line(&case.file, line);
                if let Site::Line(l) = site {
                    self.file = Some(l);
                }
                site
            }
        }
    }

    fn task(&mut self) -> &mut Task {
        let i = self.current.min(self.tasks.len().saturating_sub(1));
        &mut self.tasks[i]
    }

    /// The report of an event, boxed where the engine made it (see [`Live::statement`]).
    fn event(&mut self, engine: &Engine, op: &Op, site: Site) -> Option<Box<Report>> {
        let boxed = |r: Option<Report>| r.map(Box::new);
        let maps = &self.maps;
        let map = |i: usize| maps.get(i).map(|m| &**m);
        let i = self.current.min(self.tasks.len().saturating_sub(1));
        let task = &mut self.tasks[i];
        match op {
            Op::Thread(_) | Op::Call(_) | Op::Ret => None,
            Op::Exit => boxed(engine.exit(task)),
            Op::Acquire {
                inst,
                read,
                trylock,
                subclass,
                nest,
                might,
            } => {
                let m = map(*inst)?;
                let mut how = Acquire::exclusive()
                    .with_read(*read)
                    .trylock(*trylock)
                    .subclass(*subclass);
                if let Some(n) = nest.and_then(map) {
                    how = how.nest_lock(n);
                }
                let first = engine.acquire(task, m, how, site);
                if *might {
                    // An annotation: acquire and release at once.
                    let second = engine.release(task, m, site);
                    return boxed(first.or(second));
                }
                // The engine performs `might_sleep` for a lock whose inner wait type is `sleep`
                // (the default of `mutex` and `rwsem`), before the lock is pushed, and reports
                // it only if the acquisition itself found nothing.
                boxed(first)
            }
            Op::Unlock(x) => boxed(engine.release(task, map(*x)?, site)),
            Op::Downgrade(x) => boxed(engine.downgrade(task, map(*x)?, site)),
            Op::SetSubclass(x, sub) => boxed(engine.set_subclass(task, map(*x)?, *sub, site)),
            Op::Init(x) => boxed(engine.check_freed(task, map(*x)?.instance())),
            Op::Assert { inst, held, want } => {
                boxed(engine.assert_held(task, map(*inst)?, *held, *want, site))
            }
            Op::IrqDisable => boxed(engine.irq_disable(task)),
            Op::IrqEnable => boxed(engine.irq_enable(task)),
            Op::BhDisable => boxed(engine.bh_disable(task)),
            Op::BhEnable => boxed(engine.bh_enable(task)),
            Op::HardirqEnter => {
                engine.hardirq_enter(task);
                None
            }
            Op::HardirqExit => {
                engine.hardirq_exit(task);
                None
            }
            Op::SoftirqEnter => {
                engine.softirq_enter(task);
                None
            }
            Op::SoftirqExit => {
                engine.softirq_exit(task);
                None
            }
            Op::HardirqThreaded => {
                engine.hardirq_threaded(task);
                None
            }
            Op::NonBlockStart => {
                engine.non_block_start(task);
                None
            }
            Op::NonBlockEnd => boxed(engine.non_block_end(task, site)),
            Op::MightSleep => boxed(engine.might_sleep(task, site)),
            // The reclaim annotations, with the case's predeclared maps (instances 0 and 1).
            Op::Alloc(g) => boxed(engine.might_alloc(task, &reclaim_maps(maps)?, *g, site)),
            Op::FsReclaimAcquire(g) => {
                boxed(engine.fs_reclaim_acquire(task, &reclaim_maps(maps)?, *g, site))
            }
            Op::FsReclaimRelease(g) => {
                boxed(engine.fs_reclaim_release(task, &reclaim_maps(maps)?, *g, site))
            }
            Op::MemallocSave(scope) => {
                let was = task.memalloc_save(scope_flag(*scope));
                if let Some(s) = self.scopes.get_mut(i) {
                    s[*scope as usize].push(was);
                }
                None
            }
            Op::MemallocRestore(scope) => {
                // `parse` rejects a restore without its save.
                let was = self
                    .scopes
                    .get_mut(i)
                    .and_then(|s| s[*scope as usize].pop());
                if let Some(was) = was {
                    task.memalloc_restore(scope_flag(*scope), was);
                }
                None
            }
            Op::RawLockNesting => {
                engine.set_options(Options {
                    raw_lock_nesting: true,
                    ..engine.options()
                });
                None
            }
            Op::LegacyFsReclaim(legacy) => {
                engine.set_options(Options {
                    legacy_fs_reclaim: *legacy,
                    ..engine.options()
                });
                None
            }
            Op::WwInit { ctx, first, class } => {
                let st = self.ww.entry(*ctx).or_default();
                *st = WwCtxState::new(*class);
                boxed(engine.ww_acquire_init(task, map(*ctx)?, map(*first)?, st, site))
            }
            Op::WwDone(ctx) => {
                let st = self.ww.entry(*ctx).or_default();
                boxed(engine.ww_acquire_done(task, map(*ctx)?, st, site))
            }
            Op::WwFini(ctx) => {
                let st = self.ww.entry(*ctx).or_default();
                boxed(engine.ww_acquire_fini(task, map(*ctx)?, st, site))
            }
            Op::WwSetAcquired(ctx, n) => {
                self.ww.entry(*ctx).or_default().set_acquired(*n);
                None
            }
            Op::WwLock {
                inst,
                class,
                ctx,
                mode,
                outcome,
            } => {
                let m = map(*inst)?;
                if *outcome == WwOutcome::Already {
                    return None;
                }
                let Some(ctx) = ctx else {
                    return boxed(engine.ww_lock(task, m, None, *mode, site));
                };
                let st = self.ww.entry(*ctx).or_default();
                let first = engine.ww_lock(task, m, Some((map(*ctx)?, &mut *st)), *mode, site);
                let then = match outcome {
                    WwOutcome::Acquired { stale } => {
                        engine.ww_acquired(task, m, *class, st, *stale, site)
                    }
                    WwOutcome::BackOff => engine.ww_back_off(task, m, st, true, site),
                    WwOutcome::Already => None,
                };
                boxed(first.or(then))
            }
            Op::WwUnlock { inst, owner } => {
                let owner = owner.map(|o| self.ww.entry(o).or_default());
                boxed(engine.ww_unlock(task, map(*inst)?, owner, site))
            }
        }
    }
}

/// The case's predeclared `fs_reclaim` and `mmu_notifier_invalidate_range_start` maps.
fn reclaim_maps(maps: &[Box<LockMap>]) -> Option<ReclaimMaps<'_>> {
    Some(ReclaimMaps {
        fs_reclaim: maps.first()?,
        mmu_notifier: maps.get(1)?,
    })
}

fn scope_flag(scope: Scope) -> u32 {
    match scope {
        Scope::Nofs => gfp::PF_MEMALLOC_NOFS,
        Scope::Noio => gfp::PF_MEMALLOC_NOIO,
        Scope::Noreclaim => gfp::PF_MEMALLOC,
    }
}

/// Replaces the real map addresses in a report by the case's fake ones.
fn rewrite_addresses(report: &mut Report, fake: &HashMap<usize, usize>) {
    let fix = |l: &mut LockInfo| {
        if let Some(&a) = fake.get(&l.instance) {
            l.instance = a;
        }
    };
    if let Some(l) = report.lock.as_mut() {
        fix(l);
    }
    if let Some(l) = report.holding.as_mut() {
        fix(l);
    }
    report.held.iter_mut().for_each(fix);
}

#[cfg(test)]
mod tests {
    use super::super::parse;
    use super::*;
    use crate::report::ReportKind;

    fn run(text: &str) -> Vec<CaseResult> {
        replay(&parse("t.lockdep", text).expect("well-formed"))
    }

    fn kinds(text: &str) -> Vec<ReportKind> {
        run(text).iter().flat_map(|r| r.got()).collect()
    }

    #[test]
    fn abba_is_circular_and_the_case_passes() {
        let r = run(
            "case abba\nmutex A\nmutex B\nlock A\nlock B\nunlock B\nunlock A\n\
                     lock B\nlock A\nunlock A\nunlock B\nexpect circular\n",
        );
        assert_eq!(r.len(), 1);
        assert!(r[0].passed);
        let text = render_case(&r[0]);
        assert!(text.contains("WARNING: possible circular locking dependency detected"));
        assert!(text.contains("main/1 is trying to acquire lock:"));
        // A is the third declaration (after the two predeclared maps), B the fourth.
        assert!(text.contains("ffff888010000080 (A){+.+.}-{3:3}, at: t.lockdep:9"));
        assert!(text.contains("ffff8880100000c0 (B){+.+.}-{3:3}, at: t.lockdep:8"));
        assert!(text.ends_with("case abba: ok\n"));
    }

    #[test]
    fn classes_are_sited_at_their_declaration_line() {
        let run = |text: &str| {
            let sc = crate::scenario::parse("dir/t.lockdep", text).unwrap();
            let engine = Engine::with_options(Options::default());
            replay_case_in(&sc.cases[0], &engine);
            engine.classes()
        };
        let classes = run("case c\nmutex A\n\nmutex B\nlock A\nlock B\n");
        let site_of = |n: &str| {
            classes
                .iter()
                .find(|c| &*c.name == n)
                .and_then(|c| c.site.as_deref().map(str::to_string))
        };
        assert_eq!(site_of("A").as_deref(), Some("dir/t.lockdep:2"));
        assert_eq!(site_of("B").as_deref(), Some("dir/t.lockdep:4"));
        assert!(classes
            .iter()
            .all(|c| !c.site.as_deref().unwrap_or("").contains("replay.rs")));
    }

    #[test]
    fn failed_cases_list_both_sides() {
        let r = run("case c\nmutex A\nlock A\nunlock A\nunlock A\nexpect circular\n");
        assert!(!r[0].passed);
        assert!(render_case(&r[0])
            .ends_with("case c: FAILED (expected [circular], got [bad_unlock])\n"));
        let r = run("case d\nmutex A\n");
        assert!(r[0].passed);
        assert_eq!(render_case(&r[0]), "case d: ok\n");
    }

    #[test]
    fn subclasses_and_trylocks() {
        assert_eq!(
            kinds("mutex a k\nmutex b k\nlock a\nlock b\n"),
            [ReportKind::Recursive]
        );
        assert!(kinds("mutex a k\nmutex b k\nlock a\nlock b sub=1\n").is_empty());
        assert!(kinds(
            "mutex A\nmutex B\nlock A\ntrylock B\nunlock B\nunlock A\n\
             lock B\nlock A\nunlock A\nunlock B\n"
        )
        .is_empty());
    }

    #[test]
    fn mutexes_may_sleep_but_one_report_per_event() {
        // Taking a mutex under a spinlock: the wait-context check comes first (a sleeping lock
        // in a spinning context); one report per event.
        assert_eq!(
            kinds("spin s\nmutex m\nlock s\nlock m\n"),
            [ReportKind::InvalidWaitContext]
        );
        // In a non-blocking section there is no wait-context problem: might_sleep complains.
        assert_eq!(
            kinds("mutex m\nnon_block_start\nlock m\n"),
            [ReportKind::SleepInvalidContext]
        );
        // A trylock does not sleep.
        assert!(kinds("spin s\nmutex m\nlock s\ntrylock m\n").is_empty());
        // Recursive locking in a non-blocking section: one report, the recursion.
        assert_eq!(
            kinds("mutex a k\nmutex b k\nlock a\nnon_block_start\nlock b\n"),
            [ReportKind::Recursive]
        );
    }

    #[test]
    fn sites_are_frames_or_file_lines() {
        let r = run(
            "mutex A\nthread worker pid=77\ncall outer\ncall inner\nlock A\n\
                     ret\nret\nunlock A\nunlock A\n",
        );
        let text = render_case(&r[0]);
        assert!(text.contains("worker/77 is trying to release lock (A) at:\nt.lockdep:9\n"));
        let r = run("mutex A\ncall f\nunlock A\n");
        let text = render_case(&r[0]);
        assert!(text.contains("at:\nf\n"), "{text}");
        assert!(text.contains("Call Trace:\n f\n"), "{text}");
    }

    #[test]
    fn contexts_and_scopes_replay() {
        assert_eq!(
            kinds("irq_disable\nmight_sleep\nirq_enable\nmight_sleep\n"),
            [ReportKind::SleepInvalidContext]
        );
        assert_eq!(kinds("non_block_end\n"), [ReportKind::NonBlockImbalance]);
        assert!(kinds(
            "memalloc_nofs_save\nmemalloc_noio_save\nmemalloc_noio_restore\n\
             memalloc_nofs_restore\nalloc GFP_KERNEL\n"
        )
        .is_empty());
        assert_eq!(
            kinds("mutex A\nlock A\nexit\n"),
            [ReportKind::LocksHeldAtExit]
        );
        assert_eq!(kinds("mutex A\nassert_held A\n"), [ReportKind::Assertion]);
        assert_eq!(
            kinds("mutex A\nlock A\ninit A\n"),
            [ReportKind::HeldLockFreed]
        );
    }

    #[test]
    fn replay_is_reproducible() {
        let text = "mutex A\nmutex B\nlock A\nlock B\nunlock B\nunlock A\n\
                    lock B\nlock A\nunlock A\nunlock B\n";
        let one: Vec<String> = run(text).iter().map(render_case).collect();
        let two: Vec<String> = run(text).iter().map(render_case).collect();
        assert_eq!(one, two);
    }

    /// How many texts kept for the life of the process (the interned sites and frame names)
    /// mention `file`.
    fn texts_naming(file: &str) -> usize {
        let sites = crate::lock::map::TEXTS
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map_or(0, |t| t.keys().filter(|k| k.contains(file)).count());
        let frames = stack::INTERNED
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map_or(0, |t| t.iter().filter(|k| k.contains(file)).count());
        sites + frames
    }

    /// Every event line is a site of its own, kept as long as the process: a replay of ten
    /// times the lines keeps no more of them (a text per line made a 200 MB file take 3.6 GB).
    #[test]
    fn sites_take_no_memory_per_line() {
        let text = |reps: usize| {
            let mut t = String::from("mutex A\nmutex B\ncall f\nlock A\nret\n");
            for _ in 0..reps {
                t.push_str("lock B\nunlock B\nunlock A\nlock A\n");
            }
            t.push_str("unlock A\nlock B\nlock A\nunlock A\nunlock B\nexpect circular\n");
            t
        };
        for (file, reps) in [("growth-short.lockdep", 100), ("growth-long.lockdep", 1000)] {
            let s = parse(file, &text(reps)).expect("well-formed");
            let r = replay(&s);
            #[cfg(not(feature = "disabled"))]
            assert!(r[0].passed, "{}", render_case(&r[0]));
            // The sites still print as the statements' lines.
            let last = 4 * reps + 8;
            #[cfg(not(feature = "disabled"))]
            assert!(
                render_case(&r[0]).contains(&format!("(A){{+.+.}}-{{3:3}}, at: {file}:{last}")),
                "{}",
                render_case(&r[0])
            );
        }
        assert_eq!(
            texts_naming("growth-long.lockdep"),
            texts_naming("growth-short.lockdep")
        );
    }

    /// Random statement soup: parsing never panics, and whatever parses replays without
    /// panicking, whatever order the events come in.
    #[test]
    fn random_input_never_panics() {
        const WORDS: [&str; 48] = [
            "case",
            "mutex",
            "rwsem",
            "spin",
            "rwlock",
            "raw_spin",
            "map",
            "thread",
            "call",
            "ret",
            "exit",
            "lock",
            "lock_shared",
            "lock_shared_recursive",
            "trylock",
            "trylock_shared",
            "might_lock",
            "might_lock_shared",
            "unlock",
            "downgrade",
            "set_subclass",
            "init",
            "assert_held",
            "assert_held_read",
            "assert_not_held",
            "irq_disable",
            "irq_enable",
            "bh_disable",
            "bh_enable",
            "hardirq_enter",
            "hardirq_exit",
            "softirq_enter",
            "softirq_exit",
            "hardirq_threaded",
            "non_block_start",
            "non_block_end",
            "might_sleep",
            "alloc",
            "memalloc_nofs_save",
            "memalloc_nofs_restore",
            "option",
            "expect",
            "fs_reclaim",
            "nest=A",
            "sub=1",
            "wait=spin",
            "# c",
            "é\u{0}",
        ];
        const ARGS: [&str; 12] = [
            "A",
            "B",
            "k",
            "fs_reclaim",
            "t",
            "1",
            "sub=7",
            "nest=B",
            "pid=3",
            "GFP_KERNEL",
            "raw_lock_nesting",
            "circular",
        ];
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = |n: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % n as u64) as usize
        };
        let mut parsed = 0;
        for _ in 0..3000 {
            let mut text = String::from("mutex A\nspin B k\n");
            for _ in 0..next(30) {
                text.push_str(WORDS[next(WORDS.len())]);
                for _ in 0..next(3) {
                    text.push(' ');
                    text.push_str(ARGS[next(ARGS.len())]);
                }
                text.push('\n');
            }
            if let Ok(s) = parse("fuzz.lockdep", &text) {
                parsed += 1;
                for r in replay(&s) {
                    let _ = render_case(&r);
                }
            }
        }
        assert!(parsed > 50, "only {parsed} inputs parsed");
    }

    /// A scenario of `cases` cases made as it is read, counting what was read.
    struct Generated {
        cases: usize,
        made: usize,
        buf: Vec<u8>,
        pos: usize,
        read: std::rc::Rc<std::cell::Cell<usize>>,
    }

    impl std::io::Read for Generated {
        fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
            if self.pos == self.buf.len() {
                if self.made == self.cases {
                    return Ok(0);
                }
                self.buf.clear();
                self.pos = 0;
                let c = self.made;
                self.made += 1;
                let mut t = format!("case c{c}\nmutex A\nmutex B\n");
                for _ in 0..500 {
                    t.push_str("lock A\nlock B\nunlock B\nunlock A\n");
                }
                t.push_str("lock B\nlock A\nunlock A\nunlock B\nexpect circular\n");
                self.buf = t.into_bytes();
            }
            let n = out.len().min(self.buf.len() - self.pos);
            out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
            self.pos += n;
            self.read.set(self.read.get() + n);
            Ok(n)
        }
    }

    struct Seen {
        read: std::rc::Rc<std::cell::Cell<usize>>,
        /// The bytes read when each case ended, and its verdict.
        at: Vec<(usize, bool)>,
    }

    impl CaseDriver for Seen {
        fn engine(&mut self, _: &Case) -> Engine {
            Engine::new()
        }
        fn done(&mut self, _: &Case, r: CaseResult, _: Engine) {
            self.at.push((self.read.get(), r.passed));
        }
    }

    #[test]
    fn cases_are_replayed_as_the_file_is_read() {
        let read = std::rc::Rc::new(std::cell::Cell::new(0));
        let input = Generated {
            cases: 200,
            made: 0,
            buf: Vec::new(),
            pos: 0,
            read: read.clone(),
        };
        let mut seen = Seen {
            read: read.clone(),
            at: Vec::new(),
        };
        let n = replay_stream("gen.lockdep", std::io::BufReader::new(input), &mut seen).unwrap();
        assert_eq!(n, 200);
        let total = read.get();
        assert_eq!(seen.at.len(), 200);
        #[cfg(not(feature = "disabled"))]
        assert!(seen.at.iter().all(|a| a.1));
        // The first case ended with about 1/200 of the file read, not all of it.
        assert!(seen.at[0].0 < total / 50, "{} of {total}", seen.at[0].0);
        // Errors still name the file and line, after the cases before them were replayed.
        let text = "case a\nmutex A\nlock A\ncase b\nlock B\n";
        let mut seen = Seen {
            read,
            at: Vec::new(),
        };
        let e = replay_stream("t.lockdep", text.as_bytes(), &mut seen).unwrap_err();
        assert_eq!(e.to_string(), "t.lockdep:5: undeclared instance `B`");
        assert_eq!(seen.at.len(), 1);
    }

    #[test]
    fn a_streamed_replay_is_the_replay_of_the_parsed_file() {
        let text = "case abba\nmutex A\nmutex B\nlock A\nlock B\nunlock B\nunlock A\n\
                    lock B\nlock A\nunlock A\nunlock B\nexpect circular\n\
                    case late\nlock_shared fs_reclaim\nmutex C\nthread t\nlock C\nlock C\n\
                    expect recursive\n";
        let whole: Vec<String> = replay(&parse("t.lockdep", text).unwrap())
            .iter()
            .map(render_case)
            .collect();
        struct Texts(Vec<String>);
        impl CaseDriver for Texts {
            fn engine(&mut self, _: &Case) -> Engine {
                Engine::new()
            }
            fn done(&mut self, _: &Case, r: CaseResult, _: Engine) {
                self.0.push(render_case(&r));
            }
        }
        let mut t = Texts(Vec::new());
        replay_stream("t.lockdep", text.as_bytes(), &mut t).unwrap();
        assert_eq!(t.0, whole);
    }
}
