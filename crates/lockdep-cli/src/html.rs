//! `lockdep graph --format html`: the class graph as one self-contained, interactive page.
//!
//! A real program has hundreds or thousands of classes: no picture of the whole graph stays
//! readable, so the page is a browser of it instead. It lists the reported cycles first (in red),
//! then the classes; a search box filters the classes by name or site; choosing a class shows its
//! dependencies in both directions — the classes taken while holding it, and the classes held
//! when it was taken — each with its dependency types, where it was first seen and the stack
//! that created it; choosing a cycle shows its edges in order with their stacks. Only the lists
//! being looked at are in the document (at most [`LIST_LIMIT`] search results at a time), so a
//! graph of thousands of classes loads at once.
//!
//! The page needs nothing but itself: the graph is embedded as JSON, the script and the styles
//! are inline, and a Content-Security-Policy forbids every fetch. The browser's back button
//! walks back through the classes visited (`#class=N`, `#cycle=N`).
//!
//! Element ids, for tools and tests: `search` (the input), `results` (its list, one
//! `li.class` per class, `data-index` its index), `cycles` (one `li.cycle` per cycle),
//! `details` (the class or cycle shown), and inside it `out-edges` and `in-edges` (one
//! `li.edge` per dependency, `.cycle` on the edges of a reported cycle, its stack in a `pre`).

use serde_json::{json, Value};

use crate::graph::Model;

/// The most search results listed at once.
pub const LIST_LIMIT: usize = 200;

/// Renders the model as an HTML document.
pub fn render(model: &Model) -> String {
    let data = data(model);
    // Inside <script>, `</` must not appear: JSON allows `<` to be escaped in strings (and `<`
    // appears nowhere else in a JSON text).
    let data = serde_json::to_string(&data)
        .unwrap_or_else(|_| "{}".into())
        .replace('<', "\\u003c");
    let title = format!(
        "lockdep graph: {} classes, {} dependencies, {} cycle{}",
        model.nodes.len(),
        model.edges.len(),
        model.cycles,
        if model.cycles == 1 { "" } else { "s" }
    );
    let mut page = String::with_capacity(data.len() + TEMPLATE.len() + 256);
    page.push_str(
        &TEMPLATE
            .replace("{{TITLE}}", &escape(&title))
            .replace("{{LIMIT}}", &LIST_LIMIT.to_string()),
    );
    // The data last, so that the template's own text never contains it.
    page = page.replace("{{DATA}}", &data);
    page
}

/// The graph as the page's script reads it: classes `[name, site]`, edges `[from, to, types,
/// on_cycle, origin, task, [frame...]]` with frames as indices into a table of distinct frame
/// lines, and the cycles as lists of class indices.
fn data(model: &Model) -> Value {
    let mut frames: Vec<&str> = Vec::new();
    let mut frame_ids: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    let edges: Vec<Value> = model
        .edges
        .iter()
        .map(|e| {
            let stack: Vec<usize> = e
                .stack
                .iter()
                .map(|f| {
                    *frame_ids.entry(f.as_str()).or_insert_with(|| {
                        frames.push(f.as_str());
                        frames.len() - 1
                    })
                })
                .collect();
            json!([
                e.from,
                e.to,
                e.types,
                u8::from(e.cycle),
                e.origin,
                e.task,
                stack
            ])
        })
        .collect();
    json!({
        "classes": model.nodes.iter().map(|n| json!([n.name, n.site])).collect::<Vec<_>>(),
        "edges": edges,
        "frames": frames,
        "cycles": model.cycle_paths,
    })
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

const TEMPLATE: &str = r##"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{TITLE}}</title>
<style>
:root { --red: #c62828; --redbg: #fdecea; --line: #ddd; --muted: #666; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.4 system-ui, sans-serif; color: #222; display: flex; height: 100vh; }
code, pre, .mono { font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 13px; }
#side { width: 34%; min-width: 280px; border-right: 1px solid var(--line); display: flex; flex-direction: column; }
#side header { padding: 10px 12px; border-bottom: 1px solid var(--line); }
#side h1 { font-size: 15px; margin: 0 0 8px; }
#search { width: 100%; padding: 6px 8px; font-size: 14px; }
#lists { overflow: auto; flex: 1; padding: 0 12px 12px; }
h2 { font-size: 13px; text-transform: uppercase; letter-spacing: .04em; color: var(--muted); margin: 14px 0 6px; }
ul, ol { list-style: none; margin: 0; padding: 0; }
li.class, #cycles li.cycle { padding: 3px 6px; border-radius: 4px; cursor: pointer; overflow-wrap: anywhere; }
li.class:hover, #cycles li.cycle:hover, li.selected { background: #eef3fb; }
#cycles li.cycle { color: var(--red); background: var(--redbg); margin-bottom: 3px; }
#cycles li.cycle.selected { outline: 2px solid var(--red); }
li.class .site, .site { color: var(--muted); font-size: 12px; }
.badge { display: inline-block; font-size: 11px; padding: 0 5px; border-radius: 8px; background: var(--red); color: #fff; margin-left: 4px; }
#more { color: var(--muted); padding: 4px 6px; }
#details { flex: 1; overflow: auto; padding: 14px 20px; }
#details h2.name { font-size: 18px; text-transform: none; letter-spacing: 0; color: #222; margin: 0 0 4px; overflow-wrap: anywhere; }
li.edge { border: 1px solid var(--line); border-radius: 6px; padding: 6px 10px; margin: 6px 0; }
li.edge.cycle { border-color: var(--red); background: var(--redbg); }
li.edge .dir { color: var(--muted); }
li.edge a { font-weight: 600; }
li.edge .types { color: var(--muted); margin-left: 6px; }
li.edge .origin { color: var(--muted); font-size: 12px; }
li.edge pre { margin: 4px 0 0; white-space: pre-wrap; overflow-wrap: anywhere; }
a { color: #1a56a8; text-decoration: none; cursor: pointer; }
a.oncycle { color: var(--red); }
.empty { color: var(--muted); font-style: italic; }
</style>
</head>
<body>
<div id="side">
<header>
<h1>{{TITLE}}</h1>
<input id="search" type="search" placeholder="Search classes by name or site" autocomplete="off" autofocus>
</header>
<div id="lists">
<h2>Cycles</h2>
<ol id="cycles"></ol>
<h2 id="results-title">Classes</h2>
<ul id="results"></ul>
<div id="more"></div>
</div>
</div>
<main id="details"><p class="empty">Choose a cycle or a class.</p></main>
<script id="lockdep-data" type="application/json">{{DATA}}</script>
<script>
"use strict";
(function () {
  const D = JSON.parse(document.getElementById("lockdep-data").textContent);
  const LIMIT = {{LIMIT}};
  const N = D.classes.length;
  const outs = Array.from({ length: N }, () => []);
  const ins = Array.from({ length: N }, () => []);
  const byPair = new Map();
  D.edges.forEach((e, i) => {
    outs[e[0]].push(i);
    ins[e[1]].push(i);
    byPair.set(e[0] * N + e[1], i);
  });
  const cyclesOf = Array.from({ length: N }, () => []);
  D.cycles.forEach((c, k) => c.forEach((i) => cyclesOf[i].push(k)));
  const haystack = D.classes.map((c) => (c[0] + "\n" + (c[1] || "")).toLowerCase());
  const byName = (a, b) => D.classes[a][0].localeCompare(D.classes[b][0]) || a - b;
  const $ = (id) => document.getElementById(id);

  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function name(i) { return D.classes[i][0]; }
  function classLink(i) {
    const a = el("a", cyclesOf[i].length ? "oncycle" : "", name(i));
    a.dataset.goto = "class=" + i;
    a.href = "#class=" + i;
    return a;
  }
  function go(hash) {
    if (location.hash !== "#" + hash) history.pushState(null, "", "#" + hash);
    route();
  }

  function listCycles() {
    const ol = $("cycles");
    if (!D.cycles.length) ol.appendChild(el("li", "empty", "none"));
    D.cycles.forEach((c, k) => {
      const li = el("li", "cycle", c.concat([c[0]]).map(name).join(" \u2192 "));
      li.dataset.goto = "cycle=" + k;
      ol.appendChild(li);
    });
  }

  function search(q) {
    q = q.trim().toLowerCase();
    let hits = [];
    for (let i = 0; i < N; i++) if (!q || haystack[i].includes(q)) hits.push(i);
    const rank = (i) => {
      const n = name(i).toLowerCase();
      return (cyclesOf[i].length ? 0 : 4) + (n === q ? 0 : n.startsWith(q) ? 1 : 2);
    };
    hits.sort((a, b) => rank(a) - rank(b) || byName(a, b));
    const ul = $("results");
    ul.replaceChildren();
    hits.slice(0, LIMIT).forEach((i) => {
      const li = el("li", "class");
      li.dataset.index = i;
      li.dataset.goto = "class=" + i;
      li.appendChild(el("span", cyclesOf[i].length ? "mono oncycle" : "mono", name(i)));
      if (cyclesOf[i].length) li.appendChild(el("span", "badge", "cycle"));
      const site = D.classes[i][1];
      if (site && site !== name(i)) { li.appendChild(document.createElement("br")); li.appendChild(el("span", "site mono", site)); }
      ul.appendChild(li);
    });
    $("results-title").textContent = q ? hits.length + " of " + N + " classes match" : "Classes (" + N + ")";
    $("more").textContent = hits.length > LIMIT ? (hits.length - LIMIT) + " more: refine the search" : "";
  }

  function stackPre(e) {
    const frames = e[6].map((f) => D.frames[f]);
    return el("pre", "", frames.length ? frames.join("\n") : "(no stack recorded)");
  }
  function edgeItem(ei, other, arrow) {
    const e = D.edges[ei];
    const li = el("li", e[3] ? "edge cycle" : "edge");
    li.dataset.edge = ei;
    li.appendChild(el("span", "dir", arrow + " "));
    li.appendChild(classLink(other));
    li.appendChild(el("span", "types mono", e[2]));
    if (e[3]) li.appendChild(el("span", "badge", "cycle"));
    li.appendChild(el("div", "origin", "first seen in " + e[5] + " of " + e[4]));
    li.appendChild(stackPre(e));
    return li;
  }
  function edgeList(id, items, emptyText) {
    const ul = el("ul");
    ul.id = id;
    if (!items.length) ul.appendChild(el("li", "empty", emptyText));
    items.forEach((x) => ul.appendChild(x));
    return ul;
  }
  function select(hash) {
    document.querySelectorAll("li.selected").forEach((x) => x.classList.remove("selected"));
    document.querySelectorAll('[data-goto="' + hash + '"]').forEach((x) => { if (x.tagName === "LI") x.classList.add("selected"); });
  }

  function showClass(i) {
    const d = $("details");
    d.replaceChildren();
    d.appendChild(el("h2", "name mono", name(i)));
    if (D.classes[i][1]) d.appendChild(el("div", "site mono", D.classes[i][1]));
    if (cyclesOf[i].length) {
      const p = el("p", "", "On cycle ");
      cyclesOf[i].forEach((k, n) => {
        const a = el("a", "oncycle", "#" + (k + 1));
        a.dataset.goto = "cycle=" + k;
        a.href = "#cycle=" + k;
        if (n) p.appendChild(document.createTextNode(", "));
        p.appendChild(a);
      });
      d.appendChild(p);
    }
    const sortEdges = (list, end) => list.slice().sort((a, b) => D.edges[b][3] - D.edges[a][3] || byName(D.edges[a][end], D.edges[b][end]));
    d.appendChild(el("h2", "", "Taken while holding it (" + outs[i].length + ")"));
    d.appendChild(edgeList("out-edges", sortEdges(outs[i], 1).map((ei) => edgeItem(ei, D.edges[ei][1], "\u2192")), "none"));
    d.appendChild(el("h2", "", "Held when it was taken (" + ins[i].length + ")"));
    d.appendChild(edgeList("in-edges", sortEdges(ins[i], 0).map((ei) => edgeItem(ei, D.edges[ei][0], "\u2190")), "none"));
    select("class=" + i);
  }

  function showCycle(k) {
    const c = D.cycles[k];
    const d = $("details");
    d.replaceChildren();
    d.appendChild(el("h2", "name", "Cycle #" + (k + 1) + ": " + c.length + " classes"));
    const items = c.map((from, n) => {
      const to = c[(n + 1) % c.length];
      const ei = byPair.get(from * N + to);
      if (ei === undefined) return el("li", "empty", name(from) + " \u2192 " + name(to));
      const li = edgeItem(ei, to, "\u2192");
      li.insertBefore(classLink(from), li.firstChild);
      li.insertBefore(document.createTextNode(" "), li.childNodes[1]);
      return li;
    });
    d.appendChild(el("h2", "", "Its dependencies, in order"));
    d.appendChild(edgeList("out-edges", items, "none"));
    select("cycle=" + k);
  }

  function route() {
    const m = /^#(class|cycle)=(\d+)$/.exec(location.hash);
    if (!m) return;
    const n = Number(m[2]);
    if (m[1] === "class" && n < N) showClass(n);
    if (m[1] === "cycle" && n < D.cycles.length) showCycle(n);
  }

  document.addEventListener("click", (ev) => {
    const t = ev.target.closest("[data-goto]");
    if (!t) return;
    ev.preventDefault();
    go(t.dataset.goto);
  });
  window.addEventListener("popstate", route);
  $("search").addEventListener("input", (ev) => search(ev.target.value));
  listCycles();
  search($("search").value);
  if (location.hash) route();
  else if (D.cycles.length) showCycle(0);
})();
</script>
</body>
</html>
"##;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::{Edge, Node};

    #[test]
    fn the_data_cannot_close_the_script() {
        let model = Model {
            nodes: vec![
                Node {
                    id: 1,
                    name: "</script><b>".into(),
                    site: None,
                },
                Node {
                    id: 2,
                    name: "b".into(),
                    site: Some("src/x.rs:1:1".into()),
                },
            ],
            edges: vec![Edge {
                from: 0,
                to: 1,
                types: "EN".into(),
                cycle: false,
                origin: "process x[1]".into(),
                task: "main/1".into(),
                stack: vec!["f (src/x.rs:3)".into(), "f (src/x.rs:3)".into()],
            }],
            cycles: 0,
            cycle_paths: vec![],
        };
        let page = render(&model);
        assert_eq!(page.matches("</script>").count(), 2, "only the page's own");
        assert!(page.contains("\\u003c/script>\\u003cb>"));
        // Frames are stored once.
        assert_eq!(page.matches("f (src/x.rs:3)").count(), 1);
        assert!(!page.contains("http://") && !page.contains("https://"));
    }
}
