//! What a warm intake instance remembers between deliveries, so that one
//! delivery costs one read of the table.
//!
//! Two kinds of memory, with different promises:
//!
//! - **Trusted for a while.** An app's record and secrets (for
//!   [`SECRET_CACHE_TTL`], and read again on a signature miss), the app a
//!   platform key names, and the published rule set (for [`RULES_TTL`]; it
//!   prices only the entitled unit price recorded on lines, never what is
//!   counted). A store's app, which picks the secret that checks a Shopify
//!   delivery, for [`STORE_TTL`]: a delivery through an app the store has
//!   left fails its signature or the view's check, never counts elsewhere.
//! - **Guesses.** A store's owner and SKU mapping and the price book's
//!   version only shape the one read ([`ViewHints`]): the read itself
//!   returns the store, its mappings and the book pointer, and what they
//!   name is what is used. A wrong guess costs a second read.
//!
//! Nothing is remembered for what was not found, so a stream of unknown
//! stores or keys cannot grow it: its size is bounded by the brand's
//! connected stores, their mapped codes and its apps.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tier_domain::ids::{AppId, DistributorId, Platform, Sku, StoreId};
use tier_store::platforms::PlatformApp;
use tier_store::rules::PublishedRuleSet;
use tier_store::secrets::SecretStore;
use tier_store::webhooks::ViewHints;
use tier_store::{StoreError, Table};

/// How long a read of an app's secrets is trusted: a rotation takes effect
/// within this without a deploy (and at once where the platform already
/// signs with the new secret, since a miss re-reads).
pub const SECRET_CACHE_TTL: Duration = Duration::from_secs(300);

/// How long a rule set read is used for the entitled prices on lines.
pub const RULES_TTL: Duration = Duration::from_secs(60);

/// How long a store's app (and owner) is trusted without a view reading it.
pub const STORE_TTL: Duration = Duration::from_secs(60);

/// A map whose entries are trusted for `ttl` after they were put.
pub struct TtlMap<K, V> {
    ttl: Duration,
    entries: Mutex<HashMap<K, (Instant, V)>>,
}

impl<K: Eq + Hash, V: Clone> TtlMap<K, V> {
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// The value, while it is trusted.
    pub fn get(&self, key: &K) -> Option<V> {
        let entries = self.entries.lock().expect("cache lock");
        entries
            .get(key)
            .filter(|(at, _)| at.elapsed() < self.ttl)
            .map(|(_, v)| v.clone())
    }

    pub fn put(&self, key: K, value: V) {
        self.entries
            .lock()
            .expect("cache lock")
            .insert(key, (Instant::now(), value));
    }

    pub fn forget(&self, key: &K) {
        self.entries.lock().expect("cache lock").remove(key);
    }
}

/// A connected store as last read.
#[derive(Debug, Clone, Default)]
pub struct KnownStore {
    pub owner: Option<DistributorId>,
    pub app: Option<AppId>,
    /// Platform codes found mapped, and to what.
    pub mapping: HashMap<String, Sku>,
}

/// Everything intake remembers; one per instance.
pub struct IntakeCache {
    pub secrets: TtlMap<(Platform, AppId), Vec<String>>,
    pub apps: TtlMap<(Platform, AppId), PlatformApp>,
    /// Platform key (抖店 `app_key`, 有赞 `client_id`) → app.
    pub app_keys: TtlMap<(Platform, String), AppId>,
    pub stores: TtlMap<(Platform, StoreId), KnownStore>,
    rules: TtlMap<(), Arc<PublishedRuleSet>>,
    /// The price book version last read; a guess, so never stale-dated.
    book_version: Mutex<Option<u64>>,
}

impl Default for IntakeCache {
    fn default() -> Self {
        Self {
            secrets: TtlMap::new(SECRET_CACHE_TTL),
            apps: TtlMap::new(SECRET_CACHE_TTL),
            app_keys: TtlMap::new(SECRET_CACHE_TTL),
            stores: TtlMap::new(STORE_TTL),
            rules: TtlMap::new(RULES_TTL),
            book_version: Mutex::new(None),
        }
    }
}

impl IntakeCache {
    /// The app's secrets, current first; `fresh` reads them again.
    pub async fn secrets(
        &self,
        store: &SecretStore,
        platform: &Platform,
        app: &AppId,
        fresh: bool,
    ) -> Result<Vec<String>, StoreError> {
        let key = (platform.clone(), app.clone());
        if !fresh && let Some(s) = self.secrets.get(&key) {
            return Ok(s);
        }
        let secrets = store.get(platform, app).await?;
        self.secrets.put(key, secrets.clone());
        Ok(secrets)
    }

    /// The app's record, read where not trusted any more.
    pub async fn app(
        &self,
        table: &Table,
        platform: &Platform,
        app: &AppId,
    ) -> Result<Option<PlatformApp>, StoreError> {
        let key = (platform.clone(), app.clone());
        if let Some(a) = self.apps.get(&key) {
            return Ok(Some(a));
        }
        let found = table.platform_app(platform, app).await?;
        if let Some(a) = &found {
            self.apps.put(key, a.clone());
        }
        Ok(found)
    }

    /// The app registered with platform key `key`.
    pub async fn app_by_key(
        &self,
        table: &Table,
        platform: &Platform,
        key: &str,
    ) -> Result<Option<AppId>, StoreError> {
        let k = (platform.clone(), key.to_owned());
        if let Some(a) = self.app_keys.get(&k) {
            return Ok(Some(a));
        }
        let found = table.app_by_key(platform, key).await?;
        if let Some(a) = &found {
            self.app_keys.put(k, a.clone());
        }
        Ok(found)
    }

    /// The store's app, as trusted or read now (`fresh` always reads).
    /// `None` for a store that is not connected.
    pub async fn store(
        &self,
        table: &Table,
        platform: &Platform,
        store: &StoreId,
        fresh: bool,
    ) -> Result<Option<KnownStore>, StoreError> {
        let key = (platform.clone(), store.clone());
        if !fresh && let Some(k) = self.stores.get(&key) {
            return Ok(Some(k));
        }
        let Some((owner, app)) = table.connected_store(platform, store).await? else {
            self.stores.forget(&key);
            return Ok(None);
        };
        let mut entries = self.stores.entries.lock().expect("cache lock");
        let mut known = entries.remove(&key).map(|(_, k)| k).unwrap_or_default();
        known.owner = Some(owner);
        known.app = app;
        entries.insert(key, (Instant::now(), known.clone()));
        Ok(Some(known))
    }

    /// What the next view of `store` should ask for in its first read, for
    /// a notice naming `codes` (only their mappings are copied out, not the
    /// store's whole catalogue). Guesses outlive the store's TTL: they are
    /// checked by the read.
    pub fn hints(&self, platform: &Platform, store: &StoreId, codes: &[String]) -> ViewHints {
        let (owner, mapping) = {
            let entries = self.stores.entries.lock().expect("cache lock");
            match entries.get(&(platform.clone(), store.clone())) {
                None => (None, HashMap::new()),
                Some((_, k)) => (
                    k.owner.clone(),
                    codes
                        .iter()
                        .filter_map(|c| k.mapping.get(c).map(|s| (c.clone(), s.clone())))
                        .collect(),
                ),
            }
        };
        ViewHints {
            owner,
            book_version: *self.book_version.lock().expect("cache lock"),
            mapping,
            rules: self.rules.get(&()),
        }
    }

    /// What a view read, remembered for the next delivery. `codes` are the
    /// platform codes the view asked about, `mapping` what it found of them.
    #[allow(clippy::too_many_arguments)]
    pub fn learn(
        &self,
        platform: &Platform,
        store: &StoreId,
        owner: Option<&DistributorId>,
        app: Option<&AppId>,
        codes: &[String],
        mapping: &HashMap<String, Sku>,
        rules: Option<&Arc<PublishedRuleSet>>,
        book_version: Option<u64>,
    ) {
        let key = (platform.clone(), store.clone());
        if owner.is_none() {
            // Not connected (any more): remember nothing of it.
            self.stores.forget(&key);
        } else {
            let mut entries = self.stores.entries.lock().expect("cache lock");
            let mut known = entries.remove(&key).map(|(_, k)| k).unwrap_or_default();
            known.owner = owner.cloned();
            known.app = app.cloned();
            for code in codes {
                match mapping.get(code) {
                    Some(sku) => known.mapping.insert(code.clone(), sku.clone()),
                    None => known.mapping.remove(code),
                };
            }
            entries.insert(key, (Instant::now(), known));
        }
        if let Some(r) = rules
            && self.rules.get(&()).is_none()
        {
            self.rules.put((), r.clone());
        }
        *self.book_version.lock().expect("cache lock") = book_version;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id<T>(parse: impl Fn(&str) -> Result<T, tier_domain::ids::IdError>, s: &str) -> T {
        parse(s).unwrap()
    }

    #[test]
    fn an_entry_is_trusted_for_its_ttl_only() {
        let map = TtlMap::new(Duration::from_millis(20));
        map.put("a", 1);
        assert_eq!(map.get(&"a"), Some(1));
        std::thread::sleep(Duration::from_millis(30));
        assert_eq!(map.get(&"a"), None);
        map.put("a", 2);
        map.forget(&"a");
        assert_eq!(map.get(&"a"), None);
    }

    #[test]
    fn a_view_teaches_the_next_ones_first_read() {
        let cache = IntakeCache::default();
        let (p, s) = (id(Platform::parse, "shopify"), id(StoreId::parse, "x"));
        let owner = id(DistributorId::parse, "d-1");
        let codes = ["TEE".to_owned(), "HAT".to_owned()];
        assert!(cache.hints(&p, &s, &codes).owner.is_none());
        let mapping: HashMap<String, Sku> = [("TEE".to_owned(), id(Sku::parse, "tee-m"))].into();
        cache.learn(&p, &s, Some(&owner), None, &codes, &mapping, None, Some(7));
        let hints = cache.hints(&p, &s, &codes);
        assert_eq!(hints.owner.as_ref(), Some(&owner));
        assert_eq!(hints.book_version, Some(7));
        assert_eq!(hints.mapping, mapping, "only what was found is kept");
        assert!(
            cache.hints(&p, &s, &["HAT".to_owned()]).mapping.is_empty(),
            "only the codes asked about are copied out"
        );
        // A code no longer mapped is forgotten; a store no longer connected too.
        cache.learn(
            &p,
            &s,
            Some(&owner),
            None,
            &codes,
            &HashMap::new(),
            None,
            Some(8),
        );
        assert!(cache.hints(&p, &s, &codes).mapping.is_empty());
        cache.learn(&p, &s, None, None, &codes, &HashMap::new(), None, Some(8));
        assert!(cache.hints(&p, &s, &codes).owner.is_none());
        assert!(cache.stores.get(&(p, s)).is_none());
    }
}
