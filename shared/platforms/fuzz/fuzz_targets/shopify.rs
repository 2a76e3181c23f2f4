//! Shopify webhooks: `shop_domain`, `verify` and `parse` on one delivery.
//!
//! Input: six selector bytes, then the raw body.
//! - byte 0, flags: bit 0 signs the body for real (else byte 4 picks a bad
//!   signature), bit 1 signs it with the previous secret, bit 2 pads the
//!   signature with spaces and a tab, bit 3 sends the unprefixed header names
//!   of Shopify's newer deliveries (`Shopify-Topic`), bit 4 sends the topic in
//!   capitals, bit 5 leaves the webhook id out;
//! - byte 1: the topic ([`TOPICS`]); byte 2: the shop domain ([`DOMAINS`]);
//!   byte 3: the event id ([`EVENT_IDS`]); byte 4: the bad signature
//!   ([`BAD_SIGNATURES`]); byte 5: the trigger time ([`TRIGGERED_AT`]).
//!
//! A real signature lets the fuzzer reach `parse` with deliveries that pass
//! `verify`, as production would, instead of only with forgeries.

#![no_main]

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use http::{HeaderMap, HeaderName, HeaderValue};
use libfuzzer_sys::fuzz_target;
use rust_decimal::Decimal;
use sha2::Sha256;
use tier_platforms::{Change, Delivery, DeliveryError, shopify};

const SECRET: &[u8] = b"shpss_fuzz_current_secret";
const PREVIOUS: &[u8] = b"shpss_fuzz_previous_secret";
/// Another app's: what a forged or misrouted delivery is signed with.
const OTHER: &[u8] = b"shpss_fuzz_some_other_app";
/// A secret no input here is ever signed with.
const UNUSED: &[u8] = b"a-secret-that-signs-nothing";

/// The five topics the product reads, and one it is never subscribed to.
const TOPICS: [&str; 6] = [
    "orders/create",
    "orders/paid",
    "orders/cancelled",
    "orders/fulfilled",
    "refunds/create",
    "products/update",
];
const UNSUBSCRIBED: usize = 5;

/// Well-formed, the same in capitals, malformed ones, and absent (`None`).
/// `\xE9` is a byte HTTP allows in a header but that is not visible ASCII.
const DOMAINS: [Option<&[u8]>; 7] = [
    Some(b"fuzz-shop.myshopify.com"),
    Some(b"  Fuzz-Shop.MyShopify.COM "),
    Some(b"-fuzz-.myshopify.com"),
    Some(b"shop.example.com"),
    Some(b"caf\xE9.myshopify.com"),
    Some(b""),
    None,
];

const EVENT_IDS: [Option<&[u8]>; 4] = [
    Some(b"b54557e4-bdd9-4b37-8a5f-bf7d70bcd043"),
    Some(b" 98880550 "),
    Some(b""),
    None,
];

const WEBHOOK_ID: &[u8] = b"b1a4fd7b-3b4c-4ab2-9e3b-1c5ed6d5c2d1";

const TRIGGERED_AT: [Option<&[u8]>; 4] = [
    Some(b"2024-05-01T10:00:00.123456789Z"),
    Some(b"2024-05-01T18:00:00+08:00"),
    Some(b"yesterday"),
    None,
];

#[derive(Clone, Copy)]
enum BadSignature {
    Absent,
    Empty,
    NotBase64,
    /// The right digest in hex, which Shopify never sends.
    Hex,
    /// Another app's secret.
    WrongSecret,
    /// The right secret over the body plus a newline: a re-serialised body.
    OtherBody,
}
const BAD_SIGNATURES: [BadSignature; 6] = [
    BadSignature::Absent,
    BadSignature::Empty,
    BadSignature::NotBase64,
    BadSignature::Hex,
    BadSignature::WrongSecret,
    BadSignature::OtherBody,
];

fn hmac(secret: &[u8], body: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key");
    mac.update(body);
    mac.finalize().into_bytes().to_vec()
}

/// Headers under the documented `X-Shopify-*` names or the unprefixed
/// ones; values that HTTP would not carry are left out.
fn headers(fields: &[(&str, Option<Vec<u8>>)], prefixed: bool) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in fields {
        let Some(value) = value else { continue };
        let name = if prefixed {
            format!("x-shopify-{name}")
        } else {
            format!("shopify-{name}")
        };
        if let Ok(value) = HeaderValue::from_bytes(value) {
            map.insert(HeaderName::from_bytes(name.as_bytes()).unwrap(), value);
        }
    }
    map
}

fn header_text<'a>(map: &'a HeaderMap, name: &str) -> Option<&'a str> {
    map.get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 6 {
        return;
    }
    let (select, body) = data.split_at(6);
    let flags = select[0];
    let authentic = flags & 1 != 0;
    let with_previous = flags & 2 != 0;
    let padded = flags & 4 != 0;
    let prefixed = flags & 8 == 0;
    let capitals = flags & 16 != 0;
    let no_webhook_id = flags & 32 != 0;
    let topic_index = usize::from(select[1]) % TOPICS.len();
    let topic = if capitals {
        TOPICS[topic_index].to_ascii_uppercase()
    } else {
        TOPICS[topic_index].to_owned()
    };

    let signature = if authentic {
        let key = if with_previous { PREVIOUS } else { SECRET };
        let text = STANDARD.encode(hmac(key, body));
        Some(if padded { format!(" {text}\t") } else { text }.into_bytes())
    } else {
        match BAD_SIGNATURES[usize::from(select[4]) % BAD_SIGNATURES.len()] {
            BadSignature::Absent => None,
            BadSignature::Empty => Some(Vec::new()),
            BadSignature::NotBase64 => Some(b"not base64!".to_vec()),
            BadSignature::Hex => Some(hex::encode(hmac(SECRET, body)).into_bytes()),
            BadSignature::WrongSecret => Some(STANDARD.encode(hmac(OTHER, body)).into_bytes()),
            BadSignature::OtherBody => {
                let mut other = body.to_vec();
                other.push(b'\n');
                Some(STANDARD.encode(hmac(SECRET, &other)).into_bytes())
            }
        }
    };
    let fields = [
        ("topic", Some(topic.clone().into_bytes())),
        ("hmac-sha256", signature.clone()),
        (
            "shop-domain",
            DOMAINS[usize::from(select[2]) % DOMAINS.len()].map(<[u8]>::to_vec),
        ),
        (
            "event-id",
            EVENT_IDS[usize::from(select[3]) % EVENT_IDS.len()].map(<[u8]>::to_vec),
        ),
        ("webhook-id", (!no_webhook_id).then(|| WEBHOOK_ID.to_vec())),
        (
            "triggered-at",
            TRIGGERED_AT[usize::from(select[5]) % TRIGGERED_AT.len()].map(<[u8]>::to_vec),
        ),
        ("api-version", Some(b"2024-10".to_vec())),
    ];
    let sent = headers(&fields, prefixed);
    // The same delivery under the other spelling of the header names, which
    // Shopify's newer deliveries use and which must read the same.
    let respelled = headers(&fields, !prefixed);

    // shop_domain: lowercased, and only ever `<name>.myshopify.com`.
    let shop = shopify::shop_domain(&sent);
    assert_eq!(shop, shopify::shop_domain(&sent));
    assert_eq!(shop, shopify::shop_domain(&respelled));
    if let Ok(domain) = &shop {
        let name = domain
            .strip_suffix(".myshopify.com")
            .expect("a myshopify domain");
        assert!(!name.is_empty(), "{domain:?}");
        assert_eq!(*domain, domain.to_ascii_lowercase());
    }

    // verify: a signature made with one of the secrets passed verifies, and
    // nothing else does.
    let signed_with_secret = authentic && !with_previous;
    let current = shopify::verify(&sent, body, &[SECRET]);
    assert_eq!(current, shopify::verify(&sent, body, &[SECRET]));
    assert_eq!(current, shopify::verify(&respelled, body, &[SECRET]));
    assert_eq!(current.is_ok(), signed_with_secret, "{current:?}");
    let rotating = shopify::verify(&sent, body, &[PREVIOUS, SECRET]);
    assert_eq!(rotating.is_ok(), authentic, "{rotating:?}");
    assert_eq!(rotating, shopify::verify(&sent, body, &[SECRET, PREVIOUS]));
    let refusing: [&[&[u8]]; 3] = [&[UNUSED], &[], &[&b""[..]]];
    for secrets in refusing {
        let refused = shopify::verify(&sent, body, secrets).unwrap_err();
        let expected = if signature.is_none() {
            DeliveryError::MissingHeader("X-Shopify-Hmac-Sha256")
        } else {
            DeliveryError::BadSignature
        };
        assert_eq!(refused, expected);
    }
    if authentic {
        let mut longer = body.to_vec();
        longer.push(b' ');
        assert_eq!(
            shopify::verify(&sent, &longer, &[SECRET, PREVIOUS]),
            Err(DeliveryError::BadSignature)
        );
    }

    // parse: the event is the topic header's.
    let parsed = shopify::parse(&sent, body);
    assert_eq!(parsed, shopify::parse(&sent, body));
    assert_eq!(parsed, shopify::parse(&respelled, body));
    if topic_index == UNSUBSCRIBED {
        // Acknowledged without reading the body, whatever it holds.
        assert_eq!(parsed, Ok(Delivery::Unsubscribed { event: topic }));
        return;
    }
    let Ok(delivery) = parsed else { return };
    let Delivery::Notices(notices) = delivery else {
        panic!("a subscribed topic gave {delivery:?}");
    };
    assert_eq!(notices.len(), 1, "one webhook is one event");
    let notice = &notices[0];
    assert_eq!(
        Ok(&notice.shop),
        shop.as_ref(),
        "the notice's shop is the header's"
    );
    let event_id = header_text(
        &sent,
        if prefixed {
            "x-shopify-event-id"
        } else {
            "shopify-event-id"
        },
    );
    let webhook_id = header_text(
        &sent,
        if prefixed {
            "x-shopify-webhook-id"
        } else {
            "shopify-webhook-id"
        },
    );
    assert_eq!(
        Some(notice.event_key.as_str()),
        event_id.or(webhook_id),
        "duplicates are found by the event id, else the webhook id"
    );
    assert!(!notice.order_id.is_empty());
    match (topic_index, &notice.change) {
        (0, Change::Created { order: Some(_) }) | (1, Change::Paid { order: Some(_) }) => {}
        (2, Change::Cancelled { .. }) | (3, Change::Shipped) => {}
        (
            4,
            Change::Refunded {
                refund_id,
                shipping,
                ..
            },
        ) => {
            assert!(!refund_id.is_empty());
            // Shopify writes refunded shipping negative in some versions and
            // positive in others; it is read as the amount given back.
            assert!(*shipping >= Decimal::ZERO, "shipping refunded {shipping}");
        }
        (topic, change) => panic!("{} gave {change:?}", TOPICS[topic]),
    }
});
