//! What the benchmarks share: their one argument, the stack they run
//! against, and percentiles.

use std::time::Duration;

use anyhow::{Context, bail, ensure};

/// The build the figures are for: `debug` or `release`.
pub fn build() -> &'static str {
    if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    }
}

/// Runs `measure` against a fresh local stack on an emulator of its own,
/// with `tune` applied to the stack's options, then stops the stack and
/// kills the emulator by its pid, whatever `measure` returned. `measure`
/// gets the stack and the emulator's endpoint.
pub async fn with_stack(
    tune: impl FnOnce(&mut crate::stack::StackOptions),
    measure: impl AsyncFnOnce(&crate::stack::LocalStack, &str) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let moto = crate::moto::Moto::start(&crate::moto::repo_root())?;
    println!("  moto {} (pid {})", moto.endpoint, moto.pid());
    let mut opts = crate::stack::StackOptions::new(
        moto.endpoint.clone(),
        std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
    );
    tune(&mut opts);
    let outcome = match crate::stack::LocalStack::start(opts).await {
        Ok(stack) => {
            let outcome = measure(&stack, &moto.endpoint).await;
            stack.stop().await;
            outcome
        }
        Err(e) => Err(e),
    };
    drop(moto); // kills the emulator by its pid
    outcome
}

/// Logs at `warn`, to stderr: a bench's stdout is its table.
pub fn quiet_logs() {
    tracing_subscriber::fmt()
        .with_env_filter("warn")
        .with_writer(std::io::stderr)
        .init();
}

/// Registers each of `chain` under the one before it, the first under
/// `top` (`None`: the first is a top of its own).
pub async fn register_chain(
    api: &crate::client::ApiClient,
    top: Option<&str>,
    chain: &[String],
) -> anyhow::Result<()> {
    let mut upline = top.map(str::to_owned);
    for id in chain {
        let r = api
            .put(
                &format!("distributors/{id}"),
                &serde_json::json!({"name": id, "upline": upline}),
            )
            .await?;
        ensure!(r.status == 201, "registering {id}: {}", r.body);
        upline = Some(id.clone());
    }
    Ok(())
}

/// Connects the store `tmall/{store}` to `distributor`.
pub async fn connect_store(
    api: &crate::client::ApiClient,
    store: &str,
    distributor: &str,
) -> anyhow::Result<()> {
    let r = api
        .put(
            &format!("stores/tmall/{store}"),
            &serde_json::json!({"distributor": distributor}),
        )
        .await?;
    ensure!(r.status == 200, "connecting {store}: {}", r.body);
    Ok(())
}

/// The iteration count: `--iterations N` (or `-n N`), else `ITERATIONS`,
/// else `default`.
pub fn iterations(name: &str, default: usize) -> anyhow::Result<usize> {
    let usage =
        || format!("usage: {name} [--iterations N]   (or env ITERATIONS=N; default {default})");
    let mut n: Option<usize> = None;
    if let Ok(v) = std::env::var("ITERATIONS")
        && !v.is_empty()
    {
        n = Some(
            v.parse()
                .with_context(|| format!("ITERATIONS={v} is not a number"))?,
        );
    }
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = if arg == "--iterations" || arg == "-n" {
            args.next().with_context(usage)?
        } else if let Some(v) = arg.strip_prefix("--iterations=") {
            v.to_owned()
        } else if arg == "--help" || arg == "-h" {
            println!("{}", usage());
            std::process::exit(0);
        } else {
            bail!("unknown argument {arg}\n{}", usage());
        };
        n = Some(
            value
                .parse()
                .with_context(|| format!("--iterations {value} is not a number"))?,
        );
    }
    let n = n.unwrap_or(default);
    ensure!(n >= 1, "at least one iteration");
    Ok(n)
}

/// Percentiles and extremes of one series, in milliseconds.
#[derive(Debug, Clone, Copy)]
pub struct Stats {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub mean: f64,
    pub min: f64,
    pub max: f64,
}

/// Nearest-rank percentiles.
pub fn stats(samples: &[Duration]) -> Stats {
    let mut ms: Vec<f64> = samples.iter().map(|d| d.as_secs_f64() * 1e3).collect();
    ms.sort_by(f64::total_cmp);
    let pct = |p: f64| {
        let rank = ((p / 100.0) * ms.len() as f64).ceil() as usize;
        ms[rank.clamp(1, ms.len()) - 1]
    };
    Stats {
        p50: pct(50.0),
        p90: pct(90.0),
        p99: pct(99.0),
        mean: ms.iter().sum::<f64>() / ms.len() as f64,
        min: ms[0],
        max: ms[ms.len() - 1],
    }
}

/// The table's header line, matching [`row`].
pub fn header() -> String {
    format!(
        "  {:<22} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8}",
        "ms", "p50", "p90", "p99", "mean", "min", "max"
    )
}

pub fn row(name: &str, s: &Stats) -> String {
    format!(
        "  {name:<22} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>8.2}",
        s.p50, s.p90, s.p99, s.mean, s.min, s.max
    )
}

/// Rounded to two places, for the JSON summary.
pub fn r2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let samples: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        let s = stats(&samples);
        assert_eq!((s.p50, s.p90, s.p99), (50.0, 90.0, 99.0));
        assert_eq!((s.min, s.max), (1.0, 100.0));
        assert!((s.mean - 50.5).abs() < 1e-9);
    }
}
