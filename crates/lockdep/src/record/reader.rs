//! Reading a recording: every whole record, with a warning for a torn or damaged one, never
//! losing the records around it.

use super::*;

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
    /// Dependency-type bits (see [`crate::dep`]): the full set known when written.
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
    /// Where the recording process took the held lock, in the acquisition that made this
    /// record (`file:line:col`; `None` when unknown, and in version 1 recordings).
    pub held_site: Option<String>,
    /// Where it took the acquired lock, in that acquisition.
    pub site: Option<String>,
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
    /// The last lock statistics record: what the process counted with
    /// [statistics](crate::stat) on.
    pub stats: Option<LockStats>,
    /// What was skipped (a torn last record), as `FILE: byte N: message`.
    pub warnings: Vec<String>,
    /// The damaged records that were skipped, each with its real byte offset: a checksum that
    /// does not match, a frame longer than [`MAX_PAYLOAD`], a field that does not decode, a
    /// frame header that does not check (the reader then goes on at the next frame that starts
    /// right). The other records were read; a recording with errors is bad input all the same.
    pub errors: Vec<RecordError>,
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
    if !(OLDEST_VERSION..=VERSION).contains(&version) {
        return Err(err(
            8,
            format!(
                "unsupported recording version {version} (this lockdep reads {OLDEST_VERSION} to {VERSION})"
            ),
        ));
    }
    if bytes[10..HEADER_LEN].iter().any(|b| *b != 0) {
        return Err(err(10, "reserved header bytes are not zero".into()));
    }
    let mut at = HEADER_LEN;
    let mut seen_process = false;
    // Each class's index in `rec.classes`, by stable id: a class is written again whenever it
    // gains usage bits, and a linear search for it made reading quadratic in the classes.
    let mut known: HashMap<u64, usize> = HashMap::new();
    // The classes of the statistics parts read since the last statistics record: a snapshot
    // too large for one frame is written as parts, then the record that completes it.
    let mut stat_parts: Vec<ClassStats> = Vec::new();
    while at < bytes.len() {
        let rest = bytes.len() - at;
        if rest < FRAME_HEAD {
            torn(&mut rec, file, at, rest, None);
            break;
        }
        let h = &bytes[at..at + FRAME_HEAD];
        let header_ok =
            h[0] == SYNC && crc32fast::hash(&h[..6]) as u16 == u16::from_le_bytes([h[6], h[7]]);
        if !header_ok {
            let what = if h[0] != SYNC {
                format!("bad frame sync byte {:#04x}", h[0])
            } else {
                "frame header checksum mismatch".to_string()
            };
            // The length cannot be trusted: look for the next frame that starts right.
            match resync(bytes, at + 1) {
                Some(next) => {
                    rec.errors.push(err(
                        at,
                        format!(
                            "{what}: {} bytes skipped, to the frame at byte {next}",
                            next - at
                        ),
                    ));
                    at = next;
                    continue;
                }
                None => {
                    rec.errors.push(err(
                        at,
                        format!("{what}: the {rest} bytes to the end are skipped"),
                    ));
                    break;
                }
            }
        }
        let kind = h[1];
        let len = u32::from_le_bytes([h[2], h[3], h[4], h[5]]);
        let total = FRAME_HEAD + len as usize + 4;
        if rest < total {
            if len > MAX_PAYLOAD {
                // Neither whole nor possible: nothing after it can be found.
                rec.errors.push(err(
                    at,
                    format!(
                        "frame length {len} exceeds the limit of {MAX_PAYLOAD} bytes, and the \
                         file ends inside it"
                    ),
                ));
            } else {
                torn(&mut rec, file, at, rest, Some(total));
            }
            break;
        }
        if len > MAX_PAYLOAD {
            // Whole, but larger than any writer makes: skipped, not decoded.
            rec.errors.push(err(
                at,
                format!(
                    "frame length {len} exceeds the limit of {MAX_PAYLOAD} bytes (kind {kind}): \
                     record skipped"
                ),
            ));
            at += total;
            continue;
        }
        let body = &bytes[at..at + FRAME_HEAD + len as usize];
        let t = &bytes[at + total - 4..at + total];
        let crc = u32::from_le_bytes([t[0], t[1], t[2], t[3]]);
        if crc32fast::hash(body) != crc {
            rec.errors.push(err(
                at,
                format!("record checksum mismatch (kind {kind}): record skipped"),
            ));
            at += total;
            continue;
        }
        let payload = &body[FRAME_HEAD..];
        let mut d = Decoder {
            buf: payload,
            pos: 0,
            base: at + FRAME_HEAD,
        };
        if !seen_process && kind != KIND_PROCESS && rec.errors.is_empty() {
            return Err(err(at, "the first record is not the process record".into()));
        }
        let decoded = match kind {
            KIND_PROCESS => {
                if seen_process {
                    Err((at, "a second process record".into()))
                } else {
                    seen_process = true;
                    decode_process(&mut d).map(|p| rec.process = p)
                }
            }
            KIND_CLASS => decode_class(&mut d).map(|c| match known.get(&c.stable_id) {
                Some(&i) => rec.classes[i].usage |= c.usage,
                None => {
                    known.insert(c.stable_id, rec.classes.len());
                    rec.classes.push(c);
                }
            }),
            KIND_DEP => decode_dep(&mut d, at, version).and_then(|dep| {
                for id in [dep.from, dep.to] {
                    if !known.contains_key(&id) {
                        return Err((d.base, format!("dependency names unknown class {id:016x}")));
                    }
                }
                rec.dependencies.push(dep);
                Ok(())
            }),
            KIND_CHAIN => decode_chain(&mut d).and_then(|c| {
                if let Some(id) = c.classes.iter().find(|id| !known.contains_key(id)) {
                    return Err((d.base, format!("chain names unknown class {id:016x}")));
                }
                rec.chains.push(c);
                Ok(())
            }),
            KIND_STAT_PART => decode_stats(&mut d).map(|s| stat_parts.extend(s.classes)),
            KIND_STAT => decode_stats(&mut d).map(|mut s| {
                if !stat_parts.is_empty() {
                    stat_parts.append(&mut s.classes);
                    s.classes = std::mem::take(&mut stat_parts);
                }
                rec.stats = Some(s)
            }),
            other => {
                rec.warnings.push(format!(
                    "{file}: byte {at}: unknown record kind {other}, skipped"
                ));
                d.pos = d.buf.len();
                Ok(())
            }
        };
        match decoded {
            Err((off, m)) => rec.errors.push(err(off, format!("{m}: record skipped"))),
            Ok(()) if d.pos != d.buf.len() => rec.errors.push(err(
                d.base + d.pos,
                format!(
                    "{} unread bytes at the end of a record",
                    d.buf.len() - d.pos
                ),
            )),
            Ok(()) => {}
        }
        // The frame was whole and its checksum right: the next one starts after it, whatever
        // was wrong inside.
        at += total;
    }
    if !seen_process && rec.warnings.is_empty() && rec.errors.is_empty() {
        // Only the header: the process record was torn away entirely.
        rec.warnings.push(format!(
            "{file}: byte {HEADER_LEN}: no process record (torn): empty recording"
        ));
    }
    Ok(rec)
}

/// The offset of the first frame from `from` on whose header is right (its sync byte and its
/// header checksum), if any.
fn resync(bytes: &[u8], from: usize) -> Option<usize> {
    let mut i = from;
    while i + FRAME_HEAD <= bytes.len() {
        let h = &bytes[i..i + FRAME_HEAD];
        if h[0] == SYNC && crc32fast::hash(&h[..6]) as u16 == u16::from_le_bytes([h[6], h[7]]) {
            return Some(i);
        }
        i += 1;
    }
    None
}

pub(super) fn torn(rec: &mut Recording, file: &str, at: usize, have: usize, want: Option<usize>) {
    let want = want.map_or_else(|| "a frame header".to_string(), |w| format!("{w} bytes"));
    rec.warnings.push(format!(
        "{file}: byte {at}: torn last record ({have} bytes of {want}), skipped"
    ));
}

pub(super) fn decode_process(d: &mut Decoder<'_>) -> DecodeResult<ProcessInfo> {
    Ok(ProcessInfo {
        pid: d.u32("pid")?,
        exe: d.str("executable")?,
        start_ms: d.u64("start time")?,
        lockdep_version: d.str("lockdep version")?,
    })
}

pub(super) fn decode_class(d: &mut Decoder<'_>) -> DecodeResult<RecordedClass> {
    Ok(RecordedClass {
        stable_id: d.u64("stable id")?,
        name: d.str("class name")?,
        site: d.opt_str("class site")?,
        wait_inner: d.wait("inner wait type")?,
        wait_outer: d.wait("outer wait type")?,
        usage: d.u16("usage")?,
    })
}

pub(super) fn decode_dep(
    d: &mut Decoder<'_>,
    offset: usize,
    version: u16,
) -> DecodeResult<RecordedDependency> {
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
    let (held_site, site) = if version >= 2 {
        (d.opt_str("held lock site")?, d.opt_str("acquisition site")?)
    } else {
        (None, None)
    };
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
        held_site,
        site,
        offset: offset as u64,
    })
}

pub(super) fn decode_chain(d: &mut Decoder<'_>) -> DecodeResult<RecordedChain> {
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
