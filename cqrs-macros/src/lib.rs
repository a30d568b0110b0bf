//! The derive macros of `cqrs-core`. Use them through `cqrs-core` (its default `derive`
//! feature re-exports them): `use cqrs_core::DomainEvent;` brings both the trait and the derive.
//!
//! `#[derive(DomainEvent)]` implements `cqrs_core::DomainEvent` for a serde enum in serde's
//! default (externally tagged) layout, the layout the trait's default `encode` / `decode`
//! rely on. Each variant's event type is the name serde writes for it, so `event_type()` and
//! the stored tag cannot disagree:
//! - the variant's name, or its `#[serde(rename = "..")]`,
//! - with the enum's `#[serde(rename_all = "..")]` applied to the others;
//! - `#[event(version = N)]` on the enum sets every variant's schema version (default 1), and on
//!   a variant overrides it for that variant.
//!
//! Shapes the default encoding cannot store are refused at compile time with a message that
//! says why: a struct or a union, an enum without variants, `#[serde(tag = "..")]` (internally
//! or adjacently tagged) or `#[serde(untagged)]` enums, untagged or skipped variants, tuple
//! variants without fields (`A()`, stored as `[]`, which a `Value` reads as a unit), different
//! serialize / deserialize names, and unknown `#[event(..)]` keys.

mod attrs;
mod case;
mod expand;

use proc_macro::TokenStream;

/// Implements `cqrs_core::DomainEvent` for a serde enum: see the crate's documentation and
/// `cqrs_core::DomainEvent`.
#[proc_macro_derive(DomainEvent, attributes(event))]
pub fn derive_domain_event(input: TokenStream) -> TokenStream {
    let input = syn::parse_macro_input!(input as syn::DeriveInput);
    expand::domain_event(&input)
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}
