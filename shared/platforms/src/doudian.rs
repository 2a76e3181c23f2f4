//! 抖店 (Douyin shop, op.jinritemai.com) message pushes, and the open API's
//! `order.orderDetail` response that their order notices need.
//!
//! # The push
//! A push is a JSON array of `{tag, msg_id, data}`; `tag` is a string and
//! `data` is a JSON object written as a JSON string (parsed a second time
//! here). The headers `app-id` (the app key) and `event-sign` authenticate
//! it: lowercase hex MD5 of app key + raw body + app secret, or, where a
//! `sign-method: hmac-sha256` header is sent, hex HMAC-SHA256 keyed with the
//! app secret over the same string. Every push, including the endpoint
//! check, must be answered with [`ACK`].
//!
//! # Tags
//! | tag | message | change |
//! |---|---|---|
//! | `0` | endpoint check (`data` is a timestamp, not JSON) | [`Delivery::Probe`] when every message is one |
//! | `100` | trade_TradeCreate | [`Change::Created`], no detail |
//! | `101` | trade_TradePaid | [`Change::Paid`], no detail |
//! | `102` | trade_TradeSellerShip | [`Change::Shipped`] |
//! | `103` | trade_TradeSuccess | [`Change::Ignored`] |
//! | `106` | trade_TradeCanceled | [`Change::Cancelled`] |
//! | `200` | refund_RefundCreated | [`Change::Ignored`] |
//! | `201` | refund_RefundAgreed | [`Change::Ignored`] |
//! | `202` | refund_ReturnApplyAgreed | [`Change::Ignored`] |
//! | `206` | refund_RefundSuccess | [`Change::Refunded`] |
//! | `207` | refund_RefundClosed | [`Change::Ignored`] |
//!
//! A refund counts when it succeeds, not when it is requested or agreed:
//! only `206` moves money. SDKs disagree on the refund-success tag
//! (`bububa/jinritemai-go`'s dispatcher says 207, while its own
//! `RefundSuccess.Tag()` and `zsmhub/doudian-sdk` and `sdk4-jinritemai`
//! say 206). The platform's message documents settle it: 退款成功消息 is
//! `message-docs/31/121` and 售后关闭消息 is `31/122`, and the refund
//! documents are numbered in tag order (`31/115` is tag 200, `31/116` is
//! 201, `31/117` is 202), so 31/121 is tag 206 and 207 is the refund
//! closing, which must never count as a refund.
//!
//! The order pushes carry no lines, so created and paid notices have no
//! [`OrderDetail`]: intake fetches `order.orderDetail` and reads it with
//! [`parse_order_detail`]. The refund pushes name one sub-order (`s_id`)
//! but no quantity, which is not enough to return stock by, so
//! the refunded `lines` stay empty.
//!
//! Messages with a tag outside the table are skipped: their `data` has
//! another shape (product and logistics messages carry no order), so no
//! notice can be made of them. A push made only of such messages is
//! [`Delivery::Unsubscribed`] with `event` `"tag <n>"` (its first such tag),
//! so that the subscription shows in the metrics.
//!
//! # Money, times and ids
//! Amounts are integer fen, turned into yuan exactly. Times are unix
//! seconds, except `update_time`, which the refund messages send as an RFC
//! 3339 string and the trade messages as unix seconds; either way it is the
//! notice's [`Notice::version`]. Ids (`p_id`, `shop_id`, `aftersale_id`)
//! pass 2^53 and are kept as the digits sent. Fields not named here, such as
//! `addr` in tag 202 (a `{key:value}` text that is not JSON), are never read.

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use rust_decimal::Decimal;
use serde_json::value::RawValue;
use sha2::Sha256;
use subtle::{Choice, ConstantTimeEq};

use crate::fields::{Fields, join, md5_of, utf8};
use crate::{Change, Delivery, DeliveryError, Line, Notice, OrderDetail};

/// The body every push must be answered with, the endpoint check included.
pub const ACK: &str = r#"{"code":0,"msg":"success"}"#;

/// The success `code` of an open API response.
const API_SUCCESS: i64 = 10000;

/// The app key a push names (header `app-id`), to find the app's secrets by.
pub fn app_key(headers: &http::HeaderMap) -> Result<String, DeliveryError> {
    let value = headers
        .get("app-id")
        .ok_or(DeliveryError::MissingHeader("app-id"))?;
    match value.to_str() {
        Ok(text) if !text.trim().is_empty() => Ok(text.trim().to_owned()),
        Ok(_) => Err(DeliveryError::MissingHeader("app-id")),
        // Not text any app key is made of: no app of ours.
        Err(_) => Err(DeliveryError::WrongApp(
            String::from_utf8_lossy(value.as_bytes()).into_owned(),
        )),
    }
}

/// Checks that a push is for `app_key` and signed with one of its secrets
/// (two while a secret is being rotated).
///
/// `event-sign` is compared in constant time as bytes, so its hex may be in
/// either case. A `sign-method` other than `md5` or `hmac-sha256` cannot be
/// checked and is refused as a bad signature.
pub fn verify(
    headers: &http::HeaderMap,
    body: &[u8],
    app_key: &str,
    secrets: &[&[u8]],
) -> Result<(), DeliveryError> {
    let sent = self::app_key(headers)?;
    if sent != app_key {
        return Err(DeliveryError::WrongApp(sent));
    }
    let sign = headers
        .get("event-sign")
        .ok_or(DeliveryError::MissingHeader("event-sign"))?
        .to_str()
        .map_err(|_| DeliveryError::BadSignature)?;
    let method = match headers.get("sign-method").map(|v| v.to_str()) {
        None => SignMethod::Md5,
        Some(Ok(name)) if name.trim().eq_ignore_ascii_case("md5") => SignMethod::Md5,
        Some(Ok(name)) if name.trim().eq_ignore_ascii_case("hmac-sha256") => SignMethod::HmacSha256,
        Some(_) => return Err(DeliveryError::BadSignature),
    };
    let expected = hex::decode(sign.trim()).map_err(|_| DeliveryError::BadSignature)?;
    if expected.is_empty() {
        return Err(DeliveryError::BadSignature);
    }
    let mut matched = Choice::from(0);
    // An empty secret never matches: MD5(app key + body) alone is no proof.
    for secret in secrets.iter().filter(|s| !s.is_empty()) {
        let parts: [&[u8]; 3] = [app_key.as_bytes(), body, secret];
        let digest = match method {
            SignMethod::Md5 => md5_of(&parts),
            SignMethod::HmacSha256 => hmac_of(secret, &parts),
        };
        matched |= digest.as_slice().ct_eq(&expected);
    }
    if bool::from(matched) {
        Ok(())
    } else {
        Err(DeliveryError::BadSignature)
    }
}

/// The notices of one authentic push.
pub fn parse(body: &[u8]) -> Result<Delivery, DeliveryError> {
    let text = utf8(body)?;
    let messages: Vec<&RawValue> = serde_json::from_str(text)
        .map_err(|e| DeliveryError::shape("", format!("expected a JSON array of messages: {e}")))?;
    if messages.is_empty() {
        return Err(DeliveryError::shape(
            "",
            "a push carries at least one message",
        ));
    }
    let mut notices = Vec::new();
    let mut first_unknown = None;
    for (index, message) in messages.iter().enumerate() {
        let envelope = Fields::parse(message.get(), format!("[{index}]"))?;
        let tag = envelope
            .text_or_int("tag")?
            .ok_or_else(|| envelope.missing("tag"))?;
        if tag == "0" {
            continue;
        }
        let Some(kind) = Tag::from_code(&tag) else {
            first_unknown.get_or_insert(tag);
            continue;
        };
        let msg_id = envelope.text_or_int("msg_id")?;
        let data_text = envelope
            .text("data")?
            .ok_or_else(|| envelope.error("data", "expected the message as a JSON string"))?;
        let data = Fields::parse(&data_text, envelope.field("data"))?;
        notices.push(notice(&tag, kind, msg_id, &data)?);
    }
    Ok(match (notices.is_empty(), first_unknown) {
        (false, _) => Delivery::Notices(notices),
        (true, Some(tag)) => Delivery::Unsubscribed {
            event: format!("tag {tag}"),
        },
        (true, None) => Delivery::Probe,
    })
}

/// An order as the open API's `order.orderDetail` response describes it.
///
/// - `total` = `shop_order_detail.pay_amount` − `post_amount`: what the
///   buyer paid, which is after every discount (shop, platform, talent and
///   payment-channel ones), less the shipping they paid.
/// - a line's `amount` is its sku order's `pay_amount` less its own
///   `post_amount`, as the shop order's amounts are. Where the sku orders'
///   `pay_amount`s instead add up to the shop order's goods total (their
///   shipping kept out already), they are taken as they are.
/// - `unit_price` is `origin_amount` (商品现价, the price the item sold at
///   before promotions; `goods_price`, the list price, where it is absent).
/// - `sku_code` is the merchant's `code` (商家编码), else `out_sku_id`.
/// - `buyer` is `doudian_open_id`, the platform's stable buyer id.
/// - `urgent` is `early_arrival` (deliver as soon as possible), the only
///   urgency the platform states; 抖店 has no express option.
/// - the province is `post_addr.province.name`, else the masked address's.
///
/// A response whose `code` is not 10000 is an error from the platform:
/// [`DeliveryError::Shape`] on `code`, with its messages as the reason.
pub fn parse_order_detail(body: &[u8]) -> Result<OrderDetail, DeliveryError> {
    let response = Fields::parse(utf8(body)?, String::new())?;
    let code = response
        .int("code")?
        .ok_or_else(|| response.missing("code"))?;
    if code != API_SUCCESS {
        let messages: Vec<String> = ["msg", "message", "sub_code", "sub_msg"]
            .into_iter()
            .filter_map(|key| response.text_or_int(key).ok().flatten())
            .collect();
        let reason = if messages.is_empty() {
            format!("the platform answered code {code}")
        } else {
            format!("{code}: {}", messages.join(" / "))
        };
        return Err(DeliveryError::shape("code", reason));
    }
    let data = response.required_object("data")?;
    let order = data.required_object("shop_order_detail")?;

    let pay = order
        .fen("pay_amount")?
        .ok_or_else(|| order.missing("pay_amount"))?;
    let post = order.fen("post_amount")?.unwrap_or(0);
    let goods = pay
        .checked_sub(post)
        .filter(|goods| *goods >= 0)
        .ok_or_else(|| order.error("post_amount", "exceeds pay_amount"))?;

    let skus = order
        .array("sku_order_list")?
        .iter()
        .map(SkuOrder::read)
        .collect::<Result<Vec<_>, _>>()?;
    let sum_pay = skus.iter().try_fold(0i64, |sum, s| sum.checked_add(s.pay));
    let any_post = skus.iter().any(|s| s.post != 0);
    let shipping_kept_out = any_post && sum_pay == Some(goods);
    let lines = skus
        .into_iter()
        .map(|sku| sku.into_line(shipping_kept_out))
        .collect::<Result<Vec<_>, _>>()?;

    let province = match order.object("post_addr")? {
        Some(address) => province_name(&address)?,
        None => None,
    };
    let province = match (province, order.object("mask_post_addr")?) {
        (Some(name), _) => Some(name),
        (None, Some(masked)) => province_name(&masked)?,
        (None, None) => None,
    };

    Ok(OrderDetail {
        buyer: order
            .text("doudian_open_id")?
            .filter(|id| !id.trim().is_empty()),
        currency: "CNY".to_owned(),
        total: yuan(goods),
        lines,
        region: province
            .as_deref()
            .and_then(crate::region::from_china_province),
        province_text: province,
        urgent: order.bool("early_arrival")?.unwrap_or(false),
    })
}

/// How an open API request is signed (the request's `sign_method`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignMethod {
    Md5,
    HmacSha256,
}

impl SignMethod {
    /// The value of the request's `sign_method` parameter.
    pub fn as_param(self) -> &'static str {
        match self {
            SignMethod::Md5 => "md5",
            SignMethod::HmacSha256 => "hmac-sha256",
        }
    }
}

/// The `sign` of an open API request.
///
/// The string signed is app secret + `app_key`… `method`… `param_json`…
/// `timestamp`… `v`… + app secret, each name followed by its value, in that
/// (alphabetical) order; it is hashed with MD5, or with HMAC-SHA256 keyed
/// with the app secret, and written as lowercase hex (the official Java
/// SDK's `SignUtil` and the platform guide's Go example, `guide-docs/10/813`).
///
/// `param_json` is signed as given and must be sent byte for byte as
/// signed; the platform wants its keys sorted and no spaces, which
/// [`param_json`] produces.
pub fn sign_request(
    app_key: &str,
    app_secret: &str,
    method: &str,
    param_json: &str,
    timestamp: &str,
    v: &str,
    sign_method: SignMethod,
) -> String {
    let pattern = format!(
        "{app_secret}app_key{app_key}method{method}param_json{param_json}timestamp{timestamp}v{v}{app_secret}"
    );
    let digest = match sign_method {
        SignMethod::Md5 => md5_of(&[pattern.as_bytes()]),
        SignMethod::HmacSha256 => hmac_of(app_secret.as_bytes(), &[pattern.as_bytes()]),
    };
    hex::encode(digest)
}

/// A request's parameters as the `param_json` the platform signs: compact,
/// with every object's keys sorted, nested ones too (as the official SDK
/// sorts them before signing). Strings are escaped as JSON requires and no
/// further (no `\u003c` for `<`).
pub fn param_json(params: &serde_json::Value) -> String {
    let mut out = String::new();
    write_sorted(params, &mut out);
    out
}

fn write_sorted(value: &serde_json::Value, out: &mut String) {
    match value {
        serde_json::Value::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (key, value)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&serde_json::Value::String(key.clone()).to_string());
                out.push(':');
                write_sorted(value, out);
            }
            out.push('}');
        }
        serde_json::Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_sorted(item, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

/// The tags this module reads (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tag {
    Created,
    Paid,
    Shipped,
    Completed,
    Cancelled,
    RefundRequested,
    RefundAgreed,
    ReturnAgreed,
    RefundSucceeded,
    RefundClosed,
}

impl Tag {
    fn from_code(code: &str) -> Option<Tag> {
        Some(match code {
            "100" => Tag::Created,
            "101" => Tag::Paid,
            "102" => Tag::Shipped,
            "103" => Tag::Completed,
            "106" => Tag::Cancelled,
            "200" => Tag::RefundRequested,
            "201" => Tag::RefundAgreed,
            "202" => Tag::ReturnAgreed,
            "206" => Tag::RefundSucceeded,
            "207" => Tag::RefundClosed,
            _ => return None,
        })
    }

    /// The field stating when the change happened; `update_time` stands in
    /// where it is absent (tag 102 states its ship time only there).
    fn time_field(self) -> &'static str {
        match self {
            Tag::Created => "create_time",
            Tag::Paid => "pay_time",
            Tag::Shipped => "update_time",
            Tag::Completed => "complete_time",
            Tag::Cancelled => "cancel_time",
            Tag::RefundRequested => "apply_time",
            Tag::RefundAgreed | Tag::ReturnAgreed => "agree_time",
            Tag::RefundSucceeded => "success_time",
            Tag::RefundClosed => "close_time",
        }
    }
}

fn notice(
    tag_code: &str,
    tag: Tag,
    msg_id: Option<String>,
    data: &Fields,
) -> Result<Notice, DeliveryError> {
    let order_id = data.id("p_id")?;
    let shop = data.id("shop_id")?;
    let version = data.update_time()?;
    let time_field = tag.time_field();
    let seconds = match data.unix(time_field)? {
        Some(seconds) => seconds,
        None => version.ok_or_else(|| data.missing(time_field))?,
    };
    let occurred_at = DateTime::<Utc>::from_timestamp(seconds, 0)
        .ok_or_else(|| data.error(time_field, "not a time"))?;
    let change = match tag {
        Tag::Created => Change::Created { order: None },
        Tag::Paid => Change::Paid { order: None },
        Tag::Shipped => Change::Shipped,
        Tag::Completed => Change::Ignored {
            why: "order completed",
        },
        Tag::Cancelled => Change::Cancelled {
            reason: data.text("cancel_reason")?.filter(|r| !r.trim().is_empty()),
        },
        Tag::RefundRequested => Change::Ignored {
            why: "refund requested",
        },
        Tag::RefundAgreed => Change::Ignored {
            why: "refund agreed, not yet paid",
        },
        Tag::ReturnAgreed => Change::Ignored {
            why: "return agreed, not yet refunded",
        },
        Tag::RefundSucceeded => refunded(data)?,
        Tag::RefundClosed => Change::Ignored {
            why: "refund closed without paying",
        },
    };
    Ok(Notice {
        shop,
        event_key: msg_id.unwrap_or_else(|| format!("{tag_code}:{order_id}:{seconds}")),
        order_id,
        occurred_at,
        version,
        change,
    })
}

/// `refund_amount` includes the shipping refunded, `refund_post_amount` is
/// that shipping part.
fn refunded(data: &Fields) -> Result<Change, DeliveryError> {
    let total = data
        .fen("refund_amount")?
        .ok_or_else(|| data.missing("refund_amount"))?;
    if total < 0 {
        return Err(data.error("refund_amount", "negative"));
    }
    let shipping = data.fen("refund_post_amount")?.unwrap_or(0);
    if !(0..=total).contains(&shipping) {
        return Err(data.error("refund_post_amount", "not between 0 and refund_amount"));
    }
    Ok(Change::Refunded {
        refund_id: data.id("aftersale_id")?,
        amount: yuan(total - shipping),
        shipping: yuan(shipping),
        lines: Vec::new(),
    })
}

/// One `sku_order_list` entry, its amounts still in fen.
struct SkuOrder {
    line_id: String,
    sku_code: Option<String>,
    variant_id: Option<String>,
    quantity: u64,
    unit: i64,
    pay: i64,
    post: i64,
    at: String,
}

impl SkuOrder {
    fn read(sku: &Fields) -> Result<SkuOrder, DeliveryError> {
        let quantity = sku
            .int("item_num")?
            .ok_or_else(|| sku.missing("item_num"))?;
        let unit = match sku.fen("origin_amount")? {
            Some(unit) => unit,
            None => sku
                .fen("goods_price")?
                .ok_or_else(|| sku.missing("origin_amount"))?,
        };
        let sku_code = match sku.text_or_int("code")?.filter(|c| !c.trim().is_empty()) {
            Some(code) => Some(code),
            None => sku
                .text_or_int("out_sku_id")?
                .filter(|c| !c.trim().is_empty()),
        };
        Ok(SkuOrder {
            line_id: sku.id("order_id")?,
            sku_code,
            variant_id: sku.reference("sku_id")?,
            quantity: u64::try_from(quantity).map_err(|_| sku.error("item_num", "negative"))?,
            unit,
            pay: sku
                .fen("pay_amount")?
                .ok_or_else(|| sku.missing("pay_amount"))?,
            post: sku.fen("post_amount")?.unwrap_or(0),
            at: sku.path.clone(),
        })
    }

    fn into_line(self, shipping_kept_out: bool) -> Result<Line, DeliveryError> {
        let paid = if shipping_kept_out {
            Some(self.pay)
        } else {
            self.pay.checked_sub(self.post)
        };
        let paid = paid.filter(|paid| *paid >= 0).ok_or_else(|| {
            DeliveryError::shape(join(&self.at, "post_amount"), "exceeds pay_amount")
        })?;
        Ok(Line {
            line_id: self.line_id,
            sku_code: self.sku_code,
            variant_id: self.variant_id,
            quantity: self.quantity,
            unit_price: yuan(self.unit),
            amount: yuan(paid),
        })
    }
}

fn province_name(address: &Fields) -> Result<Option<String>, DeliveryError> {
    Ok(match address.object("province")? {
        Some(province) => province.text("name")?.filter(|n| !n.trim().is_empty()),
        None => None,
    })
}

/// Fen as yuan, exactly.
fn yuan(fen: i64) -> Decimal {
    Decimal::new(fen, 2)
}

fn hmac_of(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    // HMAC takes a key of any length, so this never fails.
    let Ok(mut mac) = <Hmac<Sha256> as Mac>::new_from_slice(key) else {
        return Vec::new();
    };
    for part in parts {
        Mac::update(&mut mac, part);
    }
    mac.finalize().into_bytes().to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::{HeaderMap, HeaderValue};
    use std::str::FromStr;

    const APP_KEY: &str = "app-123";
    const SECRET: &[u8] = b"secret-456";
    const PROBE: &[u8] =
        br#"[{"tag":"0","msg_id":"0","data":"2020-09-10T16:27:56.52842897+08:00"}]"#;

    fn dec(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    /// A push of one message whose `data` is `data` written as a JSON string.
    fn push(tag: &str, msg_id: &str, data: &str) -> Vec<u8> {
        let data = serde_json::Value::String(data.to_owned());
        format!(r#"[{{"tag":"{tag}","msg_id":"{msg_id}","data":{data}}}]"#).into_bytes()
    }

    fn only_notice(body: &[u8]) -> Notice {
        match parse(body).unwrap() {
            Delivery::Notices(mut notices) if notices.len() == 1 => notices.remove(0),
            other => panic!("expected one notice, got {other:?}"),
        }
    }

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(seconds, 0).unwrap()
    }

    #[test]
    fn md5_signature_over_the_raw_body() {
        assert_eq!(PROBE.len(), 70);
        let h = headers(&[
            ("app-id", APP_KEY),
            ("event-sign", "880c81565568584d69c0ae6ff9ae221e"),
        ]);
        assert_eq!(verify(&h, PROBE, APP_KEY, &[SECRET]), Ok(()));
        // Hex in either case.
        let upper = headers(&[
            ("app-id", APP_KEY),
            ("event-sign", "880C81565568584D69C0AE6FF9AE221E"),
        ]);
        assert_eq!(verify(&upper, PROBE, APP_KEY, &[SECRET]), Ok(()));
        // The same JSON re-serialised is another body.
        let spaced = br#"[{"tag": "0","msg_id":"0","data":"2020-09-10T16:27:56.52842897+08:00"}]"#;
        assert_eq!(
            verify(&h, spaced, APP_KEY, &[SECRET]),
            Err(DeliveryError::BadSignature)
        );
    }

    #[test]
    fn hmac_signature_when_the_push_says_so() {
        let body = br#"[{"tag":"0","msg_id":"0","data":"probe"}]"#;
        let sign = "7e0bd8b248471435f5a09b27cbc1a07f2cb00f625810bde9f3cc5b0ba7bc4a11";
        let h = headers(&[
            ("app-id", APP_KEY),
            ("event-sign", sign),
            ("sign-method", "hmac-sha256"),
        ]);
        assert_eq!(verify(&h, body, APP_KEY, &[SECRET]), Ok(()));
        // Without the header the same sign is read as MD5 and fails.
        let md5 = headers(&[("app-id", APP_KEY), ("event-sign", sign)]);
        assert_eq!(
            verify(&md5, body, APP_KEY, &[SECRET]),
            Err(DeliveryError::BadSignature)
        );
        let unknown = headers(&[
            ("app-id", APP_KEY),
            ("event-sign", sign),
            ("sign-method", "sha1"),
        ]);
        assert_eq!(
            verify(&unknown, body, APP_KEY, &[SECRET]),
            Err(DeliveryError::BadSignature)
        );
    }

    #[test]
    fn either_secret_of_a_rotation_verifies() {
        let h = headers(&[
            ("app-id", APP_KEY),
            ("event-sign", "880c81565568584d69c0ae6ff9ae221e"),
        ]);
        assert_eq!(verify(&h, PROBE, APP_KEY, &[b"new-secret", SECRET]), Ok(()));
        assert_eq!(verify(&h, PROBE, APP_KEY, &[SECRET, b"new-secret"]), Ok(()));
        assert_eq!(
            verify(&h, PROBE, APP_KEY, &[b"new-secret"]),
            Err(DeliveryError::BadSignature)
        );
        assert_eq!(
            verify(&h, PROBE, APP_KEY, &[]),
            Err(DeliveryError::BadSignature)
        );
    }

    #[test]
    fn headers_name_the_app_and_carry_the_sign() {
        let h = headers(&[
            ("app-id", "other-app"),
            ("event-sign", "880c81565568584d69c0ae6ff9ae221e"),
        ]);
        assert_eq!(app_key(&h), Ok("other-app".to_owned()));
        assert_eq!(
            verify(&h, PROBE, APP_KEY, &[SECRET]),
            Err(DeliveryError::WrongApp("other-app".to_owned()))
        );
        let none = HeaderMap::new();
        assert_eq!(app_key(&none), Err(DeliveryError::MissingHeader("app-id")));
        let unsigned = headers(&[("app-id", APP_KEY)]);
        assert_eq!(
            verify(&unsigned, PROBE, APP_KEY, &[SECRET]),
            Err(DeliveryError::MissingHeader("event-sign"))
        );
        let empty = headers(&[("app-id", APP_KEY), ("event-sign", "")]);
        assert_eq!(
            verify(&empty, PROBE, APP_KEY, &[SECRET]),
            Err(DeliveryError::BadSignature)
        );
        let not_hex = headers(&[("app-id", APP_KEY), ("event-sign", "zz")]);
        assert_eq!(
            verify(&not_hex, PROBE, APP_KEY, &[SECRET]),
            Err(DeliveryError::BadSignature)
        );
    }

    #[test]
    fn the_endpoint_check_is_a_probe() {
        assert_eq!(parse(PROBE), Ok(Delivery::Probe));
        assert_eq!(ACK, r#"{"code":0,"msg":"success"}"#);
    }

    #[test]
    fn created_keeps_ids_past_2_53_and_has_no_detail() {
        let data = r#"{"p_id":4881995531871913482,"s_ids":[4881995531871913482],"shop_id":18446744073709551616999,"order_status":1,"create_time":1640774086,"biz":2}"#;
        let notice = only_notice(&push("100", "m-100", data));
        assert_eq!(notice.order_id, "4881995531871913482");
        assert_eq!(notice.shop, "18446744073709551616999");
        assert_eq!(notice.event_key, "m-100");
        assert_eq!(notice.occurred_at, at(1640774086));
        assert_eq!(notice.version, None);
        assert_eq!(notice.change, Change::Created { order: None });
    }

    #[test]
    fn paid_shipped_and_cancelled() {
        let paid = only_notice(&push(
            "101",
            "m-101",
            r#"{"pay_amount":1990,"p_id":4837328765348566675,"shop_id":77977,"pay_time":1630373504,"pay_type":1}"#,
        ));
        assert_eq!(paid.change, Change::Paid { order: None });
        assert_eq!(paid.occurred_at, at(1630373504));

        // The ship time is `update_time`, unix seconds here.
        let shipped = only_notice(&push(
            "102",
            "m-102",
            r#"{"p_id":1,"shop_id":2,"order_status":3,"update_time":1630400000,"logistics_msg":{"logistics_code":"SF1"}}"#,
        ));
        assert_eq!(shipped.change, Change::Shipped);
        assert_eq!(shipped.occurred_at, at(1630400000));
        assert_eq!(shipped.version, Some(1630400000));

        let silent = only_notice(&push(
            "106",
            "m-106",
            r#"{"p_id":3,"shop_id":2,"cancel_time":1629993663,"cancel_reason":""}"#,
        ));
        assert_eq!(silent.change, Change::Cancelled { reason: None });
        let said = only_notice(&push(
            "106",
            "m-106b",
            r#"{"p_id":3,"shop_id":2,"cancel_time":1629993663,"cancel_reason":"买家取消"}"#,
        ));
        assert_eq!(
            said.change,
            Change::Cancelled {
                reason: Some("买家取消".to_owned())
            }
        );
    }

    #[test]
    fn refunds_requested_or_agreed_are_ignored() {
        let requested = only_notice(&push(
            "200",
            "m-200",
            r#"{"refund_amount":8900,"shop_id":10437917,"aftersale_id":7000893114000949517,"apply_time":1630022518,"s_id":4835804142146756441,"p_id":4835804142146756441,"refund_post_amount":0,"update_time":"2022-09-02T10:27:50+08:00"}"#,
        ));
        assert!(matches!(requested.change, Change::Ignored { .. }));
        assert_eq!(requested.occurred_at, at(1630022518));
        assert_eq!(requested.version, Some(1662085670));

        let agreed = only_notice(&push(
            "201",
            "m-201",
            r#"{"aftersale_id":1,"refund_amount":1,"agree_time":1630306403,"p_id":4834442890931275585,"shop_id":1111113779,"update_time":"2022-09-02T10:27:50+08:00"}"#,
        ));
        assert!(matches!(agreed.change, Change::Ignored { .. }));

        // `addr` is not JSON and is never read.
        let data = r#"{"p_id":457824112312123,"shop_id":77977,"refund_amount":1000,"refund_post_amount":100,"aftersale_id":657824112312121,"addr":"{city:深圳市,province:广东省}","agree_time":1630288054,"update_time":"2022-09-02T10:27:50+08:00"}"#;
        let returned = only_notice(&push("202", "m-202", data));
        assert!(matches!(returned.change, Change::Ignored { .. }));
        assert_eq!(returned.occurred_at, at(1630288054));
    }

    #[test]
    fn a_refund_counts_when_it_succeeds_without_its_shipping() {
        let data = r#"{"aftersale_id":7000893114000949517,"aftersale_status":12,"p_id":4835804142146756441,"s_id":4835804142146756441,"shop_id":10437917,"refund_amount":8900,"refund_post_amount":500,"success_time":1630030000,"update_time":"2022-09-02T10:27:50+08:00"}"#;
        let notice = only_notice(&push("206", "m-206", data));
        assert_eq!(
            notice.change,
            Change::Refunded {
                refund_id: "7000893114000949517".to_owned(),
                amount: dec("84.00"),
                shipping: dec("5.00"),
                lines: Vec::new(),
            }
        );
        assert_eq!(notice.occurred_at, at(1630030000));

        let one_fen = r#"{"aftersale_id":1,"p_id":2,"shop_id":3,"refund_amount":1,"success_time":1630030000}"#;
        match only_notice(&push("206", "m", one_fen)).change {
            Change::Refunded {
                amount, shipping, ..
            } => {
                assert_eq!(amount, dec("0.01"));
                assert_eq!(shipping, Decimal::ZERO);
            }
            other => panic!("{other:?}"),
        }

        let more_shipping = r#"{"aftersale_id":1,"p_id":2,"shop_id":3,"refund_amount":100,"refund_post_amount":101,"success_time":1}"#;
        assert_eq!(
            parse(&push("206", "m", more_shipping)),
            Err(DeliveryError::shape(
                "[0].data.refund_post_amount",
                "not between 0 and refund_amount"
            ))
        );
    }

    #[test]
    fn a_closed_refund_is_not_a_refund() {
        let data = r#"{"aftersale_id":1,"p_id":2,"shop_id":3,"refund_amount":8900,"close_time":1630030000}"#;
        let notice = only_notice(&push("207", "m-207", data));
        assert!(matches!(notice.change, Change::Ignored { .. }));
    }

    #[test]
    fn a_missing_msg_id_keys_the_event_by_tag_order_and_time() {
        let data = r#"{"p_id":4881995531871913482,"shop_id":94956,"create_time":1640774086}"#;
        assert_eq!(
            only_notice(&push("100", "", data)).event_key,
            "100:4881995531871913482:1640774086"
        );
        let body = format!(
            r#"[{{"tag":"100","data":{}}}]"#,
            serde_json::Value::String(data.to_owned())
        );
        assert_eq!(
            only_notice(body.as_bytes()).event_key,
            "100:4881995531871913482:1640774086"
        );
    }

    #[test]
    fn unknown_tags_are_unsubscribed_or_skipped() {
        let product = r#"{"product_id":3473196049974326153,"event":1}"#;
        assert_eq!(
            parse(&push("400", "m-400", product)),
            Ok(Delivery::Unsubscribed {
                event: "tag 400".to_owned()
            })
        );
        let created = serde_json::Value::String(
            r#"{"p_id":1,"shop_id":2,"create_time":1640774086}"#.to_owned(),
        );
        let product = serde_json::Value::String(product.to_owned());
        let mixed = format!(
            r#"[{{"tag":"400","msg_id":"a","data":{product}}},{{"tag":"100","msg_id":"b","data":{created}}}]"#
        );
        match parse(mixed.as_bytes()).unwrap() {
            Delivery::Notices(notices) => {
                assert_eq!(notices.len(), 1);
                assert_eq!(notices[0].event_key, "b");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn shape_errors_name_the_field() {
        assert!(
            matches!(parse(b"{}"), Err(DeliveryError::Shape { field, .. }) if field.is_empty())
        );
        assert!(matches!(parse(b"[]"), Err(DeliveryError::Shape { .. })));
        assert!(matches!(parse(b"\xff"), Err(DeliveryError::Shape { .. })));
        // `data` must be the double-encoded string, not the object itself.
        let inline =
            br#"[{"tag":"100","msg_id":"m","data":{"p_id":1,"shop_id":2,"create_time":1}}]"#;
        assert!(
            matches!(parse(inline), Err(DeliveryError::Shape { field, .. }) if field == "[0].data")
        );
        let no_order = push("100", "m", r#"{"shop_id":2,"create_time":1}"#);
        assert_eq!(
            parse(&no_order),
            Err(DeliveryError::shape("[0].data.p_id", "missing"))
        );
        let float_id = push(
            "100",
            "m",
            r#"{"p_id":4.881995531871913e18,"shop_id":2,"create_time":1}"#,
        );
        assert!(
            matches!(parse(&float_id), Err(DeliveryError::Shape { field, .. }) if field == "[0].data.p_id")
        );
        let good =
            serde_json::Value::String(r#"{"p_id":1,"shop_id":2,"create_time":1}"#.to_owned());
        let second_bad = format!(
            r#"[{{"tag":"100","msg_id":"a","data":{good}}},{{"tag":"101","msg_id":"b","data":"{{}}"}}]"#
        );
        assert_eq!(
            parse(second_bad.as_bytes()),
            Err(DeliveryError::shape("[1].data.p_id", "missing"))
        );
        let no_time = push("101", "m", r#"{"p_id":1,"shop_id":2}"#);
        assert_eq!(
            parse(&no_time),
            Err(DeliveryError::shape("[0].data.pay_time", "missing"))
        );
        let fen_float = push(
            "206",
            "m",
            r#"{"aftersale_id":1,"p_id":2,"shop_id":3,"refund_amount":89.5,"success_time":1}"#,
        );
        assert!(
            matches!(parse(&fen_float), Err(DeliveryError::Shape { field, .. }) if field == "[0].data.refund_amount")
        );
    }

    const DETAIL: &str = r#"{
        "code": 10000, "msg": "success", "sub_code": "", "sub_msg": "",
        "data": {"shop_order_detail": {
            "order_id": "6917533224570258991", "shop_id": 94956,
            "order_amount": 20800, "pay_amount": 17800, "post_amount": 800,
            "promotion_amount": 3000, "doudian_open_id": "1@#abc==",
            "post_addr": {"province": {"name": "浙江省", "id": "33"}, "city": {"name": "杭州市"}},
            "sku_order_list": [
                {"order_id": "6917533224570258992", "sku_id": 1736602913154052, "code": "TEE-RED-M",
                 "out_sku_id": "", "item_num": 2, "origin_amount": 5000, "goods_price": 6000,
                 "sum_amount": 10000, "pay_amount": 8400, "post_amount": 400},
                {"order_id": "6917533224570258993", "sku_id": 0, "code": "", "out_sku_id": "OUT-9",
                 "item_num": 1, "origin_amount": 10000, "pay_amount": 9400, "post_amount": 400}
            ]
        }},
        "log_id": "2021"
    }"#;

    #[test]
    fn order_detail_in_yuan_without_shipping() {
        let detail = parse_order_detail(DETAIL.as_bytes()).unwrap();
        assert_eq!(detail.buyer.as_deref(), Some("1@#abc=="));
        assert_eq!(detail.currency, "CNY");
        assert_eq!(detail.total, dec("170.00"));
        assert_eq!(
            detail.region.as_ref().map(crate::Region::code),
            Some("CN-ZJ")
        );
        assert_eq!(detail.province_text.as_deref(), Some("浙江省"));
        assert!(!detail.urgent);
        assert_eq!(
            detail.lines,
            vec![
                Line {
                    line_id: "6917533224570258992".to_owned(),
                    sku_code: Some("TEE-RED-M".to_owned()),
                    variant_id: Some("1736602913154052".to_owned()),
                    quantity: 2,
                    unit_price: dec("50.00"),
                    amount: dec("80.00"),
                },
                Line {
                    line_id: "6917533224570258993".to_owned(),
                    sku_code: Some("OUT-9".to_owned()),
                    variant_id: None,
                    quantity: 1,
                    unit_price: dec("100.00"),
                    amount: dec("90.00"),
                },
            ]
        );
    }

    #[test]
    fn order_detail_lines_already_without_shipping_are_taken_as_they_are() {
        let body = DETAIL
            .replace(r#""pay_amount": 8400"#, r#""pay_amount": 8000"#)
            .replace(r#""pay_amount": 9400"#, r#""pay_amount": 9000"#);
        let detail = parse_order_detail(body.as_bytes()).unwrap();
        assert_eq!(detail.total, dec("170.00"));
        let amounts: Vec<_> = detail.lines.iter().map(|l| l.amount).collect();
        assert_eq!(amounts, vec![dec("80.00"), dec("90.00")]);
    }

    #[test]
    fn order_detail_errors() {
        let refused = r#"{"code":40004,"msg":"业务处理失败","sub_code":"isv.business-failed:10005","sub_msg":"订单不存在","data":{}}"#;
        match parse_order_detail(refused.as_bytes()) {
            Err(DeliveryError::Shape { field, reason }) => {
                assert_eq!(field, "code");
                assert!(reason.contains("订单不存在"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
        let bad_num = DETAIL.replace(r#""item_num": 1"#, r#""item_num": "one""#);
        assert!(matches!(
            parse_order_detail(bad_num.as_bytes()),
            Err(DeliveryError::Shape { field, .. }) if field == "data.shop_order_detail.sku_order_list[1].item_num"
        ));
        let urgent = DETAIL.replace(r#""promotion_amount": 3000"#, r#""early_arrival": true"#);
        assert!(parse_order_detail(urgent.as_bytes()).unwrap().urgent);
        let masked = DETAIL.replace("post_addr", "mask_post_addr");
        assert_eq!(
            parse_order_detail(masked.as_bytes())
                .unwrap()
                .province_text
                .as_deref(),
            Some("浙江省")
        );
    }

    #[test]
    fn request_signing() {
        let params = serde_json::json!({"shop_order_id": "4881995531871913482"});
        let params = param_json(&params);
        assert_eq!(params, r#"{"shop_order_id":"4881995531871913482"}"#);
        // Derived with Python's hashlib/hmac from the documented pattern.
        assert_eq!(
            sign_request(
                APP_KEY,
                "secret-456",
                "order.orderDetail",
                &params,
                "1630373504",
                "2",
                SignMethod::Md5
            ),
            "bee495624d04e36524f0dd5f3cefa352"
        );
        assert_eq!(
            sign_request(
                APP_KEY,
                "secret-456",
                "order.orderDetail",
                &params,
                "1630373504",
                "2",
                SignMethod::HmacSha256
            ),
            "980b19bef611d5ecab19406dd2ab79868de857bad75f8d971dab15da78843933"
        );
        assert_eq!(SignMethod::HmacSha256.as_param(), "hmac-sha256");
    }

    #[test]
    fn param_json_sorts_every_level() {
        let params = serde_json::json!({
            "z": 1, "a": {"y": [ {"d": 1, "c": 2} ], "b": "<&>"}, "m": null
        });
        assert_eq!(
            param_json(&params),
            r#"{"a":{"b":"<&>","y":[{"c":2,"d":1}]},"m":null,"z":1}"#
        );
    }

    proptest::proptest! {
        #[test]
        fn parsing_never_panics(body in proptest::collection::vec(proptest::num::u8::ANY, 0..256)) {
            let _ = parse(&body);
            let _ = parse_order_detail(&body);
        }

        #[test]
        fn parsing_json_like_text_never_panics(body in r#"\[\{"tag":"(0|100|106|206)","msg_id":"[a-z]{0,3}","data":"\{[-a-z0-9_:,\\"]{0,40}\}"\}\]"#) {
            let _ = parse(body.as_bytes());
        }
    }

    #[test]
    fn an_empty_secret_never_verifies() {
        let unkeyed = md5_of(&[APP_KEY.as_bytes(), PROBE]);
        let h = headers(&[("app-id", APP_KEY), ("event-sign", &hex::encode(unkeyed))]);
        assert_eq!(
            verify(&h, PROBE, APP_KEY, &[b""]),
            Err(DeliveryError::BadSignature)
        );
    }
}
