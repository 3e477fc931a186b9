use consist_macros::step;

#[step(output = ["x"])]
fn f(a: i64) -> i64 {
    a
}

fn main() {}
