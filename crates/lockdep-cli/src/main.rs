//! The `lockdep` command-line tool.
//!
//! `lockdep replay FILE...` replays scenario files (`*.lockdep`) through the validator and
//! prints every report in the kernel's format, then one verdict line per case. `lockdep check`,
//! `graph`, `classes`, `chains` and `stats` read the recordings of many processes
//! (`LOCKDEP_RECORD=DIR`) and check or show them as one graph; `lockdep stat` merges their lock
//! statistics (`LOCKDEP_STAT=1`). `lockdep run -- PROG` runs a C or C++ program with the pthread
//! interposer preloaded. Each subcommand
//! lives in its own module; `main` only parses the command line and dispatches.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use lockdep_cli::{check, graph, replay, run, selftest, stat, views};

/// The lock dependency validator of the Linux kernel, for scenario files and Rust programs.
#[derive(Debug, Parser)]
#[command(name = "lockdep", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Follow symbolic links found inside the directories searched (by default they are
    /// skipped with a warning: they may lead out of the directory, or loop). Links named on the
    /// command line are always followed.
    #[arg(long, global = true)]
    follow_links: bool,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
enum Command {
    /// Replay scenario files and check their expectations.
    ///
    /// Prints every report in the kernel's format and `case NAME: ok` or `case NAME: FAILED
    /// (...)` per case, then `N passed, M failed`. Exit status: 0 when every case passed, 1 when
    /// any failed, 2 on malformed input or when no scenario file was found. Files are read and
    /// replayed statement by statement, in bounded memory.
    Replay {
        /// Scenario files, or directories to search (recursively) for `*.lockdep` files.
        #[arg(required = true, value_name = "FILE")]
        paths: Vec<PathBuf>,
        /// After each case, print its /proc/lockdep, /proc/lockdep_chains and
        /// /proc/lockdep_stats views.
        #[arg(long)]
        dump: bool,
    },
    /// Merge recordings (`LOCKDEP_RECORD=DIR`) and scenario files, and report every cycle.
    ///
    /// Prints one kernel-format circular report per distinct cycle, naming for every edge the
    /// process, test and stack where it was first seen. Exit status: 0 if no cycle, 1 if any,
    /// 2 on bad input (what could be read is still checked: the other files, and the good
    /// records of a damaged recording) or when nothing at all was found to read.
    Check {
        /// Recordings (`*.ldrec`), scenario files (`*.lockdep`), or directories of them.
        #[arg(required = true, value_name = "DIR|FILE")]
        paths: Vec<PathBuf>,
        /// Output format: the kernel's reports, or one JSON document (docs/json-schema.md).
        #[arg(long, value_enum, default_value = "text")]
        format: check::Format,
        /// The suppression file (default: `$LOCKDEP_SUPPRESS`, else `lockdep.toml` at the
        /// workspace root, if there is one).
        #[arg(long, value_name = "FILE")]
        suppress: Option<PathBuf>,
    },
    /// Write the merged class graph, with the edges of cycles highlighted.
    Graph {
        /// Recordings, scenario files, or directories of them.
        #[arg(required = true, value_name = "DIR|FILE")]
        paths: Vec<PathBuf>,
        /// Output format (`svg` is laid out by lockdep itself, `html` is an interactive page:
        /// open either in a browser).
        #[arg(long, value_enum, default_value = "dot")]
        format: graph::Format,
        /// Write to this file instead of stdout.
        #[arg(long, short = 'o', value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Print the classes of merged recordings, as /proc/lockdep does.
    Classes {
        /// Recordings, scenario files, or directories of them.
        #[arg(required = true, value_name = "DIR|FILE")]
        paths: Vec<PathBuf>,
    },
    /// Print the lock chains of merged recordings, as /proc/lockdep_chains does.
    Chains {
        /// Recordings, scenario files, or directories of them.
        #[arg(required = true, value_name = "DIR|FILE")]
        paths: Vec<PathBuf>,
    },
    /// Print the statistics of merged recordings, as /proc/lockdep_stats does.
    Stats {
        /// Recordings, scenario files, or directories of them.
        #[arg(required = true, value_name = "DIR|FILE")]
        paths: Vec<PathBuf>,
    },
    /// Run a program with its pthread locks validated (the interposer preloaded).
    ///
    /// PROG's mutexes, rwlocks, spinlocks and condition-variable waits go through the validator;
    /// reports are printed to its stderr. `LOCKDEP=warn|panic|off` and `LOCKDEP_RECORD=DIR`
    /// work as in Rust programs (`panic` aborts PROG after the report). The exit status is
    /// PROG's; 2 if the library is missing, 127 if PROG cannot be run.
    #[command(trailing_var_arg = true)]
    Run {
        /// The interposer to preload (default: `LOCKDEP_PRELOAD`, else liblockdep_preload.so
        /// next to this executable, else in ../lib/ from it).
        #[arg(long, value_name = "PATH")]
        preload: Option<PathBuf>,
        /// The program and its arguments.
        #[arg(required = true, allow_hyphen_values = true, value_name = "PROG")]
        command: Vec<std::ffi::OsString>,
    },
    /// Merge the lock statistics of recordings (`LOCKDEP_STAT=1 LOCKDEP_RECORD=DIR`) and print
    /// them as the kernel's /proc/lock_stat does.
    ///
    /// Classes are merged by identity over every process and sorted by total wait time unless
    /// `--sort` says otherwise. Exit status: 0, or 2 on bad input.
    Stat {
        /// Recordings (`*.ldrec`), or directories of them.
        #[arg(required = true, value_name = "DIR|FILE")]
        paths: Vec<PathBuf>,
        /// What to sort the classes by (largest first).
        #[arg(long, value_enum, default_value = "wait")]
        sort: stat::Sort,
        /// Output format: the kernel's table, JSON, or an SVG chart of the top classes.
        #[arg(long, value_enum, default_value = "text")]
        format: stat::Format,
        /// Write to this file instead of stdout.
        #[arg(long, short = 'o', value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Run the kernel's locking selftest matrix and print it as the kernel's boot-time table.
    ///
    /// Replays the matrix embedded in the binary (crates/lockdep-cli/selftest/), or the scenario files
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
    lockdep_cli::files::set_follow_links(cli.follow_links);
    match cli.command {
        Command::Replay { paths, dump } => replay::run(&paths, dump),
        Command::Check {
            paths,
            format,
            suppress,
        } => check::run(&paths, format, suppress.as_deref()),
        Command::Graph {
            paths,
            format,
            output,
        } => graph::run(&paths, format, output.as_deref()),
        Command::Classes { paths } => views::run(&paths, views::View::Classes),
        Command::Chains { paths } => views::run(&paths, views::View::Chains),
        Command::Stats { paths } => views::run(&paths, views::View::Stats),
        Command::Stat {
            paths,
            sort,
            format,
            output,
        } => stat::run(&paths, sort, format, output.as_deref()),
        Command::Selftest { dir, verbose } => selftest::run(dir.as_deref(), verbose),
        Command::Run { preload, command } => run::run(preload.as_deref(), &command),
    }
}
