//! The generic webhook document, and its translation into an order event.
//!
//! Every document names the platform and store it is about; they must match
//! the URL, so that a signed document cannot be replayed to another store's
//! URL (the signature covers the body, not the path).
//!
//! ```json
//! {"platform": "tmall", "store": "hz-flagship",
//!  "event_id": "evt-1", "type": "order.paid", "occurred_at": "2026-11-27T02:15:00Z",
//!  "order_id": "TM-1", "buyer_id": "b-1", "total": "398.00", "urgent": false, "region": "CN-ZJ",
//!  "lines": [{"line_id": "1", "sku": "TEE", "quantity": 2, "unit_price": "199.00", "amount": "398.00"}]}
//! {"event_id": "evt-2", "type": "order.refunded", "occurred_at": "...", "order_id": "TM-1",
//!  "refund": {"refund_id": "RF-1", "amount": "199.00", "lines": [{"line_id": "1", "quantity": 1}]}}
//! {"event_id": "evt-3", "type": "order.cancelled", "occurred_at": "...", "order_id": "TM-1"}
//! {"event_id": "evt-4", "type": "user.registered", "occurred_at": "...", "buyer_id": "b-2"}
//! ```

use chrono::{DateTime, Utc};
use serde::Deserialize;
use tier_domain::ids::{BuyerId, EventId, LineId, OrderId, Platform, RefundId, Sku, StoreId};
use tier_domain::money::Money;
use tier_domain::order::{OrderEventKind, OrderLine, ReturnedLine};
use tier_domain::region::Region;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookDoc {
    pub platform: Platform,
    pub store: StoreId,
    pub event_id: EventId,
    #[serde(rename = "type")]
    pub kind: WebhookType,
    pub occurred_at: DateTime<Utc>,
    #[serde(default)]
    pub order_id: Option<OrderId>,
    #[serde(default)]
    pub buyer_id: Option<BuyerId>,
    #[serde(default)]
    pub total: Option<Money>,
    #[serde(default)]
    pub urgent: bool,
    #[serde(default)]
    pub lines: Vec<LineDoc>,
    #[serde(default)]
    pub refund: Option<RefundDoc>,
    /// The buyer's province as an ISO 3166-2 code (`CN-ZJ`), on
    /// `order.paid` only.
    #[serde(default)]
    pub region: Option<Region>,
    /// The carrier's tracking number or the shipment's id, on
    /// `order.shipped` only.
    #[serde(default)]
    pub shipment_reference: Option<String>,
}

/// A line as the document writes it. Its own type, so that unknown fields
/// are refused here as everywhere in the document (the domain's line also
/// holds what intake records, such as the entitled price).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LineDoc {
    pub line_id: LineId,
    pub sku: Sku,
    pub quantity: u32,
    pub unit_price: Money,
    pub amount: Money,
}

impl From<LineDoc> for OrderLine {
    fn from(l: LineDoc) -> Self {
        OrderLine {
            line_id: l.line_id,
            sku: l.sku,
            quantity: l.quantity,
            unit_price: l.unit_price,
            amount: l.amount,
            entitled_unit_price: None,
            floor_unit_price: None,
        }
    }
}

/// Goods coming back with a refund, as the document writes them.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReturnedLineDoc {
    pub line_id: LineId,
    pub quantity: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum WebhookType {
    #[serde(rename = "order.paid")]
    Paid,
    #[serde(rename = "order.refunded")]
    Refunded,
    #[serde(rename = "order.cancelled")]
    Cancelled,
    /// The order left the warehouse; `shipment_reference` optional.
    #[serde(rename = "order.shipped")]
    Shipped,
    /// A user signed up through the store (a downline user, 下线用户).
    #[serde(rename = "user.registered")]
    UserRegistered,
}

/// What a document asks for.
#[derive(Debug)]
pub enum Incoming {
    Order {
        order_id: OrderId,
        kind: OrderEventKind,
    },
    Signup {
        user: BuyerId,
    },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RefundDoc {
    pub refund_id: RefundId,
    pub amount: Money,
    #[serde(default)]
    pub lines: Vec<ReturnedLineDoc>,
}

impl WebhookDoc {
    /// The event this document describes; `Err` names the missing or
    /// unexpected field.
    pub fn into_incoming(self) -> Result<Incoming, String> {
        if self.kind == WebhookType::UserRegistered {
            if self.order_id.is_some()
                || self.total.is_some()
                || !self.lines.is_empty()
                || self.refund.is_some()
                || self.region.is_some()
            {
                return Err("user.registered takes buyer_id, not order fields".into());
            }
            return Ok(Incoming::Signup {
                user: self.buyer_id.ok_or("user.registered needs buyer_id")?,
            });
        }
        if self.region.is_some() && self.kind != WebhookType::Paid {
            return Err(format!("{} takes no region", self.kind.name()));
        }
        if self.shipment_reference.is_some() && self.kind != WebhookType::Shipped {
            return Err(format!("{} takes no shipment_reference", self.kind.name()));
        }
        if self
            .shipment_reference
            .as_ref()
            .is_some_and(|r| r.is_empty() || r.len() > 128 || r.chars().any(char::is_control))
        {
            return Err("shipment_reference must be 1 to 128 characters, none a control".into());
        }
        let order_id = self
            .order_id
            .clone()
            .ok_or_else(|| format!("{} needs order_id", self.kind.name()))?;
        Ok(Incoming::Order {
            order_id,
            kind: self.into_kind()?,
        })
    }

    fn into_kind(self) -> Result<OrderEventKind, String> {
        match self.kind {
            WebhookType::Paid => Ok(OrderEventKind::Paid {
                buyer: self.buyer_id.ok_or("order.paid needs buyer_id")?,
                total: self.total.ok_or("order.paid needs total")?,
                lines: self.lines.into_iter().map(OrderLine::from).collect(),
                urgent: self.urgent,
                region: self.region,
                tier: None,
                priority: 0,
            }),
            WebhookType::Refunded => {
                let refund = self.refund.ok_or("order.refunded needs refund")?;
                Ok(OrderEventKind::Refunded {
                    refund_id: refund.refund_id,
                    amount: refund.amount,
                    lines: refund
                        .lines
                        .into_iter()
                        .map(|l| ReturnedLine {
                            line_id: l.line_id,
                            quantity: l.quantity,
                        })
                        .collect(),
                })
            }
            WebhookType::Cancelled => Ok(OrderEventKind::Cancelled),
            WebhookType::Shipped => Ok(OrderEventKind::Shipped {
                reference: self.shipment_reference,
            }),
            WebhookType::UserRegistered => Err("user.registered is not an order event".into()),
        }
    }
}

impl WebhookType {
    fn name(self) -> &'static str {
        match self {
            WebhookType::Paid => "order.paid",
            WebhookType::Refunded => "order.refunded",
            WebhookType::Cancelled => "order.cancelled",
            WebhookType::Shipped => "order.shipped",
            WebhookType::UserRegistered => "user.registered",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paid(extra: serde_json::Value) -> Result<Incoming, String> {
        let mut doc = serde_json::json!({"platform": "jd", "store": "s", "event_id": "e",
            "type": "order.paid", "occurred_at": "2026-11-27T02:15:00Z", "order_id": "O1",
            "buyer_id": "b1", "total": "1.00",
            "lines": [{"line_id": "1", "sku": "TEE", "quantity": 1, "unit_price": "1.00", "amount": "1.00"}]});
        doc.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        serde_json::from_value::<WebhookDoc>(doc)
            .map_err(|e| e.to_string())?
            .into_incoming()
    }

    #[test]
    fn a_paid_order_carries_its_buyers_region_when_given() {
        let Ok(Incoming::Order {
            kind: OrderEventKind::Paid { region, .. },
            ..
        }) = paid(serde_json::json!({"region": "CN-ZJ"}))
        else {
            panic!("a paid order");
        };
        assert_eq!(region.map(String::from).as_deref(), Some("CN-ZJ"));
        let Ok(Incoming::Order {
            kind: OrderEventKind::Paid { region, .. },
            ..
        }) = paid(serde_json::json!({}))
        else {
            panic!("a paid order");
        };
        assert_eq!(region, None);
        assert!(paid(serde_json::json!({"region": "浙江"})).is_err());
    }
}
