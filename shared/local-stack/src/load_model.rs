//! The load model: what a brand's peak does to DynamoDB, computed from the
//! write sets of real orders. Real DynamoDB cannot be load-tested here, so
//! the `load-model` bench records, through the real handlers against the
//! emulator, which items each order writes (and in which transactions),
//! abstracts them into templates by the order's roles (seller, its
//! ancestors by level, its SKUs), and replays the templates for a
//! synthetic brand at a target rate.
//!
//! Two designs are computed from the same recordings:
//!
//! - **now**: the recorded writes, with the network roll-up's pulls
//!   amortized as they run: one pull per (upline, direct downline) and
//!   window in which an order below moved it, up to 10 edges of one upline
//!   sharing its transaction (a FIFO batch);
//! - **before**: the build before the roll-up, where the seller's
//!   transaction also updated the metrics of every ancestor above its
//!   upline (2 units each, merged with the level-2 receiver's commission),
//!   and no pulls ran.

use std::collections::{BTreeMap, HashMap};

use tier_runtime::cost::Write;

/// A write with the order's ids replaced by role placeholders: `{S}` the
/// seller, `{A1}`… its ancestors by level, `{K0}`… its SKUs by line, `{U}`
/// ids unique to the order, `{SH}` a shard chosen by the seller.
#[derive(Debug, Clone, PartialEq)]
pub struct RoleWrite {
    pub pk: String,
    pub sk: String,
    pub units: f64,
    /// Which transaction of the order it was in (`None`: a plain write).
    pub tx: Option<u64>,
}

/// One recorded order, abstracted.
#[derive(Debug, Clone, Default)]
pub struct Template {
    /// What the order writes itself (intake, the seller's batch, stock).
    pub order: Vec<RoleWrite>,
    /// What the pulls it caused wrote: edges and the uplines' metrics.
    pub pulls: Vec<RoleWrite>,
    /// Pulls it caused (one per level above the upline).
    pub pull_count: usize,
}

/// The ids of a recorded order, to abstract its writes with.
pub struct Recorded<'a> {
    pub seller: &'a str,
    /// Upline first.
    pub ancestors: &'a [String],
    pub skus: &'a [&'a str],
    /// Ids used by this order alone (order id, buyer, webhook event).
    pub unique: &'a [String],
    /// The label of the roll-up queue's writes.
    pub rollup_source: &'a str,
}

/// Abstracts `writes` (one order's, end to end) into a template.
pub fn abstract_order(writes: &[Write], ids: &Recorded<'_>) -> Template {
    let mut subs: Vec<(String, String)> = vec![(ids.seller.to_owned(), "{S}".into())];
    for (i, a) in ids.ancestors.iter().enumerate() {
        subs.push((a.clone(), format!("{{A{}}}", i + 1)));
    }
    for (i, k) in ids.skus.iter().enumerate() {
        subs.push(((*k).to_owned(), format!("{{K{i}}}")));
    }
    for u in ids.unique {
        subs.push((u.clone(), "{U}".into()));
    }
    // Longest first, so no id is replaced inside a longer one.
    subs.sort_by_key(|(needle, _)| std::cmp::Reverse(needle.len()));
    let role = |s: &str| {
        let mut out = shard_role(s);
        for (needle, placeholder) in &subs {
            out = out.replace(needle.as_str(), placeholder);
        }
        out
    };
    let mut t = Template::default();
    let mut pull_requests = std::collections::BTreeSet::new();
    // A condition check is billed and conflicts like a write: it counts.
    for w in writes {
        let rw = RoleWrite {
            pk: role(&w.pk),
            sk: role(&w.sk),
            units: w.units,
            tx: w.in_transaction.then_some(w.request),
        };
        if w.source
            .as_deref()
            .is_some_and(|s| s.contains(ids.rollup_source))
        {
            if rw.sk.starts_with("NET#") {
                pull_requests.insert(w.request);
            }
            t.pulls.push(rw);
        } else {
            t.order.push(rw);
        }
    }
    t.pull_count = pull_requests.len();
    t
}

/// Shard numbers in analytics keys (`STATS#2026-12#07`,
/// `STATS#MEMBERS#07`) become `{SH}`: the synthetic seller picks its own.
fn shard_role(s: &str) -> String {
    match s.rsplit_once('#') {
        Some((head, tail))
            if head.starts_with("STATS#")
                && tail.len() == 2
                && tail.chars().all(|c| c.is_ascii_digit()) =>
        {
            format!("{head}#{{SH}}")
        }
        _ => s.to_owned(),
    }
}

/// A small deterministic generator (xorshift64*).
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
}

/// Draws ranks 0..n with probability proportional to 1 / (rank + 1)^s.
pub struct Zipf {
    cumulative: Vec<f64>,
}

impl Zipf {
    pub fn new(n: usize, s: f64) -> Zipf {
        let mut total = 0.0;
        let cumulative = (0..n)
            .map(|r| {
                total += 1.0 / ((r + 1) as f64).powf(s);
                total
            })
            .collect();
        Zipf { cumulative }
    }

    pub fn draw(&self, rng: &mut Rng) -> usize {
        let total = *self.cumulative.last().expect("not empty");
        let x = rng.unit() * total;
        self.cumulative
            .partition_point(|c| *c < x)
            .min(self.cumulative.len() - 1)
    }
}

/// The synthetic brand: distributors by level under one root (id 0).
pub struct Brand {
    pub parent: Vec<Option<u32>>,
    pub depth: Vec<u8>,
}

impl Brand {
    /// `sizes[l]` distributors at level `l + 1`, each under a distributor
    /// of the level above drawn by a power law (a few uplines have most of
    /// the downline, as in real networks).
    pub fn generate(sizes: &[usize], rng: &mut Rng) -> Brand {
        let mut parent = vec![None];
        let mut depth = vec![0u8];
        let mut above: Vec<u32> = vec![0];
        for (l, size) in sizes.iter().enumerate() {
            let pick = Zipf::new(above.len(), 1.0);
            let mut level = Vec::with_capacity(*size);
            for _ in 0..*size {
                let id = parent.len() as u32;
                parent.push(Some(above[pick.draw(rng)]));
                depth.push(l as u8 + 1);
                level.push(id);
            }
            above = level;
        }
        Brand { parent, depth }
    }

    pub fn len(&self) -> usize {
        self.parent.len()
    }

    pub fn is_empty(&self) -> bool {
        self.parent.is_empty()
    }

    /// Upline first.
    pub fn ancestors(&self, mut d: u32) -> Vec<u32> {
        let mut out = Vec::new();
        while let Some(p) = self.parent[d as usize] {
            out.push(p);
            d = p;
        }
        out
    }
}

/// The load to model.
pub struct Load<'a> {
    pub brand: &'a Brand,
    /// Recorded templates by (seller depth, lines).
    pub templates: &'a BTreeMap<(u8, usize), Template>,
    pub orders_per_second: f64,
    pub seconds: f64,
    /// The roll-up window.
    pub window_seconds: f64,
    pub skus: usize,
    /// How long a transaction is in flight, for the chance of overlap.
    pub transaction_seconds: f64,
    pub seed: u64,
    /// The most popular SKUs spread over buckets: (how many, buckets).
    /// Their payments write the order's bucket instead of the stock item,
    /// as the store writes a spread SKU (docs/stock.md, "Hot SKUs").
    pub spread: Option<(usize, u32)>,
    /// The distributors whose metrics orders write most, as sellers or as
    /// receivers of commission (upline and the one above), spread over
    /// shards: (how many, shards), as an operator spreads the hottest.
    /// Orders write the order's shard instead of their metrics item, as
    /// the store writes a spread distributor (docs/cost.md, "Hot
    /// sellers"), and a spread seller's ranks are set once a window.
    pub spread_sellers: Option<(usize, u8)>,
    /// Whether the brand pays level-2 commission (the recordings do): off,
    /// the second receiver's writes (its metrics and its commission entry)
    /// are left out.
    pub level2: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Design {
    /// The network roll-up, pulls amortized per window.
    Now,
    /// Every ancestor in the seller's transaction, and the sales cells
    /// sharded by seller.
    Before,
}

/// The regions buyers are drawn from: China's provincial divisions.
const PROVINCES: usize = 34;

/// What the model computes for one design at one rate.
#[derive(Debug, Clone, Default)]
pub struct Figures {
    /// The hottest item, its write units a second, and its role.
    pub hottest_item: (f64, String),
    /// The same, leaving out SKU stock items.
    pub hottest_non_stock: (f64, String),
    /// The hottest SKU stock item (a bucket, for a spread SKU).
    pub hottest_stock: (f64, String),
    pub hottest_partition: (f64, String),
    /// The hottest item an order writes for someone other than its seller
    /// (uplines' and ancestors' metrics, edges): what grows with the network.
    pub hottest_network: (f64, String),
    /// Mean write units an order, by the seller's depth (1 to 6).
    pub units_by_depth: BTreeMap<u8, f64>,
    /// The same for 1-line orders alone.
    pub units_by_depth_one_line: BTreeMap<u8, f64>,
    /// Orders by the seller's depth.
    pub orders_by_depth: BTreeMap<u8, usize>,
    /// The chance that a transaction shares an item with another in flight.
    pub conflict_chance: f64,
    /// The same, leaving out the stock transactions.
    pub conflict_chance_non_stock: f64,
}

/// One transaction's items, and whether it is a pull (pulls of one upline
/// are serialised by their FIFO group: they never overlap each other).
struct Tx {
    items: Vec<String>,
    pull_of: Option<u32>,
    stock: bool,
}

fn role_of(key: &str) -> String {
    if key.starts_with("SKU#") {
        "SKU stock".into()
    } else if key.contains("#M") && key.ends_with("|METRICS") {
        "metrics shard".into()
    } else if key.contains("METRICS") {
        "metrics".into()
    } else if key.starts_with("STATS#") {
        "analytics shard".into()
    } else {
        key.split('#').next().unwrap_or_default().to_owned()
    }
}

pub fn model(load: &Load<'_>, design: Design) -> Figures {
    let mut rng = Rng::new(load.seed);
    let brand = load.brand;
    // Sellers: a power law over the distributors (not the root) in a
    // random order, so the busiest are anywhere in the tree.
    let mut sellers: Vec<u32> = (1..brand.len() as u32).collect();
    for i in (1..sellers.len()).rev() {
        let j = rng.below(i + 1);
        sellers.swap(i, j);
    }
    let seller_rank = Zipf::new(sellers.len(), 1.0);
    let sku_rank = Zipf::new(load.skus, 1.0);
    let region_rank = Zipf::new(PROVINCES, 1.0);
    let orders = (load.orders_per_second * load.seconds) as usize;

    let mut units: HashMap<String, f64> = HashMap::new();
    let mut partitions: HashMap<String, f64> = HashMap::new();
    let mut network: HashMap<String, f64> = HashMap::new();
    let mut by_depth: BTreeMap<u8, (f64, usize)> = BTreeMap::new();
    let mut txs: Vec<Tx> = Vec::new();
    // (upline, window) → edges dirtied, each with the orders that did.
    let mut dirty: HashMap<(u32, u64), BTreeMap<u32, Vec<usize>>> = HashMap::new();
    let mut order_units: Vec<(u8, f64)> = Vec::with_capacity(orders);
    let mut one_line: Vec<bool> = Vec::with_capacity(orders);
    // The spread distributors: those whose metrics orders write most, as
    // sellers or as receivers of commission.
    let mut spread_ids: std::collections::HashSet<u32> = std::collections::HashSet::new();
    if let Some((top, _)) = load.spread_sellers {
        // Each distributor's share of the orders whose metrics writes name
        // it: its own, and those of the sellers one and two levels below.
        let mut share: HashMap<u32, f64> = HashMap::new();
        for (rank, s) in sellers.iter().enumerate() {
            let p = 1.0 / (rank + 1) as f64;
            let receivers = if load.level2 { 2 } else { 1 };
            for d in std::iter::once(*s).chain(brand.ancestors(*s).into_iter().take(receivers)) {
                *share.entry(d).or_default() += p;
            }
        }
        let mut hottest: Vec<(u32, f64)> = share.into_iter().collect();
        hottest.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        spread_ids.extend(hottest.iter().take(top).map(|(d, _)| *d));
    }
    let mut ranks_refreshed: std::collections::HashSet<(u32, u64)> = Default::default();
    // `others`: written for someone other than the order's seller.
    let mut write = |pk: &str, sk: &str, u: f64, others: bool| {
        *units.entry(format!("{pk}|{sk}")).or_default() += u;
        *partitions.entry(pk.to_owned()).or_default() += u;
        if others {
            *network.entry(format!("{pk}|{sk}")).or_default() += u;
        }
    };
    for n in 0..orders {
        let seller = sellers[seller_rank.draw(&mut rng)];
        let depth = brand.depth[seller as usize];
        let lines = (1 + rng.below(3)).min(load.skus);
        let mut skus: Vec<usize> = Vec::new();
        while skus.len() < lines {
            let k = sku_rank.draw(&mut rng);
            if !skus.contains(&k) {
                skus.push(k);
            }
        }
        let Some(template) = load.templates.get(&(depth.min(6), lines)) else {
            continue;
        };
        let ancestors = brand.ancestors(seller);
        let shard = seller % 16;
        let concrete = |s: &str| {
            let mut out = s.replace("{S}", &format!("d{seller}"));
            for (i, a) in ancestors.iter().enumerate().rev() {
                out = out.replace(&format!("{{A{}}}", i + 1), &format!("d{a}"));
            }
            for (i, k) in skus.iter().enumerate() {
                out = out.replace(&format!("{{K{i}}}"), &format!("sku{k}"));
            }
            out.replace("{U}", &format!("o{n}"))
                .replace("{SH}", &format!("{shard:02}"))
        };
        let mut total = 0.0;
        let mut by_tx: BTreeMap<u64, Vec<String>> = BTreeMap::new();
        let mut seller_tx = None;
        let region = region_rank.draw(&mut rng);
        // The hash of the order, for what the store spreads by order.
        let order_hash = (n as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32;
        for w in template
            .order
            .iter()
            .filter(|w| load.level2 || !w.pk.starts_with("DIST#{A2}"))
        {
            // Sales cells are sharded by order (by seller before), tier
            // moves by distributor.
            let pk = if w.sk.starts_with("SALES#") && design == Design::Now {
                w.pk.replace("{SH}", &format!("{:02}", order_hash % 16))
            } else {
                w.pk.clone()
            };
            let (mut pk, mut sk) = (concrete(&pk), concrete(&w.sk));
            // The buyer's region: one of the provinces, by a power law
            // (the recording has one region for every order).
            if let Some(rest) = sk.strip_prefix("SALES#")
                && let Some((_, tier)) = rest.rsplit_once('#')
            {
                sk = format!("SALES#R{region:02}#{tier}");
            }
            if let Some((_, shards)) = load.spread_sellers
                && sk == "METRICS"
                && let Some(id) = pk
                    .strip_prefix("DIST#d")
                    .and_then(|d| d.parse::<u32>().ok())
                && spread_ids.contains(&id)
            {
                // The order's shard, as the store takes it.
                pk = format!("{pk}#M{:02}", order_hash % u64::from(shards));
            }
            if let Some((top, buckets)) = load.spread
                && sk == "STOCK"
                && let Some(k) = pk
                    .strip_prefix("SKU#sku")
                    .and_then(|k| k.parse::<usize>().ok())
                && k < top
            {
                // The order's bucket: its hash, as the store takes it.
                pk = format!("{pk}#B{:02}", order_hash % u64::from(buckets));
            }
            let others = w.pk.starts_with("DIST#{A") && (sk == "METRICS" || sk.starts_with("NET#"));
            write(&pk, &sk, w.units, others);
            total += w.units;
            if let Some(tx) = w.tx {
                if pk == format!("DIST#d{seller}") {
                    seller_tx.get_or_insert(tx);
                }
                by_tx.entry(tx).or_default().push(format!("{pk}|{sk}"));
            }
        }
        if design == Design::Before {
            // Every ancestor above the upline, in the seller's transaction:
            // the level-2 receiver's update carried its network too.
            for a in ancestors.iter().skip(1) {
                let (pk, sk) = (format!("DIST#d{a}"), "METRICS".to_owned());
                let key = format!("{pk}|{sk}");
                let tx = seller_tx.and_then(|t| by_tx.get_mut(&t));
                if tx.as_ref().is_some_and(|items| items.contains(&key)) {
                    continue;
                }
                write(&pk, &sk, 2.0, true);
                total += 2.0;
                if let Some(items) = tx {
                    items.push(key);
                }
            }
        }
        for (_, items) in by_tx {
            let stock = items.iter().any(|i| i.starts_with("SKU#"));
            txs.push(Tx {
                items,
                pull_of: None,
                stock,
            });
        }
        if design == Design::Now && template.pull_count > 0 {
            let window = ((n as f64 / load.orders_per_second) / load.window_seconds) as u64;
            // The seller's upline's network moved: each edge above it is
            // pulled once in the window.
            for pair in ancestors.windows(2) {
                let (downline, upline) = (pair[0], pair[1]);
                dirty
                    .entry((upline, window))
                    .or_default()
                    .entry(downline)
                    .or_default()
                    .push(n);
            }
        }
        if spread_ids.contains(&seller) {
            // Its ranks, set from the shards once a window.
            let window = ((n as f64 / load.orders_per_second) / load.window_seconds) as u64;
            if ranks_refreshed.insert((seller, window)) {
                write(&format!("DIST#d{seller}"), "METRICS", 1.0, false);
                total += 1.0;
            }
        }
        order_units.push((depth, total));
        one_line.push(lines == 1);
    }
    if design == Design::Now {
        // What one pull writes besides its edge (the upline's metrics, its
        // evaluation), from the recordings.
        let (mut edge, mut other, mut pulls) = (0.0, 0.0, 0usize);
        for t in load.templates.values().filter(|t| t.pull_count > 0) {
            for w in &t.pulls {
                if w.sk.starts_with("NET#") {
                    edge += w.units;
                } else {
                    other += w.units;
                }
            }
            pulls += t.pull_count;
        }
        let (edge, other) = (edge / pulls as f64, other / pulls as f64);
        for ((upline, _), edges) in dirty {
            let batches = edges.len().div_ceil(10);
            let upline_units = other * batches as f64;
            write(&format!("DIST#d{upline}"), "METRICS", upline_units, true);
            let share = upline_units / edges.len() as f64;
            let edge_ids: Vec<u32> = edges.keys().copied().collect();
            for (downline, by) in edges {
                write(
                    &format!("DIST#d{upline}"),
                    &format!("NET#d{downline}"),
                    edge,
                    true,
                );
                for o in &by {
                    order_units[*o].1 += (edge + share) / by.len() as f64;
                }
            }
            for chunk in edge_ids.chunks(10) {
                let mut items = vec![format!("DIST#d{upline}|METRICS")];
                items.extend(chunk.iter().map(|d| format!("DIST#d{upline}|NET#d{d}")));
                txs.push(Tx {
                    items,
                    pull_of: Some(upline),
                    stock: false,
                });
            }
        }
    }
    let mut by_depth_one: BTreeMap<u8, (f64, usize)> = BTreeMap::new();
    for ((depth, u), one) in order_units.iter().zip(&one_line) {
        let slot = by_depth.entry(*depth).or_default();
        slot.0 += u;
        slot.1 += 1;
        if *one {
            let slot = by_depth_one.entry(*depth).or_default();
            slot.0 += u;
            slot.1 += 1;
        }
    }

    // The chance of overlap: a transaction in flight for τ meets another on
    // one of its items at that item's rate of transactions, over 2τ.
    let mut rate: HashMap<&str, f64> = HashMap::new();
    let mut pull_rate: HashMap<&str, f64> = HashMap::new();
    for t in &txs {
        for i in &t.items {
            *rate.entry(i).or_default() += 1.0 / load.seconds;
            if t.pull_of.is_some() {
                *pull_rate.entry(i).or_default() += 1.0 / load.seconds;
            }
        }
    }
    let tau = load.transaction_seconds;
    let (mut all, mut non_stock, mut non_stock_n) = (0.0, 0.0, 0usize);
    for t in &txs {
        let others: f64 = t
            .items
            .iter()
            .map(|i| {
                let mut r = rate[i.as_str()] - 1.0 / load.seconds;
                if t.pull_of.is_some() {
                    r -= pull_rate.get(i.as_str()).copied().unwrap_or(0.0) - 1.0 / load.seconds;
                }
                r.max(0.0)
            })
            .sum();
        let p = 1.0 - (-2.0 * tau * others).exp();
        all += p;
        if !t.stock {
            non_stock += p;
            non_stock_n += 1;
        }
    }
    let hottest = |filter: &dyn Fn(&str) -> bool, map: &HashMap<String, f64>| {
        map.iter()
            .filter(|(k, _)| filter(k))
            .max_by(|a, b| a.1.total_cmp(b.1))
            .map(|(k, u)| (u / load.seconds, role_of(k)))
            .unwrap_or_default()
    };
    Figures {
        hottest_item: hottest(&|_| true, &units),
        hottest_non_stock: hottest(&|k| !k.starts_with("SKU#"), &units),
        hottest_stock: hottest(&|k| k.starts_with("SKU#"), &units),
        hottest_partition: hottest(&|_| true, &partitions),
        hottest_network: hottest(&|_| true, &network),
        units_by_depth: by_depth
            .iter()
            .map(|(d, (u, n))| (*d, u / *n as f64))
            .collect(),
        orders_by_depth: by_depth.iter().map(|(d, (_, n))| (*d, *n)).collect(),
        units_by_depth_one_line: by_depth_one
            .iter()
            .map(|(d, (u, n))| (*d, u / *n as f64))
            .collect(),
        conflict_chance: all / txs.len().max(1) as f64,
        conflict_chance_non_stock: non_stock / non_stock_n.max(1) as f64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(pk: &str, sk: &str, tx: bool, request: u64, source: &str) -> Write {
        Write {
            pk: pk.into(),
            sk: sk.into(),
            units: if tx { 2.0 } else { 1.0 },
            in_transaction: tx,
            check_only: false,
            source: Some(source.into()),
            request,
        }
    }

    #[test]
    fn recorded_writes_become_roles() {
        let ancestors = vec!["lm-2".to_owned(), "lm-1".to_owned(), "lmroot".to_owned()];
        let unique = vec!["LMO-7".to_owned()];
        let t = abstract_order(
            &[
                w(
                    "DIST#lm-3",
                    "ORDER#tmall#s#LMO-7",
                    true,
                    1,
                    "q-TierEventsQueue",
                ),
                w("DIST#lm-2", "METRICS", true, 1, "q-TierEventsQueue"),
                w(
                    "STATS#2026-12#07",
                    "SALES#x#y",
                    true,
                    1,
                    "q-TierEventsQueue",
                ),
                w("SKU#TEE-WHITE", "STOCK", true, 2, "q-StockEventsQueue"),
                w("DIST#lm-1", "NET#lm-2", true, 3, "q-RollupQueue.fifo"),
                w("DIST#lm-1", "METRICS", true, 3, "q-RollupQueue.fifo"),
            ],
            &Recorded {
                seller: "lm-3",
                ancestors: &ancestors,
                skus: &["TEE-WHITE"],
                unique: &unique,
                rollup_source: "RollupQueue",
            },
        );
        let keys: Vec<(String, String)> = t
            .order
            .iter()
            .map(|w| (w.pk.clone(), w.sk.clone()))
            .collect();
        assert_eq!(
            keys,
            [
                ("DIST#{S}".into(), "ORDER#tmall#s#{U}".into()),
                ("DIST#{A1}".into(), "METRICS".into()),
                ("STATS#2026-12#{SH}".into(), "SALES#x#y".into()),
                ("SKU#{K0}".into(), "STOCK".into()),
            ]
        );
        assert_eq!(t.pull_count, 1);
        assert_eq!(t.pulls[0].sk, "NET#{A1}");
        assert_eq!(t.pulls[0].pk, "DIST#{A2}");
    }

    #[test]
    fn zipf_favours_the_first_ranks() {
        let z = Zipf::new(100, 1.0);
        let mut rng = Rng::new(7);
        let first = (0..10_000).filter(|_| z.draw(&mut rng) == 0).count();
        // 1 / H(100) ≈ 19 %.
        assert!((1_500..2_400).contains(&first), "{first}");
    }

    #[test]
    fn a_brand_has_its_levels_under_one_root() {
        let mut rng = Rng::new(3);
        let b = Brand::generate(&[3, 9, 27], &mut rng);
        assert_eq!(b.len(), 40);
        assert!(b.ancestors(39).len() == 3 && *b.ancestors(39).last().unwrap() == 0);
        assert_eq!(b.depth[39], 3);
    }

    /// Orders below one upline in one window cost it one pull, and share
    /// its units; the build before paid every ancestor on every order.
    #[test]
    fn pulls_are_shared_by_the_orders_of_a_window() {
        let mut rng = Rng::new(5);
        let brand = Brand::generate(&[1, 1, 1], &mut rng); // a chain: 0 ← 1 ← 2 ← 3
        let template = Template {
            order: vec![
                RoleWrite {
                    pk: "DIST#{S}".into(),
                    sk: "METRICS".into(),
                    units: 2.0,
                    tx: Some(1),
                },
                RoleWrite {
                    pk: "DIST#{A1}".into(),
                    sk: "METRICS".into(),
                    units: 2.0,
                    tx: Some(1),
                },
            ],
            pulls: vec![
                RoleWrite {
                    pk: "DIST#{A2}".into(),
                    sk: "NET#{A1}".into(),
                    units: 2.0,
                    tx: Some(2),
                },
                RoleWrite {
                    pk: "DIST#{A2}".into(),
                    sk: "METRICS".into(),
                    units: 2.0,
                    tx: Some(2),
                },
            ],
            pull_count: 1,
        };
        let mut templates: BTreeMap<(u8, usize), Template> = BTreeMap::new();
        for d in 1..=3 {
            for l in 1..=3 {
                templates.insert((d, l), template.clone());
            }
        }
        let load = Load {
            brand: &brand,
            templates: &templates,
            orders_per_second: 100.0,
            seconds: 1.0,
            window_seconds: 1.0,
            skus: 1,
            transaction_seconds: 0.01,
            seed: 1,
            spread: None,
            spread_sellers: None,
            level2: true,
        };
        let now = model(&load, Design::Now);
        let before = model(&load, Design::Before);
        // At depth 3, the build before paid two more ancestors an order.
        assert_eq!(before.units_by_depth[&3], 8.0);
        // Now: 4 units, and a share of two pulls of one window.
        let deep = now.units_by_depth[&3];
        assert!(deep > 4.0 && deep < 5.0, "{deep}");
        assert!(now.hottest_item.0 < before.hottest_item.0);
    }

    /// A spread SKU's orders write its buckets, each a share of them.
    #[test]
    fn a_spread_skus_writes_are_shared_by_its_buckets() {
        let mut rng = Rng::new(7);
        let brand = Brand::generate(&[50], &mut rng);
        let template = Template {
            order: vec![RoleWrite {
                pk: "SKU#{K0}".into(),
                sk: "STOCK".into(),
                units: 2.0,
                tx: Some(1),
            }],
            pulls: vec![],
            pull_count: 0,
        };
        let templates = BTreeMap::from([((1, 1), template)]);
        let mut load = Load {
            brand: &brand,
            templates: &templates,
            orders_per_second: 1_000.0,
            seconds: 4.0,
            window_seconds: 1.0,
            skus: 1,
            transaction_seconds: 0.01,
            seed: 3,
            spread: None,
            spread_sellers: None,
            level2: true,
        };
        let one = model(&load, Design::Now).hottest_item.0;
        assert_eq!(one, 2_000.0, "every order on the one item");
        load.spread = Some((1, 8));
        let spread = model(&load, Design::Now).hottest_item.0;
        assert!(spread < one / 6.0 && spread >= one / 8.0, "{spread}");
    }

    /// A spread seller's orders, and the commission they pay its upline,
    /// write their shards, each a share of them; its ranks are written once
    /// a window.
    #[test]
    fn a_spread_sellers_writes_are_shared_by_its_shards() {
        let mut rng = Rng::new(7);
        // One seller under the root: every order is its.
        let brand = Brand::generate(&[1], &mut rng);
        let template = Template {
            order: vec![
                RoleWrite {
                    pk: "DIST#{S}".into(),
                    sk: "METRICS".into(),
                    units: 2.0,
                    tx: Some(1),
                },
                RoleWrite {
                    pk: "DIST#{A1}".into(),
                    sk: "METRICS".into(),
                    units: 2.0,
                    tx: Some(1),
                },
            ],
            pulls: vec![],
            pull_count: 0,
        };
        let templates = BTreeMap::from([((1, 1), template)]);
        let mut load = Load {
            brand: &brand,
            templates: &templates,
            orders_per_second: 1_000.0,
            seconds: 4.0,
            window_seconds: 1.0,
            skus: 1,
            transaction_seconds: 0.01,
            seed: 3,
            spread: None,
            spread_sellers: None,
            level2: true,
        };
        let one = model(&load, Design::Now);
        assert_eq!(one.hottest_item.0, 2_000.0, "every order on each item");
        load.spread_sellers = Some((2, 8));
        let spread = model(&load, Design::Now);
        let hottest = spread.hottest_item.0;
        assert!(
            (2_000.0 / 8.0..2_000.0 / 6.0).contains(&hottest),
            "{hottest}"
        );
        assert_eq!(spread.hottest_item.1, "metrics shard");
        // 4 units an order, and the ranks: 1 unit a window of 1,000 orders.
        assert_eq!(spread.units_by_depth_one_line[&1], 4.001);
    }
}
