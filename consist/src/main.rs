//! The `consist` command-line tool: inspect provenance recorded by consist.

fn main() -> std::process::ExitCode {
    consist::cli::main()
}
