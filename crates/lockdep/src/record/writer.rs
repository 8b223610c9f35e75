//! Writing a recording: the [`Recorder`] observer, which appends a record for every new class,
//! dependency and chain, and turning it on for the process-wide validator (`LOCKDEP_RECORD`).

use super::*;

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

pub(super) struct Inner {
    path: Option<PathBuf>,
    state: Mutex<WriterState>,
}

pub(super) enum Sink {
    File(File),
    Memory(Vec<u8>),
}

pub(super) struct WriterState {
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
        put_text(
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

    /// Appends a lock statistics record (see the module docs). The process-wide validator
    /// writes its own every few seconds and at exit while [statistics](crate::stat) are on.
    ///
    /// Statistics too large for one frame are written as several records, one after the other:
    /// parts, then the record they complete (a reader keeps a snapshot only once it is whole).
    pub fn record_lock_stats(&self, stats: &LockStats) {
        let parts = encode_stats(stats);
        let mut st = self.lock();
        let last = parts.len() - 1;
        for (i, p) in parts.iter().enumerate() {
            st.emit(if i == last { KIND_STAT } else { KIND_STAT_PART }, p);
        }
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
        if payload.len() > MAX_PAYLOAD as usize {
            // Every record is made to fit; one that did not would make the reader skip it.
            eprintln!(
                "lockdep: a record of {} bytes (kind {kind}) is larger than the limit of \
                 {MAX_PAYLOAD}: not recorded",
                payload.len()
            );
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
        if ids.len() > (MAX_PAYLOAD as usize - 5) / 8 {
            // Longer than any held stack can be; a cut chain would be another chain.
            return;
        }
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
    fn forked(&self) {
        // The child of a fork records into a file of its own, next to its parent's (the
        // parent's file stays the parent's: two processes appending to one file would
        // interleave their frames).
        let Some(dir) = self.inner.path.as_deref().and_then(Path::parent) else {
            return;
        };
        let Ok(mut st) = self.inner.state.try_lock() else {
            eprintln!("lockdep: not recording in the forked child: the recording was busy");
            return;
        };
        match Recorder::create_in(dir).map(|r| Arc::try_unwrap(r.inner)) {
            Ok(Ok(inner)) => *st = inner.state.into_inner().unwrap_or_else(|e| e.into_inner()),
            Ok(Err(_)) => st.failed = true,
            Err(e) => {
                st.failed = true;
                eprintln!(
                    "lockdep: not recording in the forked child: cannot create a recording in {}: {e}",
                    dir.display()
                );
            }
        }
    }

    fn usage_changed(&self, class: &ClassInfo) {
        // A class record again, with the new bits: readers merge records of one class.
        self.class_registered(class);
    }

    fn chain_validated(&self, chain: &crate::engine::chain::ChainInfo) {
        self.lock().chain(chain);
    }

    fn class_unregistered(&self, class: &ClassInfo) {
        // The old class is written no more: its dependencies are forgotten, so that those of
        // the next class in its slot (registered under an identity of its own) are written in
        // full.
        self.lock()
            .deps
            .retain(|(from, to), _| *from != class.id && *to != class.id);
    }

    fn class_registered(&self, class: &ClassInfo) {
        let mut st = self.lock();
        st.stable.insert(class.id, class.stable_id);
        let mut p = Vec::new();
        put_u64(&mut p, class.stable_id);
        put_text(&mut p, &class.name);
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
        put_text(&mut p, &dep.task.name);
        put_u32(&mut p, dep.task.pid);
        let test = st.test_name(&dep.task);
        put_opt_str(&mut p, test.as_deref());
        if old.is_none() {
            // The slow path: symbolize now, so the recording outlives the binary.
            put_u8(&mut p, 1);
            put_frames(&mut p, &dep.stack.frames());
        } else {
            put_u8(&mut p, 0);
        }
        let (held, acquired) = dep.sites.unwrap_or((Site::Unknown, Site::Unknown));
        for s in [held, acquired] {
            match s {
                Site::Unknown => put_opt_str(&mut p, None),
                s => put_opt_str(&mut p, Some(&s.to_string())),
            }
        }
        st.emit(KIND_DEP, &p);
    }
}

/// Room kept in a dependency record for what follows its frames (the two sites) and one last
/// frame saying how many were left out.
const AFTER_FRAMES: usize = 3 * (MAX_TEXT + 16);

/// A stack, as much of it as fits: at most [`MAX_FRAMES`] frames and what leaves the record
/// room for its sites, innermost first; then, if some were left out, a frame saying how many.
fn put_frames(p: &mut Vec<u8>, frames: &[Frame]) {
    let count_at = p.len();
    put_u32(p, 0);
    let budget = (MAX_PAYLOAD as usize).saturating_sub(AFTER_FRAMES);
    let mut n = 0usize;
    for f in frames {
        if n == MAX_FRAMES || p.len() + 3 * (MAX_TEXT + 16) > budget {
            break;
        }
        put_text(p, &f.function);
        match f.offset {
            Some(o) => {
                put_u8(p, 1);
                put_u64(p, o as u64);
            }
            None => put_u8(p, 0),
        }
        put_opt_str(p, f.location.as_deref());
        n += 1;
    }
    let mut count = n;
    if n < frames.len() {
        put_text(
            p,
            &format!("[{} more frames not recorded]", frames.len() - n),
        );
        put_u8(p, 0);
        put_opt_str(p, None);
        count += 1;
    }
    p[count_at..count_at + 4].copy_from_slice(&(count as u32).to_le_bytes());
}

pub(super) fn exe_name() -> String {
    std::env::current_exe()
        .ok()
        .and_then(|e| e.file_name().map(|f| f.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "process".to_string())
}

pub(super) static STARTED: AtomicBool = AtomicBool::new(false);
pub(super) static API_DIR: OnceLock<PathBuf> = OnceLock::new();
static PROCESS_RECORDER: OnceLock<Recorder> = OnceLock::new();

/// Takes the process recorder's lock (if there is a recorder), for `rt::fork` to hold across
/// a `fork`: a thread writing a record at that moment would leave it locked in the child, whose
/// first record (and the fork's own re-recording of the classes) would wait forever. Dropping
/// the value unlocks it.
pub(crate) fn lock_for_fork() -> Option<Box<dyn std::any::Any>> {
    let r = PROCESS_RECORDER.get()?;
    Some(Box::new(
        r.inner.state.lock().unwrap_or_else(|e| e.into_inner()),
    ))
}

/// The recorder [`observer_from_env`] made for the process-wide validator, if any.
pub(crate) fn process_recorder() -> Option<&'static Recorder> {
    PROCESS_RECORDER.get()
}

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
        Ok(r) => {
            let _ = PROCESS_RECORDER.set(r.clone());
            Some(Box::new(r))
        }
        Err(e) => {
            eprintln!(
                "lockdep: not recording: cannot create a recording in {}: {e}",
                dir.display()
            );
            None
        }
    }
}
