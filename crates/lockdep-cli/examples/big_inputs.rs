//! Writes large inputs for measuring the `lockdep` command (see docs/PERFORMANCE.md):
//!
//! - `big_inputs recording N FILE`: a real recording of N classes, each taken in hardirq and
//!   softirq context, exclusively and shared, so that each is written several times (once when
//!   registered, again for every new usage bit), as a long test run writes them;
//! - `big_inputs scenario MB FILE`: a scenario file of about MB megabytes: cases of a few
//!   declarations and many lock/unlock pairs, nested calls and an AB-BA inversion each.
//!
//! ```text
//! cargo run --release -p lockdep-cli --example big_inputs -- recording 100000 /tmp/big.ldrec
//! /usr/bin/time -v target/release/lockdep check /tmp/big.ldrec
//! ```

use std::io::{BufWriter, Write};
use std::process::ExitCode;

use lockdep::record::Recorder;
use lockdep::scenario::{self, Case, CaseDriver, CaseResult};
use lockdep::{Engine, Options};

fn usage() -> ExitCode {
    eprintln!("usage: big_inputs recording N FILE | big_inputs scenario MB FILE");
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [kind, n, file] = &args[..] else {
        return usage();
    };
    let Ok(n) = n.parse::<usize>() else {
        return usage();
    };
    let r = match kind.as_str() {
        "recording" => recording(n, file),
        "scenario" => scenario_file(n, file),
        _ => return usage(),
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("big_inputs: {file}: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The statements that make class `i` and give it four usage bits.
fn class_statements(i: usize, out: &mut String) {
    use std::fmt::Write;
    let _ = write!(
        out,
        "rwlock L{i}\nhardirq_enter\nlock L{i}\nunlock L{i}\nlock_shared L{i}\nunlock L{i}\n\
         hardirq_exit\nsoftirq_enter\nlock L{i}\nunlock L{i}\nlock_shared L{i}\nunlock L{i}\n\
         softirq_exit\n"
    );
}

struct Record(Option<Recorder>);

impl CaseDriver for Record {
    fn engine(&mut self, _: &Case) -> Engine {
        match &self.0 {
            Some(r) => Engine::with_observer(Options::default(), Box::new(r.clone())),
            None => Engine::new(),
        }
    }
    fn done(&mut self, _: &Case, _: CaseResult, engine: Engine) {
        if let Some(r) = &self.0 {
            r.record_chains(&engine);
        }
    }
}

fn recording(n: usize, file: &str) -> Result<(), String> {
    let _ = std::fs::remove_file(file);
    let rec = Recorder::create(file).map_err(|e| e.to_string())?;
    let mut text = String::new();
    for i in 0..n {
        class_statements(i, &mut text);
    }
    scenario::replay_stream("big.lockdep", text.as_bytes(), &mut Record(Some(rec)))
        .map_err(|e| e.to_string())?;
    Ok(())
}

fn scenario_file(mb: usize, file: &str) -> Result<(), String> {
    let f = std::fs::File::create(file).map_err(|e| e.to_string())?;
    let mut w = BufWriter::new(f);
    let target = (mb as u64) << 20;
    let mut written = 0u64;
    let mut case = 0usize;
    while written < target {
        let mut s = format!("case c{case}\nmutex A\nmutex B\nspin S\n");
        s.push_str("call outer\ncall inner\nlock A\nlock B\nunlock B\nunlock A\nret\nret\n");
        for _ in 0..2000 {
            s.push_str("lock A\nlock S\nunlock S\nunlock A\n");
        }
        s.push_str("lock B\nlock A\nunlock A\nunlock B\nexpect circular\n");
        w.write_all(s.as_bytes()).map_err(|e| e.to_string())?;
        written += s.len() as u64;
        case += 1;
    }
    w.flush().map_err(|e| e.to_string())
}
