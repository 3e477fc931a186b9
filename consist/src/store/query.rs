//! Queries every store answers: which runs ([`RunQuery`], in a [`RunOrder`]) and which artifacts
//! ([`ArtifactQuery`]).

use std::cmp::Ordering;

use super::Direction;
use crate::run::{Run, RunRecord, RunStatus};

/// Filters for [`Store::find_runs`](super::Store::find_runs); unset fields match everything. Newest runs come first.
///
/// ```
/// use consist::RunQuery;
/// let q = RunQuery::default().model("mode_choice").iteration(5).facet("n_iterations", 10).limit(20);
/// assert_eq!(q.model.as_deref(), Some("mode_choice"));
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunQuery {
    /// Only runs whose id starts with this (a unique prefix names one run, like git).
    pub id_prefix: Option<String>,
    /// Only runs of this model (step name).
    pub model: Option<String>,
    /// Only runs with this status.
    pub status: Option<RunStatus>,
    /// Only runs with this signature.
    pub signature: Option<String>,
    /// Only children of this scenario / parent run.
    pub parent: Option<String>,
    /// Only runs of this iteration.
    pub iteration: Option<i32>,
    /// Only runs carrying every one of these tags.
    pub tags: Vec<String>,
    /// Only runs whose facet (dotted config path from `facet_from`) equals the value, compared as
    /// canonical JSON (so `10` and `10.0` differ, as they do in signatures).
    pub facets: Vec<(String, serde_json::Value)>,
    /// Only runs that read an artifact under this key (an upstream output keeps its producer's
    /// key): "which runs consumed `zones`?" in one query.
    pub input: Option<String>,
    /// Only runs whose id, model, tags and description (read as one line), or whose config,
    /// contain this text (case-insensitive).
    pub text: Option<String>,
    /// Only cache hits (`true`), or only runs that did not reuse another run (`false`).
    pub cache_hit: Option<bool>,
    /// Only runs with one of these ids (empty: any id).
    pub ids: Vec<String>,
    /// The order of the result (newest first unless told).
    pub order: RunOrder,
    /// Skip this many runs of the ordered result: a later page.
    pub offset: usize,
    /// At most this many runs.
    pub limit: Option<usize>,
}

impl RunQuery {
    /// Only runs of this model (step name).
    pub fn model(mut self, model: &str) -> Self {
        self.model = Some(model.to_owned());
        self
    }

    /// Only runs with this status.
    pub fn status(mut self, status: RunStatus) -> Self {
        self.status = Some(status);
        self
    }

    /// Only children of this scenario (header run id).
    pub fn parent(mut self, parent: &str) -> Self {
        self.parent = Some(parent.to_owned());
        self
    }

    /// Only runs of this iteration.
    pub fn iteration(mut self, iteration: i32) -> Self {
        self.iteration = Some(iteration);
        self
    }

    /// Only runs carrying this tag (repeat for several).
    pub fn tag(mut self, tag: &str) -> Self {
        self.tags.push(tag.to_owned());
        self
    }

    /// Only runs whose facet `key` equals `value` (repeat for several).
    pub fn facet(mut self, key: &str, value: impl Into<serde_json::Value>) -> Self {
        self.facets.push((key.to_owned(), value.into()));
        self
    }

    /// Only runs that read an artifact under `key`.
    pub fn input(mut self, key: &str) -> Self {
        self.input = Some(key.to_owned());
        self
    }

    /// Only runs mentioning `text` in their id, model, tags, description or config.
    pub fn text(mut self, text: &str) -> Self {
        self.text = Some(text.to_owned());
        self
    }

    /// Only cache hits (`true`) or only runs that were not (`false`).
    pub fn cache_hit(mut self, hit: bool) -> Self {
        self.cache_hit = Some(hit);
        self
    }

    /// In this order.
    pub fn order(mut self, order: RunOrder) -> Self {
        self.order = order;
        self
    }

    /// Skip the first `offset` runs of the ordered result.
    pub fn offset(mut self, offset: usize) -> Self {
        self.offset = offset;
        self
    }

    /// At most this many runs.
    pub fn limit(mut self, limit: usize) -> Self {
        self.limit = Some(limit);
        self
    }

    /// The same filters, every match: no order, offset or limit (what a count counts).
    pub(crate) fn unpaged(&self) -> RunQuery {
        RunQuery { order: RunOrder::default(), offset: 0, limit: None, ..self.clone() }
    }

    /// Whether a record passes the filters (used to merge not-yet-synced runs into results).
    pub fn matches(&self, record: &RunRecord) -> bool {
        let run = &record.run;
        self.id_prefix.as_ref().is_none_or(|p| run.id.starts_with(p.as_str()))
            && self.model.as_ref().is_none_or(|m| *m == run.model_name)
            && self.status.is_none_or(|s| s == run.status)
            && self.signature.as_ref().is_none_or(|s| *s == run.signature)
            && self.parent.as_ref().is_none_or(|p| Some(p) == run.parent_run_id.as_ref())
            && self.iteration.is_none_or(|i| Some(i) == run.iteration)
            && self.tags.iter().all(|t| run.tags.contains(t))
            && self.facets.iter().all(|(k, v)| record.facets.get(k) == Some(v))
            && self.input.as_ref().is_none_or(|k| record.inputs.iter().any(|a| a.key == *k))
            && self.cache_hit.is_none_or(|hit| hit == run.is_cache_hit())
            && (self.ids.is_empty() || self.ids.contains(&run.id))
            && self.text.as_ref().is_none_or(|t| mentions(record, t))
    }
}

/// Whether `text` occurs (case-insensitive) in the run's id, model, tags, description or
/// config: what [`RunQuery::text`] matches in a store.
fn mentions(record: &RunRecord, text: &str) -> bool {
    let r = &record.run;
    // As the stores' SQL reads them (`store::sql::run_filter`): the run's line, its tags as their
    // stored JSON, or its config. (PostgreSQL's `lower` in a C locale folds ASCII letters only.)
    let tags = serde_json::to_string(&r.tags).unwrap_or_default();
    let line = format!("{} {} {} {}", r.id, r.model_name, tags, r.description.as_deref().unwrap_or(""));
    let text = text.to_lowercase();
    line.to_lowercase().contains(&text) || record.config.to_string().to_lowercase().contains(&text)
}

/// What runs are sorted by.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum RunSort {
    /// When the run was created (ties by id).
    #[default]
    Created,
    /// Model (step) name.
    Model,
    /// Status.
    Status,
    /// Iteration (runs without one last).
    Iteration,
    /// Wall time from start to end (unfinished runs last).
    Duration,
}

impl RunSort {
    /// Every sort key, by its name.
    pub const ALL: [RunSort; 5] =
        [RunSort::Created, RunSort::Model, RunSort::Status, RunSort::Iteration, RunSort::Duration];

    /// Its name: `created`, `model`, `status`, `iteration`, `duration`.
    pub fn as_str(self) -> &'static str {
        match self {
            RunSort::Created => "created",
            RunSort::Model => "model",
            RunSort::Status => "status",
            RunSort::Iteration => "iteration",
            RunSort::Duration => "duration",
        }
    }

    /// The sort key a name names.
    pub fn parse(name: &str) -> Option<RunSort> {
        RunSort::ALL.into_iter().find(|s| s.as_str() == name)
    }
}

/// The order of [`RunQuery`]'s result: a key and a direction, then newest first (and by id) among
/// equal keys, so that pages never overlap. The default is newest first.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct RunOrder {
    /// The key.
    pub by: RunSort,
    /// Smallest first (`false`: largest first, as newest first is).
    pub ascending: bool,
}

impl RunOrder {
    /// The SQL `ORDER BY` list over table `run`, with `duration` the backend's expression for
    /// a run's wall time (timestamp arithmetic differs between them) and `bytes` what makes a
    /// backend compare text byte by byte, as [`RunOrder::compare`] does (PostgreSQL's default
    /// collation may ignore case and punctuation).
    pub(crate) fn sql(self, duration: &str, bytes: &str) -> String {
        let dir = if self.ascending { "ASC" } else { "DESC" };
        let key = match self.by {
            RunSort::Created => return format!("created_at {dir}, id{bytes} {dir}"),
            RunSort::Model => format!("model_name{bytes}"),
            RunSort::Status => format!("status{bytes}"),
            RunSort::Iteration => "iteration".to_owned(),
            RunSort::Duration => duration.to_owned(),
        };
        format!("{key} {dir} NULLS LAST, created_at DESC, id{bytes} DESC")
    }

    /// The same order over runs in memory (runs still pending merged with stored ones).
    pub fn compare(self, a: &Run, b: &Run) -> Ordering {
        fn nulls_last<T: Ord>(a: Option<T>, b: Option<T>, ascending: bool) -> Ordering {
            match (a, b) {
                (Some(x), Some(y)) if ascending => x.cmp(&y),
                (Some(x), Some(y)) => y.cmp(&x),
                (Some(_), None) => Ordering::Less,
                (None, Some(_)) => Ordering::Greater,
                (None, None) => Ordering::Equal,
            }
        }
        let newest = || b.created_at.cmp(&a.created_at).then_with(|| b.id.cmp(&a.id));
        let duration = |r: &Run| r.ended_at.map(|end| end - r.started_at);
        let asc = self.ascending;
        let key = match self.by {
            RunSort::Created if asc => return a.created_at.cmp(&b.created_at).then_with(|| a.id.cmp(&b.id)),
            RunSort::Created => return newest(),
            RunSort::Model => nulls_last(Some(&a.model_name), Some(&b.model_name), asc),
            RunSort::Status => nulls_last(Some(a.status.as_str()), Some(b.status.as_str()), asc),
            RunSort::Iteration => nulls_last(a.iteration, b.iteration, asc),
            RunSort::Duration => nulls_last(duration(a), duration(b), asc),
        };
        key.then_with(newest)
    }
}

/// Filters for [`Store::find_artifacts`](super::Store::find_artifacts): artifacts linked to a run in a direction, by key.
///
/// ```
/// use consist::ArtifactQuery;
/// let outputs = ArtifactQuery::created_by("mode_choice_1a2b3c4d");
/// let reads_of_zones = ArtifactQuery::default().key("zones").direction(consist::Direction::Input);
/// # let _ = (outputs, reads_of_zones);
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ArtifactQuery {
    /// Only artifacts linked to this run.
    pub run: Option<String>,
    /// Only links in this direction (`Output`: created by, `Input`: consumed by).
    pub direction: Option<Direction>,
    /// Only artifacts with this key.
    pub key: Option<String>,
    /// At most this many artifacts.
    pub limit: Option<usize>,
}

impl ArtifactQuery {
    /// The outputs of `run_id` (a cache hit's outputs are the artifacts it reused).
    pub fn created_by(run_id: &str) -> Self {
        ArtifactQuery { run: Some(run_id.to_owned()), direction: Some(Direction::Output), ..Default::default() }
    }

    /// The inputs of `run_id`.
    pub fn consumed_by(run_id: &str) -> Self {
        ArtifactQuery { run: Some(run_id.to_owned()), direction: Some(Direction::Input), ..Default::default() }
    }

    /// Only artifacts with this key.
    pub fn key(mut self, key: &str) -> Self {
        self.key = Some(key.to_owned());
        self
    }

    /// Only links in this direction.
    pub fn direction(mut self, direction: Direction) -> Self {
        self.direction = Some(direction);
        self
    }

    /// At most this many artifacts.
    pub fn limit(mut self, limit: usize) -> Self {
        self.limit = Some(limit);
        self
    }
}
