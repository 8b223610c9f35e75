//! The recording format: the file header, framed records (a sync byte, a kind, a length, a
//! header check and a CRC), and the little-endian encoding of their fields.

use super::*;

/// The first 8 bytes of every recording.
pub const MAGIC: &[u8; 8] = b"LOCKDEPR";
/// The format version this crate writes. It reads this one and every older one.
pub const VERSION: u16 = 2;
/// The oldest format version this crate reads (version 1 has no acquisition sites).
pub const OLDEST_VERSION: u16 = 1;
/// The conventional extension of a recording (`lockdep check DIR` reads files with it).
pub const EXTENSION: &str = "ldrec";
/// The largest payload a frame may have: the one limit of the writer and the reader. The writer
/// makes every record fit (see [`MAX_TEXT`], [`MAX_FRAMES`]); the reader skips a longer frame
/// as damaged.
pub const MAX_PAYLOAD: u32 = 4 << 20;
/// The longest text field (a class or task name, a site, a stack frame) the writer stores, in
/// bytes; a longer one is cut at a character boundary and ends with [`TRUNCATED`].
pub const MAX_TEXT: usize = 64 << 10;
/// The most stack frames a dependency record keeps (the innermost ones); the rest are counted
/// in one last frame saying how many were left out.
pub const MAX_FRAMES: usize = 1024;
/// What ends a text the writer cut to [`MAX_TEXT`].
pub const TRUNCATED: &str = "...[truncated by lockdep]";

pub(super) const HEADER_LEN: usize = 16;
pub(super) const FRAME_HEAD: usize = 8;
pub(super) const SYNC: u8 = 0xA5;

pub(super) const KIND_PROCESS: u8 = 1;
pub(super) const KIND_CLASS: u8 = 2;
pub(super) const KIND_DEP: u8 = 3;
pub(super) const KIND_CHAIN: u8 = 4;
pub(super) const KIND_STAT: u8 = 5;
/// A part of the lock statistics record that follows it (statistics too large for one frame).
pub(super) const KIND_STAT_PART: u8 = 6;

/// The most contention (or contending) points a class keeps in a statistics record (the
/// kernel keeps 4).
pub(super) const MAX_POINTS: usize = 16;

/// The payloads of a lock statistics record, each at most [`MAX_PAYLOAD`]: all but the last are
/// written as [`KIND_STAT_PART`] records, the last as the [`KIND_STAT`] record they belong to.
/// Each payload is `count u32`, then per class `stable_id u64, name str`, the write then the read
/// [`KindStats`](crate::proc::lock_stat::KindStats) as `con_bounces u64, wait (nr min max total:
/// u64 each), acq_bounces u64, acquisitions u64, hold (nr min max total)`, then the contention and
/// the contending points (at most [`MAX_POINTS`] each), each `count u32, (site str, count u64)*`.
pub(super) fn encode_stats(stats: &LockStats) -> Vec<Vec<u8>> {
    let mut parts = Vec::new();
    let mut p = Vec::new();
    let mut n = 0u32;
    put_u32(&mut p, 0);
    let mut c = Vec::new();
    for class in &stats.classes {
        c.clear();
        encode_class_stats(&mut c, class);
        if p.len() + c.len() > MAX_PAYLOAD as usize && n > 0 {
            p[..4].copy_from_slice(&n.to_le_bytes());
            parts.push(std::mem::take(&mut p));
            put_u32(&mut p, 0);
            n = 0;
        }
        p.extend_from_slice(&c);
        n += 1;
    }
    p[..4].copy_from_slice(&n.to_le_bytes());
    parts.push(p);
    parts
}

/// One class of a statistics record (at most about 2 MiB: its texts are cut to [`MAX_TEXT`]
/// and its points to [`MAX_POINTS`]).
fn encode_class_stats(p: &mut Vec<u8>, c: &ClassStats) {
    put_u64(p, c.stable_id);
    put_text(p, &c.name);
    for k in [&c.write, &c.read] {
        put_u64(p, k.con_bounces);
        put_time(p, &k.wait);
        put_u64(p, k.acq_bounces);
        put_u64(p, k.acquisitions);
        put_time(p, &k.hold);
    }
    for points in [&c.contention_points, &c.contending_points] {
        let points = &points[..points.len().min(MAX_POINTS)];
        put_u32(p, points.len() as u32);
        for pt in points {
            put_text(p, &pt.site);
            put_u64(p, pt.count);
        }
    }
}

fn put_time(p: &mut Vec<u8>, t: &LockTime) {
    for v in [t.nr, t.min_ns, t.max_ns, t.total_ns] {
        put_u64(p, v);
    }
}

pub(super) fn decode_stats(d: &mut Decoder<'_>) -> DecodeResult<LockStats> {
    // The smallest class: an id, an empty name, 2 × 11 counters, two empty point lists.
    let n = d.count(8 + 4 + 2 * 11 * 8 + 2 * 4, "class count")?;
    let mut classes = Vec::with_capacity(n);
    for _ in 0..n {
        let stable_id = d.u64("stable id")?;
        let name = d.str("class name")?;
        let mut kinds = [KindStats::default(); 2];
        for k in &mut kinds {
            k.con_bounces = d.u64("con-bounces")?;
            k.wait = decode_time(d, "wait time")?;
            k.acq_bounces = d.u64("acq-bounces")?;
            k.acquisitions = d.u64("acquisitions")?;
            k.hold = decode_time(d, "hold time")?;
        }
        let mut lists = [Vec::new(), Vec::new()];
        for list in &mut lists {
            let m = d.count(12, "point count")?;
            for _ in 0..m {
                let site = d.str("point site")?;
                let count = d.u64("point count")?;
                list.push(Point { site, count });
            }
        }
        let [contention_points, contending_points] = lists;
        let [write, read] = kinds;
        classes.push(ClassStats {
            name,
            stable_id,
            write,
            read,
            contention_points,
            contending_points,
        });
    }
    Ok(LockStats { classes })
}

fn decode_time(d: &mut Decoder<'_>, what: &str) -> DecodeResult<LockTime> {
    let at = d.base + d.pos;
    let t = LockTime {
        nr: d.u64(what)?,
        min_ns: d.u64(what)?,
        max_ns: d.u64(what)?,
        total_ns: d.u64(what)?,
    };
    if t.nr > 0 && (t.min_ns > t.max_ns || t.max_ns > t.total_ns) {
        return Err((
            at,
            format!(
                "inconsistent {what} (min {} max {} total {})",
                t.min_ns, t.max_ns, t.total_ns
            ),
        ));
    }
    Ok(t)
}

pub(super) fn frame(buf: &mut Vec<u8>, kind: u8, payload: &[u8]) {
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

pub(super) fn put_u8(p: &mut Vec<u8>, v: u8) {
    p.push(v);
}
pub(super) fn put_u16(p: &mut Vec<u8>, v: u16) {
    p.extend_from_slice(&v.to_le_bytes());
}
pub(super) fn put_u32(p: &mut Vec<u8>, v: u32) {
    p.extend_from_slice(&v.to_le_bytes());
}
pub(super) fn put_u64(p: &mut Vec<u8>, v: u64) {
    p.extend_from_slice(&v.to_le_bytes());
}
pub(super) fn put_str(p: &mut Vec<u8>, s: &str) {
    put_u32(p, s.len() as u32);
    p.extend_from_slice(s.as_bytes());
}
/// `s`, or its first [`MAX_TEXT`] bytes (cut at a character boundary) ending in [`TRUNCATED`].
pub(super) fn capped(s: &str) -> std::borrow::Cow<'_, str> {
    if s.len() <= MAX_TEXT {
        return s.into();
    }
    let mut end = MAX_TEXT - TRUNCATED.len();
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{TRUNCATED}", &s[..end]).into()
}

/// A text field, cut to [`MAX_TEXT`] (what every writer of a text field calls).
pub(super) fn put_text(p: &mut Vec<u8>, s: &str) {
    put_str(p, &capped(s));
}

pub(super) fn put_opt_str(p: &mut Vec<u8>, s: Option<&str>) {
    match s {
        Some(s) => {
            put_u8(p, 1);
            put_text(p, s);
        }
        None => put_u8(p, 0),
    }
}

pub(super) struct Decoder<'a> {
    pub(super) buf: &'a [u8],
    pub(super) pos: usize,
    /// Offset of `buf` in the file.
    pub(super) base: usize,
}

pub(super) type DecodeResult<T> = Result<T, (usize, String)>;

impl Decoder<'_> {
    pub(super) fn take(&mut self, n: usize, what: &str) -> DecodeResult<&[u8]> {
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
    pub(super) fn u8(&mut self, what: &str) -> DecodeResult<u8> {
        Ok(self.take(1, what)?[0])
    }
    pub(super) fn u16(&mut self, what: &str) -> DecodeResult<u16> {
        let b = self.take(2, what)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }
    pub(super) fn u32(&mut self, what: &str) -> DecodeResult<u32> {
        let b = self.take(4, what)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    pub(super) fn u64(&mut self, what: &str) -> DecodeResult<u64> {
        let b = self.take(8, what)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }
    pub(super) fn flag(&mut self, what: &str) -> DecodeResult<bool> {
        let at = self.base + self.pos;
        match self.u8(what)? {
            0 => Ok(false),
            1 => Ok(true),
            v => Err((at, format!("bad {what} flag {v}"))),
        }
    }
    pub(super) fn str(&mut self, what: &str) -> DecodeResult<String> {
        let at = self.base + self.pos;
        let n = self.u32(what)? as usize;
        let b = self.take(n, what)?;
        String::from_utf8(b.to_vec()).map_err(|_| (at, format!("{what} is not UTF-8")))
    }
    pub(super) fn opt_str(&mut self, what: &str) -> DecodeResult<Option<String>> {
        if self.flag(what)? {
            self.str(what).map(Some)
        } else {
            Ok(None)
        }
    }
    pub(super) fn wait(&mut self, what: &str) -> DecodeResult<WaitType> {
        let at = self.base + self.pos;
        let s = self.str(what)?;
        WaitType::parse(&s).ok_or((at, format!("unknown {what} {s:?}")))
    }
    /// A count of items of at least `min` bytes each, checked against what is left.
    pub(super) fn count(&mut self, min: usize, what: &str) -> DecodeResult<usize> {
        let at = self.base + self.pos;
        let n = self.u32(what)? as usize;
        if n.saturating_mul(min) > self.buf.len() - self.pos {
            return Err((at, format!("{what} {n} exceeds the record")));
        }
        Ok(n)
    }
}
