//! DynamoDB and SQS adapters. The domain knows nothing of them; the
//! functions reach the table and the queues only through here.
//!
//! # Layout
//! - [`keys`]: the single-table layout and the access pattern each key serves.
//! - [`table`]: the table handle, batched reads, transactions.
//! - [`distributors`]: profiles, stores, metrics, tier changes and history.
//! - [`ledger`]: order events applied exactly once.
//! - [`catalog`]: price books, stock, reservations.
//! - [`rules`]: published rule sets.
//! - [`webhooks`]: what order intake reads and its receipts.
//! - [`queue`]: SQS sends and dead-lettering.

pub mod catalog;
pub mod distributors;
pub mod error;
pub mod item;
pub mod keys;
pub mod ledger;
pub mod queue;
pub mod rules;
pub mod table;
pub mod webhooks;

pub use error::StoreError;
pub use queue::Queue;
pub use table::Table;
