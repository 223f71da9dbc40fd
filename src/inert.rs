//! Text from mail made inert before a person's terminal or another mail sees it.
//!
//! Subjects, names, bodies and filenames are written by whoever sends us mail. Printed raw, ESC starts a terminal
//! escape sequence (colours, cursor moves, OSC 0 to set the window title, OSC 52 to write the clipboard), BEL rings,
//! CR rewrites the line already shown, and the Unicode bidi controls reorder what is read (CVE-2021-42574, "Trojan
//! Source"). Copied into our own mail, the same bytes reach the customer's or agent's client. So every
//! human-readable output shows such characters escaped instead: `\x1b`, `\r`, `\u{202e}`, visible and harmless.
//! JSON output is left alone: serde_json escapes control characters itself and scripts need the exact text.
//!
//! Escaped are: the C0 controls and DEL (as `\xNN`; `\n`, `\r`, `\t` by name), the C1 controls U+0080–U+009F
//! (8-bit CSI U+009B is an escape sequence on some terminals), the bidi embedding, override and isolate controls,
//! U+061C, U+200E, U+200F, and the line and paragraph separators U+2028/U+2029. Zero-width joiners stay: emoji need
//! them. A backslash is left as it is, so the result is for reading, not for parsing back.

use std::borrow::Cow;
use std::fmt::Write;

/// One line of text (a subject, a name, a filename, a table cell): every unsafe character escaped, line breaks and
/// tabs included, so a value can neither fake a line of output nor move the cursor.
pub fn line(s: &str) -> Cow<'_, str> {
    escape(s, false)
}

/// Text of several lines (a body, a rendered mail): as [`line`], but `\n`, `\t` and the `\r` of a `\r\n` are kept.
pub fn text(s: &str) -> Cow<'_, str> {
    escape(s, true)
}

/// Whether `c` must not reach a terminal or a mail as it is.
pub fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{2028}' | '\u{2029}')
        || ('\u{202a}'..='\u{202e}').contains(&c)
        || ('\u{2066}'..='\u{2069}').contains(&c)
}

fn escape(s: &str, multiline: bool) -> Cow<'_, str> {
    let keep = |c: char, next: Option<char>| multiline && (c == '\n' || c == '\t' || (c == '\r' && next == Some('\n')));
    let mut chars = s.char_indices().peekable();
    let first = loop {
        let Some((i, c)) = chars.next() else { return Cow::Borrowed(s) };
        if is_unsafe(c) && !keep(c, chars.peek().map(|&(_, n)| n)) {
            break i;
        }
    };
    let mut out = String::with_capacity(s.len() + 8);
    out.push_str(&s[..first]);
    let mut chars = s[first..].chars().peekable();
    while let Some(c) = chars.next() {
        if !is_unsafe(c) || keep(c, chars.peek().copied()) {
            out.push(c);
            continue;
        }
        let _ = match c {
            '\n' => out.write_str("\\n"),
            '\r' => out.write_str("\\r"),
            '\t' => out.write_str("\\t"),
            c if (c as u32) < 0x80 => write!(out, "\\x{:02x}", c as u32),
            c => write!(out, "\\u{{{:x}}}", c as u32),
        };
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_escapes_are_shown_not_sent() {
        let cases = [
            ("plain Grüße 🔥", "plain Grüße 🔥"),
            ("\x1b[31mred\x1b[0m", "\\x1b[31mred\\x1b[0m"),
            ("\x1b]0;owned\x07title", "\\x1b]0;owned\\x07title"),
            ("nul\0del\x7f", "nul\\x00del\\x7f"),
            ("csi\u{9b}2J", "csi\\u{9b}2J"),
            ("abc\u{202e}fed", "abc\\u{202e}fed"),
            ("a\u{2066}b\u{2069}", "a\\u{2066}b\\u{2069}"),
            ("over\rwrite", "over\\rwrite"),
            ("two\nlines\tand tab", "two\\nlines\\tand tab"),
            ("family 👨\u{200d}👩", "family 👨\u{200d}👩"),
        ];
        for (input, want) in cases {
            assert_eq!(line(input), want, "{input:?}");
        }
    }

    #[test]
    fn text_keeps_line_structure_only() {
        assert_eq!(text("a\r\nb\n\tc"), "a\r\nb\n\tc");
        assert_eq!(text("a\rb\n\x1b[2J"), "a\\rb\n\\x1b[2J");
        assert_eq!(text("ends in cr\r"), "ends in cr\\r");
        assert!(matches!(text("nothing to do\n"), Cow::Borrowed(_)));
    }

    #[test]
    fn escaped_output_is_inert_again() {
        let once = line("\x1b[1m\u{85}\u{2028}x");
        assert!(!once.chars().any(is_unsafe), "{once}");
        assert_eq!(line(&once), once, "escaping twice changes nothing");
    }
}
