//! Pinning, class changes and assertions on held locks.

use super::*;

impl Engine {
    /// Pins a held lock (`lock_pin_lock`): releasing it before [`Engine::unpin`] is reported.
    /// Returns the cookie to unpin with, or a report if the lock is not held.
    pub fn pin(
        &self,
        task: &mut Task,
        map: &LockMap,
        site: Site,
    ) -> Result<PinCookie, Box<Report>> {
        let class = self.class_of(task, map, 0);
        match task.find_held(map.instance(), Some(class)) {
            Some(i) => {
                task.pin_serial = task.pin_serial.wrapping_add(1) % 0xffff;
                let cookie = PinCookie(1 + task.pin_serial);
                task.held.get_mut(i).pin_count += cookie.0;
                Ok(cookie)
            }
            None => {
                let info = self.lock_info_of(class, map.instance(), site, ReadKind::Exclusive);
                let r = self.make_report(
                    task,
                    ReportKind::Misuse,
                    Some(info),
                    Some("WARNING: pinning an unheld lock".into()),
                );
                Err(Box::new(r))
            }
        }
    }

    /// Pins a held lock again with a cookie from [`Engine::pin`] (`lock_repin_lock`).
    pub fn repin(
        &self,
        task: &mut Task,
        map: &LockMap,
        cookie: PinCookie,
        site: Site,
    ) -> Option<Report> {
        let class = self.class_of(task, map, 0);
        match task.find_held(map.instance(), Some(class)) {
            Some(i) => {
                task.held.get_mut(i).pin_count += cookie.0;
                None
            }
            None => {
                let info = self.lock_info_of(class, map.instance(), site, ReadKind::Exclusive);
                self.misuse(task, Some(info), "WARNING: pinning an unheld lock".into())
            }
        }
    }

    /// Unpins a lock pinned with `cookie` (`lock_unpin_lock`).
    pub fn unpin(
        &self,
        task: &mut Task,
        map: &LockMap,
        cookie: PinCookie,
        site: Site,
    ) -> Option<Report> {
        let class = self.class_of(task, map, 0);
        let problem = match task.find_held(map.instance(), Some(class)) {
            None => "WARNING: unpinning an unheld lock",
            Some(i) if task.held[i].pin_count == 0 => "WARNING: unpinning an unpinned lock",
            Some(i) if task.held[i].pin_count < cookie.0 => {
                task.held.get_mut(i).pin_count = 0;
                "WARNING: pin count corrupted"
            }
            Some(i) => {
                task.held.get_mut(i).pin_count -= cookie.0;
                return None;
            }
        };
        let info = self.lock_info_of(class, map.instance(), site, ReadKind::Exclusive);
        self.misuse(task, Some(info), problem.into())
    }

    /// Moves a held lock to the class of `key` and `subclass` (`lock_set_class`): it and the
    /// locks above it are acquired again, which re-validates them under the new class. The map's
    /// own key is unchanged for later acquisitions (use [`LockMap::set_key`] while it is not
    /// held for that).
    pub fn set_class(
        &self,
        task: &mut Task,
        map: &LockMap,
        key: &'static crate::LockClassKey,
        subclass: u8,
        site: Site,
    ) -> Option<Report> {
        let keyed = LockMap::named(key).with_wait(map.wait_inner(), map.wait_outer());
        self.move_to_class(task, map, &keyed, subclass, site)
    }

    /// Moves the held `map` to the class `class_map` has for `subclass`, and acquires it and the
    /// locks above it again (`lock_set_class` and `lock_set_subclass`).
    pub(super) fn move_to_class(
        &self,
        task: &mut Task,
        map: &LockMap,
        class_map: &LockMap,
        subclass: u8,
        site: Site,
    ) -> Option<Report> {
        let i = match self.held_index(task, map) {
            Ok(i) => i,
            Err(c) => return self.not_held(task, c, map.instance(), site),
        };
        if subclass >= MAX_SUBCLASSES {
            let info = self.lock_info(&task.held[i]);
            return self.misuse(task, Some(info), invalid_subclass(subclass));
        }
        let class = self.class_of(task, class_map, subclass);
        self.rebuild_from(task, i, |h| {
            h.class = class;
            h.site = SiteRef::new(site);
        })
    }

    /// Asserts that the task holds no lock (`lockdep_assert_none_held_once`).
    pub fn assert_none_held(&self, task: &Task, site: Site) -> Option<Report> {
        if task.held.is_empty() {
            return None;
        }
        let msg = format!("lockdep_assert_none_held() failed at {site}");
        self.misuse_kind(task, ReportKind::Assertion, None, msg)
    }
}
