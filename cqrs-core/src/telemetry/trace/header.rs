//! The W3C `traceparent` header (<https://www.w3.org/TR/trace-context/#traceparent-header>),
//! parsed and written here rather than through OpenTelemetry's propagator, which lives in the
//! SDK: the `opentelemetry` feature then needs only the API crate's span context types. The
//! parse is strict where the spec is (lowercase hex, fixed lengths, no all-zero ids, version
//! `ff` invalid) and lenient where it asks to be (a later version may append fields after a
//! `-`).
// Without the `opentelemetry` feature nothing reads or writes a header (its tests still run).
#![cfg_attr(not(feature = "opentelemetry"), allow(dead_code))]

use std::fmt;

/// One `traceparent` value: `{version}-{trace id}-{parent id}-{flags}`, always written as
/// version `00`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TraceParent {
    pub(crate) trace_id: [u8; 16],
    pub(crate) span_id: [u8; 8],
    pub(crate) flags: u8,
}

/// Why a `traceparent` value was refused (only logged: a malformed header is ignored).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Malformed {
    #[error("not version 00's 55 characters `vv-<32 hex>-<16 hex>-ff`")]
    Shape,
    #[error("not lowercase hexadecimal")]
    Hex,
    #[error("version ff is invalid")]
    Version,
    #[error("an all-zero trace id or parent id")]
    ZeroId,
}

/// The length of a version 00 value.
const LEN: usize = 55;

impl TraceParent {
    /// Whether the trace was sampled by the caller (flag bit 0).
    #[cfg(test)]
    fn sampled(&self) -> bool {
        self.flags & 0x01 == 0x01
    }

    /// Parses a header value. Surrounding spaces and tabs are allowed (HTTP's optional
    /// whitespace), nothing else is.
    pub(crate) fn parse(value: &str) -> Result<Self, Malformed> {
        let value = value.trim_matches([' ', '\t']).as_bytes();
        if value.len() < LEN {
            return Err(Malformed::Shape);
        }
        let version = hex::<1>(&value[0..2])?[0];
        if version == 0xff {
            return Err(Malformed::Version);
        }
        // Version 00 is exactly 55 characters; a later one may add fields after a dash.
        let longer_ok = version != 0 && value.get(LEN) == Some(&b'-');
        if (value.len() != LEN && !longer_ok)
            || value[2] != b'-'
            || value[35] != b'-'
            || value[52] != b'-'
        {
            return Err(Malformed::Shape);
        }
        let trace_id = hex::<16>(&value[3..35])?;
        let span_id = hex::<8>(&value[36..52])?;
        let flags = hex::<1>(&value[53..55])?[0];
        if trace_id == [0; 16] || span_id == [0; 8] {
            return Err(Malformed::ZeroId);
        }
        Ok(Self {
            trace_id,
            span_id,
            flags,
        })
    }
}

impl fmt::Display for TraceParent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("00-")?;
        for byte in self.trace_id {
            write!(f, "{byte:02x}")?;
        }
        f.write_str("-")?;
        for byte in self.span_id {
            write!(f, "{byte:02x}")?;
        }
        write!(f, "-{:02x}", self.flags)
    }
}

/// `N` bytes from `2 * N` lowercase hex digits.
fn hex<const N: usize>(digits: &[u8]) -> Result<[u8; N], Malformed> {
    let mut out = [0; N];
    if digits.len() != 2 * N {
        return Err(Malformed::Shape);
    }
    for (byte, pair) in out.iter_mut().zip(digits.chunks_exact(2)) {
        *byte = (nibble(pair[0])? << 4) | nibble(pair[1])?;
    }
    Ok(out)
}

fn nibble(digit: u8) -> Result<u8, Malformed> {
    match digit {
        b'0'..=b'9' => Ok(digit - b'0'),
        b'a'..=b'f' => Ok(digit - b'a' + 10),
        _ => Err(Malformed::Hex),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The spec's own example.
    const EXAMPLE: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn the_specs_example_parses_into_its_ids_and_flags() {
        let parsed = TraceParent::parse(EXAMPLE).expect("valid");
        assert_eq!(
            parsed.trace_id,
            [
                0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e,
                0x47, 0x36
            ]
        );
        assert_eq!(
            parsed.span_id,
            [0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7]
        );
        assert!(parsed.sampled());
        assert_eq!(parsed.to_string(), EXAMPLE);
    }

    #[test]
    fn an_unsampled_value_parses_with_its_flag_off() {
        let parsed = TraceParent::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00")
            .expect("valid");
        assert!(!parsed.sampled());
    }

    #[test]
    fn surrounding_whitespace_is_allowed() {
        assert!(TraceParent::parse(&format!(" \t{EXAMPLE} ")).is_ok());
    }

    #[test]
    fn a_later_version_may_carry_more_fields_after_a_dash() {
        let later = "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-comes-next";
        let parsed = TraceParent::parse(later).expect("a later version is read as 00 is");
        assert_eq!(parsed.to_string(), EXAMPLE);
        // Version 00 itself has exactly 55 characters.
        assert_eq!(
            TraceParent::parse(&format!("{EXAMPLE}-more")),
            Err(Malformed::Shape)
        );
        // A later version's extra part must start with a dash.
        assert_eq!(
            TraceParent::parse("02-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x"),
            Err(Malformed::Shape)
        );
    }

    #[test]
    fn malformed_values_are_refused_with_the_reason() {
        let cases: &[(&str, Malformed)] = &[
            ("", Malformed::Shape),
            ("00", Malformed::Shape),
            (&EXAMPLE[..54], Malformed::Shape),
            (
                "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                Malformed::Shape,
            ),
            (
                "00-4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7-01",
                Malformed::Shape,
            ),
            (
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7_01",
                Malformed::Shape,
            ),
            (
                "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                Malformed::Version,
            ),
            (
                "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
                Malformed::Hex,
            ),
            (
                "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",
                Malformed::Hex,
            ),
            (
                "0g-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                Malformed::Hex,
            ),
            (
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0z",
                Malformed::Hex,
            ),
            (
                "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
                Malformed::ZeroId,
            ),
            (
                "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
                Malformed::ZeroId,
            ),
            // Multi-byte characters never panic on a slice boundary: bytes are compared.
            (
                "00-4bf92f3577b34da6a3ce929d0e0e47é-00f067aa0ba902b7-01",
                Malformed::Hex,
            ),
            (
                "é0-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                Malformed::Hex,
            ),
        ];
        for (value, why) in cases {
            assert_eq!(TraceParent::parse(value), Err(*why), "{value:?}");
        }
    }

    proptest! {
        #[test]
        fn what_is_written_parses_back_to_the_same_context(
            trace_id in any::<[u8; 16]>().prop_filter("not all zero", |t| *t != [0; 16]),
            span_id in any::<[u8; 8]>().prop_filter("not all zero", |s| *s != [0; 8]),
            flags in any::<u8>(),
        ) {
            let written = TraceParent { trace_id, span_id, flags };
            let text = written.to_string();
            prop_assert_eq!(text.len(), LEN);
            prop_assert_eq!(TraceParent::parse(&text), Ok(written));
        }

        #[test]
        fn no_string_makes_the_parser_panic(value in "\\PC{0,80}") {
            let _ = TraceParent::parse(&value);
        }
    }
}
