use consist_macros::step;

struct DataFrame;
type Frame = DataFrame;

// Outputs are mapped by the type's name: an alias of `DataFrame` is refused, naming the fix.
#[step(outputs = ["table", "count"])]
fn load(n: i64) -> (Frame, i64) {
    (DataFrame, n)
}

fn main() {}
