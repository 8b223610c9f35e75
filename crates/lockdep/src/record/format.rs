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
/// The largest payload a frame may have.
pub const MAX_PAYLOAD: u32 = 4 << 20;

pub(super) const HEADER_LEN: usize = 16;
pub(super) const FRAME_HEAD: usize = 8;
pub(super) const SYNC: u8 = 0xA5;

pub(super) const KIND_PROCESS: u8 = 1;
pub(super) const KIND_CLASS: u8 = 2;
pub(super) const KIND_DEP: u8 = 3;
pub(super) const KIND_CHAIN: u8 = 4;

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
pub(super) fn put_opt_str(p: &mut Vec<u8>, s: Option<&str>) {
    match s {
        Some(s) => {
            put_u8(p, 1);
            put_str(p, s);
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
