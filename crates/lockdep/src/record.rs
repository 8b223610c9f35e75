//! Recording dependency graphs to disk as the engine finds them, and reading them back.
//!
//! Test runners such as `cargo nextest` run every test in its own process, so an inversion split
//! over two tests (`A -> B` in one, `B -> A` in the other) is invisible to any validator that
//! lives in one process. A [`Recorder`] is an [`Observer`] of an engine: it appends every new
//! class and dependency to a file of its own, *as the engine finds them*; `lockdep check` then
//! reads the recordings of many processes ([`read_file`]), merges them ([`Merged`]) and feeds them
//! through the engine's own cycle rules ([`Merged::check`], which calls
//! [`Engine::import_dependency`]: the same strong-path search, not a copy of it).
//!
//! ## Turning it on
//!
//! - `LOCKDEP_RECORD=DIR` in the environment: the process-wide validator records into a new file
//!   in `DIR` (created if missing), named `EXE-PID-N.ldrec`. The validator asks
//!   [`observer_from_env`] when it is created.
//! - [`record_to`]: the same from code, before the first lock is taken.
//! - [`Recorder::create_in`] / [`Recorder::in_memory`] with [`Engine::with_observer`], for an
//!   engine of your own.
//!
//! ## What is recorded
//!
//! One record per new class (its stable id, printed name, key site, wait types) and one per new
//! or widened dependency: both classes' stable ids, the dependency-type bits (the full merged
//! set), the stack where it was first seen (symbolized at write time, as text, so it stays
//! readable after the binary is rebuilt or deleted), the task (thread name and id) and the test
//! name where known. The file starts with the process: id, executable, start time.
//!
//! The **test name** is the thread name of the task that created the dependency when the
//! process is a test binary (libtest runs each test on a thread named after it; nextest runs one
//! test per process the same way), or the test named by `--exact NAME` on the command line (the
//! way nextest starts a test). A process that is not a test binary (its executable is not in a
//! `deps/` directory and it has no `--exact` argument) records no test name.
//!
//! A dependency that closed a cycle *inside* the recording process was reported there and, as
//! the engine never adds such a dependency, is not told to observers: it is not in the
//! recording, and `lockdep check` finds the cycles *between* processes. Classes are recorded as
//! registered, so their usage bits are those of their first acquisition's start (none), and
//! chains are recorded only by [`Recorder::record_chains`].
//!
//! ## The loss bound
//!
//! Each record is written with one `write(2)` on a file opened for appending, *before* the
//! engine call that found the class or dependency returns (the observer runs inside the engine).
//! So a process killed by `SIGKILL`, an abort or a crash loses nothing that any of its lock
//! acquisitions had finished recording: at most the single record being written at the instant
//! of the kill, which then reads back as a *torn last record* and is skipped with a warning.
//! Data is not `fsync`ed: a crash of the whole machine can lose what the kernel had not yet
//! written back.
//!
//! ## File format (version 1)
//!
//! All integers are little-endian. A file is a 16-byte header, `LOCKDEPR`, the version (`u16`,
//! now 1), a `u16` and a `u32` reserved (zero), then frames:
//!
//! | bytes | field |
//! |---|---|
//! | 1 | sync byte `0xA5` |
//! | 1 | kind: 1 process, 2 class, 3 dependency, 4 chain |
//! | 4 | payload length (at most 4 MiB) |
//! | 2 | header check: the low 16 bits of the CRC-32 of the 6 bytes above |
//! | n | payload |
//! | 4 | CRC-32 of the header and the payload |
//!
//! Strings are a `u32` length and UTF-8 bytes; an optional value is a `0`/`1` byte and the value.
//! Payloads: *process* `pid u32, exe str, start_ms u64, lockdep_version str`; *class*
//! `stable_id u64, name str, site opt-str, wait_inner str, wait_outer str, usage u16`;
//! *dependency* `from u64, to u64, dep u8, distance u16, task str, tid u32, test opt-str,
//! has_stack u8, [frames u32, (function str, offset opt-u64, location opt-str)*]`; *chain*
//! `irq_context u8, count u32, stable_id u64*`. The first frame is always the process.
//!
//! Reading is strict: a frame that stops short at the end of the file (a process killed while
//! writing) is skipped with a warning; anything else — a bad header, a bad checksum, a field that
//! does not decode, an unknown version — is a [`RecordError`] naming the file and the byte
//! offset. The reader never panics on any input.
//!
//! ## Class identity across processes and builds
//!
//! Two processes mean the same class when the classes have the same
//! [`stable_id`](crate::ClassInfo::stable_id): a hash of the key's name, the key's source
//! location (`file:line:col` of the `Mutex::new` call or the `LockClassKey` static) and the
//! subclass. So two test binaries built from the same source agree on every class, and so do two
//! builds of unchanged code. Moving a lock's construction to another line, or renaming its key,
//! makes a **new** class: recordings made before the change still name the old class, which no
//! new recording will ever add an edge to. An inversion between old and new code is then not
//! found, and an old edge can never close a cycle with new ones: re-record after moving code
//! (delete the old recordings; `lockdep check` on a mix of builds is only as good as the overlap).
//! Classes of dynamic keys ([`LockClassKey::new_dynamic`](crate::LockClassKey::new_dynamic)) also
//! hash their creation order, and locks that are their own key have no site, so they are merged
//! by name only.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use crate::chain::ChainInfo;
use crate::class::{ClassId, ClassInfo};
use crate::engine::{Dependency, Engine, Observer};
use crate::graph::TaskRef;
use crate::report::Report;
use crate::stack::{self, Frame, StackTrace};
use crate::wait::WaitType;

/// The first 8 bytes of every recording.
pub const MAGIC: &[u8; 8] = b"LOCKDEPR";
/// The format version this crate writes and reads.
pub const VERSION: u16 = 1;
/// The conventional extension of a recording (`lockdep check DIR` reads files with it).
pub const EXTENSION: &str = "ldrec";
/// The largest payload a frame may have.
pub const MAX_PAYLOAD: u32 = 4 << 20;

const HEADER_LEN: usize = 16;
const FRAME_HEAD: usize = 8;
const SYNC: u8 = 0xA5;

const KIND_PROCESS: u8 = 1;
const KIND_CLASS: u8 = 2;
const KIND_DEP: u8 = 3;
const KIND_CHAIN: u8 = 4;

// ===== writing =====

/// Appends classes and dependencies to a recording as an engine finds them. Install it with
/// [`Engine::with_observer`]; it is a cheap handle (clones share the file).
///
/// ```
/// use lockdep::record::{self, Recorder};
/// use lockdep::{Acquire, Engine, LockMap, Options, Task};
///
/// let rec = Recorder::in_memory();
/// let engine = Engine::with_observer(Options::default(), Box::new(rec.clone()));
/// let a = LockMap::new(); // each construction site is a class
/// let b = LockMap::new();
/// let mut task = Task::new("main", 1);
/// engine.acquire(&mut task, &a, Acquire::exclusive(), lockdep::Site::Unknown);
/// engine.acquire(&mut task, &b, Acquire::exclusive(), lockdep::Site::Unknown);
///
/// let recording = record::read_bytes("memory", &rec.bytes()).unwrap();
/// assert_eq!(recording.classes.len(), 2);
/// assert_eq!(recording.dependencies.len(), 1);
/// ```
#[derive(Clone)]
pub struct Recorder {
    inner: Arc<Inner>,
}

struct Inner {
    path: Option<PathBuf>,
    state: Mutex<WriterState>,
}

enum Sink {
    File(File),
    Memory(Vec<u8>),
}

struct WriterState {
    sink: Sink,
    /// This engine's class ids, by stable id.
    stable: HashMap<ClassId, u64>,
    /// Dependency bits already written, per pair.
    deps: HashMap<(ClassId, ClassId), u8>,
    chains: HashSet<(u8, Vec<u64>)>,
    failed: bool,
    test_process: bool,
    exact_test: Option<String>,
}

impl fmt::Debug for Recorder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Recorder")
            .field("path", &self.inner.path)
            .finish_non_exhaustive()
    }
}

impl Recorder {
    /// A recorder writing to a new file `EXE-PID-N.ldrec` in `dir` (created if missing).
    pub fn create_in(dir: impl AsRef<Path>) -> io::Result<Recorder> {
        let dir = dir.as_ref();
        std::fs::create_dir_all(dir)?;
        let stem = exe_name();
        let pid = std::process::id();
        for n in 0..10_000u32 {
            let path = dir.join(format!("{stem}-{pid}-{n}.{EXTENSION}"));
            match OpenOptions::new().append(true).create_new(true).open(&path) {
                Ok(f) => return Recorder::start(Sink::File(f), Some(path)),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
        }
        Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            "no free recording file name",
        ))
    }

    /// A recorder writing to `path`, which must not exist.
    pub fn create(path: impl AsRef<Path>) -> io::Result<Recorder> {
        let path = path.as_ref();
        let f = OpenOptions::new()
            .append(true)
            .create_new(true)
            .open(path)?;
        Recorder::start(Sink::File(f), Some(path.to_path_buf()))
    }

    /// A recorder keeping the recording in memory (see [`Recorder::bytes`]).
    pub fn in_memory() -> Recorder {
        match Recorder::start(Sink::Memory(Vec::new()), None) {
            Ok(r) => r,
            // Writing to memory cannot fail; keep an empty recorder if it somehow did.
            Err(_) => Recorder {
                inner: Arc::new(Inner {
                    path: None,
                    state: Mutex::new(WriterState::new(Sink::Memory(Vec::new()))),
                }),
            },
        }
    }

    fn start(sink: Sink, path: Option<PathBuf>) -> io::Result<Recorder> {
        let mut st = WriterState::new(sink);
        let mut first = Vec::with_capacity(128);
        first.extend_from_slice(MAGIC);
        first.extend_from_slice(&VERSION.to_le_bytes());
        first.extend_from_slice(&[0; 6]);
        let mut p = Vec::new();
        put_u32(&mut p, std::process::id());
        put_str(
            &mut p,
            &std::env::current_exe().map_or_else(|_| exe_name(), |e| e.display().to_string()),
        );
        let ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        put_u64(&mut p, ms);
        put_str(&mut p, env!("CARGO_PKG_VERSION"));
        frame(&mut first, KIND_PROCESS, &p);
        st.write(&first)?;
        Ok(Recorder {
            inner: Arc::new(Inner {
                path,
                state: Mutex::new(st),
            }),
        })
    }

    /// The file written, if any.
    pub fn path(&self) -> Option<&Path> {
        self.inner.path.as_deref()
    }

    /// The bytes of an in-memory recording (empty for a file recorder).
    pub fn bytes(&self) -> Vec<u8> {
        match &self.lock().sink {
            Sink::Memory(v) => v.clone(),
            Sink::File(_) => Vec::new(),
        }
    }

    /// Appends the engine's validated chains not written yet (for `lockdep chains`). The engine
    /// tells observers about classes and dependencies, not chains: call this when the chains
    /// are wanted, e.g. at the end of a test.
    pub fn record_chains(&self, engine: &Engine) {
        let chains = engine.chains();
        let mut st = self.lock();
        for c in chains {
            st.chain(&c);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, WriterState> {
        self.inner.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl WriterState {
    fn new(sink: Sink) -> WriterState {
        let args: Vec<String> = std::env::args().collect();
        let exact_test = args
            .iter()
            .any(|a| a == "--exact")
            .then(|| args.iter().skip(1).find(|a| !a.starts_with('-')).cloned())
            .flatten();
        let test_process = exact_test.is_some()
            || std::env::current_exe().is_ok_and(|e| {
                e.parent()
                    .and_then(|p| p.file_name())
                    .is_some_and(|n| n == "deps")
            });
        WriterState {
            sink,
            stable: HashMap::new(),
            deps: HashMap::new(),
            chains: HashSet::new(),
            failed: false,
            test_process,
            exact_test,
        }
    }

    fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        match &mut self.sink {
            Sink::File(f) => f.write_all(bytes),
            Sink::Memory(v) => {
                v.extend_from_slice(bytes);
                Ok(())
            }
        }
    }

    fn emit(&mut self, kind: u8, payload: &[u8]) {
        if self.failed {
            return;
        }
        let mut buf = Vec::with_capacity(payload.len() + FRAME_HEAD + 4);
        frame(&mut buf, kind, payload);
        if let Err(e) = self.write(&buf) {
            self.failed = true;
            eprintln!("lockdep: recording stopped: cannot write the recording: {e}");
        }
    }

    fn test_name(&self, task: &TaskRef) -> Option<String> {
        if let Some(t) = &self.exact_test {
            return Some(t.clone());
        }
        (self.test_process && &*task.name != "main" && *task.name != *exe_name())
            .then(|| task.name.to_string())
    }

    fn chain(&mut self, c: &ChainInfo) {
        let ids: Option<Vec<u64>> = c
            .classes
            .iter()
            .map(|id| self.stable.get(id).copied())
            .collect();
        let Some(ids) = ids else { return };
        if !self.chains.insert((c.irq_context, ids.clone())) {
            return;
        }
        let mut p = Vec::new();
        put_u8(&mut p, c.irq_context);
        put_u32(&mut p, ids.len() as u32);
        for id in ids {
            put_u64(&mut p, id);
        }
        self.emit(KIND_CHAIN, &p);
    }
}

impl Observer for Recorder {
    fn usage_changed(&self, class: &ClassInfo) {
        // A class record again, with the new bits: readers merge records of one class.
        self.class_registered(class);
    }

    fn chain_validated(&self, chain: &crate::chain::ChainInfo) {
        self.lock().chain(chain);
    }

    fn class_registered(&self, class: &ClassInfo) {
        let mut st = self.lock();
        st.stable.insert(class.id, class.stable_id);
        let mut p = Vec::new();
        put_u64(&mut p, class.stable_id);
        put_str(&mut p, &class.name);
        put_opt_str(&mut p, class.site.as_deref());
        put_str(&mut p, &class.wait_inner.to_string());
        put_str(&mut p, &class.wait_outer.to_string());
        put_u16(&mut p, class.usage);
        st.emit(KIND_CLASS, &p);
    }

    fn dependency_recorded(&self, dep: &Dependency, from: &ClassInfo, to: &ClassInfo) {
        let mut st = self.lock();
        st.stable.insert(from.id, from.stable_id);
        st.stable.insert(to.id, to.stable_id);
        let old = st.deps.get(&(dep.from, dep.to)).copied();
        if old == Some(dep.dep) {
            return;
        }
        st.deps.insert((dep.from, dep.to), dep.dep);
        let mut p = Vec::new();
        put_u64(&mut p, from.stable_id);
        put_u64(&mut p, to.stable_id);
        put_u8(&mut p, dep.dep);
        put_u16(&mut p, dep.distance);
        put_str(&mut p, &dep.task.name);
        put_u32(&mut p, dep.task.pid);
        let test = st.test_name(&dep.task);
        put_opt_str(&mut p, test.as_deref());
        if old.is_none() {
            // The slow path: symbolize now, so the recording outlives the binary.
            put_u8(&mut p, 1);
            let frames = dep.stack.frames();
            put_u32(&mut p, frames.len() as u32);
            for f in &frames {
                put_str(&mut p, &f.function);
                match f.offset {
                    Some(o) => {
                        put_u8(&mut p, 1);
                        put_u64(&mut p, o as u64);
                    }
                    None => put_u8(&mut p, 0),
                }
                put_opt_str(&mut p, f.location.as_deref());
            }
        } else {
            put_u8(&mut p, 0);
        }
        st.emit(KIND_DEP, &p);
    }
}

fn exe_name() -> String {
    std::env::current_exe()
        .ok()
        .and_then(|e| e.file_name().map(|f| f.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "process".to_string())
}

fn frame(buf: &mut Vec<u8>, kind: u8, payload: &[u8]) {
    let start = buf.len();
    buf.push(SYNC);
    buf.push(kind);
    buf.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    let check = crc32fast::hash(&buf[start..start + 6]) as u16;
    buf.extend_from_slice(&check.to_le_bytes());
    buf.extend_from_slice(payload);
    let crc = crc32fast::hash(&buf[start..]);
    buf.extend_from_slice(&crc.to_le_bytes());
}

fn put_u8(p: &mut Vec<u8>, v: u8) {
    p.push(v);
}
fn put_u16(p: &mut Vec<u8>, v: u16) {
    p.extend_from_slice(&v.to_le_bytes());
}
fn put_u32(p: &mut Vec<u8>, v: u32) {
    p.extend_from_slice(&v.to_le_bytes());
}
fn put_u64(p: &mut Vec<u8>, v: u64) {
    p.extend_from_slice(&v.to_le_bytes());
}
fn put_str(p: &mut Vec<u8>, s: &str) {
    put_u32(p, s.len() as u32);
    p.extend_from_slice(s.as_bytes());
}
fn put_opt_str(p: &mut Vec<u8>, s: Option<&str>) {
    match s {
        Some(s) => {
            put_u8(p, 1);
            put_str(p, s);
        }
        None => put_u8(p, 0),
    }
}

// ===== turning it on for the process-wide validator =====

static STARTED: AtomicBool = AtomicBool::new(false);
static API_DIR: OnceLock<PathBuf> = OnceLock::new();

/// Why [`record_to`] did not take effect.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RecordSetupError {
    /// The process-wide validator was already created (a lock was taken before the call).
    AlreadyStarted,
    /// `record_to` was called before, with another directory.
    AlreadySet(PathBuf),
}

impl fmt::Display for RecordSetupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecordSetupError::AlreadyStarted => {
                f.write_str("the process-wide validator is already running")
            }
            RecordSetupError::AlreadySet(d) => {
                write!(f, "recording is already set to {}", d.display())
            }
        }
    }
}

impl std::error::Error for RecordSetupError {}

/// Makes the process-wide validator record into `dir`, as `LOCKDEP_RECORD=DIR` does (the call
/// wins over the variable). Call it before the first instrumented lock is taken: the validator
/// is created then, with or without a recorder.
///
/// ```no_run
/// lockdep::record::record_to("target/lockdep").expect("called first");
/// ```
pub fn record_to(dir: impl Into<PathBuf>) -> Result<(), RecordSetupError> {
    if STARTED.load(Ordering::SeqCst) {
        return Err(RecordSetupError::AlreadyStarted);
    }
    let dir = dir.into();
    API_DIR.set(dir.clone()).or_else(|_| match API_DIR.get() {
        Some(d) if *d == dir => Ok(()),
        Some(d) => Err(RecordSetupError::AlreadySet(d.clone())),
        None => Ok(()),
    })
}

/// The recorder the process-wide validator should use: one writing into the directory of
/// [`record_to`] or of `LOCKDEP_RECORD`, or `None` when recording is off (or the directory
/// cannot be written, which is reported on stderr). Called once, when the validator is created.
pub fn observer_from_env() -> Option<Box<dyn Observer>> {
    STARTED.store(true, Ordering::SeqCst);
    let dir = match API_DIR.get() {
        Some(d) => d.clone(),
        None => match std::env::var_os("LOCKDEP_RECORD") {
            Some(d) if !d.is_empty() => PathBuf::from(d),
            _ => return None,
        },
    };
    match Recorder::create_in(&dir) {
        Ok(r) => Some(Box::new(r)),
        Err(e) => {
            eprintln!(
                "lockdep: not recording: cannot create a recording in {}: {e}",
                dir.display()
            );
            None
        }
    }
}

// ===== reading =====

/// A recording that cannot be read: the file, the byte offset and what is wrong. Displays as
/// `FILE: byte OFFSET: message`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordError {
    /// The file, as it was named.
    pub file: String,
    /// The byte offset of the bad frame or field.
    pub offset: u64,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for RecordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: byte {}: {}", self.file, self.offset, self.message)
    }
}

impl std::error::Error for RecordError {}

/// The process a recording came from.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProcessInfo {
    /// Its process id.
    pub pid: u32,
    /// Its executable, as a path.
    pub exe: String,
    /// When recording started, in milliseconds since the Unix epoch.
    pub start_ms: u64,
    /// The lockdep version that wrote it.
    pub lockdep_version: String,
}

impl ProcessInfo {
    /// The file name of the executable.
    pub fn exe_name(&self) -> &str {
        self.exe.rsplit(['/', '\\']).next().unwrap_or(&self.exe)
    }

    /// How reports name it: `process EXE[PID]`, or the executable field alone when the pid is 0
    /// (a replayed scenario case: `scenario FILE case NAME`).
    pub fn describe(&self) -> String {
        if self.pid == 0 {
            self.exe.clone()
        } else {
            format!("process {}[{}]", self.exe_name(), self.pid)
        }
    }
}

/// A recorded class.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordedClass {
    /// The cross-process identity (see the module docs).
    pub stable_id: u64,
    /// The name the recording process printed.
    pub name: String,
    /// The key's `file:line:col`.
    pub site: Option<String>,
    /// Inner wait type.
    pub wait_inner: WaitType,
    /// Outer wait type.
    pub wait_outer: WaitType,
    /// Usage bits at registration.
    pub usage: u16,
}

/// A recorded dependency (one record: a later record of the same pair widens its bits).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordedDependency {
    /// Stable id of the class held.
    pub from: u64,
    /// Stable id of the class acquired.
    pub to: u64,
    /// Dependency-type bits (see [`crate::graph`]): the full set known when written.
    pub dep: u8,
    /// 1 if the locks were adjacent on the held stack.
    pub distance: u16,
    /// The thread that created it.
    pub task: String,
    /// Its thread id.
    pub tid: u32,
    /// The test it ran in, where known.
    pub test: Option<String>,
    /// Where it was first seen (empty in a record that only widens the bits).
    pub frames: Vec<Frame>,
    /// Whether the record carried the first-seen stack.
    pub has_stack: bool,
    /// Byte offset of the record in its file.
    pub offset: u64,
}

/// A recorded chain of classes.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RecordedChain {
    /// Irq context bits (1 softirq, 2 hardirq).
    pub irq_context: u8,
    /// Stable ids of the classes, oldest first.
    pub classes: Vec<u64>,
}

/// Everything read from one recording.
#[derive(Clone, Debug, Default)]
pub struct Recording {
    /// The file, as named.
    pub file: String,
    /// The process that wrote it.
    pub process: ProcessInfo,
    /// Classes, in the order found.
    pub classes: Vec<RecordedClass>,
    /// Dependency records, in the order found.
    pub dependencies: Vec<RecordedDependency>,
    /// Chains.
    pub chains: Vec<RecordedChain>,
    /// What was skipped (a torn last record), as `FILE: byte N: message`.
    pub warnings: Vec<String>,
}

/// Reads a recording from a file.
pub fn read_file(path: impl AsRef<Path>) -> Result<Recording, RecordError> {
    let path = path.as_ref();
    let name = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|e| RecordError {
        file: name.clone(),
        offset: 0,
        message: e.to_string(),
    })?;
    read_bytes(&name, &bytes)
}

/// Whether `bytes` start like a recording (the magic, or a prefix of it).
pub fn looks_like_recording(bytes: &[u8]) -> bool {
    let n = bytes.len().min(MAGIC.len());
    n > 0 && bytes[..n] == MAGIC[..n]
}

/// Reads a recording from memory; `file` names it in errors.
pub fn read_bytes(file: &str, bytes: &[u8]) -> Result<Recording, RecordError> {
    let err = |offset: usize, message: String| RecordError {
        file: file.to_string(),
        offset: offset as u64,
        message,
    };
    let mut rec = Recording {
        file: file.to_string(),
        ..Recording::default()
    };
    if bytes.len() < HEADER_LEN {
        if looks_like_recording(bytes) || bytes.is_empty() {
            rec.warnings.push(format!(
                "{file}: byte 0: torn file header ({} of {HEADER_LEN} bytes): empty recording",
                bytes.len()
            ));
            return Ok(rec);
        }
        return Err(err(0, "not a lockdep recording (bad magic)".into()));
    }
    if &bytes[..8] != MAGIC {
        return Err(err(0, "not a lockdep recording (bad magic)".into()));
    }
    let version = u16::from_le_bytes([bytes[8], bytes[9]]);
    if version != VERSION {
        return Err(err(
            8,
            format!("unsupported recording version {version} (this lockdep reads {VERSION})"),
        ));
    }
    if bytes[10..HEADER_LEN].iter().any(|b| *b != 0) {
        return Err(err(10, "reserved header bytes are not zero".into()));
    }
    let mut at = HEADER_LEN;
    let mut seen_process = false;
    let mut known: HashSet<u64> = HashSet::new();
    while at < bytes.len() {
        let rest = bytes.len() - at;
        if rest < FRAME_HEAD {
            torn(&mut rec, file, at, rest, None);
            break;
        }
        let h = &bytes[at..at + FRAME_HEAD];
        if h[0] != SYNC {
            return Err(err(at, format!("bad frame sync byte {:#04x}", h[0])));
        }
        let check = u16::from_le_bytes([h[6], h[7]]);
        if crc32fast::hash(&h[..6]) as u16 != check {
            return Err(err(at, "frame header checksum mismatch".into()));
        }
        let kind = h[1];
        let len = u32::from_le_bytes([h[2], h[3], h[4], h[5]]);
        if len > MAX_PAYLOAD {
            return Err(err(at, format!("frame length {len} exceeds {MAX_PAYLOAD}")));
        }
        let total = FRAME_HEAD + len as usize + 4;
        if rest < total {
            torn(&mut rec, file, at, rest, Some(total));
            break;
        }
        let body = &bytes[at..at + FRAME_HEAD + len as usize];
        let t = &bytes[at + total - 4..at + total];
        let crc = u32::from_le_bytes([t[0], t[1], t[2], t[3]]);
        if crc32fast::hash(body) != crc {
            return Err(err(at, format!("record checksum mismatch (kind {kind})")));
        }
        let payload = &body[FRAME_HEAD..];
        let mut d = Decoder {
            buf: payload,
            pos: 0,
            base: at + FRAME_HEAD,
        };
        if !seen_process && kind != KIND_PROCESS {
            return Err(err(at, "the first record is not the process record".into()));
        }
        let decoded = match kind {
            KIND_PROCESS => {
                if seen_process {
                    return Err(err(at, "a second process record".into()));
                }
                seen_process = true;
                decode_process(&mut d).map(|p| rec.process = p)
            }
            KIND_CLASS => decode_class(&mut d).map(|c| {
                // A class is written again when it gains usage bits: merge the records.
                if known.insert(c.stable_id) {
                    rec.classes.push(c)
                } else if let Some(old) =
                    rec.classes.iter_mut().find(|o| o.stable_id == c.stable_id)
                {
                    old.usage |= c.usage;
                }
            }),
            KIND_DEP => decode_dep(&mut d, at).and_then(|dep| {
                for id in [dep.from, dep.to] {
                    if !known.contains(&id) {
                        return Err((d.base, format!("dependency names unknown class {id:016x}")));
                    }
                }
                rec.dependencies.push(dep);
                Ok(())
            }),
            KIND_CHAIN => decode_chain(&mut d).and_then(|c| {
                if let Some(id) = c.classes.iter().find(|id| !known.contains(id)) {
                    return Err((d.base, format!("chain names unknown class {id:016x}")));
                }
                rec.chains.push(c);
                Ok(())
            }),
            other => {
                rec.warnings.push(format!(
                    "{file}: byte {at}: unknown record kind {other}, skipped"
                ));
                d.pos = d.buf.len();
                Ok(())
            }
        };
        if let Err((off, m)) = decoded {
            return Err(err(off, m));
        }
        if d.pos != d.buf.len() {
            return Err(err(
                d.base + d.pos,
                format!(
                    "{} unread bytes at the end of a record",
                    d.buf.len() - d.pos
                ),
            ));
        }
        at += total;
    }
    if !seen_process && rec.warnings.is_empty() {
        // Only the header: the process record was torn away entirely.
        rec.warnings.push(format!(
            "{file}: byte {HEADER_LEN}: no process record (torn): empty recording"
        ));
    }
    Ok(rec)
}

fn torn(rec: &mut Recording, file: &str, at: usize, have: usize, want: Option<usize>) {
    let want = want.map_or_else(|| "a frame header".to_string(), |w| format!("{w} bytes"));
    rec.warnings.push(format!(
        "{file}: byte {at}: torn last record ({have} bytes of {want}), skipped"
    ));
}

struct Decoder<'a> {
    buf: &'a [u8],
    pos: usize,
    /// Offset of `buf` in the file.
    base: usize,
}

type DecodeResult<T> = Result<T, (usize, String)>;

impl Decoder<'_> {
    fn take(&mut self, n: usize, what: &str) -> DecodeResult<&[u8]> {
        if self.buf.len() - self.pos < n {
            return Err((
                self.base + self.pos,
                format!("record ends inside its {what}"),
            ));
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }
    fn u8(&mut self, what: &str) -> DecodeResult<u8> {
        Ok(self.take(1, what)?[0])
    }
    fn u16(&mut self, what: &str) -> DecodeResult<u16> {
        let b = self.take(2, what)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }
    fn u32(&mut self, what: &str) -> DecodeResult<u32> {
        let b = self.take(4, what)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&mut self, what: &str) -> DecodeResult<u64> {
        let b = self.take(8, what)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }
    fn flag(&mut self, what: &str) -> DecodeResult<bool> {
        let at = self.base + self.pos;
        match self.u8(what)? {
            0 => Ok(false),
            1 => Ok(true),
            v => Err((at, format!("bad {what} flag {v}"))),
        }
    }
    fn str(&mut self, what: &str) -> DecodeResult<String> {
        let at = self.base + self.pos;
        let n = self.u32(what)? as usize;
        let b = self.take(n, what)?;
        String::from_utf8(b.to_vec()).map_err(|_| (at, format!("{what} is not UTF-8")))
    }
    fn opt_str(&mut self, what: &str) -> DecodeResult<Option<String>> {
        if self.flag(what)? {
            self.str(what).map(Some)
        } else {
            Ok(None)
        }
    }
    fn wait(&mut self, what: &str) -> DecodeResult<WaitType> {
        let at = self.base + self.pos;
        let s = self.str(what)?;
        WaitType::parse(&s).ok_or((at, format!("unknown {what} {s:?}")))
    }
    /// A count of items of at least `min` bytes each, checked against what is left.
    fn count(&mut self, min: usize, what: &str) -> DecodeResult<usize> {
        let at = self.base + self.pos;
        let n = self.u32(what)? as usize;
        if n.saturating_mul(min) > self.buf.len() - self.pos {
            return Err((at, format!("{what} {n} exceeds the record")));
        }
        Ok(n)
    }
}

fn decode_process(d: &mut Decoder<'_>) -> DecodeResult<ProcessInfo> {
    Ok(ProcessInfo {
        pid: d.u32("pid")?,
        exe: d.str("executable")?,
        start_ms: d.u64("start time")?,
        lockdep_version: d.str("lockdep version")?,
    })
}

fn decode_class(d: &mut Decoder<'_>) -> DecodeResult<RecordedClass> {
    Ok(RecordedClass {
        stable_id: d.u64("stable id")?,
        name: d.str("class name")?,
        site: d.opt_str("class site")?,
        wait_inner: d.wait("inner wait type")?,
        wait_outer: d.wait("outer wait type")?,
        usage: d.u16("usage")?,
    })
}

fn decode_dep(d: &mut Decoder<'_>, offset: usize) -> DecodeResult<RecordedDependency> {
    let from = d.u64("class id")?;
    let to = d.u64("class id")?;
    let at = d.base + d.pos;
    let dep = d.u8("dependency type")?;
    if dep == 0 || dep > 0xf {
        return Err((at, format!("bad dependency type bits {dep:#x}")));
    }
    let distance = d.u16("distance")?;
    let task = d.str("task name")?;
    let tid = d.u32("task id")?;
    let test = d.opt_str("test name")?;
    let has_stack = d.flag("stack")?;
    let mut frames = Vec::new();
    if has_stack {
        let n = d.count(6, "frame count")?;
        for _ in 0..n {
            let function = d.str("frame function")?;
            let offset = if d.flag("frame offset")? {
                Some(d.u64("frame offset")? as usize)
            } else {
                None
            };
            let location = d.opt_str("frame location")?;
            frames.push(Frame {
                function,
                offset,
                location,
            });
        }
    }
    Ok(RecordedDependency {
        from,
        to,
        dep,
        distance,
        task,
        tid,
        test,
        frames,
        has_stack,
        offset: offset as u64,
    })
}

fn decode_chain(d: &mut Decoder<'_>) -> DecodeResult<RecordedChain> {
    let irq_context = d.u8("irq context")?;
    let n = d.count(8, "chain length")?;
    let mut classes = Vec::with_capacity(n);
    for _ in 0..n {
        classes.push(d.u64("class id")?);
    }
    Ok(RecordedChain {
        irq_context,
        classes,
    })
}

// ===== merging and checking =====

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
            reports.extend(engine.import_dependency(
                from,
                to,
                d.dep,
                Arc::new(StackTrace::symbolic(frames)),
                task,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::map::{Acquire, LockMap, Site};
    use crate::Task;

    fn sample() -> Vec<u8> {
        let rec = Recorder::in_memory();
        let engine = Engine::with_observer(Default::default(), Box::new(rec.clone()));
        let maps: Vec<LockMap> = (0..4)
            .map(|i| LockMap::named(crate::LockClassKey::new_dynamic(format!("k{i}"))))
            .collect();
        let mut t = Task::new("worker", 7);
        for w in maps.windows(2) {
            engine.acquire(&mut t, &w[0], Acquire::exclusive(), Site::Unknown);
            engine.acquire(&mut t, &w[1], Acquire::exclusive(), Site::Unknown);
            engine.release(&mut t, &w[1], Site::Unknown);
            engine.release(&mut t, &w[0], Site::Unknown);
        }
        rec.record_chains(&engine);
        rec.bytes()
    }

    #[test]
    fn round_trip() {
        let bytes = sample();
        let r = read_bytes("x", &bytes).unwrap();
        assert!(r.warnings.is_empty(), "{:?}", r.warnings);
        assert_eq!(r.process.pid, std::process::id());
        assert_eq!(r.classes.len(), 4);
        assert_eq!(r.dependencies.len(), 3);
        assert!(r
            .dependencies
            .iter()
            .all(|d| d.task == "worker" && d.tid == 7));
        assert!(r
            .dependencies
            .iter()
            .all(|d| d.has_stack && !d.frames.is_empty()));
        assert!(!r.chains.is_empty());
    }

    static KEY_A: crate::LockClassKey = crate::LockClassKey::new("identity-a");
    static KEY_A_MOVED: crate::LockClassKey = crate::LockClassKey::new("identity-a");
    static KEY_B: crate::LockClassKey = crate::LockClassKey::new("identity-b");

    /// The stable id `key` gets in a fresh engine (a process of its own, as far as ids go).
    fn stable_in_fresh_engine(key: &'static crate::LockClassKey) -> u64 {
        let engine = Engine::new();
        let map = LockMap::named(key);
        let c = engine.class_of(&mut Task::new("t", 1), &map, 0);
        engine.class_info(c).unwrap().stable_id
    }

    #[test]
    fn class_identity_is_name_and_site() {
        // Same key (name and site) in two engines: one class.
        assert_eq!(
            stable_in_fresh_engine(&KEY_A),
            stable_in_fresh_engine(&KEY_A)
        );
        // Same name declared on another line (the code moved): another class.
        assert_ne!(
            stable_in_fresh_engine(&KEY_A),
            stable_in_fresh_engine(&KEY_A_MOVED)
        );
        // Another name: another class.
        assert_ne!(
            stable_in_fresh_engine(&KEY_A),
            stable_in_fresh_engine(&KEY_B)
        );
    }

    /// A recording of `first -> second` made in a process of its own.
    fn recording_of(
        first: &'static crate::LockClassKey,
        second: &'static crate::LockClassKey,
    ) -> Recording {
        let rec = Recorder::in_memory();
        let engine = Engine::with_observer(Default::default(), Box::new(rec.clone()));
        let (m1, m2) = (LockMap::named(first), LockMap::named(second));
        let mut t = Task::new("t", 1);
        engine.acquire(&mut t, &m1, Acquire::exclusive(), Site::Unknown);
        engine.acquire(&mut t, &m2, Acquire::exclusive(), Site::Unknown);
        read_bytes("mem", &rec.bytes()).unwrap()
    }

    #[test]
    fn old_recordings_do_not_meet_moved_code() {
        // Same classes in both recordings: the inversion is found.
        let ab = recording_of(&KEY_A, &KEY_B);
        let ba = recording_of(&KEY_B, &KEY_A);
        assert_eq!(Merged::new([&ab, &ba]).check().reports.len(), 1);
        // The lock moved between the recordings: three classes, and no cycle.
        let ba_moved = recording_of(&KEY_B, &KEY_A_MOVED);
        let merged = Merged::new([&ab, &ba_moved]);
        assert_eq!(merged.classes.len(), 3);
        assert!(merged.check().reports.is_empty());
    }

    /// A small deterministic generator (xorshift), so the fuzz is reproducible.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    #[test]
    fn truncations_are_torn_records_or_prefixes() {
        let bytes = sample();
        let full = read_bytes("x", &bytes).unwrap();
        for cut in 0..bytes.len() {
            match read_bytes("x", &bytes[..cut]) {
                Ok(r) => {
                    // Everything read is a prefix of the full recording.
                    assert!(r.dependencies.len() <= full.dependencies.len());
                    assert_eq!(
                        r.dependencies[..],
                        full.dependencies[..r.dependencies.len()]
                    );
                }
                Err(e) => panic!("a truncation is never corruption: {e}"),
            }
        }
    }

    #[test]
    fn byte_flips_are_errors_or_warnings_never_panics() {
        let bytes = sample();
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let mut errors = 0;
        for _ in 0..3000 {
            let mut b = bytes.clone();
            let flips = 1 + rng.below(3);
            for _ in 0..flips {
                let i = rng.below(b.len());
                b[i] ^= 1 << rng.below(8);
            }
            let cut = if rng.below(4) == 0 {
                rng.below(b.len())
            } else {
                b.len()
            };
            match read_bytes("f.ldrec", &b[..cut]) {
                Ok(_) => {}
                Err(e) => {
                    assert!(e.offset as usize <= cut, "{e}");
                    assert!(e.to_string().starts_with("f.ldrec: byte "), "{e}");
                    errors += 1;
                }
            }
        }
        assert!(errors > 1000, "most flips must be caught: {errors}");
    }

    #[test]
    fn every_single_flip_is_detected() {
        let bytes = sample();
        for i in 0..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 0x10;
            let r = read_bytes("x", &b);
            assert!(
                r.is_err() || !r.as_ref().unwrap().warnings.is_empty(),
                "flip at {i} went unnoticed"
            );
        }
    }
}
