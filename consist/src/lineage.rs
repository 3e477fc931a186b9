//! Lineage trees: an artifact, the run that produced it, that run's inputs, and so on.

use serde::Serialize;

use crate::artifact::Artifact;
use crate::run::Run;

/// An artifact and, unless the depth limit or a raw input ends the walk, its producer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LineageNode {
    /// The artifact.
    pub artifact: Artifact,
    /// The run that produced it, with its inputs' lineage.
    pub producer: Option<Producer>,
}

/// The run that produced an artifact, and the lineage of its inputs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Producer {
    /// The producing run.
    pub run: Run,
    /// Its input artifacts, each with its own lineage.
    pub inputs: Vec<LineageNode>,
}

impl LineageNode {
    /// How many producing-run levels the tree spans.
    pub fn depth(&self) -> usize {
        self.producer.as_ref().map_or(0, |p| 1 + p.inputs.iter().map(LineageNode::depth).max().unwrap_or(0))
    }

    /// The tree as indented text: artifacts as `key (id)`, runs as `model run=<id> iter=<n>`.
    pub fn render(&self) -> String {
        let mut out = String::new();
        self.render_into(&mut out, 0);
        out
    }

    fn render_into(&self, out: &mut String, indent: usize) {
        let pad = "    ".repeat(indent);
        out.push_str(&format!("{pad}{} ({})\n", self.artifact.key, self.artifact.id));
        if let Some(p) = &self.producer {
            let iteration = p.run.iteration.map_or_else(|| "-".to_owned(), |i| i.to_string());
            out.push_str(&format!("{pad}└── {} run={} iter={}\n", p.run.model_name, p.run.id, iteration));
            for input in &p.inputs {
                input.render_into(out, indent + 1);
            }
        }
    }
}
