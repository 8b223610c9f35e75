//! Detects what the compiler's standard library offers beyond the crate's minimum Rust version,
//! so `lockdep::std::sync` mirrors exactly the std it is built with.

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rustc-check-cfg=cfg(lockdep_std_wait)");
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let minor = Command::new(rustc)
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|v| v.split('.').nth(1).and_then(|m| m.parse::<u32>().ok()));
    // `Once::wait`, `Once::wait_force` and `OnceLock::wait`: Rust 1.86.
    if minor.is_some_and(|m| m >= 86) {
        println!("cargo:rustc-cfg=lockdep_std_wait");
    }
}
