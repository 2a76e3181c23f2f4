use proptest::prelude::*;

use super::*;

fn tier(s: &str) -> TierId {
    TierId::parse(s).unwrap()
}

fn tiers() -> Vec<TierId> {
    ["junior", "senior", "gold"].map(tier).to_vec()
}

fn stocked(on_hand: u64) -> SkuStock {
    let mut s = SkuStock::default();
    s.apply(&s.recount(on_hand, &tiers()).unwrap()).unwrap();
    s
}

#[test]
fn a_tier_draws_its_reserve_then_the_pool_and_never_another_tiers() {
    let mut s = stocked(10);
    let plan = BTreeMap::from([(tier("gold"), 4), (tier("senior"), 3)]);
    s.apply(&s.replan(&plan).unwrap()).unwrap();
    assert_eq!((s.pool, s.free()), (3, 10));
    assert_eq!(s.available_to(Some(&tier("junior"))), 3);
    assert_eq!(s.available_to(None), 3);
    assert_eq!(
        s.draw(Some(&tier("junior")), 4),
        None,
        "not the seniors' reserves"
    );
    let d = s.draw(Some(&tier("gold")), 6).unwrap();
    assert_eq!(
        d,
        Draw {
            pool: 2,
            reserve: Some(Reserved {
                tier: tier("gold"),
                units: 4
            }),
            buckets: BTreeMap::new(),
        }
    );
    s.apply(&SkuStock::take(&d)).unwrap();
    assert_eq!(s.reserves.get(&tier("gold")), None);
    assert_eq!((s.pool, s.allocated), (1, 6));
    assert!(s.is_consistent());
    // Given back, each unit returns to the part it came from.
    s.apply(&SkuStock::give_back(&d)).unwrap();
    assert_eq!(s.reserves[&tier("gold")], 4);
    assert_eq!((s.pool, s.allocated), (3, 0));
}

#[test]
fn a_recount_never_cuts_into_allocations_and_cuts_junior_reserves_first() {
    let mut s = stocked(10);
    let plan = BTreeMap::from([(tier("gold"), 3), (tier("junior"), 3)]);
    s.apply(&s.replan(&plan).unwrap()).unwrap();
    let d = s.draw(None, 2).unwrap();
    s.apply(&SkuStock::take(&d)).unwrap();
    assert_eq!(
        s.recount(1, &tiers()),
        Err(LevelsError::BelowAllocated {
            asked: 1,
            allocated: 2
        })
    );
    // Down 6: the pool's 2, then junior's 3, then one of gold's.
    s.apply(&s.recount(4, &tiers()).unwrap()).unwrap();
    assert_eq!(s.pool, 0);
    assert_eq!(s.reserves, BTreeMap::from([(tier("gold"), 2)]));
    assert!(s.is_consistent());
    assert_eq!(
        s.replan(&BTreeMap::from([(tier("gold"), 3)])),
        Err(LevelsError::ReservesExceedFree { asked: 3, free: 2 })
    );
}

#[test]
fn a_short_supply_goes_to_seniors_first_then_by_largest_remainder() {
    let claim = |t: &str, seniority, demand| Claim {
        tier: tier(t),
        seniority,
        demand,
    };
    let claims = [
        claim("gold", 3, 5),
        claim("senior", 2, 10),
        claim("partner", 2, 20),
        claim("junior", 0, 50),
    ];
    // Gold in full; 10 left for 30 wanted at seniority 2: quotas 3.33 and
    // 6.67, so the remainder unit goes to partner.
    assert_eq!(
        share(15, &claims),
        BTreeMap::from([(tier("gold"), 5), (tier("senior"), 3), (tier("partner"), 7)])
    );
    assert_eq!(
        share(200, &claims).values().sum::<u64>(),
        85,
        "capped by demand"
    );
    assert_eq!(share(0, &claims), BTreeMap::new());
}

#[derive(Debug, Clone)]
enum Step {
    Recount(u64),
    Replan(Vec<u64>),
    /// An order line of a tier (or none) for some units.
    Order(Option<usize>, u64),
    /// Gives back part of an earlier allocation.
    Release(usize, u64),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        (0u64..40).prop_map(Step::Recount),
        prop::collection::vec(0u64..12, 3).prop_map(Step::Replan),
        (prop::option::of(0usize..3), 1u64..8).prop_map(|(t, q)| Step::Order(t, q)),
        (0usize..16, 1u64..8).prop_map(|(i, q)| Step::Release(i, q)),
    ]
}

proptest! {
    /// Over random restocks, orders, releases and plan changes, the parts
    /// sum to on hand, no part goes below zero (they are unsigned and a
    /// refused step changes nothing), a tier never takes another's reserve,
    /// and a line is filled whole or backordered.
    #[test]
    fn the_parts_always_sum_to_on_hand(steps in prop::collection::vec(step(), 1..60)) {
        let tiers = tiers();
        let mut s = SkuStock::default();
        let mut held: Vec<Draw> = Vec::new();
        for step in steps {
            let before = s.clone();
            match step {
                Step::Recount(n) => match s.recount(n, &tiers) {
                    Ok(m) => s.apply(&m).unwrap(),
                    Err(_) => prop_assert!(n < s.allocated),
                },
                Step::Replan(units) => {
                    let plan: BTreeMap<TierId, u64> =
                        tiers.iter().cloned().zip(units).filter(|(_, u)| *u > 0).collect();
                    match s.replan(&plan) {
                        Ok(m) => {
                            s.apply(&m).unwrap();
                            prop_assert_eq!(&s.reserves, &plan);
                        }
                        Err(_) => prop_assert!(plan.values().sum::<u64>() > s.free()),
                    }
                }
                Step::Order(t, q) => {
                    let t = t.map(|i| tiers[i].clone());
                    match s.draw(t.as_ref(), q) {
                        Some(d) => {
                            prop_assert_eq!(d.units(), q);
                            s.apply(&SkuStock::take(&d)).unwrap();
                            for other in tiers.iter().filter(|o| Some(*o) != t.as_ref()) {
                                prop_assert_eq!(s.reserves.get(other), before.reserves.get(other));
                            }
                            prop_assert!(d.reserve.iter().all(|r| Some(&r.tier) == t.as_ref()));
                            held.push(d);
                        }
                        None => {
                            prop_assert!(before.available_to(t.as_ref()) < q);
                            s.apply(&Move { backordered: q as i64, ..Move::default() }).unwrap();
                        }
                    }
                }
                Step::Release(i, q) => {
                    if held.is_empty() {
                        continue;
                    }
                    let n = held.len();
                    let d = &mut held[i % n];
                    let (units, reserved) = (d.units(), d.reserved());
                    // Returned goods: back to the reserve first, then the pool.
                    let back = d.split_off(q);
                    prop_assert_eq!(back.units(), q.min(units));
                    prop_assert_eq!(back.reserved(), q.min(reserved));
                    s.apply(&SkuStock::give_back(&back)).unwrap();
                }
            }
            prop_assert!(s.is_consistent(), "{:?}", s);
            prop_assert_eq!(s.allocated, held.iter().map(Draw::units).sum::<u64>());
        }
    }

    /// Shares are whole, capped by demand, sum to the supply when the
    /// demands reach it, and a tier gets something only when every more
    /// senior tier got all it asked.
    #[test]
    fn shares_sum_exactly_and_respect_seniority(
        supply in 0u64..500,
        claims in prop::collection::vec((0u8..4, 0u64..200), 1..8),
    ) {
        let claims: Vec<Claim> = claims
            .into_iter()
            .enumerate()
            .map(|(i, (seniority, demand))| Claim { tier: tier(&format!("t{i}")), seniority, demand })
            .collect();
        let shares = share(supply, &claims);
        let got = |c: &Claim| shares.get(&c.tier).copied().unwrap_or(0);
        let wanted: u64 = claims.iter().map(|c| c.demand).sum();
        prop_assert_eq!(shares.values().sum::<u64>(), supply.min(wanted));
        for c in &claims {
            prop_assert!(got(c) <= c.demand);
            if got(c) > 0 {
                for senior in claims.iter().filter(|s| s.seniority > c.seniority) {
                    prop_assert_eq!(got(senior), senior.demand);
                }
            }
        }
    }
}

/// A spread SKU: the pool evenly over the buckets, the reserves at home; a
/// draw takes its own bucket first, then the others, so it is short only
/// when every cell is.
#[test]
fn a_spread_pool_is_drawn_from_the_orders_bucket_then_the_others() {
    let mut s = stocked(10);
    s.apply(&s.replan(&BTreeMap::from([(tier("gold"), 2)])).unwrap())
        .unwrap();
    let m = s.rebucket(3).unwrap();
    s.apply(&m).unwrap();
    s.lanes = 3;
    let pools: Vec<u64> = s.buckets.values().map(|c| c.pool).collect();
    assert_eq!(pools, vec![3, 3, 2], "the odd units to the lowest");
    assert_eq!(
        (s.home().pool, s.home().on_hand),
        (0, 2),
        "the reserve stays home"
    );
    assert!(s.is_consistent());
    assert_eq!(
        s.rebucket(65),
        Err(LevelsError::TooManyBuckets { asked: 65 })
    );

    // Bucket 2 holds 2: a line of 4 takes them, then bucket 0's.
    let d = s.draw_in(None, 4, Some(2)).unwrap();
    assert_eq!(d.buckets, BTreeMap::from([(0, 2), (2, 2)]));
    s.apply(&SkuStock::take(&d)).unwrap();
    assert_eq!((s.buckets[&0].allocated, s.buckets[&2].pool), (2, 0));
    // Gold takes its reserve at home first, then a bucket.
    let g = s.draw_in(Some(&tier("gold")), 3, Some(2)).unwrap();
    assert_eq!(
        (g.reserved(), g.buckets.clone()),
        (2, BTreeMap::from([(0, 1)]))
    );
    s.apply(&SkuStock::take(&g)).unwrap();
    assert!(s.is_consistent());
    // 3 left in the pool, over buckets 0 and 1: a line of 4 is short.
    assert_eq!(s.draw_in(None, 4, Some(1)), None);
    assert_eq!(s.draw_in(None, 3, Some(1)).unwrap().units(), 3);

    // Given back, each unit returns to its bucket; a count spreads again.
    s.apply(&SkuStock::give_back(&d)).unwrap();
    assert_eq!((s.buckets[&0].pool, s.buckets[&2].pool), (2, 2));
    s.apply(&s.recount(12, &tiers()).unwrap()).unwrap();
    let pools: Vec<u64> = s.buckets.values().map(|c| c.pool).collect();
    assert_eq!(pools, vec![3, 3, 3]);
    assert!(s.is_consistent());
    // Back to one item: the pool goes home, allocations stay in the buckets.
    s.apply(&s.rebucket(0).unwrap()).unwrap();
    s.lanes = 0;
    assert_eq!(s.home().pool, 9);
    assert_eq!(s.buckets[&0].allocated, 1);
    assert!(s.is_consistent());
}

#[test]
fn a_draw_split_gives_back_home_units_first_then_the_last_buckets() {
    let mut d = Draw {
        pool: 5,
        reserve: None,
        buckets: BTreeMap::from([(0, 2), (3, 2)]),
    };
    let part = d.split_off(2);
    assert_eq!(
        (part.pool, part.buckets.clone()),
        (2, BTreeMap::from([(3, 1)]))
    );
    assert_eq!(d.buckets, BTreeMap::from([(0, 2), (3, 1)]));
    let rest = d.split_off(9);
    assert_eq!(rest.buckets, BTreeMap::from([(0, 2), (3, 1)]));
    assert_eq!(d.units(), 0);
}
