use proptest::prelude::*;

use super::*;

fn line(id: &str, sku: &str, q: u32) -> OrderLine {
    OrderLine {
        line_id: LineId::parse(id).unwrap(),
        sku: Sku::parse(sku).unwrap(),
        quantity: q,
        unit_price: Money::parse("10.00").unwrap(),
        amount: Money::parse("10.00").unwrap(),
        entitled_unit_price: None,
        floor_unit_price: None,
    }
}

fn ret(id: &str, q: u32) -> ReturnedLine {
    ReturnedLine {
        line_id: LineId::parse(id).unwrap(),
        quantity: q,
    }
}

/// Refund `id` of `o`, applied to `shelves`: the units freed.
fn refund(
    shelves: &mut BTreeMap<Sku, SkuStock>,
    o: &mut OrderStock,
    id: &str,
    back: &[ReturnedLine],
) -> i64 {
    o.refund(id, back);
    let moves = o.take_releasing(99);
    apply(shelves, &moves);
    moves.values().map(Move::freed).sum::<i64>()
}

fn sku(s: &str) -> Sku {
    Sku::parse(s).unwrap()
}

fn tier(s: &str) -> TierId {
    TierId::parse(s).unwrap()
}

fn ev(s: &str) -> EventId {
    EventId::parse(s).unwrap()
}

fn payer(tier: Option<&TierId>) -> Payer<'_> {
    Payer {
        tier,
        priority: 0,
        paid_at: chrono::DateTime::UNIX_EPOCH,
    }
}

fn oref(s: &str) -> OrderRef {
    OrderRef::parse(&format!("shop/s1/{s}")).unwrap()
}

fn lid(s: &str) -> LineId {
    LineId::parse(s).unwrap()
}

/// `on_hand` units, `reserves` of them kept per tier.
fn stock(on_hand: u64, reserves: &[(&str, u64)]) -> SkuStock {
    let mut s = SkuStock::default();
    s.apply(&s.recount(on_hand, &[]).unwrap()).unwrap();
    let plan = reserves.iter().map(|(t, u)| (tier(t), *u)).collect();
    s.apply(&s.replan(&plan).unwrap()).unwrap();
    s
}

/// What the store reads of a spread SKU for an order of bucket `lane`:
/// the home cell and that bucket.
fn own_cells(all: &SkuStock, lane: Option<u8>) -> SkuStock {
    let home = all.home();
    let mut view = SkuStock {
        on_hand: home.on_hand,
        pool: home.pool,
        allocated: home.allocated,
        backordered: home.backordered,
        reserves: all.reserves.clone(),
        lanes: all.lanes,
        buckets: BTreeMap::new(),
    };
    if let Some(b) = lane {
        view.add_cell(b, all.buckets.get(&b).copied().unwrap_or_default());
    }
    view
}

/// Applies `moves` to `stock`, as the store's conditional writes do.
fn apply(stock: &mut BTreeMap<Sku, SkuStock>, moves: &StockMoves) {
    for (sku, m) in moves {
        stock.entry(sku.clone()).or_default().apply(m).unwrap();
    }
}

#[test]
fn a_payment_draws_its_tiers_reserve_once_and_a_short_line_is_backordered() {
    let mut shelves = BTreeMap::from([
        (sku("TEE"), stock(6, &[("gold", 4)])),
        (sku("HOODIE"), stock(1, &[])),
    ]);
    let mut o = OrderStock::default();
    let lines = [
        line("1", "TEE", 5),
        line("2", "TEE", 3),
        line("3", "HOODIE", 1),
    ];
    assert_eq!(
        o.pay(&ev("p"), payer(Some(&tier("gold"))), &lines),
        Payment::Recorded
    );
    let taken = o.take_pending(&oref("O1"), 99, &shelves);
    assert_eq!(taken.backordered, BTreeSet::from([sku("TEE")]));
    apply(&mut shelves, &taken.moves);
    // Line 1 takes gold's 4 and one from the pool; line 2 finds 1 left.
    assert_eq!(
        o.lines[&lid("1")].draw.as_ref().map(Draw::reserved),
        Some(4)
    );
    assert_eq!(o.lines[&lid("2")].status, LineStatus::Backordered);
    let tee = &shelves[&sku("TEE")];
    assert_eq!(
        (tee.pool, tee.allocated, tee.backordered, tee.free()),
        (1, 5, 3, 1)
    );
    assert!(!o.has_pending());
    assert_eq!(
        o.pay(&ev("p-again"), payer(None), &lines),
        Payment::Duplicate
    );
    assert_eq!(o.take_pending(&oref("O1"), 99, &shelves), Taken::default());

    // Cancelling gives each unit back to its part and closes the backorder.
    o.cancel();
    apply(&mut shelves, &o.take_releasing(99));
    assert_eq!(shelves[&sku("TEE")], stock(6, &[("gold", 4)]));
    assert_eq!(shelves[&sku("HOODIE")], stock(1, &[]));
    o.cancel();
    assert_eq!(o.take_releasing(99), StockMoves::new());
    assert_eq!(o.lines[&lid("2")].status, LineStatus::Cancelled);
    assert_eq!(o.lines[&lid("3")].status, LineStatus::Released);
}

#[test]
fn refunds_release_once_reserve_first_and_early_events_are_kept_for_the_payment() {
    let mut shelves = BTreeMap::from([(sku("TEE"), stock(20, &[("gold", 4)]))]);
    let mut o = OrderStock::default();
    o.pay(
        &ev("p"),
        payer(Some(&tier("gold"))),
        &[line("1", "TEE", 10)],
    );
    let taken = o.take_pending(&oref("O1"), 99, &shelves);
    apply(&mut shelves, &taken.moves);
    assert_eq!(refund(&mut shelves, &mut o, "RF1", &[ret("1", 3)]), 3);
    assert_eq!(
        refund(&mut shelves, &mut o, "RF1", &[ret("1", 3)]),
        0,
        "the same refund under another event id"
    );
    assert_eq!(
        refund(&mut shelves, &mut o, "RF2", &[ret("1", 99)]),
        7,
        "never more than reserved"
    );
    assert_eq!(o.lines[&lid("1")].status, LineStatus::Released);
    assert_eq!(shelves[&sku("TEE")], stock(20, &[("gold", 4)]));

    // A refund before its payment: the payment reserves what stays sold.
    let mut early = OrderStock::default();
    assert_eq!(refund(&mut shelves, &mut early, "RF1", &[ret("1", 3)]), 0);
    assert_eq!(
        early.pay(&ev("p"), payer(None), &[line("1", "TEE", 5)]),
        Payment::Recorded
    );
    let taken = early.take_pending(&oref("O1"), 99, &shelves);
    assert_eq!(taken.moves[&sku("TEE")].allocated, 2);
    assert_eq!(
        refund(&mut shelves, &mut early, "RF1", &[ret("1", 3)]),
        0,
        "applied with the payment"
    );

    // A cancellation before its payment: nothing is reserved.
    let mut cancelled = OrderStock::default();
    cancelled.cancel();
    assert!(!cancelled.has_releasing());
    assert_eq!(
        cancelled.pay(&ev("p"), payer(None), &[line("1", "TEE", 5)]),
        Payment::Cancelled
    );
    assert_eq!(cancelled.lines[&lid("1")].status, LineStatus::Cancelled);
    assert_eq!(
        cancelled.take_pending(&oref("O1"), 99, &shelves),
        Taken::default()
    );
}

#[test]
fn a_refunded_backorder_shrinks_and_closes() {
    let mut shelves = BTreeMap::new();
    let mut o = OrderStock::default();
    o.pay(&ev("p"), payer(None), &[line("1", "TEE", 5)]);
    let taken = o.take_pending(&oref("O1"), 99, &shelves);
    apply(&mut shelves, &taken.moves);
    assert_eq!(shelves[&sku("TEE")].backordered, 5, "a SKU never stocked");
    o.refund("RF1", &[ret("1", 2)]);
    apply(&mut shelves, &o.take_releasing(99));
    assert_eq!(shelves[&sku("TEE")].backordered, 3);
    assert_eq!(o.lines[&lid("1")].status, LineStatus::Backordered);
    o.refund("RF2", &[ret("1", 3)]);
    apply(&mut shelves, &o.take_releasing(99));
    assert_eq!(shelves[&sku("TEE")].backordered, 0);
    assert_eq!(o.lines[&lid("1")].status, LineStatus::Cancelled);
}

#[test]
fn lines_taken_before_stock_by_tier_come_back_as_a_restock() {
    // As stored before lines kept their draw: 4 reserved, 2 backordered.
    let mut o: OrderStock = serde_json::from_value(serde_json::json!({
        "paid_by": "p", "cancelled": false, "releases": [],
        "lines": {
            "1": {"sku": "TEE", "quantity": 4, "reserved": 4, "status": "reserved",
                  "unit_price": "10.00", "entitled_unit_price": null},
            "2": {"sku": "TEE", "quantity": 2, "reserved": 0, "status": "backordered",
                  "unit_price": "10.00", "entitled_unit_price": null, "releasing": 0}
        }
    }))
    .unwrap();
    o.cancel();
    let moves = o.take_releasing(99);
    assert_eq!(
        moves[&sku("TEE")],
        Move {
            on_hand: 4,
            pool: 4,
            ..Move::default()
        },
        "back on hand, and the old backorder was never counted"
    );
}

#[test]
fn many_skus_are_taken_in_parts() {
    let shelves: BTreeMap<Sku, SkuStock> = (0..5)
        .map(|i| (sku(&format!("SKU-{i}")), stock(1, &[])))
        .collect();
    let mut o = OrderStock::default();
    let lines: Vec<OrderLine> = (0..5)
        .map(|i| line(&i.to_string(), &format!("SKU-{i}"), 1))
        .collect();
    o.pay(&ev("p"), payer(None), &lines);
    assert_eq!(o.take_pending(&oref("O1"), 2, &shelves).moves.len(), 2);
    // A refund of a line not yet reserved: it reserves only what stays sold.
    o.refund("RF1", &[ret("4", 1)]);
    assert!(!o.has_releasing());
    assert_eq!(o.take_pending(&oref("O1"), 2, &shelves).moves.len(), 2);
    assert!(o.has_pending());
    // A cancellation in between cancels what is still pending, and
    // what was reserved goes back in parts too.
    o.cancel();
    assert!(!o.has_pending());
    let freed = |m: StockMoves| m.values().map(Move::freed).sum::<i64>();
    assert_eq!(freed(o.take_releasing(3)), 3);
    assert_eq!(freed(o.take_releasing(3)), 1);
    assert_eq!(
        o.lines[&lid("4")].status,
        LineStatus::Cancelled,
        "never reserved, returned, then cancelled"
    );
    assert!(!o.has_releasing());
    assert_eq!(o.take_pending(&oref("O1"), 2, &shelves), Taken::default());
}

#[test]
fn shipping_takes_the_units_off_hand_once_and_returns_come_back_to_the_pool() {
    let mut shelves = BTreeMap::from([(sku("TEE"), stock(10, &[("gold", 4)]))]);
    let mut o = OrderStock::default();
    let shipment = || Shipment {
        at: chrono::DateTime::UNIX_EPOCH,
        reference: Some("SF1".into()),
    };
    assert_eq!(o.ship(shipment()), Err(ShipError::NotPaid));
    o.pay(&ev("p"), payer(Some(&tier("gold"))), &[line("1", "TEE", 6)]);
    assert!(!o.is_ready());
    assert_eq!(o.ship(shipment()), Err(ShipError::NotReady));
    let taken = o.take_pending(&oref("O1"), 99, &shelves);
    apply(&mut shelves, &taken.moves);
    assert!(o.is_ready());
    assert_eq!(o.ship(shipment()), Ok(true));
    assert!(!o.is_ready());
    apply(&mut shelves, &o.take_releasing(99));
    let tee = &shelves[&sku("TEE")];
    assert_eq!((tee.on_hand, tee.pool, tee.allocated), (4, 4, 0));
    assert!(
        tee.reserves.is_empty(),
        "gold's reserve went with the order"
    );
    assert_eq!(o.ship(shipment()), Ok(false), "shipped once");
    assert_eq!(o.take_releasing(99), StockMoves::new());
    // A cancellation after shipping returns nothing; returned goods do.
    o.cancel();
    assert_eq!(o.take_releasing(99), StockMoves::new());
    assert_eq!(refund(&mut shelves, &mut o, "RF1", &[ret("1", 2)]), 2);
    let tee = &shelves[&sku("TEE")];
    assert_eq!((tee.on_hand, tee.pool), (6, 6));
    assert_eq!(o.lines[&lid("1")].shipped, 4);

    let mut cancelled = OrderStock::default();
    cancelled.cancel();
    cancelled.pay(&ev("p"), payer(None), &[line("1", "TEE", 1)]);
    assert_eq!(cancelled.ship(shipment()), Err(ShipError::Cancelled));
    let mut returned = OrderStock::default();
    returned.refund("RF1", &[ret("1", 1)]);
    returned.pay(&ev("p"), payer(None), &[line("1", "TEE", 1)]);
    let taken = returned.take_pending(&oref("O1"), 99, &shelves);
    assert!(taken.moves.is_empty());
    assert_eq!(returned.ship(shipment()), Err(ShipError::NothingToShip));
}

#[derive(Debug, Clone)]
enum Step {
    Recount(usize, u64),
    Replan(usize, Vec<u64>),
    /// A paid order of a tier (or none): a line per (SKU, quantity).
    Pay(Option<usize>, Vec<(usize, u32)>),
    Cancel(usize),
    /// Returned goods of an order's line.
    Refund(usize, usize, u32),
    Ship(usize),
    /// A restock's fill of an order's backorders of a SKU.
    Fill(usize, usize),
    /// The SKU's pool spread over this many buckets.
    Rebucket(usize, u64),
}

const SKUS: usize = 2;

fn step() -> impl Strategy<Value = Step> {
    let lines = prop::collection::vec((0..SKUS, 1u32..6), 1..4);
    prop_oneof![
        (0..SKUS, 0u64..30).prop_map(|(s, n)| Step::Recount(s, n)),
        (0..SKUS, prop::collection::vec(0u64..8, 3)).prop_map(|(s, u)| Step::Replan(s, u)),
        (prop::option::of(0usize..3), lines).prop_map(|(t, l)| Step::Pay(t, l)),
        (0usize..12).prop_map(Step::Cancel),
        (0usize..12, 0usize..3, 1u32..6).prop_map(|(o, l, q)| Step::Refund(o, l, q)),
        (0usize..12).prop_map(Step::Ship),
        (0usize..12, 0..SKUS).prop_map(|(o, s)| Step::Fill(o, s)),
        (0..SKUS, 0u64..5).prop_map(|(s, k)| Step::Rebucket(s, k)),
    ]
}

proptest! {
    /// Orders, cancellations, refunds and shipments against two SKUs beside recounts
    /// and plan changes, each order's moves applied as the store writes
    /// them: after every step each SKU's parts sum to on hand, what is
    /// allocated is what the orders' lines hold, what is backordered is
    /// what they lack, and no line drew on another tier's reserve.
    #[test]
    fn orders_keep_every_skus_parts_summing_to_on_hand(steps in prop::collection::vec(step(), 1..50)) {
        let tiers = ["junior", "senior", "gold"].map(tier);
        let skus: Vec<Sku> = (0..SKUS).map(|i| sku(&format!("S{i}"))).collect();
        let mut shelves: BTreeMap<Sku, SkuStock> = BTreeMap::new();
        let mut orders: Vec<OrderStock> = Vec::new();
        let mut refunds = 0;
        for step in steps {
            match step {
                Step::Recount(s, n) => {
                    let shelf = shelves.entry(skus[s].clone()).or_default();
                    if let Ok(m) = shelf.recount(n, &tiers) {
                        shelf.apply(&m).unwrap();
                    }
                }
                Step::Replan(s, units) => {
                    let shelf = shelves.entry(skus[s].clone()).or_default();
                    let plan = tiers.iter().cloned().zip(units).filter(|(_, u)| *u > 0).collect();
                    if let Ok(m) = shelf.replan(&plan) {
                        shelf.apply(&m).unwrap();
                    }
                }
                Step::Pay(t, lines) => {
                    let lines: Vec<OrderLine> = lines
                        .iter()
                        .enumerate()
                        .map(|(i, (s, q))| line(&i.to_string(), skus[*s].as_str(), *q))
                        .collect();
                    let mut o = OrderStock::default();
                    o.pay(&ev("p"), payer(t.map(|i| &tiers[i])), &lines);
                    // One SKU a transaction, as an order of many goes,
                    // each drawn first from the home cell and its own
                    // bucket, as the store reads a spread SKU, and again
                    // from every cell when that is short.
                    let order = oref(&format!("O{}", orders.len()));
                    while o.has_pending() {
                        let view: BTreeMap<Sku, SkuStock> = shelves
                            .iter()
                            .map(|(s, st)| (s.clone(), own_cells(st, levels::lane(&order.to_string(), st.lanes))))
                            .collect();
                        let mut tried = o.clone();
                        let taken = tried.take_pending(&order, 1, &view);
                        if taken.backordered.is_empty() {
                            apply(&mut shelves, &taken.moves);
                            o = tried;
                            continue;
                        }
                        let view = shelves.clone();
                        let taken = o.take_pending(&order, 1, &view);
                        apply(&mut shelves, &taken.moves);
                    }
                    orders.push(o);
                }
                Step::Cancel(i) | Step::Refund(i, ..) | Step::Ship(i) | Step::Fill(i, _)
                    if orders.is_empty() =>
                {
                    let _ = i;
                }
                Step::Cancel(i) => {
                    let n = orders.len();
                    orders[i % n].cancel();
                }
                Step::Refund(i, l, q) => {
                    let n = orders.len();
                    refunds += 1;
                    orders[i % n].refund(&format!("RF{refunds}"), &[ret(&l.to_string(), q)]);
                }
                Step::Fill(i, s) => {
                    let n = orders.len();
                    let o = &mut orders[i % n];
                    let shelf = shelves.get(&skus[s]).cloned().unwrap_or_default();
                    let had = o.backordered_skus().contains(&skus[s]);
                    match o.fill_backorders(&skus[s], &shelf) {
                        Some(m) => {
                            prop_assert!(had);
                            apply(&mut shelves, &StockMoves::from([(skus[s].clone(), m)]));
                        }
                        // Nothing filled: no counted backorder fits what the tier may draw.
                        None => {
                            let fits = o.lines.values().any(|l| {
                                l.sku == skus[s]
                                    && l.status == LineStatus::Backordered
                                    && l.short > 0
                                    && shelf.available_to(o.tier.as_ref()) >= u64::from(l.short)
                            });
                            prop_assert!(!fits);
                        }
                    }
                }
                Step::Ship(i) => {
                    let n = orders.len();
                    let o = &mut orders[i % n];
                    let ready = o.is_ready();
                    let shipment = Shipment { at: chrono::DateTime::UNIX_EPOCH, reference: None };
                    prop_assert_eq!(o.ship(shipment).is_ok(), ready || o.shipped.is_some());
                }
                Step::Rebucket(s, k) => {
                    let shelf = shelves.entry(skus[s].clone()).or_default();
                    let m = shelf.rebucket(k).unwrap();
                    shelf.apply(&m).unwrap();
                    shelf.lanes = k as u8;
                    let pools: Vec<u64> = (0..k as u8).map(|b| shelf.buckets.get(&b).map_or(0, |c| c.pool)).collect();
                    if k > 0 {
                        prop_assert_eq!(shelf.home().pool, 0);
                        prop_assert!(pools.iter().max().unwrap() - pools.iter().min().unwrap() <= 1, "{:?}", pools);
                    }
                }
            }
            for o in &mut orders {
                while o.has_releasing() {
                    apply(&mut shelves, &o.take_releasing(1));
                }
            }
            for sku in &skus {
                let shelf = shelves.get(sku).cloned().unwrap_or_default();
                prop_assert!(shelf.is_consistent(), "{:?}", shelf);
                let held = || orders.iter().flat_map(|o| o.lines.values()).filter(|l| &l.sku == sku);
                prop_assert_eq!(shelf.allocated, held().map(|l| u64::from(l.reserved)).sum::<u64>());
                prop_assert_eq!(shelf.backordered, held().map(|l| u64::from(l.short)).sum::<u64>());
                // Each bucket holds what its orders' draws and backorders say.
                for (b, cell) in &shelf.buckets {
                    prop_assert_eq!(cell.allocated, held().map(|l| l.draw.as_ref().and_then(|d| d.buckets.get(b)).copied().unwrap_or(0)).sum::<u64>());
                    prop_assert_eq!(cell.backordered, held().filter(|l| l.lane == Some(*b)).map(|l| u64::from(l.short)).sum::<u64>());
                }
            }
            for o in &orders {
                for l in o.lines.values() {
                    let d = l.draw.clone().unwrap_or_default();
                    prop_assert_eq!(d.units(), u64::from(l.reserved));
                    prop_assert!(d.reserve.iter().all(|r| Some(&r.tier) == o.tier.as_ref()));
                }
            }
        }
    }
}
