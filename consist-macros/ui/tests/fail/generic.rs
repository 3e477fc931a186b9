use consist_macros::step;

#[step(outputs = ["x"])]
fn f<T: Into<i64>>(a: T) -> i64 {
    a.into()
}

fn main() {}
