//! Text PostgreSQL can store. A `text` column, and a string inside `jsonb`, refuse the NUL
//! character, which text from outside may hold: an error that echoes a message's bytes, a key
//! or an event type read from a Kafka record, a header value that is a big-endian number.
//! Refused, the letter that carries it could never be parked, and a consumer that must park
//! before it moves on would stop for good.

use std::borrow::Cow;

/// `text` with each NUL written as the two characters `\0`, so that it can be stored; the text
/// as it is when it holds none. For text people read (errors), not for text matched later.
pub(crate) fn storable(text: &str) -> Cow<'_, str> {
    if text.contains('\0') {
        Cow::Owned(text.replace('\0', "\\0"))
    } else {
        Cow::Borrowed(text)
    }
}

#[cfg(test)]
mod tests {
    use super::storable;

    #[test]
    fn a_nul_is_written_as_backslash_zero_and_other_text_is_left_as_it_is() {
        assert_eq!(
            storable("unknown variant `a\0b`"),
            "unknown variant `a\\0b`"
        );
        assert_eq!(storable("\0\0"), "\\0\\0");
        assert!(matches!(
            storable("no nul here"),
            std::borrow::Cow::Borrowed("no nul here")
        ));
    }
}
