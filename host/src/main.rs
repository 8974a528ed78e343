//! The `kendo-bridge` binary.

mod cli;

fn main() -> std::process::ExitCode {
    cli::run()
}
