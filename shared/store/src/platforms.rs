//! Connected platforms: apps, the stores they sign for, each store's SKU
//! mapping, and the orders held until they can be counted.
//!
//! | item | PK | SK | access patterns |
//! |---|---|---|---|
//! | platform app | `APP#{platform}#{app}` | `APP` | get by the app the URL names |
//! | app key | `APPKEY#{platform}#{key}` | `APPKEY` | the app a delivery names by its own key (抖店 `app-id`, 有赞 `client_id`) |
//! | SKU mapping entry | `SKUMAP#{platform}#{store}` | `CODE#{platform sku}` | batch get a delivery's codes; query the whole mapping to replace it |
//! | held order | `HELD#{platform}#{store}` | `ORDER#{order}#EVENT#{event}` | a store's held notices (released when its mapping is published); one notice with its receipt, for a fetch of its detail; GSI1 `HELD` / `{held at}#…` lists them all, oldest first |
//!
//! The store item itself (`STORE#{platform}#{store}`) gains `app`.

use std::collections::{BTreeMap, HashMap};

use aws_sdk_dynamodb::types::{Put, TransactWriteItem};
use chrono::{DateTime, Utc};
use serde::Serialize;
use tier_domain::OrderRef;
use tier_domain::ids::{AppId, DistributorId, EventId, Platform, Sku, StoreId};
use tier_domain::order::{OrderEvent, OrderEventKind};
use tier_domain::pricing::SkuBook;
use tier_platforms::Notice;
use tier_platforms::translate::{Catalog, Hold, HoldReason, Outcome};

use crate::distributors::Distributor;
use crate::error::StoreError;
use crate::item::{self, Item, n, new_item, opt_s, s};
use crate::keys::{self, Key};
use crate::price_book::BookVersion;
use crate::rules::PublishedRuleSet;
use crate::table::{Table, TxOutcome};
use crate::webhooks::{Reads, ViewHints};

use tier_platforms::mapping::MAX_PLATFORM_SKU_BYTES;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlatformApp {
    pub platform: Platform,
    pub app: AppId,
    /// How the platform names the app in its deliveries: 抖店's `app_key`,
    /// 有赞's `client_id`. Shopify's deliveries do not name the app.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app_key: Option<String>,
    pub created_at: DateTime<Utc>,
    /// When its secrets last changed (they are never shown).
    pub secrets_updated_at: DateTime<Utc>,
    pub secret_count: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("app key {key:?} of {platform} already belongs to app {owner}")]
    KeyTaken {
        platform: Platform,
        key: String,
        owner: AppId,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn app_key(platform: &Platform, app: &AppId) -> Key {
    (format!("APP#{platform}#{app}"), "APP".into())
}

fn app_key_lookup(platform: &Platform, key: &str) -> Key {
    (format!("APPKEY#{platform}#{key}"), "APPKEY".into())
}

fn mapping_pk(platform: &Platform, store: &StoreId) -> String {
    format!("SKUMAP#{platform}#{store}")
}

fn mapping_key(platform: &Platform, store: &StoreId, code: &str) -> Key {
    (mapping_pk(platform, store), format!("CODE#{code}"))
}

fn held_pk(platform: &Platform, store: &StoreId) -> String {
    format!("HELD#{platform}#{store}")
}

const HELD_INDEX: &str = "HELD";

fn parse_app(item: &Item) -> Result<PlatformApp, StoreError> {
    let key = item::key_of(item);
    let corrupt = |e: &dyn std::fmt::Display| StoreError::corrupt(&key, e.to_string());
    let time = |name: &str| {
        item::get_s(item, name).and_then(|t| {
            DateTime::parse_from_rfc3339(t)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|e| corrupt(&e))
        })
    };
    Ok(PlatformApp {
        platform: Platform::parse(item::get_s(item, "platform")?).map_err(|e| corrupt(&e))?,
        app: AppId::parse(item::get_s(item, "app")?).map_err(|e| corrupt(&e))?,
        app_key: opt_s(item, "app_key").map(str::to_owned),
        created_at: time("created_at")?,
        secrets_updated_at: time("secrets_updated_at")?,
        secret_count: usize::try_from(item::get_u64_or_zero(item, "secret_count")?)
            .unwrap_or(usize::MAX),
    })
}

/// A held notice, as operators see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HeldOrder {
    pub platform: Platform,
    pub store: StoreId,
    pub event_id: EventId,
    pub order_id: String,
    pub reason: HoldReason,
    pub detail: String,
    pub held_at: DateTime<Utc>,
    pub notice: Notice,
}

fn held_key(platform: &Platform, store: &StoreId, order: &str, event: &EventId) -> Key {
    (
        held_pk(platform, store),
        format!("ORDER#{order}#EVENT#{event}"),
    )
}

fn parse_held(item: &Item) -> Result<HeldOrder, StoreError> {
    let key = item::key_of(item);
    let corrupt = |e: &dyn std::fmt::Display| StoreError::corrupt(&key, e.to_string());
    Ok(HeldOrder {
        platform: Platform::parse(item::get_s(item, "platform")?).map_err(|e| corrupt(&e))?,
        store: StoreId::parse(item::get_s(item, "store")?).map_err(|e| corrupt(&e))?,
        event_id: EventId::parse(item::get_s(item, "event_id")?).map_err(|e| corrupt(&e))?,
        order_id: item::get_s(item, "order_id")?.to_owned(),
        reason: serde_json::from_value(serde_json::Value::String(
            item::get_s(item, "reason")?.to_owned(),
        ))
        .map_err(|e| corrupt(&e))?,
        detail: item::get_s(item, "detail")?.to_owned(),
        held_at: DateTime::parse_from_rfc3339(item::get_s(item, "held_at")?)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|e| corrupt(&e))?,
        notice: item::get_json(item, "notice")?,
    })
}

/// Where a notice whose detail is to be fetched stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeldLookup {
    Held(Box<HeldOrder>),
    /// Kept, and no longer held: queued or recorded by a fetch or release
    /// that came first.
    Released,
    /// Neither held nor received: intake asks for the fetch just before it
    /// writes the hold, so the hold may be on its way (or failed, and the
    /// platform's retry will ask again).
    NotKept,
}

/// What intake reads for one notice of a connected store, in two round
/// trips: the store, the receipt, the mapping of the notice's platform SKUs,
/// the rule set and the book version; then the owner's profile and the
/// mapped SKUs' book entries.
#[derive(Debug, Clone, Default)]
pub struct NoticeView {
    pub owner: Option<DistributorId>,
    /// The app the store is connected through.
    pub app: Option<AppId>,
    pub seen: bool,
    pub mapping: HashMap<String, Sku>,
    pub distributor: Option<Distributor>,
    pub rules: Option<std::sync::Arc<PublishedRuleSet>>,
    pub book: Option<BookVersion>,
    pub entries: HashMap<Sku, SkuBook>,
}

impl Catalog for NoticeView {
    fn mapped(&self, platform_sku: &str) -> Option<Sku> {
        self.mapping.get(platform_sku).cloned()
    }

    fn in_book(&self, sku: &Sku) -> bool {
        self.entries.contains_key(sku)
    }
}

/// The platform SKU codes and variant ids a notice's lines name.
pub fn notice_codes(notice: &Notice) -> Vec<String> {
    let mut codes = Vec::new();
    if let tier_platforms::Change::Paid { order: Some(o) }
    | tier_platforms::Change::Created { order: Some(o) } = &notice.change
    {
        for l in &o.lines {
            codes.extend(l.sku_code.iter().cloned());
            codes.extend(l.variant_id.iter().cloned());
        }
    }
    codes.retain(|c| !c.is_empty() && c.len() <= MAX_PLATFORM_SKU_BYTES);
    codes.sort();
    codes.dedup();
    codes
}

impl Table {
    /// Registers or updates app `app` of `platform`. Its key, where the
    /// platform names apps by one, must not be another app's.
    pub async fn put_platform_app(
        &self,
        platform: &Platform,
        app: &AppId,
        key: Option<&str>,
        secret_count: usize,
        secrets_changed: bool,
        at: DateTime<Utc>,
    ) -> Result<PlatformApp, AppError> {
        let existing = self.platform_app(platform, app).await?;
        let created_at = existing.as_ref().map_or(at, |a| a.created_at);
        // When the secrets last changed, not when the app was last written.
        let secrets_updated_at = match &existing {
            Some(a) if !secrets_changed => a.secrets_updated_at,
            _ => at,
        };
        let mut attrs = vec![
            ("platform", s(platform.as_str())),
            ("app", s(app.as_str())),
            ("created_at", s(created_at.to_rfc3339())),
            ("secrets_updated_at", s(secrets_updated_at.to_rfc3339())),
            ("secret_count", n(secret_count)),
        ];
        if let Some(k) = key {
            attrs.push(("app_key", s(k)));
        }
        let mut tx = vec![put(
            self,
            new_item(&app_key(platform, app), "platform_app", attrs),
            None,
        )];
        if let Some(k) = key {
            tx.push(put(
                self,
                new_item(
                    &app_key_lookup(platform, k),
                    "platform_app_key",
                    [("app", s(app.as_str()))],
                ),
                Some(("attribute_not_exists(PK) OR app = :app", app.as_str())),
            ));
        }
        let old_key = existing.as_ref().and_then(|a| a.app_key.clone());
        if let Some(old) = old_key.filter(|old| Some(old.as_str()) != key) {
            let (pk, sk) = app_key_lookup(platform, &old);
            tx.push(
                TransactWriteItem::builder()
                    .delete(
                        aws_sdk_dynamodb::types::Delete::builder()
                            .table_name(&self.name)
                            .key(keys::PK, s(pk))
                            .key(keys::SK, s(sk))
                            .build()
                            .expect("delete has key"),
                    )
                    .build(),
            );
        }
        match self.transact(tx).await? {
            TxOutcome::Committed => Ok(PlatformApp {
                platform: platform.clone(),
                app: app.clone(),
                app_key: key.map(str::to_owned),
                created_at,
                secrets_updated_at,
                secret_count,
            }),
            TxOutcome::ConditionFailed { .. } => {
                let key = key.expect("only the key's claim is conditional").to_owned();
                let owner = self
                    .app_by_key(platform, &key)
                    .await?
                    .unwrap_or_else(|| app.clone());
                Err(AppError::KeyTaken {
                    platform: platform.clone(),
                    key,
                    owner,
                })
            }
        }
    }

    pub async fn platform_app(
        &self,
        platform: &Platform,
        app: &AppId,
    ) -> Result<Option<PlatformApp>, StoreError> {
        self.get(&app_key(platform, app), true)
            .await?
            .as_ref()
            .map(parse_app)
            .transpose()
    }

    /// The app whose platform key (抖店 `app_key`, 有赞 `client_id`) is `key`.
    pub async fn app_by_key(
        &self,
        platform: &Platform,
        key: &str,
    ) -> Result<Option<AppId>, StoreError> {
        let lookup = app_key_lookup(platform, key);
        self.get(&lookup, false)
            .await?
            .map(|i| {
                AppId::parse(item::get_s(&i, "app")?)
                    .map_err(|e| StoreError::corrupt(&lookup, e.to_string()))
            })
            .transpose()
    }

    /// The app a connected store belongs to, and its owner.
    pub async fn connected_store(
        &self,
        platform: &Platform,
        store: &StoreId,
    ) -> Result<Option<(DistributorId, Option<AppId>)>, StoreError> {
        let key = keys::store(platform, store);
        let Some(i) = self.get(&key, false).await? else {
            return Ok(None);
        };
        let corrupt = |e: &dyn std::fmt::Display| StoreError::corrupt(&key, e.to_string());
        let owner =
            DistributorId::parse(item::get_s(&i, "distributor")?).map_err(|e| corrupt(&e))?;
        let app = opt_s(&i, "app")
            .map(AppId::parse)
            .transpose()
            .map_err(|e| corrupt(&e))?;
        Ok(Some((owner, app)))
    }

    /// Everything [`NoticeView`] holds for `notice` at store `store`: one
    /// read where `hints` are right, two where they are not. For a
    /// `release` of a held notice, whose receipt was written when it was
    /// held, the receipt does not make it seen.
    pub async fn notice_view(
        &self,
        platform: &Platform,
        store: &StoreId,
        event: &EventId,
        codes: &[String],
        release: bool,
        hints: &ViewHints,
    ) -> Result<NoticeView, StoreError> {
        let store_key = keys::store(platform, store);
        let receipt_key = keys::webhook(platform, store, event);
        let mut always = vec![store_key.clone(), receipt_key.clone()];
        always.extend(codes.iter().map(|c| mapping_key(platform, store, c)));
        let first = Self::hinted_first_read(
            hints,
            always,
            codes.iter().filter_map(|c| hints.mapping.get(c)),
        );
        let mut reads = Reads::default();
        self.read_more(&mut reads, first).await?;
        let (rules, book) = self.read_rules_and_book(&mut reads, hints)?;
        let mut view = NoticeView {
            seen: !release && reads.items.contains_key(&receipt_key),
            rules,
            book,
            ..Default::default()
        };
        if let Some(i) = reads.items.get(&store_key) {
            let corrupt =
                |e: &dyn std::fmt::Display| StoreError::corrupt(&store_key, e.to_string());
            view.owner = Some(
                DistributorId::parse(item::get_s(i, "distributor")?).map_err(|e| corrupt(&e))?,
            );
            view.app = opt_s(i, "app")
                .map(AppId::parse)
                .transpose()
                .map_err(|e| corrupt(&e))?;
        }
        for code in codes {
            let key = mapping_key(platform, store, code);
            if let Some(i) = reads.items.get(&key) {
                let sku = Sku::parse(item::get_s(i, "sku")?)
                    .map_err(|e| StoreError::corrupt(&key, e.to_string()))?;
                view.mapping.insert(code.clone(), sku);
            }
        }
        let Some(owner) = view.owner.clone().filter(|_| !view.seen) else {
            return Ok(view);
        };
        let skus: Vec<Sku> = {
            let mut v: Vec<Sku> = view.mapping.values().cloned().collect();
            v.sort();
            v.dedup();
            v
        };
        (view.distributor, view.entries) = self
            .read_pricing(&mut reads, &owner, view.book, &skus)
            .await?;
        Ok(view)
    }

    /// Records a notice that changes nothing we count (and is not held),
    /// so that its duplicates are recognised.
    pub async fn put_notice_receipt(
        &self,
        platform: &Platform,
        store: &StoreId,
        event: &EventId,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.put_receipt(platform, store, event, "", at).await
    }

    /// Holds `notice` with `hold`'s reason, and its receipt, in one write.
    pub async fn hold_notice(
        &self,
        platform: &Platform,
        store: &StoreId,
        event: &EventId,
        notice: &Notice,
        hold: &Hold,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let held = held_item(platform, store, event, notice, hold, at);
        let receipt = self.receipt_item(platform, store, event, "", at);
        match self
            .transact(vec![put(self, held, None), put(self, receipt, None)])
            .await?
        {
            TxOutcome::Committed => Ok(()),
            TxOutcome::ConditionFailed { reasons } => Err(StoreError::Contention {
                what: format!("holding a notice failed a condition it does not have: {reasons:?}"),
                attempts: 1,
            }),
        }
    }

    /// Changes a held notice's reason (a new mapping fixed one cause, not
    /// all). The notice stays held. False where it was released meanwhile.
    pub async fn rehold(&self, held: &HeldOrder, hold: &Hold) -> Result<bool, StoreError> {
        self.rehold_with(held, &held.notice, hold).await
    }

    /// As [`Table::rehold`], keeping `notice` as it is now known (with the
    /// detail fetched for it). Only while the notice is still held: a
    /// release or fetch that got there first has queued it already, and
    /// holding it again would count it a second time at the next release.
    /// Returns whether it was still held.
    pub async fn rehold_with(
        &self,
        held: &HeldOrder,
        notice: &Notice,
        hold: &Hold,
    ) -> Result<bool, StoreError> {
        let item = held_item(
            &held.platform,
            &held.store,
            &held.event_id,
            notice,
            hold,
            held.held_at,
        );
        let put = Put::builder()
            .table_name(&self.name)
            .set_item(Some(item))
            .condition_expression(format!("attribute_exists({})", keys::PK))
            .build()
            .expect("put has item");
        match self
            .transact(vec![TransactWriteItem::builder().put(put).build()])
            .await?
        {
            TxOutcome::Committed => Ok(true),
            TxOutcome::ConditionFailed { .. } => Ok(false),
        }
    }

    /// Where notice `event` of order `order` stands, for a fetch of its
    /// detail: held, released, or not kept (yet), in one round trip (the
    /// held item and the receipt written with it).
    pub async fn held_notice(
        &self,
        platform: &Platform,
        store: &StoreId,
        order: &str,
        event: &EventId,
    ) -> Result<HeldLookup, StoreError> {
        let held = held_key(platform, store, order, event);
        let receipt = keys::webhook(platform, store, event);
        let items = self
            .batch_get(&[held.clone(), receipt.clone()], true)
            .await?;
        Ok(match items.get(&held) {
            Some(item) => HeldLookup::Held(Box::new(parse_held(item)?)),
            None if items.contains_key(&receipt) => HeldLookup::Released,
            None => HeldLookup::NotKept,
        })
    }

    /// Removes a held notice once its event is queued.
    pub async fn release_held(&self, held: &HeldOrder) -> Result<(), StoreError> {
        let key = held_key(&held.platform, &held.store, &held.order_id, &held.event_id);
        self.delete(&key).await
    }

    /// A store's held notices, all of them.
    pub async fn held_for_store(
        &self,
        platform: &Platform,
        store: &StoreId,
    ) -> Result<Vec<HeldOrder>, StoreError> {
        self.query_prefix(&held_pk(platform, store), "ORDER#", true)
            .await?
            .iter()
            .map(parse_held)
            .collect()
    }

    /// A page of every store's held notices, oldest first, from `after` (a
    /// cursor this returned).
    pub async fn held_page(
        &self,
        after: Option<&HashMap<String, String>>,
        limit: i32,
    ) -> Result<(Vec<HeldOrder>, Option<HashMap<String, String>>), StoreError> {
        let (items, next) = self.index_page(HELD_INDEX, after, limit).await?;
        Ok((
            items.iter().map(parse_held).collect::<Result<_, _>>()?,
            next,
        ))
    }

    /// Replaces store `store`'s SKU mapping with `mapping` (platform SKU →
    /// ours): new and changed entries are written, entries no longer listed
    /// are deleted. Returns how many entries it holds.
    pub async fn publish_sku_mapping(
        &self,
        platform: &Platform,
        store: &StoreId,
        mapping: &BTreeMap<String, Sku>,
    ) -> Result<usize, StoreError> {
        let existing: HashMap<String, String> = self
            .query_prefix(&mapping_pk(platform, store), "CODE#", true)
            .await?
            .iter()
            .filter_map(|i| {
                let (_, sk) = item::key_of(i);
                let code = sk.strip_prefix("CODE#")?.to_owned();
                Some((code, opt_s(i, "sku").unwrap_or_default().to_owned()))
            })
            .collect();
        let writes: Vec<Item> = mapping
            .iter()
            .filter(|(code, sku)| existing.get(*code).map(String::as_str) != Some(sku.as_str()))
            .map(|(code, sku)| {
                new_item(
                    &mapping_key(platform, store, code),
                    "sku_mapping_entry",
                    [("sku", s(sku.as_str()))],
                )
            })
            .collect();
        self.batch_put(writes).await?;
        let removed: Vec<Key> = existing
            .keys()
            .filter(|code| !mapping.contains_key(*code))
            .map(|code| mapping_key(platform, store, code))
            .collect();
        self.batch_delete(removed).await?;
        Ok(mapping.len())
    }
}

fn put(table: &Table, item: Item, condition: Option<(&str, &str)>) -> TransactWriteItem {
    let mut put = Put::builder().table_name(&table.name).set_item(Some(item));
    if let Some((expr, app)) = condition {
        put = put
            .condition_expression(expr)
            .expression_attribute_values(":app", s(app));
    }
    TransactWriteItem::builder()
        .put(put.build().expect("put has item"))
        .build()
}

fn held_item(
    platform: &Platform,
    store: &StoreId,
    event: &EventId,
    notice: &Notice,
    hold: &Hold,
    at: DateTime<Utc>,
) -> Item {
    new_item(
        &held_key(platform, store, &notice.order_id, event),
        "held_order",
        [
            ("platform", s(platform.as_str())),
            ("store", s(store.as_str())),
            ("event_id", s(event.as_str())),
            ("order_id", s(&notice.order_id)),
            ("reason", s(hold.reason.as_str())),
            ("detail", s(&hold.detail)),
            ("held_at", s(at.to_rfc3339())),
            ("notice", item::json(notice)),
            (keys::GSI1PK, s(HELD_INDEX)),
            (
                keys::GSI1SK,
                s(format!(
                    "{}#{platform}#{store}#{}#{event}",
                    at.to_rfc3339(),
                    notice.order_id
                )),
            ),
        ],
    )
}

/// What a notice becomes once read against the store's view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admission {
    /// Queue it for tier evaluation and stock allocation.
    Event(Box<OrderEvent>),
    /// Record its receipt only.
    Nothing {
        why: String,
    },
    Held(Hold),
}

/// Translates `notice` of `platform`/`store` (owned by the view's owner)
/// for a brand counting in `currency`, at `now`, with each paid line's
/// entitled price recorded as order intake does for the generic format.
pub fn admit(
    view: &NoticeView,
    platform: &Platform,
    store: &StoreId,
    notice: &Notice,
    currency: &str,
    now: DateTime<Utc>,
) -> Admission {
    let Some(owner) = view.owner.clone() else {
        return Admission::Nothing {
            why: "the store is not connected".into(),
        };
    };
    match tier_platforms::translate::translate(notice, currency, view, now) {
        Outcome::Nothing { why } => Admission::Nothing { why },
        Outcome::Held(h) => Admission::Held(h),
        Outcome::Event {
            event_id,
            order_id,
            occurred_at,
            mut kind,
        } => {
            crate::webhooks::stamp_paid(
                &mut kind,
                view.rules.as_deref(),
                view.distributor.as_ref(),
            );
            if let OrderEventKind::Paid { lines, .. } = &mut kind {
                crate::webhooks::record_entitled_prices(
                    lines,
                    view.rules.as_deref(),
                    view.book,
                    view.distributor.as_ref(),
                    &view.entries,
                    &owner,
                    occurred_at,
                );
            }
            Admission::Event(Box::new(OrderEvent {
                event_id,
                order: OrderRef {
                    platform: platform.clone(),
                    store: store.clone(),
                    order_id,
                },
                distributor: owner,
                occurred_at,
                kind,
            }))
        }
    }
}
