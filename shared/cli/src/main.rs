//! `tiers`: see the library for the commands, docs/cli.md for their use.

fn main() -> std::process::ExitCode {
    tiers_cli::main()
}
