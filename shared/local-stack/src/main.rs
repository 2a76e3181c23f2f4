//! `local-stack demo`: starts the emulator and every function, loads the
//! clothing brand, drives orders through it, prints what happened, then
//! keeps serving until interrupted. `local-stack serve` skips the scenario.

use std::net::SocketAddr;

use anyhow::Context;
use local_stack::moto::{Moto, repo_root};
use local_stack::stack::{LocalStack, StackOptions};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // The functions' logs go to a file, so the demo's lines stay readable.
    let log_dir = repo_root().join(".local");
    std::fs::create_dir_all(&log_dir).with_context(|| format!("creating {}", log_dir.display()))?;
    let log = log_dir.join("local-stack.log");
    tier_runtime::logging::init_text_file("warn", &log)
        .with_context(|| format!("opening {}", log.display()))?;
    let mode = std::env::args().nth(1).unwrap_or_else(|| "demo".into());
    if !matches!(mode.as_str(), "demo" | "serve") {
        anyhow::bail!("usage: local-stack [demo|serve]");
    }
    let port: u16 = std::env::var("PORT")
        .ok()
        .filter(|p| !p.is_empty())
        .map(|p| p.parse())
        .transpose()
        .context("PORT must be a port number")?
        .unwrap_or(8080);

    println!("Function logs (RUST_LOG sets the level): {}", log.display());
    println!("Starting the emulator (moto) on 127.0.0.1 ...");
    let moto = Moto::start(&repo_root())?;
    println!("  moto is {} (pid {})", moto.endpoint, moto.pid());
    let stack = LocalStack::start(StackOptions::new(
        moto.endpoint.clone(),
        SocketAddr::from(([127, 0, 0, 1], port)),
    ))
    .await?;
    println!(
        "  tables and queues created from infra/template.yaml with prefix {}",
        stack.resources.prefix
    );

    let outcome = if mode == "demo" {
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
    stack.stop().await;
    drop(moto); // kills the emulator by its pid
    outcome.map(|_| ())
}
