//! 抖店 pushes: `app_key`, `verify` and `parse` on one push, and
//! `parse_order_detail` on the same bytes (the corpus holds both shapes).
//!
//! Input: four selector bytes, then the raw body.
//! - byte 0, flags: bit 0 signs the body for real (else byte 2 picks a bad
//!   signature), bit 1 signs it with the previous secret, bit 2 writes the
//!   hex in capitals, bit 3 signs with the other method than `sign-method`
//!   names, bit 4 names another app in `app-id`, bit 5 leaves `app-id` out,
//!   bit 6 pads `event-sign` with spaces;
//! - byte 1: the `sign-method` header ([`SIGN_METHODS`]); byte 2: the bad
//!   signature ([`BAD_SIGNATURES`]); byte 3: unused, for room to grow.

#![no_main]

use hmac::{Hmac, Mac};
use http::{HeaderMap, HeaderValue};
use libfuzzer_sys::fuzz_target;
use md5::{Digest, Md5};
use rust_decimal::Decimal;
use serde::de::IgnoredAny;
use sha2::Sha256;
use tier_platforms::{Change, Delivery, DeliveryError, OrderDetail, Region, doudian};

const APP_KEY: &str = "7152429938475910656";
const OTHER_APP: &str = "7152429938475910657";
const SECRET: &[u8] = b"fuzz-app-secret-current";
const PREVIOUS: &[u8] = b"fuzz-app-secret-previous";
/// Another app's: what a forged or misrouted delivery is signed with.
const OTHER: &[u8] = b"fuzz-app-secret-of-another";
/// A secret no input here is ever signed with.
const UNUSED: &[u8] = b"a-secret-that-signs-nothing";

#[derive(Clone, Copy, PartialEq)]
enum Method {
    Md5,
    HmacSha256,
    /// A method the platform does not define: nothing can verify under it.
    Unknown,
}

/// `None` is the header left out, which means MD5.
const SIGN_METHODS: [(Option<&str>, Method); 6] = [
    (None, Method::Md5),
    (Some("md5"), Method::Md5),
    (Some("MD5"), Method::Md5),
    (Some("hmac-sha256"), Method::HmacSha256),
    (Some(" HMAC-SHA256 "), Method::HmacSha256),
    (Some("sha1"), Method::Unknown),
];

#[derive(Clone, Copy)]
enum BadSignature {
    Absent,
    Empty,
    NotHex,
    WrongSecret,
    /// The right digest less its last byte.
    Truncated,
}
const BAD_SIGNATURES: [BadSignature; 5] = [
    BadSignature::Absent,
    BadSignature::Empty,
    BadSignature::NotHex,
    BadSignature::WrongSecret,
    BadSignature::Truncated,
];

/// The documented rule: MD5, or HMAC-SHA256 keyed with the secret, over
/// app key + raw body + app secret.
fn sign(method: Method, secret: &[u8], body: &[u8]) -> Vec<u8> {
    let parts: [&[u8]; 3] = [APP_KEY.as_bytes(), body, secret];
    match method {
        Method::HmacSha256 => {
            let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key");
            for part in parts {
                mac.update(part);
            }
            mac.finalize().into_bytes().to_vec()
        }
        Method::Md5 | Method::Unknown => {
            let mut md5 = Md5::new();
            for part in parts {
                md5.update(part);
            }
            md5.finalize().to_vec()
        }
    }
}

/// Amounts are whole fen: yuan with at most two decimals.
fn whole_fen(amount: Decimal) -> bool {
    amount.normalize().scale() <= 2
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 4 {
        return;
    }
    let (select, body) = data.split_at(4);
    let flags = select[0];
    let authentic = flags & 1 != 0;
    let with_previous = flags & 2 != 0;
    let capitals = flags & 4 != 0;
    let crossed = flags & 8 != 0;
    let other_app = flags & 16 != 0;
    let no_app_id = flags & 32 != 0;
    let padded = flags & 64 != 0;
    let (method_name, method) = SIGN_METHODS[usize::from(select[1]) % SIGN_METHODS.len()];

    let signature = if authentic {
        let signed_as = match (method, crossed) {
            (Method::Md5, true) => Method::HmacSha256,
            (Method::HmacSha256, true) => Method::Md5,
            (named, _) => named,
        };
        let key = if with_previous { PREVIOUS } else { SECRET };
        Some(hex::encode(sign(signed_as, key, body)))
    } else {
        match BAD_SIGNATURES[usize::from(select[2]) % BAD_SIGNATURES.len()] {
            BadSignature::Absent => None,
            BadSignature::Empty => Some(String::new()),
            BadSignature::NotHex => Some("zz".repeat(16)),
            BadSignature::WrongSecret => Some(hex::encode(sign(method, OTHER, body))),
            BadSignature::Truncated => {
                let mut digest = sign(method, SECRET, body);
                digest.pop();
                Some(hex::encode(digest))
            }
        }
    };
    let signature = signature.map(|hex| match (capitals, padded) {
        (false, false) => hex,
        (true, false) => hex.to_ascii_uppercase(),
        (false, true) => format!("  {hex} "),
        (true, true) => format!("  {} ", hex.to_ascii_uppercase()),
    });

    let mut headers = HeaderMap::new();
    if !no_app_id {
        let app = if other_app { OTHER_APP } else { APP_KEY };
        headers.insert("app-id", HeaderValue::from_static(app));
    }
    if let Some(signature) = &signature {
        headers.insert("event-sign", HeaderValue::from_str(signature).unwrap());
    }
    if let Some(name) = method_name {
        headers.insert("sign-method", HeaderValue::from_static(name));
    }

    // app_key: the header, trimmed, or a refusal.
    let app = doudian::app_key(&headers);
    assert_eq!(app, doudian::app_key(&headers));
    match (no_app_id, other_app) {
        (true, _) => assert_eq!(app, Err(DeliveryError::MissingHeader("app-id"))),
        (false, true) => assert_eq!(app.as_deref(), Ok(OTHER_APP)),
        (false, false) => assert_eq!(app.as_deref(), Ok(APP_KEY)),
    }

    // verify: only a push for this app, signed with one of the secrets
    // passed by the method its header names, verifies.
    let verifies = authentic && !crossed && method != Method::Unknown && !other_app && !no_app_id;
    let current = doudian::verify(&headers, body, APP_KEY, &[SECRET]);
    assert_eq!(current, doudian::verify(&headers, body, APP_KEY, &[SECRET]));
    assert_eq!(current.is_ok(), verifies && !with_previous, "{current:?}");
    let rotating = doudian::verify(&headers, body, APP_KEY, &[PREVIOUS, SECRET]);
    assert_eq!(rotating.is_ok(), verifies, "{rotating:?}");
    assert_eq!(
        rotating,
        doudian::verify(&headers, body, APP_KEY, &[SECRET, PREVIOUS])
    );
    let refusing: [&[&[u8]]; 2] = [&[UNUSED], &[]];
    for secrets in refusing {
        let refused = doudian::verify(&headers, body, APP_KEY, secrets).unwrap_err();
        if no_app_id {
            assert_eq!(refused, DeliveryError::MissingHeader("app-id"));
        } else if other_app {
            assert_eq!(refused, DeliveryError::WrongApp(OTHER_APP.to_owned()));
        } else if signature.is_none() {
            assert_eq!(refused, DeliveryError::MissingHeader("event-sign"));
        } else {
            assert_eq!(refused, DeliveryError::BadSignature);
        }
    }
    if !no_app_id {
        // A push signed for this app is not another app's, whatever its
        // signature.
        assert!(matches!(
            doudian::verify(&headers, body, "another-app", &[SECRET, PREVIOUS]),
            Err(DeliveryError::WrongApp(_))
        ));
    }
    if verifies {
        let mut longer = body.to_vec();
        longer.push(b' ');
        assert_eq!(
            doudian::verify(&headers, &longer, APP_KEY, &[SECRET, PREVIOUS]),
            Err(DeliveryError::BadSignature)
        );
    }

    check_push(body);
    check_order_detail(body);
});

fn check_push(body: &[u8]) {
    let parsed = doudian::parse(body);
    assert_eq!(parsed, doudian::parse(body));
    let Ok(delivery) = parsed else { return };
    // Whatever parsed is a JSON array of messages.
    let messages: Vec<IgnoredAny> = serde_json::from_slice(body).expect("a push is an array");
    assert!(!messages.is_empty());
    match delivery {
        Delivery::Probe => {}
        Delivery::Unsubscribed { event } => assert!(event.starts_with("tag "), "{event:?}"),
        Delivery::Notices(notices) => {
            assert!(!notices.is_empty());
            // One message is at most one notice.
            assert!(notices.len() <= messages.len());
            for notice in &notices {
                assert!(!notice.shop.is_empty());
                assert!(!notice.order_id.is_empty());
                assert!(!notice.event_key.is_empty());
                match &notice.change {
                    // The pushes carry no lines: intake fetches the detail.
                    Change::Created { order } | Change::Paid { order } => {
                        assert_eq!(*order, None)
                    }
                    Change::Refunded {
                        refund_id,
                        amount,
                        shipping,
                        lines,
                    } => {
                        assert!(!refund_id.is_empty());
                        assert!(*amount >= Decimal::ZERO, "refunded {amount}");
                        assert!(*shipping >= Decimal::ZERO, "shipping refunded {shipping}");
                        assert!(whole_fen(*amount) && whole_fen(*shipping));
                        // The push names no quantity to return stock by.
                        assert!(lines.is_empty());
                    }
                    Change::Cancelled { .. } | Change::Shipped | Change::Ignored { .. } => {}
                }
            }
        }
    }
}

fn check_order_detail(body: &[u8]) {
    let parsed = doudian::parse_order_detail(body);
    assert_eq!(parsed, doudian::parse_order_detail(body));
    let Ok(OrderDetail {
        currency,
        total,
        lines,
        region,
        province_text,
        ..
    }) = parsed
    else {
        return;
    };
    assert_eq!(currency, "CNY");
    // What the buyer paid: never less than nothing.
    assert!(total >= Decimal::ZERO, "total {total}");
    assert!(whole_fen(total));
    for line in &lines {
        assert!(!line.line_id.is_empty());
        assert!(line.amount >= Decimal::ZERO, "line amount {}", line.amount);
        assert!(whole_fen(line.amount) && whole_fen(line.unit_price));
    }
    // 抖店 names the province in words: the region is what the table makes
    // of them.
    assert_eq!(
        region,
        province_text
            .as_deref()
            .and_then(Region::from_china_province)
    );
}
