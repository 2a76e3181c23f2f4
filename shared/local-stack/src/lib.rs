//! Runs the product on one machine against the moto emulator.
//!
//! # Layout
//! - [`moto`]: the emulator process.
//! - [`template`]: the SAM template, parsed: tables, queues, functions.
//! - [`resources`]: the template's tables and queues, created in the emulator.
//! - [`http`]: the local API, routing as API Gateway's HTTP API does.
//! - [`poller`]: SQS event-source mappings with partial batch failures.
//! - [`stack`]: all of it wired to the real function handlers.
//! - [`faults`]: a proxy that injects throttling, 500s and lost responses.
//! - [`interleave`]: races forced by running a competitor before a write.
//! - [`client`]: a small client of the product's HTTP API (signed webhooks,
//!   admin calls), used by the demo and the tests.
//! - [`demo`]: the seed's clothing brand, end to end.
//! - [`load_model`]: a brand's peak computed from recorded write sets.

pub mod bench;
pub mod client;
pub mod demo;
pub mod faults;
pub mod http;
pub mod interleave;
pub mod load_model;
pub mod moto;
pub mod poller;
pub mod rehearse;
pub mod resources;
pub mod stack;
pub mod template;
