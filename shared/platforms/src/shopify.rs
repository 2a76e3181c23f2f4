//! Shopify webhooks: `X-Shopify-*` headers and a REST resource as the body
//! (an Order for `orders/*`, a Refund for `refunds/create`).
//!
//! [`verify`] checks the HMAC over the raw bytes before anything is read;
//! [`parse`] then turns the delivery into one [`Notice`].
//!
//! The event is the topic header's, never the body's: Shopify's own order
//! samples say `financial_status: "voided"` and carry a `cancelled_at`
//! whatever topic they are served for, so a status read from the body
//! would be wrong for exactly the deliveries the docs show.
//!
//! # When a change happened
//! Each topic takes the body's timestamp that dates its event, and falls
//! back to `X-Shopify-Triggered-At` where the body has none (the docs'
//! refund sample has `created_at: null`):
//! - `orders/create`: `created_at`.
//! - `orders/paid`: `updated_at` (paying is what last changed the order),
//!   else `processed_at`.
//! - `orders/cancelled`: `cancelled_at`, else `updated_at`.
//! - `orders/fulfilled`: `updated_at` (the order carries no single
//!   fulfilment time; the fulfilment that completed it is its last change).
//! - `refunds/create`: `processed_at` (when the money went back, which an
//!   import may date before `created_at`), else `created_at`.
//!
//! `Notice::version` is the order's `updated_at` in epoch milliseconds, so
//! a delivery carrying an older snapshot than one already applied is stale.
//!
//! # Money
//! Always the shop's currency: a `*_set.shop_money` where Shopify sends
//! one, else the plain field of the same name (which is also shop money).
//! Presentment money, what the buyer's browser showed, is never read.

use crate::exact;
use crate::{Change, Delivery, DeliveryError, Line, Notice, OrderDetail, RefundedLine, Region};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use http::HeaderMap;
use rust_decimal::Decimal;
use serde_json::value::RawValue;
use sha2::Sha256;
use std::collections::HashMap;

/// A header under its documented name and the unprefixed one of newer
/// deliveries (`Shopify-Hmac-Sha256`); either is accepted, the documented
/// one first.
struct Header {
    name: &'static str,
    lookup: [&'static str; 2],
}

const HMAC: Header = Header {
    name: "X-Shopify-Hmac-Sha256",
    lookup: ["x-shopify-hmac-sha256", "shopify-hmac-sha256"],
};
const TOPIC: Header = Header {
    name: "X-Shopify-Topic",
    lookup: ["x-shopify-topic", "shopify-topic"],
};
const SHOP_DOMAIN: Header = Header {
    name: "X-Shopify-Shop-Domain",
    lookup: ["x-shopify-shop-domain", "shopify-shop-domain"],
};
const EVENT_ID: Header = Header {
    name: "X-Shopify-Event-Id",
    lookup: ["x-shopify-event-id", "shopify-event-id"],
};
const WEBHOOK_ID: Header = Header {
    name: "X-Shopify-Webhook-Id",
    lookup: ["x-shopify-webhook-id", "shopify-webhook-id"],
};
const TRIGGERED_AT: Header = Header {
    name: "X-Shopify-Triggered-At",
    lookup: ["x-shopify-triggered-at", "shopify-triggered-at"],
};

/// The shop a delivery is for: `X-Shopify-Shop-Domain`, lowercased, which
/// must be `<name>.myshopify.com` (a custom domain is never sent here).
pub fn shop_domain(headers: &HeaderMap) -> Result<String, DeliveryError> {
    let sent = text_header(headers, &SHOP_DOMAIN)?
        .ok_or(DeliveryError::MissingHeader(SHOP_DOMAIN.name))?
        .to_ascii_lowercase();
    let well_formed = sent.strip_suffix(".myshopify.com").is_some_and(|name| {
        !name.is_empty()
            && !name.starts_with('-')
            && !name.ends_with('-')
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    });
    if well_formed {
        Ok(sent)
    } else {
        Err(DeliveryError::shape(
            SHOP_DOMAIN.name,
            format!("{sent:?} is not <name>.myshopify.com"),
        ))
    }
}

/// Checks `X-Shopify-Hmac-Sha256`: base64 of HMAC-SHA256 over the raw body
/// keyed with the app's client secret. `secrets` holds the current secret
/// and, for the hour a rotation takes to reach every delivery, the
/// previous one.
///
/// The header is decoded and its bytes compared in constant time, rather
/// than the base64 text, so surrounding whitespace (Ruby's
/// `Base64.encode64` ends in a newline) does not matter. An empty secret
/// never matches: it is a missing configuration, not a key.
pub fn verify(headers: &HeaderMap, body: &[u8], secrets: &[&[u8]]) -> Result<(), DeliveryError> {
    let sent = HMAC
        .lookup
        .iter()
        .find_map(|name| headers.get(*name))
        .ok_or(DeliveryError::MissingHeader(HMAC.name))?;
    let text = sent.to_str().map_err(|_| DeliveryError::BadSignature)?;
    let tag = STANDARD
        .decode(text.trim())
        .map_err(|_| DeliveryError::BadSignature)?;
    let mut matched = false;
    for secret in secrets.iter().filter(|s| !s.is_empty()) {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(secret).map_err(|_| DeliveryError::BadSignature)?;
        mac.update(body);
        // Every secret is tried even after a match: which one matched
        // must not show in the time taken.
        matched |= mac.verify_slice(&tag).is_ok();
    }
    if matched {
        Ok(())
    } else {
        Err(DeliveryError::BadSignature)
    }
}

/// What a verified delivery says. A topic this product keeps no state for
/// is [`Delivery::Unsubscribed`] without reading the body, so that an app
/// subscribed to more than it needs is acknowledged rather than retried.
pub fn parse(headers: &HeaderMap, body: &[u8]) -> Result<Delivery, DeliveryError> {
    let topic = text_header(headers, &TOPIC)?.ok_or(DeliveryError::MissingHeader(TOPIC.name))?;
    let topic = match topic.to_ascii_lowercase().as_str() {
        "orders/create" => Topic::Created,
        "orders/paid" => Topic::Paid,
        "orders/cancelled" => Topic::Cancelled,
        "orders/fulfilled" => Topic::Fulfilled,
        "refunds/create" => Topic::Refunded,
        _ => {
            return Ok(Delivery::Unsubscribed {
                event: topic.to_owned(),
            });
        }
    };
    let shop = shop_domain(headers)?;
    // The event id is what repeats across duplicate deliveries of one
    // event; deliveries that predate it carry only the webhook id, which
    // every delivery has, so that is the header named when both are absent.
    let event_key = match text_header(headers, &EVENT_ID)? {
        Some(id) => id,
        None => text_header(headers, &WEBHOOK_ID)?
            .ok_or(DeliveryError::MissingHeader(WEBHOOK_ID.name))?,
    }
    .to_owned();
    let triggered_at = text_header(headers, &TRIGGERED_AT)?;
    let body = Obj::root(body)?;
    let when = When {
        body: &body,
        triggered_at,
    };
    let (order_id, occurred_at, change) = match topic {
        Topic::Created => (
            body.id("id")?,
            when.first(&["created_at"])?,
            Change::Created {
                order: Some(order_detail(&body)?),
            },
        ),
        Topic::Paid => (
            body.id("id")?,
            when.first(&["updated_at", "processed_at"])?,
            Change::Paid {
                order: Some(order_detail(&body)?),
            },
        ),
        Topic::Cancelled => (
            body.id("id")?,
            when.first(&["cancelled_at", "updated_at"])?,
            Change::Cancelled {
                reason: body.opt_text("cancel_reason")?.filter(|r| !r.is_empty()),
            },
        ),
        Topic::Fulfilled => (
            body.id("id")?,
            when.first(&["updated_at"])?,
            Change::Shipped,
        ),
        Topic::Refunded => {
            let refund = refund(&body)?;
            (
                refund.order_id,
                when.first(&["processed_at", "created_at"])?,
                refund.change,
            )
        }
    };
    let version = body.opt_time("updated_at")?.map(|t| t.timestamp_millis());
    Ok(Delivery::Notices(vec![Notice {
        shop,
        event_key,
        order_id,
        occurred_at,
        version,
        change,
    }]))
}

#[derive(Clone, Copy)]
enum Topic {
    Created,
    Paid,
    Cancelled,
    Fulfilled,
    Refunded,
}

/// A header's value, trimmed; `None` when absent or blank.
fn text_header<'h>(
    headers: &'h HeaderMap,
    header: &Header,
) -> Result<Option<&'h str>, DeliveryError> {
    for name in header.lookup {
        if let Some(value) = headers.get(name) {
            let text = value
                .to_str()
                .map_err(|_| DeliveryError::shape(header.name, "not visible ASCII"))?
                .trim();
            if !text.is_empty() {
                return Ok(Some(text));
            }
        }
    }
    Ok(None)
}

struct When<'b, 'a> {
    body: &'b Obj<'a>,
    triggered_at: Option<&'b str>,
}

impl When<'_, '_> {
    /// The first of `fields` the body dates, else the delivery's trigger
    /// time.
    fn first(&self, fields: &[&str]) -> Result<DateTime<Utc>, DeliveryError> {
        for field in fields {
            if let Some(t) = self.body.opt_time(field)? {
                return Ok(t);
            }
        }
        match self.triggered_at {
            Some(text) => parse_time(text).map_err(|r| DeliveryError::shape(TRIGGERED_AT.name, r)),
            None => Err(DeliveryError::shape(
                self.body
                    .at(fields.first().copied().unwrap_or("created_at")),
                format!(
                    "none of {} is set, and no {} header",
                    fields.join(", "),
                    TRIGGERED_AT.name
                ),
            )),
        }
    }
}

/// Shopify writes offsets (`2008-01-10T11:00:00-05:00`) and, in headers,
/// nanoseconds and `Z`: both RFC 3339.
fn parse_time(text: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| format!("{text:?} is not an RFC 3339 time: {e}"))
}

/// An order as `orders/create` and `orders/paid` describe it.
///
/// `total` is the order's `subtotal_price` (shop money): Shopify defines
/// it as the price after discounts and before shipping, duties, taxes and
/// tips, which is this field's meaning. The `current_subtotal_price`
/// would already net out later edits and refunds, which arrive as their
/// own refund notices and would then be counted twice. Where an order
/// has no subtotal, the lines' amounts are summed.
fn order_detail(order: &Obj) -> Result<OrderDetail, DeliveryError> {
    let subtotal = order.money("subtotal_price_set", "subtotal_price")?;
    // `currency` is the shop's currency (`presentment_currency` is the
    // buyer's); every shop money below must be in it.
    let currency = match order.opt_text("currency")? {
        Some(code) => code,
        None => subtotal
            .as_ref()
            .and_then(|m| m.currency.clone())
            .ok_or_else(|| DeliveryError::shape(order.at("currency"), "missing"))?,
    };
    if let Some(money) = &subtotal {
        money.in_currency(&currency)?;
    }

    let mut lines = Vec::new();
    for line in order.required_list("line_items")? {
        lines.push(order_line(&line, &currency)?);
    }
    let total = match subtotal {
        Some(money) => money.amount,
        None => {
            let mut sum = Decimal::ZERO;
            for line in &lines {
                sum = add(sum, line.amount, &order.at("line_items"))?;
            }
            sum
        }
    };

    let buyer = match order.obj("customer")? {
        Some(customer) => customer.opt_id("id")?,
        None => None,
    };
    let (region, province_text) = match order.obj("shipping_address")? {
        Some(address) => shipping_region(&address)?,
        None => (None, None),
    };
    let mut urgent = false;
    for shipping in order.list("shipping_lines")? {
        if shipping.opt_bool("is_removed")? == Some(true) {
            continue;
        }
        for field in ["code", "title"] {
            urgent |= shipping.opt_text(field)?.is_some_and(|t| says_urgent(&t));
        }
    }

    Ok(OrderDetail {
        buyer,
        currency,
        total,
        lines,
        region,
        province_text,
        urgent,
    })
}

/// A line's `amount` is what the buyer paid for it: `price × quantity`
/// less its `discount_allocations`, which carry both the line's own
/// discounts and its share of order-level ones (so the lines sum to the
/// order's subtotal).
fn order_line(line: &Obj, currency: &str) -> Result<Line, DeliveryError> {
    let line_id = line.id("id")?;
    let quantity = line.count("quantity")?;
    let price = line
        .money("price_set", "price")?
        .ok_or_else(|| DeliveryError::shape(line.at("price"), "missing"))?;
    price.in_currency(currency)?;
    let mut discount = Decimal::ZERO;
    for allocation in line.list("discount_allocations")? {
        let money = allocation
            .money("amount_set", "amount")?
            .ok_or_else(|| DeliveryError::shape(allocation.at("amount"), "missing"))?;
        money.in_currency(currency)?;
        discount = add(discount, money.amount, &allocation.at("amount"))?;
    }
    let amount = price
        .amount
        .checked_mul(Decimal::from(quantity))
        .and_then(|gross| gross.checked_sub(discount))
        .ok_or_else(|| {
            DeliveryError::shape(line.at("quantity"), "price × quantity overflows a decimal")
        })?;
    Ok(Line {
        line_id,
        sku_code: line.opt_text("sku")?.filter(|s| !s.trim().is_empty()),
        variant_id: line.opt_id("variant_id")?,
        quantity,
        unit_price: price.amount,
        amount,
    })
}

/// The region from the address's codes; for China, where an address may
/// come without a `province_code` (imports, some checkouts), from the
/// province's name.
fn shipping_region(address: &Obj) -> Result<(Option<Region>, Option<String>), DeliveryError> {
    let country = address.opt_text("country_code")?.unwrap_or_default();
    let code = address.opt_text("province_code")?.unwrap_or_default();
    let province = address
        .opt_text("province")?
        .filter(|p| !p.trim().is_empty());
    let region = crate::region::from_codes(&country, &code).or_else(|| {
        if country.trim().eq_ignore_ascii_case("CN") {
            province
                .as_deref()
                .and_then(crate::region::from_china_province)
        } else {
            None
        }
    });
    Ok((region, province))
}

/// Shopify has no urgency flag, so the shipping line's rate name decides:
/// carriers and merchants name express rates in these words (`DHL
/// Express`, `Priority Overnight`, `Next-Day`), and Chinese rates by
/// 加急/特快 or by 顺丰, whose service is the express one of the couriers
/// Chinese shops use.
fn says_urgent(rate: &str) -> bool {
    const WORDS: [&str; 9] = [
        "express",
        "priority",
        "overnight",
        "next-day",
        "next day",
        "nextday",
        "加急",
        "特快",
        "顺丰",
    ];
    let rate = rate.to_lowercase();
    WORDS.iter().any(|w| rate.contains(w))
}

struct Refund {
    order_id: String,
    change: Change,
}

/// A `refunds/create` body: the Refund resource itself, not wrapped in
/// `{"refund": …}` as REST responses are.
///
/// `amount` sums `refund_line_items[].subtotal_set.shop_money` (else the
/// deprecated `subtotal`, a JSON number in webhooks): the refunded goods
/// after their discounts, before tax, which is `total_tax`. Not
/// `transactions[].amount`, which is the money moved (tax and shipping
/// included, and empty when the refund moved none), nor the order
/// adjustments, which are shipping or a discrepancy.
///
/// `shipping` is the refunded shipping before tax: `refund_shipping_lines`
/// from API 2024-10 on, the `shipping_refund` order adjustments before it
/// (written negative, and never both in one version), else a `shipping`
/// object's `amount`.
fn refund(body: &Obj) -> Result<Refund, DeliveryError> {
    let refund_id = body.id("id").map_err(|e| {
        if body.fields.contains_key("refund") {
            DeliveryError::shape(
                "id",
                "missing: the body is wrapped in \"refund\", as a REST response is, not a webhook",
            )
        } else {
            e
        }
    })?;
    let order_id = body.id("order_id")?;

    let mut amount = Decimal::ZERO;
    let mut lines = Vec::new();
    for item in body.list("refund_line_items")? {
        let subtotal = item
            .money("subtotal_set", "subtotal")?
            .ok_or_else(|| DeliveryError::shape(item.at("subtotal"), "missing"))?;
        amount = add(amount, subtotal.amount, &item.at("subtotal"))?;
        lines.push(RefundedLine {
            line_id: item.id("line_item_id")?,
            quantity: item.count("quantity")?,
        });
    }

    let mut shipping = Decimal::ZERO;
    let shipping_lines = body.list("refund_shipping_lines")?;
    if !shipping_lines.is_empty() {
        for line in &shipping_lines {
            let money = line
                .money("subtotal_amount_set", "subtotal_amount")?
                .ok_or_else(|| DeliveryError::shape(line.at("subtotal_amount_set"), "missing"))?;
            shipping = add(
                shipping,
                money.amount.abs(),
                &line.at("subtotal_amount_set"),
            )?;
        }
    } else {
        let mut adjusted = false;
        for adjustment in body.list("order_adjustments")? {
            if adjustment.opt_text("kind")?.as_deref() != Some("shipping_refund") {
                continue;
            }
            let money = adjustment
                .money("amount_set", "amount")?
                .ok_or_else(|| DeliveryError::shape(adjustment.at("amount"), "missing"))?;
            // Documented as the refunded shipping, sent as `"-30.00"`; the
            // sign is dropped so that a positive one reads the same.
            shipping = add(shipping, money.amount.abs(), &adjustment.at("amount"))?;
            adjusted = true;
        }
        if !adjusted && let Some(object) = body.obj("shipping")? {
            shipping = object.opt_decimal("amount")?.unwrap_or_default().abs();
        }
    }

    Ok(Refund {
        order_id,
        change: Change::Refunded {
            refund_id,
            amount,
            shipping,
            lines,
        },
    })
}

fn add(sum: Decimal, more: Decimal, field: &str) -> Result<Decimal, DeliveryError> {
    sum.checked_add(more)
        .ok_or_else(|| DeliveryError::shape(field, "the sum overflows a decimal"))
}

/// An amount of shop money, with the currency it says it is in and where
/// that was written.
struct Money {
    amount: Decimal,
    currency: Option<String>,
    currency_field: String,
}

impl Money {
    fn in_currency(&self, currency: &str) -> Result<(), DeliveryError> {
        match &self.currency {
            Some(code) if !code.eq_ignore_ascii_case(currency) => Err(DeliveryError::shape(
                self.currency_field.clone(),
                format!("{code} is not the shop's currency {currency}"),
            )),
            _ => Ok(()),
        }
    }
}

/// One JSON object of the body with its values still as the text Shopify
/// sent (so money and ids are read exactly), and its place in the body,
/// so that an error names `line_items[2].price`.
struct Obj<'a> {
    path: String,
    fields: HashMap<String, &'a RawValue>,
}

impl<'a> Obj<'a> {
    fn root(body: &'a [u8]) -> Result<Self, DeliveryError> {
        let text = std::str::from_utf8(body)
            .map_err(|e| DeliveryError::shape("body", format!("not UTF-8: {e}")))?;
        let fields = serde_json::from_str(text)
            .map_err(|e| DeliveryError::shape("body", format!("not a JSON object: {e}")))?;
        Ok(Self {
            path: String::new(),
            fields,
        })
    }

    fn nested(raw: &'a RawValue, path: String) -> Result<Self, DeliveryError> {
        match serde_json::from_str(raw.get()) {
            Ok(fields) => Ok(Self { path, fields }),
            Err(_) => Err(DeliveryError::shape(path, "not an object")),
        }
    }

    fn at(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_owned()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    /// The field's text; `None` when absent or `null`, which Shopify
    /// writes interchangeably for "no value".
    fn get(&self, key: &str) -> Option<&'a RawValue> {
        self.fields
            .get(key)
            .copied()
            .filter(|raw| raw.get() != "null")
    }

    fn required(&self, key: &str) -> Result<&'a RawValue, DeliveryError> {
        match self.fields.get(key) {
            None => Err(DeliveryError::shape(self.at(key), "missing")),
            Some(raw) if raw.get() == "null" => Err(DeliveryError::shape(self.at(key), "null")),
            Some(raw) => Ok(raw),
        }
    }

    fn id(&self, key: &str) -> Result<String, DeliveryError> {
        exact::id_from_raw(self.required(key)?.get())
            .map_err(|r| DeliveryError::shape(self.at(key), r))
    }

    fn opt_id(&self, key: &str) -> Result<Option<String>, DeliveryError> {
        self.get(key)
            .map(|raw| {
                exact::id_from_raw(raw.get()).map_err(|r| DeliveryError::shape(self.at(key), r))
            })
            .transpose()
    }

    fn opt_decimal(&self, key: &str) -> Result<Option<Decimal>, DeliveryError> {
        self.get(key)
            .map(|raw| {
                exact::decimal_from_raw(raw.get())
                    .map_err(|r| DeliveryError::shape(self.at(key), r))
            })
            .transpose()
    }

    fn opt_text(&self, key: &str) -> Result<Option<String>, DeliveryError> {
        self.get(key)
            .map(|raw| {
                serde_json::from_str::<String>(raw.get())
                    .map_err(|_| DeliveryError::shape(self.at(key), "not a string"))
            })
            .transpose()
    }

    fn opt_bool(&self, key: &str) -> Result<Option<bool>, DeliveryError> {
        self.get(key)
            .map(|raw| {
                serde_json::from_str::<bool>(raw.get())
                    .map_err(|_| DeliveryError::shape(self.at(key), "not a boolean"))
            })
            .transpose()
    }

    fn opt_time(&self, key: &str) -> Result<Option<DateTime<Utc>>, DeliveryError> {
        self.opt_text(key)?
            .map(|text| parse_time(&text).map_err(|r| DeliveryError::shape(self.at(key), r)))
            .transpose()
    }

    /// A whole number of items: a JSON integer (or one quoted).
    fn count(&self, key: &str) -> Result<u64, DeliveryError> {
        let raw = self.required(key)?.get();
        let digits = if raw.starts_with('"') {
            serde_json::from_str::<String>(raw).unwrap_or_default()
        } else {
            raw.to_owned()
        };
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(DeliveryError::shape(
                self.at(key),
                format!("{raw} is not a whole number"),
            ));
        }
        digits
            .parse()
            .map_err(|_| DeliveryError::shape(self.at(key), format!("{raw} is too large")))
    }

    fn obj(&self, key: &str) -> Result<Option<Obj<'a>>, DeliveryError> {
        self.get(key)
            .map(|raw| Obj::nested(raw, self.at(key)))
            .transpose()
    }

    /// The objects of an array; none when it is absent or `null`.
    fn list(&self, key: &str) -> Result<Vec<Obj<'a>>, DeliveryError> {
        let Some(raw) = self.get(key) else {
            return Ok(Vec::new());
        };
        let items: Vec<&'a RawValue> = serde_json::from_str(raw.get())
            .map_err(|_| DeliveryError::shape(self.at(key), "not an array"))?;
        items
            .into_iter()
            .enumerate()
            .map(|(i, item)| Obj::nested(item, format!("{}[{i}]", self.at(key))))
            .collect()
    }

    fn required_list(&self, key: &str) -> Result<Vec<Obj<'a>>, DeliveryError> {
        self.required(key)?;
        self.list(key)
    }

    /// Shop money from `set_key` (`{"shop_money": {"amount", "currency_code"}}`),
    /// else from the plain `plain_key`. Amounts may be strings or numbers
    /// (refund subtotals are numbers) and are read exactly either way.
    fn money(&self, set_key: &str, plain_key: &str) -> Result<Option<Money>, DeliveryError> {
        if let Some(set) = self.obj(set_key)? {
            let shop = set
                .obj("shop_money")?
                .ok_or_else(|| DeliveryError::shape(set.at("shop_money"), "missing"))?;
            let amount = exact::decimal_from_raw(shop.required("amount")?.get())
                .map_err(|r| DeliveryError::shape(shop.at("amount"), r))?;
            // Transactions' money sets spell it `currency`.
            let (currency, currency_field) = match shop.opt_text("currency_code")? {
                Some(code) => (Some(code), shop.at("currency_code")),
                None => (shop.opt_text("currency")?, shop.at("currency")),
            };
            return Ok(Some(Money {
                amount,
                currency,
                currency_field,
            }));
        }
        Ok(self.opt_decimal(plain_key)?.map(|amount| Money {
            amount,
            currency: None,
            currency_field: self.at(plain_key),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;
    use std::str::FromStr;

    fn dec(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    fn time(s: &str) -> DateTime<Utc> {
        parse_time(s).unwrap()
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    fn delivery(topic: &str) -> HeaderMap {
        headers(&[
            ("X-Shopify-Topic", topic),
            ("X-Shopify-Shop-Domain", "Brand-Store.myshopify.com"),
            ("X-Shopify-Event-Id", "98880550-7158-44d4-b7cd-2c97c8a091b5"),
            (
                "X-Shopify-Webhook-Id",
                "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043",
            ),
            ("X-Shopify-Triggered-At", "2024-03-01T15:00:09.123456789Z"),
            ("X-Shopify-API-Version", "2024-10"),
        ])
    }

    fn notice(topic: &str, body: &str) -> Notice {
        match parse(&delivery(topic), body.as_bytes()) {
            Ok(Delivery::Notices(mut notices)) if notices.len() == 1 => notices.remove(0),
            other => panic!("{topic}: {other:?}"),
        }
    }

    fn shape_field(topic: &str, body: &str) -> String {
        match parse(&delivery(topic), body.as_bytes()) {
            Err(DeliveryError::Shape { field, .. }) => field,
            other => panic!("{topic}: {other:?}"),
        }
    }

    fn order(notice: &Notice) -> &OrderDetail {
        match &notice.change {
            Change::Created { order: Some(order) } | Change::Paid { order: Some(order) } => order,
            other => panic!("{other:?}"),
        }
    }

    // Shaped as the documented Order resource: ids past 2^53, money as
    // strings with shop and presentment sets (a EUR buyer in a USD shop),
    // one line discounted, and fields this module does not read.
    const ORDER: &str = r#"{
        "id": 820982911946154508,
        "admin_graphql_api_id": "gid://shopify/Order/820982911946154508",
        "created_at": "2024-03-01T10:00:00-05:00",
        "updated_at": "2024-03-01T10:00:07-05:00",
        "processed_at": "2024-03-01T10:00:01-05:00",
        "cancelled_at": null,
        "cancel_reason": null,
        "financial_status": "voided",
        "currency": "USD",
        "presentment_currency": "EUR",
        "subtotal_price": "270.00",
        "subtotal_price_set": {
            "shop_money": {"amount": "270.00", "currency_code": "USD"},
            "presentment_money": {"amount": "248.40", "currency_code": "EUR"}
        },
        "current_subtotal_price": "180.00",
        "total_price": "280.00",
        "customer": {"id": 115310627314723954, "email": "jon@example.com"},
        "line_items": [
            {
                "id": 866550311766439020,
                "variant_id": 808950810,
                "sku": "IPOD2008PINK",
                "quantity": 2,
                "price": "100.00",
                "price_set": {
                    "shop_money": {"amount": "100.00", "currency_code": "USD"},
                    "presentment_money": {"amount": "92.00", "currency_code": "EUR"}
                },
                "discount_allocations": [{
                    "amount": "20.00",
                    "discount_application_index": 0,
                    "amount_set": {
                        "shop_money": {"amount": "20.00", "currency_code": "USD"},
                        "presentment_money": {"amount": "18.40", "currency_code": "EUR"}
                    }
                }]
            },
            {
                "id": 141249953214522974,
                "variant_id": null,
                "sku": "",
                "quantity": 1,
                "price": "90.00",
                "price_set": {
                    "shop_money": {"amount": "90.00", "currency_code": "USD"},
                    "presentment_money": {"amount": "82.80", "currency_code": "EUR"}
                },
                "discount_allocations": [],
                "sales_line_item_group_id": null
            }
        ],
        "shipping_address": {
            "country": "China", "country_code": "CN",
            "province": "Zhejiang", "province_code": "ZJ"
        },
        "shipping_lines": [
            {"code": "Standard", "title": "Standard Shipping", "price": "10.00"}
        ],
        "merchant_business_entity_id": "MTU0ODM4MDAwOQ",
        "total_cash_rounding_payment_adjustment_set": null
    }"#;

    #[test]
    fn shopify_test_vector_verifies() {
        let body = br#"{"foo": "bar"}"#;
        assert_eq!(body.len(), 14);
        let secret: &[u8] = b"test_secret_key";
        let signed = headers(&[(
            "X-Shopify-Hmac-Sha256",
            "B23tXN681gZ0qIWNRrgtzBE9XSDo5yaUu6wfmhu3a7g=",
        )]);
        assert_eq!(verify(&signed, body, &[secret]), Ok(()));
        // Re-serialised JSON is other bytes, so another signature.
        assert_eq!(
            verify(&signed, br#"{"foo":"bar"}"#, &[secret]),
            Err(DeliveryError::BadSignature)
        );
        assert_eq!(
            verify(&signed, body, &[b"other_secret"]),
            Err(DeliveryError::BadSignature)
        );
    }

    #[test]
    fn signature_encoding_names_and_rotation() {
        let body = br#"{"foo": "bar"}"#;
        let secret: &[u8] = b"test_secret_key";
        let b64 = "B23tXN681gZ0qIWNRrgtzBE9XSDo5yaUu6wfmhu3a7g=";
        // Whitespace around the value (a header cannot carry the newline
        // itself), the unprefixed name, and any case of either name.
        for (name, value) in [
            ("x-shopify-hmac-sha256", format!(" {b64}\t")),
            ("shopify-hmac-sha256", b64.to_owned()),
            ("Shopify-Hmac-SHA256", b64.to_owned()),
            ("X-SHOPIFY-HMAC-SHA256", b64.to_owned()),
        ] {
            assert_eq!(
                verify(&headers(&[(name, &value)]), body, &[secret]),
                Ok(()),
                "{name}"
            );
        }
        let signed = headers(&[("X-Shopify-Hmac-Sha256", b64)]);
        assert_eq!(verify(&signed, body, &[b"old_secret", secret]), Ok(()));
        assert_eq!(verify(&signed, body, &[secret, b"new_secret"]), Ok(()));
        assert_eq!(verify(&signed, body, &[]), Err(DeliveryError::BadSignature));
        assert_eq!(
            verify(&signed, body, &[b""]),
            Err(DeliveryError::BadSignature)
        );

        let hex = hex::encode(STANDARD.decode(b64).unwrap());
        for bad in [
            hex.as_str(),
            "not base64!",
            "",
            "B23tXN681gZ0qIWNRrgtzBE9XSDo5yaUu6wfmhu3",
            "AAAA",
        ] {
            assert_eq!(
                verify(&headers(&[("X-Shopify-Hmac-Sha256", bad)]), body, &[secret]),
                Err(DeliveryError::BadSignature),
                "{bad}"
            );
        }
        assert_eq!(
            verify(&HeaderMap::new(), body, &[secret]),
            Err(DeliveryError::MissingHeader("X-Shopify-Hmac-Sha256"))
        );
    }

    #[test]
    fn shop_domain_is_a_myshopify_name() {
        assert_eq!(
            shop_domain(&headers(&[(
                "X-Shopify-Shop-Domain",
                "Brand-Store.MyShopify.com"
            )])),
            Ok("brand-store.myshopify.com".to_owned())
        );
        assert_eq!(
            shop_domain(&headers(&[("shopify-shop-domain", "shop1.myshopify.com")])),
            Ok("shop1.myshopify.com".to_owned())
        );
        for bad in [
            "brand.com",
            ".myshopify.com",
            "-x.myshopify.com",
            "a.b.myshopify.com",
            "shop.myshopify.com.evil.com",
            "https://shop.myshopify.com",
        ] {
            assert!(
                matches!(
                    shop_domain(&headers(&[("X-Shopify-Shop-Domain", bad)])),
                    Err(DeliveryError::Shape { .. })
                ),
                "{bad}"
            );
        }
        assert_eq!(
            shop_domain(&HeaderMap::new()),
            Err(DeliveryError::MissingHeader("X-Shopify-Shop-Domain"))
        );
    }

    #[test]
    fn orders_create_reads_lines_in_shop_money() {
        let n = notice("orders/create", ORDER);
        assert_eq!(n.shop, "brand-store.myshopify.com");
        assert_eq!(n.event_key, "98880550-7158-44d4-b7cd-2c97c8a091b5");
        assert_eq!(n.order_id, "820982911946154508");
        assert_eq!(n.occurred_at, time("2024-03-01T15:00:00Z"));
        assert_eq!(
            n.version,
            Some(time("2024-03-01T15:00:07Z").timestamp_millis())
        );
        let order = order(&n);
        assert!(matches!(n.change, Change::Created { .. }));
        assert_eq!(order.currency, "USD");
        assert_eq!(order.total, dec("270.00"));
        assert_eq!(order.buyer.as_deref(), Some("115310627314723954"));
        assert_eq!(
            order.lines,
            vec![
                Line {
                    line_id: "866550311766439020".into(),
                    sku_code: Some("IPOD2008PINK".into()),
                    variant_id: Some("808950810".into()),
                    quantity: 2,
                    unit_price: dec("100.00"),
                    amount: dec("180.00"),
                },
                Line {
                    line_id: "141249953214522974".into(),
                    sku_code: None,
                    variant_id: None,
                    quantity: 1,
                    unit_price: dec("90.00"),
                    amount: dec("90.00"),
                },
            ]
        );
        let sum: Decimal = order.lines.iter().map(|l| l.amount).sum();
        assert_eq!(sum, order.total);
        assert_eq!(order.region.as_ref().map(Region::code), Some("CN-ZJ"));
        assert_eq!(order.province_text.as_deref(), Some("Zhejiang"));
        assert!(!order.urgent);
    }

    #[test]
    fn orders_paid_is_dated_by_its_last_update() {
        let n = notice("orders/paid", ORDER);
        assert!(matches!(n.change, Change::Paid { order: Some(_) }));
        assert_eq!(n.occurred_at, time("2024-03-01T15:00:07Z"));
        assert_eq!(order(&n).total, dec("270.00"));
    }

    #[test]
    fn the_topic_not_the_body_says_what_happened() {
        // The body says voided and cancelled, as the docs' samples do.
        let body = ORDER
            .replace(
                r#""cancelled_at": null"#,
                r#""cancelled_at": "2024-03-02T08:00:00+08:00""#,
            )
            .replace(r#""cancel_reason": null"#, r#""cancel_reason": "customer""#);
        assert!(matches!(
            notice("orders/create", &body).change,
            Change::Created { .. }
        ));
        let cancelled = notice("orders/cancelled", &body);
        assert_eq!(
            cancelled.change,
            Change::Cancelled {
                reason: Some("customer".into())
            }
        );
        assert_eq!(cancelled.occurred_at, time("2024-03-02T00:00:00Z"));
        // Without `cancelled_at`, the last update dates it.
        let n = notice("orders/cancelled", ORDER);
        assert_eq!(n.change, Change::Cancelled { reason: None });
        assert_eq!(n.occurred_at, time("2024-03-01T15:00:07Z"));

        let shipped = notice("orders/fulfilled", ORDER);
        assert_eq!(shipped.change, Change::Shipped);
        assert_eq!(shipped.order_id, "820982911946154508");
        assert_eq!(shipped.occurred_at, time("2024-03-01T15:00:07Z"));
    }

    #[test]
    fn refunds_create_reads_number_subtotals_exactly() {
        // Subtotals are JSON numbers in webhooks; 195.66 + 195.67 through
        // f64 would not be 391.33.
        let body = r#"{
            "id": 890088186047892319,
            "order_id": 820982911946154508,
            "created_at": "2024-04-02T08:59:11-05:00",
            "processed_at": "2024-04-02T08:59:12-05:00",
            "refund_line_items": [
                {"id": 104689539, "line_item_id": 703073504, "quantity": 1,
                 "subtotal": 195.66, "total_tax": 3.98,
                 "subtotal_set": {"shop_money": {"amount": "195.66", "currency_code": "USD"},
                                  "presentment_money": {"amount": "180.00", "currency_code": "EUR"}}},
                {"id": 709875399, "line_item_id": 466157049, "quantity": 2,
                 "subtotal": 195.67, "total_tax": 3.98}
            ],
            "transactions": [{"amount": "209.00", "kind": "refund", "status": "success"}],
            "order_adjustments": [
                {"kind": "shipping_refund", "amount": "-30.00", "tax_amount": "0.00",
                 "amount_set": {"shop_money": {"amount": "-30.00", "currency_code": "USD"}}},
                {"kind": "refund_discrepancy", "amount": "10.00"}
            ]
        }"#;
        let n = notice("refunds/create", body);
        assert_eq!(n.order_id, "820982911946154508");
        assert_eq!(n.occurred_at, time("2024-04-02T13:59:12Z"));
        assert_eq!(n.version, None);
        assert_eq!(
            n.change,
            Change::Refunded {
                refund_id: "890088186047892319".into(),
                amount: dec("391.33"),
                shipping: dec("30.00"),
                lines: vec![
                    RefundedLine {
                        line_id: "703073504".into(),
                        quantity: 1
                    },
                    RefundedLine {
                        line_id: "466157049".into(),
                        quantity: 2
                    },
                ],
            }
        );
    }

    #[test]
    fn refund_shipping_lines_and_integer_subtotals() {
        // API 2024-10 on: shipping in `refund_shipping_lines`; `199` is how
        // a JavaScript round trip writes `199.0`.
        let body = r#"{
            "id": 1, "order_id": 2, "created_at": null, "processed_at": null,
            "refund_line_items": [{"line_item_id": 3, "quantity": 1, "subtotal": 199, "total_tax": 0}],
            "refund_shipping_lines": [{"id": 7, "shipping_line_id": 8,
                "subtotal_amount_set": {"shop_money": {"amount": 5, "currency_code": "CAD"}}}],
            "order_adjustments": []
        }"#;
        let n = notice("refunds/create", body);
        // Neither time is set: the delivery's trigger time dates it.
        assert_eq!(n.occurred_at, time("2024-03-01T15:00:09.123456789Z"));
        match n.change {
            Change::Refunded {
                amount, shipping, ..
            } => {
                assert_eq!(amount, dec("199"));
                assert_eq!(shipping, dec("5"));
            }
            other => panic!("{other:?}"),
        }
        let none = r#"{"id": 1, "order_id": 2, "refund_line_items": [], "created_at": "2024-01-01T00:00:00Z"}"#;
        match notice("refunds/create", none).change {
            Change::Refunded {
                amount,
                shipping,
                lines,
                ..
            } => {
                assert_eq!((amount, shipping), (Decimal::ZERO, Decimal::ZERO));
                assert!(lines.is_empty());
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn ids_are_kept_as_sent() {
        // Past 2^53, and past u64.
        let big = ORDER.replace("820982911946154508", "18446744073709551616999");
        assert_eq!(
            notice("orders/create", &big).order_id,
            "18446744073709551616999"
        );
        // Already damaged by a JavaScript round trip (the gid says …319):
        // kept as it came, not "fixed" from the gid.
        let body = r#"{"id": 890088186047892400, "order_id": 820982911946154500,
            "admin_graphql_api_id": "gid://shopify/Refund/890088186047892319",
            "created_at": null, "refund_line_items": []}"#;
        let n = notice("refunds/create", body);
        assert_eq!(n.order_id, "820982911946154500");
        assert!(
            matches!(n.change, Change::Refunded { ref refund_id, .. } if refund_id == "890088186047892400")
        );
        // An id in float notation is not one Shopify issued.
        assert_eq!(
            shape_field(
                "orders/create",
                &ORDER.replace("820982911946154508,", "8.2e17,")
            ),
            "id"
        );
    }

    #[test]
    fn other_topics_are_acknowledged_unread() {
        for topic in ["orders/updated", "products/update", "app/uninstalled"] {
            assert_eq!(
                parse(&delivery(topic), b"not even json"),
                Ok(Delivery::Unsubscribed {
                    event: topic.to_owned()
                })
            );
        }
    }

    #[test]
    fn headers_the_notice_needs() {
        let body = ORDER.as_bytes();
        let mut h = delivery("orders/create");
        h.remove("x-shopify-topic");
        assert_eq!(
            parse(&h, body),
            Err(DeliveryError::MissingHeader("X-Shopify-Topic"))
        );

        let mut h = delivery("orders/create");
        h.remove("x-shopify-shop-domain");
        assert_eq!(
            parse(&h, body),
            Err(DeliveryError::MissingHeader("X-Shopify-Shop-Domain"))
        );

        let mut h = delivery("orders/create");
        h.remove("x-shopify-event-id");
        let Ok(Delivery::Notices(n)) = parse(&h, body) else {
            panic!()
        };
        assert_eq!(n[0].event_key, "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043");
        h.remove("x-shopify-webhook-id");
        assert_eq!(
            parse(&h, body),
            Err(DeliveryError::MissingHeader("X-Shopify-Webhook-Id"))
        );

        // The unprefixed names alone.
        let h = headers(&[
            ("shopify-topic", "orders/paid"),
            ("shopify-shop-domain", "shop1.myshopify.com"),
            ("shopify-webhook-id", "w-1"),
            ("shopify-event-id", "e-1"),
        ]);
        let Ok(Delivery::Notices(n)) = parse(&h, body) else {
            panic!()
        };
        assert_eq!(
            (n[0].shop.as_str(), n[0].event_key.as_str()),
            ("shop1.myshopify.com", "e-1")
        );
    }

    #[test]
    fn a_time_is_required_somewhere() {
        let body = ORDER.replace(
            r#""created_at": "2024-03-01T10:00:00-05:00""#,
            r#""created_at": null"#,
        );
        let mut h = delivery("orders/create");
        let Ok(Delivery::Notices(n)) = parse(&h, body.as_bytes()) else {
            panic!()
        };
        assert_eq!(n[0].occurred_at, time("2024-03-01T15:00:09.123456789Z"));
        h.remove("x-shopify-triggered-at");
        assert!(matches!(
            parse(&h, body.as_bytes()),
            Err(DeliveryError::Shape { field, .. }) if field == "created_at"
        ));
        let bad = ORDER.replace("2024-03-01T10:00:00-05:00", "1 March 2024");
        assert_eq!(shape_field("orders/create", &bad), "created_at");
    }

    #[test]
    fn shape_errors_name_the_field() {
        assert_eq!(shape_field("orders/create", "not json"), "body");
        assert_eq!(shape_field("orders/create", "[1, 2]"), "body");
        assert_eq!(shape_field("orders/create", "{}"), "id");
        let no_price = ORDER.replacen(r#""price": "90.00","#, "", 1).replacen(
            r#""price_set": {
                    "shop_money": {"amount": "90.00", "currency_code": "USD"},
                    "presentment_money": {"amount": "82.80", "currency_code": "EUR"}
                },"#,
            "",
            1,
        );
        assert_eq!(
            shape_field("orders/create", &no_price),
            "line_items[1].price"
        );
        let bad_allocation = ORDER.replacen(
            r#"{"amount": "20.00", "currency_code": "USD"}"#,
            r#"{"amount": "twenty"}"#,
            1,
        );
        assert_eq!(
            shape_field("orders/create", &bad_allocation),
            "line_items[0].discount_allocations[0].amount_set.shop_money.amount"
        );
        let fractional = ORDER.replacen(r#""quantity": 2"#, r#""quantity": 1.5"#, 1);
        assert_eq!(
            shape_field("orders/create", &fractional),
            "line_items[0].quantity"
        );
        let no_lines = ORDER.replacen(r#""line_items""#, r#""items""#, 1);
        assert_eq!(shape_field("orders/paid", &no_lines), "line_items");
        let bad_address = ORDER.replacen(r#""province": "Zhejiang""#, r#""province": 33"#, 1);
        assert_eq!(
            shape_field("orders/create", &bad_address),
            "shipping_address.province"
        );
        // Money in another currency than the shop's is not shop money.
        let presentment = ORDER.replacen(
            r#"{"amount": "100.00", "currency_code": "USD"}"#,
            r#"{"amount": "92.00", "currency_code": "EUR"}"#,
            1,
        );
        assert_eq!(
            shape_field("orders/create", &presentment),
            "line_items[0].price_set.shop_money.currency_code"
        );
        let refund = r#"{"id": 1, "order_id": 2, "refund_line_items": [{"line_item_id": 3, "quantity": 1}]}"#;
        assert_eq!(
            shape_field("refunds/create", refund),
            "refund_line_items[0].subtotal"
        );
        // A REST response is wrapped; a webhook is not.
        let wrapped = r#"{"refund": {"id": 1, "order_id": 2}}"#;
        assert_eq!(shape_field("refunds/create", wrapped), "id");
    }

    #[test]
    fn plain_fields_stand_in_for_missing_sets() {
        let body = r#"{
            "id": 5, "created_at": "2024-01-01T00:00:00Z", "currency": "CNY",
            "line_items": [{"id": 6, "quantity": 3, "price": "19.90",
                            "discount_allocations": [{"amount": "0.70"}]}]
        }"#;
        let n = notice("orders/create", body);
        let order = order(&n);
        assert_eq!(order.lines[0].amount, dec("59.00"));
        // No subtotal: the lines are summed.
        assert_eq!(order.total, dec("59.00"));
        assert_eq!(order.buyer, None);
        assert_eq!(
            (order.region.clone(), order.province_text.clone()),
            (None, None)
        );
        assert_eq!(n.version, None);
    }

    #[test]
    fn regions_from_codes_or_chinese_names() {
        let with = |address: &str| {
            let body = ORDER.replacen(
                r#"{
            "country": "China", "country_code": "CN",
            "province": "Zhejiang", "province_code": "ZJ"
        }"#,
                address,
                1,
            );
            let n = notice("orders/create", &body);
            let order = order(&n);
            (
                order.region.as_ref().map(|r| r.code().to_owned()),
                order.province_text.clone(),
            )
        };
        assert_eq!(
            with(r#"{"country_code": "CN", "province": "广东省", "province_code": null}"#),
            (Some("CN-GD".into()), Some("广东省".into()))
        );
        assert_eq!(
            with(r#"{"country_code": "CN", "province": "Xizang", "province_code": "YZ"}"#),
            (Some("CN-XZ".into()), Some("Xizang".into()))
        );
        assert_eq!(
            with(r#"{"country_code": "US", "province": "Kentucky", "province_code": "KY"}"#),
            (Some("US-KY".into()), Some("Kentucky".into()))
        );
        assert_eq!(
            with(r#"{"country_code": "CN", "province": "火星", "province_code": ""}"#),
            (None, Some("火星".into()))
        );
        assert_eq!(with("null"), (None, None));
    }

    #[test]
    fn urgency_comes_from_the_shipping_rate() {
        let with = |line: &str| {
            let body = ORDER.replacen(
                r#"{"code": "Standard", "title": "Standard Shipping", "price": "10.00"}"#,
                line,
                1,
            );
            order(&notice("orders/create", &body)).urgent
        };
        for urgent in [
            r#"{"code": "DHL EXPRESS", "title": "International"}"#,
            r#"{"code": null, "title": "Priority Overnight"}"#,
            r#"{"code": "next-day", "title": null}"#,
            r#"{"code": "SF", "title": "顺丰速运"}"#,
            r#"{"title": "加急配送"}"#,
            r#"{"title": "EMS 特快专递"}"#,
        ] {
            assert!(with(urgent), "{urgent}");
        }
        for not in [
            r#"{"code": "Standard", "title": "Economy"}"#,
            r#"{"title": "Express", "is_removed": true}"#,
            r#"{}"#,
        ] {
            assert!(!with(not), "{not}");
        }
    }
}
