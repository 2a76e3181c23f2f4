//! From a platform's notice to our order event, or to the reason it is
//! held.
//!
//! A platform gives up on an endpoint that keeps refusing it, so an
//! authentic notice is never refused for what we cannot resolve yet: a SKU
//! with no mapping, a SKU missing from the price book, a currency the brand
//! does not count in, a time no calendar should hold, lines that cannot be
//! true, an order whose lines must still be fetched. Such a notice is held
//! with its [`HoldReason`], listed to operators, and translated again when
//! the cause is fixed. This function is the one place that decides; intake
//! and the release of held orders both call it.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tier_domain::ids::{BuyerId, EventId, LineId, OrderId, RefundId, Sku};
use tier_domain::money::Money;
use tier_domain::order::{OrderEventKind, OrderLine, ReturnedLine, event_time};

use crate::{Change, Line, Notice, OrderDetail};

/// Why a notice waits instead of being counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HoldReason {
    /// A line's platform SKU has no entry in the store's SKU mapping.
    UnmappedSku,
    /// A line maps to a SKU the current price book does not list.
    UnknownSku,
    /// The order is in another currency than the brand counts in.
    ForeignCurrency,
    /// Dated before 2000 or more than a day ahead of our clock.
    ImplausibleTime,
    /// Lines or amounts that cannot be true (see `OrderEventKind::validate`),
    /// or ids our keys cannot hold.
    ImplausibleOrder,
    /// The platform's notice carries no lines (抖店): the order's detail is
    /// being fetched.
    AwaitingDetail,
}

impl HoldReason {
    pub fn as_str(self) -> &'static str {
        match self {
            HoldReason::UnmappedSku => "unmapped_sku",
            HoldReason::UnknownSku => "unknown_sku",
            HoldReason::ForeignCurrency => "foreign_currency",
            HoldReason::ImplausibleTime => "implausible_time",
            HoldReason::ImplausibleOrder => "implausible_order",
            HoldReason::AwaitingDetail => "awaiting_detail",
        }
    }

    /// Whether publishing a SKU mapping or a price book can resolve it.
    pub fn resolved_by_catalog(self) -> bool {
        matches!(self, HoldReason::UnmappedSku | HoldReason::UnknownSku)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hold {
    pub reason: HoldReason,
    /// For the operator: which SKUs, which currency, what was wrong.
    pub detail: String,
}

impl Hold {
    fn new(reason: HoldReason, detail: impl Into<String>) -> Self {
        Self {
            reason,
            detail: detail.into(),
        }
    }
}

/// What a notice becomes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// An order event to queue for tier evaluation and stock allocation.
    Event {
        event_id: EventId,
        order_id: OrderId,
        occurred_at: DateTime<Utc>,
        kind: OrderEventKind,
    },
    /// Acknowledged and recorded, counted nowhere: an order placed but not
    /// yet paid, a shipment, a refund requested.
    Nothing {
        why: String,
    },
    Held(Hold),
}

/// What translation needs to know about where the notice is counted.
pub trait Catalog {
    /// Our SKU for a platform SKU code or variant id, by the store's
    /// mapping.
    fn mapped(&self, platform_sku: &str) -> Option<Sku>;
    /// Whether the current price book lists `sku`.
    fn in_book(&self, sku: &Sku) -> bool;
}

/// The event id a notice's key becomes: itself where it is a valid id
/// (Shopify's event ids, 有赞's `type:tid:version`), else a digest of it,
/// so that a duplicate delivery still maps to the same id.
pub fn event_id(event_key: &str) -> EventId {
    EventId::parse(event_key).unwrap_or_else(|_| {
        let digest = hex::encode(Sha256::digest(event_key.as_bytes()));
        EventId::parse(&format!("k-{}", &digest[..40])).expect("hex digits are a valid id")
    })
}

/// Translates `notice` for a brand counting in `currency`, at `now`.
pub fn translate(
    notice: &Notice,
    currency: &str,
    catalog: &dyn Catalog,
    now: DateTime<Utc>,
) -> Outcome {
    match try_translate(notice, currency, catalog, now) {
        Ok(outcome) => outcome,
        Err(hold) => Outcome::Held(hold),
    }
}

fn try_translate(
    notice: &Notice,
    currency: &str,
    catalog: &dyn Catalog,
    now: DateTime<Utc>,
) -> Result<Outcome, Hold> {
    let nothing = |why: &str| Ok(Outcome::Nothing { why: why.into() });
    let kind = match &notice.change {
        Change::Created { .. } => return nothing("placed, not paid yet: counted when paid"),
        Change::Shipped => OrderEventKind::Shipped { reference: None },
        Change::Ignored { why } => return nothing(why),
        Change::Paid { order: None } => {
            return Err(Hold::new(
                HoldReason::AwaitingDetail,
                "the notice carries no lines; the order's detail is fetched",
            ));
        }
        Change::Paid { order: Some(order) } => paid(order, currency, catalog)?,
        Change::Cancelled { .. } => OrderEventKind::Cancelled,
        Change::Refunded {
            refund_id,
            amount,
            lines,
            ..
        } => {
            // Only the goods part moves sales; a refund of shipping alone
            // changes nothing we count.
            if amount.is_zero() {
                return nothing("a refund of shipping only");
            }
            let lines = lines
                .iter()
                .map(|l| {
                    Ok(ReturnedLine {
                        line_id: parse_id(&l.line_id, "line id", LineId::parse)?,
                        quantity: quantity(l.quantity, &l.line_id)?,
                    })
                })
                .collect::<Result<Vec<_>, Hold>>()?;
            OrderEventKind::Refunded {
                refund_id: parse_id(refund_id, "refund id", RefundId::parse)?,
                amount: money(*amount, "refund amount")?,
                lines,
            }
        }
    };
    event_time::check_at_intake(notice.occurred_at, now)
        .map_err(|e| Hold::new(HoldReason::ImplausibleTime, e.to_string()))?;
    kind.validate()
        .map_err(|e| Hold::new(HoldReason::ImplausibleOrder, e.to_string()))?;
    Ok(Outcome::Event {
        event_id: event_id(&notice.event_key),
        order_id: parse_id(&notice.order_id, "order id", OrderId::parse)?,
        occurred_at: notice.occurred_at,
        kind,
    })
}

fn paid(
    order: &OrderDetail,
    currency: &str,
    catalog: &dyn Catalog,
) -> Result<OrderEventKind, Hold> {
    if !order.currency.eq_ignore_ascii_case(currency) {
        return Err(Hold::new(
            HoldReason::ForeignCurrency,
            format!(
                "the order is in {}; the brand counts in {currency}",
                order.currency
            ),
        ));
    }
    let mut unmapped = Vec::new();
    let mut unknown = Vec::new();
    let mut skus = Vec::with_capacity(order.lines.len());
    for line in &order.lines {
        match mapped_sku(line, catalog) {
            None => unmapped.push(platform_sku_label(line)),
            Some(sku) if !catalog.in_book(&sku) => unknown.push(sku.to_string()),
            Some(sku) => skus.push(sku),
        }
    }
    if !unmapped.is_empty() {
        return Err(Hold::new(
            HoldReason::UnmappedSku,
            format!("no SKU mapping for {}", unmapped.join(", ")),
        ));
    }
    if !unknown.is_empty() {
        return Err(Hold::new(
            HoldReason::UnknownSku,
            format!("not in the current price book: {}", unknown.join(", ")),
        ));
    }
    let amounts = line_amounts(order)?;
    let mut lines = Vec::with_capacity(order.lines.len());
    for ((line, sku), amount) in order.lines.iter().zip(skus).zip(amounts) {
        lines.push(OrderLine {
            line_id: parse_id(&line.line_id, "line id", LineId::parse)?,
            sku,
            quantity: quantity(line.quantity, &line.line_id)?,
            unit_price: money(line.unit_price, "unit price")?,
            amount,
            entitled_unit_price: None,
            floor_unit_price: None,
        });
    }
    let total = lines.iter().map(|l| l.amount).sum();
    Ok(OrderEventKind::Paid {
        buyer: buyer(order),
        total,
        lines,
        urgent: order.urgent,
        region: order.region.clone(),
        tier: None,
        priority: 0,
    })
}

/// The SKU a line maps to: by the merchant's code first (what brands keep
/// in step with their ERP), else by the platform's variant id.
fn mapped_sku(line: &Line, catalog: &dyn Catalog) -> Option<Sku> {
    line.sku_code
        .as_deref()
        .and_then(|c| catalog.mapped(c))
        .or_else(|| line.variant_id.as_deref().and_then(|v| catalog.mapped(v)))
}

fn platform_sku_label(line: &Line) -> String {
    match (&line.sku_code, &line.variant_id) {
        (Some(code), _) => code.clone(),
        (None, Some(variant)) => format!("variant {variant}"),
        (None, None) => format!("line {} (no SKU code or variant)", line.line_id),
    }
}

/// What the buyer paid for each line, in cents, summing to the order's
/// goods total. Where the lines add up to more than the total, the
/// difference is a discount on the whole order that the platform did not
/// allocate to lines (Shopify's `total_discounts` without
/// `discount_allocations`): it is shared over the lines in proportion to
/// their amounts, in whole cents, the remainders going to the largest
/// fractions (then the earliest lines). Where they add up to less, the
/// lines are what the buyer is known to have paid for goods, and are kept.
fn line_amounts(order: &OrderDetail) -> Result<Vec<Money>, Hold> {
    let amounts: Vec<Money> = order
        .lines
        .iter()
        .map(|l| money(l.amount, "line amount"))
        .collect::<Result<_, _>>()?;
    let sum: Decimal = amounts.iter().map(|m| m.amount()).sum();
    let total = money(order.total, "order total")?.amount();
    if sum <= total || sum.is_zero() {
        return Ok(amounts);
    }
    let gap_cents = to_cents(sum - total);
    let mut shares: Vec<(i64, Decimal, usize)> = amounts
        .iter()
        .enumerate()
        .map(|(i, a)| {
            let exact = Decimal::from(gap_cents) * a.amount() / sum;
            let whole = exact.trunc();
            (to_cents_whole(whole), exact - whole, i)
        })
        .collect();
    let assigned: i64 = shares.iter().map(|s| s.0).sum();
    let mut by_remainder: Vec<usize> = (0..shares.len()).collect();
    by_remainder.sort_by(|&a, &b| shares[b].1.cmp(&shares[a].1).then(a.cmp(&b)));
    for &i in by_remainder
        .iter()
        .take((gap_cents - assigned).max(0) as usize)
    {
        shares[i].0 += 1;
    }
    Ok(amounts
        .iter()
        .zip(&shares)
        .map(|(a, (cents, _, _))| Money::round(a.amount() - Decimal::new(*cents, 2)))
        .collect())
}

fn to_cents(d: Decimal) -> i64 {
    to_cents_whole((d * Decimal::ONE_HUNDRED).round())
}

fn to_cents_whole(d: Decimal) -> i64 {
    i64::try_from(d).unwrap_or(i64::MAX)
}

/// The buyer a downline user is counted as. A guest checkout has no buyer
/// id: all of a store's guests count as one user, so that guest orders do
/// not each add a valid downline user.
fn buyer(order: &OrderDetail) -> BuyerId {
    order
        .buyer
        .as_deref()
        .and_then(|b| BuyerId::parse(b).ok())
        .or_else(|| {
            order.buyer.as_deref().map(|b| {
                let digest = hex::encode(Sha256::digest(b.as_bytes()));
                BuyerId::parse(&format!("b-{}", &digest[..40])).expect("hex digits are a valid id")
            })
        })
        .unwrap_or_else(|| BuyerId::parse("guest").expect("a valid id"))
}

fn money(d: Decimal, what: &str) -> Result<Money, Hold> {
    Money::from_decimal(d)
        .map_err(|e| Hold::new(HoldReason::ImplausibleOrder, format!("{what}: {e}")))
}

fn quantity(q: u64, line: &str) -> Result<u32, Hold> {
    u32::try_from(q).map_err(|_| {
        Hold::new(
            HoldReason::ImplausibleOrder,
            format!("line {line}: quantity {q} is beyond any real order"),
        )
    })
}

fn parse_id<T>(
    raw: &str,
    what: &str,
    parse: fn(&str) -> Result<T, tier_domain::ids::IdError>,
) -> Result<T, Hold> {
    parse(raw).map_err(|e| Hold::new(HoldReason::ImplausibleOrder, format!("{what}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RefundedLine;
    use std::collections::{BTreeMap, BTreeSet};

    struct Fixed {
        mapping: BTreeMap<&'static str, &'static str>,
        book: BTreeSet<&'static str>,
    }

    impl Catalog for Fixed {
        fn mapped(&self, code: &str) -> Option<Sku> {
            self.mapping.get(code).map(|s| Sku::parse(s).unwrap())
        }
        fn in_book(&self, sku: &Sku) -> bool {
            self.book.contains(sku.as_str())
        }
    }

    fn catalog() -> Fixed {
        Fixed {
            mapping: [
                ("TEE-W-M", "TEE-WHITE"),
                ("4001", "JACKET-DOWN"),
                ("OLD", "GONE"),
            ]
            .into_iter()
            .collect(),
            book: ["TEE-WHITE", "JACKET-DOWN"].into_iter().collect(),
        }
    }

    fn d(s: &str) -> Decimal {
        Decimal::from_str_exact(s).unwrap()
    }

    fn line(
        id: &str,
        code: Option<&str>,
        variant: Option<&str>,
        q: u64,
        price: &str,
        amount: &str,
    ) -> Line {
        Line {
            line_id: id.into(),
            sku_code: code.map(Into::into),
            variant_id: variant.map(Into::into),
            quantity: q,
            unit_price: d(price),
            amount: d(amount),
        }
    }

    fn order(total: &str, lines: Vec<Line>) -> OrderDetail {
        OrderDetail {
            buyer: Some("7001".into()),
            currency: "CNY".into(),
            total: d(total),
            lines,
            region: None,
            province_text: None,
            urgent: false,
        }
    }

    fn notice(change: Change) -> Notice {
        Notice {
            shop: "s.myshopify.com".into(),
            event_key: "evt-1".into(),
            order_id: "820982911946154508".into(),
            occurred_at: Utc::now(),
            version: None,
            change,
        }
    }

    fn held(outcome: Outcome) -> HoldReason {
        match outcome {
            Outcome::Held(h) => h.reason,
            other => panic!("not held: {other:?}"),
        }
    }

    #[test]
    fn a_paid_order_maps_by_code_then_by_variant() {
        let o = order(
            "1697.00",
            vec![
                line("1", Some("TEE-W-M"), Some("99"), 2, "199.00", "398.00"),
                line("2", None, Some("4001"), 1, "1299.00", "1299.00"),
            ],
        );
        let Outcome::Event {
            kind,
            event_id,
            order_id,
            ..
        } = translate(
            &notice(Change::Paid { order: Some(o) }),
            "CNY",
            &catalog(),
            Utc::now(),
        )
        else {
            panic!("not an event")
        };
        assert_eq!(event_id.as_str(), "evt-1");
        assert_eq!(order_id.as_str(), "820982911946154508");
        let OrderEventKind::Paid {
            lines,
            total,
            buyer,
            ..
        } = kind
        else {
            panic!()
        };
        assert_eq!(total, Money::parse("1697.00").unwrap());
        assert_eq!(buyer.as_str(), "7001");
        assert_eq!(lines[0].sku.as_str(), "TEE-WHITE");
        assert_eq!(lines[1].sku.as_str(), "JACKET-DOWN");
    }

    #[test]
    fn an_order_discount_not_allocated_to_lines_is_shared_in_whole_cents() {
        // 398.00 + 0.01 of lines against a goods total 20.00 lower.
        let o = order(
            "378.01",
            vec![
                line("1", Some("TEE-W-M"), None, 2, "199.00", "398.00"),
                line("2", Some("TEE-W-M"), None, 1, "0.01", "0.01"),
            ],
        );
        let Outcome::Event {
            kind: OrderEventKind::Paid { lines, total, .. },
            ..
        } = translate(
            &notice(Change::Paid { order: Some(o) }),
            "CNY",
            &catalog(),
            Utc::now(),
        )
        else {
            panic!("not an event")
        };
        assert_eq!(total, Money::parse("378.01").unwrap());
        let sum: Money = lines.iter().map(|l| l.amount).sum();
        assert_eq!(sum, total, "the lines sum to what the buyer paid");
        assert_eq!(lines[0].amount, Money::parse("378.00").unwrap());
        assert_eq!(lines[1].amount, Money::parse("0.01").unwrap());
    }

    #[test]
    fn what_cannot_be_resolved_yet_is_held_with_its_reason() {
        let paid = |lines, currency: &str| {
            let mut o = order("199.00", lines);
            o.currency = currency.into();
            notice(Change::Paid { order: Some(o) })
        };
        let c = catalog();
        let now = Utc::now();
        let tee = || line("1", Some("TEE-W-M"), None, 1, "199.00", "199.00");
        assert_eq!(
            held(translate(
                &paid(
                    vec![line("1", Some("NOPE"), None, 1, "199.00", "199.00")],
                    "CNY"
                ),
                "CNY",
                &c,
                now
            )),
            HoldReason::UnmappedSku
        );
        assert_eq!(
            held(translate(
                &paid(
                    vec![line("1", Some("OLD"), None, 1, "199.00", "199.00")],
                    "CNY"
                ),
                "CNY",
                &c,
                now
            )),
            HoldReason::UnknownSku
        );
        assert_eq!(
            held(translate(&paid(vec![tee()], "USD"), "CNY", &c, now)),
            HoldReason::ForeignCurrency
        );
        assert_eq!(
            held(translate(
                &notice(Change::Paid { order: None }),
                "CNY",
                &c,
                now
            )),
            HoldReason::AwaitingDetail
        );
        let mut future = paid(vec![tee()], "CNY");
        future.occurred_at = now + chrono::Duration::days(400);
        assert_eq!(
            held(translate(&future, "CNY", &c, now)),
            HoldReason::ImplausibleTime
        );
        let mut ancient = paid(vec![tee()], "CNY");
        ancient.occurred_at = DateTime::from_timestamp(0, 0).unwrap();
        assert_eq!(
            held(translate(&ancient, "CNY", &c, now)),
            HoldReason::ImplausibleTime
        );
        // 1 unit at 1.00 does not make 99,999.00 of sales; nor is
        // 4,294,967,296 units an order.
        assert_eq!(
            held(translate(
                &paid(
                    vec![line("1", Some("TEE-W-M"), None, 1, "1.00", "99999.00")],
                    "CNY"
                ),
                "CNY",
                &c,
                now
            )),
            HoldReason::ImplausibleOrder
        );
        assert_eq!(
            held(translate(
                &paid(
                    vec![line(
                        "1",
                        Some("TEE-W-M"),
                        None,
                        4_294_967_296,
                        "0.00",
                        "0.00"
                    )],
                    "CNY"
                ),
                "CNY",
                &c,
                now
            )),
            HoldReason::ImplausibleOrder
        );
        assert_eq!(
            held(translate(
                &paid(
                    vec![line("1", Some("TEE-W-M"), None, 100_001, "0.00", "0.00")],
                    "CNY"
                ),
                "CNY",
                &c,
                now
            )),
            HoldReason::ImplausibleOrder
        );
        assert_eq!(
            held(translate(
                &paid(
                    vec![line("1", Some("TEE-W-M"), None, 1, "199.001", "199.00")],
                    "CNY"
                ),
                "CNY",
                &c,
                now
            )),
            HoldReason::ImplausibleOrder
        );
    }

    #[test]
    fn refunds_cancellations_and_the_rest() {
        let c = catalog();
        let now = Utc::now();
        let refund = notice(Change::Refunded {
            refund_id: "rf-1".into(),
            amount: d("199.00"),
            shipping: d("10.00"),
            lines: vec![RefundedLine {
                line_id: "1".into(),
                quantity: 1,
            }],
        });
        let Outcome::Event {
            kind: OrderEventKind::Refunded { amount, lines, .. },
            ..
        } = translate(&refund, "CNY", &c, now)
        else {
            panic!()
        };
        assert_eq!(
            amount,
            Money::parse("199.00").unwrap(),
            "the goods part only"
        );
        assert_eq!(lines[0].quantity, 1);
        let shipping_only = notice(Change::Refunded {
            refund_id: "rf-2".into(),
            amount: Decimal::ZERO,
            shipping: d("10.00"),
            lines: vec![],
        });
        assert!(matches!(
            translate(&shipping_only, "CNY", &c, now),
            Outcome::Nothing { .. }
        ));
        assert!(matches!(
            translate(&notice(Change::Cancelled { reason: None }), "CNY", &c, now),
            Outcome::Event {
                kind: OrderEventKind::Cancelled,
                ..
            }
        ));
        assert!(matches!(
            translate(&notice(Change::Shipped), "CNY", &c, now),
            Outcome::Event {
                kind: OrderEventKind::Shipped { reference: None },
                ..
            }
        ));
        for change in [
            Change::Created { order: None },
            Change::Ignored {
                why: "refund requested",
            },
        ] {
            assert!(matches!(
                translate(&notice(change), "CNY", &c, now),
                Outcome::Nothing { .. }
            ));
        }
    }

    #[test]
    fn keys_that_are_not_ids_become_stable_digests() {
        assert_eq!(
            event_id("trade_TradePaid:E2021:1617").as_str(),
            "trade_TradePaid:E2021:1617"
        );
        let odd = event_id("msg id with spaces/和中文");
        assert!(odd.as_str().starts_with("k-"));
        assert_eq!(
            odd,
            event_id("msg id with spaces/和中文"),
            "a duplicate maps to the same id"
        );
        assert_ne!(odd, event_id("another"));
    }

    #[test]
    fn guests_count_as_one_buyer_and_odd_buyer_ids_are_digested() {
        let mut o = order("1.00", vec![]);
        o.buyer = None;
        assert_eq!(buyer(&o).as_str(), "guest");
        o.buyer = Some("has space".into());
        assert!(buyer(&o).as_str().starts_with("b-"));
    }
}
