//! Races, forced. Each test lets one writer read, then runs a competitor to
//! its end before that writer's conditional write is sent (see
//! `local_stack::interleave`): the writer's condition must fail, and its
//! retry must come out right.
//!
//! The conditional writes, and the race that proves each:
//!
//! | guard | race |
//! |---|---|
//! | metrics `mversion` | two groups of one distributor |
//! | a spread seller's shards (none: the change is looked at again) | a change racing an order on a shard |
//! | ledger entry `version` | a refund racing its order's payment |
//! | downline user `live_orders` / not exists | a registration racing the first order, both ways |
//! | commission balance (withdrawal) | two withdrawals of one balance |
//! | stock part `>= :q` (pool, a tier's reserve, a bucket's pool) | two allocations of the last unit; two of one tier's last reserved unit; two of a spread SKU's last unit across buckets |
//! | rule-set pointer `version` | two publications |
//! | price-book version claim | two price-book publications |
//! | profile `tier_version` | an evaluation against a manual override, both ways |
//! | store owner | two distributors claiming one store |
//! | review run not exists | two starts of one review |
//! | what-if run not exists or expired | two starts of one what-if, same and other draft |
//! | what-if tally shard `version` | two pages on one shard |
//! | API key `revoked_at` if not exists | two revocations |
//! | webhook receipt (none: consumers de-duplicate) | one webhook delivered twice at once |

use chrono::Utc;
use local_stack::interleave::{self, Interleave, Write};
use local_stack::moto::Moto;
use serde_json::json;
use system_tests::*;
use tier_domain::OrderRef;
use tier_domain::ids::{DistributorId, EventId, LineId, OrderId, Platform, Sku, StoreId};
use tier_domain::money::Money;
use tier_domain::order::OrderLine;
use tier_store::Table;
use tier_store::catalog::Allocation;
use tier_store::commission::WithdrawOutcome;

/// A table whose next chosen write lets `interleave`'s competitor go first.
fn gated(stack: &LocalStack, interleave: &Interleave) -> Table {
    Table::new(
        interleave::clients(Moto::shared(), interleave),
        stack.table_name(),
    )
}

/// The competitor's own table: its own clients, on its own runtime.
fn direct(table_name: &str) -> Table {
    Table::new(
        tier_runtime::AwsClients::local(Moto::shared()).dynamodb,
        table_name,
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn two_withdrawals_of_one_balance_pay_it_once() {
    let (stack, api) = clothing_stack().await;
    let mut rules = local_stack::demo::clothing_rule_set();
    rules["tiers"][0]["permissions"] = json!(["request_withdrawals"]);
    rules["commission"] = json!({"settlement_days": 0, "min_withdrawal": "1.00"});
    assert_eq!(api.put("rule-set", &rules).await.unwrap().status, 201);
    // 5 % of 1,990.00 for d-hangzhou: 99.50, withdrawable at once.
    let now = Utc::now();
    let paid = docs::paid("w1", "W1", "b1", &[("TEE-WHITE", 10, "199.00")], now);
    assert_eq!(
        api.webhook("jd", "sh-outlet", &paid).await.unwrap().status,
        202
    );
    stack.wait_idle(IDLE).await.unwrap();

    let id = DistributorId::parse("d-hangzhou").unwrap();
    let amount = Money::parse("99.50").unwrap();
    let today = tier_domain::calendar::BrandCalendar::default().day_of(Utc::now());
    let interleave = Interleave::default();
    let name = stack.table_name();
    let (rival_id, at) = (id.clone(), Utc::now());
    let rival = std::sync::Arc::new(std::sync::Mutex::new(None));
    let rival_outcome = rival.clone();
    interleave.before_next(Write::TransactWriteItems, move || async move {
        let outcome = direct(&name)
            .withdraw(&rival_id, "request-b", amount, at, today)
            .await
            .unwrap();
        *rival_outcome.lock().unwrap() = Some(outcome);
    });
    let first = gated(&stack, &interleave)
        .withdraw(&id, "request-a", amount, at, today)
        .await
        .unwrap();
    assert_eq!(interleave.fired(), 1, "the competitor went first");
    assert!(
        matches!(rival.lock().unwrap().take(), Some(WithdrawOutcome::Paid(_))),
        "the competitor, who wrote first, is paid"
    );
    match first {
        WithdrawOutcome::Insufficient { withdrawable } => assert!(withdrawable.is_zero()),
        other => panic!("the balance was paid twice: {other:?}"),
    }
    let metrics = &distributor(&api, "d-hangzhou").await["metrics"];
    assert_eq!(dec(&metrics["withdrawn_commission"]), d("99.50"));
    stack.stop().await;
}

fn order(id: &str) -> OrderRef {
    OrderRef {
        platform: Platform::parse("jd").unwrap(),
        store: StoreId::parse("sh-outlet").unwrap(),
        order_id: OrderId::parse(id).unwrap(),
    }
}

fn one_unit(sku: &str) -> Vec<OrderLine> {
    vec![OrderLine {
        line_id: LineId::parse("1").unwrap(),
        sku: Sku::parse(sku).unwrap(),
        quantity: 1,
        unit_price: Money::parse("1299.00").unwrap(),
        amount: Money::parse("1299.00").unwrap(),
        entitled_unit_price: None,
        floor_unit_price: None,
    }]
}

/// Today in the brand's calendar: the day a payment's demand counts on.
fn today() -> tier_domain::calendar::Day {
    tier_domain::calendar::BrandCalendar::parse(tier_domain::calendar::DEFAULT_TIMEZONE)
        .unwrap()
        .day_of(chrono::Utc::now())
}

fn payer(tier: Option<&tier_domain::ids::TierId>) -> tier_domain::stock::Payer<'_> {
    tier_domain::stock::Payer {
        tier,
        priority: 0,
        paid_at: Utc::now(),
    }
}

/// RACE-A's allocation of one jacket for `tier`, through a gated table:
/// RACE-B's, for the same tier, reads after it and runs to its end before
/// RACE-A's write is sent, and is filled.
async fn race_for_a_jacket(
    stack: &LocalStack,
    tier: Option<tier_domain::ids::TierId>,
) -> (Allocation, Interleave) {
    race_between(stack, tier, "RACE-A", "RACE-B").await
}

/// `loser`'s allocation of one jacket for `tier`, through a gated table:
/// `winner`'s, for the same tier, reads after it and runs to its end before
/// the loser's write is sent, and is filled.
async fn race_between(
    stack: &LocalStack,
    tier: Option<tier_domain::ids::TierId>,
    loser: &str,
    winner: &str,
) -> (Allocation, Interleave) {
    let interleave = Interleave::default();
    let name = stack.table_name();
    let rival_tier = tier.clone();
    let rival = winner.to_owned();
    interleave.before_next(Write::TransactWriteItems, move || async move {
        let outcome = direct(&name)
            .allocate_payment(
                &order(&rival),
                &EventId::parse(&format!("{rival}-paid")).unwrap(),
                payer(rival_tier.as_ref()),
                today(),
                &one_unit("JACKET-DOWN"),
            )
            .await
            .unwrap();
        assert_eq!(
            outcome,
            Allocation::Reserved {
                backordered: vec![]
            }
        );
    });
    let first = gated(stack, &interleave)
        .allocate_payment(
            &order(loser),
            &EventId::parse(&format!("{loser}-paid")).unwrap(),
            payer(tier.as_ref()),
            today(),
            &one_unit("JACKET-DOWN"),
        )
        .await
        .unwrap();
    assert_eq!(interleave.fired(), 1, "the competitor went first");
    (first, interleave)
}

#[tokio::test(flavor = "multi_thread")]
async fn two_allocations_of_the_last_unit_reserve_it_once() {
    let (stack, api) = clothing_stack().await;
    let r = api
        .put("skus/JACKET-DOWN/stock", &json!({"available": 1}))
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    let (first, _) = race_for_a_jacket(&stack, None).await;
    assert_eq!(
        first,
        Allocation::Reserved {
            backordered: vec![Sku::parse("JACKET-DOWN").unwrap()]
        },
        "the unit went to the competitor; this order waits for stock"
    );
    assert_eq!(stock(&api, "JACKET-DOWN").await, 0, "never below zero");
    stack.stop().await;
}

/// The loser's draw took the tier's last reserved unit, which the
/// competitor took first: its condition on the reserve fails, and the
/// redraw fills the line from the pool instead of backordering it.
#[tokio::test(flavor = "multi_thread")]
async fn two_allocations_of_one_tiers_last_reserved_unit_both_fill() {
    let (stack, api) = clothing_stack().await;
    let r = api
        .put("skus/JACKET-DOWN/stock", &json!({"on_hand": 2}))
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    let r = api
        .put(
            "skus/JACKET-DOWN/reserves",
            &json!({"reserves": {"gold": 1}}),
        )
        .await
        .unwrap();
    assert_eq!((r.status, &r.body["pool"]), (200, &json!(1)), "{}", r.body);
    let gold = tier_domain::ids::TierId::parse("gold").unwrap();
    let (first, interleave) = race_for_a_jacket(&stack, Some(gold)).await;
    assert_eq!(
        first,
        Allocation::Reserved {
            backordered: vec![]
        }
    );
    assert_eq!(
        interleave.sent(Write::TransactWriteItems),
        2,
        "the gated writer's refused write and its retry"
    );
    let s = api.get("skus/JACKET-DOWN/stock").await.unwrap().body;
    assert_eq!(
        (&s["pool"], &s["reserves"], &s["allocated"]),
        (&json!(0), &json!({}), &json!(2))
    );
    let a = api
        .get("orders/jd/sh-outlet/RACE-A/reservations")
        .await
        .unwrap()
        .body;
    assert_eq!(
        a["lines"]["1"]["draw"],
        json!({"pool": 1}),
        "redrawn from the pool"
    );
    stack.stop().await;
}

/// A spread SKU's last unit sits in bucket 0, and the gated order's own
/// bucket is empty: it reads every bucket and draws on bucket 0, but the
/// competitor takes the unit first. Its condition on bucket 0 fails, and
/// the redraw finds every cell empty: backordered, never oversold.
#[tokio::test(flavor = "multi_thread")]
async fn two_allocations_of_a_spread_skus_last_unit_across_buckets_reserve_it_once() {
    let (stack, api) = clothing_stack().await;
    for (path, body) in [
        ("skus/JACKET-DOWN/stock", json!({"on_hand": 1})),
        ("skus/JACKET-DOWN/buckets", json!({"buckets": 2})),
    ] {
        let r = api.put(path, &body).await.unwrap();
        assert_eq!(r.status, 200, "{}", r.body);
    }
    let s = api.get("skus/JACKET-DOWN/stock").await.unwrap().body;
    assert_eq!(s["cells"][0]["pool"], 1, "{s}");
    // Orders whose own buckets are 1 (empty) and 0 (the unit's).
    let of_lane = |lane: u8, prefix: &str| {
        (0..)
            .map(|i| format!("{prefix}{i}"))
            .find(|id| tier_domain::stock::levels::lane(&order(id).to_string(), 2) == Some(lane))
            .unwrap()
    };
    let (loser, winner) = (of_lane(1, "SPREAD-A"), of_lane(0, "SPREAD-B"));
    let (first, interleave) = race_between(&stack, None, &loser, &winner).await;
    assert_eq!(
        first,
        Allocation::Reserved {
            backordered: vec![Sku::parse("JACKET-DOWN").unwrap()]
        }
    );
    assert_eq!(
        interleave.sent(Write::TransactWriteItems),
        2,
        "the refused draw on bucket 0 and the backorder"
    );
    let s = api.get("skus/JACKET-DOWN/stock").await.unwrap().body;
    assert_eq!(
        (
            &s["on_hand"],
            &s["pool"],
            &s["allocated"],
            &s["backordered"]
        ),
        (&json!(1), &json!(0), &json!(1), &json!(1)),
        "{s}"
    );
    stack.stop().await;
}

/// Two pages of a what-if finish on one tally shard: the gated page reads
/// the shard, the other counts itself first, and the gated page's write,
/// conditional on the shard's version as read, fails and is made again
/// from what the other left. Both count, once.
#[tokio::test(flavor = "multi_thread")]
async fn two_what_if_pages_on_one_tally_shard_both_count() {
    use tier_domain::what_if::Tally;
    use tier_store::what_if::{Listing, WhatIfStart};
    let (stack, _api) = spawn_stack().await;
    let name = stack.table_name();
    let at = Utc::now();
    let draft = json!({"tiers": []});
    let table = direct(&name);
    assert!(matches!(
        table
            .start_what_if("race", &draft, at, &["-".to_owned()])
            .await
            .unwrap(),
        WhatIfStart::Created(_)
    ));
    let listing = Listing {
        pages: 40,
        next: None,
        next_cursor: None,
    };
    table
        .record_what_if_listing("race", at, "-#0", &listing)
        .await
        .unwrap();
    table.mark_what_if_sent("race").await.unwrap();
    // Two of the listing's pages whose tallies share a shard.
    let shard = |n: u64| tier_messages::fnv1a(&format!("-#0#{n}")) % 16;
    let other = (1..40).find(|n| shard(*n) == shard(0)).unwrap();
    let tally = |evaluated: u64| Tally {
        evaluated,
        ..Default::default()
    };
    let interleave = Interleave::default();
    let rival_name = name.clone();
    interleave.before_next(Write::TransactWriteItems, move || async move {
        direct(&rival_name)
            .record_what_if_page("race", at, &format!("-#0#{other}"), &tally(7))
            .await
            .unwrap();
    });
    gated(&stack, &interleave)
        .record_what_if_page("race", at, "-#0#0", &tally(5))
        .await
        .unwrap();
    assert_eq!(interleave.fired(), 1, "the competitor went first");
    assert_eq!(
        interleave.sent(Write::TransactWriteItems),
        2,
        "the refused write and its retry"
    );
    let s = table.what_if_results("race").await.unwrap().unwrap();
    assert_eq!((s.pages_done, s.tally.evaluated), (2, 12));
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn two_publications_never_share_a_version() {
    let (stack, api) = clothing_stack().await;
    let rules =
        tier_domain::rules::RuleSet::from_json(&local_stack::demo::clothing_rule_set().to_string())
            .unwrap();
    let interleave = Interleave::default();
    let name = stack.table_name();
    let rival_rules = rules.clone();
    let rival = std::sync::Arc::new(std::sync::Mutex::new(None));
    let rival_version = rival.clone();
    interleave.before_next(Write::TransactWriteItems, move || async move {
        let v = direct(&name)
            .publish_rule_set(&rival_rules, Utc::now(), false)
            .await
            .unwrap();
        *rival_version.lock().unwrap() = Some(v);
    });
    let mine = gated(&stack, &interleave)
        .publish_rule_set(&rules, Utc::now(), false)
        .await
        .unwrap();
    assert_eq!(interleave.fired(), 1, "the competitor went first");
    // The demo published version 1; the competitor took 2.
    assert_eq!(*rival.lock().unwrap(), Some(2));
    assert_eq!(mine, 3, "the loser read 1, lost, re-read 2 and became 3");
    assert_eq!(interleave.sent(Write::TransactWriteItems), 2);
    assert_eq!(api.get("rule-set").await.unwrap().body["version"], 3);
    stack.stop().await;
}

/// Applies `event` to d-shanghai's ledger and metrics as tier evaluation
/// would, today in the brand's calendar, without deciding a tier.
async fn apply(
    table: &Table,
    event: tier_domain::order::OrderEvent,
) -> tier_store::ledger::GroupOutcome {
    let calendar = tier_domain::calendar::BrandCalendar::default();
    let no_change = |_: &_, _: &_, _: Option<&_>| None;
    table
        .apply_group(
            &event.distributor.clone(),
            &[event],
            &calendar,
            calendar.day_of(Utc::now()),
            None,
            &no_change,
        )
        .await
        .unwrap()
}

fn paid(event: &str, order_id: &str, quantity: u32) -> tier_domain::order::OrderEvent {
    paid_by(event, order_id, quantity, "b-race")
}

fn paid_by(
    event: &str,
    order_id: &str,
    quantity: u32,
    buyer: &str,
) -> tier_domain::order::OrderEvent {
    let lines = vec![OrderLine {
        quantity,
        unit_price: Money::parse("199.00").unwrap(),
        amount: Money::parse("199.00").unwrap().times(quantity),
        ..one_unit("TEE-WHITE").remove(0)
    }];
    tier_domain::order::OrderEvent {
        event_id: EventId::parse(event).unwrap(),
        order: order(order_id),
        distributor: DistributorId::parse("d-shanghai").unwrap(),
        occurred_at: Utc::now(),
        kind: tier_domain::order::OrderEventKind::Paid {
            buyer: tier_domain::ids::BuyerId::parse(buyer).unwrap(),
            total: lines.iter().map(|l| l.amount).sum(),
            lines,
            urgent: false,
            region: None,
            tier: None,
            priority: 0,
        },
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn two_groups_of_one_distributor_both_count() {
    let (stack, api) = clothing_stack().await;

    let interleave = Interleave::default();
    let name = stack.table_name();
    interleave.before_next(Write::TransactWriteItems, move || async move {
        let outcome = apply(&direct(&name), paid("race-b", "RACE-B", 2)).await;
        assert_eq!(outcome.recorded, 1);
    });
    // Both read the metrics at the same version; the competitor wrote
    // first, so this group's transaction fails its guard, re-reads and
    // applies on top.
    let outcome = apply(&gated(&stack, &interleave), paid("race-a", "RACE-A", 1)).await;
    assert_eq!(interleave.fired(), 1, "the competitor went first");
    assert_eq!(
        interleave.sent(Write::TransactWriteItems),
        2,
        "the first transaction lost on its guard and was tried again"
    );
    assert_eq!(outcome.recorded, 1);
    let metrics = &distributor(&api, "d-shanghai").await["metrics"];
    assert_eq!(dec(&metrics["sales"]["lifetime"]), d("597.00"));
    assert_eq!(metrics["orders"]["lifetime"], 2);
    let upline = &distributor(&api, "d-hangzhou").await["metrics"];
    assert_eq!(dec(&upline["downline_sales"]["lifetime"]), d("597.00"));
    stack.stop().await;
}

/// A spread seller's change is not guarded by its shards: an order added
/// to a shard between a batch's read and its commit is seen by the
/// evaluation that follows every committed change. Here the competitor's
/// order lands first, unguarded; the batch's change to intermediate (on
/// 398, read without it) commits; the evaluation after it reads 597 and
/// moves the seller on to senior.
#[tokio::test(flavor = "multi_thread")]
async fn a_spread_sellers_change_racing_an_order_on_a_shard_is_looked_at_again() {
    let (stack, api) = clothing_stack().await;
    let id = DistributorId::parse("d-shanghai").unwrap();
    direct(&stack.table_name())
        .set_metric_shards(&id, 4)
        .await
        .unwrap();
    let interleave = Interleave::default();
    let name = stack.table_name();
    interleave.before_next(Write::TransactWriteItems, move || async move {
        // Another buyer: nothing of the batch's but the seller is shared.
        let outcome = apply(&direct(&name), paid_by("race-b", "RACE-B", 1, "b-other")).await;
        assert_eq!(outcome.recorded, 1);
    });
    let calendar = tier_domain::calendar::BrandCalendar::default();
    // Intermediate from 300 of sales, senior from 500.
    let decide = |p: &tier_store::distributors::Distributor,
                  m: &tier_domain::metrics::Metrics,
                  _: Option<&_>| {
        let sales = m.sales.lifetime;
        let to = if sales >= Money::parse("500.00").unwrap() {
            "senior"
        } else if sales >= Money::parse("300.00").unwrap() {
            "intermediate"
        } else {
            return None;
        };
        (p.tier.as_ref().map(|t| t.as_str()) != Some(to))
            .then(|| tier_change(to, tier_domain::tier::Cause::Assignment))
    };
    let outcome = gated(&stack, &interleave)
        .apply_group(
            &id,
            &[paid("race-a", "RACE-A", 2)],
            &calendar,
            calendar.day_of(Utc::now()),
            None,
            &decide,
        )
        .await
        .unwrap();
    assert_eq!(interleave.fired(), 1, "the competitor went first");
    assert_eq!(outcome.recorded, 1);
    let view = distributor(&api, "d-shanghai").await;
    assert_eq!(dec(&view["metrics"]["sales"]["lifetime"]), d("597.00"));
    assert_eq!(
        view["distributor"]["tier"], "senior",
        "{}",
        view["tier_history"]
    );
    let changes: Vec<_> = view["tier_history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["to"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(changes[..2], ["senior", "intermediate"], "{changes:?}");
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_registration_racing_the_users_first_order_counts_one_user() {
    let (stack, api) = clothing_stack().await;
    let id = DistributorId::parse("d-shanghai").unwrap();
    let buyer = tier_domain::ids::BuyerId::parse("b-race").unwrap();

    let interleave = Interleave::default();
    let name = stack.table_name();
    // The user's first order is counted while the registration is on its
    // way: both found no record of the user.
    interleave.before_next(Write::TransactWriteItems, move || async move {
        apply(&direct(&name), paid("race-first", "RACE-FIRST", 1)).await;
    });
    let registered = gated(&stack, &interleave)
        .register_downline_user(&id, &buyer)
        .await
        .unwrap();
    assert_eq!(interleave.fired(), 1, "the order went first");
    assert!(
        !registered.created,
        "the order had counted the user already"
    );
    let metrics = &distributor(&api, "d-shanghai").await["metrics"];
    assert_eq!(metrics["downline_users"], 1, "{metrics}");
    assert_eq!(metrics["valid_downline_users"], 1, "{metrics}");
    let upline = &distributor(&api, "d-hangzhou").await["metrics"];
    assert_eq!(upline["downline_users_all"], 1, "{upline}");
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_first_order_racing_the_users_registration_counts_one_user() {
    let (stack, api) = clothing_stack().await;
    let id = DistributorId::parse("d-shanghai").unwrap();

    let interleave = Interleave::default();
    let name = stack.table_name();
    let rival_id = id.clone();
    interleave.before_next(Write::TransactWriteItems, move || async move {
        let registered = direct(&name)
            .register_downline_user(
                &rival_id,
                &tier_domain::ids::BuyerId::parse("b-race").unwrap(),
            )
            .await
            .unwrap();
        assert!(registered.created);
    });
    let outcome = apply(
        &gated(&stack, &interleave),
        paid("race-first", "RACE-FIRST", 1),
    )
    .await;
    assert_eq!(interleave.fired(), 1, "the registration went first");
    assert_eq!(outcome.recorded, 1);
    assert_eq!(
        interleave.sent(Write::TransactWriteItems),
        2,
        "the order's transaction lost and was tried again"
    );
    let metrics = &distributor(&api, "d-shanghai").await["metrics"];
    assert_eq!(metrics["downline_users"], 1, "{metrics}");
    assert_eq!(metrics["valid_downline_users"], 1, "{metrics}");
    assert_eq!(dec(&metrics["sales"]["lifetime"]), d("199.00"));
    stack.stop().await;
}

fn tier_change(to: &str, cause: tier_domain::tier::Cause) -> tier_domain::tier::TierChange {
    tier_domain::tier::TierChange {
        from: Some(tier_domain::ids::TierId::parse("junior").unwrap()),
        to: tier_domain::ids::TierId::parse(to).unwrap(),
        direction: tier_domain::tier::Direction::Up,
        rule_set_version: 1,
        reasons: vec![],
        cause,
        at: Utc::now(),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_evaluation_racing_a_manual_override_leaves_the_override() {
    let (stack, api) = clothing_stack().await;
    let id = DistributorId::parse("d-shanghai").unwrap();
    let name = stack.table_name();
    let before = direct(&name).distributor(&id).await.unwrap().unwrap();
    assert_eq!(before.tier.as_ref().map(|t| t.as_str()), Some("junior"));

    // An evaluation read version v and decided on gold; an operator sets
    // senior, locked, from the same version, and commits first.
    let interleave = Interleave::default();
    let (rival_id, v) = (id.clone(), before.tier_version);
    interleave.before_next(Write::TransactWriteItems, move || async move {
        let manual = tier_change("senior", tier_domain::tier::Cause::Assignment);
        assert!(
            direct(&name)
                .set_tier_manually(&rival_id, v, Some(&manual), true, &calendar())
                .await
                .unwrap()
        );
    });
    let evaluation = tier_change(
        "gold",
        tier_domain::tier::Cause::OrderEvent {
            event_id: EventId::parse("race-eval").unwrap(),
        },
    );
    let committed = gated(&stack, &interleave)
        .change_tier(&id, before.tier_version, &evaluation, &calendar())
        .await
        .unwrap();
    assert_eq!(interleave.fired(), 1, "the override went first");
    assert!(!committed, "the evaluation's version guard failed");

    let after = direct(&stack.table_name())
        .distributor(&id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(after.tier.as_ref().map(|t| t.as_str()), Some("senior"));
    assert!(after.tier_locked);
    assert_eq!(after.tier_version, before.tier_version + 1);
    let view = distributor(&api, "d-shanghai").await;
    let changes = view["tier_history"].as_array().unwrap();
    assert_eq!(
        changes.iter().filter(|c| c["to"] == "gold").count(),
        0,
        "the losing evaluation left no history: {view}"
    );
    assert_eq!(changes[0]["to"], "senior");

    // Its retry (the next order) re-reads the lock and leaves the tier: an
    // order big enough for gold changes nothing.
    let now = Utc::now();
    let big = docs::paid(
        "after-race",
        "AFTER-RACE",
        "b1",
        &[("TEE-WHITE", 500, "199.00")],
        now,
    );
    assert_eq!(
        api.webhook("jd", "sh-outlet", &big).await.unwrap().status,
        202
    );
    stack.wait_idle(IDLE).await.unwrap();
    assert_eq!(tier_of(&api, "d-shanghai").await, "senior");
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_manual_override_racing_an_evaluation_is_refused_for_retry() {
    let (stack, _api) = clothing_stack().await;
    let id = DistributorId::parse("d-shanghai").unwrap();
    let name = stack.table_name();
    let before = direct(&name).distributor(&id).await.unwrap().unwrap();

    let interleave = Interleave::default();
    let (rival_id, v) = (id.clone(), before.tier_version);
    interleave.before_next(Write::TransactWriteItems, move || async move {
        let evaluation = tier_change(
            "intermediate",
            tier_domain::tier::Cause::OrderEvent {
                event_id: EventId::parse("race-eval").unwrap(),
            },
        );
        assert!(
            direct(&name)
                .change_tier(&rival_id, v, &evaluation, &calendar())
                .await
                .unwrap()
        );
    });
    let manual = tier_change("senior", tier_domain::tier::Cause::Assignment);
    let committed = gated(&stack, &interleave)
        .set_tier_manually(&id, before.tier_version, Some(&manual), true, &calendar())
        .await
        .unwrap();
    assert_eq!(interleave.fired(), 1, "the evaluation went first");
    assert!(!committed, "the override read a stale version");
    let after = direct(&stack.table_name())
        .distributor(&id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        after.tier.as_ref().map(|t| t.as_str()),
        Some("intermediate")
    );
    assert!(
        !after.tier_locked,
        "nothing of the lost override was written"
    );

    // Retried from what is there now (as the endpoint does), it applies.
    let retried = direct(&stack.table_name())
        .set_tier_manually(&id, after.tier_version, Some(&manual), true, &calendar())
        .await
        .unwrap();
    assert!(retried);
    let last = direct(&stack.table_name())
        .distributor(&id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(last.tier.as_ref().map(|t| t.as_str()), Some("senior"));
    assert_eq!(last.tier_version, before.tier_version + 2);
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn two_starts_of_one_review_make_one_run() {
    let (stack, _api) = clothing_stack().await;
    let period = tier_domain::calendar::Period::parse("2026-11").unwrap();
    let interleave = Interleave::default();
    let name = stack.table_name();
    let first_at = Utc::now() - chrono::Duration::seconds(30);
    interleave.before_next(Write::PutItem, move || async move {
        let run = direct(&name).start_review(period, first_at).await.unwrap();
        assert!(run.created);
    });
    let run = gated(&stack, &interleave)
        .start_review(period, Utc::now())
        .await
        .unwrap();
    assert_eq!(interleave.fired(), 1, "the other start went first");
    assert!(!run.created, "the second start found the first's run");
    assert_eq!(run.at, first_at, "and took its instant, not its own");
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn two_starts_of_one_what_if_make_one_run() {
    let (stack, _api) = clothing_stack().await;
    let draft = local_stack::demo::clothing_rule_set();
    let partitions = vec!["junior".to_owned()];
    for (rival_draft, expect_same) in [(draft.clone(), true), (json!({"other": 1}), false)] {
        let id = format!("race-{expect_same}");
        let interleave = Interleave::default();
        let name = stack.table_name();
        let (rival_id, rival_partitions) = (id.clone(), partitions.clone());
        interleave.before_next(Write::PutItem, move || async move {
            let started = direct(&name)
                .start_what_if(&rival_id, &rival_draft, Utc::now(), &rival_partitions)
                .await
                .unwrap();
            assert!(matches!(
                started,
                tier_store::what_if::WhatIfStart::Created(_)
            ));
        });
        let started = gated(&stack, &interleave)
            .start_what_if(&id, &draft, Utc::now(), &partitions)
            .await
            .unwrap();
        assert_eq!(interleave.fired(), 1, "the other start went first");
        match (started, expect_same) {
            (tier_store::what_if::WhatIfStart::Existing(run), true) => {
                assert_eq!(run.draft, draft)
            }
            (tier_store::what_if::WhatIfStart::OtherDraft, false) => {}
            (other, _) => panic!("two runs under one id: {other:?}"),
        }
    }
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn two_revocations_of_one_key_keep_the_first() {
    let (stack, _api) = clothing_stack().await;
    // The brand's ERP key, which the loaded stack created.
    let keys = direct(&stack.table_name()).list_api_keys().await.unwrap();
    let key_id = keys[0].id.clone();
    let interleave = Interleave::default();
    let name = stack.table_name();
    let first_at = Utc::now() - chrono::Duration::seconds(60);
    let rival_key = key_id.clone();
    interleave.before_next(Write::UpdateItem, move || async move {
        assert!(
            direct(&name)
                .revoke_api_key(&rival_key, first_at)
                .await
                .unwrap()
        );
    });
    assert!(
        gated(&stack, &interleave)
            .revoke_api_key(&key_id, Utc::now())
            .await
            .unwrap()
    );
    assert_eq!(interleave.fired(), 1, "the other revocation went first");
    let keys = direct(&stack.table_name()).list_api_keys().await.unwrap();
    let key = keys.iter().find(|k| k.id == key_id).unwrap();
    assert_eq!(
        key.revoked_at,
        Some(first_at),
        "the first revocation's time stays"
    );
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn one_webhook_delivered_twice_at_once_counts_once() {
    let (stack, api) = clothing_stack().await;
    let before = stock(&api, "TEE-WHITE").await;
    let paid = docs::paid(
        "twice",
        "TWICE",
        "b1",
        &[("TEE-WHITE", 3, "199.00")],
        Utc::now(),
    );

    // A second intake, whose receipt write lets the platform's duplicate
    // delivery go through the stack's own intake first: both found no
    // receipt, so both enqueue.
    let interleave = Interleave::default();
    let aws = tier_runtime::AwsClients {
        dynamodb: interleave::clients(Moto::shared(), &interleave),
        ..tier_runtime::AwsClients::local(Moto::shared())
    };
    // The stack's own intake's environment, as the template resolves it.
    let params = [("WebhookSecrets".to_owned(), stack.webhook_secret.clone())].into();
    let env = tier_runtime::Env::from_map(
        stack
            .resources
            .function_env(&stack.template, "OrderIntakeFunction", &params)
            .unwrap(),
    );
    let intake = order_intake::OrderIntake::from_env(&env, &aws).unwrap();
    let (rival, rival_doc) = (api.fresh(), paid.clone());
    interleave.before_next(Write::PutItem, move || async move {
        let r = rival.webhook("jd", "sh-outlet", &rival_doc).await.unwrap();
        assert_eq!(r.status, 202, "{}", r.body);
    });
    let mut doc = paid.clone();
    doc["platform"] = json!("jd");
    doc["store"] = json!("sh-outlet");
    let body = serde_json::to_vec(&doc).unwrap();
    let signature =
        order_intake::signature::sign(&body, &stack.webhook_secret, Utc::now().timestamp());
    let request = lambda_http::http::Request::builder()
        .method("POST")
        .uri("/webhooks/jd/sh-outlet")
        .header("content-type", "application/json")
        .header("x-signature", signature)
        .body(lambda_http::Body::from(body))
        .unwrap();
    let response = intake.handle(request).await;
    assert_eq!(interleave.fired(), 1, "the duplicate went first");
    assert_eq!(response.status(), 202, "both were accepted as new");

    stack.wait_idle(IDLE).await.unwrap();
    let metrics = &distributor(&api, "d-shanghai").await["metrics"];
    assert_eq!(dec(&metrics["sales"]["lifetime"]), d("597.00"), "{metrics}");
    assert_eq!(metrics["orders"]["lifetime"], 1);
    assert_eq!(stock(&api, "TEE-WHITE").await, before - 3, "reserved once");
    assert_eq!(
        api.webhook("jd", "sh-outlet", &paid).await.unwrap().status,
        200,
        "a third delivery finds the receipt"
    );
    for dlq in ["TierEventsDLQ", "StockEventsDLQ"] {
        assert_eq!(depth(&stack, dlq).await, 0, "{dlq}");
    }
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn two_price_book_publications_never_share_a_version() {
    let (stack, api) = clothing_stack().await;
    let current = api.get("price-book").await.unwrap().body["version"]
        .as_u64()
        .unwrap();
    let draft = tier_domain::pricing::book::PriceBookDraft {
        skus: Default::default(),
        promotions: vec![],
    };
    let interleave = Interleave::default();
    let name = stack.table_name();
    let rival_draft = draft.clone();
    interleave.before_next(Write::PutItem, move || async move {
        let v = direct(&name)
            .publish_price_book(&rival_draft, Utc::now())
            .await
            .unwrap();
        assert_eq!(v.version, current + 1);
    });
    // Both read the same current version and claim the next: the loser's
    // claim fails its guard and it takes the one after.
    let mine = gated(&stack, &interleave)
        .publish_price_book(&draft, Utc::now())
        .await
        .unwrap();
    assert_eq!(interleave.fired(), 1, "the competitor went first");
    assert_eq!(mine.version, current + 2);
    let now = direct(&stack.table_name())
        .current_book()
        .await
        .unwrap()
        .unwrap();
    assert_eq!(now.version, current + 2, "the newest is current");
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn two_distributors_claiming_one_store_get_it_once() {
    let (stack, _api) = clothing_stack().await;
    let platform = Platform::parse("jd").unwrap();
    let store = StoreId::parse("race-store").unwrap();
    let interleave = Interleave::default();
    let name = stack.table_name();
    let (rival_platform, rival_store) = (platform.clone(), store.clone());
    interleave.before_next(Write::TransactWriteItems, move || async move {
        direct(&name)
            .register_store(
                &rival_platform,
                &rival_store,
                &DistributorId::parse("d-hangzhou").unwrap(),
                None,
            )
            .await
            .unwrap();
    });
    let mine = gated(&stack, &interleave)
        .register_store(
            &platform,
            &store,
            &DistributorId::parse("d-shanghai").unwrap(),
            None,
        )
        .await;
    assert_eq!(interleave.fired(), 1, "the competitor went first");
    match mine {
        Err(tier_store::distributors::StoreRegisterError::OwnedByAnother { owner, .. }) => {
            assert_eq!(owner.as_str(), "d-hangzhou")
        }
        other => panic!("one store, two owners: {other:?}"),
    }
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refund_racing_its_orders_payment_on_one_ledger_entry_counts_both() {
    let (stack, api) = clothing_stack().await;
    let interleave = Interleave::default();
    let name = stack.table_name();
    // The payment and its refund are in two groups (two batches): both
    // read no ledger entry for the order, and the payment writes first.
    interleave.before_next(Write::PutItem, move || async move {
        let outcome = apply(&direct(&name), paid("race-paid", "RACE-ONE", 2)).await;
        assert_eq!(outcome.recorded, 1);
    });
    let refund = tier_domain::order::OrderEvent {
        kind: tier_domain::order::OrderEventKind::Refunded {
            refund_id: tier_domain::ids::RefundId::parse("rf-race").unwrap(),
            amount: Money::parse("199.00").unwrap(),
            lines: vec![],
        },
        event_id: EventId::parse("race-refund").unwrap(),
        ..paid("unused", "RACE-ONE", 2)
    };
    let outcome = apply(&gated(&stack, &interleave), refund).await;
    assert_eq!(interleave.fired(), 1, "the payment went first");
    assert_eq!(outcome.recorded, 1);
    let metrics = &distributor(&api, "d-shanghai").await["metrics"];
    assert_eq!(dec(&metrics["sales"]["lifetime"]), d("199.00"), "{metrics}");
    assert_eq!(metrics["orders"]["lifetime"], 1, "{metrics}");
    stack.stop().await;
}

fn calendar() -> tier_domain::calendar::BrandCalendar {
    tier_domain::calendar::BrandCalendar::default()
}

/// Midnight: a payment of the new day reads the SKU's running day (the
/// old one), and before it moves that day out, a late payment of the old
/// day adds to it. The move's condition on the day's writes fails, and its
/// retry moves out what is there now: both days count every unit, once.
#[tokio::test(flavor = "multi_thread")]
async fn a_payment_of_the_old_day_at_midnight_is_not_lost_by_the_move_to_the_new() {
    let (stack, _api) = clothing_stack().await;
    let gold = tier_domain::ids::TierId::parse("gold").unwrap();
    let senior = tier_domain::ids::TierId::parse("senior").unwrap();
    let yesterday = today().minus_days(1);
    let name = stack.table_name();
    // The running day is yesterday's: one unit for Gold.
    let outcome = direct(&name)
        .allocate_payment(
            &order("OLD-1"),
            &EventId::parse("old-1").unwrap(),
            payer(Some(&gold)),
            yesterday,
            &one_unit("JACKET-DOWN"),
        )
        .await
        .unwrap();
    assert!(
        matches!(outcome, Allocation::Reserved { .. }),
        "{outcome:?}"
    );
    let interleave = Interleave::default();
    let rival_tier = senior.clone();
    interleave.before_next(Write::TransactWriteItems, move || async move {
        // Yesterday's late payment, for a tier the first did not read.
        direct(&name)
            .allocate_payment(
                &order("OLD-2"),
                &EventId::parse("old-2").unwrap(),
                payer(Some(&rival_tier)),
                yesterday,
                &one_unit("JACKET-DOWN"),
            )
            .await
            .unwrap();
    });
    gated(&stack, &interleave)
        .allocate_payment(
            &order("NEW-1"),
            &EventId::parse("new-1").unwrap(),
            payer(Some(&gold)),
            today(),
            &one_unit("JACKET-DOWN"),
        )
        .await
        .unwrap();
    assert_eq!(interleave.fired(), 1, "the late payment went first");
    let table = direct(&stack.table_name());
    let sku = Sku::parse("JACKET-DOWN").unwrap();
    let days = table.sku_demand(&sku, yesterday, today()).await.unwrap();
    let units = |day, tier: &tier_domain::ids::TierId| {
        days.get(&day)
            .and_then(|d| d.get(tier))
            .copied()
            .unwrap_or(0)
    };
    assert_eq!(
        (units(yesterday, &gold), units(yesterday, &senior)),
        (1, 1),
        "yesterday keeps both its payments: {days:?}"
    );
    assert_eq!(
        (units(today(), &gold), units(today(), &senior)),
        (1, 0),
        "today has only its own: {days:?}"
    );
    stack.stop().await;
}
