//! Lifecycle hooks: closures a tracker calls when a run starts executing, when it is completed
//! (a cache hit included) and when it fails, for notifications, metrics or custom logs. They get
//! the run's record once it is what will be recorded; a hook that fails or panics is reported on
//! stderr (through consist's warnings) and changes nothing recorded, nor the step's result.

use std::sync::Arc;

use crate::engine::spec::StepResult;
use crate::run::RunRecord;

/// A lifecycle hook (see [`crate::TrackerBuilder::on_run_complete`]).
pub(crate) type Hook = Arc<dyn Fn(&RunRecord) -> StepResult<()> + Send + Sync>;

/// The hooks of a tracker, by moment.
#[derive(Clone, Default)]
pub(crate) struct Hooks {
    pub(crate) start: Vec<Hook>,
    pub(crate) complete: Vec<Hook>,
    pub(crate) failed: Vec<Hook>,
}

impl std::fmt::Debug for Hooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hooks")
            .field("start", &self.start.len())
            .field("complete", &self.complete.len())
            .field("failed", &self.failed.len())
            .finish()
    }
}

impl Hooks {
    /// A run is about to execute its body (a miss).
    pub(crate) fn started(&self, record: &RunRecord) {
        call(&self.start, "on_run_start", record);
    }

    /// A run was completed: executed, or a cache hit (`record.run.is_cache_hit()`).
    pub(crate) fn completed(&self, record: &RunRecord) {
        call(&self.complete, "on_run_complete", record);
    }

    /// A run failed; its error is in `record.run.meta["error"]`.
    pub(crate) fn failed(&self, record: &RunRecord) {
        call(&self.failed, "on_run_failed", record);
    }
}

fn call(hooks: &[Hook], moment: &str, record: &RunRecord) {
    for hook in hooks {
        let run = record.run.id.as_str();
        match crate::panics::catch(|| hook(record)) {
            Ok(Ok(())) => {}
            Ok(Err(error)) => {
                crate::logging::warning!(hook = moment, run, %error, "a hook failed; what is recorded is unchanged")
            }
            Err(panic) => {
                crate::logging::warning!(hook = moment, run, "a hook {panic}; what is recorded is unchanged")
            }
        }
    }
}
