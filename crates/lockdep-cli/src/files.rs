//! Finding and opening input files.
//!
//! A path named on the command line is taken as it is (a link is followed: the user named it);
//! a directory is searched recursively, in sorted order, for the files a command wants. Inside a
//! directory:
//!
//! - an entry that cannot be read (a dangling link such as an editor's `.#x.lockdep`, a link
//!   loop, a file deleted during the walk, a subdirectory without permission) is skipped with a
//!   warning naming it, and the walk goes on;
//! - symbolic links are not followed (they may lead out of the directory, or loop), unless
//!   `--follow-links` says so ([`set_follow_links`]); a followed link to a directory already
//!   walked is not walked again;
//! - only regular files are read: a FIFO, a device or a socket with a wanted name is skipped
//!   with a warning (a FIFO would block the reader forever, a device never ends).
//!
//! [`open`] opens an input without blocking on a FIFO, refuses anything but a regular file, and
//! bounds what is read by [`MAX_INPUT_BYTES`].

use std::collections::HashSet;
use std::fs::{File, Metadata};
use std::io::{self, Read};
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

/// The largest input (recording or scenario file) a command reads, in bytes: 1 GiB.
pub const MAX_INPUT_BYTES: u64 = 1 << 30;

static FOLLOW_LINKS: AtomicBool = AtomicBool::new(false);

/// Whether symbolic links found inside a searched directory are followed (`--follow-links`).
pub fn set_follow_links(follow: bool) {
    FOLLOW_LINKS.store(follow, Ordering::Relaxed);
}

/// Adds `path` to `files`: as it is when `named` (given on the command line), else only if
/// `wanted` accepts it; a directory by its contents. A named path that cannot be read, or that
/// is neither a directory nor a regular file, is an error; anything wrong inside a directory is
/// a warning on stderr (`warning: PATH: why, skipped`) and the rest is still collected.
pub fn collect(
    path: &Path,
    named: bool,
    wanted: &dyn Fn(&Path) -> bool,
    files: &mut Vec<PathBuf>,
) -> io::Result<()> {
    let mut warnings = Vec::new();
    let r = collect_quiet(path, named, wanted, files, &mut warnings);
    for w in warnings {
        eprintln!("warning: {w}");
    }
    r
}

/// [`collect`], with the warnings returned instead of printed.
pub fn collect_quiet(
    path: &Path,
    named: bool,
    wanted: &dyn Fn(&Path) -> bool,
    files: &mut Vec<PathBuf>,
    warnings: &mut Vec<String>,
) -> io::Result<()> {
    let mut walk = Walk {
        wanted,
        follow: FOLLOW_LINKS.load(Ordering::Relaxed),
        seen: HashSet::new(),
        files,
        warnings,
    };
    if !named {
        walk.entry(path);
        return Ok(());
    }
    let meta = std::fs::metadata(path)?;
    if meta.is_dir() {
        walk.seen.insert((meta.dev(), meta.ino()));
        return walk.dir(path, true);
    }
    if !meta.is_file() {
        return Err(not_regular(&meta));
    }
    walk.files.push(path.to_path_buf());
    Ok(())
}

struct Walk<'a> {
    wanted: &'a dyn Fn(&Path) -> bool,
    follow: bool,
    /// The directories walked, by device and inode (followed links can loop).
    seen: HashSet<(u64, u64)>,
    files: &'a mut Vec<PathBuf>,
    warnings: &'a mut Vec<String>,
}

impl Walk<'_> {
    fn warn(&mut self, path: &Path, why: impl std::fmt::Display) {
        self.warnings
            .push(format!("{}: {why}, skipped", path.display()));
    }

    /// The entries of `dir`, sorted. An error is returned only for the top directory (`named`).
    fn dir(&mut self, dir: &Path, named: bool) -> io::Result<()> {
        let rd = match std::fs::read_dir(dir) {
            Ok(rd) => rd,
            Err(e) if named => return Err(e),
            Err(e) => {
                self.warn(dir, format_args!("cannot read the directory: {e}"));
                return Ok(());
            }
        };
        let mut entries = Vec::new();
        for e in rd {
            match e {
                Ok(e) => entries.push(e.path()),
                Err(e) => self.warn(dir, format_args!("cannot read an entry: {e}")),
            }
        }
        entries.sort();
        for e in entries {
            self.entry(&e);
        }
        Ok(())
    }

    /// One entry found in a directory.
    fn entry(&mut self, path: &Path) {
        let wanted = (self.wanted)(path);
        let meta = match std::fs::symlink_metadata(path) {
            Ok(m) => m,
            Err(e) => {
                // Deleted since the directory was listed, or unreadable.
                if wanted {
                    self.warn(path, e);
                }
                return;
            }
        };
        let meta = if meta.file_type().is_symlink() {
            if !self.follow {
                if wanted {
                    self.warn(
                        path,
                        "a symbolic link, not followed (--follow-links follows links)",
                    );
                }
                return;
            }
            match std::fs::metadata(path) {
                Ok(m) => m,
                Err(e) => {
                    // Dangling, or a loop of links.
                    self.warn(
                        path,
                        format_args!("a symbolic link that cannot be followed: {e}"),
                    );
                    return;
                }
            }
        } else {
            meta
        };
        if meta.is_dir() {
            if self.seen.insert((meta.dev(), meta.ino())) {
                let _ = self.dir(path, false);
            }
            return;
        }
        if !wanted {
            return;
        }
        if !meta.is_file() {
            self.warn(path, not_regular(&meta));
            return;
        }
        self.files.push(path.to_path_buf());
    }
}

/// Whether `file`, found in a directory among `named` (the paths of the command line), is gone
/// since: deleted during the walk. Then a warning says so, and the caller skips it, as the walk
/// skips an entry deleted under it.
pub fn vanished(file: &Path, named: &[PathBuf]) -> bool {
    let gone =
        matches!(std::fs::symlink_metadata(file), Err(e) if e.kind() == io::ErrorKind::NotFound);
    if gone && !named.iter().any(|n| n == file) {
        eprintln!(
            "warning: {}: deleted before it could be read, skipped",
            file.display()
        );
        return true;
    }
    false
}

/// What a path that is not a regular file is, as an error.
fn not_regular(meta: &Metadata) -> io::Error {
    let t = meta.file_type();
    let what = if t.is_fifo() {
        "a FIFO"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_socket() {
        "a socket"
    } else {
        "not a file"
    };
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("not a regular file ({what}): only regular files are read"),
    )
}

/// Opens an input for reading: without blocking (a FIFO swapped in after the walk does not
/// hang the open), and only if it is a regular file of at most `limit` bytes. The error says
/// why, without the path (the caller names it).
pub fn open(path: &Path, limit: u64) -> io::Result<Bounded> {
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)?;
    let meta = f.metadata()?;
    if !meta.is_file() {
        return Err(not_regular(&meta));
    }
    if meta.len() > limit {
        return Err(too_large(meta.len(), limit));
    }
    Ok(Bounded {
        inner: f,
        left: limit,
        limit,
    })
}

/// Reads a whole input (see [`open`]) into memory.
pub fn read(path: &Path, limit: u64) -> io::Result<Vec<u8>> {
    let mut r = open(path, limit)?;
    let mut v = Vec::new();
    r.read_to_end(&mut v)?;
    Ok(v)
}

fn too_large(size: u64, limit: u64) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("larger than the input limit of {limit} bytes ({size} bytes)"),
    )
}

/// A file that errors once more than its limit has been read from it (a file that grows while
/// it is read, or a special file that claims a size of 0).
#[derive(Debug)]
pub struct Bounded {
    inner: File,
    left: u64,
    limit: u64,
}

impl Read for Bounded {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 {
            // At the limit: anything more is too much.
            let mut one = [0u8; 1];
            return match self.inner.read(&mut one)? {
                0 => Ok(0),
                _ => Err(too_large(self.limit + 1, self.limit)),
            };
        }
        let n = buf.len().min(self.left.min(usize::MAX as u64) as usize);
        let got = self.inner.read(&mut buf[..n])?;
        self.left -= got as u64;
        Ok(got)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("lockdep-files-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn lockdep_files(p: &Path) -> bool {
        p.extension().is_some_and(|e| e == "lockdep")
    }

    #[test]
    fn a_bad_entry_is_a_warning_and_the_rest_is_read() {
        let d = scratch("bad-entry");
        std::fs::write(d.join("a.lockdep"), "").unwrap();
        std::os::unix::fs::symlink(d.join("gone"), d.join(".#b.lockdep")).unwrap();
        std::fs::write(d.join("c.lockdep"), "").unwrap();
        let (mut files, mut warnings) = (Vec::new(), Vec::new());
        collect_quiet(&d, true, &lockdep_files, &mut files, &mut warnings).unwrap();
        assert_eq!(files, [d.join("a.lockdep"), d.join("c.lockdep")]);
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].contains(".#b.lockdep"), "{warnings:?}");
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn the_input_limit_is_enforced_before_reading() {
        let d = scratch("limit");
        let f = d.join("big.lockdep");
        std::fs::write(&f, "0123456789").unwrap();
        assert_eq!(read(&f, 10).unwrap().len(), 10);
        let e = read(&f, 9).unwrap_err().to_string();
        assert!(e.contains("limit of 9 bytes"), "{e}");
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn a_file_deleted_after_the_walk_is_skipped_unless_named() {
        let d = scratch("vanished");
        let f = d.join("gone.lockdep");
        std::fs::write(&f, "").unwrap();
        let (mut files, mut warnings) = (Vec::new(), Vec::new());
        collect_quiet(&d, true, &lockdep_files, &mut files, &mut warnings).unwrap();
        assert_eq!(files, std::slice::from_ref(&f));
        std::fs::remove_file(&f).unwrap();
        assert!(vanished(&f, std::slice::from_ref(&d)));
        assert!(
            !vanished(&f, std::slice::from_ref(&f)),
            "a named file is an error, not a warning"
        );
        let _ = std::fs::remove_dir_all(&d);
    }
}
