//! The parser: text to a validated [`Scenario`].
//!
//! Everything a replay relies on is checked here, statically, in file order: names, argument
//! counts, declarations before use, one type per class, call stacks and allocation scopes that
//! never pop more than was pushed (per task). A file with any error is rejected whole.

// Fx: the names are hashed once or twice per statement, and nothing iterates these maps.
use rustc_hash::FxHashMap as HashMap;
use std::io::BufRead;
use std::path::Path;

use super::{Case, Instance, LockType, Op, ParseError, Scenario, Scope, Step, TaskDecl, WwOutcome};
use crate::engine::ww::{verdict, Verdict, WwKind, WwLockMode};
use crate::lock::class::MAX_SUBCLASSES;
use crate::lock::gfp;
use crate::lock::map::ReadKind;
use crate::lock::wait::WaitType;
use crate::report::ReportKind;

/// The maps every case starts with.
const PREDECLARED: [&str; 2] = ["fs_reclaim", "mmu_notifier_invalidate_range_start"];

/// Parses a scenario file. `file` is how the file is named in errors and `FILE:LINE` sites.
///
/// ```
/// let err = lockdep::scenario::parse("t.lockdep", "mutex A\nlock B\n").unwrap_err();
/// assert_eq!(err.to_string(), "t.lockdep:2: undeclared instance `B`");
/// ```
pub fn parse(file: &str, text: &str) -> Result<Scenario, ParseError> {
    parse_reader(file, text.as_bytes())
}

/// [`parse`], reading the text from `reader` line by line (the text itself is never held
/// whole). A line that is not UTF-8 is an error naming its line and its byte offset in the file.
pub fn parse_reader(file: &str, reader: impl BufRead) -> Result<Scenario, ParseError> {
    let mut cases = Vec::new();
    run(file, reader, &mut Collect(&mut cases))?;
    Ok(Scenario {
        file: file.to_string(),
        cases,
    })
}

/// Checks a scenario file as [`parse_reader`] does, without keeping any of it: memory stays
/// bounded by its declarations, however many statements it has. Returns the number of cases.
pub fn validate(file: &str, reader: impl BufRead) -> Result<usize, ParseError> {
    struct Count(usize);
    impl Sink for Count {
        fn streams(&self) -> bool {
            true
        }
        fn step(&mut self, _: &Case, _: &Step) {}
        fn case(&mut self, _: Case) {
            self.0 += 1;
        }
    }
    let mut n = Count(0);
    run(file, reader, &mut n)?;
    Ok(n.0)
}

/// The longest line a scenario file may have, in bytes.
pub const MAX_LINE: usize = 1 << 20;

/// Where the parser puts what it made.
pub(crate) trait Sink {
    /// Whether steps are handed over one by one ([`Sink::step`]) and then dropped, rather than
    /// kept in their case.
    fn streams(&self) -> bool;
    /// A statement of `case` (whose declarations are the ones made so far), when streaming.
    fn step(&mut self, case: &Case, step: &Step);
    /// A finished case (without its steps, when streaming).
    fn case(&mut self, case: Case);
}

/// The batch sink: whole cases, with their steps.
struct Collect<'a>(&'a mut Vec<Case>);

impl Sink for Collect<'_> {
    fn streams(&self) -> bool {
        false
    }
    fn step(&mut self, _: &Case, _: &Step) {}
    fn case(&mut self, case: Case) {
        self.0.push(case);
    }
}

/// Parses `reader` line by line into `sink`. An error stops it: what the sink was given before
/// is a prefix of the file (callers that must not act on a malformed file [`validate`] first).
pub(crate) fn run(
    file: &str,
    mut reader: impl BufRead,
    sink: &mut dyn Sink,
) -> Result<(), ParseError> {
    let stem = Path::new(file)
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| file.to_string());
    let mut p = Parser {
        file,
        sink,
        cur: CaseBuilder::new(file, stem, 0, true),
    };
    let error = |line: usize, message: String| ParseError {
        file: file.to_string(),
        line,
        message,
    };
    let mut offset = 0u64;
    let mut line = 0usize;
    let mut steps = Vec::new();
    let mut statements = 0usize;
    // One line, with its `\n` if it has one.
    let mut statement = |bytes: &[u8]| -> Result<(), ParseError> {
        line += 1;
        if bytes.len() > MAX_LINE {
            return Err(error(
                line,
                format!("line longer than {MAX_LINE} bytes (byte {offset})"),
            ));
        }
        let start = offset;
        offset += bytes.len() as u64;
        let mut raw = bytes;
        if let Some(r) = raw.strip_suffix(b"\n") {
            raw = r.strip_suffix(b"\r").unwrap_or(r);
        }
        let text = if raw.is_ascii() {
            // SAFETY: ASCII is UTF-8 (the check is a word at a time: most lines are ASCII, and
            // `from_utf8` cost more than the rest of the line's reading).
            Ok(unsafe { std::str::from_utf8_unchecked(raw) })
        } else {
            std::str::from_utf8(raw)
        };
        let raw = text.map_err(|e| {
            error(
                line,
                format!(
                    "not UTF-8 text (byte {} of the file)",
                    start + e.valid_up_to() as u64
                ),
            )
        })?;
        // The words before any `#`, in an array while there are few (no allocation per line).
        let mut few = [""; 8];
        let mut count = 0;
        let mut many = Vec::new();
        for t in words(raw) {
            if count < few.len() {
                few[count] = t;
            } else {
                if many.is_empty() {
                    many.extend_from_slice(&few);
                }
                many.push(t);
            }
            count += 1;
        }
        let tokens = if many.is_empty() {
            &few[..count]
        } else {
            &many[..]
        };
        let Some((&keyword, args)) = tokens.split_first() else {
            return Ok(());
        };
        let first = statements == 0;
        statements += 1;
        p.statement(line, keyword, args).map_err(|message| {
            if first && message.starts_with(UNKNOWN) {
                // Not a scenario at all (a file reached by a link, a mistyped name): say so,
                // without echoing its content.
                error(
                    line,
                    "not a scenario file: its first statement is not a statement of the format"
                        .into(),
                )
            } else {
                error(line, message)
            }
        })?;
        if p.sink.streams() && !p.cur.case.steps.is_empty() {
            // Hand the statement's steps over and keep none of them.
            std::mem::swap(&mut steps, &mut p.cur.case.steps);
            for s in &steps {
                p.sink.step(&p.cur.case, s);
            }
            steps.clear();
        }
        Ok(())
    };
    // The lines are cut in the reader's buffer; only one that a refill splits is copied, to
    // `split` (at most `MAX_LINE` bytes and a buffer more: a longer line is an error).
    let mut split = Vec::new();
    loop {
        let chunk = match reader.fill_buf() {
            Ok(c) => c,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(error(line + 1, format!("cannot read the file: {e}"))),
        };
        if chunk.is_empty() {
            if !split.is_empty() {
                // The last line, without a `\n`.
                statement(&split)?;
            }
            break;
        }
        let (len, whole) = match chunk.iter().position(|&b| b == b'\n') {
            Some(at) => (at + 1, true),
            None => (chunk.len(), false),
        };
        if split.is_empty() && whole {
            let done = statement(&chunk[..len]);
            reader.consume(len);
            done?;
            continue;
        }
        split.extend_from_slice(&chunk[..len]);
        reader.consume(len);
        if whole || split.len() > MAX_LINE {
            statement(&split)?;
            split.clear();
        }
    }
    p.finish_case();
    Ok(())
}

/// The words of a line before any `#`, cut at spaces and tabs (a scan of the bytes: the three
/// are ASCII, so every cut is at a character boundary).
fn words(line: &str) -> impl Iterator<Item = &str> {
    let bytes = line.as_bytes();
    let mut at = 0;
    std::iter::from_fn(move || {
        while let Some(b' ' | b'\t') = bytes.get(at) {
            at += 1;
        }
        let start = at;
        while let Some(&b) = bytes.get(at) {
            if matches!(b, b' ' | b'\t' | b'#') {
                break;
            }
            at += 1;
        }
        // Empty at the end of the line or at a `#`: nothing more.
        (at > start).then(|| line.get(start..at)).flatten()
    })
}

struct Parser<'a> {
    file: &'a str,
    sink: &'a mut dyn Sink,
    cur: CaseBuilder,
}

/// A class as declared: its index, type, wait types and where it was first declared.
struct ClassDecl {
    index: usize,
    ty: LockType,
    inner: WaitType,
    outer: WaitType,
    line: usize,
}

/// Per-task state the parser tracks to reject pops of nothing.
#[derive(Default)]
struct TaskState {
    call_depth: usize,
    scopes: [usize; 3],
}

struct CaseBuilder {
    case: Case,
    /// The file-stem case, which is kept only if it has statements.
    implicit: bool,
    has_statements: bool,
    instances: HashMap<String, usize>,
    classes: HashMap<String, ClassDecl>,
    tasks: HashMap<String, usize>,
    task_state: Vec<TaskState>,
    current: usize,
    /// Line of an `expect none`.
    expect_none: Option<usize>,
    /// The ww classes, mutexes and contexts, and who holds what.
    ww: WwSim,
}

/// The parser's simulation of the case's wound/wait mutexes: who holds each one, under which
/// context, and each context's stamp and held count. It decides what every `ww_lock` does
/// (take the mutex, back off, or find it held already) with the engine's [`verdict`], so that the
/// replay never blocks; a lock that would have to wait is an error.
#[derive(Default)]
struct WwSim {
    classes: HashMap<String, WwClassSim>,
    /// By instance.
    mutexes: HashMap<usize, WwMutexSim>,
    /// By instance.
    ctxs: HashMap<usize, WwCtxSim>,
}

struct WwClassSim {
    /// From 1.
    index: usize,
    kind: WwKind,
    stamps: u64,
}

struct WwMutexSim {
    class: usize,
    kind: WwKind,
    /// The task holding it and the context it was locked under.
    holder: Option<(usize, Option<usize>)>,
    /// The context it is bound to (the kernel's `ww->ctx`), until `ww_unlock`.
    bound: Option<usize>,
}

struct WwCtxSim {
    class: usize,
    first: usize,
    /// `None` until `ww_acquire_init`.
    stamp: Option<u64>,
    acquired: u32,
    wounded: bool,
}

impl CaseBuilder {
    fn new(file: &str, name: String, line: usize, implicit: bool) -> CaseBuilder {
        let mut b = CaseBuilder {
            case: Case {
                name,
                line,
                expected: Vec::new(),
                file: file.to_string(),
                classes: Vec::new(),
                class_lines: Vec::new(),
                instances: Vec::new(),
                tasks: Vec::new(),
                steps: Vec::new(),
            },
            implicit,
            has_statements: false,
            instances: HashMap::default(),
            classes: HashMap::default(),
            tasks: HashMap::default(),
            task_state: Vec::new(),
            current: 0,
            expect_none: None,
            ww: WwSim::default(),
        };
        for name in PREDECLARED {
            // Cannot fail: a fresh case has no declarations.
            let _ = b.declare(0, LockType::Map, name, None, None);
        }
        b.task("main", None).ok();
        b
    }

    fn declare(
        &mut self,
        line: usize,
        ty: LockType,
        name: &str,
        class: Option<&str>,
        wait: Option<(WaitType, WaitType)>,
    ) -> Result<(), String> {
        if let Some(&i) = self.instances.get(name) {
            return Err(format!(
                "instance `{name}` is already declared in this case{}",
                self.declared_at(i)
            ));
        }
        let class_name = class.unwrap_or(name);
        let (inner, outer) = wait.unwrap_or((ty.default_wait(), WaitType::Inv));
        let class = match self.classes.get(class_name) {
            Some(c) => {
                let at = if c.line == 0 {
                    " (predeclared)".to_string()
                } else {
                    format!(" (line {})", c.line)
                };
                if c.ty != ty {
                    return Err(format!(
                        "class `{class_name}` is a {}{at}, not a {ty}: instances of one class \
                         must have one type",
                        c.ty
                    ));
                }
                if (c.inner, c.outer) != (inner, outer) {
                    return Err(format!(
                        "class `{class_name}` has wait types {}{at}, not {}: instances of one \
                         class must have one wait type",
                        wait_spelling(c.inner, c.outer),
                        wait_spelling(inner, outer)
                    ));
                }
                c.index
            }
            None => {
                let index = self.case.classes.len();
                self.case.classes.push(class_name.to_string());
                self.case.class_lines.push(line);
                self.classes.insert(
                    class_name.to_string(),
                    ClassDecl {
                        index,
                        ty,
                        inner,
                        outer,
                        line,
                    },
                );
                index
            }
        };
        self.instances
            .insert(name.to_string(), self.case.instances.len());
        self.case.instances.push(Instance {
            name: name.to_string(),
            class,
            inner,
            outer,
        });
        Ok(())
    }

    fn declared_at(&self, instance: usize) -> String {
        match self.case.instances.get(instance) {
            Some(i) if PREDECLARED.contains(&i.name.as_str()) => " (it is predeclared)".into(),
            _ => String::new(),
        }
    }

    /// The task named `name`, created if needed.
    fn task(&mut self, name: &str, pid: Option<u32>) -> Result<usize, String> {
        if let Some(&t) = self.tasks.get(name) {
            let have = self.case.tasks.get(t).map(|d| d.pid);
            return match (pid, have) {
                (Some(p), Some(h)) if p != h => {
                    Err(format!("task `{name}` already has pid={h}, not pid={p}"))
                }
                _ => Ok(t),
            };
        }
        let t = self.case.tasks.len();
        let pid = pid.unwrap_or(t as u32 + 1);
        self.case.tasks.push(TaskDecl {
            name: name.to_string(),
            pid,
        });
        self.task_state.push(TaskState::default());
        self.tasks.insert(name.to_string(), t);
        Ok(t)
    }

    fn instance(&self, name: &str) -> Result<usize, String> {
        if let Some(&i) = self.instances.get(name) {
            // A declared name was checked when it was declared.
            return Ok(i);
        }
        check_name(name, "instance")?;
        Err(format!("undeclared instance `{name}`"))
    }

    fn state(&mut self) -> &mut TaskState {
        if self.task_state.len() <= self.current {
            self.task_state
                .resize_with(self.current + 1, TaskState::default);
        }
        &mut self.task_state[self.current]
    }

    fn task_name(&self) -> &str {
        self.case
            .tasks
            .get(self.current)
            .map(|t| t.name.as_str())
            .unwrap_or("main")
    }

    fn push(&mut self, line: usize, op: Op) {
        self.case.steps.push(Step { line, op });
    }
}

impl Parser<'_> {
    fn finish_case(&mut self) {
        let keep = !self.cur.implicit || self.cur.has_statements;
        let next = CaseBuilder::new(self.file, String::new(), 0, false);
        let done = std::mem::replace(&mut self.cur, next);
        if keep {
            self.sink.case(done.case);
        }
    }

    fn statement(&mut self, line: usize, keyword: &str, args: &[&str]) -> Result<(), String> {
        if keyword == "case" {
            let [name] = exact(keyword, args, "a case name")?;
            check_name(name, "case name")?;
            self.finish_case();
            self.cur = CaseBuilder::new(self.file, name.to_string(), line, false);
            return Ok(());
        }
        let c = &mut self.cur;
        if !c.has_statements {
            c.has_statements = true;
            if c.implicit {
                c.case.line = line;
            }
        }
        if let Some(ty) = LockType::from_name(keyword) {
            return declaration(c, line, ty, args);
        }
        if keyword.starts_with("ww_") {
            return ww_statement(c, line, keyword, args);
        }
        if let Some((read, trylock, might)) = acquire_kind(keyword) {
            return acquire(c, line, keyword, args, read, trylock, might);
        }
        let simple = match keyword {
            "irq_disable" => Some(Op::IrqDisable),
            "irq_enable" => Some(Op::IrqEnable),
            "bh_disable" => Some(Op::BhDisable),
            "bh_enable" => Some(Op::BhEnable),
            "hardirq_enter" => Some(Op::HardirqEnter),
            "hardirq_exit" => Some(Op::HardirqExit),
            "softirq_enter" => Some(Op::SoftirqEnter),
            "softirq_exit" => Some(Op::SoftirqExit),
            "hardirq_threaded" => Some(Op::HardirqThreaded),
            "non_block_start" => Some(Op::NonBlockStart),
            "non_block_end" => Some(Op::NonBlockEnd),
            "might_sleep" => Some(Op::MightSleep),
            "exit" => Some(Op::Exit),
            _ => None,
        };
        if let Some(op) = simple {
            let [] = exact(keyword, args, "no argument")?;
            c.push(line, op);
            return Ok(());
        }
        let one_instance = match keyword {
            "unlock" => Some(Op::Unlock as fn(usize) -> Op),
            "downgrade" => Some(Op::Downgrade as fn(usize) -> Op),
            "init" => Some(Op::Init as fn(usize) -> Op),
            _ => None,
        };
        if let Some(make) = one_instance {
            let [name] = exact(keyword, args, "an instance")?;
            let inst = c.instance(name)?;
            if keyword == "unlock" {
                // `mutex_unlock` of a ww mutex's base: it stays bound to its context.
                if let Some(m) = c.ww.mutexes.get_mut(&inst) {
                    m.holder = None;
                }
            }
            c.push(line, make(inst));
            return Ok(());
        }
        let assert = match keyword {
            "assert_held" => Some((true, None)),
            "assert_held_read" => Some((true, Some(ReadKind::Shared))),
            "assert_held_write" => Some((true, Some(ReadKind::Exclusive))),
            "assert_not_held" => Some((false, None)),
            _ => None,
        };
        if let Some((held, want)) = assert {
            let [name] = exact(keyword, args, "an instance")?;
            let inst = c.instance(name)?;
            c.push(line, Op::Assert { inst, held, want });
            return Ok(());
        }
        let scope = match keyword {
            "memalloc_nofs_save" => Some((Scope::Nofs, true)),
            "memalloc_nofs_restore" => Some((Scope::Nofs, false)),
            "memalloc_noio_save" => Some((Scope::Noio, true)),
            "memalloc_noio_restore" => Some((Scope::Noio, false)),
            "memalloc_noreclaim_save" => Some((Scope::Noreclaim, true)),
            "memalloc_noreclaim_restore" => Some((Scope::Noreclaim, false)),
            _ => None,
        };
        if let Some((scope, save)) = scope {
            let [] = exact(keyword, args, "no argument")?;
            let depth = &mut c.state().scopes[scope as usize];
            if save {
                *depth += 1;
                c.push(line, Op::MemallocSave(scope));
            } else {
                if *depth == 0 {
                    let save_kw = keyword.replace("_restore", "_save");
                    return Err(format!(
                        "`{keyword}` without a matching `{save_kw}` in task `{}`",
                        c.task_name()
                    ));
                }
                *depth -= 1;
                c.push(line, Op::MemallocRestore(scope));
            }
            return Ok(());
        }
        match keyword {
            "thread" => {
                let (name, pid) = match args {
                    [name] => (*name, None),
                    [name, pid] => {
                        let Some(v) = pid.strip_prefix("pid=") else {
                            return Err(format!(
                                "unexpected argument `{pid}` to `thread` (expected pid=N)"
                            ));
                        };
                        let pid = v
                            .parse::<u32>()
                            .map_err(|_| format!("bad pid `{v}`: expected a number"))?;
                        (*name, Some(pid))
                    }
                    _ => return Err(count_error(keyword, args, "a task name and optional pid=N")),
                };
                check_name(name, "task name")?;
                let t = c.task(name, pid)?;
                c.current = t;
                c.push(line, Op::Thread(t));
            }
            "call" => {
                let [f] = exact(keyword, args, "a function name")?;
                check_name(f, "function name")?;
                c.state().call_depth += 1;
                c.push(line, Op::Call(f.to_string()));
            }
            "ret" => {
                let [] = exact(keyword, args, "no argument")?;
                let st = c.state();
                if st.call_depth == 0 {
                    return Err(format!(
                        "`ret` with an empty call stack in task `{}`",
                        c.task_name()
                    ));
                }
                st.call_depth -= 1;
                c.push(line, Op::Ret);
            }
            "set_subclass" => {
                let [name, n] = exact(keyword, args, "an instance and a subclass")?;
                let inst = c.instance(name)?;
                let sub = subclass(n)?;
                c.push(line, Op::SetSubclass(inst, sub));
            }
            "alloc" | "fs_reclaim_acquire" | "fs_reclaim_release" => {
                let [flags] = exact(keyword, args, "allocation flags")?;
                let mask = gfp::parse(flags)?;
                let op = match keyword {
                    "alloc" => Op::Alloc(mask),
                    "fs_reclaim_acquire" => Op::FsReclaimAcquire(mask),
                    _ => Op::FsReclaimRelease(mask),
                };
                c.push(line, op);
            }
            "option" => {
                let [opt] = exact(keyword, args, "an option")?;
                let op = match opt {
                    "raw_lock_nesting" => Op::RawLockNesting,
                    "fs_reclaim=legacy" => Op::LegacyFsReclaim(true),
                    "fs_reclaim=current" => Op::LegacyFsReclaim(false),
                    _ => {
                        return Err(format!(
                            "unknown option `{opt}` (expected raw_lock_nesting, \
                             fs_reclaim=legacy or fs_reclaim=current)"
                        ))
                    }
                };
                c.push(line, op);
            }
            "expect" => {
                let [kind] = exact(keyword, args, "a report kind or `none`")?;
                if kind == "none" {
                    if let Some(k) = c.case.expected.first() {
                        return Err(format!("`expect none` in a case that expects `{k}`"));
                    }
                    c.expect_none = Some(line);
                } else {
                    let k = ReportKind::from_name(kind).ok_or_else(|| {
                        let known: Vec<&str> = ReportKind::ALL.iter().map(|k| k.name()).collect();
                        format!(
                            "unknown report kind `{kind}` (expected none, {})",
                            known.join(", ")
                        )
                    })?;
                    if let Some(at) = c.expect_none {
                        return Err(format!(
                            "`expect {k}` in a case that says `expect none` (line {at})"
                        ));
                    }
                    c.case.expected.push(k);
                }
            }
            _ => return Err(unknown_statement(keyword)),
        }
        Ok(())
    }
}

/// `lock`, `trylock_shared`, ...: (read kind, trylock, might_lock).
fn acquire_kind(keyword: &str) -> Option<(ReadKind, bool, bool)> {
    Some(match keyword {
        "lock" => (ReadKind::Exclusive, false, false),
        "lock_shared" => (ReadKind::Shared, false, false),
        "lock_shared_recursive" => (ReadKind::SharedRecursive, false, false),
        "trylock" => (ReadKind::Exclusive, true, false),
        "trylock_shared" => (ReadKind::Shared, true, false),
        "trylock_shared_recursive" => (ReadKind::SharedRecursive, true, false),
        "might_lock" => (ReadKind::Exclusive, false, true),
        "might_lock_shared" => (ReadKind::Shared, false, true),
        _ => return None,
    })
}

fn acquire(
    c: &mut CaseBuilder,
    line: usize,
    keyword: &str,
    args: &[&str],
    read: ReadKind,
    trylock: bool,
    might: bool,
) -> Result<(), String> {
    let Some((name, rest)) = args.split_first() else {
        return Err(count_error(
            keyword,
            args,
            "an instance and optional sub=N, nest=Y",
        ));
    };
    if rest.len() > 2 {
        return Err(count_error(
            keyword,
            args,
            "an instance and optional sub=N, nest=Y",
        ));
    }
    let inst = c.instance(name)?;
    let mut sub = None;
    let mut nest = None;
    for arg in rest {
        if let Some(v) = arg.strip_prefix("sub=") {
            if sub.is_some() {
                return Err(format!("`sub=` given twice to `{keyword}`"));
            }
            sub = Some(subclass(v)?);
        } else if let Some(v) = arg.strip_prefix("nest=") {
            if nest.is_some() {
                return Err(format!("`nest=` given twice to `{keyword}`"));
            }
            nest = Some(c.instance(v)?);
        } else {
            return Err(format!(
                "unexpected argument `{arg}` to `{keyword}` (expected sub=N or nest=Y)"
            ));
        }
    }
    if !might {
        // `mutex_lock` of a ww mutex's base: held, without a context.
        let task = c.current;
        if let Some(m) = c.ww.mutexes.get_mut(&inst) {
            m.holder.get_or_insert((task, None));
        }
    }
    c.push(
        line,
        Op::Acquire {
            inst,
            read,
            trylock,
            subclass: sub.unwrap_or(0),
            nest,
            might,
        },
    );
    Ok(())
}

/// The wound/wait statements: `ww_class`, `ww_mutex`, `ww_ctx`, `ww_acquire_init|done|fini`,
/// `ww_lock`, `ww_lock_slow`, `ww_trylock`, `ww_unlock`, `ww_acquired`.
fn ww_statement(
    c: &mut CaseBuilder,
    line: usize,
    keyword: &str,
    args: &[&str],
) -> Result<(), String> {
    match keyword {
        "ww_class" => {
            let [name, kind] = exact(keyword, args, "a class name and wound_wait or wait_die")?;
            check_name(name, "ww class")?;
            let kind = match kind {
                "wound_wait" => WwKind::WoundWait,
                "wait_die" => WwKind::WaitDie,
                _ => {
                    return Err(format!(
                        "unknown ww class kind `{kind}` (expected wound_wait or wait_die)"
                    ))
                }
            };
            if c.ww.classes.contains_key(name) {
                return Err(format!(
                    "ww class `{name}` is already declared in this case"
                ));
            }
            let index = c.ww.classes.len() + 1;
            c.ww.classes.insert(
                name.to_string(),
                WwClassSim {
                    index,
                    kind,
                    stamps: 0,
                },
            );
        }
        "ww_mutex" | "ww_ctx" => {
            let [name, class] = exact(keyword, args, "an instance and a ww class")?;
            check_name(name, "instance")?;
            let Some(wc) = c.ww.classes.get(class) else {
                return Err(format!("undeclared ww class `{class}`"));
            };
            let (index, kind) = (wc.index, wc.kind);
            if keyword == "ww_mutex" {
                let lock_class = format!("{class}_mutex");
                c.declare(line, LockType::Mutex, name, Some(&lock_class), None)?;
                let inst = c.instance(name)?;
                c.ww.mutexes.insert(
                    inst,
                    WwMutexSim {
                        class: index,
                        kind,
                        holder: None,
                        bound: None,
                    },
                );
            } else {
                c.declare(
                    line,
                    LockType::Map,
                    name,
                    Some(&format!("{class}_acquire")),
                    None,
                )?;
                let inst = c.instance(name)?;
                // The fake first-lock map of `ww_acquire_init`; `#` cannot be in a written
                // name, so it cannot clash.
                let first = format!("{name}#first");
                c.declare(
                    line,
                    LockType::Mutex,
                    &first,
                    Some(&format!("{class}_mutex")),
                    None,
                )?;
                let first = c.instances[&first];
                c.ww.ctxs.insert(
                    inst,
                    WwCtxSim {
                        class: index,
                        first,
                        stamp: None,
                        acquired: 0,
                        wounded: false,
                    },
                );
            }
        }
        "ww_acquire_init" => {
            let (name, stamp) = match args {
                [name] => (*name, None),
                [name, st] => {
                    let Some(v) = st.strip_prefix("stamp=") else {
                        return Err(format!(
                            "unexpected argument `{st}` to `{keyword}` (expected stamp=N)"
                        ));
                    };
                    let n = v
                        .parse::<u64>()
                        .map_err(|_| format!("bad stamp `{v}`: expected a number"))?;
                    (*name, Some(n))
                }
                _ => return Err(count_error(keyword, args, "a context and optional stamp=N")),
            };
            let inst = ww_ctx_instance(c, name)?;
            let ctx = &c.ww.ctxs[&inst];
            let (class, first) = (ctx.class, ctx.first);
            let wc =
                c.ww.classes
                    .values_mut()
                    .find(|k| k.index == class)
                    .ok_or("ww class of the context is gone")?;
            wc.stamps += 1;
            let stamp = stamp.unwrap_or(wc.stamps);
            let ctx = c.ww.ctxs.get_mut(&inst).ok_or("context is gone")?;
            ctx.stamp = Some(stamp);
            ctx.acquired = 0;
            ctx.wounded = false;
            c.push(
                line,
                Op::WwInit {
                    ctx: inst,
                    first,
                    class,
                },
            );
        }
        "ww_acquire_done" | "ww_acquire_fini" => {
            let [name] = exact(keyword, args, "a context")?;
            let inst = ww_ctx_inited(c, keyword, name)?;
            c.push(
                line,
                if keyword == "ww_acquire_done" {
                    Op::WwDone(inst)
                } else {
                    Op::WwFini(inst)
                },
            );
        }
        "ww_acquired" => {
            let [name, n] = exact(keyword, args, "a context and a count")?;
            let inst = ww_ctx_inited(c, keyword, name)?;
            let n = n
                .parse::<u32>()
                .map_err(|_| format!("bad count `{n}`: expected a number"))?;
            if let Some(ctx) = c.ww.ctxs.get_mut(&inst) {
                ctx.acquired = n;
            }
            c.push(line, Op::WwSetAcquired(inst, n));
        }
        "ww_lock" | "ww_lock_slow" | "ww_trylock" => {
            let (name, ctx_name) = match (keyword, args) {
                ("ww_lock_slow", [name, ctx]) => (*name, Some(*ctx)),
                ("ww_lock_slow", _) => {
                    return Err(count_error(keyword, args, "a ww mutex and a context"))
                }
                (_, [name]) => (*name, None),
                (_, [name, ctx]) => (*name, Some(*ctx)),
                _ => {
                    return Err(count_error(
                        keyword,
                        args,
                        "a ww mutex and an optional context",
                    ))
                }
            };
            let inst = ww_mutex_instance(c, name)?;
            let ctx = match ctx_name {
                Some(n) => Some(ww_ctx_inited(c, keyword, n)?),
                None => None,
            };
            let mode = match keyword {
                "ww_lock" => WwLockMode::Lock,
                "ww_lock_slow" => WwLockMode::Slow,
                _ => WwLockMode::Try,
            };
            let Some(outcome) = ww_simulate(c, keyword, name, inst, ctx, mode)? else {
                // A failed trylock: no event.
                return Ok(());
            };
            let class = c.ww.mutexes[&inst].class;
            c.push(
                line,
                Op::WwLock {
                    inst,
                    class,
                    ctx,
                    mode,
                    outcome,
                },
            );
        }
        "ww_unlock" => {
            let [name] = exact(keyword, args, "a ww mutex")?;
            let inst = ww_mutex_instance(c, name)?;
            let m = c.ww.mutexes.get_mut(&inst).ok_or("mutex is gone")?;
            let owner = m.bound.take();
            m.holder = None;
            if let Some(ctx) = owner.and_then(|o| c.ww.ctxs.get_mut(&o)) {
                ctx.acquired = ctx.acquired.saturating_sub(1);
            }
            c.push(line, Op::WwUnlock { inst, owner });
        }
        _ => return Err(unknown_statement(keyword)),
    }
    Ok(())
}

fn ww_mutex_instance(c: &CaseBuilder, name: &str) -> Result<usize, String> {
    let inst = c.instance(name)?;
    if c.ww.mutexes.contains_key(&inst) {
        Ok(inst)
    } else {
        Err(format!("`{name}` is not a ww_mutex"))
    }
}

fn ww_ctx_instance(c: &CaseBuilder, name: &str) -> Result<usize, String> {
    let inst = c.instance(name)?;
    if c.ww.ctxs.contains_key(&inst) {
        Ok(inst)
    } else {
        Err(format!("`{name}` is not a ww_ctx"))
    }
}

fn ww_ctx_inited(c: &CaseBuilder, keyword: &str, name: &str) -> Result<usize, String> {
    let inst = ww_ctx_instance(c, name)?;
    if c.ww.ctxs[&inst].stamp.is_none() {
        return Err(format!(
            "`{keyword}` with context `{name}` before its `ww_acquire_init`"
        ));
    }
    Ok(inst)
}

/// What a ww lock of `inst` does now; `None` for a trylock that fails.
fn ww_simulate(
    c: &mut CaseBuilder,
    keyword: &str,
    name: &str,
    inst: usize,
    ctx: Option<usize>,
    mode: WwLockMode,
) -> Result<Option<WwOutcome>, String> {
    let task = c.current;
    let (holder, bound, kind) = {
        let m = &c.ww.mutexes[&inst];
        (m.holder, m.bound, m.kind)
    };
    if ctx.is_some() && bound == ctx && mode != WwLockMode::Try {
        return Ok(Some(WwOutcome::Already));
    }
    if let Some(ctx) = ctx.and_then(|x| c.ww.ctxs.get_mut(&x)) {
        if ctx.acquired == 0 {
            ctx.wounded = false;
        }
    }
    let Some((holder_task, holder_ctx)) = holder else {
        let m = c.ww.mutexes.get_mut(&inst).ok_or("mutex is gone")?;
        m.holder = Some((task, ctx));
        let stale = ctx.is_some() && bound.is_some();
        if ctx.is_some() {
            m.bound = ctx;
        }
        if let Some(x) = ctx.and_then(|x| c.ww.ctxs.get_mut(&x)) {
            x.acquired += 1;
        }
        return Ok(Some(WwOutcome::Acquired { stale }));
    };
    if mode == WwLockMode::Try {
        return Ok(None);
    }
    let holder_stamp = holder_ctx
        .and_then(|h| c.ww.ctxs.get(&h))
        .and_then(|h| h.stamp);
    let v = match ctx.and_then(|x| c.ww.ctxs.get(&x)) {
        Some(x) => verdict(
            kind,
            x.stamp.unwrap_or(0),
            x.acquired,
            x.wounded,
            holder_stamp,
        ),
        None => Verdict::Wait { wound: false },
    };
    match v {
        // Also for `ww_lock_slow`, which, as the kernel's, ignores what the lock returns.
        Verdict::BackOff => Ok(Some(WwOutcome::BackOff)),
        Verdict::Wait { .. } => {
            let who = c
                .case
                .tasks
                .get(holder_task)
                .map_or("?", |t| t.name.as_str());
            Err(format!(
                "`{keyword} {name}` would wait for task `{who}`, which holds `{name}`: a replay \
                 cannot block (release it first, or let the wound/wait rules make this context \
                 back off)"
            ))
        }
    }
}

fn declaration(
    c: &mut CaseBuilder,
    line: usize,
    ty: LockType,
    args: &[&str],
) -> Result<(), String> {
    let usage = "an instance, an optional class and an optional wait=";
    let Some((name, rest)) = args.split_first() else {
        return Err(count_error(ty.name(), args, usage));
    };
    check_name(name, "instance")?;
    let mut class = None;
    let mut wait = None;
    for (i, arg) in rest.iter().enumerate() {
        if let Some(spec) = arg.strip_prefix("wait=") {
            if wait.is_some() {
                return Err(format!("`wait=` given twice to `{ty}`"));
            }
            wait = Some(wait_types(spec)?);
        } else if i == 0 {
            check_name(arg, "class")?;
            class = Some(*arg);
        } else {
            return Err(count_error(ty.name(), args, usage));
        }
    }
    if rest.len() > 2 {
        return Err(count_error(ty.name(), args, usage));
    }
    c.declare(line, ty, name, class, wait)
}

/// `INNER` or `OUTER:INNER`, as (inner, outer); outer `Inv` means "same as inner".
fn wait_types(spec: &str) -> Result<(WaitType, WaitType), String> {
    let one = |s: &str| {
        WaitType::parse(s).ok_or_else(|| {
            format!("unknown wait type `{s}` (expected inv, free, spin, config or sleep)")
        })
    };
    match spec.split_once(':') {
        Some((outer, inner)) => Ok((one(inner)?, one(outer)?)),
        None => Ok((one(spec)?, WaitType::Inv)),
    }
}

fn wait_spelling(inner: WaitType, outer: WaitType) -> String {
    if outer == WaitType::Inv {
        format!("wait={inner}")
    } else {
        format!("wait={outer}:{inner}")
    }
}

fn subclass(s: &str) -> Result<u8, String> {
    match s.parse::<u8>() {
        Ok(n) if n < MAX_SUBCLASSES => Ok(n),
        _ => Err(format!(
            "bad subclass `{s}`: expected a number from 0 to {}",
            MAX_SUBCLASSES - 1
        )),
    }
}

/// Names are `[A-Za-z0-9_&>.:/-]+`.
fn check_name(name: &str, what: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_&>.:/-".contains(c));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "bad {what} `{}`: names are made of A-Z a-z 0-9 _ & > . : / -",
            name.escape_debug()
        ))
    }
}

const UNKNOWN: &str = "unknown statement";

/// The error of an unknown statement. The word is echoed only if it looks like a statement
/// keyword (a mistyped one), never if it looks like the content of some other kind of file.
fn unknown_statement(keyword: &str) -> String {
    let keyword_like = keyword.len() <= 40
        && keyword
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if keyword_like {
        format!("{UNKNOWN} `{keyword}`")
    } else {
        format!(
            "{UNKNOWN} (a line starting with {} bytes that are not a keyword)",
            keyword.len()
        )
    }
}

/// The arguments as an array of exactly `N`, or a count error.
fn exact<'a, const N: usize>(
    keyword: &str,
    args: &[&'a str],
    expected: &str,
) -> Result<[&'a str; N], String> {
    <[&str; N]>::try_from(args).map_err(|_| count_error(keyword, args, expected))
}

fn count_error(keyword: &str, args: &[&str], expected: &str) -> String {
    let n = args.len();
    format!(
        "wrong number of arguments to `{keyword}`: it takes {expected}, got {n} argument{}",
        if n == 1 { "" } else { "s" }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> (usize, String) {
        let e = parse("t.lockdep", text).expect_err("should be malformed");
        assert_eq!(e.file, "t.lockdep");
        (e.line, e.message)
    }

    fn assert_err(text: &str, line: usize, needle: &str) {
        let (l, m) = err(text);
        assert_eq!(l, line, "wrong line for {m:?}");
        assert!(m.contains(needle), "{m:?} does not contain {needle:?}");
    }

    #[test]
    fn comments_blank_lines_and_line_numbers() {
        let text = "# a comment\n\n   \t\nmutex A   # trailing comment\n\tlock A\n\nlock B\n";
        assert_err(text, 7, "undeclared instance `B`");
        let s = parse("t.lockdep", "# only comments\n\n").expect("ok");
        assert!(s.cases.is_empty());
    }

    #[test]
    fn statements_before_the_first_case_are_named_after_the_file() {
        let s = parse("dir/abba.lockdep", "\nmutex A\ncase second\nmutex A\n").expect("ok");
        let names: Vec<_> = s.cases.iter().map(|c| (c.name.as_str(), c.line)).collect();
        assert_eq!(names, [("abba", 2), ("second", 3)]);
        let s = parse("x.lockdep", "# header\ncase only\n").expect("ok");
        assert_eq!(s.cases.len(), 1);
        assert_eq!(s.cases[0].name, "only");
    }

    #[test]
    fn kernel_style_names() {
        let text = "rwsem &mapping->i_mmap_rwsem\nmutex m1 &sb->s_type->i_mutex_key/1\n\
                    lock_shared &mapping->i_mmap_rwsem\nlock m1\n";
        let s = parse("t.lockdep", text).expect("ok");
        let c = &s.cases[0];
        assert_eq!(c.instances[2].name, "&mapping->i_mmap_rwsem");
        assert_eq!(c.classes[3], "&sb->s_type->i_mutex_key/1");
        assert_eq!(c.steps.len(), 2);
    }

    #[test]
    fn declarations_share_classes_and_wait_types() {
        let text = "spin a lk\nspin b lk\nraw_spin r wait=free\nmap m x wait=sleep:spin\n";
        let c = &parse("t.lockdep", text).expect("ok").cases[0];
        assert_eq!(c.instances[2].class, c.instances[3].class);
        assert_eq!(c.instances[2].inner, WaitType::Config);
        assert_eq!(c.instances[4].inner, WaitType::Free);
        assert_eq!(
            (c.instances[5].inner, c.instances[5].outer),
            (WaitType::Spin, WaitType::Sleep)
        );
        // Instances without CLASS are their own class, named after them.
        assert_eq!(c.classes[c.instances[4].class], "r");
    }

    #[test]
    fn unknown_statement() {
        assert_err(
            "mutex A\nfrobnicate A\n",
            2,
            "unknown statement `frobnicate`",
        );
    }

    #[test]
    fn wrong_argument_counts() {
        assert_err(
            "mutex A\nunlock\n",
            2,
            "wrong number of arguments to `unlock`",
        );
        assert_err("mutex A\nunlock A A\n", 2, "got 2 arguments");
        assert_err(
            "irq_disable now\n",
            1,
            "wrong number of arguments to `irq_disable`",
        );
        assert_err("mutex\n", 1, "wrong number of arguments to `mutex`");
        assert_err("mutex A c wait=sleep x\n", 1, "wrong number of arguments");
        assert_err("case\n", 1, "wrong number of arguments to `case`");
        assert_err("mutex A\nlock\n", 2, "wrong number of arguments to `lock`");
        assert_err("mutex A\nlock A sub=1 nest=A sub=2\n", 2, "wrong number");
        assert_err("mutex A\nset_subclass A\n", 2, "wrong number");
        assert_err("expect\n", 1, "wrong number of arguments to `expect`");
        assert_err(
            "thread a pid=1 x\n",
            1,
            "wrong number of arguments to `thread`",
        );
        assert_err("alloc\n", 1, "wrong number of arguments to `alloc`");
        assert_err("ret 1\n", 1, "wrong number of arguments to `ret`");
    }

    #[test]
    fn bad_names() {
        assert_err("mutex A$\n", 1, "bad instance `A$`");
        assert_err("mutex A cl@ss\n", 1, "bad class `cl@ss`");
        assert_err("case a+b\n", 1, "bad case name");
        assert_err("thread t!\n", 1, "bad task name");
        assert_err("call f+0x10/0x20\n", 1, "bad function name");
        assert_err("mutex A\nlock Å\n", 2, "bad instance");
    }

    #[test]
    fn undeclared_and_duplicate_instances() {
        assert_err("mutex A\nlock A nest=B\n", 2, "undeclared instance `B`");
        assert_err("mutex A\nmutex A\n", 2, "already declared");
        assert_err("map fs_reclaim\n", 1, "predeclared");
        // Declarations belong to their case.
        assert_err(
            "case one\nmutex A\ncase two\nlock A\n",
            4,
            "undeclared instance `A`",
        );
        assert!(parse("t", "case one\nmutex A\ncase two\nmutex A\n").is_ok());
    }

    #[test]
    fn one_type_per_class() {
        assert_err(
            "mutex a k\n\nspin b k\n",
            3,
            "class `k` is a mutex (line 1), not a spin",
        );
        assert_err("mutex k\nrwsem b k\n", 2, "not a rwsem");
        assert_err("spin fs_reclaim2 fs_reclaim\n", 1, "is a map (predeclared)");
        assert_err("spin a k\nspin b k wait=spin\n", 2, "wait types");
    }

    #[test]
    fn bad_subclasses() {
        assert_err("mutex A\nlock A sub=8\n", 2, "bad subclass `8`");
        assert_err("mutex A\nlock A sub=x\n", 2, "bad subclass `x`");
        assert_err("mutex A\nlock A sub=-1\n", 2, "bad subclass");
        assert_err(
            "mutex A\nlock A\nset_subclass A 99\n",
            3,
            "bad subclass `99`",
        );
        assert_err("mutex A\nlock A sub=1 sub=2\n", 2, "given twice");
        assert_err(
            "mutex A\nlock A level=2\n",
            2,
            "unexpected argument `level=2`",
        );
    }

    #[test]
    fn bad_wait_types() {
        assert_err("mutex A wait=sleepy\n", 1, "unknown wait type `sleepy`");
        assert_err("mutex A wait=sleep:\n", 1, "unknown wait type ``");
        assert_err("mutex A wait=x:spin\n", 1, "unknown wait type `x`");
    }

    #[test]
    fn bad_options() {
        assert_err("option fast\n", 1, "unknown option `fast`");
        assert_err("option fs_reclaim=new\n", 1, "unknown option");
        assert!(parse("t", "option raw_lock_nesting\noption fs_reclaim=legacy\n").is_ok());
    }

    #[test]
    fn bad_pids() {
        assert_err("thread t pid=x\n", 1, "bad pid `x`");
        assert_err("thread t pid=-3\n", 1, "bad pid");
        assert_err("thread t 12\n", 1, "unexpected argument `12`");
        assert_err("thread t pid=3\nthread t pid=4\n", 2, "already has pid=3");
        let s = parse("t", "thread a\nthread b pid=42\nthread a\nthread c\n").expect("ok");
        let pids: Vec<_> = s.cases[0]
            .tasks
            .iter()
            .map(|t| (t.name.as_str(), t.pid))
            .collect();
        assert_eq!(pids, [("main", 1), ("a", 2), ("b", 42), ("c", 4)]);
    }

    #[test]
    fn bad_expectations() {
        assert_err("expect deadlock\n", 1, "unknown report kind `deadlock`");
        assert_err("expect circular\nexpect none\n", 2, "expect none");
        assert_err("expect none\nexpect circular\n", 2, "expect none");
        let s = parse("t", "expect recursive\nexpect circular\n").expect("ok");
        assert_eq!(
            s.cases[0].expected,
            [ReportKind::Recursive, ReportKind::Circular]
        );
    }

    #[test]
    fn bad_gfp_flags() {
        assert_err(
            "alloc GFP_KERNEL|GFP_BOGUS\n",
            1,
            "unknown allocation flag `GFP_BOGUS`",
        );
        assert_err("fs_reclaim_acquire GFP_KERNEL|\n", 1, "empty flag");
        assert!(parse("t", "alloc GFP_NOFS|__GFP_NOLOCKDEP\n").is_ok());
    }

    #[test]
    fn ret_with_an_empty_call_stack() {
        assert_err(
            "call f\nret\nret\n",
            3,
            "`ret` with an empty call stack in task `main`",
        );
        // Call stacks are per task.
        assert_err("call f\nthread t\nret\n", 3, "in task `t`");
        assert!(parse("t", "call f\nthread t\nthread main\nret\n").is_ok());
    }

    #[test]
    fn restore_without_save() {
        assert_err(
            "memalloc_nofs_restore\n",
            1,
            "without a matching `memalloc_nofs_save`",
        );
        assert_err(
            "memalloc_nofs_save\nmemalloc_noio_restore\n",
            2,
            "`memalloc_noio_restore` without",
        );
        assert_err(
            "memalloc_noreclaim_save\nthread t\nmemalloc_noreclaim_restore\n",
            3,
            "in task `t`",
        );
        let ok = "memalloc_nofs_save\nmemalloc_nofs_save\nmemalloc_nofs_restore\n\
                  memalloc_nofs_restore\n";
        assert!(parse("t", ok).is_ok());
        assert_err(&format!("{ok}memalloc_nofs_restore\n"), 5, "without");
    }

    #[test]
    fn every_acquire_form_parses() {
        let text = "rwlock A\nrwlock N\nlock N\nlock A sub=1 nest=N\nlock_shared A\n\
                    lock_shared_recursive A\ntrylock A\ntrylock_shared A\n\
                    trylock_shared_recursive A\nmight_lock A\nmight_lock_shared A sub=2\n";
        let c = &parse("t", text).expect("ok").cases[0];
        assert_eq!(c.steps.len(), 9);
        assert!(matches!(
            c.steps[1].op,
            Op::Acquire {
                subclass: 1,
                nest: Some(3),
                trylock: false,
                might: false,
                ..
            }
        ));
        assert_eq!(c.steps[1].line, 4);
    }

    #[test]
    fn malformed_ww_statements_name_their_line() {
        let decl = "ww_class c wait_die\nww_mutex o c\nww_mutex o2 c\nww_ctx t c\nww_ctx t2 c\n";
        assert_err(
            "ww_class c sometimes\n",
            1,
            "unknown ww class kind `sometimes`",
        );
        assert_err(
            "ww_class c wait_die\nww_class c wound_wait\n",
            2,
            "already declared",
        );
        assert_err("ww_mutex o nope\n", 1, "undeclared ww class `nope`");
        assert_err(
            "ww_class c wait_die\nww_mutex o\n",
            2,
            "wrong number of arguments",
        );
        assert_err(
            &format!("{decl}ww_lock o t\n"),
            6,
            "before its `ww_acquire_init`",
        );
        assert_err(&format!("{decl}ww_lock t\n"), 6, "`t` is not a ww_mutex");
        assert_err(
            &format!("{decl}ww_acquire_init o\n"),
            6,
            "`o` is not a ww_ctx",
        );
        assert_err(
            &format!("{decl}ww_acquire_init t stamp=x\n"),
            6,
            "bad stamp `x`",
        );
        assert_err(
            &format!("{decl}ww_acquire_init t\nww_lock_slow o\n"),
            7,
            "wrong number",
        );
        assert_err(
            &format!("{decl}ww_acquire_init t\nww_acquired t -1\n"),
            7,
            "bad count",
        );
        assert_err(
            &format!("{decl}ww_frobnicate o\n"),
            6,
            "unknown statement `ww_frobnicate`",
        );
        // A lock that would have to wait: the replay cannot block.
        let wait = format!(
            "{decl}thread a\nww_acquire_init t\nww_lock o t\nthread b\nww_acquire_init t2\n\
             ww_lock o2 t2\nww_lock o t2\n"
        );
        // t2 is younger and holds o2: wait-die makes it back off, which is fine...
        assert!(parse("t.lockdep", &wait).is_ok());
        // ...but t, older, would wait for o2.
        assert_err(
            &format!("{wait}thread a\nww_lock o2 t\n"),
            14,
            "would wait for task `b`",
        );
        assert_err(
            &format!("{decl}ww_lock o\nthread b\nww_lock o\n"),
            8,
            "would wait",
        );
    }

    #[test]
    fn ww_outcomes_follow_the_simulated_owners() {
        let s = parse(
            "t.lockdep",
            "ww_class c wait_die\nww_mutex o c\nww_ctx t c\nww_ctx t2 c\n\
             thread a\nww_acquire_init t2\nww_lock o t2\nww_lock o t2\n\
             thread b\nww_acquire_init t\nww_trylock o\n",
        )
        .expect("well-formed");
        let outcomes: Vec<WwOutcome> = s.cases[0]
            .steps
            .iter()
            .filter_map(|st| match &st.op {
                Op::WwLock { outcome, .. } => Some(*outcome),
                _ => None,
            })
            .collect();
        // The failed trylock is no event at all.
        assert_eq!(
            outcomes,
            vec![WwOutcome::Acquired { stale: false }, WwOutcome::Already]
        );
    }

    #[test]
    fn non_utf8_lines_name_their_line_and_byte() {
        let e = parse_reader("t.lockdep", &b"mutex A\nlock A\xff\n"[..]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "t.lockdep:2: not UTF-8 text (byte 14 of the file)"
        );
        let e = parse_reader("t.lockdep", &b"# \xc3\n"[..]).unwrap_err();
        assert_eq!(e.line, 1);
        assert!(e.message.contains("byte 2 "), "{e}");
    }

    /// Lines are cut in the reader's buffer, and copied when a refill splits one: the same text
    /// parses the same, however the reads fall, errors included.
    #[test]
    fn lines_split_by_reads_parse_as_whole_ones() {
        let texts: [&[u8]; 4] = [
            b"case a\nmutex A\r\nlock A # c\n\n  lock A\t\nexpect recursive",
            b"mutex A\nlock A\xff\n",
            b"mutex A\nlock \xc3\xa9\n",
            b"case \xc3\xa9\nthread t pid=3\ncall f\nret\nret\n",
        ];
        for text in texts {
            let whole = format!("{:?}", parse_reader("t.lockdep", text));
            for capacity in [1, 2, 3, 5, 8, 64] {
                let r = std::io::BufReader::with_capacity(capacity, text);
                assert_eq!(format!("{:?}", parse_reader("t.lockdep", r)), whole);
                let r = std::io::BufReader::with_capacity(capacity, text);
                let checked = validate("t.lockdep", r).map_err(|e| e.to_string());
                let parsed = parse_reader("t.lockdep", text).map(|s| s.cases.len());
                assert_eq!(checked, parsed.map_err(|e| e.to_string()));
            }
        }
    }

    #[test]
    fn lines_longer_than_the_limit_are_errors() {
        // `MAX_LINE` bytes with the `\n` is a line; one more byte is too long.
        let line = |len: usize| {
            let mut t = b"mutex A\n#".to_vec();
            t.resize(8 + len - 1, b'#');
            t.extend_from_slice(b"\nlock A\n");
            t
        };
        for capacity in [1 << 16, 1000] {
            let ok = line(MAX_LINE);
            let r = std::io::BufReader::with_capacity(capacity, &ok[..]);
            assert!(parse_reader("t.lockdep", r).is_ok());
            let long = line(MAX_LINE + 1);
            let r = std::io::BufReader::with_capacity(capacity, &long[..]);
            let e = parse_reader("t.lockdep", r).unwrap_err();
            assert_eq!(
                e.to_string(),
                format!("t.lockdep:2: line longer than {MAX_LINE} bytes (byte 8)")
            );
        }
    }

    #[test]
    fn another_kind_of_file_is_not_echoed() {
        let e = parse("x.lockdep", "root:x:0:0:secret:/root:/bin/bash\nmore\n").unwrap_err();
        assert_eq!(e.line, 1);
        assert!(e.message.starts_with("not a scenario file"), "{e}");
        assert!(
            !e.message.contains("secret") && !e.message.contains("root"),
            "{e}"
        );
        let e = parse("x.lockdep", "mutex A\nPassword=hunter2\n").unwrap_err();
        assert!(!e.message.contains("hunter2"), "{e}");
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let pieces: [&[u8]; 8] = [
            b"mutex A\n",
            b"lock A",
            b"\n",
            b"\r\n",
            b"\xff",
            b"\xc3",
            b" ",
            b"#",
        ];
        for _ in 0..2000 {
            let mut b = Vec::new();
            for _ in 0..next() % 40 {
                if next() % 3 == 0 {
                    b.push(next() as u8);
                } else {
                    b.extend_from_slice(pieces[(next() % 8) as usize]);
                }
            }
            let whole = parse_reader("f.lockdep", &b[..]);
            let checked = validate("f.lockdep", &b[..]);
            // The two agree: on the error, or on the number of cases.
            match (&whole, &checked) {
                (Ok(s), Ok(n)) => assert_eq!(s.cases.len(), *n),
                (Err(a), Err(b)) => assert_eq!(a, b),
                _ => panic!("parse {whole:?} but validate {checked:?}"),
            }
        }
    }
}
