//! A library user's own model, built outside the workspace (see `.ci/user-crate.sh`): an SIR
//! epidemic sweep, population -> per-beta scenarios of daily steps -> a summary over every day.

use consist::polars::prelude::*;
use consist::{MissExplanation, RunResult, StepResult, Tracker, step};

/// Contacts per person per day, relative to the baseline.
const CONTACT_SCALE: f64 = 1.0;

/// The initial state: susceptible, infected, recovered.
#[step(outputs = ["population"])]
fn population(size: f64, infected: f64) -> StepResult<DataFrame> {
    Ok(df!("s" => [size - infected], "i" => [infected], "r" => [0.0])?)
}

fn column(df: &DataFrame, name: &str) -> PolarsResult<f64> {
    Ok(df.column(name)?.f64()?.get(0).unwrap_or(f64::NAN))
}

/// One day: yesterday's state if there is one (absent on day 0), else the initial population.
#[step(outputs = ["state"])]
fn day(population: &DataFrame, state: Option<&DataFrame>, beta: f64, gamma: f64) -> StepResult<DataFrame> {
    let df = state.unwrap_or(population);
    let (s, i, r) = (column(df, "s")?, column(df, "i")?, column(df, "r")?);
    let n = s + i + r;
    // Read while the step runs: its value counts in the code identity (`env .. at run time`).
    let season: f64 = std::env::var("SIR_SEASON").ok().and_then(|v| v.parse().ok()).unwrap_or(1.0);
    let infections = (beta * CONTACT_SCALE * season * s * i / n).min(s);
    let recoveries = gamma * i;
    Ok(df!("s" => [s - infections], "i" => [i + infections - recoveries], "r" => [r + recoveries])?)
}

/// The peak of infections over every day of a scenario (a list input, one link per day).
#[step(outputs = ["peak"])]
fn peak(days: Vec<&DataFrame>) -> StepResult<f64> {
    let mut peak = 0.0f64;
    for df in days {
        peak = peak.max(column(df, "i")?);
    }
    Ok(peak)
}

fn main() -> consist::Result<()> {
    let dir = std::env::args().nth(1).unwrap_or_else(|| "./sir-runs".into());
    let tracker = Tracker::builder(&dir).open()?;
    let (mut executed, mut hits, mut first_miss) = (0, 0, None::<String>);
    let mut tally = |r: &RunResult<DataFrame>| {
        if r.cache_hit() {
            hits += 1;
        } else {
            executed += 1;
            if let Some(e) = MissExplanation::from_meta(&r.run.meta) {
                first_miss.get_or_insert(e.summary);
            }
        }
    };
    let pop = tracker.run(population::step(10_000.0, 10.0))?;
    tally(&pop);
    for beta in [0.3, 0.5] {
        let scenario = tracker.scenario(&format!("beta={beta}")).start()?;
        let mut days = Vec::new();
        for d in 0..30 {
            let today = scenario.run(
                day::step(pop.output("population")?, scenario.get("state"), beta, 0.1).iteration(d),
            )?;
            tally(&today);
            days.push(today.output("state")?.clone());
        }
        let p = scenario.run(peak::step(&days))?;
        println!("{} peak infected {:.0}, final susceptible {:.0}", scenario.name(), p.value()?, {
            let last = tracker.load::<DataFrame>(days.last().expect("30 days"))?;
            column(&last, "s").unwrap_or(f64::NAN)
        });
        scenario.finish()?;
    }
    println!("executed {executed}, hits {hits}");
    if let Some(reason) = first_miss {
        println!("first miss: {reason}");
    }
    Ok(())
}
