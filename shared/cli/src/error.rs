//! What can go wrong, and the exit code each failure leaves: scripts branch
//! on the code, so every failure maps to exactly one (see docs/cli.md).

use std::process::ExitCode;

use serde_json::Value;

/// The exit codes, documented in docs/cli.md; never renumbered.
pub mod exit {
    pub const OK: u8 = 0;
    /// The API answered 4xx: it refused the request.
    pub const REFUSED: u8 = 1;
    /// Bad usage or bad local input (clap exits 2 on its own for usage).
    pub const USAGE: u8 = 2;
    /// A 5xx answer, an answer that is not the API's, or no answer at all.
    pub const UNAVAILABLE: u8 = 3;
    /// Offline validation found errors in a file.
    pub const INVALID: u8 = 4;
    /// A wait gave up (`--max-wait`) before the run finished.
    pub const STILL_RUNNING: u8 = 5;
}

/// A problem found in a local file, before anything is sent.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Problem {
    /// Where: a field path (`tiers[1].upgrade`) or a line.
    pub at: String,
    pub message: String,
}

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The API's own refusal: its stable `code`, its `message`, and the
    /// itemised `errors` some refusals carry (a price book's bad rows).
    #[error("the API refused ({status} {code}): {message}")]
    Refused {
        status: u16,
        code: String,
        message: String,
        errors: Option<Value>,
        /// The answer as it came, for `--json`.
        body: Value,
    },
    #[error("the API failed ({status} {code}): {message}")]
    Server {
        status: u16,
        code: String,
        message: String,
    },
    #[error("cannot reach {endpoint}")]
    Unreachable {
        endpoint: String,
        #[source]
        source: reqwest::Error,
    },
    /// An answer that is not JSON where JSON was expected: not the API, or
    /// a proxy in front of it.
    #[error("the answer from {url} is not the API's JSON ({status}): {snippet}")]
    NotJson {
        url: String,
        status: u16,
        snippet: String,
    },
    #[error("{0}")]
    Usage(String),
    #[error("cannot read {path}")]
    ReadFile {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write {path}")]
    WriteFile {
        path: String,
        #[source]
        source: anyhow::Error,
    },
    /// Offline validation's findings; the command has printed them.
    #[error("{file}: {} problem(s)", problems.len())]
    Invalid {
        file: String,
        problems: Vec<Problem>,
    },
    #[error("{0}")]
    StillRunning(String),
}

impl CliError {
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Refused { .. } => exit::REFUSED,
            CliError::Server { .. } | CliError::Unreachable { .. } | CliError::NotJson { .. } => {
                exit::UNAVAILABLE
            }
            CliError::Usage(_) | CliError::ReadFile { .. } | CliError::WriteFile { .. } => {
                exit::USAGE
            }
            CliError::Invalid { .. } => exit::INVALID,
            CliError::StillRunning(_) => exit::STILL_RUNNING,
        }
    }

    pub fn usage(message: impl Into<String>) -> Self {
        CliError::Usage(message.into())
    }
}

impl From<CliError> for ExitCode {
    fn from(e: CliError) -> Self {
        ExitCode::from(e.exit_code())
    }
}

/// Reads a local file, keeping its name in the error.
pub fn read_file(path: &std::path::Path) -> Result<Vec<u8>, CliError> {
    std::fs::read(path).map_err(|source| CliError::ReadFile {
        path: path.display().to_string(),
        source,
    })
}

/// Reads a local UTF-8 text file.
pub fn read_text(path: &std::path::Path) -> Result<String, CliError> {
    let bytes = read_file(path)?;
    String::from_utf8(bytes)
        .map_err(|_| CliError::usage(format!("{} is not UTF-8 text", path.display())))
}
