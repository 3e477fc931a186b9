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
    /// Its current code identity.
    pub code_hash: fn() -> String,
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
    /// Id of the latest completed, executed run of this model, if any.
    pub last_run: Option<String>,
    /// Whether the code changed since that run (`None` when it never ran).
    pub changed: Option<bool>,
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
        let last =
            if catalog.exists() { catalog.find_runs(&query)?.into_iter().find(|r| !r.is_cache_hit()) } else { None };
        report.push(StepStatus {
            name: info.name,
            location: format!("{}:{}", info.file, info.line),
            changed: last.as_ref().map(|r| r.code_hash != code_hash),
            last_run: last.map(|r| r.id),
            code_hash,
        });
    }
    Ok(report)
}
