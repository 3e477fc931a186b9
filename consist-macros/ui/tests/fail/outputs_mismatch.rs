use consist_macros::step;

#[step(outputs = ["only_one"])]
fn two(a: i64) -> (i64, i64) {
    (a, a)
}

#[step]
fn unnamed(a: i64) -> i64 {
    a
}

#[step(outputs = ["logged"])]
fn nothing_to_log_with(_a: i64) {}

fn main() {}
