//! Golden tests of `parse_mail` over small fixtures in `tests/fixtures/parse/`, each run with LF and with CRLF
//! line endings, plus the hostile inputs of the limits (built in memory, never committed).

use postdesk::config::Limits;
use postdesk::model::{Classification, InboundMail};
use postdesk::parse::{Rejection, parse_mail};

type Check = fn(&InboundMail);

const CASES: &[(&str, Check)] = &[
    ("plain.eml", |m| {
        assert_eq!(m.subject, "Printer on fire");
        assert_eq!(m.from.as_ref().unwrap().email, "alice@example.com");
        assert_eq!(m.from.as_ref().unwrap().name.as_deref(), Some("Alice Example"));
        assert_eq!(m.to[0].email, "support@example.org");
        assert_eq!(m.cc[0].email, "bob@example.com");
        assert_eq!(m.delivered_to, ["support@example.org"]);
        assert_eq!(m.return_path.as_deref(), Some("alice@example.com"));
        assert_eq!(m.message_id.as_deref(), Some("plain-1@example.com"));
        assert_eq!(m.in_reply_to, ["prev@example.org"]);
        assert_eq!(m.references, ["root@example.org", "prev@example.org"]);
        assert_eq!(m.date, Some(1_748_858_400));
        assert_eq!(m.header("X-Long"), Some("folded value here"));
        assert_eq!(m.text.trim(), "Hello, my printer is on fire.");
        assert_eq!(m.visible_text, "Hello, my printer is on fire.");
        assert!(m.html.is_none() && m.attachments.is_empty() && m.warnings.is_empty(), "{:?}", m.warnings);
        assert_eq!(m.classification, Classification::Human);
    }),
    ("html_only.eml", |m| {
        assert!(m.html.as_deref().unwrap().contains("<b>from</b>"));
        assert!(m.text.contains("Hello from HTML"), "{}", m.text);
        assert!(m.text.contains("Second line & more"), "{}", m.text);
        assert!(!m.text.contains('<'));
    }),
    ("alternative.eml", |m| {
        assert_eq!(m.text.trim(), "Plain version");
        assert!(m.html.as_deref().unwrap().contains("HTML version"));
        assert!(m.attachments.is_empty());
    }),
    ("latin1.eml", |m| {
        assert_eq!(m.subject, "Grüße aus Köln");
        assert_eq!(m.from.as_ref().unwrap().name.as_deref(), Some("Jürgen Müller"));
        assert_eq!(m.header("Subject"), Some("Grüße aus Köln"));
        assert_eq!(m.text.trim(), "Schöne Grüße");
    }),
    ("windows1252.eml", |m| assert_eq!(m.text.trim(), "It costs 5 € \u{201c}quoted\u{201d}")),
    ("koi8r.eml", |m| {
        assert_eq!(m.subject, "Привет");
        assert_eq!(m.from.as_ref().unwrap().name.as_deref(), Some("Иван"));
        assert_eq!(m.text.trim(), "Здравствуйте");
    }),
    ("iso2022jp.eml", |m| {
        assert_eq!(m.subject, "こんにちは");
        assert_eq!(m.text.trim(), "お世話になります");
    }),
    ("rfc2047_group.eml", |m| {
        assert_eq!(m.subject, "Café crème");
        assert_eq!(m.from.as_ref().unwrap().name.as_deref(), Some("Élodée"));
        let to: Vec<&str> = m.to.iter().map(|a| a.email.as_str()).collect();
        assert_eq!(to, ["anna@example.org", "bjorn@example.org"]);
        assert_eq!(m.to[1].name.as_deref(), Some("Björn"));
        assert_eq!(m.reply_to[0].email, "replies@example.fr");
        assert_eq!(m.sender.as_ref().unwrap().email, "list-bot@example.fr");
    }),
    ("attachments.eml", |m| {
        assert!(m.html.as_deref().unwrap().contains("cid:logo"));
        let atts: Vec<(&str, Option<&str>)> =
            m.attachments.iter().map(|a| (a.content_type.as_str(), a.filename.as_deref())).collect();
        assert_eq!(atts, [("image/png", None), ("application/pdf", Some("Rechnung März.pdf"))]);
        assert_eq!(m.attachments[1].data, b"%PDF-1.4 fake");
        assert_eq!(m.attachments[1].size, 13);
        assert_eq!(m.attachments[1].sha256, postdesk::model::sha256_hex(b"%PDF-1.4 fake"));
    }),
    ("autoreply.eml", |m| {
        assert_eq!(m.return_path.as_deref(), Some(""));
        assert_eq!(m.classification, Classification::AutoReply);
        assert_eq!(m.classification_reason.as_deref(), Some("Auto-Submitted: auto-replied"));
    }),
    ("ooo_subject.eml", |m| assert_eq!(m.classification, Classification::AutoReply)),
    ("bounce_rfc3464.eml", |m| {
        assert_eq!(m.classification, Classification::Bounce);
        assert!(m.classification_reason.as_deref().unwrap().contains("delivery-status"));
        let b = m.bounce.as_ref().unwrap();
        assert_eq!(b.recipients.len(), 1);
        assert_eq!(b.recipients[0].address, "Gone@Example.net");
        assert_eq!(b.recipients[0].status.as_deref(), Some("5.1.1"));
        assert_eq!(b.recipients[0].action.as_deref(), Some("failed"));
        assert!(b.recipients[0].is_permanent());
        assert_eq!(b.original_message_id.as_deref(), Some("ticket-42@example.org"));
    }),
    ("bounce_qmail.eml", |m| {
        assert_eq!(m.classification, Classification::Bounce);
        let b = m.bounce.as_ref().unwrap();
        let rcpts: Vec<&str> = b.recipients.iter().map(|r| r.address.as_str()).collect();
        assert_eq!(rcpts, ["nobody.here@example.net"]);
        assert_eq!(b.recipients[0].status.as_deref(), Some("5.1.1"));
        assert_eq!(b.original_message_id.as_deref(), Some("ticket-43@example.org"));
    }),
    ("list.eml", |m| {
        assert_eq!(m.classification, Classification::List);
        assert_eq!(m.classification_reason.as_deref(), Some("List-Id header"));
    }),
    ("malformed.eml", |m| {
        assert_eq!(m.subject, "Broken");
        assert_eq!(m.date, None);
        assert!(m.warnings.iter().any(|w| w.contains("Message-ID")), "{:?}", m.warnings);
        assert!(m.warnings.iter().any(|w| w.contains("Date")), "{:?}", m.warnings);
        assert_eq!(m.header("X-Bad"), Some(""));
    }),
];

fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/fixtures/parse/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn to_crlf(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len() + raw.len() / 20);
    for &b in raw {
        if b == b'\n' {
            out.push(b'\r');
        }
        out.push(b);
    }
    out
}

#[test]
fn fixtures_with_lf_and_crlf() {
    for (name, check) in CASES {
        let lf = fixture(name);
        for (ending, raw) in [("LF", lf.clone()), ("CRLF", to_crlf(&lf))] {
            let mail = parse_mail(&raw, &Limits::default()).unwrap_or_else(|e| panic!("{name} ({ending}): {e}"));
            assert_eq!(mail.size, raw.len());
            eprintln!("checking {name} ({ending})");
            check(&mail);
        }
    }
}

#[test]
fn every_fixture_has_a_case() {
    let dir = format!("{}/tests/fixtures/parse", env!("CARGO_MANIFEST_DIR"));
    for entry in std::fs::read_dir(dir).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        assert!(CASES.iter().any(|(n, _)| *n == name), "{name} has no test case");
    }
}

#[test]
fn not_mail_is_rejected() {
    let jpeg = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01";
    let mut random = Vec::new();
    let mut x: u32 = 12345;
    for _ in 0..4096 {
        x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
        random.push((x >> 16) as u8);
    }
    for input in [&jpeg[..], &random, b"Dear support,\nmy printer is broken.\n", b""] {
        assert!(matches!(parse_mail(input, &Limits::default()), Err(Rejection::NotMail(_))), "{input:?}");
    }
}

/// Regression: mail starting with blank lines or spaces (as several real files do) was refused as "not mail".
#[test]
fn leading_blank_lines_or_spaces_before_the_headers_are_still_mail() {
    for prefix in ["\n\n", "   ", " \r\n\t\r\n", "\u{feff}\n"] {
        let raw = format!(
            "{prefix}From: Ann <ann@customer.example>\nSubject: Printer broken\nMessage-ID: <lw@x>\n\nIt is broken.\n"
        );
        let mail = parse_mail(raw.as_bytes(), &Limits::default()).unwrap_or_else(|e| panic!("{prefix:?}: {e}"));
        assert_eq!(mail.subject, "Printer broken", "{prefix:?}");
        assert_eq!(mail.from.as_ref().map(|a| a.email.as_str()), Some("ann@customer.example"));
        assert_eq!(mail.text.trim(), "It is broken.");
        assert_eq!(mail.size, raw.len());
    }
    // Whitespace in front of text that is not mail does not make it mail.
    assert!(matches!(parse_mail(b"\n\n  Dear support,\n", &Limits::default()), Err(Rejection::NotMail(_))));
}

#[test]
fn fifty_megabytes_is_too_large() {
    let mut raw = b"From: a@example.com\nSubject: big\n\n".to_vec();
    raw.resize(50 * 1024 * 1024, b'a');
    assert!(matches!(parse_mail(&raw, &Limits::default()), Err(Rejection::TooLarge { .. })));
}

#[test]
fn hundred_thousand_parts_are_too_many() {
    let mut raw = b"From: a@example.com\nContent-Type: multipart/mixed; boundary=\"p\"\n\n".to_vec();
    for i in 0..100_000 {
        raw.extend_from_slice(format!("--p\nContent-Type: text/plain\n\n{i}\n").as_bytes());
    }
    raw.extend_from_slice(b"--p--\n");
    let err = parse_mail(&raw, &Limits::default()).unwrap_err();
    assert_eq!(err, Rejection::TooManyParts { limit: 500 });
    assert!(err.to_string().contains("limits.max_mime_parts"));
}

#[test]
fn ten_thousand_deep_multipart_is_too_deep() {
    let mut raw = b"From: a@example.com\nSubject: deep\n".to_vec();
    for i in 0..10_000 {
        raw.extend_from_slice(format!("Content-Type: multipart/mixed; boundary=\"d{i}\"\n\n--d{i}\n").as_bytes());
    }
    raw.extend_from_slice(b"Content-Type: text/plain\n\nbottom\n");
    let err = parse_mail(&raw, &Limits::default()).unwrap_err();
    assert_eq!(err, Rejection::TooDeep { limit: 16 });
    assert!(err.to_string().contains("limits.max_nesting_depth"));
}

#[test]
fn the_pipeline_parse_keeps_each_attachments_hash_and_size_but_not_its_bytes() {
    let raw = fixture("attachments.eml");
    let full = parse_mail(&raw, &Limits::default()).unwrap();
    let hashed = postdesk::parse::parse_mail_hashed(&raw, &Limits::default()).unwrap();
    assert_eq!(hashed.attachments.len(), full.attachments.len());
    for (h, f) in hashed.attachments.iter().zip(&full.attachments) {
        assert!(h.data.is_empty() && !f.data.is_empty());
        assert_eq!((h.size, &h.sha256, &h.filename), (f.data.len(), &f.sha256, &f.filename));
    }
}

/// mail-parser 0.11 panics on a message/rfc822 part nested in another whose body is empty (found by fuzzing); the
/// panic must stay inside `parse_mail`, which answers with a rejection the pipeline quarantines.
#[test]
fn a_panic_inside_mail_parser_is_a_rejection_not_a_crash() {
    let raw = std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fuzz-corpus/mail/nested_rfc822_mail_parser_panic.eml"),
    )
    .unwrap();
    let result = std::panic::catch_unwind(|| parse_mail(&raw, &Limits::default()));
    let parsed = result.expect("parse_mail let a panic escape");
    assert!(matches!(parsed, Err(Rejection::ParserFailed(_))), "{:?}", parsed.map(|m| m.subject));
}
