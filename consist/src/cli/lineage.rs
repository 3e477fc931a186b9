//! `consist lineage`: an artifact's lineage tree as text, JSON, Graphviz DOT or Mermaid.

use std::collections::BTreeSet;

use clap::{Args, ValueEnum};

use super::error::Result;
use super::{Cli, print_json};
use crate::lineage::LineageNode;

/// Output formats of `consist lineage`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// An indented tree.
    Text,
    /// The tree as nested JSON (`artifact`, `producer: {run, inputs}`).
    Json,
    /// A Graphviz digraph (`dot -Tsvg`).
    Dot,
    /// A Mermaid flowchart (renders in GitHub markdown).
    Mermaid,
}

/// Options of `consist lineage`.
#[derive(Debug, Args)]
pub struct LineageArgs {
    /// Artifact id (or a unique prefix), or an artifact key (its newest artifact).
    pub artifact: String,
    /// How many producing-run levels to expand (0: the artifact alone).
    #[arg(long, default_value_t = 3)]
    pub depth: usize,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

/// Graph edges of a lineage tree: (from, to) node ids, and node labels.
#[derive(Default)]
struct Graph {
    nodes: Vec<(String, String, bool)>,
    edges: BTreeSet<(String, String)>,
    seen: BTreeSet<String>,
}

impl Graph {
    fn node(&mut self, id: String, label: String, is_run: bool) -> String {
        if self.seen.insert(id.clone()) {
            self.nodes.push((id.clone(), label, is_run));
        }
        id
    }

    /// Walk the tree: artifact <- run <- inputs (edges point downstream, input -> run -> output).
    fn add(&mut self, node: &LineageNode) -> String {
        let a = &node.artifact;
        let artifact = self.node(
            format!("a_{}", a.id.replace('-', "")),
            format!("{} ({})", a.key, &a.id[..8.min(a.id.len())]),
            false,
        );
        if let Some(p) = &node.producer {
            let iteration = p.run.iteration.map(|i| format!(" iter {i}")).unwrap_or_default();
            let run = self.node(
                format!("r_{}", p.run.id.replace(['-', '.'], "_")),
                format!("{} {}{iteration}", p.run.model_name, p.run.id),
                true,
            );
            self.edges.insert((run.clone(), artifact.clone()));
            for input in &p.inputs {
                let child = self.add(input);
                self.edges.insert((child, run.clone()));
            }
        }
        artifact
    }

    fn dot(&self) -> String {
        let mut out = String::from("digraph lineage {\n  rankdir=LR;\n");
        for (id, label, is_run) in &self.nodes {
            let shape = if *is_run { "box" } else { "ellipse" };
            out.push_str(&format!("  {id} [label=\"{}\", shape={shape}];\n", label.replace('"', "\\\"")));
        }
        for (from, to) in &self.edges {
            out.push_str(&format!("  {from} -> {to};\n"));
        }
        out.push_str("}\n");
        out
    }

    fn mermaid(&self) -> String {
        let mut out = String::from("flowchart LR\n");
        for (id, label, is_run) in &self.nodes {
            let label = label.replace('"', "'");
            if *is_run {
                out.push_str(&format!("  {id}[\"{label}\"]\n"));
            } else {
                out.push_str(&format!("  {id}([\"{label}\"])\n"));
            }
        }
        for (from, to) in &self.edges {
            out.push_str(&format!("  {from} --> {to}\n"));
        }
        out
    }
}

pub(super) fn run(cli: &Cli, args: &LineageArgs) -> Result<()> {
    let catalog = cli.existing_catalog()?;
    if catalog.pending_count() > 0 {
        tracing::info!("runs still pending in snapshots are not part of the lineage until a tracker syncs them");
    }
    let tree = catalog.lineage(&args.artifact, args.depth)?;
    match args.format {
        Format::Text => print!("{}", tree.render()),
        Format::Json => print_json(&tree),
        Format::Dot | Format::Mermaid => {
            let mut graph = Graph::default();
            graph.add(&tree);
            print!("{}", if args.format == Format::Dot { graph.dot() } else { graph.mermaid() });
        }
    }
    Ok(())
}
