//! Races, forced. Each test lets one writer read, then runs a competitor to
//! its end before that writer's conditional write is sent (see
//! `local_stack::interleave`): the writer's condition must fail, and its
//! retry must come out right.

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
    }]
}

#[tokio::test(flavor = "multi_thread")]
async fn two_allocations_of_the_last_unit_reserve_it_once() {
    let (stack, api) = clothing_stack().await;
    let r = api
        .put("skus/JACKET-DOWN/stock", &json!({"available": 1}))
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);

    let interleave = Interleave::default();
    let name = stack.table_name();
    interleave.before_next(Write::TransactWriteItems, move || async move {
        let outcome = direct(&name)
            .allocate_payment(
                &order("RACE-B"),
                &EventId::parse("race-b").unwrap(),
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
    let first = gated(&stack, &interleave)
        .allocate_payment(
            &order("RACE-A"),
            &EventId::parse("race-a").unwrap(),
            &one_unit("JACKET-DOWN"),
        )
        .await
        .unwrap();
    assert_eq!(interleave.fired(), 1, "the competitor went first");
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
            buyer: tier_domain::ids::BuyerId::parse("b-race").unwrap(),
            total: lines.iter().map(|l| l.amount).sum(),
            lines,
            urgent: false,
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
