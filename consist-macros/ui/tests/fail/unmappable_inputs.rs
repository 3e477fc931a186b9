use consist_macros::{helper, step};
use std::collections::HashMap;

struct DataFrame;

// Types that mention a frame or a path but have no input mapping are named, with what is supported.
#[step(outputs = ["x"])]
fn f(by_name: HashMap<String, DataFrame>, boxed: Box<DataFrame>, maybe: &Option<DataFrame>) -> i64 {
    by_name.len() as i64 + i64::from(maybe.is_some()) + { drop(boxed); 0 }
}

// #[helper] needs a named item; an impl block is followed with its type.
struct S;
#[helper]
impl S {}

fn main() {}
