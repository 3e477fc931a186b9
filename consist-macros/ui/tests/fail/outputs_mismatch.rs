use consist_macros::step;

#[step(outputs = ["only_one"])]
fn two(a: i64) -> (i64, i64) {
    (a, a)
}

#[step(outputs = ["mean", "sd"])]
fn one_for_two(a: f64) -> f64 {
    a
}

#[step]
fn unnamed(a: i64) -> i64 {
    a
}

#[step(outputs = ["logged"])]
fn nothing_to_log_with(_a: i64) {}

fn main() {}
