//! Tier prices (等级价): the brand's versioned price book and the one
//! precedence every answer follows.
//!
//! # Precedence
//! For a distributor D in tier T buying quantity Q of SKU S at time t:
//!
//! | order | rule | when it applies |
//! |---|---|---|
//! | 1 | `distributor_override` | the book fixes S's price for D |
//! | 2 | `promotion` | a promotion on S, open at t, lists T, and T may see promotions |
//! | 3 | `tier_fixed_price` | the book fixes S's price for T |
//! | 4 | `tier_discount` | T's benefits give a discount off the base price |
//! | 5 | `base_price` | always |
//!
//! The first that applies wins. Then the SKU's volume break for Q (the
//! largest `min_qty` not above Q) takes its discount off the winner; then
//! the result is rounded, once, half up to 0.01 CNY; then it is raised to
//! the SKU's floor price (minimum advertised price) if it is below it.
//!
//! Ties cannot happen: each rule has one slot per (S, T) or (S, D), and two
//! promotions that could both apply to the same SKU, tier and moment are
//! refused when the book is published.
//!
//! # Layout
//! - [`book`]: the price book, its CSV and JSON forms, and validation.
//! - [`quote`]: one price, explained.

pub mod book;
pub mod quote;

pub use book::{PriceBookDraft, Promotion, RowError, SkuBook, VolumeBreak};
pub use quote::{Candidate, PriceQuote, PriceRule, QuoteRequest, quote};
