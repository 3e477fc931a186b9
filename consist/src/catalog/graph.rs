//! Lineage as a graph around a run or an artifact, upstream and downstream (the UI's picture).

use std::collections::{BTreeMap, BTreeSet};

use super::Catalog;
use crate::error::{Error, Result};
use crate::lineage::{GraphRun, LineageGraph};
use crate::store::LineageStart;

impl Catalog {
    /// The runs within `up` hops upstream and `down` hops downstream of `start`, with what they
    /// read and wrote: one recursive query for the runs, one read of their records. Stored runs
    /// only (as [`Catalog::lineage`]). A run id may be a unique prefix; an artifact id or key is
    /// found as [`Catalog::find_artifact`] finds it.
    pub fn lineage_graph(&self, start: &LineageStart, up: usize, down: usize) -> Result<LineageGraph> {
        let store = self.stored()?;
        // The artifact a graph starts from is in it even when no run within reach read it.
        let (start, start_artifact) = match start {
            LineageStart::Run(id) => (LineageStart::Run(self.resolve_run(id)?.id), None),
            LineageStart::Artifact(id) => {
                let artifact = self.find_artifact(id)?;
                (LineageStart::Artifact(artifact.id.clone()), Some(artifact))
            }
        };
        let mut hops: BTreeMap<String, i64> = BTreeMap::new();
        for (id, h) in store.neighbourhood(&start, up, down)? {
            // A run on both sides (only a damaged catalog has a cycle) keeps its nearer place.
            let entry = hops.entry(id).or_insert(h);
            if h.abs() < entry.abs() {
                *entry = h;
            }
        }
        let ids: Vec<String> = hops.keys().cloned().collect();
        let mut runs = Vec::with_capacity(ids.len());
        let mut artifacts: BTreeMap<String, crate::artifact::Artifact> = BTreeMap::new();
        let mut edges = BTreeSet::new();
        for record in self.run_records(&ids)? {
            // A pending snapshot naming another run than its queue entry (a damaged run dir) is
            // not in the neighbourhood: left out.
            let Some(&h) = hops.get(&record.run.id) else { continue };
            for a in &record.inputs {
                edges.insert((a.id.clone(), record.run.id.clone()));
                artifacts.entry(a.id.clone()).or_insert_with(|| self.here(a.clone()));
            }
            for a in &record.outputs {
                edges.insert((record.run.id.clone(), a.id.clone()));
                artifacts.entry(a.id.clone()).or_insert_with(|| self.here(a.clone()));
            }
            runs.push(GraphRun { hops: h, run: record.run });
        }
        if let LineageStart::Run(id) = &start
            && runs.is_empty()
        {
            return Err(Error::RunNotFound(id.clone()));
        }
        if let Some(artifact) = start_artifact {
            artifacts.entry(artifact.id.clone()).or_insert(artifact);
        }
        runs.sort_by(|a, b| (a.hops.abs(), a.hops, &a.run.id).cmp(&(b.hops.abs(), b.hops, &b.run.id)));
        Ok(LineageGraph {
            focus: start.parts().0.to_owned(),
            runs,
            artifacts: artifacts.into_values().collect(),
            edges: edges.into_iter().collect(),
        })
    }
}
