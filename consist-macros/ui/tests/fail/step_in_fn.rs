use consist_macros::step;

// A step inside a function body: the generated `double::step` could not reach `double`.
fn main() {
    #[step(outputs = ["x"])]
    fn double(n: i64) -> i64 {
        n * 2
    }
    let _ = double(1);
}
