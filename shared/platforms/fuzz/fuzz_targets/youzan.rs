//! 有赞 pushes: `client_id`, `verify` (with and without `Event-Sign`) and
//! `parse` on one push, its local times read in Asia/Shanghai.
//!
//! Input: four selector bytes, then the raw body.
//! - byte 0, flags: bit 0 sends an `Event-Sign` made for real, bit 1 makes it
//!   (and the in-body `sign`) with the previous secret, bit 2 sends a bad
//!   `Event-Sign` ([`BAD_SIGNATURES`], by byte 1) where bit 0 sends none,
//!   bit 3 rewrites the body's `sign` to the real legacy one, bit 4 writes
//!   the hex in capitals, bit 5 pads the header with spaces;
//! - byte 1: the bad `Event-Sign`; byte 2, bit 0: also read the push in a
//!   zone with daylight saving time; byte 3: unused, for room to grow.

#![no_main]

use chrono_tz::Tz;
use http::{HeaderMap, HeaderValue};
use libfuzzer_sys::fuzz_target;
use md5::{Digest, Md5};
use rust_decimal::Decimal;
use tier_platforms::{Change, Delivery, DeliveryError, Region, youzan};

const CLIENT_ID: &str = "c0ffee5eed0fa11ed1";
const SECRET: &[u8] = b"fuzz-client-secret-current";
const PREVIOUS: &[u8] = b"fuzz-client-secret-previous";
/// Another app's: what a forged or misrouted delivery is signed with.
const OTHER: &[u8] = b"fuzz-client-secret-of-another";
/// A secret no input here is ever signed with.
const UNUSED: &[u8] = b"a-secret-that-signs-nothing";

#[derive(Clone, Copy)]
enum BadSignature {
    Empty,
    NotHex,
    WrongSecret,
    /// Client id and secret swapped.
    Swapped,
    /// The legacy in-body rule's digest, sent as the header.
    OverMsg,
}
const BAD_SIGNATURES: [BadSignature; 5] = [
    BadSignature::Empty,
    BadSignature::NotHex,
    BadSignature::WrongSecret,
    BadSignature::Swapped,
    BadSignature::OverMsg,
];

fn md5_hex(parts: &[&[u8]]) -> String {
    let mut md5 = Md5::new();
    for part in parts {
        md5.update(part);
    }
    hex::encode(md5.finalize())
}

/// Whether the body's own `sign` is the legacy rule's, MD5(client id +
/// `msg` + secret) with `msg` still URL-encoded, for one of `keys`:
/// computed here rather than assumed from the flags, since a body may
/// carry that sign without this target having written it. `None` where
/// serde_json's tree cannot read the envelope (a number past f64, say) and
/// so cannot tell.
fn legacy_signed_with(body: &[u8], keys: &[&[u8]]) -> Option<bool> {
    let envelope: serde_json::Value = serde_json::from_slice(body).ok()?;
    let text = |key| envelope.get(key).and_then(serde_json::Value::as_str);
    let (Some(sign), Some(msg)) = (text("sign"), text("msg")) else {
        return Some(false);
    };
    Some(keys.iter().any(|key| {
        sign.trim()
            .eq_ignore_ascii_case(&md5_hex(&[CLIENT_ID.as_bytes(), msg.as_bytes(), key]))
    }))
}

fn msg_of(body: &[u8]) -> Option<String> {
    let envelope: serde_json::Value = serde_json::from_slice(body).ok()?;
    Some(envelope.get("msg")?.as_str()?.to_owned())
}

/// The body with its first `"sign":"…"` replaced by `sign`, when it is
/// written that way (it may also be a nested object's: the check above
/// tells).
fn with_sign(body: &[u8], sign: &str) -> Option<Vec<u8>> {
    const KEY: &[u8] = b"\"sign\":\"";
    let start = body.windows(KEY.len()).position(|w| w == KEY)? + KEY.len();
    let end = start + body[start..].iter().position(|&b| b == b'"')?;
    let mut patched = body[..start].to_vec();
    patched.extend_from_slice(sign.as_bytes());
    patched.extend_from_slice(&body[end..]);
    Some(patched)
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 4 {
        return;
    }
    let (select, body) = data.split_at(4);
    let flags = select[0];
    let authentic_header = flags & 1 != 0;
    let with_previous = flags & 2 != 0;
    let bad_header = !authentic_header && flags & 4 != 0;
    let legacy_signed = flags & 8 != 0;
    let capitals = flags & 16 != 0;
    let padded = flags & 32 != 0;
    let key = if with_previous { PREVIOUS } else { SECRET };
    let case = |hex: String| {
        if capitals {
            hex.to_ascii_uppercase()
        } else {
            hex
        }
    };

    // The in-body rule signs `msg`, not the body, so the body can carry its
    // own signature; the fuzzer cannot compute an MD5, so it is made here.
    let mut body = body.to_vec();
    if legacy_signed
        && let Some(msg) = msg_of(&body)
        && let Some(patched) = with_sign(
            &body,
            &case(md5_hex(&[CLIENT_ID.as_bytes(), msg.as_bytes(), key])),
        )
    {
        body = patched;
    }
    let body = body.as_slice();

    let header = if authentic_header {
        Some(case(md5_hex(&[CLIENT_ID.as_bytes(), body, key])))
    } else if bad_header {
        Some(
            match BAD_SIGNATURES[usize::from(select[1]) % BAD_SIGNATURES.len()] {
                BadSignature::Empty => String::new(),
                BadSignature::NotHex => "not-hex".to_owned(),
                BadSignature::WrongSecret => md5_hex(&[CLIENT_ID.as_bytes(), body, OTHER]),
                BadSignature::Swapped => md5_hex(&[SECRET, body, CLIENT_ID.as_bytes()]),
                BadSignature::OverMsg => {
                    let msg = msg_of(body).unwrap_or_default();
                    md5_hex(&[CLIENT_ID.as_bytes(), msg.as_bytes(), SECRET])
                }
            },
        )
    } else {
        None
    };
    let mut headers = HeaderMap::new();
    if let Some(sign) = &header {
        let sign = if padded {
            format!(" {sign}  ")
        } else {
            sign.clone()
        };
        headers.insert("event-sign", HeaderValue::from_str(&sign).unwrap());
    }

    // client_id: the body's, never blank.
    let named = youzan::client_id(body);
    assert_eq!(named, youzan::client_id(body));
    if let Ok(id) = &named {
        assert!(!id.trim().is_empty());
    }

    // verify: the header when it is sent, else the body's `sign`; a push
    // naming another app is refused whatever its signature. Whether the
    // header is right is computed, not taken from the flags: a bad one can
    // come out right (the digest over `msg` is the real one when the body
    // is empty).
    let header_signed = |keys: &[&[u8]]| {
        header.as_deref().map(|sign| {
            keys.iter()
                .any(|key| sign.eq_ignore_ascii_case(&md5_hex(&[CLIENT_ID.as_bytes(), body, key])))
        })
    };
    let current = youzan::verify(&headers, body, CLIENT_ID, &[SECRET]);
    let rotating = youzan::verify(&headers, body, CLIENT_ID, &[PREVIOUS, SECRET]);
    assert_eq!(
        current,
        youzan::verify(&headers, body, CLIENT_ID, &[SECRET])
    );
    assert_eq!(
        rotating,
        youzan::verify(&headers, body, CLIENT_ID, &[SECRET, PREVIOUS])
    );
    let refusing: [&[&[u8]]; 2] = [&[UNUSED], &[]];
    for secrets in refusing {
        let refused = youzan::verify(&headers, body, CLIENT_ID, secrets);
        assert!(refused.is_err(), "verified without the secret");
    }
    match named.as_deref() {
        Ok(other) if other != CLIENT_ID => {
            let refused = Err(DeliveryError::WrongApp(other.to_owned()));
            assert_eq!(current, refused);
            assert_eq!(rotating, refused);
        }
        Ok(_) => {
            // Ours: the signature alone decides.
            let (signed_current, signed_either) = if header.is_some() {
                (header_signed(&[SECRET]), header_signed(&[SECRET, PREVIOUS]))
            } else {
                (
                    legacy_signed_with(body, &[SECRET]),
                    legacy_signed_with(body, &[SECRET, PREVIOUS]),
                )
            };
            if let Some(signed) = signed_current {
                assert_eq!(current.is_ok(), signed, "{current:?}");
            }
            if let Some(signed) = signed_either {
                assert_eq!(rotating.is_ok(), signed, "{rotating:?}");
            }
            if authentic_header {
                let mut longer = body.to_vec();
                longer.push(b' ');
                assert_eq!(
                    youzan::verify(&headers, &longer, CLIENT_ID, &[SECRET, PREVIOUS]),
                    Err(DeliveryError::BadSignature)
                );
            }
        }
        Err(_) => {}
    }
    if header_signed(&[SECRET, PREVIOUS]) == Some(false) {
        // A header that is sent and wrong is not rescued by the body's sign.
        assert!(rotating.is_err(), "a bad Event-Sign verified");
    }

    let parsed = check_parse(body, chrono_tz::Asia::Shanghai);
    if select[2] & 1 != 0 {
        // The zone reads the local times and nothing else.
        let elsewhere = check_parse(body, chrono_tz::America::New_York);
        assert_eq!(
            parsed.is_ok(),
            elsewhere.is_ok(),
            "{parsed:?} / {elsewhere:?}"
        );
        assert_eq!(parsed.map(timeless).ok(), elsewhere.map(timeless).ok());
    }
});

/// A delivery with its notices' times blanked out.
fn timeless(delivery: Delivery) -> Delivery {
    match delivery {
        Delivery::Notices(mut notices) => {
            for notice in &mut notices {
                notice.occurred_at = chrono::DateTime::UNIX_EPOCH;
            }
            Delivery::Notices(notices)
        }
        other => other,
    }
}

fn check_parse(body: &[u8], tz: Tz) -> Result<Delivery, DeliveryError> {
    let parsed = youzan::parse(body, tz);
    assert_eq!(parsed, youzan::parse(body, tz));
    match &parsed {
        Ok(Delivery::Probe) | Err(_) => {}
        Ok(Delivery::Unsubscribed { event }) => assert!(!event.trim().is_empty()),
        Ok(Delivery::Notices(notices)) => {
            assert_eq!(notices.len(), 1, "one push is one message");
            let notice = &notices[0];
            assert!(!notice.shop.is_empty());
            assert!(!notice.order_id.is_empty());
            assert!(!notice.event_key.is_empty());
            // Every push numbers its order's states.
            assert!(notice.version.is_some());
            match &notice.change {
                Change::Created { order: Some(order) } | Change::Paid { order: Some(order) } => {
                    assert_eq!(order.currency, "CNY");
                    // The buyer's payment less shipping: never less than
                    // nothing.
                    assert!(order.total >= Decimal::ZERO, "total {}", order.total);
                    for line in &order.lines {
                        assert!(!line.line_id.is_empty());
                    }
                    if let Some(text) = &order.province_text {
                        assert!(!text.trim().is_empty());
                    }
                    assert_eq!(
                        order.region,
                        order
                            .province_text
                            .as_deref()
                            .and_then(Region::from_china_province)
                    );
                }
                Change::Refunded {
                    refund_id,
                    amount,
                    shipping,
                    lines,
                } => {
                    assert!(!refund_id.is_empty());
                    assert!(*amount >= Decimal::ZERO, "refunded {amount}");
                    // The message states neither shipping nor quantities.
                    assert_eq!(*shipping, Decimal::ZERO);
                    assert!(lines.is_empty());
                }
                _ => {}
            }
        }
    }
    parsed
}
