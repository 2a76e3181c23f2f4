//! Rule evaluation per distributor, with the 4-tier clothing rule set and
//! two years of monthly buckets. The baseline, measured in the same run, is
//! one threshold condition: report the ratio, not the absolute time, since
//! the machines running this are shared.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use tier_domain::calendar::Day;
use tier_domain::ids::{EventId, TierId};
use tier_domain::metrics::{Metric, Metrics, Window};
use tier_domain::money::Money;
use tier_domain::rules::{Condition, RuleSet};
use tier_domain::tier::{self, Cause, Standing, Trigger};

const RULES: &str = r#"{
  "tiers": [
    {"id": "junior", "name": "Junior", "rank": 0},
    {"id": "intermediate", "name": "Intermediate", "rank": 1, "benefits": {"discount_pct": "5"},
     "upgrade": {"metric": "sales_amount", "window": "month", "gte": "50000"}},
    {"id": "senior", "name": "Senior", "rank": 2, "benefits": {"discount_pct": "10"},
     "upgrade": {"any": [{"metric": "sales_amount", "window": "month", "gte": "100000"},
                         {"metric": "sales_amount", "window": "quarter", "gte": "250000"}]}},
    {"id": "gold", "name": "Gold", "rank": 3, "benefits": {"discount_pct": "15"},
     "upgrade": {"all": [{"metric": "sales_amount", "window": "month", "gte": "300000"},
                         {"metric": "valid_downline_users", "gte": "20"}]}}
  ],
  "step_ups": [{"id": "five-valid-downline-users", "when": {"metric": "valid_downline_users", "gte": "5"}}]
}"#;

fn metrics(now: Day) -> Metrics {
    let mut m = Metrics::default();
    // Two years of sales, a day's worth every third day.
    for i in (0..730).step_by(3) {
        let day = now.minus_days(i);
        m.sales
            .add(day, Money::cents(300_000 + i64::from(i) * 1_000));
        m.orders.add(day, 4);
    }
    m.valid_downline_users = 7;
    m.downline_users = 12;
    m
}

fn bench(c: &mut Criterion) {
    let rules = RuleSet::from_json(RULES).unwrap();
    let now = Day::parse("2026-11-27").unwrap();
    let m = metrics(now);
    let single = Condition::Threshold {
        metric: Metric::SalesAmount,
        window: Window::Month,
        gte: 50_000.into(),
        skus: Vec::new(),
    };
    let current = TierId::parse("intermediate").unwrap();
    let at = "2026-11-27T00:00:00Z".parse().unwrap();
    let cause = Cause::OrderEvent {
        event_id: EventId::parse("e").unwrap(),
    };

    let mut g = c.benchmark_group("rule_evaluation");
    g.bench_function("baseline: one threshold", |b| {
        b.iter(|| single.eval(black_box(&m), black_box(now), &mut Vec::with_capacity(1)))
    });
    g.bench_function("qualify: 4 tiers + step-up", |b| {
        b.iter(|| rules.qualify(black_box(&m), black_box(now)))
    });
    // The same tiers over the last 30 days: a range of daily buckets per threshold.
    let rolling = RuleSet::from_json(
        &RULES.replace(r#""window": "month""#, r#""window": {"rolling_days": 30}"#),
    )
    .unwrap();
    assert!(!rolling.daily_spans().is_empty());
    g.bench_function("qualify: 4 tiers + step-up, 30-day rolling", |b| {
        b.iter(|| rolling.qualify(black_box(&m), black_box(now)))
    });
    g.bench_function("decide: qualify + change record", |b| {
        b.iter(|| {
            let standing = Standing {
                tier: Some(black_box(&current)),
                since: None,
                locked: false,
            };
            tier::decide(
                &rules,
                1,
                standing,
                black_box(&m),
                at,
                now,
                Trigger::Event,
                cause.clone(),
            )
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
