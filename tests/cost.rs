//! What one order costs in DynamoDB, end to end (order intake, tier
//! evaluation, stock allocation), counted by an SDK interceptor on every
//! request the functions make. Run with `-- --nocapture` to see the figures.

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::Utc;
use system_tests::*;

/// A rough DynamoDB item size: attribute names plus values.
fn item_size(item: &std::collections::HashMap<String, AttributeValue>) -> usize {
    fn value(v: &AttributeValue) -> usize {
        match v {
            AttributeValue::S(s) | AttributeValue::N(s) => s.len(),
            AttributeValue::Ss(v) | AttributeValue::Ns(v) => v.iter().map(String::len).sum(),
            AttributeValue::M(m) => m.iter().map(|(k, v)| k.len() + value(v)).sum(),
            AttributeValue::L(l) => l.iter().map(value).sum(),
            _ => 8,
        }
    }
    item.iter().map(|(k, v)| k.len() + value(v)).sum()
}

#[tokio::test(flavor = "multi_thread")]
async fn one_line_order_costs() {
    let (stack, api) = clothing_stack().await;
    let now = Utc::now();
    // Warm up: the first order of the store creates the metrics item.
    api.webhook("jd", "sh-outlet", &docs::paid("warm", "W", "b0", &[("TEE-WHITE", 1, "199.00")], now)).await.unwrap();
    stack.wait_idle(IDLE).await.unwrap();

    let mut report = Vec::new();
    for (label, doc) in [
        ("new buyer, tier unchanged", docs::paid("e1", "O1", "b1", &[("TEE-WHITE", 1, "199.00")], now)),
        ("repeat buyer, tier unchanged", docs::paid("e2", "O2", "b1", &[("TEE-WHITE", 1, "199.00")], now)),
        ("order that changes the tier", docs::paid("e3", "O3", "b2", &[("JACKET-DOWN", 39, "1299.00")], now)),
    ] {
        stack.dynamo_usage.reset();
        let r = api.webhook("jd", "sh-outlet", &doc).await.unwrap();
        assert_eq!(r.status, 202);
        stack.wait_idle(IDLE).await.unwrap();
        let usage = stack.dynamo_usage.snapshot();
        report.push(format!(
            "{label:<30} requests {:>2}  write units {:>4}  read units {:>4}  {:?}",
            usage.total_requests(),
            usage.write_units,
            usage.read_units,
            usage.requests
        ));
        // Regression guards, not targets: see the README for the breakdown.
        assert!(usage.total_requests() <= 12, "{label}: {usage:?}");
        assert!(usage.write_units <= 17.0, "{label}: {usage:?}");
    }
    println!("DynamoDB cost of one 1-line order, end to end:\n  {}", report.join("\n  "));
    assert_eq!(tier_of(&api, "d-shanghai").await, "intermediate");

    // The write-unit count assumes items under 1 KB: check every item the
    // order path writes.
    let items = stack.clients.dynamodb.scan().table_name(stack.table_name()).send().await.unwrap().items.unwrap_or_default();
    for item in &items {
        let entity = item.get("entity_type").and_then(|v| v.as_s().ok()).cloned().unwrap_or_default();
        if entity == "rule_set" || entity == "price_book" {
            continue; // written by operators, not per order
        }
        assert!(item_size(item) < 1024, "{entity} item is {} bytes", item_size(item));
    }
    stack.stop().await;
}
