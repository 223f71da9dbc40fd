//! HTML bodies to readable plain text.
//!
//! html2text builds a DOM and renders it recursively, so hostile HTML (megabytes, or tens of thousands of nested
//! elements) could take seconds or overflow the stack. Input is capped, nesting is estimated by a linear scan first,
//! and anything too deep, or any error or panic inside html2text, falls back to a plain tag stripper.

use std::sync::LazyLock;

use regex::Regex;

/// Wrap width of the rendered text.
const WIDTH: usize = 100;
/// Only this much HTML is rendered; the rest of a larger body is dropped.
const MAX_HTML_BYTES: usize = 1024 * 1024;
/// Above this estimated element depth, html2text is not trusted with the input.
const MAX_DEPTH: usize = 200;

/// Readable text of an HTML body.
pub fn html_to_text(html: &str) -> String {
    let html = truncate(html, MAX_HTML_BYTES);
    if estimated_depth(html) > MAX_DEPTH {
        return strip_tags(html);
    }
    let rendered = std::panic::catch_unwind(|| {
        html2text::config::plain().no_link_wrapping().string_from_read(html.as_bytes(), WIDTH)
    });
    match rendered {
        Ok(Ok(text)) => {
            text.replace('\u{a0}', " ").lines().map(str::trim_end).collect::<Vec<_>>().join("\n").trim().to_string()
        }
        _ => strip_tags(html),
    }
}

fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Open tags minus close tags, ignoring void elements: an upper-bound guess of how deep the DOM will be.
fn estimated_depth(html: &str) -> usize {
    const VOID: &[&str] = &["br", "hr", "img", "meta", "link", "input", "area", "base", "col", "wbr", "source"];
    let (mut depth, mut max) = (0usize, 0usize);
    let bytes = html.as_bytes();
    let mut i = 0;
    while let Some(off) = bytes[i..].iter().position(|&b| b == b'<') {
        i += off + 1;
        let Some(&next) = bytes.get(i) else { break };
        if next == b'/' {
            depth = depth.saturating_sub(1);
        } else if next.is_ascii_alphabetic() {
            let end = bytes[i..].iter().position(|b| !b.is_ascii_alphanumeric()).map_or(bytes.len(), |p| i + p);
            let name = html[i..end].to_ascii_lowercase();
            let self_closing =
                bytes[end..].iter().position(|&b| b == b'>').is_some_and(|p| p > 0 && bytes[end + p - 1] == b'/');
            if !VOID.contains(&name.as_str()) && !self_closing {
                depth += 1;
                max = max.max(depth);
            }
        }
    }
    max
}

static TAG: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?s)<!--.*?-->|<(?:script|style)\b.*?</(?:script|style)\s*>|<[^>]*>|<[^>]*$").unwrap()
});
static BLOCK: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"(?i)<(?:br|/p|/div|/tr|/li|/h\d)\b[^>]*>").unwrap());
static BLANKS: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"\n[ \t]*(?:\n[ \t]*){2,}").unwrap());

/// Last resort: drop tags, keep line breaks of block elements, decode the common entities.
fn strip_tags(html: &str) -> String {
    let text = BLOCK.replace_all(html, "\n");
    let text = TAG.replace_all(&text, "");
    let text = text
        .replace("&nbsp;", " ")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&");
    BLANKS.replace_all(&text, "\n\n").trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_simple_html() {
        let text = html_to_text("<html><body><p>Hello <b>world</b></p><p>Second &amp; last</p></body></html>");
        assert!(text.contains("Hello world"), "{text}");
        assert!(text.contains("Second & last"), "{text}");
    }

    #[test]
    fn deep_html_falls_back_quickly() {
        let html = format!("{}deep text{}", "<div>".repeat(100_000), "</div>".repeat(100_000));
        let start = std::time::Instant::now();
        assert_eq!(html_to_text(&html), "deep text");
        assert!(start.elapsed().as_secs() < 5);
    }

    #[test]
    fn unclosed_deep_html_falls_back() {
        let html = format!("{}x", "<span><b>".repeat(50_000));
        assert_eq!(html_to_text(&html), "x");
    }
}
