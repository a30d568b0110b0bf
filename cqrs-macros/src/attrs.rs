//! What `#[derive(DomainEvent)]` reads from the `#[serde(..)]` and `#[event(..)]` attributes.

use proc_macro2::{Span, TokenStream, TokenTree};
use syn::meta::ParseNestedMeta;
use syn::{Attribute, LitInt, LitStr, Token};

use crate::case::RenameRule;

/// The layout the default encoding stores, and the way out for other shapes.
pub(crate) const LAYOUT_HELP: &str = "the default encoding stores serde's externally tagged \
    layout (the variant's name is the event type, its content the payload); implement \
    `DomainEvent` by hand, with its own `encode` and `decode`, for other shapes";

/// The enum's attributes that decide its event types and versions.
#[derive(Default)]
pub(crate) struct EnumAttrs {
    /// `rename_all` as serde serializes with it.
    pub(crate) rename_serialize: Option<RenameRule>,
    /// `rename_all` as serde deserializes with it.
    pub(crate) rename_deserialize: Option<RenameRule>,
    /// `#[event(version = N)]`.
    pub(crate) version: Option<u32>,
}

/// A variant's attributes that decide its event type and version.
#[derive(Default)]
pub(crate) struct VariantAttrs {
    /// `rename` as serde serializes with it.
    pub(crate) rename_serialize: Option<String>,
    /// `rename` as serde deserializes with it.
    pub(crate) rename_deserialize: Option<String>,
    /// `#[event(version = N)]`.
    pub(crate) version: Option<u32>,
}

impl EnumAttrs {
    /// Reads the enum's attributes, refusing the layouts the default encoding cannot store.
    pub(crate) fn parse(attrs: &[Attribute]) -> syn::Result<Self> {
        let mut out = Self::default();
        for attr in attrs {
            if attr.path().is_ident("serde") {
                attr.parse_nested_meta(|meta| {
                    if meta.path.is_ident("rename_all") {
                        // An unknown rule is serde's error to report; it is not repeated here.
                        let (ser, de) =
                            both_ways(&meta, |lit| Ok(RenameRule::from_name(&lit.value())))?;
                        let (ser, de) = (ser.flatten(), de.flatten());
                        out.rename_serialize = ser.or(out.rename_serialize);
                        out.rename_deserialize = de.or(out.rename_deserialize);
                        Ok(())
                    } else if meta.path.is_ident("tag") || meta.path.is_ident("content") {
                        Err(meta.error(format!(
                            "#[derive(DomainEvent)] does not support tagged enums \
                             (#[serde(tag = \"..\")]): {LAYOUT_HELP}"
                        )))
                    } else if meta.path.is_ident("untagged") {
                        Err(meta.error(format!(
                            "#[derive(DomainEvent)] does not support untagged enums: {LAYOUT_HELP}"
                        )))
                    } else {
                        skip(&meta)
                    }
                })?;
            } else if attr.path().is_ident("event") {
                attr.parse_nested_meta(|meta| event_key(&meta, &mut out.version))?;
            }
        }
        Ok(out)
    }
}

impl VariantAttrs {
    /// Reads a variant's attributes, refusing variants the default encoding cannot store.
    pub(crate) fn parse(attrs: &[Attribute]) -> syn::Result<Self> {
        let mut out = Self::default();
        for attr in attrs {
            if attr.path().is_ident("serde") {
                attr.parse_nested_meta(|meta| {
                    if meta.path.is_ident("rename") {
                        let (ser, de) = both_ways(&meta, |lit| Ok(lit.value()))?;
                        out.rename_serialize = ser.or(out.rename_serialize.take());
                        out.rename_deserialize = de.or(out.rename_deserialize.take());
                        Ok(())
                    } else if meta.path.is_ident("untagged") {
                        Err(meta.error(format!(
                            "#[derive(DomainEvent)] does not support untagged variants: \
                             {LAYOUT_HELP}"
                        )))
                    } else if ["skip", "skip_serializing", "skip_deserializing", "other"]
                        .iter()
                        .any(|key| meta.path.is_ident(key))
                    {
                        Err(meta.error(
                            "#[derive(DomainEvent)] does not support variants that serde skips \
                             in one direction: every event must be stored and read back",
                        ))
                    } else {
                        skip(&meta)
                    }
                })?;
            } else if attr.path().is_ident("event") {
                attr.parse_nested_meta(|meta| event_key(&meta, &mut out.version))?;
            }
        }
        Ok(out)
    }
}

/// One key of `#[event(..)]`: only `version = N` (N from 1) exists.
fn event_key(meta: &ParseNestedMeta<'_>, version: &mut Option<u32>) -> syn::Result<()> {
    if !meta.path.is_ident("version") {
        return Err(meta
            .error("unknown #[event(..)] key: the only one is `version = N`, the schema version"));
    }
    let lit: LitInt = meta.value()?.parse()?;
    let n: u32 = lit.base10_parse()?;
    if n == 0 {
        return Err(syn::Error::new(
            lit.span(),
            "schema versions start at 1 (the version of a type's first payload)",
        ));
    }
    *version = Some(n);
    Ok(())
}

/// `key = "x"` (both directions) or `key(serialize = "x", deserialize = "y")`.
fn both_ways<T: Clone>(
    meta: &ParseNestedMeta<'_>,
    read: impl Fn(&LitStr) -> syn::Result<T>,
) -> syn::Result<(Option<T>, Option<T>)> {
    if meta.input.peek(Token![=]) {
        let lit: LitStr = meta.value()?.parse()?;
        let value = read(&lit)?;
        return Ok((Some(value.clone()), Some(value)));
    }
    let (mut ser, mut de) = (None, None);
    meta.parse_nested_meta(|inner| {
        let lit: LitStr = inner.value()?.parse()?;
        if inner.path.is_ident("serialize") {
            ser = Some(read(&lit)?);
        } else if inner.path.is_ident("deserialize") {
            de = Some(read(&lit)?);
        } else {
            return Err(inner.error("expected `serialize` or `deserialize`"));
        }
        Ok(())
    })?;
    Ok((ser, de))
}

/// Passes over a serde key that does not change the event type: `key`, `key = ..` or `key(..)`.
fn skip(meta: &ParseNestedMeta<'_>) -> syn::Result<()> {
    if meta.input.peek(Token![=]) {
        let value = meta.value()?;
        value.step(|cursor| {
            let mut rest = *cursor;
            while let Some((tt, next)) = rest.token_tree() {
                if matches!(&tt, TokenTree::Punct(p) if p.as_char() == ',') {
                    break;
                }
                rest = next;
            }
            Ok(((), rest))
        })
    } else if meta.input.peek(syn::token::Paren) {
        let content;
        syn::parenthesized!(content in meta.input);
        content.parse::<TokenStream>().map(drop)
    } else {
        Ok(())
    }
}

/// An error at `span`.
pub(crate) fn error(span: Span, message: impl std::fmt::Display) -> syn::Error {
    syn::Error::new(span, message)
}
