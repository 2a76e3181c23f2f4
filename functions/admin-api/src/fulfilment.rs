//! The shipping queue (发货队列), for the brand's WMS or ERP, behind an API
//! key of the `fulfilment` scope (not the admin key: a warehouse ships
//! orders and administers nothing).
//!
//! | method | path | does |
//! |---|---|---|
//! | GET | `/v1/fulfilment/orders?status=ready[&limit=25][&cursor=]` | open orders whose stock is taken, highest priority first, then oldest |
//! | POST | `/v1/fulfilment/orders/{platform}/{store}/{order}:shipped` | record the shipment, once: its units leave on hand |

use tier_domain::stock::{LineStatus, OrderStock, ShipError, Shipment};
use tier_runtime::api_key;

use super::*;

const DEFAULT_LIMIT: usize = 25;
const MAX_LIMIT: usize = 100;
/// A shipment's reference (a carrier's tracking number, a WMS id).
const MAX_REFERENCE_CHARS: usize = 100;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ShippedBody {
    #[serde(default)]
    reference: Option<String>,
}

/// An order as the queue shows it: what to ship, and why it stands where it does.
fn queued_json(order: &OrderRef, record: &OrderStock) -> serde_json::Value {
    let lines: Vec<serde_json::Value> = record
        .lines
        .iter()
        .filter(|(_, l)| l.reserved > 0 || l.status == LineStatus::Shipped)
        .map(|(id, l)| {
            let units = if l.status == LineStatus::Shipped {
                l.shipped
            } else {
                l.reserved
            };
            json!({"line_id": id, "sku": l.sku, "quantity": units})
        })
        .collect();
    json!({
        "order": order,
        "priority": record.priority,
        "tier": record.tier,
        "paid_at": record.paid_at,
        "lines": lines,
    })
}

fn page_limit(query: Option<&str>) -> Result<usize, ApiError> {
    match http::query_values(query, "limit").first() {
        None => Ok(DEFAULT_LIMIT),
        Some(raw) => raw
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_LIMIT).contains(n))
            .ok_or_else(|| {
                ApiError::bad_request(
                    "invalid_limit",
                    format!("limit must be a whole number from 1 to {MAX_LIMIT}"),
                )
            }),
    }
}

/// A cursor is the hex of the rank the previous page ended on.
fn cursor(query: Option<&str>) -> Result<Option<String>, ApiError> {
    let Some(raw) = http::query_values(query, "cursor").into_iter().next() else {
        return Ok(None);
    };
    hex::decode(&raw)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .filter(|r| tier_domain::fulfilment::is_queue_rank(r))
        .map(Some)
        .ok_or_else(|| {
            ApiError::bad_request(
                "invalid_cursor",
                "the cursor is not one a page of this queue returned",
            )
        })
}

impl AdminApi {
    pub(crate) async fn fulfilment(
        &self,
        req: &Request,
        parts: &[&str],
        body: &[u8],
    ) -> Result<Response<Body>, ApiError> {
        let presented = api_key::presented(req)?;
        let record = self.table.api_key_record(presented.id).await?;
        let key = api_key::authenticate(record.as_ref(), &presented)?;
        if !key.scope.may_ship() {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden_scope",
                "this API key may not ship orders: create one of scope fulfilment",
            ));
        }
        match (req.method().clone(), parts) {
            (Method::GET, ["v1", "fulfilment", "orders"]) => {
                self.ready_orders(req.uri().query()).await
            }
            (Method::POST, ["v1", "fulfilment", "orders", p, s, o]) if o.ends_with(":shipped") => {
                let order = OrderRef {
                    platform: id(p, Platform::parse)?,
                    store: id(s, StoreId::parse)?,
                    order_id: id(o.trim_end_matches(":shipped"), OrderId::parse)?,
                };
                self.ship(order, body).await
            }
            (m, _) => Err(ApiError::not_found(
                "route_not_found",
                format!("no fulfilment route for {m} {}", req.uri().path()),
            )),
        }
    }

    async fn ready_orders(&self, query: Option<&str>) -> Result<Response<Body>, ApiError> {
        match http::query_values(query, "status")
            .first()
            .map(String::as_str)
        {
            Some("ready") => {}
            _ => {
                return Err(ApiError::bad_request(
                    "invalid_status",
                    "status must be ready: the orders whose stock is taken and that have not shipped",
                ));
            }
        }
        let limit = page_limit(query)?;
        let after = cursor(query)?;
        let page = self.table.ready_to_ship(after.as_deref(), limit).await?;
        let orders: Vec<serde_json::Value> = page
            .orders
            .iter()
            .map(|(order, record)| queued_json(order, record))
            .collect();
        Ok(http::json(
            StatusCode::OK,
            &json!({"orders": orders, "next_cursor": page.next.map(hex::encode)}),
        ))
    }

    async fn ship(&self, order: OrderRef, body: &[u8]) -> Result<Response<Body>, ApiError> {
        let b: ShippedBody = if body.iter().all(u8::is_ascii_whitespace) {
            ShippedBody { reference: None }
        } else {
            http::parse_json(body)?
        };
        if let Some(r) = &b.reference
            && (r.trim().is_empty() || r.chars().count() > MAX_REFERENCE_CHARS)
        {
            return Err(ApiError::unprocessable(
                "invalid_reference",
                format!("reference must be 1 to {MAX_REFERENCE_CHARS} characters"),
            ));
        }
        let shipment = Shipment {
            at: Utc::now(),
            reference: b.reference,
        };
        let record = self
            .table
            .ship_order(&order, shipment)
            .await?
            .map_err(|e| match e {
                ShipError::NotPaid => ApiError::not_found(
                    "order_not_found",
                    format!("no payment of order {order} has been allocated"),
                ),
                ShipError::Cancelled => ApiError::conflict("order_cancelled", e.to_string()),
                ShipError::NotReady => ApiError::conflict("order_not_ready", e.to_string()),
                ShipError::NothingToShip => ApiError::conflict("nothing_to_ship", e.to_string()),
            })?;
        let shipped = record.shipped.as_ref().expect("a shipped record says when");
        tracing::info!(%order, at = %shipped.at, "order shipped");
        let mut answer = queued_json(&order, &record);
        answer["status"] = json!("shipped");
        answer["shipped_at"] = json!(shipped.at);
        answer["reference"] = json!(shipped.reference);
        Ok(http::json(StatusCode::OK, &answer))
    }
}
