//! serde's `rename_all` rules, as serde applies them to variant names.

/// One of serde's `rename_all` rules.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RenameRule {
    Lower,
    Upper,
    Pascal,
    Camel,
    Snake,
    ScreamingSnake,
    Kebab,
    ScreamingKebab,
}

impl RenameRule {
    /// The rule serde calls `name`, if any.
    pub(crate) fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "lowercase" => Self::Lower,
            "UPPERCASE" => Self::Upper,
            "PascalCase" => Self::Pascal,
            "camelCase" => Self::Camel,
            "snake_case" => Self::Snake,
            "SCREAMING_SNAKE_CASE" => Self::ScreamingSnake,
            "kebab-case" => Self::Kebab,
            "SCREAMING-KEBAB-CASE" => Self::ScreamingKebab,
            _ => return None,
        })
    }

    /// A variant's name under this rule (variants are written in PascalCase), as serde does it.
    pub(crate) fn apply(self, variant: &str) -> String {
        match self {
            Self::Pascal => variant.to_owned(),
            Self::Lower => variant.to_ascii_lowercase(),
            Self::Upper => variant.to_ascii_uppercase(),
            Self::Camel => {
                let mut chars = variant.chars();
                match chars.next() {
                    Some(first) => first.to_ascii_lowercase().to_string() + chars.as_str(),
                    None => String::new(),
                }
            }
            Self::Snake => snake(variant),
            Self::ScreamingSnake => snake(variant).to_ascii_uppercase(),
            Self::Kebab => snake(variant).replace('_', "-"),
            Self::ScreamingKebab => snake(variant).replace('_', "-").to_ascii_uppercase(),
        }
    }
}

/// `PascalCase` to `snake_case`, splitting before each upper case letter but the first
/// (serde's rule, kept to the letter: kebab case is this with `_` turned into `-`).
fn snake(variant: &str) -> String {
    let mut out = String::with_capacity(variant.len() + 4);
    for (i, ch) in variant.char_indices() {
        if i > 0 && ch.is_uppercase() {
            out.push('_');
        }
        out.push(ch.to_ascii_lowercase());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::RenameRule;

    #[test]
    fn each_rule_spells_a_variant_the_way_serde_does() {
        let cases = [
            ("lowercase", "bookwasreturned"),
            ("UPPERCASE", "BOOKWASRETURNED"),
            ("PascalCase", "BookWasReturned"),
            ("camelCase", "bookWasReturned"),
            ("snake_case", "book_was_returned"),
            ("SCREAMING_SNAKE_CASE", "BOOK_WAS_RETURNED"),
            ("kebab-case", "book-was-returned"),
            ("SCREAMING-KEBAB-CASE", "BOOK-WAS-RETURNED"),
        ];
        for (rule, expected) in cases {
            let rule = RenameRule::from_name(rule).expect("a serde rule");
            assert_eq!(rule.apply("BookWasReturned"), expected);
        }
        assert_eq!(RenameRule::from_name("Title Case"), None);
    }
}
