//! Cheap, linear checks on the raw bytes that run *before* the MIME parser, so a hostile mail (huge, 100,000 parts,
//! 10,000 levels of nested multiparts) is quarantined without building its tree; plus the rule that decides whether
//! the bytes are mail at all.
//!
//! The part count is an upper bound: every line `--<boundary>` whose boundary was declared by a `Content-Type:`
//! header of the mail (RFC 2046 §5.1.1) opens a part. The depth is the size of the stack of boundaries that are
//! declared but not yet closed. Both are checked again on the parsed tree (see `mod.rs`).

use std::borrow::Cow;
use std::collections::HashSet;

use super::Rejection;
use crate::config::Limits;

/// Header names of which at least one must appear in the first header block for the bytes to count as mail.
const MAIL_HEADERS: &[&str] = &[
    "from",
    "to",
    "cc",
    "subject",
    "date",
    "message-id",
    "received",
    "return-path",
    "sender",
    "reply-to",
    "mime-version",
    "delivered-to",
    "x-original-to",
    "in-reply-to",
    "references",
];

/// How far into the message the header block is looked at for the "is this mail" rule.
const MAX_HEADER_SCAN: usize = 256 * 1024;

/// The mail without blank lines or indentation before its first header. Several real mail files (pasted into
/// tools, written by scripts) start with spaces or empty lines; RFC 5322 has no room for them, but they are mail,
/// and mail-parser would read a leading empty line as the end of an empty header block. When the first header was
/// indented, the same indentation is taken off the header block's other lines, so folding (deeper indentation)
/// survives. Borrowed when nothing needs changing.
pub fn without_leading_whitespace(raw: &[u8]) -> Cow<'_, [u8]> {
    let bom = raw.starts_with(b"\xEF\xBB\xBF");
    let body = if bom { &raw[3..] } else { raw };
    let start = body.iter().position(|b| !b.is_ascii_whitespace()).unwrap_or(body.len());
    if start == 0 {
        return Cow::Borrowed(raw);
    }
    let line_start = body[..start].iter().rposition(|&b| b == b'\n').map_or(0, |p| p + 1);
    let indent = &body[line_start..start];
    let rest = &body[start..];
    if indent.is_empty() {
        return Cow::Borrowed(rest);
    }
    let mut out = Vec::with_capacity(rest.len());
    let mut in_headers = true;
    for (i, line) in rest.split_inclusive(|&b| b == b'\n').enumerate() {
        if in_headers && line.trim_ascii().is_empty() {
            in_headers = false;
        }
        match line.strip_prefix(indent) {
            Some(dedented) if in_headers && i > 0 => out.extend_from_slice(dedented),
            _ => out.extend_from_slice(line),
        }
    }
    Cow::Owned(out)
}

/// Refuses input that is not mail, is too large, has too many MIME parts or nests too deep.
pub fn prescan(raw: &[u8], limits: &Limits) -> Result<(), Rejection> {
    if raw.len() > limits.max_message_bytes {
        return Err(Rejection::TooLarge { size: raw.len(), limit: limits.max_message_bytes });
    }
    check_is_mail(raw)?;
    check_structure(raw, limits)
}

/// The "is this mail" rule: the first line is a header field `name: value` (RFC 5322 §2.2: printable ASCII name
/// without colon) or an mbox `From ` line, and the header block (up to the first empty line) holds at least one
/// well-formed field of [`MAIL_HEADERS`]. Random binary, images and plain text files fail the first or second test.
pub fn check_is_mail(raw: &[u8]) -> Result<(), Rejection> {
    let raw = raw.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(raw);
    let head = &raw[..raw.len().min(MAX_HEADER_SCAN)];
    let mut lines = head.split(|&b| b == b'\n').map(|l| l.strip_suffix(b"\r").unwrap_or(l));
    let first = lines.next().unwrap_or_default();
    let mbox = first.starts_with(b"From ");
    if !mbox && field_name(first).is_none() {
        return Err(Rejection::NotMail("the first line is not a header field (\"Name: value\")".into()));
    }
    let known = std::iter::once(first)
        .chain(lines)
        .take_while(|l| !l.is_empty())
        .filter_map(field_name)
        .any(|name| MAIL_HEADERS.iter().any(|h| h.as_bytes().eq_ignore_ascii_case(name)));
    if known {
        Ok(())
    } else {
        Err(Rejection::NotMail("no From, To, Subject, Date, Message-ID or Received header in the header block".into()))
    }
}

/// The field name of a header line `Name: value`, trimmed of obsolete whitespace before the colon (RFC 5322 §4.5).
pub fn field_name(line: &[u8]) -> Option<&[u8]> {
    let colon = line.iter().position(|&b| b == b':')?;
    let name = line[..colon].trim_ascii_end();
    let ok = !name.is_empty() && name.len() <= 76 && name.iter().all(|&b| (33..=126).contains(&b));
    ok.then_some(name)
}

/// Where a line of the scan is: in a header block (whose current field may be a Content-Type) or in a body.
struct Scan<'a> {
    in_headers: bool,
    in_content_type: bool,
    /// The current header block's Content-Type is message/rfc822: its body starts with another header block.
    message_part: bool,
    declared: HashSet<&'a [u8]>,
    open: Vec<&'a [u8]>,
    parts: usize,
}

impl Scan<'_> {
    /// At the top of a mail: in its header block, which counts as its first part.
    fn at_start() -> Self {
        Scan {
            in_headers: true,
            in_content_type: false,
            message_part: false,
            declared: HashSet::new(),
            open: Vec::new(),
            parts: 1,
        }
    }
}

fn check_structure(raw: &[u8], limits: &Limits) -> Result<(), Rejection> {
    let mut s = Scan::at_start();
    let delimiters = memchr::memmem::Finder::new(b"\n--");
    let mut line_start = 0;
    loop {
        if !s.in_headers {
            // In a body only lines that start with "--" matter: jump to the next one instead of walking every line
            // of a base64 attachment (this scan sees every byte of every mail before the MIME parser does).
            match next_dash_line(raw, line_start, &delimiters) {
                Some(start) => line_start = start,
                None => return Ok(()),
            }
        }
        let end = memchr::memchr(b'\n', &raw[line_start..]).map_or(raw.len(), |i| line_start + i);
        let line = &raw[line_start..end];
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if s.in_headers {
            header_line(&mut s, line);
        } else if let Some(rest) = line.strip_prefix(b"--") {
            delimiter_line(&mut s, rest);
        }
        if s.parts > limits.max_mime_parts {
            return Err(Rejection::TooManyParts { limit: limits.max_mime_parts });
        }
        // The root counts as level 1; each open multipart adds one.
        if s.open.len() + 1 > limits.max_nesting_depth {
            return Err(Rejection::TooDeep { limit: limits.max_nesting_depth });
        }
        if end == raw.len() {
            return Ok(());
        }
        line_start = end + 1;
    }
}

/// The start of the first line at or after `from` (itself a line start) that begins with "--".
fn next_dash_line(raw: &[u8], from: usize, delimiters: &memchr::memmem::Finder<'_>) -> Option<usize> {
    if raw[from..].starts_with(b"--") {
        return Some(from);
    }
    delimiters.find(&raw[from..]).map(|i| from + i + 1)
}

fn header_line<'a>(s: &mut Scan<'a>, line: &'a [u8]) {
    if line.is_empty() {
        s.in_headers = s.message_part;
        s.message_part = false;
        s.in_content_type = false;
        return;
    }
    if !line.starts_with(b" ") && !line.starts_with(b"\t") {
        s.in_content_type = field_name(line).is_some_and(|n| n.eq_ignore_ascii_case(b"content-type"));
        if s.in_content_type {
            let value = &line[line.iter().position(|&b| b == b':').map_or(0, |p| p + 1)..];
            let v = value.trim_ascii_start();
            s.message_part =
                starts_with_ignore_case(v, b"message/rfc822") || starts_with_ignore_case(v, b"message/global");
        }
    }
    if s.in_content_type
        && let Some(boundary) = boundary_param(line)
        && s.declared.insert(boundary)
    {
        s.open.push(boundary);
    }
}

fn delimiter_line<'a>(s: &mut Scan<'a>, rest: &'a [u8]) {
    let rest = rest.trim_ascii_end();
    let (boundary, close) = if s.declared.contains(rest) {
        (rest, false)
    } else if let Some(b) = rest.strip_suffix(b"--")
        && s.declared.contains(b)
    {
        (b, true)
    } else {
        return;
    };
    if let Some(pos) = s.open.iter().rposition(|b| *b == boundary) {
        s.open.truncate(if close { pos } else { pos + 1 });
    }
    if !close {
        s.parts += 1;
        s.in_headers = true;
    }
}

fn starts_with_ignore_case(hay: &[u8], prefix: &[u8]) -> bool {
    hay.len() >= prefix.len() && hay[..prefix.len()].eq_ignore_ascii_case(prefix)
}

/// The value of a `boundary=` parameter on this line, quoted or not (RFC 2045 §5.1).
fn boundary_param(line: &[u8]) -> Option<&[u8]> {
    let lower = line.to_ascii_lowercase();
    let at = lower.windows(8).position(|w| w == b"boundary")?;
    let rest = line[at + 8..].trim_ascii_start().strip_prefix(b"=")?.trim_ascii_start();
    let value = if let Some(q) = rest.strip_prefix(b"\"") {
        &q[..q.iter().position(|&b| b == b'"').unwrap_or(q.len())]
    } else {
        let end = rest.iter().position(|&b| b == b';' || b.is_ascii_whitespace()).unwrap_or(rest.len());
        &rest[..end]
    };
    (!value.is_empty()).then_some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nested(depth: usize) -> Vec<u8> {
        let mut m = b"From: a@example.com\nSubject: deep\n".to_vec();
        for i in 0..depth {
            m.extend_from_slice(format!("Content-Type: multipart/mixed; boundary=\"b{i}\"\n\n--b{i}\n").as_bytes());
        }
        m.extend_from_slice(b"Content-Type: text/plain\n\nhi\n");
        for i in (0..depth).rev() {
            m.extend_from_slice(format!("--b{i}--\n").as_bytes());
        }
        m
    }

    #[test]
    fn leading_blank_lines_and_spaces_are_not_refused() {
        let limits = Limits::default();
        for input in [
            &b"\n\nFrom: a@b.c\nSubject: x\n\nbody"[..],
            b"   From: a@b.c\nSubject: x\n\nbody",
            b" \r\n\t\r\nFrom: a@b.c\r\nSubject: x\r\n\r\nbody",
            b"    From: a@b.c\n    Subject: folded\n      value\n\n    indented body",
        ] {
            let fixed = without_leading_whitespace(input);
            assert!(prescan(&fixed, &limits).is_ok(), "{:?}", String::from_utf8_lossy(input));
            assert!(fixed.starts_with(b"From: a@b.c"), "{:?}", String::from_utf8_lossy(&fixed));
        }
        let fixed = without_leading_whitespace(b"    From: a@b.c\n    Subject: folded\n      value\n\n    body");
        assert_eq!(&fixed[..], b"From: a@b.c\nSubject: folded\n  value\n\n    body");
        assert!(matches!(without_leading_whitespace(b"From: a@b.c\n\n"), Cow::Borrowed(_)));
        // Whitespace before text that is not mail does not make it mail.
        assert!(check_is_mail(&without_leading_whitespace(b"\n\n  just some text\n")).is_err());
    }

    #[test]
    fn not_mail_is_refused() {
        for input in [&b"\xff\xd8\xff\xe0\x00\x10JFIF"[..], b"just some text\nmore text\n", b"", b"X-Foo: bar\n\nbody"]
        {
            assert!(matches!(check_is_mail(input), Err(Rejection::NotMail(_))), "{input:?}");
        }
        for input in
            [&b"From: a@b.c\n\nx"[..], b"From a@b.c Mon Jan 1 00:00:00 2024\nSubject: x\n\n", b"Subject : old\n\n"]
        {
            assert!(check_is_mail(input).is_ok(), "{input:?}");
        }
    }

    #[test]
    fn depth_and_parts_are_counted() {
        let limits = Limits::default();
        assert!(prescan(&nested(10), &limits).is_ok());
        assert_eq!(prescan(&nested(16), &limits), Err(Rejection::TooDeep { limit: 16 }));
        let mut many = b"From: a@b.c\nContent-Type: multipart/mixed; boundary=x\n\n".to_vec();
        for _ in 0..600 {
            many.extend_from_slice(b"--x\n\npart\n");
        }
        assert_eq!(prescan(&many, &limits), Err(Rejection::TooManyParts { limit: 500 }));
    }

    /// The scan as first written, every line in turn: the jumping scan must agree with it.
    fn line_by_line(raw: &[u8], limits: &Limits) -> Result<(), Rejection> {
        let mut s = Scan::at_start();
        for line in raw.split(|&b| b == b'\n') {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if s.in_headers {
                header_line(&mut s, line);
            } else if let Some(rest) = line.strip_prefix(b"--") {
                delimiter_line(&mut s, rest);
            } else {
                continue;
            }
            if s.parts > limits.max_mime_parts {
                return Err(Rejection::TooManyParts { limit: limits.max_mime_parts });
            }
            if s.open.len() + 1 > limits.max_nesting_depth {
                return Err(Rejection::TooDeep { limit: limits.max_nesting_depth });
            }
        }
        Ok(())
    }

    #[test]
    fn jumping_between_dash_lines_sees_what_every_line_sees() {
        // Limits low enough that some of the mails below break each.
        let limits = Limits { max_mime_parts: 2, max_nesting_depth: 2, ..Limits::default() };
        let pieces: [&[u8]; 12] = [
            b"Content-Type: multipart/mixed; boundary=a\n",
            b"Content-Type: multipart/alternative;\r\n boundary=\"b\"\r\n",
            b"Content-Type: message/rfc822\n",
            b"\n",
            b"\r\n",
            b"--a\n",
            b"--b\r\n",
            b"--a--\n",
            b"--b--",
            b"-- not a delimiter\n",
            b"body text\n",
            b"QUJD--\n",
        ];
        // Every sequence of five pieces after a header line: 12^5 mails, each checked both ways.
        let mut mail = Vec::new();
        let (mut too_deep, mut too_many) = (0, 0);
        for n in 0..12usize.pow(5) {
            mail.clear();
            mail.extend_from_slice(b"From: a@b.c\n");
            let mut k = n;
            for _ in 0..5 {
                mail.extend_from_slice(pieces[k % 12]);
                k /= 12;
            }
            let expected = line_by_line(&mail, &limits);
            assert_eq!(check_structure(&mail, &limits), expected, "{:?}", String::from_utf8_lossy(&mail));
            too_deep += usize::from(matches!(expected, Err(Rejection::TooDeep { .. })));
            too_many += usize::from(matches!(expected, Err(Rejection::TooManyParts { .. })));
        }
        assert!(too_deep > 1000 && too_many > 0, "too deep {too_deep}, too many parts {too_many}");
    }

    #[test]
    fn folded_and_quoted_boundaries() {
        assert_eq!(boundary_param(b"\tboundary=\"a b\"; x=y"), Some(&b"a b"[..]));
        assert_eq!(boundary_param(b"multipart/mixed; BOUNDARY=abc"), Some(&b"abc"[..]));
        assert_eq!(boundary_param(b"boundary"), None);
    }
}
