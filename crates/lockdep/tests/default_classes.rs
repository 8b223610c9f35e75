//! Classes of locks made by `Default`: the fields of a `#[derive(Default)]` struct (all made at
//! the derive's own location) are distinct classes, while one field of many instances is one.

#![cfg(not(feature = "disabled"))]

use lockdep::{Mutex, ReportCollector, ReportKind, RwLock};

#[derive(Default)]
struct Account {
    balance: Mutex<u64>,
    history: Mutex<Vec<u64>>,
}

impl Account {
    fn deposit(&self, n: u64) {
        let mut b = self.balance.lock();
        let mut h = self.history.lock(); // balance -> history, always
        *b += n;
        h.push(n);
    }
}

fn reports_naming(c: &ReportCollector, names: &[String]) -> Vec<ReportKind> {
    c.matching(|r| names.iter().any(|n| r.involves(n)))
        .into_iter()
        .map(|r| r.kind)
        .collect()
}

/// `Account`'s twin for the test that must see no report: report collectors see every
/// thread's reports, and `the_same_field_of_two_instances_nested_is_recursive_locking`, which may
/// run at the same time, makes a true recursive-locking report on `Account`'s `balance` class
/// (the same class in every test, as one field of many instances is one class).
#[derive(Default)]
struct Ledger {
    balance: Mutex<u64>,
    history: Mutex<Vec<u64>>,
}

impl Ledger {
    fn deposit(&self, n: u64) {
        let mut b = self.balance.lock();
        let mut h = self.history.lock(); // balance -> history, always
        *b += n;
        h.push(n);
    }
}

#[test]
fn two_fields_of_a_derived_default_struct_are_two_classes() {
    let c = ReportCollector::new();
    let accounts: Vec<Ledger> = (0..50).map(|_| Ledger::default()).collect();
    for (i, a) in accounts.iter().enumerate() {
        a.deposit(i as u64);
    }
    let names = [
        accounts[0].balance.class_name(),
        accounts[0].history.class_name(),
    ];
    assert_ne!(names[0], names[1]);
    assert_eq!(accounts[7].balance.class_name(), names[0]);
    assert!(reports_naming(&c, &names).is_empty(), "{:?}", c.reports());
}

#[test]
fn the_same_field_of_two_fresh_instances_nested_is_recursive_locking() {
    // Never locked before, and locked at two different places: still one class, the field's.
    let c = ReportCollector::new();
    let (p, q) = (Pair::default(), Pair::default());
    {
        let _p = p.left.lock();
        let _q = q.left.lock();
    }
    assert_eq!(p.left.class_name(), q.left.class_name());
    assert!(
        p.left.class_name().starts_with("left@"),
        "{}",
        p.left.class_name()
    );
    let recursive =
        c.matching(|r| r.kind == ReportKind::Recursive && r.involves(&p.left.class_name()));
    assert_eq!(recursive.len(), 1);
    // And the other field is another class: nesting left then right is fine.
    {
        let _l = p.left.lock();
        let _r = q.right.lock();
    }
    assert_ne!(p.left.class_name(), q.right.class_name());
    assert!(c.matching(|r| r.involves(&q.right.class_name())).is_empty());
}

#[derive(Default)]
struct Pair {
    left: Mutex<u32>,
    right: Mutex<u32>,
}

#[test]
fn the_same_field_of_two_instances_nested_is_recursive_locking() {
    let c = ReportCollector::new();
    let (x, y) = (Account::default(), Account::default());
    x.deposit(1);
    y.deposit(2);
    {
        let _x = x.balance.lock();
        let _y = y.balance.lock();
    }
    let recursive =
        c.matching(|r| r.kind == ReportKind::Recursive && r.involves(&x.balance.class_name()));
    assert_eq!(recursive.len(), 1);
    // The report says which fix applies to nesting two locks of one class.
    let text = recursive[0].render();
    assert!(text.contains("lock_nested"), "{text}");
    assert!(text.contains("nest lock"), "{text}");
    assert!(text.contains("separate classes"), "{text}");
}

#[derive(Default)]
struct Tables {
    names: lockdep::std::sync::Mutex<Vec<String>>,
    ids: lockdep::std::sync::RwLock<Vec<u32>>,
}

#[test]
fn the_rule_holds_for_the_std_mirror_and_an_abba_between_fields_is_found() {
    let c = ReportCollector::new();
    let t = Tables::default();
    {
        let _n = t.names.lock().unwrap();
        let _i = t.ids.write().unwrap();
    }
    let names = [t.names.class_name(), t.ids.class_name()];
    assert_ne!(names[0], names[1]);
    assert!(reports_naming(&c, &names).is_empty());
    {
        let _i = t.ids.write().unwrap();
        let _n = t.names.lock().unwrap();
    }
    assert_eq!(reports_naming(&c, &names), vec![ReportKind::Circular]);
}

#[test]
fn a_lock_made_by_new_keeps_its_construction_site_class() {
    let a = Mutex::new(());
    let first = a.class_name();
    drop(a.lock());
    assert_eq!(a.class_name(), first);
    let d: RwLock<u8> = RwLock::default();
    drop(d.read());
    assert!(d.class_name().contains('+'), "{}", d.class_name());
}

#[test]
fn the_same_lock_taken_twice_gets_the_self_deadlock_hint() {
    let c = ReportCollector::new();
    let l = lockdep::RwLock::new(0);
    {
        let _a = l.read();
        let _b = l.read();
    }
    let r = c.matching(|r| r.kind == ReportKind::Recursive && r.involves(&l.class_name()));
    assert_eq!(r.len(), 1);
    assert!(r[0].render().contains("read_recursive"));
}
