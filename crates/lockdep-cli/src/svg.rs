//! A self-contained SVG of the class graph, laid out without graphviz.
//!
//! The layout is a simple layered (Sugiyama-style) one: the edges that close cycles are turned
//! around (a depth-first search finds them), every class is put on the layer of its longest path
//! from a class with nothing before it, the classes of each layer are ordered by a few sweeps of
//! the barycentre heuristic, and edges are drawn as curves: downward edges from the bottom of
//! one box to the top of the next, the others (the edges of cycles, mostly) around the side.
//! Edges on a reported cycle are red; hovering over an edge shows where it was first seen.

use std::fmt::Write as _;

use crate::graph::Model;

const CHAR_W: f64 = 7.2;
const BOX_H: f64 = 42.0;
const GAP_X: f64 = 40.0;
const GAP_Y: f64 = 90.0;
const MARGIN: f64 = 30.0;

/// Renders the model as an SVG document.
pub fn render(model: &Model) -> String {
    let n = model.nodes.len();
    let layers = layer(model);
    let depth = layers.iter().copied().max().map_or(0, |m| m + 1);
    let mut rows: Vec<Vec<usize>> = vec![Vec::new(); depth];
    for (i, l) in layers.iter().enumerate() {
        rows[*l].push(i);
    }
    order(model, &layers, &mut rows);

    let width_of = |i: usize| {
        let node = &model.nodes[i];
        let chars = node
            .name
            .chars()
            .count()
            .max(node.site.as_deref().map_or(0, |s| s.chars().count()));
        (chars as f64 * CHAR_W + 20.0).max(60.0)
    };
    let row_width = |row: &Vec<usize>| {
        row.iter().map(|&i| width_of(i)).sum::<f64>() + GAP_X * row.len().saturating_sub(1) as f64
    };
    let widest = rows.iter().map(row_width).fold(0.0, f64::max);
    let mut pos = vec![(0.0, 0.0, 0.0); n]; // x, y, width
    for (r, row) in rows.iter().enumerate() {
        let mut x = MARGIN + (widest - row_width(row)) / 2.0;
        let y = MARGIN + r as f64 * (BOX_H + GAP_Y);
        for &i in row {
            let w = width_of(i);
            pos[i] = (x, y, w);
            x += w + GAP_X;
        }
    }
    let legend_y = MARGIN + depth as f64 * (BOX_H + GAP_Y);
    let width = (widest + 2.0 * MARGIN + 120.0).max(420.0);
    let height = legend_y + 40.0;

    let mut out = String::new();
    let _ = writeln!(out, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>");
    let _ = writeln!(
        out,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width:.0}\" height=\"{height:.0}\" \
         viewBox=\"0 0 {width:.0} {height:.0}\" font-family=\"monospace\" font-size=\"12\">"
    );
    let _ = writeln!(
        out,
        "<title>lockdep class graph: {} classes, {} dependencies, {} cycles</title>",
        n,
        model.edges.len(),
        model.cycles
    );
    out.push_str(
        "<defs>\n\
         <marker id=\"arrow\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" markerWidth=\"8\" \
         markerHeight=\"8\" orient=\"auto-start-reverse\"><path d=\"M0,0 L10,5 L0,10 z\" \
         fill=\"#555\"/></marker>\n\
         <marker id=\"arrow-cycle\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" markerWidth=\"8\" \
         markerHeight=\"8\" orient=\"auto-start-reverse\"><path d=\"M0,0 L10,5 L0,10 z\" \
         fill=\"#d00\"/></marker>\n</defs>\n",
    );
    let _ = writeln!(
        out,
        "<rect x=\"0\" y=\"0\" width=\"{width:.0}\" height=\"{height:.0}\" fill=\"white\"/>"
    );
    // Edges first, so boxes are drawn over their ends. Cycle edges last, on top.
    let mut edges: Vec<&crate::graph::Edge> = model.edges.iter().collect();
    edges.sort_by_key(|e| e.cycle);
    for e in edges {
        let (fx, fy, fw) = pos[e.from];
        let (tx, ty, tw) = pos[e.to];
        let (path, lx, ly) = if layers[e.to] > layers[e.from] {
            let (x1, y1) = (fx + fw / 2.0, fy + BOX_H);
            let (x2, y2) = (tx + tw / 2.0, ty);
            let dy = (y2 - y1) / 2.0;
            (
                format!(
                    "M{x1:.1},{y1:.1} C{x1:.1},{:.1} {x2:.1},{:.1} {x2:.1},{y2:.1}",
                    y1 + dy,
                    y2 - dy
                ),
                (x1 + x2) / 2.0,
                (y1 + y2) / 2.0,
            )
        } else {
            // Upward or sideways: leave from the right side, arrive on the right side.
            let (x1, y1) = (fx + fw, fy + BOX_H * 0.65);
            let (x2, y2) = (tx + tw, ty + BOX_H * 0.35);
            let bulge = 60.0 + (y1 - y2).abs() * 0.25;
            let cx = x1.max(x2) + bulge;
            (
                format!("M{x1:.1},{y1:.1} C{cx:.1},{y1:.1} {cx:.1},{y2:.1} {x2:.1},{y2:.1}"),
                cx - bulge * 0.25,
                (y1 + y2) / 2.0,
            )
        };
        let (color, marker, stroke) = if e.cycle {
            ("#d00", "arrow-cycle", "2.5")
        } else {
            ("#555", "arrow", "1.2")
        };
        let mut tip = format!(
            "{} -> {} ({})\nfirst seen in {} of {}",
            model.nodes[e.from].name, model.nodes[e.to].name, e.types, e.task, e.origin
        );
        for f in e.stack.iter().take(12) {
            tip.push_str("\n  ");
            tip.push_str(f);
        }
        let _ = writeln!(
            out,
            "<g class=\"edge{}\"><title>{}</title><path d=\"{path}\" fill=\"none\" \
             stroke=\"{color}\" stroke-width=\"{stroke}\" marker-end=\"url(#{marker})\"/>\
             <text x=\"{lx:.1}\" y=\"{ly:.1}\" fill=\"{color}\" font-size=\"10\" \
             text-anchor=\"middle\">{}</text></g>",
            if e.cycle { " cycle" } else { "" },
            esc(&tip),
            esc(&e.types),
        );
    }
    for (i, node) in model.nodes.iter().enumerate() {
        let (x, y, w) = pos[i];
        let on_cycle = model
            .edges
            .iter()
            .any(|e| e.cycle && (e.from == i || e.to == i));
        let stroke = if on_cycle { "#d00" } else { "#333" };
        let _ = write!(
            out,
            "<g class=\"class\" id=\"c{:016x}\"><title>{}</title>\
             <rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{w:.1}\" height=\"{BOX_H}\" rx=\"5\" \
             fill=\"#f4f4ff\" stroke=\"{stroke}\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" font-weight=\"bold\">{}</text>",
            node.id,
            esc(&format!("{} (key {:016x})", node.name, node.id)),
            x + w / 2.0,
            y + 17.0,
            esc(&node.name),
        );
        if let Some(site) = node.site.as_deref().filter(|s| *s != node.name) {
            let _ = write!(
                out,
                "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" font-size=\"10\" \
                 fill=\"#555\">{}</text>",
                x + w / 2.0,
                y + 33.0,
                esc(site),
            );
        }
        out.push_str("</g>\n");
    }
    let _ = writeln!(
        out,
        "<text x=\"{MARGIN}\" y=\"{:.1}\" fill=\"#333\">{} classes, {} dependencies, \
         {} cycle(s): cycle edges in red; hover over an edge for where it was first seen</text>",
        legend_y + 15.0,
        n,
        model.edges.len(),
        model.cycles
    );
    out.push_str("</svg>\n");
    out
}

/// The layer of each class: the longest path to it from a class with nothing before it, with
/// the back edges of a depth-first search (those closing cycles) left out.
fn layer(model: &Model) -> Vec<usize> {
    let n = model.nodes.len();
    let mut succ: Vec<Vec<usize>> = vec![Vec::new(); n];
    for e in &model.edges {
        if e.from != e.to {
            succ[e.from].push(e.to);
        }
    }
    // Iterative DFS: state 0 new, 1 on the stack, 2 done. `finish` is the post-order.
    let mut state = vec![0u8; n];
    let mut finish = Vec::with_capacity(n);
    let mut back = std::collections::HashSet::new();
    for root in 0..n {
        if state[root] != 0 {
            continue;
        }
        let mut stack = vec![(root, 0usize)];
        state[root] = 1;
        while let Some(top) = stack.last_mut() {
            let v = top.0;
            if top.1 < succ[v].len() {
                let w = succ[v][top.1];
                top.1 += 1;
                match state[w] {
                    0 => {
                        state[w] = 1;
                        stack.push((w, 0));
                    }
                    1 => {
                        back.insert((v, w));
                    }
                    _ => {}
                }
            } else {
                state[v] = 2;
                finish.push(v);
                stack.pop();
            }
        }
    }
    let mut layer = vec![0usize; n];
    for &v in finish.iter().rev() {
        for &w in &succ[v] {
            if !back.contains(&(v, w)) {
                layer[w] = layer[w].max(layer[v] + 1);
            }
        }
    }
    layer
}

/// Orders each layer by the barycentre of each class's neighbours in the layers above, then
/// below, a few times over.
fn order(model: &Model, layers: &[usize], rows: &mut [Vec<usize>]) {
    let n = model.nodes.len();
    let mut place = vec![0.0f64; n];
    let refresh = |rows: &[Vec<usize>], place: &mut Vec<f64>| {
        for row in rows {
            for (k, &i) in row.iter().enumerate() {
                place[i] = k as f64;
            }
        }
    };
    refresh(rows, &mut place);
    for sweep in 0..6 {
        let down = sweep % 2 == 0;
        for r in 0..rows.len() {
            let r = if down { r } else { rows.len() - 1 - r };
            let want = if down { r.wrapping_sub(1) } else { r + 1 };
            let mut keyed: Vec<(f64, usize)> = rows[r]
                .iter()
                .map(|&i| {
                    let (mut sum, mut cnt) = (0.0, 0usize);
                    for e in &model.edges {
                        let other = if e.to == i && layers[e.from] == want {
                            Some(e.from)
                        } else if e.from == i && layers[e.to] == want {
                            Some(e.to)
                        } else {
                            None
                        };
                        if let Some(o) = other {
                            sum += place[o];
                            cnt += 1;
                        }
                    }
                    (if cnt > 0 { sum / cnt as f64 } else { place[i] }, i)
                })
                .collect();
            keyed.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            rows[r] = keyed.into_iter().map(|(_, i)| i).collect();
            for (k, &i) in rows[r].iter().enumerate() {
                place[i] = k as f64;
            }
        }
    }
}

/// Escapes text for XML content and attribute values.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' => out.push_str("&#10;"),
            // Characters XML 1.0 does not allow at all.
            c if (c as u32) < 0x20 && c != '\t' => out.push('?'),
            c => out.push(c),
        }
    }
    out
}
