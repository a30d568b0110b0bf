//! The quick start's domain: orders, stock, payments and shipments as plain aggregates, and a
//! saga that takes an order from placed to shipped, or calls it off and gives back its stock
//! and money.
//!
//! - [`order::Order`], [`inventory::Inventory`], [`payment::Payment`] and
//!   [`shipping::Shipment`] are the aggregates: plain structs and enums, with the rules in
//!   `handle` and the state changes in `apply`;
//! - [`shop::Shop`] holds one [`Repository`](cqrs_core::Repository) per aggregate, and
//!   delivers the saga's commands;
//! - [`saga`] is the order saga on the framework's process managers, orchestrated
//!   ([`saga::orchestrated::OrderFulfilment`]) and choreographed ([`saga::choreographed`]);
//!   [`carrier::Carrier`] plays the carrier that answers (or does not answer) shipment requests;
//! - [`summary::OrderSummary`] is the read side's view of an order, built by one plain
//!   [`summary::fold`]; [`read_side`] keeps the summaries up to date from the feed, in memory
//!   or in Elasticsearch / OpenSearch, and answers queries on them;
//! - [`run`] tells the whole story on any store (the binary runs it on the in-memory one, or on
//!   PostgreSQL when `DATABASE_URL` is set, with the read side on a search node when
//!   `ELASTICSEARCH_URL` is set too);
//! - [`account::Account`] is the README's tour aggregate.

pub mod account;
pub mod carrier;
pub mod inventory;
pub mod order;
pub mod payment;
pub mod postgres;
pub mod read_side;
pub mod saga;
pub mod shipping;
pub mod shop;
pub mod summary;
mod walkthrough;

#[doc(inline)]
pub use walkthrough::run;

/// Cents as `12.34`.
pub fn money(cents: u64) -> String {
    format!("{}.{:02}", cents / 100, cents % 100)
}

// The README's code blocks compile and run as doctests of this crate.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
struct ReadmeDoctests;
