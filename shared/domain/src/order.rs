//! Order events as the rest of the system sees them, whatever platform they
//! came from. Order intake turns a platform's webhook into one of these.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::{BuyerId, DistributorId, EventId, LineId, OrderRef, RefundId, Sku, TierId};
use crate::money::Money;
use crate::region::Region;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderLine {
    pub line_id: LineId,
    pub sku: Sku,
    pub quantity: u32,
    /// What the buyer paid per unit: the distributor's resale price.
    pub unit_price: Money,
    /// What the buyer paid for the line, after any line discount.
    pub amount: Money,
    /// What the distributor was entitled to pay per unit at order time, by
    /// the price book and its tier then: recorded by order intake so that
    /// resale prices are later compared like with like.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entitled_unit_price: Option<Money>,
    /// The SKU's floor price (minimum advertised price) at order time, by
    /// the price book then: recorded by order intake, so that a resale
    /// below it is found as price disorder (乱价) whatever the book says
    /// later.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub floor_unit_price: Option<Money>,
}

/// Goods coming back with a refund, which releases their reserved stock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReturnedLine {
    pub line_id: LineId,
    pub quantity: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum OrderEventKind {
    Paid {
        buyer: BuyerId,
        total: Money,
        lines: Vec<OrderLine>,
        /// Urgent orders are handled ahead of their tier's turn.
        #[serde(default)]
        urgent: bool,
        /// The buyer's province, from the shipping address, where known.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        region: Option<Region>,
        /// The distributor's tier when the order was paid, as intake found
        /// it: whose stock reserve the lines draw on. `None` before a rule
        /// set is published (and on events queued before tiers were kept).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tier: Option<TierId>,
        /// Where the order stands in the shipping queue, fixed when it was
        /// paid (see [`crate::fulfilment`]); 0 without a rule set.
        #[serde(default, skip_serializing_if = "is_zero")]
        priority: u16,
    },
    Refunded {
        refund_id: RefundId,
        amount: Money,
        #[serde(default)]
        lines: Vec<ReturnedLine>,
    },
    Cancelled,
    /// The order left the warehouse, as the platform says (its seller-ship
    /// notice, Shopify's `orders/fulfilled`) or the brand's own system. It
    /// moves stock only: sales and tiers count payments and refunds.
    Shipped {
        /// The carrier's tracking number or the shipment's id, where given.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reference: Option<String>,
    },
}

fn is_zero(n: &u16) -> bool {
    *n == 0
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderEvent {
    pub event_id: EventId,
    pub order: OrderRef,
    /// The distributor that owns the store the order was placed in.
    pub distributor: DistributorId,
    /// Within [`event_time`]'s bounds: a message with an instant outside
    /// them does not parse, so no month the calendar cannot write reaches
    /// the store.
    #[serde(deserialize_with = "event_time::deserialize")]
    pub occurred_at: DateTime<Utc>,
    #[serde(flatten)]
    pub kind: OrderEventKind,
}

/// When an event may have happened. Intake refuses an instant before
/// [`event_time::EARLIEST`] or more than [`event_time::MAX_AHEAD_SECS`]
/// ahead of its own clock; the queues' messages hold only instants between
/// [`event_time::EARLIEST`] and [`event_time::LATEST`], so that the month
/// and day of every event, in any time zone, are ones the calendar writes
/// and reads back (years 1970 to 9999).
pub mod event_time {
    use chrono::{DateTime, Utc};
    use serde::{Deserialize, Deserializer};

    /// 2000-01-01T00:00:00Z: older than any order a platform still reports.
    pub const EARLIEST: DateTime<Utc> = match DateTime::from_timestamp(946_684_800, 0) {
        Some(t) => t,
        None => panic!("2000-01-01 is a valid instant"),
    };
    /// 9000-01-01T00:00:00Z: the latest instant a queued message may carry
    /// (intake's own bound, a day ahead of its clock, is far tighter).
    pub const LATEST: DateTime<Utc> = match DateTime::from_timestamp(221_845_392_000, 0) {
        Some(t) => t,
        None => panic!("9000-01-01 is a valid instant"),
    };
    /// How far ahead of our clock a platform's may run: a day.
    pub const MAX_AHEAD_SECS: i64 = 86_400;

    #[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
    pub enum EventTimeError {
        #[error("occurred_at {0} is before {EARLIEST}")]
        TooEarly(DateTime<Utc>),
        #[error("occurred_at {0} is after {LATEST}")]
        TooLate(DateTime<Utc>),
        #[error("occurred_at {at} is more than {MAX_AHEAD_SECS} s ahead of now ({now})")]
        InTheFuture {
            at: DateTime<Utc>,
            now: DateTime<Utc>,
        },
    }

    /// Whether `at` may be carried by a queued message.
    pub fn check(at: DateTime<Utc>) -> Result<(), EventTimeError> {
        if at < EARLIEST {
            Err(EventTimeError::TooEarly(at))
        } else if at >= LATEST {
            Err(EventTimeError::TooLate(at))
        } else {
            Ok(())
        }
    }

    /// Whether intake, at `now`, accepts an event that says it happened at
    /// `at`.
    pub fn check_at_intake(at: DateTime<Utc>, now: DateTime<Utc>) -> Result<(), EventTimeError> {
        check(at)?;
        if (at - now).num_seconds() > MAX_AHEAD_SECS {
            return Err(EventTimeError::InTheFuture { at, now });
        }
        Ok(())
    }

    /// Serde's `deserialize_with` for an instant within bounds.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let at = DateTime::<Utc>::deserialize(d)?;
        check(at).map_err(serde::de::Error::custom)?;
        Ok(at)
    }
}

/// Why an order's content is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OrderError {
    #[error("an order needs at least one line")]
    NoLines,
    #[error("a shipment reference must be 1 to 128 characters, none a control character")]
    BadShipmentReference,
    #[error("line {line}: quantity must be at least 1")]
    ZeroQuantity { line: String },
    #[error("line {line}: amount {amount} is negative")]
    NegativeAmount { line: String, amount: Money },
    #[error("line {line} appears twice")]
    DuplicateLine { line: String },
    #[error("order total {total} is not the sum of its lines ({sum})")]
    TotalMismatch { total: Money, sum: Money },
    #[error("refund amount must be positive, got {0}")]
    NonPositiveRefund(Money),
    #[error("more than {max} lines")]
    TooManyLines { max: usize },
    #[error("line {line}: quantity {quantity} is above the limit of {MAX_LINE_QUANTITY}")]
    QuantityTooLarge { line: String, quantity: u32 },
    #[error(
        "line {line}: amount {amount} is more than quantity × unit price ({value}); a line discount only lowers it"
    )]
    AmountAboveValue {
        line: String,
        amount: Money,
        value: Money,
    },
}

/// More units than one line of a retail order holds. Quantities count into
/// stock, sales and downline users, so an impossible one would move them
/// all (4,294,967,295 units backordered, say).
pub const MAX_LINE_QUANTITY: u32 = 100_000;

/// More lines than any real order has; keeps one event well inside SQS's
/// 256 KiB message limit.
pub const MAX_LINES: usize = 200;

impl OrderEventKind {
    /// Checks the rules every order obeys: lines sum exactly to the total.
    pub fn validate(&self) -> Result<(), OrderError> {
        match self {
            OrderEventKind::Paid { total, lines, .. } => {
                if lines.is_empty() {
                    return Err(OrderError::NoLines);
                }
                if lines.len() > MAX_LINES {
                    return Err(OrderError::TooManyLines { max: MAX_LINES });
                }
                let mut seen = std::collections::BTreeSet::new();
                for l in lines {
                    if l.quantity == 0 {
                        return Err(OrderError::ZeroQuantity {
                            line: l.line_id.to_string(),
                        });
                    }
                    if l.quantity > MAX_LINE_QUANTITY {
                        return Err(OrderError::QuantityTooLarge {
                            line: l.line_id.to_string(),
                            quantity: l.quantity,
                        });
                    }
                    if l.amount.is_negative() || l.unit_price.is_negative() {
                        return Err(OrderError::NegativeAmount {
                            line: l.line_id.to_string(),
                            amount: l.amount.min(l.unit_price),
                        });
                    }
                    // What the buyer paid for the line cannot exceed its
                    // list value: 1 unit at 1.00 does not make 99,999.00 of
                    // sales.
                    let value = l.unit_price.times(l.quantity);
                    if l.amount > value {
                        return Err(OrderError::AmountAboveValue {
                            line: l.line_id.to_string(),
                            amount: l.amount,
                            value,
                        });
                    }
                    if !seen.insert(&l.line_id) {
                        return Err(OrderError::DuplicateLine {
                            line: l.line_id.to_string(),
                        });
                    }
                }
                let sum: Money = lines.iter().map(|l| l.amount).sum();
                if sum != *total {
                    return Err(OrderError::TotalMismatch { total: *total, sum });
                }
                Ok(())
            }
            OrderEventKind::Refunded { amount, lines, .. } => {
                if amount.is_negative() || amount.is_zero() {
                    return Err(OrderError::NonPositiveRefund(*amount));
                }
                if let Some(l) = lines.iter().find(|l| l.quantity == 0) {
                    return Err(OrderError::ZeroQuantity {
                        line: l.line_id.to_string(),
                    });
                }
                if let Some(l) = lines.iter().find(|l| l.quantity > MAX_LINE_QUANTITY) {
                    return Err(OrderError::QuantityTooLarge {
                        line: l.line_id.to_string(),
                        quantity: l.quantity,
                    });
                }
                Ok(())
            }
            OrderEventKind::Cancelled => Ok(()),
            OrderEventKind::Shipped { reference } => match reference {
                Some(r) if r.is_empty() || r.len() > 128 || r.chars().any(char::is_control) => {
                    Err(OrderError::BadShipmentReference)
                }
                _ => Ok(()),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn line(quantity: u32, unit_price: &str, amount: &str) -> OrderLine {
        OrderLine {
            line_id: LineId::parse("1").unwrap(),
            sku: Sku::parse("TEE").unwrap(),
            quantity,
            unit_price: Money::parse(unit_price).unwrap(),
            amount: Money::parse(amount).unwrap(),
            entitled_unit_price: None,
            floor_unit_price: None,
        }
    }

    fn paid(lines: Vec<OrderLine>) -> OrderEventKind {
        let total = lines.iter().map(|l| l.amount).sum();
        OrderEventKind::Paid {
            buyer: BuyerId::parse("b").unwrap(),
            total,
            lines,
            urgent: false,
            region: None,
            tier: None,
            priority: 0,
        }
    }

    #[test]
    fn a_line_cannot_be_worth_more_than_its_units() {
        let err = paid(vec![line(1, "1.00", "99999.00")])
            .validate()
            .unwrap_err();
        assert!(matches!(err, OrderError::AmountAboveValue { .. }), "{err}");
        // A discount lowers the amount; a free line is 0.00.
        assert_eq!(paid(vec![line(3, "33.34", "99.99")]).validate(), Ok(()));
        assert_eq!(paid(vec![line(2, "0.00", "0.00")]).validate(), Ok(()));
        assert_eq!(paid(vec![line(2, "10.00", "20.00")]).validate(), Ok(()));
    }

    #[test]
    fn quantities_are_bounded() {
        let err = paid(vec![line(u32::MAX, "0.00", "0.00")])
            .validate()
            .unwrap_err();
        assert!(matches!(err, OrderError::QuantityTooLarge { .. }), "{err}");
        assert_eq!(
            paid(vec![line(MAX_LINE_QUANTITY, "0.01", "1000.00")]).validate(),
            Ok(())
        );
        let refund = OrderEventKind::Refunded {
            refund_id: RefundId::parse("r").unwrap(),
            amount: Money::parse("1.00").unwrap(),
            lines: vec![ReturnedLine {
                line_id: LineId::parse("1").unwrap(),
                quantity: MAX_LINE_QUANTITY + 1,
            }],
        };
        assert!(matches!(
            refund.validate(),
            Err(OrderError::QuantityTooLarge { .. })
        ));
    }

    #[test]
    fn event_times_are_bounded() {
        let now = Utc.with_ymd_and_hms(2026, 12, 1, 12, 0, 0).unwrap();
        for poison in [
            "9999-12-31T23:59:59Z",
            "0001-01-01T00:00:00Z",
            "1969-12-31T00:00:00Z",
        ] {
            let at: DateTime<Utc> = poison.parse().unwrap();
            assert!(event_time::check_at_intake(at, now).is_err(), "{poison}");
        }
        let tomorrow_and_more = now + chrono::Duration::seconds(event_time::MAX_AHEAD_SECS + 1);
        assert!(matches!(
            event_time::check_at_intake(tomorrow_and_more, now),
            Err(event_time::EventTimeError::InTheFuture { .. })
        ));
        assert_eq!(event_time::check_at_intake(now, now), Ok(()));
        assert_eq!(
            event_time::check_at_intake(event_time::EARLIEST, now),
            Ok(())
        );
        assert_eq!(
            event_time::EARLIEST.to_rfc3339(),
            "2000-01-01T00:00:00+00:00"
        );
        assert_eq!(event_time::LATEST.to_rfc3339(), "9000-01-01T00:00:00+00:00");
    }

    #[test]
    fn a_queued_event_out_of_bounds_does_not_parse() {
        let event = |at: &str| {
            serde_json::json!({"event_id": "e", "order": {"platform": "jd", "store": "s",
                "order_id": "o"}, "distributor": "d", "occurred_at": at, "kind": "cancelled"})
        };
        assert!(serde_json::from_value::<OrderEvent>(event("2026-11-27T02:15:00Z")).is_ok());
        let err = serde_json::from_value::<OrderEvent>(event("9999-12-31T23:59:59Z")).unwrap_err();
        assert!(err.to_string().contains("after 9000-01-01"), "{err}");
    }
}
