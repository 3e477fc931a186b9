//! The steps linked into this binary, registered by `#[step]` through `inventory`.

/// What `#[step]` registers about a step.
#[derive(Debug)]
pub struct StepInfo {
    /// Model name of its runs.
    pub name: &'static str,
    /// Rust module path of the function.
    pub module: &'static str,
    /// Source file.
    pub file: &'static str,
    /// Source line of the generated module.
    pub line: u32,
    /// Declared output keys.
    pub outputs: &'static [&'static str],
    /// Its `#[step(version = "...")]` (empty when not given).
    pub version: &'static str,
    /// Its current code identity.
    pub code_hash: fn() -> String,
    /// What its code identity covers: (label, token hash), the step itself first.
    pub code_items: fn() -> Vec<(String, String)>,
    /// Code it uses that its identity cannot follow and `uses` does not declare: paths into
    /// modules of other files (`physics::SCALE`), glob imports of them (`physics::*`), include
    /// paths the macro cannot work out.
    pub not_followed: &'static [&'static str],
}

inventory::collect!(StepInfo);

/// Every step registered in this binary, sorted by name.
pub fn registered_steps() -> Vec<&'static StepInfo> {
    let mut steps: Vec<&'static StepInfo> = inventory::iter::<StepInfo>.into_iter().collect();
    steps.sort_by_key(|s| (s.name, s.module));
    steps
}

/// A registered step and how its code compares with its last recorded run.
#[derive(Debug, Clone, serde::Serialize)]
pub struct StepStatus {
    /// Model name.
    pub name: &'static str,
    /// Where it is defined (`file:line`).
    pub location: String,
    /// Its current code identity.
    pub code_hash: String,
    /// Id of the latest completed, executed run of this model with the current code, else of the
    /// latest with any code, if any.
    pub last_run: Option<String>,
    /// Whether the code differs from that run's (`None` when it never ran): `false` when some
    /// executed run has the current code.
    pub changed: Option<bool>,
    /// The covered items whose code changed since that run (added, removed or edited), when
    /// that run recorded its items.
    pub changed_items: Vec<String>,
    /// Its `#[step(version = "...")]` (empty when not given).
    pub version: &'static str,
    /// The tracker's cache epoch when the last executed run ran (`None`: no epoch).
    pub epoch: Option<u64>,
    /// Code it uses that its identity cannot follow (a module whose file cannot be read, an
    /// include path the macro cannot work out) and no declared helper covers: editing it would
    /// not invalidate the step.
    pub not_followed: Vec<String>,
}

/// Every step of this binary with its code status against `catalog`.
pub fn step_report(catalog: &crate::Catalog) -> crate::Result<Vec<StepStatus>> {
    let mut report = Vec::new();
    for info in registered_steps() {
        let code_hash = (info.code_hash)();
        let query = crate::RunQuery {
            model: Some(info.name.to_owned()),
            status: Some(crate::RunStatus::Completed),
            ..Default::default()
        };
        // The executed run with this exact code if there is one (its hits are served now), else
        // the newest executed run, to say what changed since.
        let executed: Vec<crate::Run> = if catalog.exists() {
            catalog.find_runs(&query)?.into_iter().filter(|r| !r.is_cache_hit()).collect()
        } else {
            Vec::new()
        };
        // A run whose tracker mixed the toolchain into its code hash keeps the step's own.
        let own_hash =
            |r: &crate::Run| r.meta.get("step_code_hash").and_then(|h| h.as_str()).unwrap_or(&r.code_hash).to_owned();
        let same = executed.iter().position(|r| own_hash(r) == code_hash);
        let last = same.or(if executed.is_empty() { None } else { Some(0) }).map(|i| executed[i].clone());
        let items: std::collections::BTreeMap<String, String> = (info.code_items)().into_iter().collect();
        // A path is followed when a declared helper's items include it (`fn plots::line_chart`).
        let followed =
            |path: &str| items.keys().any(|label| label.split_once(' ').is_some_and(|(_, name)| name == path));
        let not_followed = info.not_followed.iter().filter(|p| !followed(p)).map(|p| (*p).to_owned()).collect();
        let changed_items = last
            .as_ref()
            .and_then(|r| crate::catalog::explain::recorded_code_items(&r.meta))
            .map(|old| {
                let tracker_items =
                    |label: &str| label.starts_with("toolchain ") || label == crate::signature::CACHE_EPOCH_ITEM;
                old.into_iter().filter(|(label, _)| !tracker_items(label)).collect()
            })
            .map(|old| crate::catalog::explain::changed_keys(&items, &old))
            .unwrap_or_default();
        let epoch = last.as_ref().and_then(|r| r.meta.get("cache_epoch")).and_then(|e| e.as_u64());
        report.push(StepStatus {
            name: info.name,
            version: info.version,
            epoch,
            location: format!("{}:{}", info.file, info.line),
            changed_items,
            not_followed,
            changed: last.as_ref().map(|r| own_hash(r) != code_hash),
            last_run: last.map(|r| r.id),
            code_hash,
        });
    }
    Ok(report)
}
