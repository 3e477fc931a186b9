//! The travel-demand model of the iterative workflow: a 5-zone linear city whose mode choices
//! cause congestion that feeds back into the next iteration's travel times (skims).
//!
//! Steps are plain functions over polars frames; `#[step]` makes them cached and tracked. A step's
//! code identity follows the items of the crate it uses (helpers, consts, types, their impls, in
//! this file or another), so editing `draw` or `mode_utilities` invalidates exactly the steps that
//! call them. `#[helper]` gives `od_logsums` a code hash of its own for a closure step in
//! `main.rs`.

use consist::prelude::*;
use polars::prelude::*;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde::Serialize;

/// The city: zones on a line, `spacing_miles` apart.
#[derive(Debug, Clone, Serialize)]
pub struct ZoneParams {
    pub spacing_miles: f64,
    pub population: Vec<i64>,
    pub employment: Vec<i64>,
    pub parking_cost: Vec<f64>,
}

impl Default for ZoneParams {
    fn default() -> Self {
        ZoneParams {
            spacing_miles: 2.0,
            population: vec![1200, 1400, 1200, 1000, 800],
            employment: vec![150, 600, 300, 100, 50],
            parking_cost: vec![2.0, 8.0, 3.0, 1.0, 0.5],
        }
    }
}

/// Mode choice: utilities of car, transit and walk.
#[derive(Debug, Clone, Serialize)]
pub struct ModeParams {
    pub beta_time: f64,
    pub beta_cost: f64,
    pub asc_transit: f64,
    pub asc_walk: f64,
    pub fuel_cost_per_mile: f64,
    pub transit_fare: f64,
    pub car_speed_mph: f64,
    pub transit_speed_mph: f64,
    pub transit_wait_mins: f64,
    pub walk_speed_mph: f64,
}

impl Default for ModeParams {
    fn default() -> Self {
        ModeParams {
            beta_time: -0.06,
            beta_cost: -0.25,
            asc_transit: -0.4,
            asc_walk: 0.2,
            fuel_cost_per_mile: 0.3,
            transit_fare: 2.0,
            car_speed_mph: 30.0,
            transit_speed_mph: 15.0,
            transit_wait_mins: 6.0,
            walk_speed_mph: 3.0,
        }
    }
}

/// Destination choice: zone size (employment) against accessibility (logsum).
#[derive(Debug, Clone, Serialize)]
pub struct DestinationParams {
    pub beta_size: f64,
    pub beta_access: f64,
}

impl Default for DestinationParams {
    fn default() -> Self {
        DestinationParams { beta_size: 1.0, beta_access: 0.6 }
    }
}

/// Assignment: BPR congestion, damped by `msa_weight` so the loop settles.
#[derive(Debug, Clone, Serialize)]
pub struct AssignmentParams {
    pub bpr_alpha: f64,
    pub bpr_beta: f64,
    pub base_capacity: f64,
    pub msa_weight: f64,
}

impl Default for AssignmentParams {
    fn default() -> Self {
        AssignmentParams { bpr_alpha: 0.15, bpr_beta: 4.0, base_capacity: 180.0, msa_weight: 0.5 }
    }
}

/// The travel modes, in column order.
pub const MODES: [&str; 3] = ["car", "transit", "walk"];

/// A column as `f64`s.
pub fn floats(df: &DataFrame, name: &str) -> PolarsResult<Vec<f64>> {
    let s = df.column(name)?.as_materialized_series().cast(&DataType::Float64)?;
    Ok(s.f64()?.iter().map(|v| v.unwrap_or(f64::NAN)).collect())
}

/// A column as zone indexes.
pub fn zones_of(df: &DataFrame, name: &str) -> PolarsResult<Vec<usize>> {
    let s = df.column(name)?.as_materialized_series().cast(&DataType::Int64)?;
    Ok(s.i64()?.iter().map(|v| v.unwrap_or(0).max(0) as usize).collect())
}

/// A string column.
pub fn strings(df: &DataFrame, name: &str) -> PolarsResult<Vec<String>> {
    Ok(df.column(name)?.as_materialized_series().str()?.iter().map(|v| v.unwrap_or("").to_owned()).collect())
}

/// Systematic utilities of (car, transit, walk) for one OD pair.
pub fn mode_utilities(
    m: &ModeParams,
    distance: f64,
    car_mins: f64,
    transit_mins: f64,
    walk_mins: f64,
    parking: f64,
) -> [f64; 3] {
    let car = m.beta_time * car_mins + m.beta_cost * (distance * m.fuel_cost_per_mile + parking);
    let transit = m.asc_transit + m.beta_time * transit_mins + m.beta_cost * m.transit_fare;
    let walk = m.asc_walk + m.beta_time * walk_mins;
    [car, transit, walk]
}

/// Index drawn from unnormalised weights.
pub fn draw(weights: &[f64], u: f64) -> usize {
    let total: f64 = weights.iter().sum();
    let mut acc = 0.0;
    for (i, w) in weights.iter().enumerate() {
        acc += w / total;
        if u < acc {
            return i;
        }
    }
    weights.len() - 1
}

/// The city's initial state.
#[derive(Outputs)]
pub struct City {
    pub skims: DataFrame,
    pub persons: DataFrame,
    pub zones: DataFrame,
}

/// Zones, persons and free-flow skims; car times start scaled by `skim_perturbation` (an
/// optimistic first guess that congestion then corrects).
#[step(outputs = ["skims", "persons", "zones"])]
pub fn init(zone_params: &ZoneParams, mode_params: &ModeParams, skim_perturbation: f64) -> StepResult<City> {
    let n = zone_params.population.len();
    let x: Vec<f64> = (0..n).map(|i| i as f64 * zone_params.spacing_miles).collect();
    let zones = df!(
        "zone_id" => (0..n as i64).collect::<Vec<_>>(),
        "x_miles" => x.clone(),
        "population" => zone_params.population.clone(),
        "employment" => zone_params.employment.clone(),
        "parking_cost" => zone_params.parking_cost.clone(),
    )?;
    let homes: Vec<i64> =
        (0..n).flat_map(|z| std::iter::repeat_n(z as i64, zone_params.population[z] as usize)).collect();
    let persons = df!("person_id" => (0..homes.len() as i64).collect::<Vec<_>>(), "home_zone" => homes)?;
    let (mut o, mut d, mut dist, mut car, mut free, mut transit, mut walk) =
        (vec![], vec![], vec![], vec![], vec![], vec![], vec![]);
    for i in 0..n {
        for j in 0..n {
            let miles = (x[i] - x[j]).abs().max(0.5 * zone_params.spacing_miles);
            let free_flow = 60.0 * miles / mode_params.car_speed_mph;
            o.push(i as i64);
            d.push(j as i64);
            dist.push(miles);
            free.push(free_flow);
            car.push(free_flow * skim_perturbation);
            transit.push(mode_params.transit_wait_mins + 60.0 * miles / mode_params.transit_speed_mph);
            walk.push(60.0 * miles / mode_params.walk_speed_mph);
        }
    }
    let skims = df!(
        "origin" => o, "destination" => d, "distance_miles" => dist, "time_car_mins" => car,
        "free_flow_car_mins" => free, "time_transit_mins" => transit, "time_walk_mins" => walk,
    )?;
    Ok(City { skims, persons, zones })
}

/// Utilities of (car, transit, walk) for every OD row of `skims` (row `origin * n + destination`).
pub fn od_utilities(skims: &DataFrame, zones: &DataFrame, m: &ModeParams) -> PolarsResult<Vec<[f64; 3]>> {
    let parking = floats(zones, "parking_cost")?;
    let dest = zones_of(skims, "destination")?;
    let (dist, car, transit, walk) = (
        floats(skims, "distance_miles")?,
        floats(skims, "time_car_mins")?,
        floats(skims, "time_transit_mins")?,
        floats(skims, "time_walk_mins")?,
    );
    Ok((0..skims.height()).map(|r| mode_utilities(m, dist[r], car[r], transit[r], walk[r], parking[dest[r]])).collect())
}

/// OD logsums of the mode choice model (used inline by a trace in `main.rs`, which takes its code
/// identity from here: `#[helper]` follows `od_utilities`, `mode_utilities`... in this file).
#[helper]
pub fn od_logsums(skims: &DataFrame, zones: &DataFrame, m: &ModeParams) -> PolarsResult<DataFrame> {
    let logsum: Vec<f64> =
        od_utilities(skims, zones, m)?.iter().map(|u| u.iter().map(|v| v.exp()).sum::<f64>().ln()).collect();
    let mut out = skims.select(["origin", "destination"])?;
    out.with_column(Column::new("logsum".into(), logsum))?;
    Ok(out)
}

/// Each person picks a destination by size and accessibility. With last iteration's `trips`
/// (absent in iteration 0), only an `update_share` of persons reconsider (the rest keep their
/// destination), which damps the loop.
#[step(outputs = ["trips"])]
pub fn trip_distribution(
    persons: &DataFrame,
    zones: &DataFrame,
    logsums: &DataFrame,
    trips: Option<&DataFrame>,
    dest_params: &DestinationParams,
    update_share: f64,
    seed: u64,
) -> StepResult<DataFrame> {
    let p = dest_params;
    let n = zones.height();
    let employment = floats(zones, "employment")?;
    let ls = floats(logsums, "logsum")?;
    let homes = zones_of(persons, "home_zone")?;
    let kept = trips.map(|t| zones_of(t, "destination")).transpose()?;
    let mut rng = StdRng::seed_from_u64(seed);
    let destinations: Vec<i64> = homes
        .iter()
        .enumerate()
        .map(|(person, &o)| {
            let reconsider = rng.random::<f64>() < update_share;
            let u = rng.random::<f64>();
            match &kept {
                Some(prev) if !reconsider => prev[person] as i64,
                _ => {
                    let w: Vec<f64> = (0..n)
                        .map(|d| (p.beta_size * employment[d].ln() + p.beta_access * ls[o * n + d]).exp())
                        .collect();
                    draw(&w, u) as i64
                }
            }
        })
        .collect();
    Ok(df!(
        "person_id" => persons.column("person_id")?.as_materialized_series().clone(),
        "origin" => homes.iter().map(|&h| h as i64).collect::<Vec<_>>(),
        "destination" => destinations,
    )?)
}

/// Per trip: distance and the utility of each mode.
#[step(outputs = ["utilities"])]
pub fn calculate_utilities(
    trips: &DataFrame,
    skims: &DataFrame,
    zones: &DataFrame,
    mode_params: &ModeParams,
) -> StepResult<DataFrame> {
    let n = zones.height();
    let dist = floats(skims, "distance_miles")?;
    let utilities = od_utilities(skims, zones, mode_params)?;
    let (o, d) = (zones_of(trips, "origin")?, zones_of(trips, "destination")?);
    let mut cols: [Vec<f64>; 4] = Default::default();
    for (&o, &d) in o.iter().zip(&d) {
        let r = o * n + d;
        let u = utilities[r];
        cols[0].push(dist[r]);
        for m in 0..3 {
            cols[m + 1].push(u[m]);
        }
    }
    let [distance, car_u, transit_u, walk_u] = cols;
    let mut out = trips.clone();
    out.hstack_mut(&[
        Column::new("distance_miles".into(), distance),
        Column::new("util_car".into(), car_u),
        Column::new("util_transit".into(), transit_u),
        Column::new("util_walk".into(), walk_u),
    ])?;
    Ok(out)
}

/// Each trip draws its mode from the logit probabilities.
#[step(outputs = ["trips_with_modes"])]
pub fn mode_choice(utilities: &DataFrame, seed: u64) -> StepResult<DataFrame> {
    let u: Vec<Vec<f64>> =
        MODES.iter().map(|m| floats(utilities, &format!("util_{m}"))).collect::<PolarsResult<_>>()?;
    let mut rng = StdRng::seed_from_u64(seed);
    let modes: Vec<&str> = (0..utilities.height())
        .map(|t| {
            let w: Vec<f64> = (0..3).map(|m| u[m][t].exp()).collect();
            MODES[draw(&w, rng.random::<f64>())]
        })
        .collect();
    let mut out = utilities.select(["person_id", "origin", "destination", "distance_miles"])?;
    out.with_column(Column::new("mode".into(), modes))?;
    Ok(out)
}

/// Car trips per OD pair.
#[step(outputs = ["volumes"])]
pub fn assignment(trips_with_modes: &DataFrame) -> StepResult<DataFrame> {
    let (o, d) = (zones_of(trips_with_modes, "origin")?, zones_of(trips_with_modes, "destination")?);
    let modes = strings(trips_with_modes, "mode")?;
    let mut volume = std::collections::BTreeMap::<(usize, usize), f64>::new();
    for ((o, d), m) in o.into_iter().zip(d).zip(&modes) {
        if m == "car" {
            *volume.entry((o, d)).or_default() += 1.0;
        }
    }
    Ok(df!(
        "origin" => volume.keys().map(|k| k.0 as i64).collect::<Vec<_>>(),
        "destination" => volume.keys().map(|k| k.1 as i64).collect::<Vec<_>>(),
        "car_trips" => volume.values().copied().collect::<Vec<_>>(),
    )?)
}

/// New car times from BPR congestion, averaged with the old ones (`msa_weight`), computed on
/// `threads` threads: a runtime parameter, recorded in the run but not in its signature (the
/// result is the same on any number of threads).
#[step(outputs = ["skims"])]
pub fn traffic_simulation(
    volumes: &DataFrame,
    skims: &DataFrame,
    assignment_params: &AssignmentParams,
    #[consist(runtime)] threads: usize,
) -> StepResult<DataFrame> {
    let a = assignment_params;
    let n = (skims.height() as f64).sqrt().round() as usize;
    let mut flow = vec![0.0; skims.height()];
    let (o, d, v) = (zones_of(volumes, "origin")?, zones_of(volumes, "destination")?, floats(volumes, "car_trips")?);
    for ((o, d), v) in o.into_iter().zip(d).zip(v) {
        flow[o * n + d] = v;
    }
    let (old, free) = (floats(skims, "time_car_mins")?, floats(skims, "free_flow_car_mins")?);
    let time = |r: usize| {
        let congested = free[r] * (1.0 + a.bpr_alpha * (flow[r] / a.base_capacity).powf(a.bpr_beta));
        (1.0 - a.msa_weight) * old[r] + a.msa_weight * congested
    };
    let mut new = vec![0.0; skims.height()];
    let chunk = new.len().div_ceil(threads.max(1)).max(1);
    std::thread::scope(|s| {
        for (c, part) in new.chunks_mut(chunk).enumerate() {
            let time = &time;
            s.spawn(move || part.iter_mut().enumerate().for_each(|(i, t)| *t = time(c * chunk + i)));
        }
    });
    let mut out = skims.clone();
    out.with_column(Column::new("time_car_mins".into(), new))?;
    Ok(out)
}

/// Mode shares, vehicle and person miles of one iteration's trips.
pub struct IterationSummary {
    pub shares: [f64; 3],
    pub pmt: [f64; 3],
    pub vmt: f64,
    pub trips: usize,
}

/// Summarise one iteration's `trips_with_modes` (the `summaries` step in `main.rs` calls it; its
/// code identity follows it here).
pub fn summarize(trips: &DataFrame) -> PolarsResult<IterationSummary> {
    let modes = strings(trips, "mode")?;
    let dist = floats(trips, "distance_miles")?;
    let (mut count, mut pmt) = ([0usize; 3], [0.0; 3]);
    for (m, d) in modes.iter().zip(&dist) {
        if let Some(i) = MODES.iter().position(|x| x == m) {
            count[i] += 1;
            pmt[i] += d;
        }
    }
    let total = modes.len().max(1) as f64;
    Ok(IterationSummary { shares: count.map(|c| c as f64 / total), pmt, vmt: pmt[0], trips: modes.len() })
}
