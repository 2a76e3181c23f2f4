//! Published price books. A version is claimed, its entries written, and
//! only then made current, so a lookup always reads one whole version.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use tier_domain::ids::{DistributorId, Sku};
use tier_domain::pricing::{PriceBookDraft, Promotion, SkuBook};
use tier_domain::stock::levels::SkuStock;

/// SKUs per stored part of a promotion: 4,000 SKU ids of at most 64
/// characters stay well under DynamoDB's 400 KB item limit.
const SKUS_PER_PROMOTION_PART: usize = 4_000;

use crate::distributors::{Distributor, parse_profile};
use crate::error::StoreError;
use crate::item::{self, Item, n, new_item, s};
use crate::keys;
use crate::rules::{PublishedRuleSet, parse_rule_set};
use crate::table::Table;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BookVersion {
    pub version: u64,
    pub published_at: DateTime<Utc>,
}

fn parse_version(item: &Item) -> Result<BookVersion, StoreError> {
    Ok(BookVersion {
        version: item::get_u64_or_zero(item, "version")?,
        published_at: item::get_s(item, "published_at")?
            .parse()
            .map_err(|_| StoreError::corrupt(&item::key_of(item), "published_at"))?,
    })
}

/// What a lookup reads in its first round trip.
#[derive(Debug, Clone, Default)]
pub struct LookupHeads {
    pub distributors: HashMap<DistributorId, Distributor>,
    pub rules: Option<PublishedRuleSet>,
    pub book: Option<BookVersion>,
    /// The raw API key item, if an id was asked for.
    pub api_key: Option<Item>,
}

impl Table {
    pub(crate) fn parse_book_version(&self, item: &Item) -> Result<BookVersion, StoreError> {
        parse_version(item)
    }

    /// Publishes `draft` as the next version and makes it current.
    pub async fn publish_price_book(
        &self,
        draft: &PriceBookDraft,
        at: DateTime<Utc>,
    ) -> Result<BookVersion, StoreError> {
        let current = self
            .get(&keys::book_pointer(), true)
            .await?
            .as_ref()
            .map(parse_version)
            .transpose()?
            .map_or(0, |v| v.version);
        // Claim a version number: two publishers never write into the same one.
        let mut version = current + 1;
        loop {
            let meta = new_item(
                &keys::book_version(version),
                "price_book_version",
                [
                    ("version", n(version)),
                    ("published_at", s(at.to_rfc3339())),
                    ("skus", n(draft.skus.len())),
                    ("promotion_count", n(draft.promotions.len())),
                ],
            );
            let claimed = self
                .client
                .put_item()
                .table_name(&self.name)
                .set_item(Some(meta))
                .condition_expression("attribute_not_exists(PK)")
                .send()
                .await;
            match claimed {
                Ok(_) => break,
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
                {
                    version += 1
                }
                Err(e) => return Err(StoreError::aws("PutItem", e)),
            }
        }
        let mut entries: Vec<Item> = draft
            .skus
            .values()
            .map(|b| {
                new_item(
                    &keys::book_entry(version, &b.sku),
                    "price_book_entry",
                    [("book", item::json(b)), ("version", n(version))],
                )
            })
            .collect();
        // The promotions whole, for operators: a store-wide one lists every
        // SKU, more than one item holds, so its SKUs are split over parts.
        for (index, promotion) in draft.promotions.iter().enumerate() {
            let chunks: Vec<&[Sku]> = promotion.skus.chunks(SKUS_PER_PROMOTION_PART).collect();
            for (part, skus) in chunks.iter().enumerate() {
                let piece = Promotion {
                    skus: skus.to_vec(),
                    ..promotion.clone()
                };
                entries.push(new_item(
                    &keys::book_promotion(version, index, part),
                    "price_book_promotion",
                    [("promotion", item::json(&piece)), ("version", n(version))],
                ));
            }
        }
        self.batch_put(entries).await?;
        // Only a newer version may become current: a slow publisher of an
        // older one does not roll the book back.
        let pointer = new_item(
            &keys::book_pointer(),
            "price_book_pointer",
            [
                ("version", n(version)),
                ("published_at", s(at.to_rfc3339())),
            ],
        );
        let flipped = self
            .client
            .put_item()
            .table_name(&self.name)
            .set_item(Some(pointer))
            .condition_expression("attribute_not_exists(PK) OR version < :v")
            .expression_attribute_values(":v", n(version))
            .send()
            .await;
        match flipped {
            Ok(_) => Ok(BookVersion {
                version,
                published_at: at,
            }),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
            {
                Err(StoreError::Contention {
                    what: format!("price book version {version} was overtaken by a newer one"),
                    attempts: 1,
                })
            }
            Err(e) => Err(StoreError::aws("PutItem", e)),
        }
    }

    pub async fn current_book(&self) -> Result<Option<BookVersion>, StoreError> {
        self.get(&keys::book_pointer(), true)
            .await?
            .as_ref()
            .map(parse_version)
            .transpose()
    }

    /// Round trip 1 of a lookup: distributors, rule set, book version and
    /// API key, in one BatchGetItem.
    pub async fn lookup_heads(
        &self,
        distributors: &[DistributorId],
        api_key_id: Option<&str>,
    ) -> Result<LookupHeads, StoreError> {
        let mut wanted: Vec<keys::Key> = distributors.iter().map(keys::distributor).collect();
        wanted.push(keys::rule_set_current());
        wanted.push(keys::book_pointer());
        if let Some(id) = api_key_id {
            wanted.push(keys::api_key(id));
        }
        // Strongly consistent: the lookup right after a tier change or a new
        // book version must see it.
        let mut items = self.batch_get(&wanted, true).await?;
        let mut heads = LookupHeads {
            rules: items
                .remove(&keys::rule_set_current())
                .as_ref()
                .map(parse_rule_set)
                .transpose()?,
            book: items
                .remove(&keys::book_pointer())
                .as_ref()
                .map(parse_version)
                .transpose()?,
            api_key: api_key_id.and_then(|id| items.remove(&keys::api_key(id))),
            ..Default::default()
        };
        for d in distributors {
            if let Some(i) = items.get(&keys::distributor(d)) {
                heads.distributors.insert(d.clone(), parse_profile(i)?);
            }
        }
        Ok(heads)
    }

    /// Round trip 2 of a lookup: the SKUs' entries of one book version, and
    /// their stock when asked. SKUs not in the book are absent.
    pub async fn book_entries(
        &self,
        version: u64,
        skus: &[Sku],
        with_stock: bool,
    ) -> Result<(HashMap<Sku, SkuBook>, HashMap<Sku, SkuStock>), StoreError> {
        let mut wanted: Vec<keys::Key> =
            skus.iter().map(|s| keys::book_entry(version, s)).collect();
        if with_stock {
            wanted.extend(skus.iter().map(keys::stock));
        }
        let items = self.batch_get(&wanted, true).await?;
        let mut books = HashMap::new();
        let mut stock = HashMap::new();
        let mut spread: Vec<(Sku, u8)> = Vec::new();
        for sku in skus {
            if let Some(i) = items.get(&keys::book_entry(version, sku)) {
                books.insert(sku.clone(), item::get_json::<SkuBook>(i, "book")?);
            }
            if let Some(i) = items.get(&keys::stock(sku)) {
                stock.insert(sku.clone(), crate::stock::parse_levels(i)?);
                let cells = crate::stock::cells_of(i)?;
                spread.extend((0..cells).map(|b| (sku.clone(), b)));
            }
        }
        // A spread SKU's pool is in its buckets: one more request, for
        // those SKUs only.
        for (sku, b, cell, _) in self.read_buckets(spread).await? {
            if let Some(s) = stock.get_mut(&sku) {
                s.add_cell(b, cell);
            }
        }
        Ok((books, stock))
    }

    /// Whether `sku` is in the current book.
    pub async fn sku_in_current_book(&self, sku: &Sku) -> Result<bool, StoreError> {
        let Some(book) = self.current_book().await? else {
            return Ok(false);
        };
        Ok(self
            .get(&keys::book_entry(book.version, sku), true)
            .await?
            .is_some())
    }

    /// Which of `skus` the current book lists (none without a book).
    pub async fn skus_in_current_book(
        &self,
        skus: &[Sku],
    ) -> Result<std::collections::HashSet<Sku>, StoreError> {
        let Some(book) = self.current_book().await? else {
            return Ok(Default::default());
        };
        let keys: Vec<_> = skus
            .iter()
            .map(|s| keys::book_entry(book.version, s))
            .collect();
        let found = self.batch_get(&keys, true).await?;
        Ok(skus
            .iter()
            .filter(|s| found.contains_key(&keys::book_entry(book.version, s)))
            .cloned()
            .collect())
    }

    /// The promotions of a version, whole (for the admin API).
    pub async fn book_promotions(&self, version: u64) -> Result<Vec<Promotion>, StoreError> {
        let meta = self
            .get(&keys::book_version(version), true)
            .await?
            .ok_or_else(|| StoreError::corrupt(&keys::book_version(version), "missing"))?;
        // Versions published before promotions had their own items.
        if meta.contains_key("promotions") {
            return item::get_json(&meta, "promotions");
        }
        let parts = self
            .query_prefix(
                &keys::book_partition(version),
                keys::BOOK_PROMOTION_PREFIX,
                true,
            )
            .await?;
        let mut promotions: Vec<Promotion> = Vec::new();
        // In key order: each promotion's part 0, then its further parts.
        for i in &parts {
            let piece: Promotion = item::get_json(i, "promotion")?;
            match promotions.last_mut() {
                Some(p) if p.id == piece.id => p.skus.extend(piece.skus),
                _ => promotions.push(piece),
            }
        }
        Ok(promotions)
    }
}
