//! What each fuzz target runs on one input. A target must not panic and must finish in time, whatever the bytes.

use postdesk::agents::auth::{AuthContext, prove_agent};
use postdesk::agents::commands::parse_agent_reply;
use postdesk::config::Limits;
use postdesk::model::{Address, Header, InboundMail};
use postdesk::outbound::Signer;
use postdesk::parse::subject::normalize_subject;
use postdesk::parse::{parse_mail, strip};
use postdesk::rules::{RouteContext, RuleSet, Vocabulary};
use postdesk::token::TokenFormat;

pub struct Target {
    pub name: &'static str,
    /// Inputs are cut to this many bytes after mutation.
    pub max_len: usize,
    /// Byte strings the mutator likes to insert: the syntax the code under test looks for.
    pub dictionary: &'static [&'static [u8]],
    /// Extra seeds made at start (beside tests/fuzz-corpus/<name>/).
    pub seeds: fn() -> Vec<Vec<u8>>,
    pub run: fn(&[u8]),
}

const MAIL_WORDS: &[&[u8]] = &[
    b"\r\n",
    b"\n\n",
    b"\r\n\r\n",
    b"--",
    b"Content-Type: multipart/mixed; boundary=",
    b"Content-Type: message/rfc822\r\n\r\n",
    b"Content-Type: text/html\r\n\r\n<div>",
    b"Content-Transfer-Encoding: base64\r\n\r\n",
    b"Content-Transfer-Encoding: quoted-printable\r\n\r\n=C3=",
    b"Content-Disposition: attachment; filename*=utf-8''",
    b"=?utf-8?b?",
    b"=?iso-8859-1?q?",
    b"?=",
    b"Cc: a@b.c, \"x\" <d@e.f>, g:h@i.j;",
    b"Auto-Submitted: auto-replied\r\n",
    b"report-type=delivery-status",
    b"References: <a@b> <c@d>\r\n",
    b"\x1b[31m",
    b"\xc3\xa9",
    b"\xff\xfe",
    b"> ",
    b"On Mon, Bob wrote:\n",
];

const TEXT_WORDS: &[&[u8]] = &[
    b"\n",
    b"\r\n",
    b"> ",
    b">> ",
    b"-- \n",
    b"On Mon, 1 Dec 2025, Bob <bob@x.test> wrote:\n",
    b"-----Original Message-----\n",
    b"From: Bob\nSent: Monday\nTo: x\nSubject: y\n",
    b"Von: ",
    b"Le lun. 1 d\xc3\xa9c. 2025 \xc3\xa0 10:00, Bob a \xc3\xa9crit :\n",
    b"________________________________\n",
    b"Sent from my iPhone\n",
    b"#close\n",
    b"#note\n",
    b"#assign <a@b.c>\n",
    b"#priority very high\n",
    b"#tag +a -b, c\n",
    b"#merge #2026112310000012\n",
    b"#queue ",
    b"[Ticket#2026112310000012]",
    b"[Ticket#",
    b"Re: ",
    b"AW: ",
    b"Fwd: ",
    b"\xc4\xb0",
    b"\xe2\x80\xae",
];

const RULE_WORDS: &[&[u8]] = &[
    b"[[rule]]\nname = \"x\"\n",
    b"[rule.when]\n",
    b"[rule.then]\n",
    b"subject = { regex = '(?P<n>\\d+)' }\n",
    b"body = { contains = \"x\", case_sensitive = true }\n",
    b"header = { name = \"X-Spam\", exists = true }\n",
    b"any = [",
    b"all = [",
    b"not = {",
    b"tags = [\"+t-${n}\"]\n",
    b"queue = \"billing\"\n",
    b"stop = true\n",
    b"followups = true\n",
    b"'''",
    b"\"\"\"",
    b"{",
    b"}",
    b"]",
    b"\\u0000",
    b"(?i)",
    b"((((((((((",
    b"a{1000}{1000}",
];

pub fn all() -> Vec<Target> {
    vec![
        Target { name: "mail", max_len: 64 * 1024, dictionary: MAIL_WORDS, seeds: no_seeds, run: mail },
        Target { name: "strip", max_len: 64 * 1024, dictionary: TEXT_WORDS, seeds: no_seeds, run: strip_reply },
        Target { name: "subject", max_len: 4 * 1024, dictionary: TEXT_WORDS, seeds: no_seeds, run: subject },
        Target { name: "rules", max_len: 16 * 1024, dictionary: RULE_WORDS, seeds: no_seeds, run: rules },
        Target { name: "commands", max_len: 16 * 1024, dictionary: TEXT_WORDS, seeds: no_seeds, run: commands },
        Target { name: "signature", max_len: 4 * 1024, dictionary: MAIL_WORDS, seeds: signature_seeds, run: signature },
    ]
}

fn no_seeds() -> Vec<Vec<u8>> {
    Vec::new()
}

fn text(input: &[u8]) -> String {
    String::from_utf8_lossy(input).into_owned()
}

/// Parsing and classification: the whole of `parse_mail`, then what the CLI and replies do with the result.
fn mail(input: &[u8]) {
    if let Ok(m) = parse_mail(input, &Limits::default()) {
        let _ = postdesk::inert::line(&m.subject);
        let _ = postdesk::outbound::templates::excerpt(&m.visible_text, 4096);
        let _ = m.recipient_keys();
        let _ = m.parent_ids();
    }
}

fn strip_reply(input: &[u8]) {
    let _ = strip::visible_text(&text(input));
}

/// The first line, when it is a token format the config accepts (`{number}` once, text before it), is the format;
/// the rest is the subject.
fn subject(input: &[u8]) {
    let s = text(input);
    let valid = |f: &str| f.matches("{number}").count() == 1 && !TokenFormat::new(f).prefix().trim().is_empty();
    let (format, subject) = match s.split_once('\n') {
        Some((f, rest)) if valid(f) => (f, rest),
        _ => ("[Ticket#{number}]", s.as_str()),
    };
    let tokens = TokenFormat::new(format);
    for t in tokens.find_all(subject) {
        assert!(subject.get(t.start..t.end).is_some(), "token span {}..{} is not in the subject", t.start, t.end);
    }
    let stripped = tokens.strip(subject);
    let _ = normalize_subject(&stripped);
    let _ = postdesk::token::is_valid_number(subject);
}

/// Rule-file loading, and when the file loads, routing and explaining a sample mail with it.
fn rules(input: &[u8]) {
    let vocab = Vocabulary {
        queues: ["support", "billing", "sales", "vip"].map(String::from).to_vec(),
        templates: ["acknowledgement", "rejection"].map(String::from).to_vec(),
    };
    let Ok(set) = RuleSet::load_str("fuzz.toml", &text(input), &vocab) else { return };
    let mail = sample_mail();
    for is_followup in [false, true] {
        let ctx = RouteContext { is_followup, current_queue: Some("support"), default_queue: "support" };
        let _ = set.route(&mail, &ctx);
        let _ = set.explain(&mail, &ctx).to_string();
    }
}

fn commands(input: &[u8]) {
    let _ = parse_agent_reply(&text(input));
}

const KEY: [u8; 32] = [0x5a; 32];
const AUTHSERV: &str = "mx.example.test";

/// Line 1 an id or address, line 2 an agent; the rest header lines above a mail from that agent, with line 1 as
/// In-Reply-To and recipient: Message-ID and reply-address signatures, then the whole agent proof, whose
/// `Authentication-Results` reading is the other half of "signature verification".
fn signature(input: &[u8]) {
    let s = text(input);
    let mut lines = s.split('\n');
    let id = lines.next().unwrap_or_default();
    let agent = lines.next().unwrap_or_default();
    let signer = Signer::from_key(KEY);
    let _ = signer.verify_message_id(id);
    let _ = signer.verify_agent_message_id(id, agent);
    let _ = signer.verify_reply_address(id, agent);
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(name, value)| Header { name: name.trim().to_string(), value: value.trim().to_string() })
        .collect();
    let mail = InboundMail {
        from: Some(Address::new(Some("Agent"), agent)),
        to: vec![Address::new(None, id)],
        in_reply_to: vec![id.trim_matches(['<', '>']).to_string()],
        headers,
        ..InboundMail::default()
    };
    let own = ["support@example.test".to_string()];
    let ctx = AuthContext { signer: &signer, own_addresses: &own, authserv_id: Some(AUTHSERV) };
    let _ = prove_agent(&mail, agent, &ctx);
}

/// Valid signed ids and addresses (so mutations start next to a signature that verifies) and A-R blocks.
fn signature_seeds() -> Vec<Vec<u8>> {
    let signer = Signer::from_key(KEY);
    let agent = "alice@example.test";
    let ar = format!(
        "Authentication-Results: {AUTHSERV}; dkim=pass header.d=example.test; dmarc=pass header.from=example.test\n\
         Received: from mx.example.test by {AUTHSERV}\n\
         Authentication-Results: {AUTHSERV}; dkim=fail (\"pass\") header.i=@example.test reason=\"dkim=pass\"\n"
    );
    [
        signer.message_id("2026112310000012", "example.test"),
        signer.agent_message_id("2026112310000012", agent, "example.test"),
        signer.reply_address("support@example.test", "2026112310000012", agent),
        "<pd.2026112310000012.0123456789abcdef.00112233445566778899@example.test>".to_string(),
    ]
    .into_iter()
    .map(|id| format!("{id}\n{agent}\n{ar}").into_bytes())
    .collect()
}

fn sample_mail() -> InboundMail {
    parse_mail(
        b"From: Carol <carol@customer.test>\r\nTo: billing@example.test\r\nCc: x@y.test\r\n\
          Subject: Invoice #4711 overdue\r\nX-Spam-Flag: NO\r\n\r\nPlease refund invoice 4711.\r\n",
        &Limits::default(),
    )
    .expect("the sample mail parses")
}
