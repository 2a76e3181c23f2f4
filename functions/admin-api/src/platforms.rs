//! Connected platforms: apps and their secrets, a store's SKU mapping, and
//! the orders held until they can be counted.

use std::collections::HashMap;

use tier_domain::ids::AppId;
use tier_platforms::mapping;
use tier_platforms::translate::HoldReason;
use tier_store::platforms::{Admission, AppError, HeldOrder, notice_codes};

use super::*;

/// Signing secrets are long random strings; a short one is a mistake.
const SECRET_LEN: std::ops::RangeInclusive<usize> = 16..=512;
/// Held orders released per call: a call stays well inside the function's
/// time limit, and says how many remain.
const RELEASE_BATCH: usize = 500;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AppDoc {
    /// 抖店 `app_key`, 有赞 `client_id`: required there, absent for Shopify.
    #[serde(default)]
    app_key: Option<String>,
    secret: String,
    /// Keep accepting the secret this one replaces (a rotation).
    #[serde(default = "yes")]
    keep_previous: bool,
}

fn yes() -> bool {
    true
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReleaseDoc {
    #[serde(default)]
    platform: Option<Platform>,
    #[serde(default)]
    store: Option<StoreId>,
}

pub(crate) fn native(platform: &Platform) -> bool {
    tier_platforms::NATIVE_PLATFORMS.contains(&platform.as_str())
}

impl AdminApi {
    pub(crate) async fn put_platform_app(
        &self,
        platform: Platform,
        app: AppId,
        body: &[u8],
    ) -> Result<Response<Body>, ApiError> {
        if !native(&platform) {
            return Err(unknown_platform(&platform));
        }
        let doc: AppDoc = http::parse_json(body)?;
        if !SECRET_LEN.contains(&doc.secret.chars().count()) || doc.secret.trim() != doc.secret {
            return Err(ApiError::unprocessable(
                "invalid_secret",
                format!(
                    "a secret has {} to {} characters and no surrounding blanks",
                    SECRET_LEN.start(),
                    SECRET_LEN.end()
                ),
            ));
        }
        let key = doc.app_key.as_deref().map(str::trim);
        match (platform.as_str(), key) {
            ("shopify", Some(_)) => {
                return Err(ApiError::unprocessable(
                    "invalid_app",
                    "Shopify's deliveries do not name the app: give no app_key",
                ));
            }
            ("doudian" | "youzan", None) => {
                return Err(ApiError::unprocessable(
                    "invalid_app",
                    format!("a {platform} app needs its app_key (抖店 app_key, 有赞 client_id)"),
                ));
            }
            (_, Some(k)) if k.is_empty() || k.len() > 128 || k.contains('#') => {
                return Err(ApiError::unprocessable(
                    "invalid_app",
                    "app_key has 1 to 128 characters and no '#'",
                ));
            }
            _ => {}
        }
        // The secret first: an app that is listed can always be verified.
        // A key another app holds is refused before any secret is written:
        // a refused registration leaves nothing behind.
        if let Some(k) = key
            && let Some(owner) = self.table.app_by_key(&platform, k).await?
            && owner != app
        {
            return Err(ApiError::conflict(
                "app_key_taken",
                format!("app key {k:?} of {platform} already belongs to app {owner}"),
            ));
        }
        let (count, changed) = self
            .secrets
            .rotate(&platform, &app, &doc.secret, doc.keep_previous)
            .await?;
        let record = self
            .table
            .put_platform_app(&platform, &app, key, count, changed, Utc::now())
            .await
            .map_err(|e| match e {
                AppError::KeyTaken { .. } => ApiError::conflict("app_key_taken", e.to_string()),
                AppError::Store(s) => s.into(),
            })?;
        tracing::info!(%platform, %app, secrets = count, "platform app registered");
        Ok(http::json(StatusCode::OK, &record))
    }

    pub(crate) async fn get_platform_app(
        &self,
        platform: Platform,
        app: AppId,
    ) -> Result<Response<Body>, ApiError> {
        if !native(&platform) {
            return Err(unknown_platform(&platform));
        }
        let record = self
            .table
            .platform_app(&platform, &app)
            .await?
            .ok_or_else(|| {
                ApiError::not_found("app_not_found", format!("no {platform} app {app}"))
            })?;
        Ok(http::json(StatusCode::OK, &record))
    }

    /// The app a store of `platform` is connected through: required, and
    /// registered, for the platforms read natively; refused for the others.
    pub(crate) async fn store_app(
        &self,
        platform: &Platform,
        store: &StoreId,
        app: Option<AppId>,
    ) -> Result<Option<AppId>, ApiError> {
        match (native(platform), app) {
            (false, None) => Ok(None),
            (false, Some(_)) => Err(ApiError::unprocessable(
                "invalid_store",
                format!("{platform} stores use the generic format and no app"),
            )),
            (true, None) => Err(ApiError::unprocessable(
                "invalid_store",
                format!("a {platform} store names the app it is connected through"),
            )),
            (true, Some(app)) => {
                // Deliveries name the shop in lower case: a store registered
                // otherwise would never be found.
                let shop = store.as_str();
                if platform.as_str() == "shopify"
                    && (!shop.ends_with(".myshopify.com") || shop != shop.to_ascii_lowercase())
                {
                    return Err(ApiError::unprocessable(
                        "invalid_store",
                        "a Shopify store is its shop domain in lower case, <name>.myshopify.com",
                    ));
                }
                if self.table.platform_app(platform, &app).await?.is_none() {
                    return Err(ApiError::unprocessable(
                        "unknown_app",
                        format!("no {platform} app {app}: register it first"),
                    ));
                }
                Ok(Some(app))
            }
        }
    }

    pub(crate) async fn publish_sku_mapping(
        &self,
        platform: Platform,
        store: StoreId,
        body: &[u8],
        csv: bool,
    ) -> Result<Response<Body>, ApiError> {
        match self.table.connected_store(&platform, &store).await? {
            None => {
                return Err(ApiError::not_found(
                    "store_not_found",
                    format!("{platform} store {store} is not registered"),
                ));
            }
            // Its documents name our SKUs: a mapping would never be read.
            Some((_, None)) => {
                return Err(ApiError::unprocessable(
                    "not_native_store",
                    format!(
                        "{platform} store {store} sends the generic format, whose lines name the brand's SKUs: it needs no mapping"
                    ),
                ));
            }
            Some((_, Some(_))) => {}
        }
        let text = std::str::from_utf8(body)
            .map_err(|_| ApiError::bad_request("malformed_body", "the mapping must be UTF-8"))?;
        let rows = if csv {
            mapping::parse_csv(text)
        } else {
            mapping::parse_json(text)
        }
        .map_err(invalid_mapping)?;
        let skus: Vec<Sku> = rows.iter().map(|r| r.sku.clone()).collect();
        let in_book = self.table.skus_in_current_book(&skus).await?;
        let entries =
            mapping::check_against_book(rows, |s| in_book.contains(s)).map_err(invalid_mapping)?;
        let count = self
            .table
            .publish_sku_mapping(&platform, &store, &entries)
            .await?;
        tracing::info!(%platform, %store, entries = count, "SKU mapping published");
        let held = self.table.held_for_store(&platform, &store).await?;
        let released = self.release(held).await?;
        Ok(http::json(
            StatusCode::OK,
            &json!({"platform": platform, "store": store, "entries": count, "released": released}),
        ))
    }

    pub(crate) async fn list_orders(
        &self,
        query: Option<&str>,
    ) -> Result<Response<Body>, ApiError> {
        let status = http::query_values(query, "status");
        if status.as_slice() != ["held"] {
            return Err(ApiError::bad_request(
                "invalid_query",
                "status=held is required: only held orders are listed here",
            ));
        }
        let limit = match http::query_values(query, "limit").first() {
            None => 50,
            Some(l) => l
                .parse::<i32>()
                .ok()
                .filter(|l| (1..=200).contains(l))
                .ok_or_else(|| ApiError::bad_request("invalid_limit", "limit is 1 to 200"))?,
        };
        let after = http::query_values(query, "cursor")
            .first()
            .map(|c| decode_cursor(c))
            .transpose()?;
        let (orders, next) = self.table.held_page(after.as_ref(), limit).await?;
        Ok(http::json(
            StatusCode::OK,
            &json!({"orders": orders, "next_cursor": next.map(|n| encode_cursor(&n))}),
        ))
    }

    pub(crate) async fn release_orders(&self, body: &[u8]) -> Result<Response<Body>, ApiError> {
        let doc: ReleaseDoc = if body.is_empty() {
            ReleaseDoc {
                platform: None,
                store: None,
            }
        } else {
            http::parse_json(body)?
        };
        let held = match (doc.platform, doc.store) {
            (Some(p), Some(s)) => self.table.held_for_store(&p, &s).await?,
            (None, None) => self.held_oldest_first(RELEASE_BATCH, |_| true).await?,
            _ => {
                return Err(ApiError::unprocessable(
                    "invalid_document",
                    "give both platform and store, or neither",
                ));
            }
        };
        let released = self.release(held).await?;
        Ok(http::json(StatusCode::OK, &released))
    }

    /// The oldest `max` held orders that `wanted` selects: filtered page by
    /// page, so that many older ones of another reason do not hide them.
    async fn held_oldest_first(
        &self,
        max: usize,
        wanted: impl Fn(&HeldOrder) -> bool,
    ) -> Result<Vec<HeldOrder>, ApiError> {
        let mut out = Vec::new();
        let mut after: Option<HashMap<String, String>> = None;
        while out.len() < max {
            let (page, next) = self.table.held_page(after.as_ref(), 100).await?;
            out.extend(page.into_iter().filter(|h| wanted(h)));
            match next {
                Some(n) => after = Some(n),
                None => break,
            }
        }
        out.truncate(max);
        Ok(out)
    }

    /// Publishing a price book may resolve orders held for a SKU it lacked.
    pub(crate) async fn release_after_catalog_change(&self) -> Result<serde_json::Value, ApiError> {
        let held = self
            .held_oldest_first(RELEASE_BATCH, |h| h.reason.resolved_by_catalog())
            .await?;
        self.release(held).await
    }

    /// Translates each held notice again: what can now be counted is queued
    /// and leaves the list; what cannot keeps (or changes) its reason. One
    /// still without its lines (a fetch that failed, or whose message was
    /// lost) has them asked for again, and counts as still held until the
    /// order detail consumer has them.
    async fn release(&self, held: Vec<HeldOrder>) -> Result<serde_json::Value, ApiError> {
        let (mut queued, mut recorded) = (0u64, 0u64);
        let mut still: std::collections::BTreeMap<&'static str, u64> = Default::default();
        let now = Utc::now();
        for h in held {
            let view = self
                .table
                .notice_view(
                    &h.platform,
                    &h.store,
                    &h.event_id,
                    &notice_codes(&h.notice),
                    true,
                    &Default::default(),
                )
                .await?;
            match tier_store::platforms::admit(
                &view,
                &h.platform,
                &h.store,
                &h.notice,
                &self.currency,
                now,
            ) {
                Admission::Event(event) => {
                    tier_store::queue::send_order_event(
                        &self.tier_events,
                        &self.dead_letters.stock_events.source,
                        *event,
                    )
                    .await?;
                    self.table.release_held(&h).await?;
                    queued += 1;
                }
                Admission::Nothing { .. } => {
                    self.table.release_held(&h).await?;
                    recorded += 1;
                }
                Admission::Held(hold) => {
                    if (hold.reason != h.reason || hold.detail != h.detail)
                        && !self.table.rehold(&h, &hold).await?
                    {
                        // Released meanwhile (its detail came): nothing held.
                        continue;
                    }
                    if hold.reason == HoldReason::AwaitingDetail {
                        self.ask_for_detail(&h, view.app.as_ref()).await?;
                    }
                    *still.entry(hold.reason.as_str()).or_default() += 1;
                }
            }
        }
        if queued > 0 {
            tracing::info!(queued, recorded, "held orders released");
        }
        Ok(json!({"queued": queued, "recorded": recorded, "still_held": still}))
    }
}

impl AdminApi {
    /// Queues a fetch of held notice `h`'s lines, as the app its store is
    /// connected through. Asked after the hold is brought up to date, so
    /// that the consumer's release is not undone by it.
    async fn ask_for_detail(&self, h: &HeldOrder, app: Option<&AppId>) -> Result<(), ApiError> {
        let Some(app) = app else {
            tracing::warn!(platform = %h.platform, store = %h.store, event_id = %h.event_id, "held without its lines, and its store has no app: nothing to fetch with");
            return Ok(());
        };
        let fetch = tier_messages::Message::DetailFetchV1(tier_messages::DetailFetch {
            platform: h.platform.clone(),
            store: h.store.clone(),
            event_id: h.event_id.clone(),
            order_id: h.order_id.clone(),
            app: app.clone(),
        });
        self.order_details.send(&fetch).await?;
        Ok(())
    }
}

fn unknown_platform(platform: &Platform) -> ApiError {
    ApiError::not_found(
        "unknown_platform",
        format!(
            "apps are registered for {}; {platform} uses the generic format",
            tier_platforms::NATIVE_PLATFORMS.join(", ")
        ),
    )
}

fn invalid_mapping(errors: Vec<tier_domain::pricing::RowError>) -> ApiError {
    let first = errors
        .first()
        .map(|e| format!("line {} {}: {}", e.line, e.field, e.message))
        .unwrap_or_default();
    ApiError::unprocessable(
        "invalid_sku_mapping",
        format!(
            "{} problem(s); the mapping was not published. First: {first}",
            errors.len()
        ),
    )
    .with_errors(serde_json::to_value(&errors).expect("row errors serialise"))
}

/// Cursors are opaque to clients: the page's last key, as hex of its JSON.
fn encode_cursor(key: &HashMap<String, String>) -> String {
    let sorted: std::collections::BTreeMap<_, _> = key.iter().collect();
    hex::encode(serde_json::to_vec(&sorted).expect("strings serialise"))
}

fn decode_cursor(raw: &str) -> Result<HashMap<String, String>, ApiError> {
    let invalid = || ApiError::bad_request("invalid_cursor", "not a cursor this API returned");
    let bytes = hex::decode(raw).map_err(|_| invalid())?;
    let key: HashMap<String, String> = serde_json::from_slice(&bytes).map_err(|_| invalid())?;
    // Only the table's and the index's key attributes make a start key.
    let allowed = ["PK", "SK", "GSI1PK", "GSI1SK"];
    if key.len() != allowed.len() || !key.keys().all(|k| allowed.contains(&k.as_str())) {
        return Err(invalid());
    }
    if key.get("GSI1PK").map(String::as_str) != Some("HELD") {
        return Err(invalid());
    }
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_forgeries_are_refused() {
        let key: HashMap<String, String> = [
            ("PK", "HELD#shopify#s.myshopify.com"),
            ("SK", "ORDER#1#EVENT#e"),
            ("GSI1PK", "HELD"),
            ("GSI1SK", "2026-12-01T00:00:00+00:00#x"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        assert_eq!(decode_cursor(&encode_cursor(&key)).unwrap(), key);
        assert!(decode_cursor("zz").is_err());
        assert!(decode_cursor(&hex::encode(b"{\"PK\":\"x\"}")).is_err());
        let mut other = key.clone();
        other.insert("GSI1PK".into(), "APIKEYS".into());
        assert!(decode_cursor(&encode_cursor(&other)).is_err());
    }

    #[test]
    fn only_the_platforms_read_natively_have_apps() {
        assert!(native(&Platform::parse("shopify").unwrap()));
        assert!(!native(&Platform::parse("jd").unwrap()));
    }
}
