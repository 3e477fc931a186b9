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
    /// The artifact names a producing run that is no longer recorded (it was purged).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub producer_missing: bool,
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

    /// The tree as text: artifacts as `key (id)`, runs as `model run=<id> iter=<n>`, each level
    /// drawn under its parent with box-drawing branches.
    pub fn render(&self) -> String {
        let mut out = format!("{} ({}){}\n", self.artifact.key, self.artifact.id, self.missing_note());
        self.render_children(&mut out, "");
        out
    }

    fn missing_note(&self) -> String {
        match (&self.artifact.run_id, self.producer_missing) {
            (Some(run_id), true) => format!("  [producer {run_id} purged]"),
            _ => String::new(),
        }
    }

    fn render_children(&self, out: &mut String, prefix: &str) {
        let Some(p) = &self.producer else { return };
        let iteration = p.run.iteration.map_or_else(|| "-".to_owned(), |i| i.to_string());
        out.push_str(&format!("{prefix}└── {} run={} iter={}\n", p.run.model_name, p.run.id, iteration));
        let run_prefix = format!("{prefix}    ");
        for (i, input) in p.inputs.iter().enumerate() {
            let last = i + 1 == p.inputs.len();
            let (branch, more) = if last { ("└── ", "    ") } else { ("├── ", "│   ") };
            out.push_str(&format!(
                "{run_prefix}{branch}{} ({}){}\n",
                input.artifact.key,
                input.artifact.id,
                input.missing_note()
            ));
            input.render_children(out, &format!("{run_prefix}{more}"));
        }
    }
}

/// The runs around a run or an artifact, upstream and downstream, as a graph: what a lineage
/// picture draws ([`crate::Catalog::lineage_graph`]).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LineageGraph {
    /// What the graph is around: a run id or an artifact id.
    pub focus: String,
    /// The runs, each with its hop distance from the focus (negative upstream, positive
    /// downstream, 0 the focus run), nearest first.
    pub runs: Vec<GraphRun>,
    /// The artifacts these runs read or wrote, each once.
    pub artifacts: Vec<Artifact>,
    /// Data flow: `(artifact id, run id)` for a read, `(run id, artifact id)` for a write.
    pub edges: Vec<(String, String)>,
}

/// A run in a [`LineageGraph`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GraphRun {
    /// Hops from the focus: negative upstream, positive downstream.
    pub hops: i64,
    /// The run.
    pub run: Run,
}
