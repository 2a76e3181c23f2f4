//! DynamoDB and SQS adapters. The domain knows nothing of them; the
//! functions reach the table and the queues only through here.
//!
//! # Layout
//! - [`keys`]: the single-table layout and the access pattern each key serves.
//! - [`table`]: the table handle, batched reads, transactions.
//! - [`distributors`]: profiles, stores, metrics, tier changes and history.
//! - [`ledger`]: order events applied exactly once, a batch per distributor.
//! - [`metrics`]: the metrics item: counters, versions, pruning.
//! - [`network`]: all-level network metrics pulled from each direct downline.
//! - [`backfill`]: the ledger counted into what a new rule set reads.
//! - [`price_book`]: versioned price books and what a lookup reads.
//! - [`stock`]: each SKU's stock: on hand, the pool, reserves by tier.
//! - [`catalog`]: each order's reservations against it.
//! - [`users`]: downline users who sign up before ordering.
//! - [`commission`]: commission entries and withdrawals.
//! - [`api_keys`]: integration keys.
//! - [`rules`]: published rule sets.
//! - [`webhooks`]: what order intake reads and its receipts.
//! - [`platforms`]: connected platform apps and stores, SKU mappings, held
//!   orders.
//! - [`secrets`]: platform apps' signing secrets, in Secrets Manager.
//! - [`reviews`]: scheduled review runs and pages of tier members.
//! - [`what_if`]: what-if runs and their results, page by page.
//! - [`alerts`]: the brand's SNS topic and each finding published once.
//! - [`analytics`]: sales by region and tier, tier moves, price disorder.
//! - [`ranking`]: the ranking indexes behind sorted distributor lists.
//! - [`queue`]: SQS sends and dead-lettering.

pub mod alerts;
pub mod analytics;
pub mod api_keys;
pub mod backfill;
pub mod catalog;
pub mod commission;
pub mod distributors;
pub mod error;
pub mod item;
pub mod keys;
pub mod ledger;
pub mod metrics;
pub mod network;
pub mod platforms;
pub mod price_book;
pub mod queue;
pub mod ranking;
pub mod reserve_plans;
pub mod reviews;
pub mod rules;
pub mod secrets;
pub mod shards;
pub mod stock;
pub mod table;
pub mod users;
pub mod webhooks;
pub mod what_if;

pub use error::StoreError;
pub use queue::Queue;
pub use table::Table;
