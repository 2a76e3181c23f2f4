//! `local-stack demo`: starts the emulator and every function, loads the
//! clothing brand, drives orders through it, prints what happened, then
//! keeps serving until interrupted. `local-stack serve` skips the scenario.
//! `local-stack review --at <instant>` asks a running stack for the review a
//! schedule would start at that instant (see [`local_stack::rehearse`]).

use std::net::SocketAddr;

use anyhow::Context;
use local_stack::moto::{Moto, repo_root};
use local_stack::stack::{LocalStack, StackOptions};

/// The whole product on this machine, on the moto emulator.
#[derive(Debug, clap::Parser)]
#[command(name = "local-stack")]
struct Cli {
    /// `demo` loads the clothing brand and drives orders through it, then
    /// serves; `serve` only serves; `review` asks a running stack for a
    /// review at `--at`.
    #[arg(value_enum, default_value = "demo")]
    mode: Mode,
    /// `review`: the instant the review runs at, with its offset
    /// (`2027-01-01T00:05:00+08:00`); the brand's calendar picks the period.
    #[arg(long)]
    at: Option<chrono::DateTime<chrono::FixedOffset>>,
    /// `review`: the day's review of rolling windows instead of the month's.
    #[arg(long)]
    daily: bool,
    /// `review`: the running stack's address (default `http://127.0.0.1:PORT`).
    #[arg(long)]
    url: Option<String>,
    /// Attach to an emulator already running here (`http://127.0.0.1:PORT`)
    /// instead of starting one; it is left running on exit.
    #[arg(long)]
    endpoint: Option<String>,
    /// Use the tables and queues under this prefix, creating what is
    /// missing: a restarted stack finds its stores, orders and queued
    /// messages again.
    #[arg(long)]
    prefix: Option<String>,
    /// Every queue's visibility timeout, in seconds (the template's is 60):
    /// how soon a failed message is received again.
    #[arg(long)]
    visibility_timeout: Option<u32>,
    /// Where the local API listens.
    #[arg(long, env = "PORT", default_value_t = 8080)]
    port: u16,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum Mode {
    Demo,
    Serve,
    Review,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    use clap::Parser;
    let cli = Cli::parse();
    if cli.mode == Mode::Review {
        return review(&cli).await;
    }
    // The functions' logs go to a file, so the demo's lines stay readable.
    let log_dir = repo_root().join(".local");
    std::fs::create_dir_all(&log_dir).with_context(|| format!("creating {}", log_dir.display()))?;
    let log = log_dir.join("local-stack.log");
    tier_runtime::logging::init_text_file("warn", &log)
        .with_context(|| format!("opening {}", log.display()))?;
    // The metrics the functions emit in CloudWatch's format, a line each.
    let metrics = log_dir.join("metrics.log");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&metrics)
        .with_context(|| format!("opening {}", metrics.display()))?;
    tier_runtime::metrics::set_sink(tier_runtime::metrics::Sink::File(std::sync::Arc::new(
        std::sync::Mutex::new(file),
    )));
    println!(
        "Function logs (RUST_LOG sets the level): {}; metrics: {}",
        log.display(),
        metrics.display()
    );
    // Ours to stop on exit, or an emulator someone else runs.
    let (moto, endpoint) = match &cli.endpoint {
        Some(endpoint) => {
            println!("Attaching to the emulator at {endpoint}");
            (None, endpoint.clone())
        }
        None => {
            println!("Starting the emulator (moto) on 127.0.0.1 ...");
            let moto = Moto::start(&repo_root())?;
            println!("  moto is {} (pid {})", moto.endpoint, moto.pid());
            let endpoint = moto.endpoint.clone();
            (Some(moto), endpoint)
        }
    };
    let mut opts = StackOptions::new(
        endpoint.clone(),
        SocketAddr::from(([127, 0, 0, 1], cli.port)),
    );
    if let Some(prefix) = &cli.prefix {
        opts.prefix = prefix.clone();
    }
    opts.visibility_timeout = cli.visibility_timeout;
    let stack = LocalStack::start(opts).await?;
    println!(
        "  tables and queues from infra/template.yaml with prefix {}",
        stack.resources.prefix
    );

    let outcome = if cli.mode == Mode::Demo {
        local_stack::demo::run(&stack).await.map(Some)
    } else {
        Ok(None)
    };
    if let Err(e) = &outcome {
        eprintln!("\nThe demo failed: {e:#}");
    }
    let base = &stack.base_url;
    println!("\nServing on {base} until Ctrl-C:");
    let key = match &outcome {
        Ok(Some(key)) => key.clone(),
        _ => "<create one: POST /v1/admin/api-keys>".into(),
    };
    println!(
        "  curl -H 'Authorization: Bearer {key}' '{base}/v1/distributors/d-shanghai/prices?sku=TEE-WHITE&sku=JACKET-DOWN'"
    );
    println!("  curl -H 'Authorization: Bearer {key}' '{base}/v1/distributors/d-shanghai/tier'");
    println!(
        "  curl -H 'X-Admin-Key: {}' {base}/v1/admin/distributors/d-shanghai",
        stack.admin_key
    );
    println!(
        "  POST {base}/webhooks/{{platform}}/{{store}}  (a document naming the same platform and store; X-Signature: t=<unix>,v1=<hex HMAC-SHA256 of \"t.body\">, secret {})",
        stack.webhook_secret
    );
    // Ctrl-C, or SIGTERM from a supervisor: either way the emulator is
    // stopped by its pid below, never left behind.
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    println!("\nStopping ...");
    let prefix = stack.resources.prefix.clone();
    stack.stop().await;
    if moto.is_none() {
        println!(
            "The data stays in the emulator: attach again with\n  local-stack serve --endpoint {endpoint} --prefix {prefix}"
        );
    }
    drop(moto); // kills the emulator we started, by its pid
    outcome.map(|_| ())
}

/// `local-stack review`: prints what the rehearsed review did.
async fn review(cli: &Cli) -> anyhow::Result<()> {
    let at = cli
        .at
        .context("review needs --at, the instant to review at (2027-01-01T00:05:00+08:00)")?;
    let url = cli
        .url
        .clone()
        .unwrap_or_else(|| format!("http://127.0.0.1:{}", cli.port));
    let kind = if cli.daily {
        local_stack::rehearse::Kind::Daily
    } else {
        local_stack::rehearse::Kind::Monthly
    };
    let answer = local_stack::rehearse::request(&url, kind, at).await?;
    let r = &answer["review"];
    if answer["created"] == false {
        println!(
            "The review of {} had already started, at {}: it ran again at that instant, not at --at.",
            r["period"], r["at"]
        );
    }
    println!(
        "Review of {} at {}: {} evaluated, {} changed ({}).",
        r["period"].as_str().unwrap_or("?"),
        r["at"].as_str().unwrap_or("?"),
        r["evaluated"],
        r["changed"],
        r["state"].as_str().unwrap_or("?")
    );
    Ok(())
}
