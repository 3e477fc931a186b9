use consist_macros::step;

// Every problem is reported in one build.
#[step(outputs = ["x"])]
fn f((a, b): (i64, i64), c: &mut i64, #[consist(sideways)] d: i64) -> i64 {
    *c += a + b + d;
    *c
}

fn main() {}
