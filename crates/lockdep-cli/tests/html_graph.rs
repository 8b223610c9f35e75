//! `lockdep graph --format html` in a real headless Chromium.
//!
//! The page is made from a scenario of 2,000 classes with one cycle, then loaded with
//! `chromium --headless --dump-dom`, with two scripts added to a copy of it: one first in
//! `<head>` that records every error, and one at the end of `<body>` that, once the page has
//! loaded, types into the search box, clicks the class found and writes what the page showed
//! into the DOM as JSON, which the dump then carries back here.
//!
//! Chromium is found as `$LOCKDEP_CHROMIUM`, or `chromium`, `chromium-browser`,
//! `google-chrome` on the `PATH`. Without it the test is skipped with a message, except in CI
//! (`CI` set, as `.ci/run` does), where it fails.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const CLASSES: usize = 2000;

fn chromium() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("LOCKDEP_CHROMIUM") {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH")?;
    for dir in std::env::split_paths(&path) {
        for name in [
            "chromium",
            "chromium-browser",
            "google-chrome",
            "google-chrome-stable",
        ] {
            let p = dir.join(name);
            if p.is_file() {
                return Some(p);
            }
        }
    }
    None
}

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
}

fn scratch() -> PathBuf {
    let d =
        Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("html-graph-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A chain `lock_0000 -> lock_0001 -> ... -> lock_1999`, taken pairwise by `walker` under a
/// simulated call `walk_pools`, and `lock_0010 -> lock_0005`, taken by `inverter`, which closes
/// the cycle `lock_0005 -> ... -> lock_0010 -> lock_0005`.
fn scenario() -> String {
    let mut s = String::from("case big\n");
    for i in 0..CLASSES {
        s.push_str(&format!("mutex lock_{i:04}\n"));
    }
    s.push_str("thread walker pid=10\ncall walk_pools\n");
    for i in 0..CLASSES - 1 {
        s.push_str(&format!(
            "lock lock_{i:04}\nlock lock_{:04}\nunlock lock_{:04}\nunlock lock_{i:04}\n",
            i + 1,
            i + 1
        ));
    }
    s.push_str("ret\nthread inverter pid=20\ncall invert_pools\n");
    s.push_str("lock lock_0010\nlock lock_0005\nunlock lock_0005\nunlock lock_0010\nret\n");
    s.push_str("expect circular\n");
    s
}

const RECORD_ERRORS: &str = r#"<script>
window.__errors = [];
window.addEventListener("error", (e) => window.__errors.push(String(e.message)));
window.addEventListener("unhandledrejection", (e) => window.__errors.push(String(e.reason)));
</script>"#;

const DRIVE: &str = r##"<script>
window.addEventListener("load", () => {
  const r = {};
  const texts = (sel) => [...document.querySelectorAll(sel)].map((x) => x.textContent);
  const edges = (id) => [...document.querySelectorAll("#" + id + " li.edge")].map((li) => ({
    class: li.querySelector("a").textContent,
    cycle: li.classList.contains("cycle"),
    stack: li.querySelector("pre").textContent,
    origin: li.querySelector(".origin").textContent,
  }));
  const searchAndClick = (q) => {
    const input = document.getElementById("search");
    input.value = q;
    input.dispatchEvent(new Event("input", { bubbles: true }));
    const hits = [...document.querySelectorAll("#results li.class")];
    const out = { hits: hits.map((li) => li.querySelector("span").textContent) };
    if (hits.length) {
      hits[0].click();
      out.title = document.querySelector("#details h2.name").textContent;
      out.out = edges("out-edges");
      out.in = edges("in-edges");
      out.hash = location.hash;
    }
    return out;
  };
  try {
    r.loadErrors = window.__errors.slice();
    r.cycles = texts("#cycles li.cycle");
    r.firstView = document.querySelector("#details h2.name").textContent;
    r.initialResults = document.querySelectorAll("#results li.class").length;
    r.more = document.getElementById("more").textContent;
    r.elements = document.getElementsByTagName("*").length;
    r.last = searchAndClick("lock_1999");
    r.onCycle = searchAndClick("LOCK_0007");
    r.none = searchAndClick("no such class");
    document.querySelector("#cycles li.cycle").click();
    r.cycleView = edges("out-edges");
  } catch (e) {
    r.exception = String(e && e.stack || e);
  }
  r.errors = window.__errors;
  const pre = document.createElement("pre");
  pre.id = "test-result";
  pre.textContent = JSON.stringify(r);
  document.body.appendChild(pre);
});
</script>"##;

fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

/// Loads `page` in headless Chromium and returns the dumped DOM.
fn dump_dom(browser: &Path, page: &Path, dir: &Path) -> String {
    let profile = dir.join("profile");
    std::fs::create_dir_all(&profile).unwrap();
    let out_path = dir.join("dom.html");
    let err_path = dir.join("chromium.log");
    let mut child = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            "--virtual-time-budget=10000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg("--dump-dom")
        .arg(format!("file://{}", page.display()))
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(&err_path).unwrap())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", browser.display()));
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let log = std::fs::read_to_string(&err_path).unwrap_or_default();
            assert!(status.success(), "chromium failed ({status}): {log}");
            break;
        }
        if start.elapsed() > Duration::from_secs(120) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium did not finish within 120 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    std::fs::read_to_string(&out_path).unwrap()
}

#[test]
fn the_html_graph_loads_searches_and_shows_edges_in_headless_chromium() {
    let Some(browser) = chromium() else {
        assert!(
            !in_ci(),
            "Chromium is not installed (apt-get install chromium); CI must run this test"
        );
        eprintln!("SKIPPED: Chromium is not installed (apt-get install chromium), not in CI");
        return;
    };
    let dir = scratch();
    let scenario_path = dir.join("big.lockdep");
    std::fs::write(&scenario_path, scenario()).unwrap();
    let page = dir.join("graph.html");
    let out = Command::new(env!("CARGO_BIN_EXE_lockdep"))
        .args(["graph", "--format", "html", "-o"])
        .arg(&page)
        .arg(&scenario_path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let html = std::fs::read_to_string(&page).unwrap();
    for external in ["http://", "https://", "src=\"", "<link"] {
        assert!(!html.contains(external), "the page refers to {external}");
    }

    // The copy with the test's two scripts.
    let driven = html
        .replacen("<head>", &format!("<head>\n{RECORD_ERRORS}"), 1)
        .replacen("</body>", &format!("{DRIVE}\n</body>"), 1);
    let driven_path = dir.join("driven.html");
    std::fs::write(&driven_path, driven).unwrap();
    let dom = dump_dom(&browser, &driven_path, &dir);
    let start = dom.find("<pre id=\"test-result\">").unwrap_or_else(|| {
        panic!(
            "the page script left no result: {}",
            &dom[dom.len().saturating_sub(3000)..]
        )
    }) + "<pre id=\"test-result\">".len();
    let end = start + dom[start..].find("</pre>").unwrap();
    let r: Value = serde_json::from_str(&unescape(&dom[start..end])).unwrap();
    eprintln!("{r:#}");

    assert!(r.get("exception").is_none(), "{r:#}");
    assert_eq!(
        r["loadErrors"],
        serde_json::json!([]),
        "errors while loading"
    );
    assert_eq!(r["errors"], serde_json::json!([]), "errors while driving");

    // The cycle listed first, and shown first.
    let cycles = r["cycles"].as_array().unwrap();
    assert_eq!(cycles.len(), 1);
    assert_eq!(
        cycles[0],
        "lock_0010 → lock_0005 → lock_0006 → lock_0007 → lock_0008 → lock_0009 → lock_0010"
    );
    assert_eq!(r["firstView"], "Cycle #1: 6 classes");
    // Usable at 2,000 classes: only a page of them is in the document.
    assert_eq!(r["initialResults"], 200);
    assert_eq!(r["more"], "1800 more: refine the search");
    assert!(r["elements"].as_u64().unwrap() < 2000, "{}", r["elements"]);

    // Search finds the class; clicking it shows its edges, with their stacks.
    let last = &r["last"];
    assert_eq!(last["hits"], serde_json::json!(["lock_1999"]));
    assert_eq!(last["title"], "lock_1999");
    assert_eq!(last["hash"], "#class=1999");
    assert_eq!(last["out"], serde_json::json!([]));
    let ins = last["in"].as_array().unwrap();
    assert_eq!(ins.len(), 1);
    assert_eq!(ins[0]["class"], "lock_1998");
    assert_eq!(ins[0]["cycle"], false);
    assert_eq!(ins[0]["stack"], "walk_pools");
    assert!(ins[0]["origin"].as_str().unwrap().contains("walker/10"));

    // A class on the cycle (found case-insensitively): both directions, the cycle's edges red.
    let on = &r["onCycle"];
    assert_eq!(on["hits"], serde_json::json!(["lock_0007"]));
    assert_eq!(on["out"][0]["class"], "lock_0008");
    assert_eq!(on["out"][0]["cycle"], true);
    assert_eq!(on["in"][0]["class"], "lock_0006");
    assert_eq!(on["in"][0]["cycle"], true);
    assert_eq!(r["none"]["hits"], serde_json::json!([]));

    // The cycle's view: its edges in order, the closing one first seen in the inverter.
    let view = r["cycleView"].as_array().unwrap();
    assert_eq!(view.len(), 6);
    assert!(view.iter().all(|e| e["cycle"] == true));
    assert_eq!(view[0]["stack"], "invert_pools");
    assert!(view[0]["origin"].as_str().unwrap().contains("inverter/20"));
    let _ = std::fs::remove_dir_all(&dir);
}
