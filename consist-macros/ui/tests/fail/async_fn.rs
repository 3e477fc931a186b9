use consist_macros::step;

#[step(outputs = ["x"])]
async fn f(a: i64) -> i64 {
    a
}

fn main() {}
