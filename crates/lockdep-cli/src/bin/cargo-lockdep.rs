//! `cargo lockdep`: the cargo subcommand that runs a workspace's tests with lockdep recording on
//! and checks every recording as one (see `lockdep_cli::cargo`).

use std::process::ExitCode;

use lockdep_cli::cargo::{self, Parsed, USAGE};

fn main() -> ExitCode {
    match cargo::parse(std::env::args_os().skip(1)) {
        Ok(Parsed::Run(inv)) => cargo::run(&inv),
        Ok(Parsed::Help) => {
            print!("{USAGE}");
            ExitCode::SUCCESS
        }
        Ok(Parsed::Version) => {
            println!("cargo-lockdep {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: cargo lockdep: {e}\n\n{USAGE}");
            ExitCode::from(2)
        }
    }
}
