use consist_macros::step;

#[step(outputs = ["a", "a"])]
fn f(a: i64) -> (i64, i64) {
    (a, a)
}

fn main() {}
