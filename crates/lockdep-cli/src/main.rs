//! The `lockdep` command-line tool.
//!
//! `lockdep replay FILE...` replays scenario files (`*.lockdep`) through the validator and
//! prints every report in the kernel's format, then one verdict line per case. Each subcommand
//! lives in its own module; `main` only parses the command line and dispatches.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod replay;
mod selftest;

/// The lock dependency validator of the Linux kernel, for scenario files and Rust programs.
#[derive(Debug, Parser)]
#[command(name = "lockdep", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
enum Command {
    /// Replay scenario files and check their expectations.
    ///
    /// Prints every report in the kernel's format and `case NAME: ok` or `case NAME: FAILED
    /// (...)` per case, then `N passed, M failed`. Exit status: 0 when every case passed, 1 when
    /// any failed, 2 on malformed input.
    Replay {
        /// Scenario files, or directories to search (recursively) for `*.lockdep` files.
        #[arg(required = true, value_name = "FILE")]
        paths: Vec<PathBuf>,
    },
    /// Run the kernel's locking selftest matrix and print it as the kernel's boot-time table.
    ///
    /// Replays the matrix embedded in the binary (scenarios/selftest/), or the scenario files
    /// found in DIR, and prints one row per test with `  ok  |` or `FAILED|` per cell, then the
    /// kernel's summary line. Exit status: 0 when every cell is ok, 1 when one failed, 2 on
    /// malformed input.
    Selftest {
        /// A directory of selftest scenario files to replay instead of the embedded ones.
        #[arg(value_name = "DIR")]
        dir: Option<PathBuf>,
        /// Print every case's reports and verdict before the table.
        #[arg(short, long)]
        verbose: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Replay { paths } => replay::run(&paths),
        Command::Selftest { dir, verbose } => selftest::run(dir.as_deref(), verbose),
    }
}
