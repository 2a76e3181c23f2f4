//! `GET /v1/admin/distributors`: the brand's distributors, a page at a
//! time, each with its tier, region, this month's and quarter's sales and
//! its progress to the next tier.
//!
//! Served by the tier-members index (GSI1 `TIER#{tier}`), one partition per
//! tier: `?tier=` reads one; without it the pages walk the current rule
//! set's tiers from the top, then tiers only earlier versions had, then
//! distributors without a tier. A page costs the current rule set (a
//! GetItem), the list of tiers any version had (a Query, unless `?tier=`
//! names a current one), one Query per partition it touches and one
//! BatchGetItem of the rows' profiles and metrics (plus their daily items
//! where the rules read rolling windows), whatever the brand's size.
//! `?region=` and `?upline=` walk the `ByRegion` and `ByUpline` indexes
//! instead: one Query a page (more when `?tier=` filters it down).
//! `?sort=` reads a ranking index instead (see [`sorted`]).

use chrono::Utc;
use lambda_http::http::StatusCode;
use lambda_http::{Body, Response};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tier_domain::ids::TierId;
use tier_domain::metrics::{Metric, Window};
use tier_runtime::http::{self, ApiError};

use crate::AdminApi;

const DEFAULT_LIMIT: usize = 25;
/// Two items a row in one BatchGetItem of at most 100 keys.
const MAX_LIMIT: usize = 50;

const KNOWN: [&str; 6] = ["tier", "region", "upline", "sort", "cursor", "limit"];

mod sorted;

/// Where the next page starts: a partition (a tier id, `-` for no tier)
/// and the index key to continue after, if any. Opaque to callers: hex of
/// its JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Cursor {
    t: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    k: Option<std::collections::BTreeMap<String, String>>,
    /// Walking a region's or an upline's index (`region`, `upline`)
    /// instead of the tier partitions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    i: Option<String>,
    /// A sorted walk: its sort, the period a sales ranking is of, and the
    /// rank to continue after; without a rank, the walk is in its tail
    /// (the tier partitions, skipping those the ranking listed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    s: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    p: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    r: Option<String>,
}

impl Cursor {
    /// The start of tier partition `t`.
    fn at_partition(t: String) -> Self {
        Cursor {
            t,
            k: None,
            i: None,
            s: None,
            p: None,
            r: None,
        }
    }
}

/// What a list walks: the tier partitions, or one region's or upline's
/// members through its index.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Walk {
    Tiers,
    Index {
        by: tier_store::reviews::MemberIndex,
        value: String,
    },
    Sorted(tier_domain::ranking::SortBy),
}

impl Walk {
    fn attribute(&self) -> Option<&'static str> {
        match self {
            Walk::Tiers | Walk::Sorted(_) => None,
            Walk::Index { by, .. } => Some(match by {
                tier_store::reviews::MemberIndex::Region => "region",
                tier_store::reviews::MemberIndex::Upline => "upline",
            }),
        }
    }
}

fn invalid_cursor() -> ApiError {
    ApiError::bad_request("invalid_cursor", "not a cursor this API returned")
}

impl Cursor {
    fn encode(&self) -> String {
        hex::encode(serde_json::to_vec(self).expect("strings serialise"))
    }

    /// Only a key of the partition (or index value) it names, with the
    /// index's and the table's key attributes, is a start key.
    fn decode(raw: &str, walk: &Walk) -> Result<Self, ApiError> {
        let bytes = hex::decode(raw).map_err(|_| invalid_cursor())?;
        let c: Cursor = serde_json::from_slice(&bytes).map_err(|_| invalid_cursor())?;
        if c.i.as_deref() != walk.attribute() {
            return Err(invalid_cursor());
        }
        match walk {
            Walk::Sorted(by) => sorted::check_cursor(&c, *by)?,
            Walk::Tiers => {
                if c.s.is_some() || c.p.is_some() || c.r.is_some() {
                    return Err(invalid_cursor());
                }
                c.check_tier_key()?;
            }
            Walk::Index { value, .. } => {
                if c.s.is_some() || c.p.is_some() || c.r.is_some() {
                    return Err(invalid_cursor());
                }
                let attr = walk.attribute().expect("an index walk has an attribute");
                if let Some(k) = &c.k {
                    let allowed = ["PK", "SK", attr];
                    if k.len() != allowed.len()
                        || !k.keys().all(|a| allowed.contains(&a.as_str()))
                        || k.get(attr) != Some(value)
                    {
                        return Err(invalid_cursor());
                    }
                }
            }
        }
        Ok(c)
    }

    /// A tier partition's cursor names a partition, and only a key of it.
    fn check_tier_key(&self) -> Result<(), ApiError> {
        let partition = partition_tier(&self.t)?;
        if let Some(k) = &self.k {
            let allowed = ["PK", "SK", "GSI1PK", "GSI1SK"];
            if k.len() != allowed.len()
                || !k.keys().all(|a| allowed.contains(&a.as_str()))
                || k.get("GSI1PK") != Some(&tier_store::keys::tier_members(partition.as_ref()))
            {
                return Err(invalid_cursor());
            }
        }
        Ok(())
    }
}

/// An amount as the API writes money: two decimal places.
fn money(mut amount: rust_decimal::Decimal) -> String {
    amount.rescale(2);
    amount.to_string()
}

/// `-` is the partition of distributors without a tier.
fn partition_tier(raw: &str) -> Result<Option<TierId>, ApiError> {
    if raw == "-" {
        return Ok(None);
    }
    TierId::parse(raw).map(Some).map_err(|_| invalid_cursor())
}

/// A list request's parameters, checked.
struct ListQuery {
    tier: Option<String>,
    walk: Walk,
    limit: usize,
    cursor: Option<Cursor>,
}

/// One parameter's single value.
fn one(query: Option<&str>, name: &str) -> Result<Option<String>, ApiError> {
    match http::query_values(query, name).as_slice() {
        [] => Ok(None),
        [v] => Ok(Some(v.clone())),
        _ => Err(ApiError::bad_request(
            "invalid_query",
            format!("{name} is given more than once"),
        )),
    }
}

/// The list's parameters, and `extra` ones the caller reads itself.
fn parse_query(query: Option<&str>, extra: &[&str]) -> Result<ListQuery, ApiError> {
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let name = pair.split_once('=').map_or(pair, |(k, _)| k);
        if !KNOWN.contains(&name) && !extra.contains(&name) {
            let known: Vec<&str> = KNOWN.iter().chain(extra).copied().collect();
            return Err(ApiError::bad_request(
                "unknown_parameter",
                format!("unknown query parameter {name:?}: {} are", known.join(", ")),
            ));
        }
    }
    let limit = match one(query, "limit")? {
        None => DEFAULT_LIMIT,
        Some(l) => l
            .parse::<usize>()
            .ok()
            .filter(|l| (1..=MAX_LIMIT).contains(l))
            .ok_or_else(|| {
                ApiError::bad_request("invalid_limit", format!("limit is 1 to {MAX_LIMIT}"))
            })?,
    };
    let walk = match (one(query, "region")?, one(query, "upline")?) {
        (Some(_), Some(_)) => {
            return Err(ApiError::bad_request(
                "conflicting_filters",
                "filter by region or by upline, not both",
            ));
        }
        (Some(r), None) => {
            if r.is_empty() || r.chars().count() > 64 {
                return Err(ApiError::bad_request(
                    "invalid_region",
                    "region is the region a distributor was registered with, 1 to 64 characters",
                ));
            }
            Walk::Index {
                by: tier_store::reviews::MemberIndex::Region,
                value: r,
            }
        }
        (None, Some(u)) => Walk::Index {
            by: tier_store::reviews::MemberIndex::Upline,
            value: tier_domain::ids::DistributorId::parse(&u)
                .map_err(|e| ApiError::bad_request("invalid_upline", e.to_string()))?
                .to_string(),
        },
        (None, None) => Walk::Tiers,
    };
    let tier = one(query, "tier")?;
    let walk = match one(query, "sort")? {
        None => walk,
        Some(raw) => {
            let by = tier_domain::ranking::SortBy::parse(&raw).ok_or_else(|| {
                let names: Vec<&str> = tier_domain::ranking::SortBy::ALL
                    .iter()
                    .map(|s| s.name())
                    .collect();
                ApiError::bad_request(
                    "invalid_sort",
                    format!("sort is one of {}", names.join(", ")),
                )
            })?;
            // A ranking spans the brand: it has no partition per tier,
            // region or upline to narrow it by.
            if walk != Walk::Tiers || tier.is_some() {
                return Err(ApiError::bad_request(
                    "conflicting_filters",
                    "sort lists the whole brand: it does not combine with tier, region or upline",
                ));
            }
            Walk::Sorted(by)
        }
    };
    Ok(ListQuery {
        tier,
        limit,
        cursor: one(query, "cursor")?
            .map(|c| Cursor::decode(&c, &walk))
            .transpose()?,
        walk,
    })
}

/// A page of distributors with their metrics, where the next starts, and
/// what the rows are read against.
struct Page {
    rows: Vec<(
        tier_store::distributors::Distributor,
        tier_domain::metrics::Metrics,
    )>,
    next: Option<Cursor>,
    rules: Option<tier_store::rules::PublishedRuleSet>,
    today: tier_domain::calendar::Day,
    /// The sales period a sorted page ranks by.
    period: Option<tier_domain::analytics::Span>,
}

impl AdminApi {
    /// Walks the tier partitions from `q.cursor` until `q.limit` members.
    async fn page(&self, q: ListQuery) -> Result<Page, ApiError> {
        let rules = self.table.current_rule_set().await?;
        if let Walk::Sorted(by) = q.walk {
            return self.sorted_page(by, q.cursor, q.limit, rules).await;
        }
        if let Walk::Index { by, value } = &q.walk {
            let tier = match &q.tier {
                None => None,
                Some(t) => Some(self.known_tier(t, rules.as_ref()).await?),
            };
            let mut at = q.cursor.clone().and_then(|c| c.k);
            let mut ids = Vec::with_capacity(q.limit);
            let next = loop {
                let start = at
                    .as_ref()
                    .map(|k| serde_json::to_string(k).expect("strings serialise"));
                let want = (q.limit - ids.len()) as i32;
                let (page, more) = self
                    .table
                    .indexed_members_page(
                        *by,
                        value,
                        tier.as_ref().map(Option::as_ref),
                        start.as_deref(),
                        want,
                    )
                    .await?;
                ids.extend(page);
                at = more
                    .map(|m| serde_json::from_str(&m).map_err(|_| invalid_cursor()))
                    .transpose()?;
                match &at {
                    None => break None,
                    Some(k) if ids.len() >= q.limit => {
                        break Some(Cursor {
                            k: Some(k.clone()),
                            i: q.walk.attribute().map(str::to_owned),
                            ..Cursor::at_partition(String::new())
                        });
                    }
                    Some(_) => {}
                }
            };
            return self.rows(ids, next, rules).await;
        }
        let partitions = match q.tier {
            Some(t) => {
                self.known_tier(&t, rules.as_ref()).await?;
                vec![t]
            }
            None => self.all_partitions(rules.as_ref()).await?,
        };
        let (ids, next) = self.walk_tiers(&partitions, q.cursor, q.limit).await?;
        self.rows(ids, next, rules).await
    }

    /// Every tier partition, in the order a list walks them: the current
    /// rule set's tiers from the top, tiers only earlier versions had, then
    /// distributors without a tier (`-`).
    async fn all_partitions(
        &self,
        rules: Option<&tier_store::rules::PublishedRuleSet>,
    ) -> Result<Vec<String>, ApiError> {
        let mut order: Vec<String> = rules
            .map(|r| {
                r.rules
                    .tiers()
                    .iter()
                    .rev()
                    .map(|t| t.id.to_string())
                    .collect()
            })
            .unwrap_or_default();
        for id in self.table.all_tier_ids().await? {
            if !order.iter().any(|o| o == id.as_str()) {
                order.push(id.to_string());
            }
        }
        order.push("-".into());
        Ok(order)
    }

    /// Up to `limit` members of `partitions`, in order, from `from` (a
    /// partition and a key in it), and where the next page starts.
    async fn walk_tiers(
        &self,
        partitions: &[String],
        from: Option<Cursor>,
        limit: usize,
    ) -> Result<(Vec<tier_domain::ids::DistributorId>, Option<Cursor>), ApiError> {
        let mut at = from.unwrap_or_else(|| Cursor::at_partition(partitions[0].clone()));
        let mut index = partitions
            .iter()
            .position(|p| *p == at.t)
            .ok_or_else(invalid_cursor)?;
        let mut ids = Vec::with_capacity(limit);
        let next = loop {
            let tier = partition_tier(&at.t)?;
            let start =
                at.k.as_ref()
                    .map(|k| serde_json::to_string(k).expect("strings serialise"));
            let want = (limit - ids.len()) as i32;
            let (page, more) = self
                .table
                .tier_members_page(tier.as_ref(), start.as_deref(), want)
                .await?;
            ids.extend(page);
            let more = more
                .map(|m| serde_json::from_str(&m).map_err(|_| invalid_cursor()))
                .transpose()?;
            at = match more {
                Some(k) => Cursor {
                    k: Some(k),
                    ..Cursor::at_partition(at.t.clone())
                },
                None if index + 1 < partitions.len() => {
                    index += 1;
                    Cursor::at_partition(partitions[index].clone())
                }
                None => break None,
            };
            if ids.len() >= limit {
                break Some(at);
            }
        };
        Ok((ids, next))
    }

    /// The page's rows: profiles and metrics of `ids`, in one BatchGetItem.
    async fn rows(
        &self,
        ids: Vec<tier_domain::ids::DistributorId>,
        next: Option<Cursor>,
        rules: Option<tier_store::rules::PublishedRuleSet>,
    ) -> Result<Page, ApiError> {
        let today = self.calendar.day_of(Utc::now());
        let spans = rules
            .as_ref()
            .map(|r| r.rules.daily_spans())
            .unwrap_or_default();
        let rows = self
            .table
            .distributors_with_metrics(&ids, today, &spans)
            .await?;
        Ok(Page {
            rows,
            next,
            rules,
            today,
            period: None,
        })
    }

    /// `tier` as a filter: a tier the current rule set or an earlier
    /// version has, or `-` (none); `unknown_tier` otherwise.
    async fn known_tier(
        &self,
        t: &str,
        rules: Option<&tier_store::rules::PublishedRuleSet>,
    ) -> Result<Option<TierId>, ApiError> {
        // The tiers of earlier versions are listed only when the current
        // one does not name it.
        let known = t == "-"
            || rules.is_some_and(|r| r.rules.tier_by_id(t).is_some())
            || self
                .table
                .all_tier_ids()
                .await?
                .iter()
                .any(|id| id.as_str() == t);
        if !known {
            return Err(ApiError::bad_request(
                "unknown_tier",
                format!("no rule set version has a tier {t:?} (`-`: no tier)"),
            ));
        }
        partition_tier(t)
            .map_err(|_| ApiError::bad_request("unknown_tier", format!("{t:?} is not a tier id")))
    }

    pub(crate) async fn list_distributors(
        &self,
        query: Option<&str>,
    ) -> Result<Response<Body>, ApiError> {
        let Page {
            rows,
            next,
            rules,
            today,
            period,
        } = self.page(parse_query(query, &[])?).await?;
        let distributors: Vec<serde_json::Value> = rows
            .iter()
            .map(|(d, m)| {
                let tier = rules.as_ref().and_then(|r| {
                    d.tier
                        .as_ref()
                        .and_then(|t| r.rules.tier_by_id(t.as_str()))
                        .or(Some(r.rules.entry_tier()))
                });
                let next = rules
                    .as_ref()
                    .zip(tier)
                    .and_then(|(r, t)| r.rules.next_tier_progress(m, today, t.rank));
                json!({
                    "id": d.id,
                    "name": d.name,
                    "tier": d.tier,
                    "region": d.region,
                    "upline": d.upline,
                    "tier_locked": d.tier_locked,
                    "sales_month": money(m.value(Metric::SalesAmount, Window::Month, today)),
                    "sales_quarter": money(m.value(Metric::SalesAmount, Window::Quarter, today)),
                    "next_tier": next.map(|(t, _)| t.id.clone()),
                    "progress_pct": next.map(|(_, p)| p),
                })
            })
            .collect();
        let mut body = json!({
            "distributors": distributors,
            "next_cursor": next.map(|c| c.encode()),
        });
        // A sales sort says which period it ranks.
        if let Some(period) = period {
            body["period"] = json!(period);
        }
        Ok(http::json(StatusCode::OK, &body))
    }

    /// `GET /v1/admin/distributors:about-to-move`: of a page of members, those
    /// within `within` percent (default 10) of their next tier's upgrade
    /// rule, and those a review would move down as their metrics stand.
    pub(crate) async fn about_to_move(
        &self,
        query: Option<&str>,
    ) -> Result<Response<Body>, ApiError> {
        let within = match one(query, "within")? {
            None => rust_decimal::Decimal::TEN,
            Some(w) => w
                .parse::<rust_decimal::Decimal>()
                .ok()
                .filter(|w| {
                    *w > rust_decimal::Decimal::ZERO && *w <= rust_decimal::Decimal::ONE_HUNDRED
                })
                .ok_or_else(|| {
                    ApiError::bad_request(
                        "invalid_within",
                        "within is a percentage above 0, at most 100",
                    )
                })?,
        };
        let Page {
            rows, next, rules, ..
        } = self.page(parse_query(query, &["within"])?).await?;
        let Some(rules) = rules else {
            return Err(ApiError::conflict(
                "no_rule_set",
                "no rule set is published: nobody is heading anywhere",
            ));
        };
        let now = Utc::now();
        let moving: Vec<serde_json::Value> = rows
            .iter()
            .filter_map(|(d, m)| {
                let standing = tier_domain::tier::Standing {
                    tier: d.tier.as_ref(),
                    since: d.upgraded_at,
                    locked: d.tier_locked,
                };
                let outlook = tier_domain::tier::outlook(
                    &rules.rules,
                    standing,
                    m,
                    &self.calendar,
                    now,
                    within,
                )?;
                let mut row = serde_json::to_value(&outlook).expect("an outlook serialises");
                row["id"] = json!(d.id);
                row["name"] = json!(d.name);
                row["tier"] = json!(d.tier);
                Some(row)
            })
            .collect();
        Ok(http::json(
            StatusCode::OK,
            &json!({
                "within_pct": within,
                "scanned": rows.len(),
                "distributors": moving,
                "next_cursor": next.map(|c| c.encode()),
            }),
        ))
    }
}
