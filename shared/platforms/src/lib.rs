//! What the platforms push, read exactly as they send it.
//!
//! Each platform module checks a delivery's signature over the raw bytes
//! and turns its body into [`Notice`]s: platform-neutral facts about one
//! order (created, paid, cancelled, shipped, refunded), still in the
//! platform's own identifiers (its shop, order, line and SKU ids). Order
//! intake resolves those to our store, distributor and SKUs, which is
//! where a notice can be held (an unmapped SKU, a fetch that failed).
//!
//! Nothing here does I/O, so every parser is unit-tested and fuzzed
//! without a network. Money is read into [`Decimal`] from the JSON text
//! itself, never through `f64`; ids are kept as the text the platform
//! sent, so an id past 2^53 survives, and one already damaged by a
//! JavaScript round trip is kept as it came rather than "fixed".
//!
//! # Layout
//! - [`shopify`]: `X-Shopify-*` webhooks (REST resources as bodies).
//! - [`doudian`]: 抖店 message pushes, and the order-detail response their
//!   notices need (the pushes carry no lines).
//! - [`youzan`]: 有赞 pushes (URL-encoded JSON in `msg`).
//! - [`region`]: a buyer's province, one code across the platforms.
//! - [`exact`]: JSON numbers and strings read exactly.
//! - [`translate`]: a notice to our order event, or the reason it is held.
//! - [`mapping`]: a store's SKU mapping as the brand publishes it.

/// The platforms whose own delivery formats intake reads, by the name their
/// stores are registered under.
pub const NATIVE_PLATFORMS: [&str; 3] = ["shopify", "doudian", "youzan"];

pub mod doudian;
pub mod exact;
mod fields;
pub mod mapping;
pub mod region;
pub mod shopify;
pub mod translate;
pub mod youzan;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

pub use region::Region;

/// What one authentic delivery says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// The platform checking the endpoint (抖店's tag `"0"`, 有赞's
    /// `test: true`): acknowledge it, store nothing.
    Probe,
    /// One or more notices (抖店 batches several in one push).
    Notices(Vec<Notice>),
    /// Authentic, about an event this product keeps no state for (a topic
    /// the app should not be subscribed to): acknowledged, so that the
    /// platform does not retry it, and counted in the metrics.
    Unsubscribed { event: String },
}

/// One fact about one order, as one platform event states it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notice {
    /// The platform's identity of the store: a Shopify shop domain, a 抖店
    /// `shop_id`, a 有赞 `kdt_id`, as text.
    pub shop: String,
    /// What a duplicate delivery of the same event repeats, unique per
    /// shop: Shopify's `X-Shopify-Event-Id` (or the webhook id where no
    /// event id is sent), 抖店's `msg_id` (or tag and order where it is
    /// absent), 有赞's type, order and version.
    pub event_key: String,
    /// The platform's order id (Shopify's numeric id, 抖店's `p_id`, 有赞's
    /// `tid`).
    pub order_id: String,
    /// When the platform says the change happened.
    pub occurred_at: DateTime<Utc>,
    /// Where the platform numbers an order's states (有赞's `version`, 抖店's
    /// `update_time`), the number: a notice with a lower one than an
    /// already-applied notice of the same order is stale.
    pub version: Option<i64>,
    pub change: Change,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Placed, not yet paid. `order` is `None` where the platform's notice
    /// carries no lines (抖店): intake fetches the detail.
    Created {
        order: Option<OrderDetail>,
    },
    /// Paid: this is what counts toward sales and allocates stock.
    Paid {
        order: Option<OrderDetail>,
    },
    Cancelled {
        reason: Option<String>,
    },
    Shipped,
    /// A refund that succeeded (not one merely requested). `amount` is the
    /// goods part only: shipping refunded with it is in `shipping`.
    Refunded {
        refund_id: String,
        amount: Decimal,
        shipping: Decimal,
        /// Goods coming back, by the platform's line id; empty when the
        /// platform does not say.
        lines: Vec<RefundedLine>,
    },
    /// A notice the product keeps no state for (a refund requested, a
    /// return agreed): acknowledged and recorded, counted nowhere. Never
    /// held, so never read back from the store.
    Ignored {
        why: &'static str,
    },
}

/// [`Change`] as a held notice is stored: the same, but for `Ignored`,
/// whose reason is a literal of this crate and is never held.
#[derive(Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum StoredChange {
    Created {
        order: Option<OrderDetail>,
    },
    Paid {
        order: Option<OrderDetail>,
    },
    Cancelled {
        reason: Option<String>,
    },
    Shipped,
    Refunded {
        refund_id: String,
        amount: Decimal,
        shipping: Decimal,
        lines: Vec<RefundedLine>,
    },
    Ignored {
        why: String,
    },
}

// By hand rather than `#[serde(try_from)]`: the derive would see
// `Ignored`'s `&'static str` and make every notice deserialisable only from
// `'static` input.
impl Serialize for Change {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        StoredChange::from(self.clone()).serialize(s)
    }
}

impl<'de> Deserialize<'de> for Change {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Change::try_from(StoredChange::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

impl From<Change> for StoredChange {
    fn from(c: Change) -> Self {
        match c {
            Change::Created { order } => Self::Created { order },
            Change::Paid { order } => Self::Paid { order },
            Change::Cancelled { reason } => Self::Cancelled { reason },
            Change::Shipped => Self::Shipped,
            Change::Refunded {
                refund_id,
                amount,
                shipping,
                lines,
            } => Self::Refunded {
                refund_id,
                amount,
                shipping,
                lines,
            },
            Change::Ignored { why } => Self::Ignored { why: why.into() },
        }
    }
}

impl TryFrom<StoredChange> for Change {
    type Error = String;

    fn try_from(c: StoredChange) -> Result<Self, String> {
        Ok(match c {
            StoredChange::Created { order } => Self::Created { order },
            StoredChange::Paid { order } => Self::Paid { order },
            StoredChange::Cancelled { reason } => Self::Cancelled { reason },
            StoredChange::Shipped => Self::Shipped,
            StoredChange::Refunded {
                refund_id,
                amount,
                shipping,
                lines,
            } => Self::Refunded {
                refund_id,
                amount,
                shipping,
                lines,
            },
            StoredChange::Ignored { why } => {
                return Err(format!("an ignored notice ({why}) is never stored"));
            }
        })
    }
}

/// An order as the platform describes it: enough to count it and to
/// allocate its stock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderDetail {
    /// The platform's buyer id (or a stable stand-in such as an e-mail
    /// digest where it sends none): `None` when it sends nothing at all.
    pub buyer: Option<String>,
    /// ISO 4217 code of `total` and every line's money, in the shop's
    /// currency (Shopify's `shop_money`). 抖店 and 有赞 are always `CNY`.
    pub currency: String,
    /// What the buyer paid for the goods, after discounts, before shipping.
    pub total: Decimal,
    pub lines: Vec<Line>,
    /// The shipping address's province, when the order has one the region
    /// table knows.
    pub region: Option<Region>,
    /// The province as sent, when present (kept when `region` is `None`,
    /// so an operator sees what was not recognised).
    pub province_text: Option<String>,
    /// Express shipping or the platform's own urgency flag.
    pub urgent: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Line {
    /// The platform's line id (Shopify line item id, 抖店 sku order id,
    /// 有赞 `oid`), as text.
    pub line_id: String,
    /// The merchant's SKU code for the line, when set (Shopify `sku`, 抖店
    /// `code`/`out_sku_id`, 有赞 `outer_sku_id`/`outer_item_id`).
    pub sku_code: Option<String>,
    /// The platform's own variant or SKU id (Shopify `variant_id`, 抖店
    /// `sku_id`, 有赞 `sku_id`), as text.
    pub variant_id: Option<String>,
    pub quantity: u64,
    /// The resale unit price, before line discounts.
    pub unit_price: Decimal,
    /// What the buyer paid for the line: unit price × quantity less the
    /// line's discounts.
    pub amount: Decimal,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefundedLine {
    pub line_id: String,
    pub quantity: u64,
}

/// Why a delivery was refused. Each maps to one HTTP status and code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeliveryError {
    /// A header the platform always sends is absent.
    #[error("missing header {0}")]
    MissingHeader(&'static str),
    /// The signature does not match any of the app's secrets (or is not
    /// in the platform's encoding).
    #[error("signature does not match")]
    BadSignature,
    /// The delivery names another app than the one its URL is for.
    #[error("app id {0:?} is not this app's")]
    WrongApp(String),
    /// Authentic, but not the platform's shape: `field` names where.
    #[error("{field}: {reason}")]
    Shape { field: String, reason: String },
}

impl DeliveryError {
    pub fn shape(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::Shape {
            field: field.into(),
            reason: reason.into(),
        }
    }
}
