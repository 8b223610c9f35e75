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
//! readable after the binary is rebuilt or deleted), where the held lock and the acquired lock
//! were taken (`file:line:col`: a report made by `lockdep check` prints them on its lock lines),
//! the task (thread name and id) and the test name where known. The file starts with the
//! process: id, executable, start time.
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
//! ## File format (version 2)
//!
//! All integers are little-endian. A file is a 16-byte header, `LOCKDEPR`, the version (`u16`,
//! now 1), a `u16` and a `u32` reserved (zero), then frames:
//!
//! | bytes | field |
//! |---|---|
//! | 1 | sync byte `0xA5` |
//! | 1 | kind: 1 process, 2 class, 3 dependency, 4 chain, 5 lock statistics, 6 a part of the lock statistics record that follows |
//! | 4 | payload length (at most [`MAX_PAYLOAD`], 4 MiB) |
//! | 2 | header check: the low 16 bits of the CRC-32 of the 6 bytes above |
//! | n | payload |
//! | 4 | CRC-32 of the header and the payload |
//!
//! Strings are a `u32` length and UTF-8 bytes; an optional value is a `0`/`1` byte and the value.
//! Payloads: *process* `pid u32, exe str, start_ms u64, lockdep_version str`; *class*
//! `stable_id u64, name str, site opt-str, wait_inner str, wait_outer str, usage u16`;
//! *dependency* `from u64, to u64, dep u8, distance u16, task str, tid u32, test opt-str,
//! has_stack u8, [frames u32, (function str, offset opt-u64, location opt-str)*], held_site
//! opt-str, site opt-str` (where the held and the acquired lock were taken; version 1 ends
//! before them, and is still read); *chain*
//! `irq_context u8, count u32, stable_id u64*`; *lock statistics* the process's
//! [`LockStats`] so far (`count u32`, per class `stable_id
//! u64, name str`, write then read `con_bounces, wait nr/min/max/total, acq_bounces,
//! acquisitions, hold nr/min/max/total` as `u64`s, then the contention and contending points as
//! `count u32, (site str, count u64)*`); statistics larger than a frame are split by classes into
//! *parts* (kind 6, the same payload) followed by the record (kind 5) they complete: a reader keeps
//! the classes of all of them, and a snapshot whose last record is torn away is not kept. The
//! first frame is always the process. A reader that
//! meets a kind it does not know skips it with a warning.
//!
//! ## Lock statistics
//!
//! With [lock statistics](crate::stat) on (`LOCKDEP_STAT=1`) and recording on, the process-wide
//! validator writes a statistics record every 5 seconds (when something changed) and at exit
//! (`atexit`, on Linux). Each record holds everything counted since the start (or the last
//! [`reset`](crate::stat::reset)); the reader keeps the last one ([`Recording::stats`]). So a
//! process killed by `SIGKILL` loses at most the statistics of its last 5 seconds, or 10 if the
//! kill tore the record being written.
//!
//! Writer and reader share one limit, [`MAX_PAYLOAD`] (4 MiB a frame): the writer makes every
//! record fit — a text field longer than [`MAX_TEXT`] is cut and ends with [`TRUNCATED`], a stack
//! keeps its innermost [`MAX_FRAMES`] frames and says how many it left out — so no record it
//! writes is one the reader refuses.
//!
//! Reading is strict, and loses no more than it must: a frame that stops short at the end of the
//! file (a process killed while writing) is skipped with a warning; a damaged frame — a bad
//! checksum, a length over the limit, a field that does not decode, a frame header that does not
//! check (the reader then goes on at the next frame that starts right) — is skipped and listed in
//! [`Recording::errors`] with the file and its real byte offset, and every other record is read.
//! A bad file header or an unknown version is a [`RecordError`]. The reader never panics on any
//! input.
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

use crate::engine::chain::ChainInfo;
use crate::engine::{Dependency, Engine, Observer};
use crate::lock::class::{ClassId, ClassInfo};
use crate::lock::map::Site;
use crate::lock::wait::WaitType;
use crate::proc::lock_stat::{ClassStats, KindStats, LockStats, LockTime, Point};
use crate::report::stack::{self, Frame, StackTrace};
use crate::report::Report;
use crate::report::TaskRef;

mod format;
mod merge;
mod reader;
mod writer;

pub use format::*;
pub use merge::*;
pub use reader::*;
pub use writer::*;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lock::map::{Acquire, LockMap, Site};
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
    fn lock_statistics_round_trip_and_the_last_record_wins() {
        let rec = Recorder::in_memory();
        let mut small = ClassStats {
            name: "a".into(),
            stable_id: 1,
            ..Default::default()
        };
        small.write.acquisitions = 1;
        small.write.hold.add(5);
        // The smallest records: one and two classes with one-letter names and no points.
        rec.record_lock_stats(&LockStats {
            classes: vec![small.clone()],
        });
        let mut big = small.clone();
        big.name = "b".into();
        big.stable_id = 2;
        big.read.wait.add(7);
        big.read.con_bounces = 1;
        big.contention_points = vec![Point {
            site: "x.rs:1:1".into(),
            count: 1,
        }];
        let last = LockStats {
            classes: vec![small, big],
        };
        rec.record_lock_stats(&last);
        let bytes = rec.bytes();
        let r = read_bytes("x", &bytes).unwrap();
        assert!(r.warnings.is_empty(), "{:?}", r.warnings);
        assert_eq!(r.stats.as_ref(), Some(&last));
        // Torn: the one before it is kept.
        let r = read_bytes("x", &bytes[..bytes.len() - 3]).unwrap();
        assert_eq!(r.stats.unwrap().classes.len(), 1);
        assert_eq!(r.warnings.len(), 1);
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

    /// A recording of `first -> second` by a task named like a libtest thread, with real
    /// acquisition sites.
    fn recording_at(
        first: &'static crate::LockClassKey,
        second: &'static crate::LockClassKey,
        test: &str,
    ) -> Recording {
        let rec = Recorder::in_memory();
        let engine = Engine::with_observer(Default::default(), Box::new(rec.clone()));
        let (m1, m2) = (LockMap::named(first), LockMap::named(second));
        let mut t = Task::new(test, 1);
        engine.acquire(&mut t, &m1, Acquire::exclusive(), Site::caller());
        engine.acquire(&mut t, &m2, Acquire::exclusive(), Site::caller());
        read_bytes("mem", &rec.bytes()).unwrap()
    }

    #[test]
    fn check_reports_say_where_and_who() {
        let ab = recording_at(&KEY_A, &KEY_B, "tests::takes_a_then_b");
        let ba = recording_at(&KEY_B, &KEY_A, "tests::takes_b_then_a");
        let d = &ba.dependencies[0];
        let here = file!();
        assert!(d.held_site.as_deref().unwrap().starts_with(here), "{d:?}");
        assert!(d.site.as_deref().unwrap().starts_with(here), "{d:?}");
        // A unit-test binary is a test process: the task's name is the test's.
        assert_eq!(d.test.as_deref(), Some("tests::takes_b_then_a"));
        let reports = Merged::new([&ab, &ba]).check().reports;
        assert_eq!(reports.len(), 1);
        let r = &reports[0];
        assert_eq!(
            r.lock.as_ref().unwrap().site.to_string(),
            *d.site.as_ref().unwrap()
        );
        assert_eq!(
            r.holding.as_ref().unwrap().site.to_string(),
            *d.held_site.as_ref().unwrap()
        );
        let text = r.render();
        assert!(!text.contains("<unknown>"), "{text}");
        assert!(!text.contains("0000000000000000"), "{text}");
        assert!(text.contains(&format!(", at: {here}:")), "{text}");
        // The process and test that took the locks, and the test of each edge.
        assert!(
            text.contains("(process ") && text.contains("test tests::takes_b_then_a)"),
            "{text}"
        );
        assert!(text.contains("test tests::takes_a_then_b"), "{text}");
    }

    #[test]
    fn version_1_recordings_are_still_read() {
        // A version-1 file: no sites at the end of a dependency record.
        let mut bytes = Vec::new();
        bytes.extend_from_slice(MAGIC);
        bytes.extend_from_slice(&1u16.to_le_bytes());
        bytes.extend_from_slice(&[0; 6]);
        let mut p = Vec::new();
        put_u32(&mut p, 42);
        put_str(&mut p, "/t/old");
        put_u64(&mut p, 0);
        put_str(&mut p, "0.1.0");
        format::frame(&mut bytes, KIND_PROCESS, &p);
        for id in [1u64, 2] {
            let mut p = Vec::new();
            put_u64(&mut p, id);
            put_str(&mut p, &format!("c{id}"));
            put_opt_str(&mut p, None);
            put_str(&mut p, &WaitType::Sleep.to_string());
            put_str(&mut p, &WaitType::Inv.to_string());
            put_u16(&mut p, 0);
            format::frame(&mut bytes, KIND_CLASS, &p);
        }
        let mut p = Vec::new();
        put_u64(&mut p, 1);
        put_u64(&mut p, 2);
        put_u8(&mut p, 1);
        put_u16(&mut p, 1);
        put_str(&mut p, "main");
        put_u32(&mut p, 42);
        put_opt_str(&mut p, None);
        put_u8(&mut p, 0);
        format::frame(&mut bytes, KIND_DEP, &p);
        let r = read_bytes("old", &bytes).unwrap();
        assert_eq!(r.dependencies.len(), 1);
        assert_eq!(r.dependencies[0].site, None);
        assert_eq!(r.dependencies[0].held_site, None);
        // A version from the future is refused, naming the file and offset.
        bytes[8] = 9;
        let e = read_bytes("new", &bytes).unwrap_err().to_string();
        assert!(e.contains("unsupported recording version 9"), "{e}");
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
                Ok(r) => {
                    for e in &r.errors {
                        assert!(e.offset as usize <= cut, "{e}");
                        assert!(e.to_string().starts_with("f.ldrec: byte "), "{e}");
                    }
                    errors += usize::from(!r.errors.is_empty());
                }
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
                r.as_ref()
                    .map_or(true, |r| !r.warnings.is_empty() || !r.errors.is_empty()),
                "flip at {i} went unnoticed"
            );
        }
    }

    /// The frames of `bytes` after the header: (offset, kind, whole frame length).
    fn frames_of(bytes: &[u8]) -> Vec<(usize, u8, usize)> {
        let mut v = Vec::new();
        let mut at = HEADER_LEN;
        while at + FRAME_HEAD <= bytes.len() {
            let len =
                u32::from_le_bytes([bytes[at + 2], bytes[at + 3], bytes[at + 4], bytes[at + 5]]);
            let total = FRAME_HEAD + len as usize + 4;
            v.push((at, bytes[at + 1], total));
            at += total;
        }
        v
    }

    #[test]
    fn lock_statistics_larger_than_a_frame_are_split_and_read_whole() {
        let rec = Recorder::in_memory();
        let class = |i: u64| ClassStats {
            name: format!("class-{i}"),
            stable_id: i,
            contention_points: vec![Point {
                site: format!("src/lib.rs:{i}:1"),
                count: i,
            }],
            ..Default::default()
        };
        // About 240 bytes a class: 6 MiB in all, over MAX_PAYLOAD.
        let big = LockStats {
            classes: (0..26_000).map(class).collect(),
        };
        rec.record_lock_stats(&big);
        let bytes = rec.bytes();
        let kinds: Vec<u8> = frames_of(&bytes).iter().map(|f| f.1).collect();
        assert_eq!(kinds, [KIND_PROCESS, KIND_STAT_PART, KIND_STAT]);
        let r = read_bytes("x", &bytes).unwrap();
        assert!(
            r.errors.is_empty() && r.warnings.is_empty(),
            "{:?}",
            r.errors
        );
        assert_eq!(r.stats.as_ref(), Some(&big));
        // The next snapshot torn: the whole one before it is kept.
        rec.record_lock_stats(&big);
        let more = rec.bytes();
        let r = read_bytes("x", &more[..more.len() - 100]).unwrap();
        assert_eq!(r.stats.as_ref(), Some(&big));
    }

    #[test]
    fn an_over_long_class_name_is_cut_and_every_other_record_kept() {
        let rec = Recorder::in_memory();
        let engine = Engine::with_observer(Default::default(), Box::new(rec.clone()));
        let huge = format!("big{}", "é".repeat(3 << 20)); // 6 MiB, > MAX_PAYLOAD
        let maps = [
            LockMap::named(crate::LockClassKey::new_dynamic("before")),
            LockMap::named(crate::LockClassKey::new_dynamic(huge.clone())),
            LockMap::named(crate::LockClassKey::new_dynamic("after")),
        ];
        let mut t = Task::new("worker", 7);
        for m in &maps {
            engine.acquire(&mut t, m, Acquire::exclusive(), Site::Unknown);
        }
        let bytes = rec.bytes();
        assert!(frames_of(&bytes)
            .iter()
            .all(|f| f.2 <= FRAME_HEAD + MAX_PAYLOAD as usize + 4));
        let r = read_bytes("x", &bytes).unwrap();
        assert!(r.errors.is_empty(), "{:?}", r.errors);
        let names: Vec<&str> = r.classes.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names.len(), 3);
        assert_eq!(names[0], "before");
        assert_eq!(names[2], "after");
        assert!(names[1].len() <= MAX_TEXT && names[1].ends_with(TRUNCATED));
        assert!(huge.starts_with(names[1].strip_suffix(TRUNCATED).unwrap()));
        assert_eq!(r.dependencies.len(), 2);
    }

    #[test]
    fn a_deep_stack_is_capped_to_fit_one_frame() {
        let rec = Recorder::in_memory();
        let engine = Engine::with_observer(Default::default(), Box::new(rec.clone()));
        let (a, b) = (LockMap::new(), LockMap::new());
        let mut t = Task::simulated("deep", 3);
        for i in 0..200_000 {
            t.push_frame(stack::intern(&format!("function_number_{i}")));
        }
        engine.acquire(&mut t, &a, Acquire::exclusive(), Site::Unknown);
        engine.acquire(&mut t, &b, Acquire::exclusive(), Site::Unknown);
        let r = read_bytes("x", &rec.bytes()).unwrap();
        assert!(r.errors.is_empty(), "{:?}", r.errors);
        assert_eq!(r.dependencies.len(), 1);
        let frames = &r.dependencies[0].frames;
        assert_eq!(frames.len(), MAX_FRAMES + 1);
        assert_eq!(
            frames[MAX_FRAMES].function,
            format!("[{} more frames not recorded]", 200_000 - MAX_FRAMES)
        );
    }

    #[test]
    fn damaged_frames_are_skipped_with_their_offset_and_the_rest_is_kept() {
        let bytes = sample();
        let full = read_bytes("x", &bytes).unwrap();
        let frames = frames_of(&bytes);
        // An oversized frame, whole, right after the process record.
        let (p_at, _, p_len) = frames[0];
        let at = p_at + p_len;
        let mut big = bytes[..at].to_vec();
        format::frame(&mut big, KIND_CLASS, &vec![0u8; MAX_PAYLOAD as usize + 1]);
        big.extend_from_slice(&bytes[at..]);
        let r = read_bytes("x", &big).unwrap();
        assert_eq!(r.errors.len(), 1, "{:?}", r.errors);
        assert_eq!(r.errors[0].offset, at as u64);
        assert!(
            r.errors[0].message.contains("exceeds the limit"),
            "{}",
            r.errors[0]
        );
        assert_eq!(r.classes, full.classes);
        assert_eq!(r.dependencies.len(), full.dependencies.len());

        // A bad checksum inside the last chain: that record alone is lost.
        let (c_at, kind, c_len) = *frames.last().unwrap();
        assert_eq!(kind, KIND_CHAIN);
        let mut b = bytes.clone();
        b[c_at + c_len - 6] ^= 1;
        let r = read_bytes("x", &b).unwrap();
        assert_eq!(r.errors.len(), 1);
        assert_eq!(r.errors[0].offset, c_at as u64);
        assert_eq!(r.classes, full.classes);
        assert_eq!(r.chains.len(), full.chains.len() - 1);

        // A broken frame header: the reader finds the next frame and goes on.
        let dep = frames.iter().find(|f| f.1 == KIND_DEP).unwrap();
        let mut b = bytes.clone();
        b[dep.0 + 3] ^= 0x40;
        let r = read_bytes("x", &b).unwrap();
        assert_eq!(r.errors[0].offset, dep.0 as u64);
        assert!(r.errors[0]
            .message
            .contains(&format!("to the frame at byte {}", dep.0 + dep.2)));
        assert_eq!(r.dependencies.len(), full.dependencies.len() - 1);
        assert_eq!(r.chains, full.chains);
    }

    #[test]
    fn classes_written_many_times_are_merged_in_linear_time() {
        // 50 000 classes, each written 4 times: the linear search per record took 2 s at 20 000
        // classes in a debug build (so ~13 s here); the indexed merge takes milliseconds. The
        // bound leaves a loaded machine a wide margin.
        let mut bytes = Vec::new();
        bytes.extend_from_slice(MAGIC);
        bytes.extend_from_slice(&VERSION.to_le_bytes());
        bytes.extend_from_slice(&[0; 6]);
        let mut p = Vec::new();
        put_u32(&mut p, 1);
        put_str(&mut p, "/t/many");
        put_u64(&mut p, 0);
        put_str(&mut p, "0.1.0");
        format::frame(&mut bytes, KIND_PROCESS, &p);
        let n = 50_000u64;
        for round in 0..4u16 {
            for id in 0..n {
                let mut p = Vec::new();
                put_u64(&mut p, id);
                put_str(&mut p, &format!("c{id}"));
                put_opt_str(&mut p, None);
                put_str(&mut p, &WaitType::Sleep.to_string());
                put_str(&mut p, &WaitType::Inv.to_string());
                put_u16(&mut p, 1 << round);
                format::frame(&mut bytes, KIND_CLASS, &p);
            }
        }
        let t = std::time::Instant::now();
        let r = read_bytes("many", &bytes).unwrap();
        let took = t.elapsed();
        assert_eq!(r.classes.len(), n as usize);
        assert!(r.classes.iter().all(|c| c.usage == 0xf));
        assert!(took < std::time::Duration::from_secs(4), "{took:?}");
    }
}
