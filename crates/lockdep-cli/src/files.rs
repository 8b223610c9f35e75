//! Finding input files. A path named on the command line is taken as it is; a directory is
//! searched recursively, in sorted order, for the files a command wants. Links to directories
//! found inside a directory are not followed: they can form loops.

use std::io;
use std::path::{Path, PathBuf};

/// Adds `path` to `files`: as it is when `named` (given on the command line), else only if
/// `wanted` accepts it; a directory by its contents.
pub fn collect(
    path: &Path,
    named: bool,
    wanted: &dyn Fn(&Path) -> bool,
    files: &mut Vec<PathBuf>,
) -> io::Result<()> {
    let meta = std::fs::metadata(path)?;
    if !meta.is_dir() {
        if named || wanted(path) {
            files.push(path.to_path_buf());
        }
        return Ok(());
    }
    if !named && std::fs::symlink_metadata(path)?.file_type().is_symlink() {
        return Ok(());
    }
    let mut entries = std::fs::read_dir(path)?
        .map(|e| e.map(|e| e.path()))
        .collect::<io::Result<Vec<_>>>()?;
    entries.sort();
    for e in entries {
        collect(&e, false, wanted, files)?;
    }
    Ok(())
}
