//! Lock maps: what the validator sees of a lock (the kernel's `lockdep_map`).
//!
//! A [`LockMap`] carries a class key, the wait types, and a one-slot cache of the class it maps
//! to. Every instrumented primitive in this crate is a raw lock plus a `LockMap`, and calls the
//! same hooks a user calls to instrument a lock of their own:
//!
//! ```
//! use lockdep::{Acquire, LockMap};
//!
//! // A lock of your own, or something that is not a lock at all ("fs_reclaim").
//! static RECLAIM: LockMap = LockMap::named(lockdep::lock_class!("my_reclaim"));
//!
//! RECLAIM.acquire(Acquire::exclusive());
//! // ... everything taken here is ordered after `my_reclaim` ...
//! RECLAIM.release();
//!
//! // Or as a scope:
//! {
//!     let _held = RECLAIM.hold(Acquire::exclusive());
//! }
//! // An annotation: "this may take the lock" (acquire and release at once).
//! RECLAIM.might_lock();
//! ```
//!
//! A map stands for one lock *instance*: the validator matches acquisitions and releases by the
//! map's address, so a map must not move while it is held (embed it in the lock, box it, or make
//! it a `static`).

use std::fmt;
use std::marker::PhantomData;
use std::panic::Location;
use std::sync::atomic::{AtomicPtr, AtomicU32, Ordering};

use crate::lock::class::{ClassId, DefaultKey, Key, LockClassKey};
use crate::lock::wait::WaitType;

const TAG_INSTANCE: u8 = 0;
const TAG_SITE: u8 = 1;
const TAG_KEY: u8 = 2;
/// Made by `Default`: `key_ptr` is the construction site until the first acquisition, then a
/// [`DefaultKey`] with the low bit set.
const TAG_DEFAULT: u8 = 3;
// `key_word` takes the low bit of a word from the tag: set for sites and resolved `Default`
// keys, clear for user keys.
const _: () = assert!(TAG_SITE & 1 == 1 && TAG_KEY & 1 == 0 && TAG_DEFAULT & 1 == 1);

/// The validator's view of one lock instance.
///
/// 16 bytes: a key pointer, the cached class of subclass 0, the wait types, the key's tag and
/// flags.
pub struct LockMap {
    /// Written after construction only for a `Default`-made map, once (its first acquisition
    /// refines the key); a plain load for every other map.
    key_ptr: AtomicPtr<()>,
    class_cache: AtomicU32,
    key_tag: u8,
    wait_inner: u8,
    wait_outer: u8,
    /// `MOVABLE`: holds may be released by another thread (guards that are `Send`); `ASYNC`: an
    /// async lock, which may be held across an await point.
    flags: u8,
}

/// Flag of [`LockMap::movable`], copied into each hold.
pub(crate) const MOVABLE: u8 = 1;
/// Flag of [`LockMap::async_lock`], copied into each hold.
pub(crate) const ASYNC: u8 = 2;
/// Flag of the lock map a spawned thread or task runs its work in (see `crate::task`).
pub(crate) const WORK: u8 = 4;

/// How many low bits of a map's class word hold its class id plus one (see
/// [`LockMap::class_word`]); the flags (three bits) lie above them, and the bits above those
/// are clear, for the fast path's key to use.
pub(crate) const CLASS_WORD_BITS: u32 = 24;
/// The class-id bits of a class word.
pub(crate) const CLASS_ID_MASK: u32 = (1 << CLASS_WORD_BITS) - 1;
const _: () = assert!(((MOVABLE | ASYNC | WORK) as u32) < 1 << 3);

/// The ordering of a class-cache store (see [`LockMap::cache_class`]); public for the loom model.
#[doc(hidden)]
pub const CACHE_STORE: Ordering = Ordering::Release;
/// The ordering of a class-cache load; public for the loom model.
#[doc(hidden)]
pub const CACHE_LOAD: Ordering = Ordering::Acquire;

// `LockMap` is `Send` and `Sync` by its fields (the key is an atomic pointer to immutable
// `'static` data: a `Location`, a `LockClassKey` or an interned `DefaultKey`).
const _: () = {
    const fn send_sync<T: Send + Sync>() {}
    send_sync::<LockMap>();
};

impl LockMap {
    /// A map whose class is its construction site (`file:line:col`), with no wait type.
    #[track_caller]
    pub const fn new() -> LockMap {
        LockMap::from_site(Location::caller())
    }

    /// A map whose class is the given construction site.
    pub const fn from_site(site: &'static Location<'static>) -> LockMap {
        LockMap {
            key_ptr: AtomicPtr::new(site as *const Location<'static> as *mut ()),
            class_cache: AtomicU32::new(0),
            key_tag: TAG_SITE,
            wait_inner: 0,
            wait_outer: 0,
            flags: 0,
        }
    }

    /// The map of a lock made by `Default::default()` at `site`. Every field of a
    /// `#[derive(Default)]` struct is made at the derive's own location, so the construction
    /// site alone would make all of them one class; such a map's class is its construction site
    /// *together with the field its first acquisition goes through* (`x.balance.lock()`: read
    /// from the source at that call's site), or that acquisition's site where no field can be
    /// read; fixed at that acquisition. Two fields are two classes; one field of many instances
    /// is one class. (The rule and its limits: `docs/SEMANTICS.md` §10.)
    pub const fn from_default_site(site: &'static Location<'static>) -> LockMap {
        let mut map = LockMap::from_site(site);
        map.key_tag = TAG_DEFAULT;
        map
    }

    /// A map in the class of `key` (named after it).
    pub const fn named(key: &'static LockClassKey) -> LockMap {
        LockMap {
            key_ptr: AtomicPtr::new(key as *const LockClassKey as *mut ()),
            class_cache: AtomicU32::new(0),
            key_tag: TAG_KEY,
            wait_inner: 0,
            wait_outer: 0,
            flags: 0,
        }
    }

    /// A map that is its own key, as a kernel static lock is: the class is this instance (named
    /// by its address). This is what `lock_api`'s `const INIT` constructors get; prefer
    /// [`LockMap::new`] or [`LockMap::named`], which give one class for many instances.
    pub const fn self_keyed() -> LockMap {
        LockMap {
            key_ptr: AtomicPtr::new(std::ptr::null_mut()),
            class_cache: AtomicU32::new(0),
            key_tag: TAG_INSTANCE,
            wait_inner: 0,
            wait_outer: 0,
            flags: 0,
        }
    }

    /// Sets the wait types: `inner` is what the lock presents to what nests inside it, `outer`
    /// the context it may be taken in ([`WaitType::Inv`] means "same as inner").
    pub const fn with_wait(mut self, inner: WaitType, outer: WaitType) -> LockMap {
        self.wait_inner = inner as u8;
        self.wait_outer = outer as u8;
        self
    }

    /// Marks the map's holds as movable: a hold may be released by another thread than the one
    /// that acquired it (a `Send` guard). Such a release is handed to the holding thread instead
    /// of being reported as a bad unlock.
    pub const fn movable(mut self) -> LockMap {
        self.flags |= MOVABLE;
        self
    }

    /// Whether holds of this map may be released by another thread.
    #[inline]
    pub fn is_movable(&self) -> bool {
        self.flags & MOVABLE != 0
    }

    /// Marks the map as an async lock (a lock whose waiters suspend instead of blocking the
    /// thread, as tokio's): holding it across an `.await` is what it is for, so it is never
    /// reported as a lock held across an await point. Every other map is a blocking lock.
    ///
    /// ```
    /// use lockdep::LockMap;
    /// let map = LockMap::new().async_lock();
    /// assert!(map.is_async());
    /// assert!(!LockMap::new().is_async());
    /// ```
    pub const fn async_lock(mut self) -> LockMap {
        self.flags |= ASYNC;
        self
    }

    /// Whether this map is an async lock (see [`LockMap::async_lock`]).
    #[inline]
    pub fn is_async(&self) -> bool {
        self.flags & ASYNC != 0
    }

    /// Marks the map as the work map of spawned threads or tasks (see `crate::task`).
    pub(crate) const fn work(mut self) -> LockMap {
        self.flags |= WORK;
        self
    }

    /// The flags a hold copies.
    #[inline(always)]
    pub(crate) fn flags(&self) -> u8 {
        self.flags
    }

    /// Changes the key, as `lockdep_set_class` does for a lock that is not held. The class is
    /// looked up again at the next acquisition.
    pub fn set_key(&mut self, key: &'static LockClassKey) {
        *self.key_ptr.get_mut() = key as *const LockClassKey as *mut ();
        self.key_tag = TAG_KEY;
        *self.class_cache.get_mut() = 0;
    }

    /// The key. A `Default`-made map not yet acquired has the key of its construction site
    /// (for a lookup that is not an acquisition, such as [`class_name`](crate::Mutex)); it is
    /// never cached as the map's class.
    pub(crate) fn key(&self) -> Key {
        let ptr = self.key_ptr.load(Ordering::Relaxed);
        match self.key_tag {
            // SAFETY: the tag says `key_ptr` came from a `&'static Location<'static>`.
            TAG_SITE => Key::Site(unsafe { &*(ptr as *const Location<'static>) }),
            // SAFETY: the tag says `key_ptr` came from a `&'static LockClassKey`.
            TAG_KEY => Key::Static(unsafe { &*(ptr as *const LockClassKey) }),
            TAG_DEFAULT => match self.default_key() {
                Some(k) => Key::Default(k),
                // SAFETY: unresolved, `key_ptr` is still the construction site.
                None => Key::Site(unsafe { &*(ptr as *const Location<'static>) }),
            },
            _ => Key::Instance,
        }
    }

    /// Whether the map is its own key ([`LockMap::self_keyed`]).
    #[inline]
    pub(crate) fn is_self_keyed(&self) -> bool {
        self.key_tag == TAG_INSTANCE
    }

    /// The key as one word (`None` for a self-keyed map, whose class is its instance, and for a
    /// `Default`-made map not yet acquired): the key's address, with the low bit set for a
    /// construction site. Tasks look classes up by it.
    #[inline]
    pub(crate) fn key_word(&self) -> Option<usize> {
        // Relaxed: the word is an identity here, never dereferenced. Branch-light, as the
        // lock-churn path reads it: a site's word has the low bit set; a key's is its address;
        // a resolved `Default` map's is the interned key's address with the low bit set (no
        // construction site is at that address, so the words of the two kinds never meet).
        let ptr = self.key_ptr.load(Ordering::Relaxed) as usize;
        let tag = self.key_tag;
        let word = ptr | usize::from(tag & TAG_SITE);
        let known = tag != TAG_INSTANCE && (tag != TAG_DEFAULT || ptr & 1 == 1);
        known.then_some(word)
    }

    /// A `Default`-made map's refined key, once it was acquired.
    fn default_key(&self) -> Option<&'static DefaultKey> {
        // Acquire: pairs with the Release of `resolve_default`, so the key's fields are seen.
        let word = self.key_ptr.load(Ordering::Acquire) as usize;
        // SAFETY: a tagged word is only stored by `resolve_default`, from a leaked, never freed
        // `DefaultKey` (at least 2-aligned, so the tag bit is free).
        (word & 1 == 1).then(|| unsafe { &*((word & !1) as *const DefaultKey) })
    }

    /// Whether the map is `Default`-made and not yet acquired: its class is not known yet, so
    /// it must not be cached.
    #[inline]
    pub(crate) fn is_unresolved(&self) -> bool {
        self.key_tag == TAG_DEFAULT && self.default_key().is_none()
    }

    /// Fixes a `Default`-made map's class at its first acquisition, made at `site`: the key
    /// becomes (construction site, the field reached at `site`, or `site`). Nothing for any other map, or one already fixed.
    /// Racing first acquisitions agree on one of their sites.
    #[inline]
    pub(crate) fn resolve_default(&self, site: Site) {
        if self.key_tag == TAG_DEFAULT {
            self.resolve_default_slow(site);
        }
    }

    #[cold]
    fn resolve_default_slow(&self, site: Site) {
        let made = self.key_ptr.load(Ordering::Acquire);
        if made as usize & 1 == 1 {
            return;
        }
        // SAFETY: untagged, the word is still the construction site `from_default_site` stored.
        let made_at = unsafe { &*(made as *const Location<'static>) };
        let first = match site {
            Site::Code(l) => Some(l),
            _ => None,
        };
        let key = DefaultKey::intern(made_at, first);
        let tagged = (key as *const DefaultKey as usize | 1) as *mut ();
        // Release: the interned key is published with the word. A lost race keeps the winner's.
        let _ = self
            .key_ptr
            .compare_exchange(made, tagged, Ordering::Release, Ordering::Relaxed);
    }

    /// The instance identity the validator uses: the map's address.
    #[inline]
    pub fn instance(&self) -> usize {
        self as *const LockMap as usize
    }

    /// The inner wait type.
    pub fn wait_inner(&self) -> WaitType {
        WaitType::from_u8(self.wait_inner)
    }

    /// The outer wait type.
    pub fn wait_outer(&self) -> WaitType {
        WaitType::from_u8(self.wait_outer)
    }

    #[inline]
    pub(crate) fn cached_class(&self) -> Option<ClassId> {
        match self.class_word() {
            0 => None,
            n => Some(ClassId((n & CLASS_ID_MASK) - 1)),
        }
    }

    /// The class cache as it is stored: 0 while empty, else the class id plus one in the low
    /// [`CLASS_WORD_BITS`] bits and the map's flags above them. The fast path compares it whole
    /// with what a hold of this map recorded (see `HeldLock::repeat`): equal words are the same
    /// class and the same flags.
    #[inline(always)]
    pub(crate) fn class_word(&self) -> u32 {
        self.class_cache.load(CACHE_LOAD)
    }

    /// [`class_word`](Self::class_word) for a comparison only: the word is not used to find
    /// the class (nothing the registering thread published is read through it), so it needs
    /// no ordering.
    #[inline(always)]
    pub(crate) fn class_word_to_compare(&self) -> u32 {
        self.class_cache.load(Ordering::Relaxed)
    }

    pub(crate) fn cache_class(&self, class: ClassId) {
        // Release, paired with the Acquire in `cached_class`: a thread that reads the id from
        // the cache then indexes the class arena with it, and must see the arena slot the
        // registering thread published. Relaxed does not order the two locations (the arena's
        // own Release/Acquire is on the slot, which the reader has not synchronised with), so a
        // reader on a weakly ordered CPU could find the id before the class: the arena's index
        // would panic. On x86 both are plain moves. A racing reader that misses the cache just
        // looks the class up again. `tests/loom_fast_path.rs` model-checks this protocol.
        // A class id that does not fit the word is never cached: such a map's class is looked
        // up by the slower paths each time, which is only slower.
        let word = self.class_word_of(class);
        if word != 0 {
            self.class_cache.store(word, CACHE_STORE);
        }
    }

    /// Keeps the class of a self-keyed map whose class slot was recycled (a zapped class given
    /// to a new lock: see `Engine::class_of`), which is never cached where the fast paths read
    /// it. A self-keyed map's key pointer is otherwise unused (its key is its address), so the
    /// class id plus one goes there, and the map stays 16 bytes.
    pub(crate) fn note_recycled_class(&self, class: ClassId) {
        if self.key_tag == TAG_INSTANCE {
            self.key_ptr
                .store((class.0 as usize + 1) as *mut (), Ordering::Relaxed);
        }
    }

    /// The class [`note_recycled_class`](Self::note_recycled_class) kept, if any.
    pub(crate) fn recycled_class(&self) -> Option<ClassId> {
        let word = self.key_ptr.load(Ordering::Relaxed) as usize;
        (self.key_tag == TAG_INSTANCE && word != 0).then(|| ClassId(word as u32 - 1))
    }

    /// The class word ([`class_word`](Self::class_word)) this map has with `class` cached; 0
    /// (none) for a class id too large for the word.
    #[inline(always)]
    pub(crate) fn class_word_of(&self, class: ClassId) -> u32 {
        if class.0 >= CLASS_ID_MASK {
            return 0;
        }
        (class.0 + 1) | u32::from(self.flags) << CLASS_WORD_BITS
    }
}

impl Default for LockMap {
    #[track_caller]
    fn default() -> Self {
        LockMap::new()
    }
}

impl fmt::Debug for LockMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("LockMap");
        match self.key() {
            Key::Instance => d.field("key", &"self"),
            Key::Site(l) => d.field("key", l),
            Key::Static(k) => d.field("key", &k.name()),
            Key::Default(k) => d.field("key", k),
        };
        d.field("wait_inner", &self.wait_inner())
            .field("wait_outer", &self.wait_outer())
            .finish()
    }
}

/// Releases a [`LockMap`] when dropped. Made by [`LockMap::hold`].
#[must_use = "the map is released when the guard is dropped"]
pub struct MapGuard<'a> {
    pub(crate) map: &'a LockMap,
    pub(crate) _not_send: PhantomData<*const ()>,
}

impl Drop for MapGuard<'_> {
    fn drop(&mut self) {
        self.map.release_at(Site::Unknown);
    }
}

impl fmt::Debug for MapGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MapGuard").field("map", self.map).finish()
    }
}

/// The three kinds of acquisition (the kernel's `read` argument).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum ReadKind {
    /// A writer / exclusive owner (`read = 0`, written `W` or `E`).
    #[default]
    Exclusive = 0,
    /// A non-recursive reader, blocked by waiting writers (`read = 1`, `r`).
    Shared = 1,
    /// A recursive reader, never blocked by other readers (`read = 2`, `R`).
    SharedRecursive = 2,
}

impl ReadKind {
    /// Whether this is any kind of read.
    pub fn is_read(self) -> bool {
        self != ReadKind::Exclusive
    }
}

/// How an acquisition is made: the arguments of the kernel's `lock_acquire`.
///
/// ```
/// use lockdep::{Acquire, LockMap};
/// let outer = LockMap::new();
/// let inner = LockMap::new();
/// let how = Acquire::exclusive().subclass(1).nest_lock(&outer).trylock(false);
/// # let _ = (how, &inner);
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct Acquire<'a> {
    /// Exclusive, shared, or shared-recursive.
    pub read: ReadKind,
    /// A successful trylock: never validated, never the target of a dependency.
    pub trylock: bool,
    /// The subclass, 0 to 7.
    pub subclass: u8,
    /// The lock that serialises nested acquisitions of one class (`mutex_lock_nest_lock`).
    pub nest_lock: Option<&'a LockMap>,
    /// `false` for an acquisition that is recorded but never validated (`check = 0`).
    pub check: bool,
}

impl<'a> Acquire<'a> {
    /// An exclusive acquisition (`lock_acquire_exclusive`).
    pub const fn exclusive() -> Acquire<'a> {
        Acquire {
            read: ReadKind::Exclusive,
            trylock: false,
            subclass: 0,
            nest_lock: None,
            check: true,
        }
    }

    /// A non-recursive shared acquisition (`lock_acquire_shared`, `down_read`).
    pub const fn shared() -> Acquire<'a> {
        Acquire {
            read: ReadKind::Shared,
            ..Acquire::exclusive()
        }
    }

    /// A recursive shared acquisition (`lock_acquire_shared_recursive`, `read_lock`).
    pub const fn shared_recursive() -> Acquire<'a> {
        Acquire {
            read: ReadKind::SharedRecursive,
            ..Acquire::exclusive()
        }
    }

    /// The same acquisition of the given kind.
    pub const fn with_read(self, read: ReadKind) -> Acquire<'a> {
        Acquire { read, ..self }
    }

    /// Marks the acquisition as a successful trylock.
    pub const fn trylock(self, trylock: bool) -> Acquire<'a> {
        Acquire { trylock, ..self }
    }

    /// Sets the subclass (0 to 7; larger is reported as a misuse).
    pub const fn subclass(self, subclass: u8) -> Acquire<'a> {
        Acquire { subclass, ..self }
    }

    /// Sets the nest lock.
    pub const fn nest_lock(self, nest: &'a LockMap) -> Acquire<'a> {
        Acquire {
            nest_lock: Some(nest),
            ..self
        }
    }

    /// Records the acquisition without validating it.
    pub const fn unchecked(self) -> Acquire<'a> {
        Acquire {
            check: false,
            ..self
        }
    }
}

/// Where an event happened: what a lock line prints after `at:`.
///
/// Two sites are equal when they print the same: a [`Site::Text`] and a [`Site::Interned`] of
/// the same text are one site.
#[derive(Clone, Copy, Debug, Default)]
pub enum Site {
    /// A source location captured with `#[track_caller]`.
    Code(&'static Location<'static>),
    /// A symbolic location (a simulated frame in a scenario, or a text of the caller's).
    Text(&'static str),
    /// A line of a named file (a scenario's statement), printed `FILE:LINE`. Unlike a
    /// [`Site::Text`], it costs no memory per line: the file's name is stored once.
    Line(FileLine),
    /// A symbolic location interned beforehand ([`Site::interned`]): the same site as the
    /// [`Site::Text`] of its text, but an acquisition records it with one store where a text is
    /// looked up in the thread's memo first. For a caller that makes the same text sites over
    /// and over (an interposer naming its callers' return addresses), interning once per site.
    Interned(InternedText),
    /// Not known.
    #[default]
    Unknown,
}

/// A line of a named file: the site of a statement of a scenario, which [`Site::Line`] carries.
///
/// Two numbers that stay valid for the life of the process: the file's (its name is stored
/// once, the first time a `FileLine` names it) and the line. A replay of millions of statements makes no
/// text per statement, which a [`Site::Text`] would need.
///
/// ```
/// use lockdep::{FileLine, Site};
///
/// let at = FileLine::new("abba.lockdep", 9).expect("fewer than 4096 files named");
/// assert_eq!((at.file(), at.line()), ("abba.lockdep", 9));
/// assert_eq!(Site::Line(at.with_line(12)).to_string(), "abba.lockdep:12");
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct FileLine {
    /// Index into [`FILE_NAMES`].
    file: u32,
    line: u32,
}

/// How many file names [`FileLine`]s can name (more make texts: [`Site::file_line`]).
const MAX_FILES: usize = 1 << 12;

/// The names [`FileLine`]s index: written once each (under [`FILE_IDS`]), then only read, with
/// no lock (a report of the runtime may print a site in a forked child).
static FILE_NAMES: [std::sync::OnceLock<&'static str>; MAX_FILES] =
    [const { std::sync::OnceLock::new() }; MAX_FILES];

/// The index of each name in [`FILE_NAMES`] (a leaf lock, taken only to make a [`FileLine`] of
/// a new name: never by the runtime's hooks).
static FILE_IDS: std::sync::Mutex<Option<std::collections::HashMap<&'static str, u32>>> =
    std::sync::Mutex::new(None);

impl FileLine {
    /// Line `line` of the file named `file`; `None` when 4096 file names are taken already.
    /// The first `FileLine` of a name stores the name for the life of the process; later ones
    /// look it up (keep one and make the others with [`FileLine::with_line`]).
    pub fn new(file: &str, line: u32) -> Option<FileLine> {
        let mut ids = FILE_IDS.lock().unwrap_or_else(|e| e.into_inner());
        let ids = ids.get_or_insert_with(Default::default);
        if let Some(&file) = ids.get(file) {
            return Some(FileLine { file, line });
        }
        let id = ids.len();
        let slot = FILE_NAMES.get(id)?;
        let name: &'static str = Box::leak(file.to_string().into_boxed_str());
        // The slot is this id's, and the lock makes ids one at a time: it is empty.
        let _ = slot.set(name);
        let file = u32::try_from(id).ok()?;
        ids.insert(name, file);
        Some(FileLine { file, line })
    }

    /// The same file's line `line` (no lookup).
    #[inline]
    pub fn with_line(self, line: u32) -> FileLine {
        FileLine { line, ..self }
    }

    /// The file's name.
    pub fn file(self) -> &'static str {
        // Only `new` makes a `FileLine`, after it set its name.
        FILE_NAMES
            .get(self.file as usize)
            .and_then(|n| n.get().copied())
            .unwrap_or("<unknown>")
    }

    /// The line.
    #[inline]
    pub fn line(self) -> u32 {
        self.line
    }
}

impl fmt::Display for FileLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file(), self.line)
    }
}

impl fmt::Debug for FileLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FileLine({self})")
    }
}

/// A site text interned for the life of the process: [`Site::interned`] makes one, and only
/// one per distinct text. One word.
#[derive(Clone, Copy)]
pub struct InternedText(&'static &'static str);

impl InternedText {
    /// `text`, interned now (a lock and a lookup, once per call with a new text).
    pub fn new(text: &'static str) -> InternedText {
        InternedText(intern_text(text))
    }

    /// The text.
    #[inline]
    pub fn text(self) -> &'static str {
        self.0
    }
}

impl fmt::Debug for InternedText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.0, f)
    }
}

/// What a site is, with the two forms of a text as one (for equality and hashing).
#[derive(PartialEq, Eq, Hash)]
enum SiteValue {
    Code(&'static Location<'static>),
    Text(&'static str),
    Line(FileLine),
    Unknown,
}

impl Site {
    /// `text` as a site, interned now (a lock and a lookup, once per call with a new text):
    /// record [`Site::Interned`] sites for texts a program passes many times.
    pub fn interned(text: &'static str) -> Site {
        Site::Interned(InternedText::new(text))
    }

    #[inline]
    fn value(self) -> SiteValue {
        match self {
            Site::Code(l) => SiteValue::Code(l),
            Site::Text(t) => SiteValue::Text(t),
            Site::Interned(t) => SiteValue::Text(t.0),
            Site::Line(l) => SiteValue::Line(l),
            Site::Unknown => SiteValue::Unknown,
        }
    }
}

impl PartialEq for Site {
    fn eq(&self, other: &Site) -> bool {
        self.value() == other.value()
    }
}

impl Eq for Site {}

impl std::hash::Hash for Site {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.value().hash(state);
    }
}

/// The first word of an interned text's [`SiteWords`] (no text is that long).
const INTERNED: usize = usize::MAX;

/// A [`Site`] as two words, which a call passes in registers: a `Site` is three words, and
/// passing one to a hook's slow path made every lock call's fast path store it to the stack
/// first. Made only by [`Site::words`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SiteWords(usize, usize);

/// The first word of a [`Site::Line`]'s [`SiteWords`] is `LINE_WORDS - file`: above every
/// text's `2 + len` (a `str` is at most `isize::MAX` bytes), below only [`INTERNED`].
const LINE_WORDS: usize = INTERNED - 1;

const _: () = assert!(LINE_WORDS - MAX_FILES > (isize::MAX as usize) + 2);

impl Site {
    /// The site as two words (see [`SiteWords`]).
    #[inline(always)]
    pub(crate) fn words(self) -> SiteWords {
        match self {
            Site::Code(l) => SiteWords(0, l as *const Location<'static> as usize),
            Site::Unknown => SiteWords(1, 0),
            Site::Text(t) => SiteWords(2 + t.len(), t.as_ptr() as usize),
            Site::Line(l) => SiteWords(LINE_WORDS - l.file as usize, l.line as usize),
            Site::Interned(t) => SiteWords(INTERNED, t.0 as *const &'static str as usize),
        }
    }

    /// The site [`Site::words`] made `w` of.
    #[inline]
    pub(crate) fn from_words(w: SiteWords) -> Site {
        match w.0 {
            // SAFETY: made by `words` from a `&'static Location`.
            0 => Site::Code(unsafe { &*(w.1 as *const Location<'static>) }),
            1 => Site::Unknown,
            // SAFETY: made by `words` from an `InternedText`'s `&'static &'static str`.
            INTERNED => Site::Interned(InternedText(unsafe { &*(w.1 as *const &'static str) })),
            n if n > LINE_WORDS - MAX_FILES => Site::Line(FileLine {
                file: (LINE_WORDS - n) as u32,
                line: w.1 as u32,
            }),
            // SAFETY: made by `words` from a `&'static str` of `n - 2` bytes at `w.1`.
            n => Site::Text(unsafe {
                std::str::from_utf8_unchecked(std::slice::from_raw_parts(w.1 as *const u8, n - 2))
            }),
        }
    }
}

impl Site {
    /// The caller's location.
    #[track_caller]
    pub fn caller() -> Site {
        Site::Code(Location::caller())
    }

    /// Line `line` of the file named `file`: a [`Site::Line`], or, for a line past `u32::MAX`
    /// or a file past the names a `FileLine` can name, the interned text `FILE:LINE`.
    pub fn file_line(file: &str, line: usize) -> Site {
        match u32::try_from(line)
            .ok()
            .and_then(|l| FileLine::new(file, l))
        {
            Some(l) => Site::Line(l),
            None => Site::Text(intern_owned(format!("{file}:{line}"))),
        }
    }
}

/// A [`Site`] in one word, as a held-lock entry keeps it (the fast path writes it with one store):
/// a `Location`'s address, the address of an interned text with the low bit set, a file line
/// (`line << 32 | file << 2 | 0b10`, where a word has 64 bits), or 0.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct SiteRef(usize);

// The two low bits tag texts and lines: both kinds of pointer target are at least 4-aligned.
const _: () = assert!(
    std::mem::align_of::<Location<'static>>() >= 4 && std::mem::align_of::<&'static str>() >= 4
);

// A file index fits between the tag and the line.
const _: () = assert!(MAX_FILES <= 1 << 30);

impl SiteRef {
    /// A site that needs no interning (code, a file line, unknown, or a text interned
    /// already); `None` for a plain text (and for a file line where a word is too small for one).
    #[inline(always)]
    pub(crate) fn direct(site: Site) -> Option<SiteRef> {
        match site {
            Site::Code(l) => Some(SiteRef(l as *const Location<'static> as usize)),
            Site::Unknown => Some(SiteRef(0)),
            // The word `new` makes of the text: it was interned the same way.
            Site::Interned(t) => Some(SiteRef(t.0 as *const &'static str as usize | 1)),
            Site::Text(_) => None,
            Site::Line(l) => {
                let w = u64::from(l.line) << 32 | u64::from(l.file) << 2 | 0b10;
                usize::try_from(w).ok().map(SiteRef)
            }
        }
    }

    /// Any site. A text is interned: stored once per distinct text for the life of the process,
    /// as the kernel's static strings are.
    pub(crate) fn new(site: Site) -> SiteRef {
        match site {
            Site::Text(t) => SiteRef(intern_text(t) as *const &'static str as usize | 1),
            other => SiteRef::direct(other).unwrap_or_else(|| {
                // A file line that does not fit a word: its text.
                SiteRef(
                    intern_text(intern_owned(other.to_string())) as *const &'static str as usize
                        | 1,
                )
            }),
        }
    }

    /// The word (for a table of last holders).
    #[inline]
    pub(crate) fn word(self) -> usize {
        self.0
    }

    /// The site of a word that [`word`](Self::word) gave.
    ///
    /// # Safety
    /// `w` must have come from `word` of a `SiteRef` (any one: every such word stays valid for
    /// the life of the process).
    #[inline]
    pub(crate) unsafe fn from_word(w: usize) -> SiteRef {
        SiteRef(w)
    }

    /// The site.
    pub(crate) fn get(self) -> Site {
        if self.0 == 0 {
            Site::Unknown
        } else if self.0 & 1 == 1 {
            // SAFETY: a tagged word is only made by `new` from an interned `&'static &'static str`
            // (leaked, never freed), and its address is at least 2-aligned.
            Site::Text(unsafe { *((self.0 & !1) as *const &'static str) })
        } else if self.0 & 0b10 == 0b10 {
            // Made by `direct` from a `FileLine`: the word held all of it.
            let w = self.0 as u64;
            Site::Line(FileLine {
                file: (w >> 2 & 0x3fff_ffff) as u32,
                line: (w >> 32) as u32,
            })
        } else {
            // SAFETY: an untagged non-zero word is only made by `direct` from a
            // `&'static Location<'static>`.
            Site::Code(unsafe { &*(self.0 as *const Location<'static>) })
        }
    }
}

impl fmt::Debug for SiteRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.get(), f)
    }
}

/// The interned site texts (a leaf lock: nothing is called while it is held; `rt::fork` takes
/// it around `fork`).
pub(crate) static TEXTS: std::sync::Mutex<
    Option<std::collections::HashMap<&'static str, &'static &'static str>>,
> = std::sync::Mutex::new(None);

/// The one copy of `text` that [`SiteRef`]s point to.
fn intern_text(text: &'static str) -> &'static &'static str {
    use std::collections::HashMap;
    let mut texts = TEXTS.lock().unwrap_or_else(|e| e.into_inner());
    texts
        .get_or_insert_with(HashMap::new)
        .entry(text)
        .or_insert_with(|| Box::leak(Box::new(text)))
}

/// The one copy of a text made at run time (stored the first time it is seen).
fn intern_owned(text: String) -> &'static str {
    use std::collections::HashMap;
    let mut texts = TEXTS.lock().unwrap_or_else(|e| e.into_inner());
    let texts = texts.get_or_insert_with(HashMap::new);
    if let Some(t) = texts.get(text.as_str()) {
        return t;
    }
    let t: &'static str = Box::leak(text.into_boxed_str());
    texts.insert(t, Box::leak(Box::new(t)));
    t
}

impl fmt::Display for Site {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Site::Code(l) => write!(f, "{}:{}:{}", l.file(), l.line(), l.column()),
            Site::Text(s) => f.write_str(s),
            Site::Line(l) => fmt::Display::fmt(l, f),
            Site::Interned(t) => f.write_str(t.0),
            Site::Unknown => f.write_str("<unknown>"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_site_ref_gives_back_its_site_and_texts_are_interned_by_content() {
        let code = Site::caller();
        let owned: &'static str = Box::leak(String::from("x.c:7").into_boxed_str());
        for site in [code, Site::Unknown, Site::Text("x.c:7"), Site::Text(owned)] {
            assert_eq!(SiteRef::new(site).get(), site);
        }
        assert_eq!(SiteRef::direct(code), Some(SiteRef::new(code)));
        assert_eq!(SiteRef::direct(Site::Text("x.c:7")), None);
        assert_eq!(
            SiteRef::new(Site::Text("x.c:7")),
            SiteRef::new(Site::Text(owned))
        );
        assert_ne!(
            SiteRef::new(Site::Text("x.c:8")),
            SiteRef::new(Site::Text(owned))
        );
    }

    #[test]
    fn file_lines_are_words_without_memory_and_print_as_file_line() {
        let a = FileLine::new("dir/a.lockdep", 7).unwrap();
        let b = FileLine::new("b.lockdep", u32::MAX).unwrap();
        // One name, one index: the same file's lines differ by their line only.
        assert_eq!(FileLine::new("dir/a.lockdep", 9), Some(a.with_line(9)));
        assert_ne!(a, b.with_line(7));
        let sites = [
            Site::Line(a),
            Site::Line(b),
            Site::Line(a.with_line(0)),
            Site::caller(),
            Site::Unknown,
            Site::Text("dir/a.lockdep:7"),
            Site::Text(""),
        ];
        for site in sites {
            assert_eq!(Site::from_words(site.words()), site);
            // Where a word is too small for a line, a held entry keeps its text.
            let kept = SiteRef::new(site).get();
            assert!(kept == site || kept.to_string() == site.to_string());
        }
        if usize::BITS == 64 {
            // A line needs no interning (a text would: it is not one).
            for site in sites.into_iter().filter(|s| matches!(s, Site::Line(_))) {
                assert_eq!(SiteRef::direct(site), Some(SiteRef::new(site)));
                assert_eq!(SiteRef::new(site).get(), site);
            }
        }
        assert_ne!(Site::Line(a), Site::Text("dir/a.lockdep:7"));
        assert_eq!(Site::Line(a).to_string(), "dir/a.lockdep:7");
        assert_eq!(Site::Line(b).to_string(), format!("b.lockdep:{}", u32::MAX));
        assert_eq!(
            format!("{:?}", Site::Line(a)),
            "Line(FileLine(dir/a.lockdep:7))"
        );
        // A line past `u32::MAX` is a text of the same print.
        let far = u32::MAX as usize + 1;
        assert_eq!(
            Site::file_line("b.lockdep", far),
            Site::Text(Box::leak(format!("b.lockdep:{far}").into_boxed_str()))
        );
        assert_eq!(Site::file_line("b.lockdep", 3), Site::Line(b.with_line(3)));
    }

    #[test]
    fn an_interned_site_is_its_text_recorded_without_a_lookup() {
        let owned: &'static str = Box::leak(String::from("y.c:9").into_boxed_str());
        let site = Site::interned(owned);
        assert_eq!(site, Site::Text("y.c:9"));
        assert_ne!(site, Site::Text("y.c:10"));
        assert_eq!(site.to_string(), "y.c:9");
        use std::hash::BuildHasher;
        let h = std::hash::RandomState::new();
        assert_eq!(h.hash_one(site), h.hash_one(Site::Text("y.c:9")));
        assert_eq!(
            SiteRef::direct(site),
            Some(SiteRef::new(Site::Text("y.c:9")))
        );
        assert_eq!(SiteRef::new(site).get(), Site::Text("y.c:9"));
        assert!(matches!(Site::from_words(site.words()), Site::Interned(t) if t.text() == "y.c:9"));
    }

    #[test]
    fn a_map_is_sixteen_bytes() {
        assert_eq!(std::mem::size_of::<LockMap>(), 16);
    }

    #[test]
    fn keys_decode_to_what_was_stored() {
        static K: LockClassKey = LockClassKey::new("k");
        assert!(matches!(LockMap::named(&K).key(), Key::Static(k) if std::ptr::eq(k, &K)));
        let line = line!() + 1;
        let m = LockMap::new();
        assert!(matches!(m.key(), Key::Site(l) if l.line() == line));
        assert!(matches!(LockMap::self_keyed().key(), Key::Instance));
    }

    #[test]
    fn a_default_map_is_fixed_by_its_first_acquisition_site() {
        let made = Location::caller();
        let (a, b, c) = (
            LockMap::from_default_site(made),
            LockMap::from_default_site(made),
            LockMap::from_default_site(made),
        );
        assert!(a.is_unresolved() && a.key_word().is_none());
        assert!(matches!(a.key(), Key::Site(l) if std::ptr::eq(l, made)));
        let (here, there) = (Site::caller(), Site::caller());
        a.resolve_default(here);
        b.resolve_default(here);
        c.resolve_default(there);
        // Fixed once: a later acquisition elsewhere does not move it.
        a.resolve_default(there);
        assert!(!a.is_unresolved());
        assert_eq!(a.key_word(), b.key_word());
        assert_ne!(a.key_word(), c.key_word());
        let site_word = LockMap::from_site(made).key_word();
        assert_ne!(a.key_word(), site_word);
        assert_eq!(a.key_word().map(|w| w & 1), Some(1));
        assert!(matches!(a.key(), Key::Default(k) if std::ptr::eq(k.made, made)));
        // A map made by `new` is never refined.
        let plain = LockMap::from_site(made);
        plain.resolve_default(here);
        assert_eq!(plain.key_word(), site_word);
    }
}
