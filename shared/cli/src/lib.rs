//! `tiers`, the operator's command line over the admin API.
//!
//! Layout, so that a command group is one module and nothing else:
//!
//! - [`client`]: HTTP to `/v1/admin/...` and the mapping of every answer to
//!   a result or a [`error::CliError`] (which carries the exit code);
//! - [`output`]: tables or `--json`, progress bars and spinners;
//! - [`config`]: endpoint, key and profiles;
//! - [`commands`]: one module per group (`rule-set`, `distributors`, ...),
//!   each with its clap arguments and a `run`.
//!
//! A new group is a module in `commands/` and a variant of
//! [`commands::Command`].

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;

pub mod chart;
pub mod client;
pub mod commands;
pub mod config;
pub mod error;
pub mod output;

use error::CliError;
use output::Out;

/// Distributor tiers from the command line: rule sets, distributors,
/// reviews, what-ifs, API keys, dead letters, over the admin API.
#[derive(Debug, Parser)]
#[command(name = "tiers", version)]
pub struct Cli {
    /// The API's base URL (the stack's HTTP API, without /v1/admin).
    #[arg(long, env = "TIERS_ENDPOINT", global = true)]
    endpoint: Option<String>,
    /// A profile of the profiles file (TIERS_PROFILES, else
    /// ~/.config/tiers/profiles.toml); `default` if there is one.
    #[arg(long, env = "TIERS_PROFILE", global = true)]
    profile: Option<String>,
    /// Print the API's JSON instead of tables.
    #[arg(long, global = true)]
    json: bool,
    /// Who manual tier changes are recorded as (X-Actor); else the
    /// profile's `actor`, else the API's default.
    #[arg(long, env = "TIERS_ACTOR", global = true)]
    actor: Option<String>,
    /// Seconds a request may take before it counts as a failure.
    #[arg(long, default_value_t = 120, global = true)]
    timeout: u64,
    #[command(subcommand)]
    command: commands::Command,
}

/// What every command gets: how to print, and how to reach the API.
pub struct Ctx {
    pub out: Out,
    sources: config::Sources,
    timeout: Duration,
}

impl Ctx {
    /// A client of the configured stack. Only commands that talk to the
    /// API ask for one, so offline ones need no endpoint or key.
    pub fn client(&self) -> Result<client::Client, CliError> {
        client::Client::new(config::resolve(&self.sources)?, self.timeout)
    }
}

fn env_path(name: &str) -> Option<std::path::PathBuf> {
    std::env::var_os(name)
        .filter(|v| !v.is_empty())
        .map(Into::into)
}

/// Parses the command line, runs the command and reports its failure.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let out = Out { json: cli.json };
    let ctx = Ctx {
        out,
        sources: config::Sources {
            endpoint: cli.endpoint,
            api_key: std::env::var("TIERS_API_KEY")
                .ok()
                .filter(|k| !k.is_empty()),
            profile: cli.profile,
            profiles_file: env_path("TIERS_PROFILES"),
            actor: cli.actor,
            home: env_path("HOME"),
            xdg_config_home: env_path("XDG_CONFIG_HOME"),
        },
        timeout: Duration::from_secs(cli.timeout.max(1)),
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::from(error::exit::UNAVAILABLE);
        }
    };
    match runtime.block_on(commands::run(cli.command, &ctx)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            report(&e, out);
            e.into()
        }
    }
}

/// The failure on stderr, with its cause; with `--json`, the API's answer
/// (or the problems found) on stdout too, for scripts.
fn report(e: &CliError, out: Out) {
    match e {
        CliError::Refused { errors, body, .. } => {
            if out.json {
                out.emit(body, String::new);
            }
            eprintln!("error: {e}");
            if let Some(errors) = errors.as_ref().and_then(|v| v.as_array()) {
                eprintln!("{}", commands::bad_lines(errors));
            }
        }
        CliError::Invalid { file, problems } => {
            if out.json {
                out.emit(
                    &serde_json::json!({"file": file, "valid": false, "problems": problems}),
                    String::new,
                );
            }
            let mut t = output::table(["where", "problem"]);
            for p in problems {
                t.add_row([p.at.as_str(), p.message.as_str()]);
            }
            eprintln!("{t}");
            eprintln!("error: {e}");
        }
        other => {
            let mut text = format!("error: {other}");
            let mut source = std::error::Error::source(other);
            while let Some(s) = source {
                text.push_str(&format!(": {s}"));
                source = s.source();
            }
            eprintln!("{text}");
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_command_line_is_well_formed() {
        // clap checks names and groups only when a command is parsed: this
        // checks every subcommand now.
        <super::Cli as clap::CommandFactory>::command().debug_assert();
    }
}
