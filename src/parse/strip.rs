//! Reply stripping: the new text of a reply, without quoted history, attribution lines or signatures.

/// The visible new text of `text` (a plain-text body). Placeholder until the stripping stage lands.
pub fn visible_text(text: &str) -> String {
    text.trim().to_string()
}
