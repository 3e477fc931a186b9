//! Code identity that follows what a step uses, and miss explanations that name the change.
//!
//! Each `sir_*` module holds the same `#[step]` function (same tokens, same model name
//! `sir_day`) next to a variant of the items it uses, as a user's file would look before and
//! after an edit. A variant that edits a used item must be a miss naming that item; one that edits
//! an unrelated item, a comment or the layout must be a hit.

use consist::polars::prelude::*;
use consist::{Artifact, MissExplanation, RunResult, StepResult, Tracker};

use crate::support::Workspace;

#[allow(dead_code)]
mod sir_base {
    use consist::polars::prelude::*;
    use consist::{StepResult, step};

    const CONTACT_SCALE: f64 = 1.0;
    const UNRELATED: f64 = 1.0;

    pub struct Rates {
        pub beta: f64,
        pub gamma: f64,
    }

    impl Rates {
        fn recovered(&self, i: f64) -> f64 {
            self.gamma * i
        }
    }

    fn infections(s: f64, i: f64, rates: &Rates) -> f64 {
        rates.beta * CONTACT_SCALE * s * i / population()
    }

    fn population() -> f64 {
        1000.0
    }

    /// One day of an SIR model: the state of the day before (absent on day 0) -> today's state.
    #[step(outputs = ["state"], name = "sir_day")]
    pub fn day(state: Option<&DataFrame>, beta: f64, gamma: f64, day: i32) -> StepResult<DataFrame> {
        let (s, i, r) = match state {
            Some(df) => (value(df, "s")?, value(df, "i")?, value(df, "r")?),
            None => (990.0, 10.0, 0.0),
        };
        let rates = Rates { beta, gamma };
        let (new_i, new_r) = (infections(s, i, &rates), rates.recovered(i));
        Ok(df!("day" => [day], "s" => [s - new_i], "i" => [i + new_i - new_r], "r" => [r + new_r])?)
    }

    fn value(df: &DataFrame, column: &str) -> PolarsResult<f64> {
        Ok(df.column(column)?.f64()?.get(0).unwrap_or(f64::NAN))
    }
}

#[allow(dead_code)]
mod sir_contact_scale {
    use consist::polars::prelude::*;
    use consist::{StepResult, step};

    const CONTACT_SCALE: f64 = 2.0;
    const UNRELATED: f64 = 1.0;

    pub struct Rates {
        pub beta: f64,
        pub gamma: f64,
    }

    impl Rates {
        fn recovered(&self, i: f64) -> f64 {
            self.gamma * i
        }
    }

    fn infections(s: f64, i: f64, rates: &Rates) -> f64 {
        rates.beta * CONTACT_SCALE * s * i / population()
    }

    fn population() -> f64 {
        1000.0
    }

    /// One day of an SIR model: the state of the day before (absent on day 0) -> today's state.
    #[step(outputs = ["state"], name = "sir_day")]
    pub fn day(state: Option<&DataFrame>, beta: f64, gamma: f64, day: i32) -> StepResult<DataFrame> {
        let (s, i, r) = match state {
            Some(df) => (value(df, "s")?, value(df, "i")?, value(df, "r")?),
            None => (990.0, 10.0, 0.0),
        };
        let rates = Rates { beta, gamma };
        let (new_i, new_r) = (infections(s, i, &rates), rates.recovered(i));
        Ok(df!("day" => [day], "s" => [s - new_i], "i" => [i + new_i - new_r], "r" => [r + new_r])?)
    }

    fn value(df: &DataFrame, column: &str) -> PolarsResult<f64> {
        Ok(df.column(column)?.f64()?.get(0).unwrap_or(f64::NAN))
    }
}

/// A helper of a helper (`population`, called by `infections`) and a method of a used type.
#[allow(dead_code)]
mod sir_population_and_recovery {
    use consist::polars::prelude::*;
    use consist::{StepResult, step};

    const CONTACT_SCALE: f64 = 1.0;
    const UNRELATED: f64 = 1.0;

    pub struct Rates {
        pub beta: f64,
        pub gamma: f64,
    }

    impl Rates {
        fn recovered(&self, i: f64) -> f64 {
            self.gamma * i * 0.5
        }
    }

    fn infections(s: f64, i: f64, rates: &Rates) -> f64 {
        rates.beta * CONTACT_SCALE * s * i / population()
    }

    fn population() -> f64 {
        2000.0
    }

    /// One day of an SIR model: the state of the day before (absent on day 0) -> today's state.
    #[step(outputs = ["state"], name = "sir_day")]
    pub fn day(state: Option<&DataFrame>, beta: f64, gamma: f64, day: i32) -> StepResult<DataFrame> {
        let (s, i, r) = match state {
            Some(df) => (value(df, "s")?, value(df, "i")?, value(df, "r")?),
            None => (990.0, 10.0, 0.0),
        };
        let rates = Rates { beta, gamma };
        let (new_i, new_r) = (infections(s, i, &rates), rates.recovered(i));
        Ok(df!("day" => [day], "s" => [s - new_i], "i" => [i + new_i - new_r], "r" => [r + new_r])?)
    }

    fn value(df: &DataFrame, column: &str) -> PolarsResult<f64> {
        Ok(df.column(column)?.f64()?.get(0).unwrap_or(f64::NAN))
    }
}

/// The struct the step builds gains a derive.
#[allow(dead_code)]
mod sir_struct {
    use consist::polars::prelude::*;
    use consist::{StepResult, step};

    const CONTACT_SCALE: f64 = 1.0;
    const UNRELATED: f64 = 1.0;

    #[derive(Debug)]
    pub struct Rates {
        pub beta: f64,
        pub gamma: f64,
    }

    impl Rates {
        fn recovered(&self, i: f64) -> f64 {
            self.gamma * i
        }
    }

    fn infections(s: f64, i: f64, rates: &Rates) -> f64 {
        rates.beta * CONTACT_SCALE * s * i / population()
    }

    fn population() -> f64 {
        1000.0
    }

    /// One day of an SIR model: the state of the day before (absent on day 0) -> today's state.
    #[step(outputs = ["state"], name = "sir_day")]
    pub fn day(state: Option<&DataFrame>, beta: f64, gamma: f64, day: i32) -> StepResult<DataFrame> {
        let (s, i, r) = match state {
            Some(df) => (value(df, "s")?, value(df, "i")?, value(df, "r")?),
            None => (990.0, 10.0, 0.0),
        };
        let rates = Rates { beta, gamma };
        let (new_i, new_r) = (infections(s, i, &rates), rates.recovered(i));
        Ok(df!("day" => [day], "s" => [s - new_i], "i" => [i + new_i - new_r], "r" => [r + new_r])?)
    }

    fn value(df: &DataFrame, column: &str) -> PolarsResult<f64> {
        Ok(df.column(column)?.f64()?.get(0).unwrap_or(f64::NAN))
    }
}

/// Only an unrelated const, comments, docs and the layout differ from `sir_base`.
#[allow(dead_code)]
mod sir_cosmetic {
    use consist::polars::prelude::*;
    use consist::{StepResult, step};

    /// How much contact there is (documented now).
    const CONTACT_SCALE: f64 = 1.0; // unchanged
    const UNRELATED: f64 = 42.0;

    pub struct Rates {
        pub beta: f64,
        pub gamma: f64,
    }

    impl Rates {
        fn recovered(&self, i: f64) -> f64 {
            /* recovered per day */
            self.gamma * i
        }
    }

    fn infections(s: f64, i: f64, rates: &Rates) -> f64 {
        rates.beta * CONTACT_SCALE * s * i / population()
    }

    fn population() -> f64 {
        1000.0
    }

    /// One day of an SIR model: the state of the day before (absent on day 0) -> today's state.
    #[step(outputs = ["state"], name = "sir_day")]
    pub fn day(state: Option<&DataFrame>, beta: f64, gamma: f64, day: i32) -> StepResult<DataFrame> {
        let (s, i, r) = match state {
            Some(df) => (value(df, "s")?, value(df, "i")?, value(df, "r")?),
            None => (990.0, 10.0, 0.0),
        };
        let rates = Rates { beta, gamma };
        let (new_i, new_r) = (infections(s, i, &rates), rates.recovered(i));
        Ok(df!("day" => [day], "s" => [s - new_i], "i" => [i + new_i - new_r], "r" => [r + new_r])?)
    }

    fn value(df: &DataFrame, column: &str) -> PolarsResult<f64> {
        Ok(df.column(column)?.f64()?.get(0).unwrap_or(f64::NAN))
    }
}

/// Which variant of the model a sweep runs.
#[derive(Clone, Copy)]
enum Model {
    Base,
    ContactScale,
    PopulationAndRecovery,
    Struct,
    Cosmetic,
}

type DayCall<'a> = consist::StepCall<'a, DataFrame, DataFrame>;

impl Model {
    fn day(self, state: Option<Artifact>, beta: f64, gamma: f64, day: i32) -> DayCall<'static> {
        match self {
            Model::Base => sir_base::day::step(state, beta, gamma, day),
            Model::ContactScale => sir_contact_scale::day::step(state, beta, gamma, day),
            Model::PopulationAndRecovery => sir_population_and_recovery::day::step(state, beta, gamma, day),
            Model::Struct => sir_struct::day::step(state, beta, gamma, day),
            Model::Cosmetic => sir_cosmetic::day::step(state, beta, gamma, day),
        }
    }
}

/// Run `days` days of one scenario; each day reads the scenario's latest `state`, if any.
fn sweep(
    tracker: &Tracker,
    model: Model,
    scenario: &str,
    beta: f64,
    gamma: f64,
    days: i32,
) -> Vec<RunResult<DataFrame>> {
    let sc = tracker.scenario(scenario).start().expect("scenario starts");
    let runs =
        (0..days).map(|d| sc.run(model.day(sc.get("state"), beta, gamma, d).iteration(d)).expect("day runs")).collect();
    sc.finish().expect("scenario finishes");
    runs
}

fn miss<T>(run: &RunResult<T>) -> MissExplanation {
    assert!(!run.cache_hit(), "{} should have executed", run.run.id);
    MissExplanation::from_meta(&run.run.meta).expect("a miss records its explanation")
}

fn susceptible(run: &RunResult<DataFrame>) -> f64 {
    run.value().unwrap().column("s").unwrap().f64().unwrap().get(0).unwrap()
}

#[test]
fn editing_a_const_used_by_a_step_is_a_miss_that_names_it() {
    let ws = Workspace::new();
    let before = sweep(&ws.tracker(), Model::Base, "beta=0.3", 0.3, 0.1, 4);
    let after = sweep(&ws.tracker(), Model::ContactScale, "beta=0.3", 0.3, 0.1, 4);
    for run in &after {
        let e = miss(run);
        assert!(e.code_changed, "{}", e.summary);
        assert_eq!(e.code_items_changed, ["const CONTACT_SCALE"], "{}", e.summary);
        assert!(e.summary.starts_with("code changed: const CONTACT_SCALE"), "{}", e.summary);
    }
    // The compared run is the same day of the same scenario, for every miss the edit caused.
    for (old, new) in before.iter().zip(&after) {
        assert_eq!(miss(new).compared_with.as_deref(), Some(old.run.id.as_str()));
    }
    assert!(susceptible(&after[3]) < susceptible(&before[3]), "the new constant really ran");
}

#[test]
fn helpers_of_helpers_methods_and_structs_are_followed() {
    for (model, changed) in
        [(Model::PopulationAndRecovery, vec!["fn population", "impl Rates"]), (Model::Struct, vec!["struct Rates"])]
    {
        let ws = Workspace::new();
        sweep(&ws.tracker(), Model::Base, "s", 0.3, 0.1, 1);
        let after = sweep(&ws.tracker(), model, "s", 0.3, 0.1, 1);
        assert_eq!(miss(&after[0]).code_items_changed, changed);
    }
}

#[test]
fn unrelated_items_comments_and_layout_keep_the_cache() {
    let ws = Workspace::new();
    sweep(&ws.tracker(), Model::Base, "s", 0.3, 0.1, 3);
    let again = sweep(&ws.tracker(), Model::Cosmetic, "s", 0.3, 0.1, 3);
    assert!(again.iter().all(RunResult::cache_hit));
    assert_eq!(sir_base::day::code_hash(), sir_cosmetic::day::code_hash());
    assert_ne!(sir_base::day::code_hash(), sir_contact_scale::day::code_hash());
}

#[test]
fn the_code_identity_lists_what_it_covers() {
    let labels: Vec<String> = sir_base::day::code_items().into_iter().map(|(label, _)| label).collect();
    assert_eq!(
        labels,
        ["fn day", "const CONTACT_SCALE", "fn infections", "fn population", "fn value", "impl Rates", "struct Rates"]
    );
    assert_eq!(sir_base::day::SCOPE_NOTE, "", "the source file was read");
}

#[test]
fn a_gamma_change_in_one_scenario_is_named_as_the_gamma_change() {
    let ws = Workspace::new();
    let tracker = ws.tracker();
    let before = sweep(&tracker, Model::Base, "beta=0.3", 0.3, 0.1, 5);
    sweep(&tracker, Model::Base, "beta=0.5", 0.5, 0.1, 5);
    drop(tracker);
    let after = sweep(&ws.tracker(), Model::Base, "beta=0.3", 0.3, 0.2, 5);
    for (day, (old, new)) in before.iter().zip(&after).enumerate() {
        let e = miss(new);
        assert_eq!(e.compared_with.as_deref(), Some(old.run.id.as_str()), "day {day}: {}", e.summary);
        assert_eq!(e.config_changed, ["gamma"], "day {day}: {}", e.summary);
        assert!(!e.code_changed);
        let inputs: &[&str] = if day == 0 { &[] } else { &["state"] };
        assert_eq!(e.inputs_changed, inputs, "day {day}: {}", e.summary);
    }
}

#[test]
fn days_without_iterations_still_compare_with_the_same_day_of_the_earlier_run() {
    // No iteration: every day sits at the same place, so the baseline is the closest execution
    // there, and a tie goes to the earlier process's run rather than this process's new day 0.
    let ws = Workspace::new();
    let run = |tracker: &Tracker, gamma: f64| -> Vec<RunResult<DataFrame>> {
        let sc = tracker.scenario("beta=0.3").start().unwrap();
        let runs = (0..4).map(|d| sc.run(sir_base::day::step(sc.get("state"), 0.3, gamma, d)).unwrap()).collect();
        sc.finish().unwrap();
        runs
    };
    let before = run(&ws.tracker(), 0.1);
    let after = run(&ws.tracker(), 0.2);
    for (day, (old, new)) in before.iter().zip(&after).enumerate() {
        let e = miss(new);
        assert_eq!(e.compared_with.as_deref(), Some(old.run.id.as_str()), "day {day}: {}", e.summary);
        assert_eq!(e.config_changed, ["gamma"], "day {day}: {}", e.summary);
    }
}

#[test]
fn an_optional_input_is_part_of_the_signature() {
    let ws = Workspace::new();
    let tracker = ws.tracker();
    let first = tracker.run(sir_base::day::step(None::<Artifact>, 0.3, 0.1, 0)).unwrap();
    let again = tracker.run(sir_base::day::step(None::<Artifact>, 0.3, 0.1, 0)).unwrap();
    assert!(again.cache_hit());
    let with = tracker.run(sir_base::day::step(Some(first.output("state").unwrap()), 0.3, 0.1, 0)).unwrap();
    assert!(!with.cache_hit(), "present and absent are different runs");
    assert_eq!(miss(&with).inputs_changed, ["state"]);
    assert!(susceptible(&with) < susceptible(&first));
}

/// Total infected over every day's state: a list input, one Merkle link per day.
#[consist::step(outputs = ["peak"])]
fn peak_infected(days: Vec<&DataFrame>, label: &str) -> StepResult<f64> {
    let mut peak = 0.0f64;
    for df in days {
        peak = peak.max(df.column("i")?.f64()?.get(0).unwrap_or(0.0));
    }
    println!("{label}: peak {peak}");
    Ok(peak)
}

/// The same with a slice of paths and of artifacts.
#[consist::step(outputs = ["count"])]
fn count_files(paths: &[std::path::PathBuf], artifacts: &[Artifact], extra: Option<&std::path::Path>) -> usize {
    paths.iter().filter(|p| p.exists()).count() + artifacts.len() + usize::from(extra.is_some())
}

#[test]
fn list_inputs_are_ordered_merkle_links() {
    let ws = Workspace::new();
    let tracker = ws.tracker();
    let days = sweep(&tracker, Model::Base, "s", 0.3, 0.1, 3);
    let states: Vec<&Artifact> = days.iter().map(|d| d.output("state").unwrap()).collect();
    let peak = tracker.run(peak_infected::step(states.clone(), "sweep")).unwrap();
    let peak_value = *peak.value().unwrap();
    assert!(peak_value > 10.0, "{peak_value}");
    assert!(tracker.run(peak_infected::step(states.clone(), "sweep")).unwrap().cache_hit());
    let reversed: Vec<&Artifact> = states.iter().rev().copied().collect();
    let other = tracker.run(peak_infected::step(reversed, "sweep")).unwrap();
    assert!(!other.cache_hit(), "the order of a list is part of the signature");
    assert_eq!(*other.value().unwrap(), peak_value);
    let shorter = tracker.run(peak_infected::step(states[..2].to_vec(), "sweep")).unwrap();
    assert_eq!(miss(&shorter).inputs_changed, ["days[2]"]);
    let declared: Vec<&String> = peak.run.meta["inputs"].as_object().unwrap().keys().collect();
    assert_eq!(declared, ["days[0]", "days[1]", "days[2]"], "one recorded input per element");

    let file = ws.write("a.txt", "a");
    let count = tracker.run(count_files::step([&file, &file], states.clone(), Some(file.as_path()))).unwrap();
    assert_eq!(*count.value().unwrap(), 2 + 3 + 1);
    let none = tracker.run(count_files::step(Vec::<std::path::PathBuf>::new(), states, None::<Artifact>)).unwrap();
    assert_eq!(*none.value().unwrap(), 3);
}
