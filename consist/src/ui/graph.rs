//! A lineage graph laid out left to right for an SVG picture: data flows from a column to the
//! next (artifact, the run that read it, what that run wrote...), laid out here on the server so
//! the page needs no script and the static site draws the same picture.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use crate::lineage::LineageGraph;

/// Width and height of a node; the gaps between columns and rows.
const NODE_W: f64 = 168.0;
const NODE_H: f64 = 40.0;
const COLUMN: f64 = NODE_W + 56.0;
const ROW: f64 = NODE_H + 16.0;
const MARGIN: f64 = 12.0;

/// A placed node.
#[derive(Debug, Serialize)]
pub(super) struct Node {
    /// A run id or an artifact id.
    pub id: String,
    /// `run` or `artifact`.
    pub kind: &'static str,
    /// First line: the model, or the artifact's key.
    pub label: String,
    /// Second line: iteration and hit/executed, or the artifact's short id.
    pub detail: String,
    /// CSS class: `hit`, `executed`, `failed`, `running`, `artifact`.
    pub class: &'static str,
    /// Whether this is what the graph is around.
    pub focus: bool,
    /// Top-left corner.
    pub x: f64,
    /// Top-left corner.
    pub y: f64,
}

/// The picture: nodes, edges as SVG path data, and its size.
#[derive(Debug, Serialize)]
pub(super) struct Layout {
    pub nodes: Vec<Node>,
    pub edges: Vec<String>,
    pub width: f64,
    pub height: f64,
    pub node_w: f64,
    pub node_h: f64,
}

fn short(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let cut: String = text.chars().take(max - 1).collect();
    format!("{cut}…")
}

/// Lay `graph` out: each node in the column after its furthest input (longest path), rows
/// ordered by the mean row of their inputs (two sweeps), so a chain reads as a line and an
/// iteration's steps line up.
pub(super) fn layout(graph: &LineageGraph) -> Layout {
    let mut ids: Vec<String> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    fn add(id: &str, ids: &mut Vec<String>, index: &mut HashMap<String, usize>) -> usize {
        *index.entry(id.to_owned()).or_insert_with(|| {
            ids.push(id.to_owned());
            ids.len() - 1
        })
    }
    for r in &graph.runs {
        add(&r.run.id, &mut ids, &mut index);
    }
    for a in &graph.artifacts {
        add(&a.id, &mut ids, &mut index);
    }
    let n = ids.len();
    let mut preds: Vec<Vec<usize>> = vec![Vec::new(); n];
    let mut succs: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (from, to) in &graph.edges {
        let (Some(&f), Some(&t)) = (index.get(from), index.get(to)) else { continue };
        if f != t {
            preds[t].push(f);
            succs[f].push(t);
        }
    }
    // Longest-path layers in topological order (Kahn); a cycle a damaged catalog might hold
    // leaves its nodes in the column they had reached.
    let mut layer = vec![0usize; n];
    let mut waiting: Vec<usize> = preds.iter().map(Vec::len).collect();
    let mut ready: Vec<usize> = (0..n).filter(|&i| waiting[i] == 0).collect();
    while let Some(i) = ready.pop() {
        for &s in &succs[i] {
            layer[s] = layer[s].max(layer[i] + 1);
            waiting[s] -= 1;
            if waiting[s] == 0 {
                ready.push(s);
            }
        }
    }
    // A node nothing in the picture feeds (a raw input, another input of a downstream run)
    // sits just before its nearest reader, not in the first column: beside the run that reads
    // it, not read as upstream of everything.
    for i in 0..n {
        if preds[i].is_empty()
            && let Some(nearest) = succs[i].iter().map(|&s| layer[s]).min()
        {
            layer[i] = nearest.saturating_sub(1).max(layer[i]);
        }
    }
    let columns = layer.iter().max().map_or(0, |m| m + 1);
    let mut rows: Vec<Vec<usize>> = vec![Vec::new(); columns];
    for i in 0..n {
        rows[layer[i]].push(i);
    }
    let mut position = vec![0f64; n];
    let place = |rows: &Vec<Vec<usize>>, position: &mut Vec<f64>| {
        for col in rows {
            for (r, &i) in col.iter().enumerate() {
                position[i] = r as f64;
            }
        }
    };
    place(&rows, &mut position);
    for neighbours in [&preds, &succs] {
        let order: Vec<usize> =
            if std::ptr::eq(neighbours, &preds) { (0..columns).collect() } else { (0..columns).rev().collect() };
        for c in order {
            let mean = |i: usize| {
                let ns = &neighbours[i];
                if ns.is_empty() { position[i] } else { ns.iter().map(|&p| position[p]).sum::<f64>() / ns.len() as f64 }
            };
            let mut keyed: Vec<(f64, usize)> = rows[c].iter().map(|&i| (mean(i), i)).collect();
            keyed.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            rows[c] = keyed.into_iter().map(|(_, i)| i).collect();
            for (r, &i) in rows[c].iter().enumerate() {
                position[i] = r as f64;
            }
        }
    }
    let runs: BTreeMap<&str, &crate::lineage::GraphRun> = graph.runs.iter().map(|r| (r.run.id.as_str(), r)).collect();
    let artifacts: BTreeMap<&str, &crate::artifact::Artifact> =
        graph.artifacts.iter().map(|a| (a.id.as_str(), a)).collect();
    let xy = |i: usize| (MARGIN + layer[i] as f64 * COLUMN, MARGIN + position[i] * ROW);
    let mut nodes = Vec::with_capacity(n);
    for (i, id) in ids.iter().enumerate() {
        let (x, y) = xy(i);
        let node = if let Some(r) = runs.get(id.as_str()) {
            let run = &r.run;
            let (class, what) = match run.status {
                crate::run::RunStatus::Failed => ("failed", "failed"),
                crate::run::RunStatus::Running => ("running", "running"),
                _ if run.is_cache_hit() => ("hit", "cache hit"),
                _ => ("executed", "executed"),
            };
            let detail = match run.iteration {
                Some(it) => format!("iter {it} · {what}"),
                None => what.to_owned(),
            };
            Node {
                id: id.clone(),
                kind: "run",
                label: short(&run.model_name, 24),
                detail,
                class,
                focus: r.hops == 0,
                x,
                y,
            }
        } else {
            let (label, detail) = match artifacts.get(id.as_str()) {
                Some(a) => (short(&a.key, 24), short(&a.id, 12)),
                None => (short(id, 24), String::new()),
            };
            Node { id: id.clone(), kind: "artifact", label, detail, class: "artifact", focus: *id == graph.focus, x, y }
        };
        nodes.push(node);
    }
    let mut edges = Vec::new();
    for (from, to) in &graph.edges {
        let (Some(&f), Some(&t)) = (index.get(from), index.get(to)) else { continue };
        let ((x1, y1), (x2, y2)) = (xy(f), xy(t));
        let (x1, y1, x2, y2) = (x1 + NODE_W, y1 + NODE_H / 2.0, x2, y2 + NODE_H / 2.0);
        let bend = (x2 - x1).abs().max(40.0) / 2.0;
        edges.push(format!("M{x1:.0},{y1:.0} C{:.0},{y1:.0} {:.0},{y2:.0} {x2:.0},{y2:.0}", x1 + bend, x2 - bend));
    }
    let tallest = rows.iter().map(Vec::len).max().unwrap_or(0) as f64;
    Layout {
        nodes,
        edges,
        width: (2.0 * MARGIN + columns as f64 * COLUMN - (COLUMN - NODE_W)).max(2.0 * MARGIN),
        height: (2.0 * MARGIN + tallest * ROW - (ROW - NODE_H)).max(2.0 * MARGIN),
        node_w: NODE_W,
        node_h: NODE_H,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lineage::GraphRun;

    fn graph(runs: &[(&str, i64)], artifacts: &[&str], edges: &[(&str, &str)]) -> LineageGraph {
        let at = chrono::DateTime::from_timestamp(0, 0).unwrap();
        LineageGraph {
            focus: runs[0].0.to_owned(),
            runs: runs
                .iter()
                .map(|(id, hops)| GraphRun {
                    hops: *hops,
                    run: crate::run::Run::starting("m", Default::default(), at).with_id(id),
                })
                .collect(),
            artifacts: artifacts
                .iter()
                .map(|id| {
                    let path = std::path::Path::new(id);
                    let mut a =
                        crate::artifact::Artifact::for_file(id, path, (*id).to_owned(), crate::Driver::File, None);
                    a.id = (*id).to_owned();
                    a
                })
                .collect(),
            edges: edges.iter().map(|(a, b)| ((*a).to_owned(), (*b).to_owned())).collect(),
        }
    }

    fn x_of(layout: &Layout, id: &str) -> f64 {
        layout.nodes.iter().find(|n| n.id == id).unwrap().x
    }

    #[test]
    fn data_flows_left_to_right_one_column_per_step() {
        // raw -> a -> x -> b -> y, and raw -> b: b sits after its furthest input.
        let g = graph(
            &[("b", 0), ("a", -1)],
            &["raw", "x", "y"],
            &[("raw", "a"), ("a", "x"), ("x", "b"), ("raw", "b"), ("b", "y")],
        );
        let layout = layout(&g);
        let order = ["raw", "a", "x", "b", "y"].map(|id| x_of(&layout, id));
        assert!(order.windows(2).all(|w| w[0] < w[1]), "{order:?}");
        assert_eq!(layout.edges.len(), 5);
        assert!(layout.nodes.iter().find(|n| n.id == "b").unwrap().focus);
        assert!(layout.width >= x_of(&layout, "y") + NODE_W);
    }

    #[test]
    fn an_input_nothing_else_feeds_sits_beside_its_reader() {
        // a -> x -> b -> y -> c, and raw -> c: raw is drawn just before c, not in column 0.
        let g = graph(
            &[("c", 0), ("b", -1), ("a", -2)],
            &["x", "y", "raw"],
            &[("a", "x"), ("x", "b"), ("b", "y"), ("y", "c"), ("raw", "c")],
        );
        let layout = layout(&g);
        assert_eq!(x_of(&layout, "raw"), x_of(&layout, "y"), "raw in the column before c");
        assert!(x_of(&layout, "a") < x_of(&layout, "raw"));
    }

    #[test]
    fn a_cycle_a_damaged_catalog_holds_is_drawn_not_looped_on() {
        let g = graph(&[("a", 0), ("b", 1)], &["x", "y"], &[("a", "x"), ("x", "b"), ("b", "y"), ("y", "a")]);
        let layout = layout(&g);
        assert_eq!(layout.nodes.len(), 4);
        assert_eq!(layout.edges.len(), 4);
    }

    #[test]
    fn long_names_are_shortened_whole_characters() {
        assert_eq!(short("traffic_simulation", 24), "traffic_simulation");
        assert_eq!(short("ééééé", 4), "ééé…");
    }
}
