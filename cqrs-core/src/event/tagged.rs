//! [`decode_tagged_json`]: an event straight from its stored type name and JSON text, without
//! building the `serde_json::Value` that [`DomainEvent::decode`](super::DomainEvent::decode)
//! takes.
//!
//! The default encoding stores an enum's variant name as the event type and its content as the
//! payload. Decoding used to put the two back together as a `Value` (`{type: payload}`) and
//! deserialize that: every field of every event was allocated twice, once in the `Value` tree
//! and once in the event. Here serde is handed the pair directly: the type name answers the
//! enum's variant, and the JSON text deserializes the variant's content in place.

use serde::de::value::StrDeserializer;
use serde::de::{
    DeserializeOwned, DeserializeSeed, EnumAccess, IntoDeserializer, VariantAccess, Visitor,
};
use serde::{forward_to_deserialize_any, Deserializer};
use serde_json::de::StrRead;

use crate::Error;

/// The event of type `event_type` from its payload as JSON text, for events in the default
/// encoding (an externally tagged serde enum, one variant per event type): the same result as
/// [`DomainEvent::decode`](super::DomainEvent::decode) on the parsed payload, errors included,
/// without the intermediate `Value`.
///
/// `#[derive(DomainEvent)]` uses it for [`decode_json`](super::DomainEvent::decode_json); a
/// hand-written impl that keeps the default encoding can too.
///
/// ```
/// use cqrs_core::{decode_tagged_json, DomainEvent};
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Debug, PartialEq, Serialize, Deserialize, DomainEvent)]
/// enum Account {
///     Deposited { cents: u64 },
///     Closed,
/// }
///
/// let deposited: Account = decode_tagged_json("Deposited", r#"{"cents": 250}"#)?;
/// assert_eq!(deposited, Account::Deposited { cents: 250 });
/// assert_eq!(decode_tagged_json::<Account>("Closed", "null")?, Account::Closed);
/// assert!(decode_tagged_json::<Account>("Deposited", r#"{"cents": -1}"#).is_err());
/// # Ok::<(), cqrs_core::Error>(())
/// ```
///
/// # Errors
///
/// [`Error::Decode`] when the payload is not valid JSON, or not the content of the variant
/// named `event_type`, or there is no such variant.
pub fn decode_tagged_json<E: DeserializeOwned>(event_type: &str, json: &str) -> Result<E, Error> {
    let error = |source| Error::decode(event_type, source);
    // A `null` payload is a unit variant's, or a newtype variant's holding `None` (or `()`):
    // the content deserializer reads it as either, as the `Value` path does.
    let mut content = serde_json::Deserializer::from_str(json);
    let event = E::deserialize(Tagged {
        event_type,
        content: &mut content,
    })
    .map_err(error)?;
    content.end().map_err(error)?;
    Ok(event)
}

/// `{event_type: content}` as serde sees it, with the content still unparsed.
struct Tagged<'t, 'c, 'j> {
    event_type: &'t str,
    content: &'c mut serde_json::Deserializer<StrRead<'j>>,
}

impl<'de> Deserializer<'de> for Tagged<'_, '_, 'de> {
    type Error = serde_json::Error;

    /// Only an enum reads a type name and a content; anything else is refused as serde
    /// refuses a type that does not take an enum.
    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        visitor.visit_enum(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        visitor.visit_enum(self)
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map struct identifier
        ignored_any
    }
}

impl<'de, 'c> EnumAccess<'de> for Tagged<'_, 'c, 'de> {
    type Error = serde_json::Error;
    type Variant = Content<'c, 'de>;

    fn variant_seed<V: DeserializeSeed<'de>>(
        self,
        seed: V,
    ) -> Result<(V::Value, Self::Variant), Self::Error> {
        let name: StrDeserializer<'_, serde_json::Error> = self.event_type.into_deserializer();
        let variant = seed.deserialize(name)?;
        Ok((variant, Content(self.content)))
    }
}

/// The variant's content: the payload's JSON text.
struct Content<'c, 'j>(&'c mut serde_json::Deserializer<StrRead<'j>>);

impl<'de> VariantAccess<'de> for Content<'_, 'de> {
    type Error = serde_json::Error;

    fn unit_variant(self) -> Result<(), Self::Error> {
        serde::Deserialize::deserialize(self.0)
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(
        self,
        seed: T,
    ) -> Result<T::Value, Self::Error> {
        seed.deserialize(self.0)
    }

    fn tuple_variant<V: Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.0.deserialize_seq(visitor)
    }

    /// An object only: the `Value` path refuses a struct variant given as an array, where
    /// `deserialize_struct` would take it by position.
    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.0.deserialize_map(visitor)
    }
}
