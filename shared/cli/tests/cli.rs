//! The real `tiers` binary against a local stack (moto, every function
//! behind one port), as an operator runs it: exit codes, tables, `--json`,
//! and the charts it writes.

use std::path::{Path, PathBuf};

use chrono::Utc;
use local_stack::demo;
use serde_json::{Value, json};
use system_tests::{ApiClient, IDLE, LocalStack, docs, spawn_stack};

#[derive(Debug)]
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    /// Exits `code`, or fails the test showing both streams.
    fn exits(self, code: i32) -> Self {
        assert_eq!(self.code, code, "exit code; {self:#?}");
        self
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {self:#?}"))
    }
}

/// Runs `tiers` with exactly the configuration `env` gives it: nothing from
/// the machine's own environment or profiles file.
async fn tiers_with(env: &[(&str, &str)], args: &[&str]) -> Run {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_tiers"));
    cmd.args(args)
        .env_remove("TIERS_ENDPOINT")
        .env_remove("TIERS_API_KEY")
        .env_remove("TIERS_PROFILE")
        .env_remove("TIERS_ACTOR")
        .env_remove("XDG_CONFIG_HOME")
        .env("HOME", "/nonexistent-home")
        .env("TIERS_PROFILES", "/nonexistent-home/profiles.toml");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().await.expect("the tiers binary runs");
    Run {
        code: out.status.code().expect("tiers exits, not killed"),
        stdout: String::from_utf8(out.stdout).expect("stdout is UTF-8"),
        stderr: String::from_utf8(out.stderr).expect("stderr is UTF-8"),
    }
}

/// Runs `tiers` against `stack` with its admin key.
async fn tiers(stack: &LocalStack, args: &[&str]) -> Run {
    tiers_with(
        &[
            ("TIERS_ENDPOINT", &stack.base_url),
            ("TIERS_API_KEY", &stack.admin_key),
            ("TIERS_ACTOR", "ops@brand"),
        ],
        args,
    )
    .await
}

/// A scratch directory of the test's own.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tiers-cli-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

/// The clothing rule set with Senior's threshold replaced.
fn rules_with_senior_at(gte: &str) -> String {
    let mut rules = demo::clothing_rule_set();
    rules["tiers"][2]["upgrade"]["gte"] = json!(gte);
    rules.to_string()
}

async fn admin_distributor(api: &ApiClient, id: &str) -> Value {
    let r = api.get(&format!("distributors/{id}")).await.unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    r.body["distributor"].clone()
}

async fn assert_svg(path: &Path, labels: &[&str]) {
    let svg = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(
        svg.starts_with("<svg"),
        "not SVG: {}",
        &svg[..svg.len().min(80)]
    );
    assert!(svg.trim_end().ends_with("</svg>"));
    for l in labels {
        assert!(svg.contains(l), "{l:?} not in the chart");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn offline_validation_usage_and_unreachable_endpoints() {
    let dir = scratch("offline");
    // Parses, but breaks six rules: each is listed, with its field.
    let bad = write(
        &dir,
        "bad.json",
        r#"{"tiers": [
          {"id": "junior", "name": "Junior", "rank": 0, "benefits": {"discount_pct": "0"}},
          {"id": "junior", "name": "Again", "rank": 0, "benefits": {"discount_pct": "10"},
           "upgrade": {"metric": "sales_amount", "window": "month", "gte": "5"}},
          {"id": "gold", "name": "", "rank": 5, "benefits": {}}]}"#,
    );
    let r = tiers_with(&[], &["rule-set", "validate", &bad])
        .await
        .exits(4);
    for expected in [
        "tiers[1].id",
        "tier id \"junior\" is used twice",
        "tiers[1].rank",
        "tiers[2].name",
        "ranks must be 0, 1, 2",
    ] {
        assert!(r.stderr.contains(expected), "{expected:?} missing: {r:#?}");
    }
    let r = tiers_with(&[], &["--json", "rule-set", "validate", &bad])
        .await
        .exits(4);
    let j = r.json();
    assert_eq!(j["valid"], false);
    assert!(j["problems"].as_array().unwrap().len() >= 5, "{j}");

    // Not JSON at all: the parser's one error, still exit 4.
    let broken = write(&dir, "broken.json", r#"{"tiers": [{"id": 1}]}"#);
    let r = tiers_with(&[], &["rule-set", "validate", &broken])
        .await
        .exits(4);
    assert!(r.stderr.contains("tiers[0].id"), "{r:#?}");

    let good = write(&dir, "good.json", &demo::clothing_rule_set().to_string());
    let r = tiers_with(&[], &["rule-set", "validate", &good])
        .await
        .exits(0);
    assert!(
        r.stdout
            .contains("valid, 4 tier(s): junior, intermediate, senior, gold"),
        "{r:#?}"
    );
    // Publishing a bad file, or starting a what-if of one, sends nothing:
    // no endpoint is needed to refuse it.
    tiers_with(&[], &["rule-set", "publish", &bad])
        .await
        .exits(4);
    tiers_with(&[], &["what-if", "start", &bad]).await.exits(4);

    // Usage: clap's own, a missing file, no endpoint configured.
    tiers_with(&[], &["distributors", "frobnicate"])
        .await
        .exits(2);
    tiers_with(&[], &["api-keys", "create", "--name", "x"])
        .await
        .exits(2);
    let r = tiers_with(&[], &["rule-set", "validate", "/nonexistent.json"])
        .await
        .exits(2);
    assert!(r.stderr.contains("cannot read /nonexistent.json"), "{r:#?}");
    let r = tiers_with(&[], &["distributors", "list"]).await.exits(2);
    assert!(r.stderr.contains("no endpoint"), "{r:#?}");

    // Nothing listens on port 9.
    let closed = [
        ("TIERS_ENDPOINT", "http://127.0.0.1:9"),
        ("TIERS_API_KEY", "local-admin-key-0123456789abcdef0123"),
    ];
    let r = tiers_with(&closed, &["distributors", "list"])
        .await
        .exits(3);
    assert!(
        r.stderr.contains("cannot reach http://127.0.0.1:9"),
        "{r:#?}"
    );
    assert!(r.stdout.is_empty(), "{r:#?}");

    // A profile supplies endpoint and key; a profile that is not there is
    // a usage error naming those that are.
    let profiles = write(
        &dir,
        "profiles.toml",
        "[closed]\nendpoint = \"http://127.0.0.1:9\"\nkey = \"k\"\n",
    );
    let with_file = [("TIERS_PROFILES", profiles.as_str())];
    let r = tiers_with(&with_file, &["--profile", "closed", "api-keys", "list"])
        .await
        .exits(3);
    assert!(r.stderr.contains("127.0.0.1:9"), "{r:#?}");
    let r = tiers_with(&with_file, &["--profile", "prod", "api-keys", "list"])
        .await
        .exits(2);
    assert!(r.stderr.contains("no profile \"prod\""), "{r:#?}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn an_operator_runs_the_brand_from_the_command_line() {
    let (stack, api) = spawn_stack().await;
    let dir = scratch("operator");

    // Rules, published and read back.
    let rules = write(&dir, "rules.json", &demo::clothing_rule_set().to_string());
    let r = tiers(&stack, &["rule-set", "publish", &rules])
        .await
        .exits(0);
    assert!(
        r.stdout.contains("published rule set version 1 (4 tiers)"),
        "{r:#?}"
    );
    let r = tiers(&stack, &["rule-set", "show"]).await.exits(0);
    assert!(r.stdout.contains("金牌 Gold"), "{r:#?}");
    assert!(r.stdout.contains("sales_amount(month) >= 100000"), "{r:#?}");
    let j = tiers(&stack, &["--json", "rule-set", "show"])
        .await
        .exits(0)
        .json();
    assert_eq!(j["version"], 1);
    assert_eq!(j["rule_set"]["tiers"][3]["id"], "gold");
    tiers(&stack, &["rule-set", "show", "--version", "7"])
        .await
        .exits(2);

    // A draft against what is published: the one threshold that moved.
    let draft = write(&dir, "draft.json", &rules_with_senior_at("60000"));
    let r = tiers(&stack, &["rule-set", "diff", "current", &draft])
        .await
        .exits(0);
    assert!(
        r.stdout.contains(
            "~ tiers.senior.upgrade: sales_amount(month) >= 100000 -> sales_amount(month) >= 60000"
        ),
        "{r:#?}"
    );
    let j = tiers(&stack, &["--json", "rule-set", "diff", &rules, &draft])
        .await
        .exits(0)
        .json();
    assert_eq!(j["changes"].as_array().unwrap().len(), 1, "{j}");

    // Distributors, registered through the API.
    for d in demo::DISTRIBUTORS {
        let r = api
            .put(
                &format!("distributors/{}", d.id),
                &json!({"name": d.name, "upline": d.upline, "region": d.region}),
            )
            .await
            .unwrap();
        assert_eq!(r.status, 201, "{}", r.body);
        let (platform, store) = d.store;
        let r = api
            .put(
                &format!("stores/{platform}/{store}"),
                &json!({"distributor": d.id}),
            )
            .await
            .unwrap();
        assert_eq!(r.status, 200, "{}", r.body);
    }

    // A price book with bad rows is refused whole, each row named.
    let bad_book = write(
        &dir,
        "bad-book.csv",
        "type,sku,tier,distributor,min_qty,price,discount_pct\n\
         base,TEE-WHITE,,,,199.00,\n\
         tier_price,TEE-WHITE,platinum,,,150.00,\n\
         base,CAP-RED,,,,-3.00,\n",
    );
    let r = tiers(&stack, &["price-book", "import", &bad_book])
        .await
        .exits(1);
    assert!(r.stderr.contains("invalid_price_book"), "{r:#?}");
    assert!(r.stderr.contains("bad line(s)"), "{r:#?}");
    assert!(r.stderr.contains("platinum"), "{r:#?}");
    let j = tiers(&stack, &["--json", "price-book", "import", &bad_book])
        .await
        .exits(1)
        .json();
    assert_eq!(j["code"], "invalid_price_book");
    let lines: Vec<u64> = j["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["line"].as_u64().unwrap())
        .collect();
    assert!(lines.contains(&3) && lines.contains(&4), "{j}");

    let book = write(&dir, "book.csv", demo::PRICE_BOOK_CSV);
    let r = tiers(&stack, &["price-book", "import", &book])
        .await
        .exits(0);
    assert!(
        r.stdout
            .contains("published price book version 1: 3 SKU(s)"),
        "{r:#?}"
    );

    // Stock: a line the file itself gets wrong stops everything (exit 4);
    // a SKU the book lacks is refused by the API, the others are set.
    let typo = write(&dir, "typo.csv", "sku,available\nTEE-WHITE,lots\n");
    let r = tiers(&stack, &["stock", "import", &typo]).await.exits(4);
    assert!(r.stderr.contains("line 2"), "{r:#?}");
    let stock = write(
        &dir,
        "stock.csv",
        "sku,available\nTEE-WHITE,5000\nNO-SUCH-SKU,3\nJACKET-DOWN,40\n",
    );
    let r = tiers(&stack, &["stock", "import", &stock]).await.exits(1);
    assert!(r.stderr.contains("1 of 3 row(s) refused, 2 set"), "{r:#?}");
    assert!(
        r.stderr.contains("NO-SUCH-SKU") && r.stderr.contains("unknown_sku"),
        "{r:#?}"
    );
    assert_eq!(system_tests::stock(&api, "TEE-WHITE").await, 5000);
    assert_eq!(system_tests::stock(&api, "JACKET-DOWN").await, 40);

    // The ERP's files go to the sync endpoint, checked whole there.
    let snapshot = write(&dir, "snapshot.csv", "sku,on_hand\nTEE-WHITE,4990\n");
    let r = tiers(&stack, &["stock", "import", &snapshot])
        .await
        .exits(0);
    assert!(r.stdout.contains("synced 1 SKU(s): 1 changed"), "{r:#?}");
    let deltas = write(
        &dir,
        "deltas.csv",
        "sku,delta\nTEE-WHITE,10\nNO-SUCH-SKU,3\n",
    );
    tiers(&stack, &["stock", "import", &deltas]).await.exits(2);
    let r = tiers(&stack, &["stock", "import", &deltas, "--sync-id", "erp-1"])
        .await
        .exits(1);
    assert!(
        r.stderr.contains("invalid_stock_sync") && r.stderr.contains("line 3"),
        "{r:#?}"
    );
    assert_eq!(system_tests::stock(&api, "TEE-WHITE").await, 4990);
    let deltas = write(&dir, "deltas.csv", "sku,delta\nTEE-WHITE,10\n");
    for _ in 0..2 {
        tiers(&stack, &["stock", "import", &deltas, "--sync-id", "erp-1"])
            .await
            .exits(0);
    }
    assert_eq!(system_tests::stock(&api, "TEE-WHITE").await, 5000);

    // 38 × 1299 = 49,362: just under Intermediate's 50,000.
    let r = api
        .webhook(
            "jd",
            "sh-outlet",
            &docs::paid(
                "cli-e1",
                "CLI-1",
                "b1",
                &[("JACKET-DOWN", 38, "1299.00")],
                Utc::now(),
            ),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 202, "{}", r.body);
    stack.wait_idle(IDLE).await.unwrap();

    // The list, followed page by page.
    let r = tiers(&stack, &["distributors", "list"]).await.exits(0);
    for id in [
        "d-hangzhou",
        "d-shanghai",
        "d-suzhou",
        "3 distributor(s)",
        "49362.00",
    ] {
        assert!(r.stdout.contains(id), "{id} missing: {r:#?}");
    }
    let j = tiers(
        &stack,
        &["--json", "distributors", "list", "--page-size", "1"],
    )
    .await
    .exits(0)
    .json();
    let ids: Vec<&str> = j["distributors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 3, "every page followed: {j}");
    let j = tiers(
        &stack,
        &[
            "--json",
            "distributors",
            "list",
            "--limit",
            "2",
            "--page-size",
            "1",
        ],
    )
    .await
    .exits(0)
    .json();
    assert_eq!(j["distributors"].as_array().unwrap().len(), 2);

    // One distributor: its tier, progress as bars, its history.
    let r = tiers(&stack, &["distributors", "show", "d-shanghai"])
        .await
        .exits(0);
    for expected in [
        "tier: junior",
        "next tier: intermediate",
        "98.7%",
        "sales_amount(month)",
        "49362 / 50000",
        "█",
        "assignment",
    ] {
        assert!(r.stdout.contains(expected), "{expected:?} missing: {r:#?}");
    }
    let j = tiers(&stack, &["--json", "distributors", "show", "d-shanghai"])
        .await
        .exits(0)
        .json();
    assert_eq!(j["distributor"]["id"], "d-shanghai");
    assert_eq!(j["progress"]["next_tier"], "intermediate");

    let r = tiers(&stack, &["distributors", "about-to-move", "--within", "5"])
        .await
        .exits(0);
    assert!(
        r.stdout.contains("d-shanghai") && r.stdout.contains("up"),
        "{r:#?}"
    );
    assert!(!r.stdout.contains("d-suzhou"), "{r:#?}");

    // Override with a lock, unlock, lock again in the same tier.
    let r = tiers(
        &stack,
        &[
            "distributors",
            "override",
            "d-suzhou",
            "senior",
            "--reason",
            "key account",
            "--lock",
        ],
    )
    .await
    .exits(0);
    assert!(r.stdout.contains("d-suzhou is senior, locked"), "{r:#?}");
    let d = admin_distributor(&api, "d-suzhou").await;
    assert_eq!(
        (d["tier"].as_str(), d["tier_locked"].as_bool()),
        (Some("senior"), Some(true))
    );
    tiers(&stack, &["distributors", "unlock", "d-suzhou"])
        .await
        .exits(0);
    assert_eq!(
        admin_distributor(&api, "d-suzhou").await["tier_locked"],
        false
    );
    // Spread a hot seller, then back to one item; a bad count is the
    // API's refusal.
    let r = tiers(&stack, &["distributors", "spread", "d-suzhou", "8"]).await;
    assert!(
        r.stdout
            .contains("d-suzhou's orders are spread over 8 shards"),
        "{r:#?}"
    );
    assert_eq!(
        admin_distributor(&api, "d-suzhou").await["metric_shards"]["shards"],
        8
    );
    let r = tiers(&stack, &["distributors", "spread", "d-suzhou", "0"]).await;
    assert!(
        r.stdout.contains("the 8 shards keep what they hold"),
        "{r:#?}"
    );
    let r = tiers(&stack, &["distributors", "spread", "d-suzhou", "65"]).await;
    assert_ne!(r.code, 0, "{r:#?}");
    assert!(r.stderr.contains("invalid_shards"), "{r:#?}");
    let r = tiers(&stack, &["distributors", "lock", "d-suzhou"])
        .await
        .exits(0);
    assert!(r.stdout.contains("d-suzhou is locked in senior"), "{r:#?}");
    let d = admin_distributor(&api, "d-suzhou").await;
    assert_eq!(
        (d["tier"].as_str(), d["tier_locked"].as_bool()),
        (Some("senior"), Some(true))
    );
    let r = tiers(&stack, &["distributors", "show", "d-suzhou"])
        .await
        .exits(0);
    assert!(r.stdout.contains("(locked)"), "{r:#?}");
    assert!(
        r.stdout.contains("actor=ops@brand") && r.stdout.contains("key account"),
        "{r:#?}"
    );

    // The API's refusals: exit 1 with its code.
    let r = tiers(
        &stack,
        &[
            "distributors",
            "override",
            "d-suzhou",
            "platinum",
            "--reason",
            "typo",
        ],
    )
    .await
    .exits(1);
    assert!(r.stderr.contains("422 unknown_tier"), "{r:#?}");
    let r = tiers(&stack, &["--json", "distributors", "show", "nobody"])
        .await
        .exits(1);
    assert_eq!(r.json()["code"], "distributor_not_found");
    let r = tiers_with(
        &[
            ("TIERS_ENDPOINT", &stack.base_url),
            ("TIERS_API_KEY", "not-the-admin-key"),
        ],
        &["api-keys", "list"],
    )
    .await
    .exits(1);
    assert!(r.stderr.contains("401 invalid_admin_key"), "{r:#?}");

    // API keys: created (shown once), listed, revoked.
    let j = tiers(
        &stack,
        &["--json", "api-keys", "create", "--name", "erp-cli", "--erp"],
    )
    .await
    .exits(0)
    .json();
    assert!(j["key"].as_str().unwrap().starts_with("tk_"), "{j}");
    let key_id = j["id"].as_str().unwrap().to_owned();
    let r = tiers(
        &stack,
        &[
            "api-keys",
            "create",
            "--name",
            "shanghai",
            "--distributor",
            "d-shanghai",
        ],
    )
    .await
    .exits(0);
    assert!(
        r.stdout.contains("distributor d-shanghai") && r.stdout.contains("tk_"),
        "{r:#?}"
    );
    let r = tiers(&stack, &["api-keys", "list"]).await.exits(0);
    assert!(
        r.stdout.contains(&key_id) && r.stdout.contains("2 key(s)"),
        "{r:#?}"
    );
    tiers(&stack, &["api-keys", "revoke", &key_id])
        .await
        .exits(0);
    let j = tiers(&stack, &["--json", "api-keys", "list"])
        .await
        .exits(0)
        .json();
    let revoked = j["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["id"] == key_id.as_str())
        .unwrap();
    assert!(revoked["revoked_at"].is_string(), "{j}");
    let r = tiers(&stack, &["api-keys", "revoke", "0123456789abcdef"])
        .await
        .exits(1);
    assert!(r.stderr.contains("api_key_not_found"), "{r:#?}");

    // The tier distribution, as a table and a chart.
    let chart = dir.join("distribution.svg");
    let r = tiers(
        &stack,
        &["distribution", "--chart", chart.to_str().unwrap()],
    )
    .await
    .exits(0);
    assert!(r.stdout.contains("3 distributor(s)"), "{r:#?}");
    let j = tiers(&stack, &["--json", "distribution"])
        .await
        .exits(0)
        .json();
    let members = |tier: &str| {
        j["tiers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["tier"] == tier)
            .map(|t| t["members"].as_u64().unwrap())
    };
    assert_eq!(
        (members("junior"), members("senior"), members("gold")),
        (Some(2), Some(1), Some(0))
    );
    assert_svg(
        &chart,
        &["Distributors per tier", "初级 Junior", "高级 Senior"],
    )
    .await;

    // Nothing parked.
    let r = tiers(&stack, &["dead-letters", "list"]).await.exits(0);
    assert!(r.stdout.contains("no dead letters"), "{r:#?}");
    let r = tiers(
        &stack,
        &["dead-letters", "redrive", "--queue", "tier-events"],
    )
    .await
    .exits(0);
    assert!(r.stdout.contains("moved 0"), "{r:#?}");

    stack.stop().await;
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_review_and_a_what_if_are_followed_until_done() {
    let (stack, mut api) = spawn_stack().await;
    demo::load(&mut api).await.expect("the demo brand loads");
    let dir = scratch("runs");
    let r = api
        .webhook(
            "jd",
            "sh-outlet",
            &docs::paid(
                "cli-r1",
                "CLI-R1",
                "b1",
                &[("JACKET-DOWN", 30, "1299.00")],
                Utc::now(),
            ),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 202, "{}", r.body);
    stack.wait_idle(IDLE).await.unwrap();

    // The month's review, started and watched to the end.
    let j = tiers(&stack, &["--json", "reviews", "start", "--kind", "monthly"])
        .await
        .exits(0)
        .json();
    let period = j["review"]["period"].as_str().unwrap().to_owned();
    let r = tiers(
        &stack,
        &[
            "reviews",
            "watch",
            &period,
            "--interval",
            "0.2",
            "--max-wait",
            "120",
        ],
    )
    .await
    .exits(0);
    assert!(r.stdout.contains(&format!("review of {period}")), "{r:#?}");
    assert!(
        r.stdout.contains(": done;") && r.stdout.contains("3 evaluated"),
        "{r:#?}"
    );
    let r = tiers(
        &stack,
        &["reviews", "start", "--watch", "--interval", "0.2"],
    )
    .await
    .exits(0);
    assert!(r.stdout.contains(": done;"), "{r:#?}");
    let r = tiers(&stack, &["reviews", "watch", "2001-01"])
        .await
        .exits(1);
    assert!(r.stderr.contains("review_not_found"), "{r:#?}");
    let r = tiers(&stack, &["reviews", "start", "--period", "2001-01"])
        .await
        .exits(1);
    assert!(r.stderr.contains("period_over"), "{r:#?}");

    // Halved thresholds: 38,970 CNY this month makes d-shanghai Intermediate.
    let mut draft = demo::clothing_rule_set();
    draft["tiers"][1]["upgrade"]["gte"] = json!("25000");
    draft["tiers"][2]["upgrade"]["gte"] = json!("50000");
    let draft = write(&dir, "half.json", &draft.to_string());
    let r = tiers(&stack, &["what-if", "start", &draft, "--id", "wi-half"])
        .await
        .exits(0);
    assert!(r.stdout.contains("what-if wi-half"), "{r:#?}");
    let chart = dir.join("moves.svg");
    let r = tiers(
        &stack,
        &[
            "what-if",
            "show",
            "wi-half",
            "--chart",
            chart.to_str().unwrap(),
            "--interval",
            "0.2",
            "--max-wait",
            "120",
        ],
    )
    .await
    .exits(0);
    assert!(r.stdout.contains("(complete"), "{r:#?}");
    assert!(r.stdout.contains("d-shanghai"), "{r:#?}");
    assert_svg(&chart, &["wi-half", "junior → intermediate"]).await;
    let j = tiers(
        &stack,
        &["--json", "what-if", "show", "wi-half", "--no-wait"],
    )
    .await
    .exits(0)
    .json();
    assert_eq!(j["status"], "complete");
    assert_eq!(j["moves"][0]["from"], "junior");
    assert_eq!(j["moves"][0]["to"], "intermediate");
    let r = tiers(&stack, &["what-if", "show", "wi-nothing", "--no-wait"])
        .await
        .exits(1);
    assert!(r.stderr.contains("what_if_not_found"), "{r:#?}");

    // A Shopify store's SKU mapping: bad rows refused whole, each by line.
    let r = api
        .put(
            "platform-apps/shopify/brand-app",
            &json!({"secret": "shpss_0123456789abcdef0123456789ab"}),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    let r = api
        .put(
            "stores/shopify/cli.myshopify.com",
            &json!({"distributor": "d-shanghai", "app": "brand-app"}),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    let bad_mapping = write(
        &dir,
        "bad-mapping.csv",
        "platform_sku,sku\nTEE-W-M,TEE-WHITE\nCAP-1,NO-SUCH-SKU\n",
    );
    let r = tiers(
        &stack,
        &[
            "sku-mapping",
            "import",
            "shopify",
            "cli.myshopify.com",
            &bad_mapping,
        ],
    )
    .await
    .exits(1);
    assert!(r.stderr.contains("invalid_sku_mapping"), "{r:#?}");
    assert!(
        r.stderr.contains("1 bad line(s)") && r.stderr.contains("NO-SUCH-SKU"),
        "{r:#?}"
    );
    let mapping = write(
        &dir,
        "mapping.csv",
        "platform_sku,sku\nTEE-W-M,TEE-WHITE\n808950810,JACKET-DOWN\n",
    );
    let r = tiers(
        &stack,
        &[
            "sku-mapping",
            "import",
            "shopify",
            "cli.myshopify.com",
            &mapping,
        ],
    )
    .await
    .exits(0);
    assert!(r.stdout.contains("2 entries"), "{r:#?}");
    let r = tiers(
        &stack,
        &["sku-mapping", "import", "shopify", "no-such-shop", &mapping],
    )
    .await
    .exits(1);
    assert!(r.stderr.contains("404 store_not_found"), "{r:#?}");

    // A message no consumer can read is parked; listed by its code, redriven.
    stack
        .clients
        .sqs
        .send_message()
        .queue_url(stack.queue_url("TierEventsQueue"))
        .message_body("not a message")
        .send()
        .await
        .unwrap();
    stack.wait_idle(IDLE).await.unwrap();
    let r = tiers(&stack, &["dead-letters", "list"]).await.exits(0);
    assert!(r.stdout.contains("malformed_message"), "{r:#?}");
    assert!(r.stdout.contains("1 dead letter(s) seen"), "{r:#?}");
    let j = tiers(
        &stack,
        &["--json", "dead-letters", "list", "--queue", "tier-events"],
    )
    .await
    .exits(0)
    .json();
    assert_eq!(j["dead_letters"][0]["queue"], "tier-events", "{j}");
    assert_eq!(
        j["dead_letters"][0]["failure_code"], "malformed_message",
        "{j}"
    );
    let j = tiers(
        &stack,
        &["--json", "dead-letters", "list", "--code", "corrupt_item"],
    )
    .await
    .exits(0)
    .json();
    assert_eq!(j["dead_letters"], json!([]), "{j}");
    let r = tiers(
        &stack,
        &[
            "dead-letters",
            "redrive",
            "--queue",
            "tier-events",
            "--code",
            "malformed_message",
        ],
    )
    .await
    .exits(0);
    assert!(r.stdout.contains("moved 1"), "{r:#?}");

    stack.stop().await;
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn analytics_are_shown_as_tables_json_and_charts() {
    let (stack, mut api) = spawn_stack().await;
    demo::load(&mut api).await.expect("the demo brand loads");
    let dir = scratch("analytics");
    let now = Utc::now();
    let mut zj = docs::paid("a1", "A1", "b1", &[("TEE-WHITE", 2, "199.00")], now);
    zj["region"] = json!("CN-ZJ");
    // 99.00 against the T-shirt's 129.00 floor.
    let low = docs::paid("a2", "A2", "b2", &[("TEE-WHITE", 1, "99.00")], now);
    for doc in [zj, low] {
        let r = api.webhook("jd", "sh-outlet", &doc).await.unwrap();
        assert_eq!(r.status, 202, "{}", r.body);
    }
    stack.wait_idle(IDLE).await.unwrap();

    let r = tiers(&stack, &["analytics", "regions"]).await.exits(0);
    assert!(
        r.stdout.contains("CN-ZJ") && r.stdout.contains("398.00"),
        "{r:#?}"
    );
    assert!(r.stdout.contains("under way"), "{r:#?}");
    let chart = dir.join("zj.svg");
    let j = tiers(
        &stack,
        &[
            "--json",
            "analytics",
            "regions",
            "--region",
            "CN-ZJ",
            "--months",
            "3",
            "--chart",
            chart.to_str().unwrap(),
        ],
    )
    .await
    .exits(0)
    .json();
    assert_eq!(j["series"].as_array().unwrap().len(), 3, "{j}");
    assert_eq!(j["series"][2]["sales"], "398.00");
    assert_svg(&chart, &["Sales in CN-ZJ by month"]).await;

    let r = tiers(&stack, &["analytics", "price-disorder"])
        .await
        .exits(0);
    assert!(
        r.stdout.contains("1 line(s) below the floor in 1 order(s)")
            && r.stdout.contains("jd/sh-outlet/A2")
            && r.stdout.contains("23.26%"),
        "{r:#?}"
    );

    let chart = dir.join("tiers.svg");
    let r = tiers(
        &stack,
        &["analytics", "tiers", "--chart", chart.to_str().unwrap()],
    )
    .await
    .exits(0);
    assert!(r.stdout.contains("junior"), "{r:#?}");
    assert_svg(&chart, &["Members per tier", "junior"]).await;

    // Lists by region and by upline, through their indexes.
    let r = tiers(&stack, &["distributors", "list", "--region", "Jiangsu"])
        .await
        .exits(0);
    assert!(
        r.stdout.contains("d-suzhou") && !r.stdout.contains("d-shanghai"),
        "{r:#?}"
    );
    let j = tiers(
        &stack,
        &["--json", "distributors", "list", "--upline", "d-hangzhou"],
    )
    .await
    .exits(0)
    .json();
    assert_eq!(j["distributors"].as_array().unwrap().len(), 2, "{j}");
    // The whole brand by this month's sales, most first.
    let j = tiers(
        &stack,
        &["--json", "distributors", "list", "--sort", "sales_month"],
    )
    .await
    .exits(0)
    .json();
    let sales: Vec<rust_decimal::Decimal> = j["distributors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["sales_month"].as_str().unwrap().parse().unwrap())
        .collect();
    assert_eq!(sales.len(), 3, "{j}");
    assert!(sales.windows(2).all(|w| w[0] >= w[1]), "{j}");
    assert!(sales[0] > rust_decimal::Decimal::ZERO, "{j}");
    tiers(
        &stack,
        &[
            "distributors",
            "list",
            "--sort",
            "sales_month",
            "--tier",
            "junior",
        ],
    )
    .await
    .exits(2);

    // A refusal names the parameter and exits 1.
    let r = tiers(&stack, &["analytics", "tiers", "--period", "2026-13"])
        .await
        .exits(1);
    assert!(r.stderr.contains("invalid_period"), "{r:#?}");
    stack.stop().await;
}
