//! Every DynamoDB action a function takes is one its role in the SAM
//! template allows. The emulator checks no permissions, so a read or write
//! added without its action would pass every other test and fail deployed.
//! The demo and a round of the shipping queue and a backorder fill run
//! first; each function's requests are counted on its own clients.

use std::collections::{BTreeMap, BTreeSet};

use chrono::Utc;
use serde_json::{Value, json};
use system_tests::*;

fn as_list(v: &Value) -> Vec<&Value> {
    match v {
        Value::Array(xs) => xs.iter().collect(),
        Value::Null => Vec::new(),
        one => vec![one],
    }
}

/// A function's role's allowed DynamoDB actions, each with whether a
/// statement allowing it names an index resource.
fn allowed(template: &Value, function: &str) -> BTreeMap<String, bool> {
    let resources = &template["Resources"];
    let role = resources[function]["Properties"]["Role"]["Fn::GetAtt"][0]
        .as_str()
        .unwrap_or_else(|| panic!("{function} has no role of its own"));
    let mut out = BTreeMap::new();
    for policy in as_list(&resources[role]["Properties"]["Policies"]) {
        for statement in as_list(&policy["PolicyDocument"]["Statement"]) {
            if statement["Effect"] != "Allow" {
                continue;
            }
            let on_index = as_list(&statement["Resource"])
                .iter()
                .any(|r| r.to_string().contains("/index/"));
            for action in as_list(&statement["Action"]) {
                let action = action.as_str().unwrap().to_owned();
                let entry = out.entry(action).or_insert(false);
                *entry |= on_index;
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn every_function_is_allowed_what_it_does() {
    let (stack, _) = spawn_stack().await;
    local_stack::demo::run(&stack).await.expect("the demo runs");
    let api = ApiClient::for_stack(&stack);

    // A backorder and its fill, a shipment, a cancellation.
    let jacket = api.get("skus/JACKET-DOWN/stock").await.unwrap().body;
    let held = jacket["allocated"].as_u64().unwrap();
    let count = |on_hand: u64| json!({"on_hand": on_hand});
    assert_eq!(
        api.put("skus/JACKET-DOWN/stock", &count(held))
            .await
            .unwrap()
            .status,
        200
    );
    let now = Utc::now();
    let paid = docs::paid("r1", "ROLE-1", "b1", &[("JACKET-DOWN", 1, "1299.00")], now);
    assert_eq!(
        api.webhook("jd", "sh-outlet", &paid).await.unwrap().status,
        202
    );
    stack.wait_idle(IDLE).await.unwrap();
    assert_eq!(
        api.put("skus/JACKET-DOWN/stock", &count(held + 5))
            .await
            .unwrap()
            .status,
        200
    );
    stack.wait_idle(IDLE).await.unwrap();
    let mut wms = api.clone();
    wms.api_key = Some(
        api.create_api_key("wms", json!({"type": "fulfilment"}))
            .await
            .unwrap(),
    );
    let queue = wms
        .read("/v1/fulfilment/orders?status=ready")
        .await
        .unwrap();
    assert_eq!(queue.status, 200, "{}", queue.body);
    let ship = wms
        .post_raw(
            "/v1/fulfilment/orders/jd/sh-outlet/ROLE-1:shipped",
            &[(
                "authorization",
                format!("Bearer {}", wms.api_key.clone().unwrap()),
            )],
            Vec::new(),
        )
        .await
        .unwrap()
        .0;
    assert_eq!(ship.status, 200, "{}", ship.body);
    // A hot seller and its upline spread: shards, and the ranks' refresh.
    for id in ["d-shanghai", "d-hangzhou"] {
        let r = api
            .put(&format!("distributors/{id}/shards"), &json!({"shards": 4}))
            .await
            .unwrap();
        assert_eq!(r.status, 200, "{}", r.body);
    }
    let paid = docs::paid("r2", "ROLE-2", "b2", &[("TEE-WHITE", 1, "199.00")], now);
    api.webhook("jd", "sh-outlet", &paid).await.unwrap();
    stack.wait_idle(IDLE).await.unwrap();
    api.webhook("jd", "sh-outlet", &docs::cancelled("r2-x", "ROLE-2", now))
        .await
        .unwrap();
    stack.wait_idle(IDLE).await.unwrap();

    let text = std::fs::read_to_string(local_stack::moto::repo_root().join("infra/template.yaml"))
        .unwrap();
    let template: Value =
        serde_json::to_value(serde_norway::from_str::<serde_norway::Value>(&text).unwrap())
            .unwrap();
    let mut missing = Vec::new();
    let mut seen = BTreeSet::new();
    for (function, counter) in &stack.function_usage {
        let allowed = allowed(&template, function);
        for action in counter.snapshot().actions {
            seen.insert(action.clone());
            let (name, index) = match action.strip_suffix(" (index)") {
                Some(name) => (name.to_owned(), true),
                None => (action.clone(), false),
            };
            match allowed.get(&name) {
                Some(on_index) if !index || *on_index => {}
                _ => missing.push(format!("{function}: {action}")),
            }
        }
    }
    assert!(
        seen.contains("dynamodb:Query (index)") && seen.contains("dynamodb:DeleteItem"),
        "the workload reaches the indexes and the deletes: {seen:?}"
    );
    assert!(
        missing.is_empty(),
        "actions the roles do not allow: {missing:?}"
    );
    stack.stop().await;
}
