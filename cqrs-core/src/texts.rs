//! [`Texts`]: a batch's JSON texts (payloads, metadata) in one buffer, so an append allocates
//! once per column instead of once per event, and a text that repeats the one before it (the
//! same metadata on every event of a command) is written once.

use std::ops::{Index, Range};

use serde::Serialize;

/// Many short texts in one buffer, in order; each is read back by index as a `&str`.
///
/// ```
/// use cqrs_core::backend::TextsBuilder;
///
/// let mut texts = TextsBuilder::with_capacity(3, 64);
/// texts.push_json(&serde_json::json!({"amount": 5}))?;
/// texts.push_json(&serde_json::json!({"amount": 7}))?;
/// texts.repeat_last();
/// let texts = texts.finish()?;
///
/// assert_eq!(texts.len(), 3);
/// assert_eq!(&texts[1], r#"{"amount":7}"#);
/// assert_eq!(&texts[2], r#"{"amount":7}"#);
/// assert_eq!(texts.bytes(), 12 + 12 + 12, "a repeated text counts each time it is read");
/// assert_eq!(texts.iter().collect::<Vec<_>>(), [r#"{"amount":5}"#, r#"{"amount":7}"#, r#"{"amount":7}"#]);
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Clone, Debug, Default)]
pub struct Texts {
    text: String,
    spans: Vec<Range<usize>>,
}

impl Texts {
    /// How many texts.
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// The texts' lengths summed, a repeated text counted each time.
    pub fn bytes(&self) -> usize {
        self.spans.iter().map(Range::len).sum()
    }

    /// The texts in order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = &str> + '_ {
        self.spans.iter().map(|span| &self.text[span.clone()])
    }
}

/// Equal when the texts are, in order, however the buffers lay them out (a repeated text is
/// stored once).
impl PartialEq for Texts {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl Eq for Texts {}

impl Index<usize> for Texts {
    type Output = str;

    /// The text at `index`; panics when `index >= len()`, as a slice does.
    fn index(&self, index: usize) -> &str {
        &self.text[self.spans[index].clone()]
    }
}

/// Builds [`Texts`]: each value serialized straight into the shared buffer.
#[derive(Debug, Default)]
pub struct TextsBuilder {
    buffer: Vec<u8>,
    spans: Vec<Range<usize>>,
}

impl TextsBuilder {
    /// Room for `texts` texts of `bytes` bytes in all, without growing.
    pub fn with_capacity(texts: usize, bytes: usize) -> Self {
        Self {
            buffer: Vec::with_capacity(bytes),
            spans: Vec::with_capacity(texts),
        }
    }

    /// Appends `value` as JSON; returns its length in bytes. On an error nothing is appended.
    pub fn push_json<T: Serialize + ?Sized>(&mut self, value: &T) -> serde_json::Result<usize> {
        let start = self.buffer.len();
        if let Err(error) = serde_json::to_writer(&mut self.buffer, value) {
            self.buffer.truncate(start);
            return Err(error);
        }
        self.spans.push(start..self.buffer.len());
        Ok(self.buffer.len() - start)
    }

    /// Appends the last text again without copying it; returns its length (`None`: there is
    /// no text yet, and nothing is appended).
    pub fn repeat_last(&mut self) -> Option<usize> {
        let last = self.spans.last()?.clone();
        let len = last.len();
        self.spans.push(last);
        Some(len)
    }

    /// The texts. Fails only if the buffer is not UTF-8, which JSON from `serde_json` always
    /// is: the check is one pass over the buffer, where a check per text would be one each.
    pub fn finish(self) -> serde_json::Result<Texts> {
        let text = String::from_utf8(self.buffer).map_err(|error| {
            <serde_json::Error as serde::ser::Error>::custom(format_args!(
                "serialized JSON is not UTF-8: {error}"
            ))
        })?;
        Ok(Texts {
            text,
            spans: self.spans,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_text_that_fails_to_serialize_leaves_the_texts_as_they_were() {
        struct Fails;
        impl Serialize for Fails {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                use serde::ser::SerializeMap;
                let mut map = serializer.serialize_map(None)?;
                map.serialize_entry("a", &1)?;
                Err(serde::ser::Error::custom("no"))
            }
        }
        let mut texts = TextsBuilder::default();
        texts.push_json("kept").expect("a string serializes");
        assert!(texts.push_json(&Fails).is_err());
        texts.push_json(&2).expect("a number serializes");
        let texts = texts.finish().expect("UTF-8");

        assert_eq!(texts.iter().collect::<Vec<_>>(), ["\"kept\"", "2"]);
        assert_eq!(texts.bytes(), 7);
    }

    #[test]
    fn texts_are_equal_by_their_items_whether_repeated_or_copied() {
        let mut repeated = TextsBuilder::default();
        repeated.push_json("a").expect("serializes");
        repeated.repeat_last();
        let mut copied = TextsBuilder::default();
        copied.push_json("a").expect("serializes");
        copied.push_json("a").expect("serializes");
        let mut other = TextsBuilder::default();
        other.push_json("a").expect("serializes");
        other.push_json("b").expect("serializes");
        let repeated = repeated.finish().expect("UTF-8");
        let copied = copied.finish().expect("UTF-8");
        let other = other.finish().expect("UTF-8");

        assert_eq!(repeated, copied);
        assert_ne!(repeated, other);
    }

    #[test]
    fn repeating_before_any_text_appends_nothing() {
        let mut texts = TextsBuilder::default();
        assert_eq!(texts.repeat_last(), None);
        let texts = texts.finish().expect("UTF-8");
        assert!(texts.is_empty());
        assert_eq!(texts.bytes(), 0);
    }

    #[test]
    fn texts_with_multibyte_characters_read_back_whole() {
        let mut texts = TextsBuilder::default();
        texts.push_json("héllo ✓").expect("serializes");
        texts.push_json("日本").expect("serializes");
        let texts = texts.finish().expect("UTF-8");
        assert_eq!(&texts[0], "\"héllo ✓\"");
        assert_eq!(&texts[1], "\"日本\"");
    }
}
