//! `startup-latency`: how long each function takes from process start to
//! its first request for work, against a hello-world `lambda_runtime`
//! binary measured in the same run. That interval is the init a cold start
//! pays before the first event is even fetched.
//!
//! ```text
//! make bench-startup                       # release builds, 30 starts each
//! cargo run --release -p local-stack --bin startup-latency -- --runs 50
//! cargo run --release -p local-stack --bin startup-latency -- --env SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
//! ```
//!
//! A fake Lambda Runtime API on 127.0.0.1 notes the moment each process
//! asks for `GET /2018-06-01/runtime/invocation/next`, then the process is
//! killed (by its pid). Starts are interleaved across the binaries, so the
//! machine's load drifts over all of them alike; the ratio to the hello
//! world is what to compare between runs. Nothing is sent to AWS: the
//! functions' clients are only built, against dummy settings.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;

const DEFAULT_RUNS: usize = 30;
const BINARIES: [&str; 6] = [
    "hello-lambda",
    "order-intake",
    "price-lookup",
    "tier-evaluation",
    "stock-allocation",
    "admin-api",
];

/// What every function reads at init, with harmless values.
const ENV: [(&str, &str); 20] = [
    ("AWS_REGION", "us-east-1"),
    ("AWS_ACCESS_KEY_ID", "test"),
    ("AWS_SECRET_ACCESS_KEY", "test"),
    ("AWS_EC2_METADATA_DISABLED", "true"),
    ("AWS_LAMBDA_FUNCTION_NAME", "startup"),
    ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256"),
    ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
    ("AWS_LAMBDA_LOG_STREAM_NAME", "startup"),
    ("AWS_LAMBDA_LOG_GROUP_NAME", "startup"),
    ("TABLE_NAME", "startup"),
    ("TIER_EVENTS_QUEUE_URL", "http://127.0.0.1:9/tier"),
    ("STOCK_EVENTS_QUEUE_URL", "http://127.0.0.1:9/stock"),
    ("DLQ_URL", "http://127.0.0.1:9/dlq"),
    ("TIER_EVENTS_DLQ_URL", "http://127.0.0.1:9/tier-dlq"),
    ("STOCK_EVENTS_DLQ_URL", "http://127.0.0.1:9/stock-dlq"),
    ("ORDER_DETAIL_QUEUE_URL", "http://127.0.0.1:9/order-detail"),
    ("PLATFORM_SECRETS_PREFIX", "startup/platform-apps"),
    ("ADMIN_API_KEY", "startup-admin-key-0123456789abcdef"),
    ("WEBHOOK_SECRETS", "startup-webhook-secret"),
    ("BRAND_TIMEZONE", "Asia/Shanghai"),
];

/// One start: from spawning `binary` to its first request for work.
async fn start_once(
    binary: &Path,
    listener: &TcpListener,
    extra_env: &[(String, String)],
) -> anyhow::Result<Duration> {
    let api = listener.local_addr()?.to_string();
    let started = Instant::now();
    // Only what Lambda would set: this machine's own variables (a
    // certificate directory to scan, say) would measure this machine.
    let mut command = tokio::process::Command::new(binary);
    command
        .env_clear()
        .envs(ENV)
        .envs(extra_env.iter().map(|(k, v)| (k, v)));
    let mut child = command
        .env("AWS_LAMBDA_RUNTIME_API", &api)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {}", binary.display()))?;
    let waited = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let (mut stream, _) = listener.accept().await?;
            let mut buf = [0u8; 256];
            let n = stream.read(&mut buf).await?;
            if buf[..n].starts_with(b"GET /2018-06-01/runtime/invocation/next") {
                return Ok::<_, std::io::Error>(started.elapsed());
            }
        }
    })
    .await;
    // Killed by its own pid, whatever happened.
    let _ = child.kill().await;
    match waited {
        Ok(Ok(elapsed)) => Ok(elapsed),
        Ok(Err(e)) => Err(e.into()),
        Err(_) => bail!("{} never asked for work", binary.display()),
    }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort_unstable();
    v[v.len() / 2]
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let mut runs = DEFAULT_RUNS;
    let mut extra_env: Vec<(String, String)> = Vec::new();
    while let Some(a) = args.next() {
        match a.as_str() {
            "--runs" => {
                runs = args
                    .next()
                    .and_then(|n| n.parse().ok())
                    .filter(|n| *n > 0)
                    .context("--runs takes a positive whole number")?
            }
            // A variable a deployment may add: a roots file of the brand's
            // own (TLS_ROOTS_FILE), or SSL_CERT_FILE, which leaves TLS to
            // the SDK's own client.
            "--env" => {
                let pair = args.next().context("--env takes NAME=VALUE")?;
                let (name, value) = pair.split_once('=').context("--env takes NAME=VALUE")?;
                extra_env.push((name.to_owned(), value.to_owned()));
            }
            other => bail!(
                "unknown argument {other:?}; usage: startup-latency [--runs N] [--env NAME=VALUE]..."
            ),
        }
    }
    // The binaries beside this one, built in the same profile.
    let dir: PathBuf = std::env::current_exe()?
        .parent()
        .context("the benchmark's own directory")?
        .to_owned();
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let mut times: Vec<Vec<Duration>> = vec![Vec::new(); BINARIES.len()];
    for _ in 0..runs {
        for (i, name) in BINARIES.iter().enumerate() {
            times[i].push(start_once(&dir.join(name), &listener, &extra_env).await?);
        }
    }
    let medians: Vec<Duration> = times.into_iter().map(median).collect();
    let base = medians[0].as_secs_f64();
    let added: Vec<String> = extra_env.iter().map(|(k, v)| format!("{k}={v}")).collect();
    println!(
        "start to first request for work, median of {runs} (ratio to {}), {}:",
        BINARIES[0],
        if added.is_empty() {
            "only Lambda's variables".to_owned()
        } else {
            format!("with {}", added.join(" "))
        }
    );
    let mut json = Vec::new();
    for (name, m) in BINARIES.iter().zip(&medians) {
        let ms = m.as_secs_f64() * 1000.0;
        let ratio = m.as_secs_f64() / base;
        println!("  {name:<18} {ms:>7.2} ms  {ratio:>5.2}x");
        json.push(format!(r#""{name}":{{"ms":{ms:.3},"ratio":{ratio:.3}}}"#));
    }
    let env_json: Vec<String> = extra_env
        .iter()
        .map(|(k, v)| format!("{k:?}:{v:?}"))
        .collect();
    println!(
        r#"{{"bench":"startup-latency","runs":{runs},"env":{{{}}},{}}}"#,
        env_json.join(","),
        json.join(",")
    );
    Ok(())
}
