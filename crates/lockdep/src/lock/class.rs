//! Lock classes: what the validator reasons about instead of lock instances.
//!
//! Every lock maps to a *class*, and every rule of the validator is stated over classes: two
//! mutexes created by the same `Mutex::new` call site are one class, exactly as every
//! `mutex_init()` site is one class in the kernel. A class is a *key* plus a *subclass* (0 to 7);
//! the subclass lets code nest two locks of one key on purpose (`mutex_lock_nested`).
//!
//! Keys come from three places:
//! - a construction site, captured with `#[track_caller]` (the default for every primitive);
//! - a [`LockClassKey`] the user declares as a `static` (or with [`lock_class!`](crate::lock_class));
//! - [`LockClassKey::new_dynamic`], a fresh key (and so a fresh class) made at run time.
//!
//! A lock that was initialised without any key (the `const INIT` of the raw lock wrappers, used by
//! `lock_api`'s own constructors) is its own key, like a kernel static lock whose key is its
//! address.
//!
//! Classes are never freed. They live in an append-only arena so that the fast path can read a
//! class (its usage bits) without taking any lock. Class identity across processes of the same
//! build is [`ClassInfo::stable_id`]: a hash of the key's name and source location plus the
//! subclass, never an address.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::panic::Location;
use std::sync::atomic::{AtomicU16, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use crate::lock::wait::WaitType;

/// The largest number of subclasses a key has (subclasses are `0..MAX_SUBCLASSES`).
pub const MAX_SUBCLASSES: u8 = 8;

/// A lock class key declared by the user.
///
/// Declare one as a `static` to give a group of locks one class and a name, wherever they are
/// constructed. Each key is a distinct class, even when two keys share a name (the report then
/// prints `name#2` for the second, as the kernel does).
///
/// ```
/// # #[cfg(not(feature = "disabled"))] {
/// use lockdep::{LockClassKey, Mutex};
///
/// static INODE_LOCK: LockClassKey = LockClassKey::new("&inode->i_lock");
///
/// let a = Mutex::with_key(1, &INODE_LOCK);
/// let b = Mutex::with_key(2, &INODE_LOCK); // same class as `a`
/// # drop((a, b));
/// # }
/// ```
#[derive(Debug)]
pub struct LockClassKey {
    name: &'static str,
    site: &'static Location<'static>,
    /// A declaration site that is not Rust code (a scenario file's `FILE:LINE`), which then
    /// stands for `site` in reports and in the key's identity.
    text_site: Option<&'static str>,
    /// Distinguishes dynamic keys that share a name and site (0 for static keys).
    serial: u64,
}

static DYNAMIC_KEYS: AtomicU64 = AtomicU64::new(1);

impl LockClassKey {
    /// A key with a name, for use as a `static`. The declaration site is part of the key's
    /// cross-process identity.
    #[track_caller]
    pub const fn new(name: &'static str) -> Self {
        LockClassKey {
            name,
            site: Location::caller(),
            text_site: None,
            serial: 0,
        }
    }

    /// A new key created at run time: every call is a new class (the kernel's
    /// `lockdep_register_key`). Keys are never freed, so make one per kind of object, not one per
    /// object.
    ///
    /// ```
    /// use lockdep::LockClassKey;
    /// let k1 = LockClassKey::new_dynamic("queue->lock");
    /// let k2 = LockClassKey::new_dynamic("queue->lock");
    /// assert!(!std::ptr::eq(k1, k2));
    /// ```
    #[track_caller]
    pub fn new_dynamic(name: impl Into<String>) -> &'static LockClassKey {
        let name: &'static str = Box::leak(name.into().into_boxed_str());
        Box::leak(Box::new(LockClassKey {
            name,
            site: Location::caller(),
            text_site: None,
            serial: DYNAMIC_KEYS.fetch_add(1, Ordering::Relaxed),
        }))
    }

    /// [`new_dynamic`](LockClassKey::new_dynamic) for a class declared outside Rust code: `site`
    /// (a scenario file's `FILE:LINE`) is its declaration site in reports and identity.
    #[track_caller]
    pub(crate) fn new_dynamic_at(name: &str, site: &str) -> &'static LockClassKey {
        let name: &'static str = Box::leak(name.to_string().into_boxed_str());
        Box::leak(Box::new(LockClassKey {
            name,
            site: Location::caller(),
            text_site: Some(Box::leak(site.to_string().into_boxed_str())),
            serial: DYNAMIC_KEYS.fetch_add(1, Ordering::Relaxed),
        }))
    }

    /// The name reports print for this key's classes.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Where the key was declared.
    pub fn site(&self) -> &'static Location<'static> {
        self.site
    }
}

/// Declares a named static [`LockClassKey`] at this site and evaluates to a `&'static` reference
/// to it: one class per macro invocation.
///
/// ```
/// # #[cfg(not(feature = "disabled"))] {
/// let m = lockdep::Mutex::with_key((), lockdep::lock_class!("&mm->mmap_lock"));
/// # drop(m);
/// # }
/// ```
#[macro_export]
macro_rules! lock_class {
    ($name:expr) => {{
        static KEY: $crate::LockClassKey = $crate::LockClassKey::new($name);
        &KEY
    }};
}

/// The key of a lock made by `Default::default()`, fixed at its first acquisition: where it
/// was made, and the field its first acquisition went through (read from the source, see
/// `lock/field.rs`) or, when that is not known, the site of that acquisition (see
/// [`LockMap::from_default_site`](crate::LockMap)). Interned: one per distinct key, never freed.
#[derive(Debug, PartialEq, Eq, Hash)]
pub(crate) struct DefaultKey {
    pub(crate) made: &'static Location<'static>,
    pub(crate) refined: Refined,
}

/// What tells `Default`-made locks of one construction site apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Refined {
    /// The field the lock is reached through.
    Field(&'static str),
    /// The site of its first acquisition.
    FirstAt(&'static Location<'static>),
    /// Nothing known (the first acquisition had no source location).
    Unknown,
}

type Spot = (&'static str, u32, u32);

#[derive(PartialEq, Eq, Hash)]
enum By {
    Field(&'static str),
    FirstAt(Spot),
    Unknown,
}

type DefaultKeys = std::collections::HashMap<(Spot, By), &'static DefaultKey>;

/// The interned [`DefaultKey`]s (a leaf lock; `rt::fork` takes it around `fork`).
static DEFAULT_KEYS: std::sync::Mutex<Option<DefaultKeys>> = std::sync::Mutex::new(None);

/// Takes the interned default keys' lock, for `rt::fork` to hold across a `fork` (dropping the
/// value unlocks it).
pub(crate) fn lock_for_fork() -> Box<dyn std::any::Any> {
    Box::new(DEFAULT_KEYS.lock().unwrap_or_else(|e| e.into_inner()))
}

impl DefaultKey {
    /// The one `DefaultKey` of a lock made at `made` and first acquired at `first` (sites
    /// compare by content).
    pub(crate) fn intern(
        made: &'static Location<'static>,
        first: Option<&'static Location<'static>>,
    ) -> &'static DefaultKey {
        use std::collections::HashMap;
        let spot = |l: &Location<'static>| -> Spot { (l.file(), l.line(), l.column()) };
        let refined = match first {
            Some(f) => match crate::lock::field::field_at(f) {
                Some(name) => Refined::Field(name),
                None => Refined::FirstAt(f),
            },
            None => Refined::Unknown,
        };
        let by = match refined {
            Refined::Field(n) => By::Field(n),
            Refined::FirstAt(f) => By::FirstAt(spot(f)),
            Refined::Unknown => By::Unknown,
        };
        let mut keys = DEFAULT_KEYS.lock().unwrap_or_else(|e| e.into_inner());
        keys.get_or_insert_with(HashMap::new)
            .entry((spot(made), by))
            .or_insert_with(|| Box::leak(Box::new(DefaultKey { made, refined })))
    }
}

/// A decoded key.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Key {
    /// The lock is its own key (no key given at initialisation).
    Instance,
    /// The construction site of the lock.
    Site(&'static Location<'static>),
    /// A user key.
    Static(&'static LockClassKey),
    /// A `Default`-made lock's construction site, refined by its first acquisition.
    Default(&'static DefaultKey),
}

/// What makes two keys the same key. Sites compare by content, because one call site can be
/// compiled into several `Location` constants (generic callers in several codegen units).
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub(crate) enum KeyIdentity {
    Instance(usize),
    Site(&'static str, u32, u32),
    Static(usize),
    /// A `Default`-made lock: the interned pair of sites.
    Default(usize),
    /// A class imported from another process's recording, by stable id.
    Imported(u64),
}

impl Key {
    pub(crate) fn identity(self, instance: usize) -> KeyIdentity {
        match self {
            Key::Instance => KeyIdentity::Instance(instance),
            Key::Site(l) => KeyIdentity::Site(l.file(), l.line(), l.column()),
            Key::Static(k) => KeyIdentity::Static(k as *const LockClassKey as usize),
            Key::Default(k) => KeyIdentity::Default(k as *const DefaultKey as usize),
        }
    }
}

/// A class index: dense, starting at 0, in order of registration.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct ClassId(pub(crate) u32);

impl ClassId {
    /// The dense index of the class.
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

impl fmt::Display for ClassId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Usage bits of a class (the kernel's `LOCK_USED_IN_HARDIRQ` ... `LOCK_USED_READ`).
pub mod usage {
    /// Used in hardirq context (write).
    pub const USED_IN_HARDIRQ: u16 = 1 << 0;
    /// Used in hardirq context (read).
    pub const USED_IN_HARDIRQ_READ: u16 = 1 << 1;
    /// Taken with hardirqs enabled (write).
    pub const ENABLED_HARDIRQ: u16 = 1 << 2;
    /// Taken with hardirqs enabled (read).
    pub const ENABLED_HARDIRQ_READ: u16 = 1 << 3;
    /// Used in softirq context (write).
    pub const USED_IN_SOFTIRQ: u16 = 1 << 4;
    /// Used in softirq context (read).
    pub const USED_IN_SOFTIRQ_READ: u16 = 1 << 5;
    /// Taken with softirqs enabled (write).
    pub const ENABLED_SOFTIRQ: u16 = 1 << 6;
    /// Taken with softirqs enabled (read).
    pub const ENABLED_SOFTIRQ_READ: u16 = 1 << 7;
    /// Acquired at least once.
    pub const USED: u16 = 1 << 8;
    /// Acquired for read at least once.
    pub const USED_READ: u16 = 1 << 9;

    /// The four `{....}` characters of a lock line: hardirq-write, hardirq-read, softirq-write,
    /// softirq-read. `.` neither, `-` used in the context, `+` taken with it enabled, `?` both.
    pub fn chars(bits: u16) -> [char; 4] {
        let one = |used_in: u16, enabled: u16| match (bits & used_in != 0, bits & enabled != 0) {
            (true, true) => '?',
            (false, true) => '+',
            (true, false) => '-',
            (false, false) => '.',
        };
        [
            one(USED_IN_HARDIRQ, ENABLED_HARDIRQ),
            one(USED_IN_HARDIRQ_READ, ENABLED_HARDIRQ_READ),
            one(USED_IN_SOFTIRQ, ENABLED_SOFTIRQ),
            one(USED_IN_SOFTIRQ_READ, ENABLED_SOFTIRQ_READ),
        ]
    }
}

/// One registered class. Everything but the usage bits is fixed at registration.
pub(crate) struct Class {
    pub(crate) id: ClassId,
    pub(crate) base_name: Arc<str>,
    pub(crate) subclass: u8,
    /// 1 for the first key with this name, 2 for the second, ... (printed `name#N` when > 1).
    pub(crate) name_version: u32,
    pub(crate) wait_inner: WaitType,
    pub(crate) wait_outer: WaitType,
    pub(crate) usage: AtomicU16,
    pub(crate) stable_id: u64,
    /// Where the key was declared (`file:line:col`), if it has a source location.
    pub(crate) site: Option<Arc<str>>,
    /// Whether the class is named by its site, so that a readable name may be read from the
    /// source there (see [`crate::lock::source`]).
    pub(crate) named_by_site: bool,
    /// That readable name, once looked for.
    pub(crate) source_name: OnceLock<Option<Arc<str>>>,
    /// How many times the class was zapped (its self-keyed lock freed) and its slot reused by
    /// another self-keyed lock: each lifetime is a class of its own to the outside — named by
    /// its lock's address, printed `ADDRESS~N`, with its own stable id.
    pub(crate) lifetime: std::sync::atomic::AtomicU32,
    /// For a reused slot (`lifetime > 0`): the address of the self-keyed lock it is now the
    /// class of, which names it instead of `base_name`.
    pub(crate) instance: std::sync::atomic::AtomicUsize,
    /// A self-keyed class that a lock map with an empty class cache found already registered at
    /// its address: another map (one that moved away from that address, keeping its cached
    /// id) may hold it too. Such a class is never zapped and its slot never reused: a map's
    /// cache can't be cleared when another map is freed, and a reused slot would make two locks
    /// one class.
    pub(crate) shared: std::sync::atomic::AtomicBool,
}

impl Class {
    pub(crate) fn usage(&self) -> u16 {
        self.usage.load(Ordering::Relaxed)
    }

    /// What the source calls the lock, for a class named by its construction site: read once,
    /// on first use (never on the seen path).
    fn source_name(&self) -> Option<&str> {
        if !self.named_by_site {
            return None;
        }
        self.source_name
            .get_or_init(|| {
                let site = self.site.as_deref()?;
                let mut parts = site.rsplitn(3, ':');
                let col = parts.next()?.parse().ok()?;
                let line = parts.next()?.parse().ok()?;
                let file = parts.next()?;
                crate::lock::source::expression_at(file, line, col).map(Into::into)
            })
            .as_deref()
    }

    /// The name as reports print it: `name[#version][/subclass]`, and for a class named by its
    /// construction site whose source says what the lock is, `expr[/subclass]@file:line:col`.
    pub(crate) fn display_name(&self) -> String {
        let lifetime = self.lifetime.load(Ordering::Relaxed);
        if lifetime > 0 {
            // A reused slot: only self-keyed classes are reused, and named by their address.
            let mut s = format!(
                "{:#x}~{}",
                self.instance.load(Ordering::Relaxed),
                lifetime + 1
            );
            if self.subclass != 0 {
                s.push_str(&format!("/{}", self.subclass));
            }
            return s;
        }
        let source = self.source_name();
        let mut s = String::from(source.unwrap_or(&self.base_name));
        if self.name_version > 1 {
            s.push_str(&format!("#{}", self.name_version));
        }

        if self.subclass != 0 {
            s.push_str(&format!("/{}", self.subclass));
        }
        if let (Some(_), Some(site)) = (source, &self.site) {
            s.push('@');
            s.push_str(site);
        }
        s
    }

    pub(crate) fn info(&self) -> ClassInfo {
        ClassInfo {
            id: self.id,
            name: self.display_name().into(),
            usage: self.usage(),
            wait_inner: self.wait_inner,
            wait_outer: self.wait_outer,
            stable_id: match self.lifetime.load(Ordering::Relaxed) {
                0 => self.stable_id,
                n => {
                    let name = format!("{:#x}", self.instance.load(Ordering::Relaxed));
                    stable_id(&name, Key::Instance, self.subclass)
                        ^ u64::from(n).wrapping_mul(0x9e37_79b9_7f4a_7c15)
                }
            },
            site: self.site.clone(),
        }
    }
}

/// A snapshot of a class, as reports and introspection give it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClassInfo {
    /// The class's index in this process.
    pub id: ClassId,
    /// The printed name: `name[#version][/subclass]`. A class keyed by its construction site
    /// is named by what the source calls the lock, with the site beside it
    /// (`accounts@src/bank.rs:14:23`), or by the plain site when the source cannot be read.
    pub name: Arc<str>,
    /// Usage bits at the time of the snapshot (the kernel's `{....}` characters: [`crate::proc`] prints them).
    pub usage: u16,
    /// The wait type the lock presents to what nests inside it.
    pub wait_inner: WaitType,
    /// The wait type of the context the lock may be taken in.
    pub wait_outer: WaitType,
    /// Identity of the class across processes of one build (see the module docs).
    pub stable_id: u64,
    /// Where the class's key was declared (`file:line:col`): the construction site or the
    /// `LockClassKey` static. `None` for a lock that is its own key.
    pub site: Option<Arc<str>>,
}

impl ClassInfo {
    /// The name without the `@file:line:col` a name read from the source carries
    /// (`accounts` for `accounts@src/bank.rs:14:23`); the name itself otherwise.
    ///
    /// ```
    /// # #[cfg(not(feature = "disabled"))] {
    /// let m = lockdep::Mutex::new(0);
    /// let name = m.class_name();
    /// let all = lockdep::rt::global().classes();
    /// let info = all.iter().find(|c| *c.name == name).expect(&format!("{name} in {all:?}"));
    /// // `m` in a program run beside its sources (a doctest's locations point elsewhere, so
    /// // here it is the plain site).
    /// assert!(info.name.starts_with(info.short_name()));
    /// assert!(info.name.ends_with(info.site.as_deref().unwrap()));
    /// # }
    /// ```
    pub fn short_name(&self) -> &str {
        if let Some(site) = self.site.as_deref() {
            if let Some(n) = self
                .name
                .strip_suffix(site)
                .and_then(|n| n.strip_suffix('@'))
            {
                if !n.is_empty() {
                    return n;
                }
            }
        }
        &self.name
    }

    /// `(name){....}-{o:i}`, the class part of a kernel lock line.
    pub fn lock_name(&self, raw_lock_nesting: bool) -> String {
        let u: String = usage::chars(self.usage).iter().collect();
        let inner = self.wait_inner.number(raw_lock_nesting);
        let outer = if self.wait_outer == WaitType::Inv {
            inner
        } else {
            self.wait_outer.number(raw_lock_nesting)
        };
        format!("({}){{{}}}-{{{}:{}}}", self.name, u, outer, inner)
    }
}

/// A stable 64-bit FNV-1a hash (std's `DefaultHasher` is not guaranteed stable across releases).
pub(crate) struct StableHasher(u64);

impl StableHasher {
    pub(crate) fn new() -> Self {
        StableHasher(0xcbf2_9ce4_8422_2325)
    }
}

impl Hasher for StableHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
}

/// The cross-process identity of a class: name, source location of the key, subclass, and for
/// dynamic keys their creation order. Instance keys have no stable identity (0 is mixed with the
/// name only, so two instance-keyed locks with one name are merged across processes).
pub(crate) fn stable_id(name: &str, key: Key, subclass: u8) -> u64 {
    let mut h = StableHasher::new();
    name.hash(&mut h);
    match key {
        Key::Instance => 0u8.hash(&mut h),
        Key::Site(l) => {
            1u8.hash(&mut h);
            l.file().hash(&mut h);
            l.line().hash(&mut h);
            l.column().hash(&mut h);
        }
        Key::Static(k) => {
            2u8.hash(&mut h);
            match k.text_site {
                Some(t) => t.hash(&mut h),
                None => {
                    k.site.file().hash(&mut h);
                    k.site.line().hash(&mut h);
                    k.site.column().hash(&mut h);
                }
            }
            k.serial.hash(&mut h);
        }
        Key::Default(k) => {
            3u8.hash(&mut h);
            let first = match k.refined {
                Refined::FirstAt(l) => Some(l),
                _ => None,
            };
            for l in std::iter::once(k.made).chain(first) {
                l.file().hash(&mut h);
                l.line().hash(&mut h);
                l.column().hash(&mut h);
            }
            if let Refined::Field(name) = k.refined {
                name.hash(&mut h);
            }
        }
    }
    subclass.hash(&mut h);
    h.finish()
}

/// The source location of a key, `file:line:col`.
pub(crate) fn key_site(key: Key) -> Option<String> {
    match key {
        Key::Instance => None,
        Key::Site(l) => Some(format!("{}:{}:{}", l.file(), l.line(), l.column())),
        Key::Static(k) => Some(match k.text_site {
            Some(t) => t.to_string(),
            None => format!("{}:{}:{}", k.site.file(), k.site.line(), k.site.column()),
        }),
        Key::Default(k) => Some(spot(k.made)),
    }
}

fn spot(l: &Location<'_>) -> String {
    format!("{}:{}:{}", l.file(), l.line(), l.column())
}

/// The default name of a key: the user's name, or the construction site `file:line:col` (for a
/// `Default`-made lock, `field@made` as a source-named class prints, or `made+first` when the
/// field is not known: the
/// construction site and the first acquisition's).
pub(crate) fn default_name(key: Key, instance: usize) -> String {
    match key {
        Key::Instance => format!("{instance:#x}"),
        Key::Site(l) => spot(l),
        Key::Static(k) => k.name.to_string(),
        Key::Default(k) => match k.refined {
            Refined::Field(name) => format!("{name}@{}", spot(k.made)),
            Refined::FirstAt(first) => format!("{}+{}", spot(k.made), spot(first)),
            Refined::Unknown => format!("{}+?", spot(k.made)),
        },
    }
}

/// A task's direct-mapped memo of the classes of subclass 0 it has looked up, by key word (see
/// [`LockMap::key_word`](crate::LockMap)): what lets a lock that was just made (whose own class
/// cache is still empty) take the fast path. A miss only costs a lookup in the task's full map.
#[derive(Debug)]
pub(crate) struct ClassMemo {
    slots: [(usize, ClassId); CLASS_MEMO_SLOTS],
}

const CLASS_MEMO_SLOTS: usize = 64;

impl Default for ClassMemo {
    fn default() -> Self {
        // Word 0 is no key (key words are non-null addresses): an empty slot never matches.
        ClassMemo {
            slots: [(0, ClassId(0)); CLASS_MEMO_SLOTS],
        }
    }
}

impl ClassMemo {
    #[inline]
    fn slot(word: usize) -> usize {
        // Keys are at least 8-aligned statics or `Location`s; the bits above spread them.
        (word >> 3 ^ word >> 9) & (CLASS_MEMO_SLOTS - 1)
    }

    /// The class of subclass 0 for `word`, if memoised.
    #[inline]
    pub(crate) fn get(&self, word: usize) -> Option<ClassId> {
        let (w, c) = self.slots[Self::slot(word)];
        (w == word).then_some(c)
    }

    pub(crate) fn put(&mut self, word: usize, class: ClassId) {
        self.slots[Self::slot(word)] = (word, class);
    }

    pub(crate) fn clear(&mut self) {
        *self = ClassMemo::default();
    }
}
