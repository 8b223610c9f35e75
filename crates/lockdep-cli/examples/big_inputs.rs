//! Writes large inputs for measuring the `lockdep` command (see docs/PERFORMANCE.md):
//!
//! - `big_inputs recording N FILE`: a real recording of N classes, each taken in hardirq and
//!   softirq context, exclusively and shared, so that each is written several times (once when
//!   registered, again for every new usage bit), as a long test run writes them;
//! - `big_inputs scenario MB FILE`: a scenario file of about MB megabytes: cases of a few
//!   declarations and many lock/unlock pairs, nested calls and an AB-BA inversion each;
//! - `big_inputs fleet RECORDINGS DEPS DIR`: a CI fleet's recordings: RECORDINGS processes
//!   (one recording each) whose lock orders together make DEPS dependencies over
//!   about `RECORDINGS * 100` classes. Recording `r` takes the classes of a window of 200 (its
//!   own 100 and the next one's), always in the order of their numbers, but for one inversion
//!   in every hundredth recording: a cycle per hundred processes.
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
    eprintln!(
        "usage: big_inputs recording N FILE | big_inputs scenario MB FILE | \
         big_inputs fleet RECORDINGS DEPS DIR"
    );
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let [kind, recordings, deps, dir] = &args[..] {
        if kind != "fleet" {
            return usage();
        }
        let (Ok(recordings), Ok(deps)) = (recordings.parse(), deps.parse()) else {
            return usage();
        };
        return match fleet(recordings, deps, dir) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("big_inputs: {dir}: {e}");
                ExitCode::FAILURE
            }
        };
    }
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

/// Classes of one recording's own (the window is twice this: its own and the next one's).
const FLEET_STEP: usize = 100;

/// See the module's docs: `recordings` recordings in `dir`, `deps` dependencies in all.
fn fleet(recordings: usize, deps: usize, dir: &str) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    let per = deps.div_ceil(recordings.max(1));
    let window = 2 * FLEET_STEP;
    // The pairs `(a, b)`, `a < b`, of a window, in an order that spreads over all of them.
    let pairs: Vec<(usize, usize)> = (0..window)
        .flat_map(|a| (a + 1..window).map(move |b| (a, b)))
        .collect();
    if per > pairs.len() {
        return Err(format!(
            "at most {} dependencies per recording",
            pairs.len()
        ));
    }
    for r in 0..recordings {
        let file = format!("{dir}/fleet-{r:05}.lockdep");
        let _ = std::fs::remove_file(&file);
        let rec = Recorder::create(&file).map_err(|e| e.to_string())?;
        let base = r * FLEET_STEP;
        let mut text = format!("case process{r}\n");
        for i in 0..window {
            text.push_str(&format!("mutex L{}\n", base + i));
        }
        // A stride through the pairs, so that every recording covers its window evenly.
        let stride = pairs.len() / per.max(1);
        for k in 0..per {
            let (a, b) = pairs[(k * stride.max(1)) % pairs.len()];
            let (a, b) = (base + a, base + b);
            text.push_str(&format!("lock L{a}\nlock L{b}\nunlock L{b}\nunlock L{a}\n"));
        }
        if r % 100 == 99 {
            // Its first pair (taken above in order) the other way too: a cycle.
            let (a, b) = (base + 1, base);
            text.push_str(&format!("lock L{a}\nlock L{b}\nunlock L{b}\nunlock L{a}\n"));
        }
        scenario::replay_stream("fleet.lockdep", text.as_bytes(), &mut Record(Some(rec)))
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}
