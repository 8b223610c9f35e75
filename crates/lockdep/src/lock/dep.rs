//! Dependency types: how the two locks of a dependency `prev -> next` were held.
//!
//! The kernel's read/recursive-read rules need more than "`prev` was held when `next` was taken":
//! a dependency records whether `prev` was held exclusively (`E`) or shared (`S`), and whether
//! `next` was taken non-recursively (`N`) or as a recursive reader (`R`). A dependency between two
//! classes keeps the union of every type seen, as a bit set of the four constants below; a cycle
//! is a deadlock only when it is *strong* (no `-(xR)->` edge followed by an `-(Sx)->` edge).
//!
//! ```
//! use lockdep::dep::{dep_names, dep_type, DEP_EN, DEP_SR};
//! use lockdep::ReadKind;
//!
//! assert_eq!(dep_type(ReadKind::Exclusive, ReadKind::Exclusive), DEP_EN);
//! assert_eq!(dep_names(DEP_EN | DEP_SR), "EN|SR");
//! ```

use crate::lock::map::ReadKind;

/// `-(SR)->`: prev shared, next recursive reader.
pub const DEP_SR: u8 = 1 << 0;
/// `-(ER)->`: prev exclusive, next recursive reader.
pub const DEP_ER: u8 = 1 << 1;
/// `-(SN)->`: prev shared, next non-recursive.
pub const DEP_SN: u8 = 1 << 2;
/// `-(EN)->`: prev exclusive, next non-recursive.
pub const DEP_EN: u8 = 1 << 3;

/// The dependency type of `prev -> next` for the given read kinds.
pub fn dep_type(prev: ReadKind, next: ReadKind) -> u8 {
    let exclusive = (prev == ReadKind::Exclusive) as u8;
    let non_recursive = (next != ReadKind::SharedRecursive) as u8;
    1 << (exclusive + (non_recursive << 1))
}

/// The names of the dependency types in `dep`, e.g. `"EN|SR"`.
pub fn dep_names(dep: u8) -> String {
    let mut v = Vec::new();
    for (bit, name) in [
        (DEP_EN, "EN"),
        (DEP_ER, "ER"),
        (DEP_SN, "SN"),
        (DEP_SR, "SR"),
    ] {
        if dep & bit != 0 {
            v.push(name);
        }
    }
    v.join("|")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dep_types_follow_the_table() {
        use ReadKind::*;
        assert_eq!(dep_type(Shared, SharedRecursive), DEP_SR);
        assert_eq!(dep_type(SharedRecursive, SharedRecursive), DEP_SR);
        assert_eq!(dep_type(Exclusive, SharedRecursive), DEP_ER);
        assert_eq!(dep_type(Shared, Exclusive), DEP_SN);
        assert_eq!(dep_type(Shared, Shared), DEP_SN);
        assert_eq!(dep_type(Exclusive, Exclusive), DEP_EN);
        assert_eq!(dep_type(Exclusive, Shared), DEP_EN);
    }
}
