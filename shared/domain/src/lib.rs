//! The distributor tier domain (分销等级管理): pure logic, no I/O, no AWS.
//!
//! # Layout
//! - [`money`]: `Money` and `Percent` on `rust_decimal`, and the rounding rule.
//! - [`ids`]: identifiers, parsed at the boundary.
//! - [`calendar`]: natural months and quarters in the brand's time zone.
//! - [`metrics`]: what rules measure, kept in monthly buckets.
//! - [`rules`]: the rule set (tiers, benefits, conditions) and evaluation.
//! - [`order`]: order events, platform-neutral.
//! - [`ledger`]: each order's contribution to metrics, exact under duplicate
//!   and out-of-order delivery.
//! - [`plan`]: what a batch of one distributor's order events changes,
//!   planned from what was read.
//! - [`pricing`]: the versioned price book, precedence, promotions, floors.
//! - [`stock`]: an order's stock reservations and releases, exact under
//!   duplicate and out-of-order delivery.
//! - [`network`]: all-level network metrics rolled up to each upline by
//!   state-based pulls.
//! - [`tier`]: tier changes and their recorded reasons.
//! - [`access`]: API keys and their scopes.
//! - [`commission`]: commission entries, their base, rounding and balance.
//! - [`alerts`]: findings the daily job publishes once each.
//! - [`analytics`]: sales by region and tier, tier moves, price disorder.
//! - [`ranking`]: distributors in order of sales or tier change, by sharded
//!   ranks.
//! - [`what_if`]: a draft rule set's tier moves, tallied page by page.

pub mod access;
pub mod alerts;
pub mod analytics;
pub mod calendar;
pub mod commission;
pub mod fulfilment;
pub mod ids;
pub mod ledger;
pub mod metrics;
pub mod money;
pub mod network;
pub mod order;
pub mod plan;
pub mod pricing;
pub mod ranking;
pub mod region;
pub mod rules;
pub mod stock;
pub mod tier;
pub mod what_if;

pub use calendar::{BrandCalendar, Month};
pub use ids::*;
pub use money::{Money, Percent};
