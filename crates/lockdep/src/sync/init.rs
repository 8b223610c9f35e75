//! One-time initialisation is a lock: the helpers every one-time cell here uses.
//!
//! A cell's initialiser runs holding the cell's lock map, and threads that wait for it hold it
//! too; an access to an initialised cell is a `might_lock` of it (it cannot block now, but would
//! have, had it come first). So "the initialiser takes `L`" with "`L` is held while the cell is
//! forced" is a cycle, reported however the two were ordered in time.

use crate::lock::map::{Acquire, LockMap, Site};

/// A cell's lock map, held while its initialiser runs (or while waiting for it); released when
/// dropped, unwinding included.
pub(crate) struct Initialising<'a>(&'a LockMap);

impl<'a> Initialising<'a> {
    pub(crate) fn hold(map: &'a LockMap, site: Site) -> Initialising<'a> {
        map.acquire_at(Acquire::exclusive(), site);
        Initialising(map)
    }
}

impl Drop for Initialising<'_> {
    fn drop(&mut self) {
        self.0.release_at(Site::Unknown);
    }
}

/// An access to an initialised cell: the order "held locks → cell" is validated.
#[inline]
pub(crate) fn initialised(map: &LockMap, site: Site) {
    map.acquire_at(Acquire::exclusive(), site);
    map.release_at(site);
}
