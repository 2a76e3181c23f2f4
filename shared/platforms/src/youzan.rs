//! 有赞 (Youzan / youzanyun) message pushes.
//!
//! # The push
//! One push is one JSON object: `client_id`, `id` (the order's `tid`),
//! `kdt_id` (the shop), `type`, `version`, `status`, `test`, `sign` and
//! `msg`, the message itself as URL-encoded JSON (`+` for spaces). `test:
//! true` is the platform checking the endpoint. Every push is answered with
//! [`ACK`].
//!
//! Two signatures coexist. Current pushes send an `Event-Sign` header, the
//! lowercase hex MD5 of client id + raw body + client secret. Older ones
//! send none and carry `sign` = MD5(client id + `msg` + client secret) in
//! the body, `msg` taken as the JSON string's value, still URL-encoded.
//! [`verify`] checks the header when it is sent (a wrong one is not
//! rescued by the body's `sign`) and the in-body `sign` only when it is not.
//!
//! # Types
//! | `type` | change |
//! |---|---|
//! | `trade_TradeCreate` | [`Change::Created`] with the detail of `msg.full_order_info` |
//! | `trade_TradePaid`, `trade_TradeBuyerPay` | [`Change::Paid`] with the detail |
//! | `trade_TradeClose` | [`Change::Cancelled`] (`close_reason`) |
//! | `trade_TradeSellerShip` | [`Change::Shipped`] |
//! | `trade_TradePartlySellerShip`, `trade_TradeSuccess` | [`Change::Ignored`] |
//! | `trade_refund_RefundSuccess` | [`Change::Refunded`] |
//! | any other `trade_refund_*` | [`Change::Ignored`]: requested, agreed or closed refunds move no money |
//! | `TRADE_ORDER_STATE` (legacy) | by its `status`, without detail (see below) |
//! | `TRADE` (legacy v1) | by `msg.trade.status`, with the detail of `msg.trade` |
//! | anything else | [`Delivery::Unsubscribed`] |
//!
//! The refund-success type is `trade_refund_RefundSuccess` (the youzanyun
//! message `MSG/201`, also noted by a PHP SDK as the name that really
//! arrives where the documentation once printed another). Its message names
//! the refund (`refund_id`), its amount (`refunded_fee`) and the order lines
//! (`oids`) but not how many of each come back nor the shipping part, so
//! `amount` is `refunded_fee` as sent, `shipping` is zero and `lines` is
//! empty.
//!
//! The legacy `TRADE_ORDER_STATE` message carries only the order's new
//! `status`, its `payment` and `update_time`: `WAIT_BUYER_PAY` is created,
//! `TRADE_PAID`, `WAIT_CONFIRM` and `WAIT_SELLER_SEND_GOODS` paid (both
//! without detail: intake fetches the order), `WAIT_BUYER_CONFIRM_GOODS`
//! shipped, `TRADE_BUYER_SIGNED` and `TRADE_SUCCESS` completed (ignored),
//! `TRADE_CLOSED` and `TRADE_CLOSED_BY_USER` cancelled; another status is
//! unsubscribed. The legacy `TRADE` message carries the whole order and is
//! mapped by the same statuses, with the detail.
//!
//! # Amounts, times, ids
//! Money is yuan, as strings or numbers, read exactly. Times are local
//! (`2021-03-31 10:20:30`, no zone) and read in the brand's time zone; a
//! local time that happens twice (a DST fall-back) or not at all (a
//! spring-forward gap) is the earlier of its two readings. `version` is
//! the envelope's, in seconds: a higher one supersedes a lower one of the
//! same order, and it stands in for a message's time where the message
//! states none. Ids such as `oid` are strings in current messages and
//! numbers in old ones; both keep every digit.
//!
//! # An order's detail
//! - a line is one `orders[]` entry: `oid`, `outer_sku_id` (else
//!   `outer_item_id`) as the merchant's code, `sku_id` (`0` is none),
//!   `num`, `price` as the unit price and `payment` (what the buyer paid
//!   for the line after discounts) as its amount.
//! - `total` = `pay_info.payment` − `pay_info.post_fee` (legacy: the
//!   trade's `payment` − `post_fee`): the buyer's final payment less the
//!   shipping in it.
//! - `buyer` is `buyer_info.yz_open_id`, else `buyer_id`, else `fans_id`
//!   (legacy: `fans_info.buyer_id`, else the trade's `buyer_id`, else
//!   `fans_info.fans_id`).
//! - the province is `address_info.delivery_province` (legacy:
//!   `receiver_state`).
//! - `urgent` is same-city delivery (`order_info.express_type` 2), the only
//!   delivery 有赞 promises within hours; legacy orders are never urgent.

use std::borrow::Cow;

use chrono::{DateTime, Datelike, LocalResult, NaiveDateTime, Offset, TimeDelta, TimeZone, Utc};
use chrono_tz::Tz;
use rust_decimal::Decimal;
use subtle::{Choice, ConstantTimeEq};

use crate::fields::{Fields, md5_of, utf8};
use crate::{Change, Delivery, DeliveryError, Line, Notice, OrderDetail};

/// The body every push must be answered with.
pub const ACK: &str = r#"{"code":0,"msg":"success"}"#;

/// The app a push is for (the body's `client_id`), to find its secrets by.
pub fn client_id(body: &[u8]) -> Result<String, DeliveryError> {
    let envelope = Fields::parse(utf8(body)?, String::new())?;
    envelope
        .text("client_id")?
        .filter(|id| !id.trim().is_empty())
        .ok_or_else(|| envelope.missing("client_id"))
}

/// Checks that a push is for `client_id` and signed with one of its
/// secrets (two while a secret is being rotated), in constant time.
pub fn verify(
    headers: &http::HeaderMap,
    body: &[u8],
    client_id: &str,
    secrets: &[&[u8]],
) -> Result<(), DeliveryError> {
    let envelope = utf8(body)
        .ok()
        .and_then(|text| Fields::parse(text, String::new()).ok());
    let sent = envelope
        .as_ref()
        .and_then(|envelope| envelope.text("client_id").ok().flatten());
    if let Some(sent) = sent
        && sent != client_id
    {
        return Err(DeliveryError::WrongApp(sent));
    }
    if let Some(header) = headers.get("event-sign") {
        let sign = header.to_str().map_err(|_| DeliveryError::BadSignature)?;
        return check(sign, secrets, |secret| {
            md5_of(&[client_id.as_bytes(), body, secret])
        });
    }
    let signed = envelope.and_then(|envelope| {
        let sign = envelope.text("sign").ok().flatten()?;
        Some((sign, envelope.text("msg").ok().flatten()))
    });
    let Some((sign, msg)) = signed else {
        return Err(DeliveryError::MissingHeader("event-sign"));
    };
    let msg = msg.ok_or(DeliveryError::BadSignature)?;
    check(&sign, secrets, |secret| {
        md5_of(&[client_id.as_bytes(), msg.as_bytes(), secret])
    })
}

/// The notice of one authentic push; `tz` is the brand's time zone, in
/// which the message's local times are read.
pub fn parse(body: &[u8], tz: Tz) -> Result<Delivery, DeliveryError> {
    let envelope = Fields::parse(utf8(body)?, String::new())?;
    if envelope.truthy("test") {
        return Ok(Delivery::Probe);
    }
    let kind = envelope
        .text("type")?
        .filter(|kind| !kind.trim().is_empty())
        .ok_or_else(|| envelope.missing("type"))?;
    let Some(event) = Event::from_type(&kind) else {
        return Ok(Delivery::Unsubscribed { event: kind });
    };
    let shop = envelope.id("kdt_id")?;
    let version = envelope
        .int("version")?
        .ok_or_else(|| envelope.missing("version"))?;
    let encoded = envelope
        .text("msg")?
        .ok_or_else(|| envelope.missing("msg"))?;
    let decoded = url_decode(&encoded)?;
    let msg = Fields::parse(&decoded, "msg".to_owned())?;
    let at = Times {
        tz,
        version,
        envelope: &envelope,
    };

    let read = match event {
        Event::Created => {
            let info = msg.required_object("full_order_info")?;
            let order_info = info.object("order_info")?;
            let occurred_at = at.first(&[
                (order_info.as_ref(), "created"),
                (order_info.as_ref(), "update_time"),
            ])?;
            Read::new(
                occurred_at,
                Change::Created {
                    order: Some(full_order(&info)?),
                },
            )
            .tid(order_info.as_ref())?
        }
        Event::Paid => {
            let info = msg.required_object("full_order_info")?;
            let order_info = info.object("order_info")?;
            let occurred_at = at.first(&[
                (order_info.as_ref(), "pay_time"),
                (order_info.as_ref(), "update_time"),
            ])?;
            Read::new(
                occurred_at,
                Change::Paid {
                    order: Some(full_order(&info)?),
                },
            )
            .tid(order_info.as_ref())?
        }
        Event::Closed => {
            let reason = match msg.text_or_int("close_reason")? {
                Some(reason) => Some(reason),
                // The field's name as some documents spell it.
                None => msg.text_or_int("close_reson")?,
            };
            Read::new(
                at.first(&[(Some(&msg), "update_time")])?,
                Change::Cancelled {
                    reason: reason.filter(|r| !r.trim().is_empty()),
                },
            )
            .tid(Some(&msg))?
        }
        Event::Shipped => {
            Read::new(at.first(&[(Some(&msg), "update_time")])?, Change::Shipped).tid(Some(&msg))?
        }
        Event::Ignored(why) => Read::new(
            at.first(&[(Some(&msg), "update_time")])?,
            Change::Ignored { why },
        )
        .tid(Some(&msg))?,
        Event::RefundSucceeded => {
            let amount = msg
                .decimal("refunded_fee")?
                .ok_or_else(|| msg.missing("refunded_fee"))?;
            if amount < Decimal::ZERO {
                return Err(msg.error("refunded_fee", "negative"));
            }
            let refund_id = msg
                .text_or_int("refund_id")?
                .ok_or_else(|| msg.missing("refund_id"))?;
            Read::new(
                at.first(&[(Some(&msg), "update_time")])?,
                Change::Refunded {
                    refund_id,
                    amount,
                    shipping: Decimal::ZERO,
                    lines: Vec::new(),
                },
            )
            .tid(Some(&msg))?
        }
        Event::OrderState => {
            let status = match msg.text("status")? {
                Some(status) => status,
                None => envelope.text("status")?.unwrap_or_default(),
            };
            let Some(state) = State::from_status(&status) else {
                return Ok(Delivery::Unsubscribed {
                    event: format!("{kind} {status}"),
                });
            };
            Read::new(
                at.first(&[(Some(&msg), "update_time")])?,
                state.change(None),
            )
            .tid(Some(&msg))?
        }
        Event::TradeV1 => {
            let trade = msg.required_object("trade")?;
            let status = match trade.text("status")? {
                Some(status) => status,
                None => envelope.text("status")?.unwrap_or_default(),
            };
            let Some(state) = State::from_status(&status) else {
                return Ok(Delivery::Unsubscribed {
                    event: format!("{kind} {status}"),
                });
            };
            let when = match state {
                State::Created => "created",
                State::Paid => "pay_time",
                State::Shipped => "consign_time",
                State::Completed | State::Closed => "update_time",
            };
            let occurred_at = at.first(&[(Some(&trade), when), (Some(&trade), "update_time")])?;
            let detail = match state {
                State::Created | State::Paid => Some(legacy_trade(&trade)?),
                _ => None,
            };
            Read::new(occurred_at, state.change(detail)).tid(Some(&trade))?
        }
    };

    let id = envelope.text_or_int("id")?;
    let order_id = match (event, id.clone(), read.tid) {
        // A refund message states its order; its envelope id may be the
        // message's own.
        (Event::RefundSucceeded | Event::Ignored(_), _, Some(tid)) => tid,
        (_, Some(id), _) => id,
        (_, None, Some(tid)) => tid,
        (_, None, None) => return Err(envelope.missing("id")),
    };
    let key_id = id.unwrap_or_else(|| order_id.clone());
    Ok(Delivery::Notices(vec![Notice {
        shop,
        event_key: format!("{kind}:{key_id}:{version}"),
        order_id,
        occurred_at: read.occurred_at,
        version: Some(version),
        change: read.change,
    }]))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Event {
    Created,
    Paid,
    Closed,
    Shipped,
    Ignored(&'static str),
    RefundSucceeded,
    OrderState,
    TradeV1,
}

impl Event {
    fn from_type(kind: &str) -> Option<Event> {
        Some(match kind {
            "trade_TradeCreate" => Event::Created,
            "trade_TradePaid" | "trade_TradeBuyerPay" => Event::Paid,
            "trade_TradeClose" => Event::Closed,
            "trade_TradeSellerShip" => Event::Shipped,
            "trade_TradePartlySellerShip" => Event::Ignored("partly shipped"),
            "trade_TradeSuccess" => Event::Ignored("order completed"),
            "trade_refund_RefundSuccess" => Event::RefundSucceeded,
            "trade_refund_BuyerCreated" => Event::Ignored("refund requested"),
            "trade_refund_RefundSellerAgree" => Event::Ignored("refund agreed, not yet paid"),
            "trade_refund_RefundClosed" => Event::Ignored("refund closed without paying"),
            refund if refund.starts_with("trade_refund_") => {
                Event::Ignored("refund not yet succeeded")
            }
            "TRADE_ORDER_STATE" => Event::OrderState,
            "TRADE" => Event::TradeV1,
            _ => return None,
        })
    }
}

/// A legacy order status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Created,
    Paid,
    Shipped,
    Completed,
    Closed,
}

impl State {
    fn from_status(status: &str) -> Option<State> {
        Some(match status.trim() {
            "WAIT_BUYER_PAY" => State::Created,
            "TRADE_PAID" | "WAIT_CONFIRM" | "WAIT_SELLER_SEND_GOODS" => State::Paid,
            "WAIT_BUYER_CONFIRM_GOODS" => State::Shipped,
            "TRADE_BUYER_SIGNED" | "TRADE_SUCCESS" => State::Completed,
            "TRADE_CLOSED" | "TRADE_CLOSED_BY_USER" => State::Closed,
            _ => return None,
        })
    }

    fn change(self, order: Option<OrderDetail>) -> Change {
        match self {
            State::Created => Change::Created { order },
            State::Paid => Change::Paid { order },
            State::Shipped => Change::Shipped,
            State::Completed => Change::Ignored {
                why: "order completed",
            },
            State::Closed => Change::Cancelled { reason: None },
        }
    }
}

/// What one message says, before the envelope's ids are added.
struct Read {
    occurred_at: DateTime<Utc>,
    change: Change,
    /// The order id the message itself states, if any.
    tid: Option<String>,
}

impl Read {
    fn new(occurred_at: DateTime<Utc>, change: Change) -> Read {
        Read {
            occurred_at,
            change,
            tid: None,
        }
    }

    fn tid(mut self, fields: Option<&Fields>) -> Result<Read, DeliveryError> {
        if let Some(fields) = fields {
            self.tid = fields.text_or_int("tid")?;
        }
        Ok(self)
    }
}

/// Reads a message's local times, falling back on the envelope's version.
struct Times<'e, 'a> {
    tz: Tz,
    version: i64,
    envelope: &'e Fields<'a>,
}

impl Times<'_, '_> {
    /// The first of `candidates` that is set, else the envelope's
    /// `version` (the seconds of the order's last change).
    fn first(
        &self,
        candidates: &[(Option<&Fields>, &str)],
    ) -> Result<DateTime<Utc>, DeliveryError> {
        for (fields, key) in candidates {
            if let Some(fields) = fields
                && let Some(time) = fields.local_time(key, self.tz)?
            {
                return Ok(time);
            }
        }
        DateTime::from_timestamp(self.version, 0)
            .ok_or_else(|| self.envelope.error("version", "not a time"))
    }
}

/// `msg.full_order_info` of a current trade message.
fn full_order(info: &Fields) -> Result<OrderDetail, DeliveryError> {
    let pay = info.required_object("pay_info")?;
    let total = goods_total(&pay, "payment", "post_fee")?;
    let lines = lines(info)?;
    let buyer = match info.object("buyer_info")? {
        Some(buyer) => match buyer.text("yz_open_id")?.filter(|id| !id.trim().is_empty()) {
            Some(id) => Some(id),
            None => match buyer.reference("buyer_id")? {
                Some(id) => Some(id),
                None => buyer.reference("fans_id")?,
            },
        },
        None => None,
    };
    let province = match info.object("address_info")? {
        Some(address) => address.text("delivery_province")?,
        None => None,
    };
    let urgent = match info.object("order_info")? {
        Some(order) => order.int("express_type")? == Some(2),
        None => false,
    };
    Ok(detail(buyer, total, lines, province, urgent))
}

/// `msg.trade` of a legacy `TRADE` message.
fn legacy_trade(trade: &Fields) -> Result<OrderDetail, DeliveryError> {
    let total = goods_total(trade, "payment", "post_fee")?;
    let lines = lines(trade)?;
    let fans = trade.object("fans_info")?;
    let buyer = match fans
        .as_ref()
        .map(|f| f.reference("buyer_id"))
        .transpose()?
        .flatten()
    {
        Some(id) => Some(id),
        None => match trade.reference("buyer_id")? {
            Some(id) => Some(id),
            None => fans
                .as_ref()
                .map(|f| f.reference("fans_id"))
                .transpose()?
                .flatten(),
        },
    };
    let province = trade.text("receiver_state")?;
    Ok(detail(buyer, total, lines, province, false))
}

fn detail(
    buyer: Option<String>,
    total: Decimal,
    lines: Vec<Line>,
    province: Option<String>,
    urgent: bool,
) -> OrderDetail {
    let province = province.filter(|p| !p.trim().is_empty());
    OrderDetail {
        buyer,
        currency: "CNY".to_owned(),
        total,
        lines,
        region: province
            .as_deref()
            .and_then(crate::region::from_china_province),
        province_text: province,
        urgent,
    }
}

/// The buyer's payment less the shipping in it.
fn goods_total(fields: &Fields, payment: &str, post_fee: &str) -> Result<Decimal, DeliveryError> {
    let paid = fields
        .decimal(payment)?
        .ok_or_else(|| fields.missing(payment))?;
    let post = fields.decimal(post_fee)?.unwrap_or(Decimal::ZERO);
    paid.checked_sub(post)
        .filter(|total| *total >= Decimal::ZERO)
        .ok_or_else(|| fields.error(post_fee, format!("exceeds {payment}")))
}

fn lines(order: &Fields) -> Result<Vec<Line>, DeliveryError> {
    order.array("orders")?.iter().map(line).collect()
}

fn line(entry: &Fields) -> Result<Line, DeliveryError> {
    let sku_code = match entry
        .text_or_int("outer_sku_id")?
        .filter(|c| !c.trim().is_empty())
    {
        Some(code) => Some(code),
        None => entry
            .text_or_int("outer_item_id")?
            .filter(|c| !c.trim().is_empty()),
    };
    let quantity = entry.int("num")?.ok_or_else(|| entry.missing("num"))?;
    Ok(Line {
        line_id: entry.id("oid")?,
        sku_code,
        variant_id: entry.reference("sku_id")?,
        quantity: u64::try_from(quantity).map_err(|_| entry.error("num", "negative"))?,
        unit_price: entry
            .decimal("price")?
            .ok_or_else(|| entry.missing("price"))?,
        amount: entry
            .decimal("payment")?
            .ok_or_else(|| entry.missing("payment"))?,
    })
}

/// `msg` as the JSON it encodes. It is form-URL-encoded (`+` for a space,
/// `%2B` for a plus); a `msg` that is already JSON is taken as it is, since
/// decoding it again would turn its plus signs into spaces.
fn url_decode(msg: &str) -> Result<String, DeliveryError> {
    if msg.trim_start().starts_with('{') {
        return Ok(msg.to_owned());
    }
    let spaced = msg.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8()
        .map(Cow::into_owned)
        .map_err(|e| DeliveryError::shape("msg", format!("not UTF-8 once URL-decoded: {e}")))
}

/// A local time without zone, `2021-03-31 10:20:30`, read in `tz`.
pub(crate) fn local_instant(text: &str, tz: Tz) -> Result<DateTime<Utc>, String> {
    let local = NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S")
        .map_err(|e| format!("{text} is not a local time: {e}"))?;
    // Bounded so that no offset arithmetic can leave chrono's range.
    if !(1900..=9999).contains(&local.year()) {
        return Err(format!("{text} is out of range"));
    }
    match tz.from_local_datetime(&local) {
        LocalResult::Single(time) => Ok(time.with_timezone(&Utc)),
        LocalResult::Ambiguous(a, b) => Ok(a.min(b).with_timezone(&Utc)),
        LocalResult::None => {
            // A gap: read the time with the offsets in force on either side
            // of it (a day away is outside any one transition) and keep the
            // earlier instant.
            let day = TimeDelta::days(1);
            [local.checked_sub_signed(day), local.checked_add_signed(day)]
                .into_iter()
                .flatten()
                .map(|probe| tz.offset_from_utc_datetime(&probe).fix())
                .filter_map(|offset| {
                    local
                        .checked_sub_signed(TimeDelta::seconds(i64::from(offset.local_minus_utc())))
                })
                .min()
                .map(|utc| Utc.from_utc_datetime(&utc))
                .ok_or_else(|| format!("{text} does not exist in {tz}"))
        }
    }
}

fn check(
    sign: &str,
    secrets: &[&[u8]],
    digest: impl Fn(&[u8]) -> Vec<u8>,
) -> Result<(), DeliveryError> {
    let expected = hex::decode(sign.trim()).map_err(|_| DeliveryError::BadSignature)?;
    if expected.is_empty() {
        return Err(DeliveryError::BadSignature);
    }
    let mut matched = Choice::from(0);
    // An empty secret never matches: MD5(client id + body) alone is no proof.
    for secret in secrets.iter().filter(|s| !s.is_empty()) {
        matched |= digest(secret).as_slice().ct_eq(&expected);
    }
    if bool::from(matched) {
        Ok(())
    } else {
        Err(DeliveryError::BadSignature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::{HeaderMap, HeaderValue};
    use std::str::FromStr;

    const SHANGHAI: Tz = chrono_tz::Asia::Shanghai;

    fn dec(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    fn signed(sign: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert("event-sign", HeaderValue::from_str(sign).unwrap());
        headers
    }

    /// A push of `kind` whose `msg` is `msg` form-URL-encoded.
    fn push(kind: &str, id: &str, version: i64, msg: &str) -> Vec<u8> {
        let encoded: String =
            percent_encoding::utf8_percent_encode(msg, percent_encoding::NON_ALPHANUMERIC)
                .to_string()
                .replace("%20", "+");
        serde_json::json!({
            "client_id": "c346b8b39599aaa677", "id": id, "kdt_id": 13027865, "kdt_name": "店",
            "type": kind, "version": version, "status": "", "test": false, "mode": 1,
            "sendCount": 0, "sign": "0", "msg": encoded
        })
        .to_string()
        .into_bytes()
    }

    fn only_notice(body: &[u8]) -> Notice {
        match parse(body, SHANGHAI).unwrap() {
            Delivery::Notices(mut notices) if notices.len() == 1 => notices.remove(0),
            other => panic!("expected one notice, got {other:?}"),
        }
    }

    const FULL_ORDER: &str = r#"{
        "full_order_info": {
            "address_info": {"delivery_province": "浙江省", "delivery_city": "杭州市", "delivery_address": "文一西路 969 号"},
            "pay_info": {"post_fee": "5.00", "total_fee": "31.00", "payment": 25, "transaction": []},
            "buyer_info": {"yz_open_id": "", "buyer_id": 0, "fans_id": 11370174338, "fans_type": 1},
            "orders": [
                {"oid": "2796923531611602955", "outer_sku_id": "SKU-1", "outer_item_id": "ITEM-1", "sku_id": 37196971,
                 "num": 2, "price": "8.00", "payment": "12.00", "total_fee": "16.00"},
                {"oid": 2796923531611602956, "outer_sku_id": "", "outer_item_id": "", "sku_id": 0,
                 "num": "1", "price": 15, "payment": "8.00"}
            ],
            "order_info": {"tid": "E20210331172726094804181", "created": "2021-03-31 17:27:27",
                           "pay_time": "", "update_time": "2021-03-31 17:27:28", "express_type": 2, "status": "WAIT_BUYER_PAY"}
        }
    }"#;

    #[test]
    fn event_sign_over_the_raw_body() {
        let body = br#"{"test":1}"#;
        let sign = "4a553ae0b22d6ab013ec53ee291d688b";
        assert_eq!(verify(&signed(sign), body, "1", &[b"2"]), Ok(()));
        assert_eq!(
            verify(&signed(&sign.to_uppercase()), body, "1", &[b"2"]),
            Ok(())
        );
        assert_eq!(verify(&signed(sign), body, "1", &[b"old", b"2"]), Ok(()));
        assert_eq!(
            verify(&signed(sign), body, "2", &[b"1"]),
            Err(DeliveryError::BadSignature)
        );
        assert_eq!(
            verify(&signed(sign), br#"{"test": 1}"#, "1", &[b"2"]),
            Err(DeliveryError::BadSignature)
        );
        assert_eq!(
            verify(&signed(""), body, "1", &[b"2"]),
            Err(DeliveryError::BadSignature)
        );
        assert_eq!(parse(body, SHANGHAI), Ok(Delivery::Probe));
    }

    #[test]
    fn a_push_for_another_app_is_refused() {
        let body = br#"{"client_id":"someone-else","test":true}"#;
        assert_eq!(client_id(body), Ok("someone-else".to_owned()));
        assert_eq!(
            verify(&signed("00"), body, "mine", &[b"s"]),
            Err(DeliveryError::WrongApp("someone-else".to_owned()))
        );
        assert!(
            matches!(client_id(b"{}"), Err(DeliveryError::Shape { field, .. }) if field == "client_id")
        );
    }

    #[test]
    fn legacy_pushes_are_signed_in_the_body() {
        // MD5("6cd25b3f99727975b5" + msg as sent + "client-secret-x"),
        // computed with Python's hashlib.
        let body = br#"{"client_id":"6cd25b3f99727975b5","id":"E20170807181905034500002","kdt_id":63077,"mode":1,"msg":"%7B%22update_time%22:%222017-08-07%2018:19:05%22,%22payment%22:%2211.00%22,%22tid%22:%22E20170807181905034500002%22,%22status%22:%22TRADE_CLOSED%22%7D","sendCount":0,"sign":"cdeaa4cb6893ce7794626c4ca454410b","status":"TRADE_CLOSED","test":false,"type":"TRADE_ORDER_STATE","version":1502101273}"#;
        let none = HeaderMap::new();
        assert_eq!(
            verify(&none, body, "6cd25b3f99727975b5", &[b"client-secret-x"]),
            Ok(())
        );
        assert_eq!(
            verify(&none, body, "6cd25b3f99727975b5", &[b"another"]),
            Err(DeliveryError::BadSignature)
        );
        // A header, when sent, decides alone.
        assert_eq!(
            verify(
                &signed("cdeaa4cb6893ce7794626c4ca454410b"),
                body,
                "6cd25b3f99727975b5",
                &[b"client-secret-x"]
            ),
            Err(DeliveryError::BadSignature)
        );
        assert_eq!(
            verify(&none, br#"{"test":1}"#, "1", &[b"2"]),
            Err(DeliveryError::MissingHeader("event-sign"))
        );

        let notice = only_notice(body);
        assert_eq!(notice.change, Change::Cancelled { reason: None });
        assert_eq!(notice.order_id, "E20170807181905034500002");
        assert_eq!(notice.shop, "63077");
        assert_eq!(notice.occurred_at, utc("2017-08-07T10:19:05Z"));
        assert_eq!(notice.version, Some(1502101273));
        assert_eq!(
            notice.event_key,
            "TRADE_ORDER_STATE:E20170807181905034500002:1502101273"
        );
    }

    #[test]
    fn created_carries_the_full_order() {
        let notice = only_notice(&push(
            "trade_TradeCreate",
            "E20210331172726094804181",
            1617182847,
            FULL_ORDER,
        ));
        assert_eq!(notice.shop, "13027865");
        assert_eq!(notice.order_id, "E20210331172726094804181");
        assert_eq!(
            notice.event_key,
            "trade_TradeCreate:E20210331172726094804181:1617182847"
        );
        assert_eq!(notice.occurred_at, utc("2021-03-31T09:27:27Z"));
        let Change::Created { order: Some(order) } = notice.change else {
            panic!("{:?}", notice.change);
        };
        assert_eq!(order.total, dec("20.00"));
        assert_eq!(order.currency, "CNY");
        assert_eq!(order.buyer.as_deref(), Some("11370174338"));
        assert_eq!(
            order.region.as_ref().map(crate::Region::code),
            Some("CN-ZJ")
        );
        assert!(order.urgent);
        assert_eq!(
            order.lines,
            vec![
                Line {
                    line_id: "2796923531611602955".to_owned(),
                    sku_code: Some("SKU-1".to_owned()),
                    variant_id: Some("37196971".to_owned()),
                    quantity: 2,
                    unit_price: dec("8.00"),
                    amount: dec("12.00"),
                },
                Line {
                    line_id: "2796923531611602956".to_owned(),
                    sku_code: None,
                    variant_id: None,
                    quantity: 1,
                    unit_price: dec("15"),
                    amount: dec("8.00"),
                },
            ]
        );
    }

    #[test]
    fn paid_is_timed_by_its_payment() {
        let msg = FULL_ORDER.replace(r#""pay_time": """#, r#""pay_time": "2021-03-31 17:30:00""#);
        let notice = only_notice(&push("trade_TradePaid", "E1", 1617183000, &msg));
        assert_eq!(notice.occurred_at, utc("2021-03-31T09:30:00Z"));
        assert!(matches!(notice.change, Change::Paid { order: Some(_) }));
    }

    #[test]
    fn the_msg_is_form_url_encoded() {
        // `+` is a space and `%2B` a plus, inside a hand-encoded message.
        let msg = "%7B%22tid%22%3A%22E1%22%2C%22update_time%22%3A%222021-03-31+17%3A27%3A27%22%2C%22close_reason%22%3A%22buyer+said+%2B1%22%7D";
        let body = serde_json::json!({
            "id": "E1", "kdt_id": 1, "type": "trade_TradeClose", "version": 5, "msg": msg
        })
        .to_string();
        let notice = only_notice(body.as_bytes());
        assert_eq!(notice.occurred_at, utc("2021-03-31T09:27:27Z"));
        assert_eq!(
            notice.change,
            Change::Cancelled {
                reason: Some("buyer said +1".to_owned())
            }
        );
    }

    #[test]
    fn shipped_completed_and_refunds() {
        let shipped = only_notice(&push(
            "trade_TradeSellerShip",
            "E1",
            1617190000,
            r#"{"tid":"E1","update_time":"2021-04-01 08:00:00"}"#,
        ));
        assert_eq!(shipped.change, Change::Shipped);
        assert_eq!(shipped.occurred_at, utc("2021-04-01T00:00:00Z"));

        // Without a time of its own, the envelope's version dates it.
        let completed = only_notice(&push(
            "trade_TradeSuccess",
            "E1",
            1617190000,
            r#"{"tid":"E1"}"#,
        ));
        assert!(matches!(completed.change, Change::Ignored { .. }));
        assert_eq!(
            completed.occurred_at,
            DateTime::from_timestamp(1617190000, 0).unwrap()
        );

        let refunded = only_notice(&push(
            "trade_refund_RefundSuccess",
            "W2021",
            1662018756,
            r#"{"tid":"E1","oids":"2796923531611602955","refund_id":"201906041543450000","refunded_fee":"12.50","refund_type":"REFUND_ONLY","update_time":"2022-09-01 15:52:36"}"#,
        ));
        assert_eq!(refunded.order_id, "E1");
        assert_eq!(
            refunded.event_key,
            "trade_refund_RefundSuccess:W2021:1662018756"
        );
        assert_eq!(
            refunded.change,
            Change::Refunded {
                refund_id: "201906041543450000".to_owned(),
                amount: dec("12.50"),
                shipping: Decimal::ZERO,
                lines: Vec::new(),
            }
        );

        for kind in [
            "trade_refund_BuyerCreated",
            "trade_refund_RefundSellerAgree",
            "trade_refund_RefundClosed",
            "trade_refund_Other",
        ] {
            let notice = only_notice(&push(
                kind,
                "E1",
                1,
                r#"{"tid":"E1","refunded_fee":"1.00"}"#,
            ));
            assert!(matches!(notice.change, Change::Ignored { .. }), "{kind}");
        }
        assert_eq!(
            parse(&push("ITEM_Update", "1", 1, "{}"), SHANGHAI),
            Ok(Delivery::Unsubscribed {
                event: "ITEM_Update".to_owned()
            })
        );
    }

    #[test]
    fn legacy_order_states() {
        let body = r#"{"client_id":"cd0e03a4099eb5c933","id":"E20180127173141101500008","kdt_id":17284278,"kdt_name":"Pocket  黑店","mode":1,"msg":"%7B%22update_time%22:%222018-01-27%2017:31:41%22,%22extra_info%22:%22%7B%5C%22is_retail_offline%5C%22:false%7D%22,%22payment%22:%220.02%22,%22tid%22:%22E20180127173141101500008%22,%22status%22:%22WAIT_BUYER_PAY%22%7D","sendCount":0,"sign":"ed23594fb6f1b62684ecd04a22300394","status":"WAIT_BUYER_PAY","test":false,"type":"TRADE_ORDER_STATE","version":1517045501}"#.as_bytes();
        let notice = only_notice(body);
        assert_eq!(notice.change, Change::Created { order: None });
        assert_eq!(notice.occurred_at, utc("2018-01-27T09:31:41Z"));
        let odd = push(
            "TRADE_ORDER_STATE",
            "E1",
            1,
            r#"{"status":"SOMETHING_NEW"}"#,
        );
        assert_eq!(
            parse(&odd, SHANGHAI),
            Ok(Delivery::Unsubscribed {
                event: "TRADE_ORDER_STATE SOMETHING_NEW".to_owned()
            })
        );
    }

    #[test]
    fn legacy_full_trades() {
        let trade = r#"{"trade":{"tid":"E20180126122044073700005","status":"WAIT_SELLER_SEND_GOODS","created":"2018-01-26 12:20:44",
            "pay_time":"2018-01-26 12:20:50","update_time":"2018-01-26 12:21:00","payment":"10.00","post_fee":"2.00","total_fee":"8.00",
            "receiver_state":"北京市","buyer_id":"400767613","fans_info":{"buyer_id":"9968353","fans_id":"400767613"},
            "orders":[{"oid":18239548,"outer_item_id":"ITEM","outer_sku_id":"","sku_id":"0","num":"1","price":"8.00","payment":"8.00"}]}}"#;
        let notice = only_notice(&push(
            "TRADE",
            "E20180126122044073700005",
            1517125695,
            trade,
        ));
        assert_eq!(notice.occurred_at, utc("2018-01-26T04:20:50Z"));
        let Change::Paid { order: Some(order) } = notice.change else {
            panic!("{:?}", notice.change);
        };
        assert_eq!(order.total, dec("8.00"));
        assert_eq!(order.buyer.as_deref(), Some("9968353"));
        assert_eq!(
            order.region.as_ref().map(crate::Region::code),
            Some("CN-BJ")
        );
        assert_eq!(order.lines.len(), 1);
        assert_eq!(order.lines[0].line_id, "18239548");
        assert_eq!(order.lines[0].sku_code.as_deref(), Some("ITEM"));
        assert_eq!(order.lines[0].variant_id, None);

        let shipped = trade
            .replace("WAIT_SELLER_SEND_GOODS", "WAIT_BUYER_CONFIRM_GOODS")
            .replace(
                r#""created""#,
                r#""consign_time":"2018-01-28 15:48:15","created""#,
            );
        let notice = only_notice(&push("TRADE", "E1", 1, &shipped));
        assert_eq!(notice.change, Change::Shipped);
        assert_eq!(notice.occurred_at, utc("2018-01-28T07:48:15Z"));
    }

    #[test]
    fn shape_errors_name_the_field() {
        let bad_price = FULL_ORDER.replace(r#""price": 15"#, r#""price": "fifteen""#);
        assert!(matches!(
            parse(&push("trade_TradeCreate", "E1", 1, &bad_price), SHANGHAI),
            Err(DeliveryError::Shape { field, .. }) if field == "msg.full_order_info.orders[1].price"
        ));
        let float_oid = FULL_ORDER.replace("2796923531611602956", "2.796923531611603e18");
        assert!(matches!(
            parse(&push("trade_TradeCreate", "E1", 1, &float_oid), SHANGHAI),
            Err(DeliveryError::Shape { field, .. }) if field == "msg.full_order_info.orders[1].oid"
        ));
        assert!(matches!(
            parse(&push("trade_TradeCreate", "E1", 1, "{}"), SHANGHAI),
            Err(DeliveryError::Shape { field, .. }) if field == "msg.full_order_info"
        ));
        let no_shop = br#"{"type":"trade_TradeSuccess","version":1,"msg":"%7B%7D"}"#;
        assert_eq!(
            parse(no_shop, SHANGHAI),
            Err(DeliveryError::shape("kdt_id", "missing"))
        );
        let bad_time = push(
            "trade_TradeSellerShip",
            "E1",
            1,
            r#"{"update_time":"31/03/2021"}"#,
        );
        assert!(matches!(
            parse(&bad_time, SHANGHAI),
            Err(DeliveryError::Shape { field, .. }) if field == "msg.update_time"
        ));
        assert!(matches!(
            parse(b"[1]", SHANGHAI),
            Err(DeliveryError::Shape { .. })
        ));
    }

    #[test]
    fn local_times_take_the_earlier_reading() {
        let new_york = chrono_tz::America::New_York;
        // 01:30 happens twice on 2021-11-07: EDT (05:30Z) first.
        assert_eq!(
            local_instant("2021-11-07 01:30:00", new_york),
            Ok(utc("2021-11-07T05:30:00Z"))
        );
        // 02:30 does not exist on 2021-03-14: read as EDT (06:30Z) or EST
        // (07:30Z), the earlier is kept.
        assert_eq!(
            local_instant("2021-03-14 02:30:00", new_york),
            Ok(utc("2021-03-14T06:30:00Z"))
        );
        assert_eq!(
            local_instant("2021-03-31 17:27:27", SHANGHAI),
            Ok(utc("2021-03-31T09:27:27Z"))
        );
        assert!(local_instant("99999-01-01 00:00:00", new_york).is_err());
    }

    proptest::proptest! {
        #[test]
        fn parsing_never_panics(body in proptest::collection::vec(proptest::num::u8::ANY, 0..256)) {
            let _ = parse(&body, SHANGHAI);
            let _ = client_id(&body);
            let _ = verify(&HeaderMap::new(), &body, "1", &[b"2"]);
        }

        #[test]
        fn parsing_json_like_text_never_panics(msg in "[%0-9A-Fa-f+a-z{}\":,\\[\\]]{0,60}", kind in "(trade_TradeCreate|trade_TradeClose|TRADE|TRADE_ORDER_STATE|trade_refund_RefundSuccess)") {
            let body = serde_json::json!({"id":"E1","kdt_id":1,"type":kind,"version":1,"msg":msg}).to_string();
            let _ = parse(body.as_bytes(), chrono_tz::America::New_York);
        }
    }

    #[test]
    fn an_empty_secret_never_verifies() {
        let body = br#"{"test":1}"#;
        let unkeyed = hex::encode(md5_of(&[b"1", body]));
        assert_eq!(
            verify(&signed(&unkeyed), body, "1", &[b""]),
            Err(DeliveryError::BadSignature)
        );
    }
}
