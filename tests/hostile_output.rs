//! Issue 10, items 3 to 5, replayed through the real binary: terminal escapes in a mail, large bodies, many Cc.
//! Each test is named after the attack and fails when its control is removed. Speed is measured by
//! scripts/hostile-bench.sh, never asserted here.

mod common;

use common::*;
use postdesk::config::Limits;
use postdesk::inert::is_unsafe;

const SMTP: &str = "[smtp]\nhost = \"127.0.0.1\"\nport = 9\ntls = \"plain\"\n";
const AGENT: &str = "[[role]]\nname = \"first-level\"\nqueues = [\"support\"]\n\
                     [[agent]]\naddress = \"alice@example.test\"\nname = \"Alice Agent\"\nroles = [\"first-level\"]\n";

/// ESC (colours, clear screen), OSC 0 (window title) ended by BEL, NUL, a C1 CSI, a bidi override, a lone CR.
const HOSTILE: &str = "\x1b[2J\x1b]0;owned\x07\0\u{9b}31m\u{202e}\rX";

fn hostile_mail() -> Vec<u8> {
    let b64 = |s: &str| {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(s)
    };
    format!(
        "From: =?utf-8?b?{name}?= <carol@customer.test>\r\nTo: support@example.test\r\n\
         Subject: =?utf-8?b?{subject}?=\r\nMessage-ID: <esc@customer.test>\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain; charset=utf-8\r\n\
         Content-Transfer-Encoding: base64\r\n\r\n{body}\r\n--b\r\nContent-Type: application/octet-stream\r\n\
         Content-Disposition: attachment; filename=\"=?utf-8?b?{file}?=\"\r\n\r\ndata\r\n--b--\r\n",
        name = b64(&format!("Carol {HOSTILE}")),
        subject = b64(&format!("Printer {HOSTILE} fire")),
        body = b64(&format!("Hello {HOSTILE}\nsecond line\n")),
        file = b64(&format!("report{HOSTILE}.pdf")),
    )
    .into_bytes()
}

/// No character a terminal acts on: C0 controls but line ends (LF, CRLF) and tab, DEL, C1 and bidi controls.
fn assert_inert(what: &str, bytes: &[u8]) {
    let text = String::from_utf8_lossy(bytes);
    let bad: Vec<char> =
        text.replace("\r\n", "\n").chars().filter(|&c| is_unsafe(c) && c != '\n' && c != '\t').collect();
    assert!(bad.is_empty(), "{what} printed raw control characters {bad:?}:\n{text}");
}

#[test]
fn terminal_escapes_in_a_mail_are_shown_escaped_by_ticket_show_and_list() {
    let env = Env::new();
    let out = env.ingest_bytes(&hostile_mail());
    assert!(out.status.success(), "{}", stderr(&out));
    let number = ticket_number(&stdout(&out));

    let show = env.run(&["ticket", "show", &number]);
    assert_inert("ticket show", &show.stdout);
    let text = stdout(&show);
    for field in
        ["Printer \\x1b[2J\\x1b]0;owned\\x07\\x00\\u{9b}31m\\u{202e}\\rX fire", "Hello \\x1b[2J", "report\\x1b"]
    {
        assert!(text.contains(field), "{field} not shown escaped in:\n{text}");
    }
    let list = env.run(&["ticket", "list"]);
    assert_inert("ticket list", &list.stdout);
    assert!(stdout(&list).contains("Printer \\x1b[2J"), "{}", stdout(&list));

    // JSON stays exact: the same characters, escaped by JSON itself.
    let json = env.ticket_json(&number);
    let subject = json["subject"].as_str().unwrap();
    assert!(subject.starts_with("Printer \x1b[2J\x1b]0;owned\x07\0\u{9b}31m\u{202e}"), "{subject:?}");
}

#[test]
fn terminal_escapes_in_a_file_name_are_shown_escaped_by_quarantine_list() {
    let env = Env::new();
    let path = env.dir.path().join("evil\x1b]0;owned\x07.eml");
    std::fs::write(&path, b"\x1b[2Jthis is not mail\n").unwrap();
    let out = env.run(&["ingest", path.to_str().unwrap()]);
    assert_inert("ingest", &out.stdout);
    let list = env.run(&["quarantine", "list"]);
    assert_inert("quarantine list", &list.stdout);
    assert!(stdout(&list).contains("evil\\x1b]0;owned\\x07.eml"), "{}", stdout(&list));
}

#[test]
fn terminal_escapes_in_a_mail_never_reach_the_acknowledgement() {
    let env = Env::with_extra(SMTP);
    env.ingest_bytes(&hostile_mail());
    let raw = queued("acknowledgement", &env).remove(0);
    let ack = postdesk::parse::parse_mail(&raw, &Limits::default()).unwrap();
    assert_inert("subject", ack.subject.as_bytes());
    assert!(ack.subject.contains("Printer \\x1b[2J"), "the subject, escaped: {}", ack.subject);
    assert_inert("text", ack.text.as_bytes());
    assert!(ack.text.contains("Hello Carol \\x1b[2J"), "the name, escaped: {}", ack.text);
    assert!(ack.text.contains("> Hello \\x1b[2J"), "the quote, escaped: {}", ack.text);
    let html = ack.html.unwrap_or_default();
    assert_inert("html", html.as_bytes());
}

#[test]
fn a_large_body_is_quoted_as_an_excerpt_in_the_acknowledgement() {
    let env = Env::with_extra(SMTP);
    let body = "all work and no play makes a large mail\r\n".repeat(25_000);
    let mail = format!(
        "From: carol@customer.test\r\nTo: support@example.test\r\nSubject: big\r\nMessage-ID: <big@customer.test>\r\n\
         Content-Type: text/plain\r\n\r\n{body}"
    );
    assert!(env.ingest_bytes(mail.as_bytes()).status.success());
    let raw = queued("acknowledgement", &env).remove(0);
    let max = Limits::default().max_quoted_bytes;
    // The text part and the HTML part each quote at most `max` bytes, plus the template's own words.
    assert!(raw.len() < 2 * max + 8 * 1024, "the acknowledgement of a 1 MB mail is {} bytes", raw.len());
    let ack = postdesk::parse::parse_mail(&raw, &Limits::default()).unwrap();
    assert!(ack.text.contains("more bytes not shown]"), "{}", ack.text);
}

#[test]
fn a_mail_with_many_cc_makes_at_most_max_ticket_parties_parties() {
    let env = Env::with_extra(&format!("{SMTP}{AGENT}[limits]\nmax_ticket_parties = 50\n"));
    let cc: Vec<String> = (0..300).map(|i| format!("user{i}@cc.test")).collect();
    let mail = format!(
        "From: carol@customer.test\r\nTo: support@example.test\r\nCc: {}\r\nSubject: copies\r\n\
         Message-ID: <cc@customer.test>\r\n\r\nPlease look, all of you.\r\n",
        cc.join(",\r\n ")
    );
    let number = ticket_number(&stdout(&env.ingest_bytes(mail.as_bytes())));
    let notification = outbox(&env).into_iter().find(|r| r["kind"] == "notification").expect("agent notified");
    let mid = notification["message_id"].as_str().unwrap();
    let answer = format!(
        "From: alice@example.test\r\nTo: support@example.test\r\nSubject: Re: [Ticket#{number}] copies\r\n\
         Message-ID: <answer@example.test>\r\nIn-Reply-To: <{mid}>\r\nReferences: <{mid}>\r\n\r\nFixed.\r\n"
    );
    let out = env.ingest_bytes(answer.as_bytes());
    assert!(stdout(&out).contains("agent alice@example.test (answer)"), "{}", stdout(&out));
    let reply = outbox(&env).into_iter().find(|r| r["kind"] == "agent-reply").expect("the answer is queued");
    let recipients = reply["recipients"].as_array().unwrap();
    assert_eq!(recipients.len(), 50, "customer and 49 Cc: {recipients:?}");
    assert_eq!(recipients[0], "carol@customer.test");
}

fn outbox(env: &Env) -> Vec<serde_json::Value> {
    let out = env.run(&["outbox", "list", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The raw bytes of every queued mail of `kind`.
fn queued(kind: &str, env: &Env) -> Vec<Vec<u8>> {
    let ids: Vec<String> = outbox(env)
        .into_iter()
        .filter(|r| r["kind"] == kind)
        .map(|r| r["message_id"].as_str().unwrap().to_string())
        .collect();
    assert!(!ids.is_empty(), "no {kind} queued");
    let store = postdesk::store::Store::open(&env.dir.path().join("state/postdesk.db")).unwrap();
    let due = store.due_outbox(i64::MAX, 1000).unwrap();
    due.into_iter().filter(|d| ids.contains(&d.message_id)).map(|d| d.raw).collect()
}

#[test]
fn huge_subject_names_filenames_and_headers_are_cut_when_parsed() {
    // Issue 10: a 20 MB subject became a 20 MB ticket title, acknowledgement subject and list line (276 MB peak);
    // 900,000 header lines cost 250 MB. What a person can read is kept, the rest cut.
    let long = "word ".repeat(200_000);
    let junk: String = (0..5000).map(|i| format!("X-Junk-{i}: {i}\r\n")).collect();
    let raw = format!(
        "From: \"{long}\" <carol@customer.test>\r\nTo: support@example.test, {}@x.test\r\nSubject: {long}\r\n\
         X-Big: {long}\r\n{junk}MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\
         Content-Type: text/plain\r\n\r\nhi\r\n--b\r\nContent-Type: application/pdf\r\n\
         Content-Disposition: attachment; filename=\"{}.pdf\"\r\n\r\ndata\r\n--b--\r\n",
        "a".repeat(300),
        "f".repeat(1000)
    );
    let mail = postdesk::parse::parse_mail(raw.as_bytes(), &Limits::default()).unwrap();
    assert_eq!(mail.subject.chars().count(), 1001, "1000 characters and an ellipsis");
    assert!(mail.subject.ends_with('…'));
    assert_eq!(mail.from.as_ref().unwrap().name.as_ref().unwrap().chars().count(), 257);
    assert_eq!(mail.to.len(), 1, "an address over 254 bytes (RFC 5321 §4.5.3.1.3) is dropped");
    assert_eq!(mail.attachments[0].filename.as_ref().unwrap().chars().count(), 256);
    assert_eq!(mail.headers.len(), 1000, "the first 1000 headers are kept");
    let big = mail.header("X-Big").unwrap();
    assert!(big.len() <= 64 * 1024, "a header value is decoded from its first 64 KiB, not {}", big.len());
}
