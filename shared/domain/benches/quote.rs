//! Price computation per SKU, precedence to floor. The baseline, in the same
//! run, is a SKU with a base price only; the full case has an override,
//! an open promotion, a fixed tier price, a tier discount, volume breaks and
//! a floor. Report the ratio, not the absolute time.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use tier_domain::ids::{DistributorId, TierId};
use tier_domain::money::Percent;
use tier_domain::pricing::book::KnownTiers;
use tier_domain::pricing::{PriceBookDraft, QuoteRequest, quote};
use tier_domain::rules::{Benefits, Permission, Tier};

struct AnyTier;
impl KnownTiers for AnyTier {
    fn has_tier(&self, _: &TierId) -> bool {
        true
    }
}

const FULL: &str = r#"{"rows": [
    {"type": "base", "sku": "TEE", "price": "199.00"},
    {"type": "floor", "sku": "TEE", "price": "100.00"},
    {"type": "tier_price", "sku": "TEE", "tier": "gold", "price": "150.00"},
    {"type": "tier_price", "sku": "TEE", "tier": "senior", "price": "170.00"},
    {"type": "override", "sku": "TEE", "distributor": "d-other", "price": "140.00"},
    {"type": "volume_break", "sku": "TEE", "min_qty": "10", "discount_pct": "2"},
    {"type": "volume_break", "sku": "TEE", "min_qty": "100", "discount_pct": "5"},
    {"type": "base", "sku": "PLAIN", "price": "59.00"}],
  "promotions": [{"id": "double-11", "name": "Double 11", "skus": ["TEE"], "tiers": ["gold"],
    "starts_at": "2026-11-01T00:00:00Z", "ends_at": "2026-11-12T00:00:00Z", "price": "129.00"},
    {"id": "december", "name": "December", "skus": ["TEE"], "tiers": ["gold"],
    "starts_at": "2026-12-01T00:00:00Z", "ends_at": "2026-12-31T00:00:00Z", "discount_pct": "20"}]}"#;

fn bench(c: &mut Criterion) {
    let book = PriceBookDraft::from_json(FULL, &AnyTier).unwrap();
    let tee = &book.skus[&"TEE".parse_sku()];
    let plain = &book.skus[&"PLAIN".parse_sku()];
    let gold = Tier {
        id: TierId::parse("gold").unwrap(),
        name: "Gold".into(),
        rank: 3,
        benefits: Benefits {
            discount_pct: Percent::parse("15").unwrap(),
            ..Default::default()
        },
        upgrade: None,
        retention: None,
        permissions: [Permission::SeePromotions].into(),
    };
    let d = DistributorId::parse("d-1").unwrap();
    let at = "2026-11-05T00:00:00Z".parse().unwrap();
    let published = "2026-10-01T00:00:00Z".parse().unwrap();
    let req = |book| QuoteRequest {
        book,
        tier: &gold,
        distributor: &d,
        quantity: 12,
        at,
        promotions_allowed: true,
        book_published_at: published,
    };

    let mut g = c.benchmark_group("price_per_sku");
    g.bench_function("baseline: base price only", |b| {
        b.iter(|| quote(black_box(&req(plain))))
    });
    g.bench_function("full precedence + breaks + floor", |b| {
        b.iter(|| quote(black_box(&req(tee))))
    });
    g.finish();
}

trait ParseSku {
    fn parse_sku(&self) -> tier_domain::ids::Sku;
}
impl ParseSku for str {
    fn parse_sku(&self) -> tier_domain::ids::Sku {
        tier_domain::ids::Sku::parse(self).unwrap()
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
