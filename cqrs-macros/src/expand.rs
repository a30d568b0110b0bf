//! The `DomainEvent` impl that the derive writes.

use proc_macro2::TokenStream;
use quote::quote;
use syn::ext::IdentExt;
use syn::{Data, DeriveInput, Fields};

use crate::attrs::{error, EnumAttrs, VariantAttrs, LAYOUT_HELP};

/// `impl cqrs_core::DomainEvent for #input`, or the error that says why it cannot be derived.
pub(crate) fn domain_event(input: &DeriveInput) -> syn::Result<TokenStream> {
    let name = &input.ident;
    let data =
        match &input.data {
            Data::Enum(data) => data,
            Data::Struct(s) => {
                return Err(error(
                    s.struct_token.span,
                    format!(
                        "#[derive(DomainEvent)] needs an enum with one variant per event type, \
                     not a struct: {LAYOUT_HELP}"
                    ),
                ))
            }
            Data::Union(u) => return Err(error(
                u.union_token.span,
                "#[derive(DomainEvent)] needs an enum with one variant per event type, not a union",
            )),
        };
    if data.variants.is_empty() {
        return Err(error(
            name.span(),
            "#[derive(DomainEvent)] needs at least one variant: each is an event type",
        ));
    }
    let enum_attrs = EnumAttrs::parse(&input.attrs)?;
    let default_version = enum_attrs.version.unwrap_or(1);

    let mut type_arms = Vec::with_capacity(data.variants.len());
    let mut version_arms = Vec::with_capacity(data.variants.len());
    let mut current_arms = Vec::with_capacity(data.variants.len());
    for variant in &data.variants {
        let attrs = VariantAttrs::parse(&variant.attrs)?;
        let ident = &variant.ident;
        let plain = ident.unraw().to_string();
        let serialized = attrs.rename_serialize.clone().unwrap_or_else(|| {
            enum_attrs
                .rename_serialize
                .map_or_else(|| plain.clone(), |rule| rule.apply(&plain))
        });
        let deserialized = attrs.rename_deserialize.clone().unwrap_or_else(|| {
            enum_attrs
                .rename_deserialize
                .map_or_else(|| plain.clone(), |rule| rule.apply(&plain))
        });
        if serialized != deserialized {
            return Err(error(
                ident.span(),
                format!(
                    "#[derive(DomainEvent)]: serde writes this variant as \"{serialized}\" but \
                     reads it as \"{deserialized}\"; a stored event must be read back under \
                     the type it was written with"
                ),
            ));
        }
        if matches!(&variant.fields, Fields::Unnamed(fields) if fields.unnamed.is_empty()) {
            // Stored as `[]`, which serde_json's `Value` reads as a unit, not as an empty
            // tuple: the event could be written and not read back.
            return Err(error(
                ident.span(),
                format!(
                    "#[derive(DomainEvent)] does not support a tuple variant without fields: \
                     write `{plain}` (a unit variant) or `{plain} {{}}`"
                ),
            ));
        }
        let pattern = match &variant.fields {
            Fields::Named(_) => quote!(Self::#ident { .. }),
            Fields::Unnamed(_) => quote!(Self::#ident(..)),
            Fields::Unit => quote!(Self::#ident),
        };
        let version = attrs.version.unwrap_or(default_version);
        type_arms.push(quote!(#pattern => #serialized));
        version_arms.push(quote!(#pattern => #version));
        current_arms.push(quote!(#serialized => ::core::option::Option::Some(#version)));
    }

    let (impl_generics, ty_generics, where_clause) = input.generics.split_for_impl();
    Ok(quote! {
        #[automatically_derived]
        impl #impl_generics ::cqrs_core::DomainEvent for #name #ty_generics #where_clause {
            fn event_type(&self) -> &'static str {
                match self {
                    #(#type_arms,)*
                }
            }

            fn schema_version(&self) -> u32 {
                match self {
                    #(#version_arms,)*
                }
            }

            fn current_version(event_type: &str) -> ::core::option::Option<u32> {
                match event_type {
                    #(#current_arms,)*
                    _ => ::core::option::Option::None,
                }
            }

            fn decode_json(
                event_type: &str,
                payload: &str,
            ) -> ::core::result::Result<Self, ::cqrs_core::Error> {
                ::cqrs_core::decode_tagged_json(event_type, payload)
            }
        }
    })
}
