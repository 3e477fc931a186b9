use consist_macros::helper;

#[helper(outputs = ["x"], version = "2")]
fn h(a: i64) -> i64 {
    a
}

fn main() {}
