//! Values that must never be printed: bearer tokens, claim tokens, client ids.

use std::fmt;

/// A secret string (a bearer token, an anonymous or claim token).
///
/// `Debug` and `Display` print a fixed mask, never the value, so a token cannot
/// leak through `{:?}` in a log line, an error message or a test failure. The
/// value is reachable only through [`Secret::expose`], which makes every place
/// that needs it easy to find.
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself. Only for building the `Authorization` header.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// True when the secret is the empty string.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// The mask printed in place of a secret.
pub const MASK: &str = "[redacted]";

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(MASK)
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(MASK)
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Self(value)
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Self(value.to_owned())
    }
}

/// Replaces every occurrence of each secret in `text` with [`MASK`].
///
/// Used on anything that may echo a request back (error bodies, journals,
/// recordings) before it is shown or written.
pub fn redact(text: &str, secrets: &[&Secret]) -> String {
    let mut out = text.to_owned();
    for secret in secrets {
        if secret.0.len() >= 4 {
            out = out.replace(secret.expose(), MASK);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_never_show_the_value() {
        let s = Secret::new("nmv_usr_abcdef");
        assert_eq!(format!("{s:?}"), MASK);
        assert_eq!(format!("{s}"), MASK);
        assert_eq!(format!("{:?}", Some(s.clone())), format!("Some({MASK})"));
        assert_eq!(s.expose(), "nmv_usr_abcdef");
    }

    #[test]
    fn redact_replaces_every_occurrence() {
        let s = Secret::new("nmv_usr_abcdef");
        let text = "token nmv_usr_abcdef and again nmv_usr_abcdef.";
        assert_eq!(
            redact(text, &[&s]),
            "token [redacted] and again [redacted]."
        );
    }
}
