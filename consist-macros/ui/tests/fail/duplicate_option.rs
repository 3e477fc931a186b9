use consist_macros::step;

#[step(outputs = ["a"], outputs = ["b"])]
fn f(a: i64) -> i64 {
    a
}

fn main() {}
