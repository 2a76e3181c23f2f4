//! Order events as the rest of the system sees them, whatever platform they
//! came from. Order intake turns a platform's webhook into one of these.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::{BuyerId, DistributorId, EventId, LineId, OrderRef, RefundId, Sku};
use crate::money::Money;

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
    },
    Refunded {
        refund_id: RefundId,
        amount: Money,
        #[serde(default)]
        lines: Vec<ReturnedLine>,
    },
    Cancelled,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderEvent {
    pub event_id: EventId,
    pub order: OrderRef,
    /// The distributor that owns the store the order was placed in.
    pub distributor: DistributorId,
    pub occurred_at: DateTime<Utc>,
    #[serde(flatten)]
    pub kind: OrderEventKind,
}

/// Why an order's content is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OrderError {
    #[error("an order needs at least one line")]
    NoLines,
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
}

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
                    if l.amount.is_negative() || l.unit_price.is_negative() {
                        return Err(OrderError::NegativeAmount {
                            line: l.line_id.to_string(),
                            amount: l.amount.min(l.unit_price),
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
                Ok(())
            }
            OrderEventKind::Cancelled => Ok(()),
        }
    }
}
