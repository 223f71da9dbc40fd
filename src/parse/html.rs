//! HTML bodies to readable plain text.

/// Readable text of an HTML body. Placeholder until the HTML stage lands.
pub fn html_to_text(html: &str) -> String {
    html.to_string()
}
