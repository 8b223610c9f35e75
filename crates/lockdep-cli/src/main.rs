//! The `lockdep` command-line tool.

fn main() {
    eprintln!("lockdep: not built yet");
    std::process::exit(2);
}
