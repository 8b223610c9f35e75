//! The field a `Default`-made lock is reached through, read from the source of its first
//! acquisition.
//!
//! `#[derive(Default)]` makes every field at the derive's own location, so the construction site
//! cannot tell two lock fields apart; the code that locks them can: `self.balance.lock()` goes
//! through the field `balance`. At a `Default`-made lock's first acquisition the validator reads
//! the line of that call (`file:line:col` from `#[track_caller]`, the column pointing at the
//! method name) and takes the identifier of the field access just before the method:
//! `x.balance.lock()`, `self.inner.balance.write()` and `s.0.lock()` give `balance`, `balance`
//! and `0`. Anything else — a local variable (`m.lock()`), an index (`v[i].lock()`), a call
//! (`get().lock()`), a source file that cannot be read, a site inside `lock_api` or this crate —
//! gives nothing, and the first acquisition's site stands in for the field. The files are read
//! through the same cache as the source names of classes ([`crate::lock::source`]).
//!
//! Each site is read once (the answer is cached), on the slow path of a new lock's first
//! acquisition; no lock of the validator is held meanwhile.

use std::collections::HashMap;
use std::panic::Location;
use std::sync::Mutex;

type Spot = (&'static str, u32, u32);

/// The fields found so far, by site (a leaf lock; `rt::fork` takes it around `fork`).
static FIELDS: Mutex<Option<HashMap<Spot, Option<&'static str>>>> = Mutex::new(None);

/// Takes the field cache's lock, for `rt::fork` to hold across a `fork` (dropping the value
/// unlocks it).
pub(crate) fn lock_for_fork() -> Box<dyn std::any::Any> {
    Box::new(FIELDS.lock().unwrap_or_else(|e| e.into_inner()))
}

/// The field accessed just before the method called at `site`, if the source says so.
pub(crate) fn field_at(site: &'static Location<'static>) -> Option<&'static str> {
    let spot = (site.file(), site.line(), site.column());
    if let Some(known) = FIELDS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get_or_insert_with(HashMap::new)
        .get(&spot)
    {
        return *known;
    }
    // Read without the cache's lock held (file I/O).
    let found = read_field(site).map(|f| &*Box::leak(f.into_boxed_str()));
    *FIELDS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get_or_insert_with(HashMap::new)
        .entry(spot)
        .or_insert(found)
}

fn read_field(site: &Location<'_>) -> Option<String> {
    let file = site.file();
    if file.contains("lock_api") || file.starts_with(own_src()) {
        return None;
    }
    let text = crate::lock::source::cached_source(file)?;
    let line = text
        .lines()
        .nth(usize::try_from(site.line()).ok()?.checked_sub(1)?)?;
    let col = usize::try_from(site.column()).ok()?.checked_sub(1)?;
    let chars: Vec<char> = line.chars().collect();
    field_before(&chars, col)
}

/// In `chars`, where the method name starts at `col`: the identifier of the field access that
/// precedes `.method`, if the receiver ends with one.
fn field_before(chars: &[char], col: usize) -> Option<String> {
    let is_ident = |c: char| c.is_alphanumeric() || c == '_';
    if !chars.get(col).copied().is_some_and(is_ident) {
        return None;
    }
    let mut i = col;
    let skip_space = |i: &mut usize| {
        while *i > 0 && chars[*i - 1].is_whitespace() {
            *i -= 1;
        }
    };
    skip_space(&mut i);
    if i == 0 || chars[i - 1] != '.' {
        return None;
    }
    i -= 1;
    skip_space(&mut i);
    let end = i;
    while i > 0 && is_ident(chars[i - 1]) {
        i -= 1;
    }
    let start = i;
    skip_space(&mut i);
    // A field access: `<receiver>.field`, not a bare variable or a path.
    if start == end || i == 0 || chars[i - 1] != '.' {
        return None;
    }
    Some(chars[start..end].iter().collect())
}

/// This crate's own source directory, as `Location`s name it.
fn own_src() -> &'static str {
    let me = file!();
    me.strip_suffix("lock/field.rs").unwrap_or(me)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(line: &str, method: &str) -> Option<String> {
        let chars: Vec<char> = line.chars().collect();
        let col = line.find(method).map(|b| line[..b].chars().count())?;
        field_before(&chars, col)
    }

    #[test]
    fn the_field_before_the_method_is_found() {
        assert_eq!(
            at("let g = self.balance.lock();", "lock()").as_deref(),
            Some("balance")
        );
        assert_eq!(
            at("x.inner.history .write()", "write").as_deref(),
            Some("history")
        );
        assert_eq!(at("s.0.lock()", "lock").as_deref(), Some("0"));
        assert_eq!(at("    .lock()", "lock"), None);
        assert_eq!(at("m.lock()", "lock"), None);
        assert_eq!(at("v[i].lock()", "lock"), None);
        assert_eq!(at("get().lock()", "lock"), None);
        assert_eq!(at("lock()", "lock"), None);
    }

    #[test]
    fn this_very_call_is_read_from_its_source() {
        struct Holder {
            lockish: Probe,
        }
        struct Probe;
        impl Probe {
            #[track_caller]
            fn lock(&self) -> &'static Location<'static> {
                Location::caller()
            }
        }
        let h = Holder { lockish: Probe };
        let site = h.lockish.lock();
        // Sites in this crate's own sources are never read (its internal lock calls).
        assert_eq!(field_at(site), None);
        assert_eq!(
            read_field_unfiltered(site).as_deref(),
            Some("lockish"),
            "{site}"
        );
    }

    fn read_field_unfiltered(site: &Location<'_>) -> Option<String> {
        let text = crate::lock::source::cached_source(site.file())?;
        let line = text.lines().nth(site.line() as usize - 1)?;
        let chars: Vec<char> = line.chars().collect();
        field_before(&chars, site.column() as usize - 1)
    }
}
