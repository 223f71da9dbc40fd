//! Who failed, and for good or for now. Recipients come from the report, never from the returned mail: the DSN's
//! `Original-Recipient`/`Final-Recipient` (RFC 3464 §2.3.1–2), ARF's `Original-Rcpt-To` (RFC 5965 §3.2), Exim's and
//! Gmail's `X-Failed-Recipients`, else the addresses a free-text notice names next to an SMTP reply or under its
//! "failed" sentence — skipping the bounce's own parties, `MAIL FROM:<…>` echoes and the MTA's help addresses.
//!
//! Permanence: the DSN `Action:` decides (`failed` is final, `delayed` is a warning, RFC 3464 §2.3.3); a DSN block
//! without one goes by its own status or SMTP reply code class. A free-text notice goes by its wording: a "still
//! trying / will retry / delayed" warning is temporary unless it also says the MTA gave up; any other returned mail
//! is a failed delivery, so permanent. Whether that failure should stop us mailing the address is a second
//! question, answered from the status by [`crate::model::FailedRecipient::suppresses_address`].

use std::sync::LazyLock;

use regex::Regex;

use super::{Evidence, header};
use crate::model::{BounceInfo, FailedRecipient, Permanence};

static FIELD: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?im)^([A-Za-z-]+)[ \t]*:[ \t]*(.*)$").expect("valid regex"));
static ADDR: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9-]+)+")
        .expect("valid regex")
});
static STATUS: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b").expect("valid regex"));
static SMTP_CODE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?:^|[\s:;(])([45])[0-5]\d(?:[\ -]|$)").expect("valid regex"));
static MSG_ID: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?im)^[ \t>]*Message-ID:[ \t]*<([^>\s]+)>").expect("valid regex"));

/// A notice that the MTA is still trying: a warning, not a failure.
static STILL_TRYING: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?ix)will\ (?:continue\ to\ )?(?:retry|try|keep\ trying|attempt)|still\ (?:trying|being\ retried|undelivered)|keep\ trying
        |not\ yet\ been\ delivered|delivery\ attempts\ will\ continue|no\ action\ is\ required|this\ is\ (?:only\ |just\ )?a\ warning
        |(?:has\ been|was|is)\ delayed|warning:\ (?:could\ not\ send|message)|delivery\ (?:status\ notification\ \(delay\)|delayed)
        |temporarily\ deferred|deferred\ delivery|wird\ erneut\ versucht|weiterhin\ versucht|verz[öo]gert|retard[ée]|retrasad|ritardat
        |vertraagd|f[öo]rdr[öo]jd|forsinket|opóźnion|задержан",
    )
    .expect("valid regex")
});

/// Wording that says the MTA has stopped: overrides "retry" phrasing elsewhere in the same notice.
static GAVE_UP: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)(?:not|never)\ going\ to\ try\ again|will\ not\ (?:be\ )?retr|won't\ retry|gave\ up|giving\ up|permanent(?:ly)?\ (?:error|fail)|retry\ (?:time(?:out)?|period)\ (?:not\ reached\ for\ any\ host\ after\ a\ long\ failure\ period|exceeded)|too\ long\ in\ the\ queue|been\ in\ the\ queue\ too\ long")
        .expect("valid regex")
});

pub(super) fn bounce_info(e: &Evidence<'_>) -> BounceInfo {
    let mut recipients: Vec<FailedRecipient> = e.delivery_status.iter().flat_map(|d| dsn_recipients(d)).collect();
    if recipients.is_empty() {
        recipients = e.feedback_report.iter().flat_map(|d| feedback_recipients(d)).collect();
    }
    if recipients.is_empty() {
        recipients = ses_recipients(e.text);
    }
    if recipients.is_empty() {
        recipients = failed_recipients_header(e);
    }
    if recipients.is_empty() {
        recipients = text_recipients(e);
    }
    if recipients.is_empty()
        && let Some(to) = &e.returned_to
    {
        recipients.push(FailedRecipient { address: to.clone(), status: None, action: None, permanence: None });
    }
    let notice = returned_cut(e.text);
    let warning = (STILL_TRYING.is_match(e.subject) || STILL_TRYING.is_match(head(notice, 4096)))
        && !GAVE_UP.is_match(head(notice, 4096));
    for r in &mut recipients {
        if r.permanence.is_none()
            && !matches!(r.action.as_deref(), Some("delivered" | "relayed" | "expanded" | "feedback" | "deliverable"))
        {
            r.permanence = Some(by_wording(warning));
        }
    }
    let mut seen = std::collections::HashSet::new();
    recipients.retain(|r| r.address.contains('@') && seen.insert(r.address.to_ascii_lowercase()));
    let original_message_id = e.returned_message_id.clone().or_else(|| {
        let returned = e.returned_headers.as_deref().unwrap_or(e.text);
        MSG_ID.captures(returned).map(|c| c[1].to_string())
    });
    BounceInfo { recipients, original_message_id }
}

fn head(text: &str, max: usize) -> &str {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// RFC 3464 §2.3.3: `failed` is final, `delayed` a warning; other actions are not failures at all.
fn by_action(action: Option<&str>) -> Option<Permanence> {
    match action? {
        "failed" | "failure" => Some(Permanence::Permanent),
        "delayed" | "delay" | "transient" => Some(Permanence::Temporary),
        _ => None,
    }
}

/// A free-text notice without an Action field: a returned mail is a failed delivery (whatever its reason, a full
/// mailbox included, and whatever class the transcript's code has: the MTA has stopped trying), unless the notice
/// is a warning that it is still trying.
fn by_wording(warning: bool) -> Permanence {
    if warning { Permanence::Temporary } else { Permanence::Permanent }
}

/// A DSN block without an Action field: the status class (RFC 3463 §3.1: 4 is transient, 5 permanent).
fn by_status(status: &str) -> Option<Permanence> {
    match status.chars().next()? {
        '5' => Some(Permanence::Permanent),
        '4' => Some(Permanence::Temporary),
        _ => None,
    }
}

/// Amazon SES notifications are JSON (possibly JSON inside a JSON string, hence the optional backslashes).
fn ses_recipients(text: &str) -> Vec<FailedRecipient> {
    static SES: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r#"\\?"(?:emailAddress|recipients)\\?"\s*:\s*\[?\s*\\?"([^"\\\s]+@[^"\\\s]+)\\?"(?:[^}]*?\\?"status\\?"\s*:\s*\\?"([245]\.\d+\.\d+))?"#).expect("valid regex")
    });
    if !text.contains("notificationType") {
        return Vec::new();
    }
    SES.captures_iter(text)
        .map(|c| {
            let status = c.get(2).map(|m| m.as_str().to_string());
            let permanence = status.as_deref().and_then(by_status);
            FailedRecipient { address: c[1].to_string(), status, action: None, permanence }
        })
        .collect()
}

/// The address in a DSN address field (RFC 3464 §2.3.1): `rfc822;` and angle brackets stripped, and the first
/// real address where an MTA wrote more (`|/usr/bin/prog user@x`, `@route:user@x`).
fn dsn_address(value: &str) -> String {
    let v = value.split_once(';').map_or(value, |(_, a)| a);
    let v = v.trim().trim_matches(['<', '>', '"', '\'', ' ']).trim();
    let simple = !v.contains([' ', ':', '|', '<', '>', '"', '\'']) && v.matches('@').count() == 1;
    if simple {
        return v.to_string();
    }
    ADDR.find_iter(v).map(|m| clean(m.as_str())).next().unwrap_or_else(|| v.to_string())
}

/// An address without stray quotes and trailing punctuation.
fn clean(address: &str) -> String {
    address.trim_matches(['\'', '"', '.', '`', '=']).to_string()
}

/// Per-recipient blocks of a `message/delivery-status` body (RFC 3464 §2.1): the first block is per-message.
fn dsn_recipients(dsn: &str) -> Vec<FailedRecipient> {
    let dsn = dsn.replace("\r\n", "\n");
    let mut out = Vec::new();
    for block in split_blocks(&dsn) {
        let unfolded = block.replace("\n ", " ").replace("\n\t", " ");
        let (mut final_rcpt, mut original, mut action, mut status, mut diagnostic) = (None, None, None, None, None);
        for c in FIELD.captures_iter(&unfolded) {
            let value = c[2].trim();
            match c[1].to_ascii_lowercase().as_str() {
                "final-recipient" => final_rcpt = Some(dsn_address(value)),
                "original-recipient" => original = Some(dsn_address(value)),
                "action" => action = Some(value.split_whitespace().next().unwrap_or("").to_ascii_lowercase()),
                "status" => status = STATUS.find(value).map(|m| m.as_str().to_string()),
                "diagnostic-code" => diagnostic = Some(value.to_string()),
                _ => {}
            }
        }
        let status = status.or_else(|| diagnostic.as_deref().and_then(|d| STATUS.find(d)).map(|m| m.as_str().into()));
        let usable = |a: &Option<String>| a.as_ref().is_some_and(|a| ADDR.is_match(a));
        // RFC 3464 §2.3.2: Final-Recipient is the address the reporting MTA tried. Where that is an MTA's internal
        // rewrite (Exchange's IMCEAEX- X.500 wrapping, a host-local domain), Original-Recipient (§2.3.1) is the
        // address as it was given.
        let internal = |a: &Option<String>| a.as_deref().is_some_and(is_internal_address);
        let address = if usable(&final_rcpt) && !(internal(&final_rcpt) && usable(&original)) {
            final_rcpt
        } else {
            original.filter(|a| a.contains('@'))
        };
        if let Some(address) = address {
            let mut permanence = by_action(action.as_deref());
            if permanence.is_none() && action.is_none() {
                let code = status.clone().or_else(|| smtp_class(diagnostic.as_deref().unwrap_or("")));
                permanence = code.as_deref().and_then(by_status);
            }
            out.push(FailedRecipient { address, status, action, permanence });
        }
    }
    out
}

/// An address only the receiving site's own MTAs know: Exchange's encapsulated X.500/Notes addresses
/// (`IMCEAEX-…@domain`), or one in a domain that does not resolve outside a network (`.local`, `.internal` …).
fn is_internal_address(address: &str) -> bool {
    let lower = address.to_ascii_lowercase();
    let (local, domain) = lower.rsplit_once('@').unwrap_or((&lower, ""));
    local.starts_with("imcea")
        || !domain.contains('.')
        || [".local", ".localdomain", ".internal", ".lan", ".localhost", ".intranet", ".corp", ".home.arpa"]
            .iter()
            .any(|tld| domain.ends_with(tld))
}

/// Blank-line separated blocks; a line of whitespace separates too.
fn split_blocks(text: &str) -> Vec<String> {
    let mut blocks = vec![String::new()];
    for line in text.split('\n') {
        if line.trim().is_empty() {
            blocks.push(String::new());
        } else if let Some(b) = blocks.last_mut() {
            b.push_str(line);
            b.push('\n');
        }
    }
    blocks.retain(|b| !b.is_empty());
    blocks
}

/// The class of an SMTP reply code in a diagnostic (`550 …` → "5").
fn smtp_class(text: &str) -> Option<String> {
    SMTP_CODE.captures(text).map(|c| c[1].to_string())
}

/// ARF (RFC 5965 §3.1): the reported recipient is `Original-Rcpt-To`, else `Removal-Recipient`.
fn feedback_recipients(report: &str) -> Vec<FailedRecipient> {
    FIELD
        .captures_iter(report)
        .filter(|c| ["original-rcpt-to", "removal-recipient"].contains(&c[1].to_ascii_lowercase().as_str()))
        .map(|c| FailedRecipient {
            address: dsn_address(&c[2]),
            status: None,
            action: Some("feedback".into()),
            permanence: None,
        })
        .filter(|r| r.address.contains('@'))
        .collect()
}

/// Exim and Gmail name every failed recipient in `X-Failed-Recipients`; the status is looked up in the text.
fn failed_recipients_header(e: &Evidence<'_>) -> Vec<FailedRecipient> {
    let Some(value) = header(e, "X-Failed-Recipients") else { return Vec::new() };
    let notice = returned_cut(e.text);
    let lines: Vec<&str> = notice.lines().collect();
    let failed: Vec<String> = ADDR.find_iter(value).map(|m| clean(m.as_str())).collect();
    let single = failed.len() == 1;
    failed
        .into_iter()
        .map(|address| {
            // Near the address, or its local part (Exim lists "kijitora" for a local delivery); a notice about one
            // recipient only is about that one, so its first status is the recipient's.
            let local = address.split('@').next().unwrap_or("").to_string();
            let status = status_near(&lines, &address)
                .or_else(|| status_near(&lines, &local))
                .or_else(|| single.then(|| STATUS.find(notice).map(|m| m.as_str().to_string())).flatten());
            FailedRecipient { address, status, action: Some("failed".into()), permanence: None }
        })
        .collect()
}

/// The enhanced status on, or in the three lines after, the first line naming `address`.
fn status_near(lines: &[&str], address: &str) -> Option<String> {
    let lower = address.to_ascii_lowercase();
    let i = lines.iter().position(|l| l.to_ascii_lowercase().contains(&lower))?;
    let window = lines[i..(i + 4).min(lines.len())].join(" ");
    STATUS.find(&window).map(|s| s.as_str().to_string())
}

/// Local parts of the addresses MTAs put in their help text ("contact postmaster@…").
const HELP_LOCALS: &[&str] = &[
    "mailer-daemon",
    "postmaster",
    "double-bounce",
    "abuse",
    "support",
    "help",
    "helpdesk",
    "hostmaster",
    "noc",
    "webmaster",
];

/// A mailing list's own machinery (`owner-x`, `x-request`, `x-bounces+…`): named in footers, never a recipient.
fn is_list_admin(local: &str) -> bool {
    local.starts_with("owner-")
        || local.ends_with("-request")
        || local.ends_with("-owner")
        || local.contains("-bounces")
}

/// Recipients of a non-standard bounce: addresses on lines that carry an SMTP reply, in qmail `<x@y>:` blocks, or
/// indented under the "failed" sentence, skipping the bounce's own parties and anything after the returned mail.
fn text_recipients(e: &Evidence<'_>) -> Vec<FailedRecipient> {
    static GENERATED: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"(?i)generated\ from|alias\ for").expect("valid regex"));
    static SENDER_ECHO: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"(?i)(?:mail\s+from|envelope-from|return-path|sender|from)\s*:?\s*<?\s*$").expect("valid regex")
    });
    let text = returned_cut(e.text);
    let own: Vec<String> = e.from.into_iter().chain(e.to.iter()).map(|a| a.key()).collect();
    let lines: Vec<&str> = text.lines().collect();
    let mut scored: Vec<(u8, FailedRecipient)> = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        if scored.len() >= MAX_CANDIDATES {
            break;
        }
        // Per line, not per address: a hostile line of thousands of addresses must cost linear time (fuzzing found
        // a 53 KB line that took seconds when each address re-read everything before it).
        let mut line_facts: Option<(Option<String>, bool)> = None;
        for m in ADDR.find_iter(line).take(MAX_ADDRESSES_PER_LINE) {
            let addr = clean(m.as_str());
            let before = tail(&line[..m.start()], CONTEXT_BYTES);
            let after = &line[m.end()..];
            if own.contains(&addr.to_ascii_lowercase()) || SENDER_ECHO.is_match(before) {
                continue;
            }
            // Exim's "(generated from x@y)" names the alias we sent to, not the address that failed.
            if GENERATED.is_match(before) {
                continue;
            }
            let (status, smtp_code) = line_facts
                .get_or_insert_with(|| {
                    let window: String = lines[i..(i + 3).min(lines.len())].join(" ");
                    (STATUS.find(&window).map(|s| s.as_str().to_string()), SMTP_CODE.is_match(line))
                })
                .clone();
            let score = if before.trim() == "<" && after.starts_with(">:") {
                3
            } else if smtp_code || status.is_some() {
                2
            } else if line.starts_with(' ') || line.starts_with('\t') || before.trim().is_empty() {
                1
            } else {
                0
            };
            let local = addr.split('@').next().unwrap_or("").to_ascii_lowercase();
            if score < 3 && (HELP_LOCALS.contains(&local.as_str()) || is_list_admin(&local)) {
                continue;
            }
            let r = FailedRecipient { address: addr, status, action: Some("failed".into()), permanence: None };
            scored.push((score, r));
        }
    }
    let best = scored.iter().map(|(s, _)| *s).max().unwrap_or(0);
    let mut seen = std::collections::HashSet::new();
    scored
        .into_iter()
        .filter(|(s, r)| *s == best && seen.insert(r.address.to_ascii_lowercase()))
        .map(|(_, r)| r)
        .collect()
}

/// Candidate addresses read from one bounce text at most: bounds the work on a hostile notice.
const MAX_CANDIDATES: usize = 4096;
/// Addresses read from one line of a free-text bounce; real notices name one or a few per line.
const MAX_ADDRESSES_PER_LINE: usize = 64;
/// How much of a line before an address tells what it is ("MAIL FROM:<", "generated from", "<").
const CONTEXT_BYTES: usize = 80;

/// The last `max` bytes of `text`, or a little more to stay on a character boundary.
fn tail(text: &str, max: usize) -> &str {
    let mut start = text.len().saturating_sub(max);
    while !text.is_char_boundary(start) {
        start -= 1;
    }
    &text[start..]
}

/// The part of a bounce text before the returned original mail starts.
fn returned_cut(text: &str) -> &str {
    static CUT: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"(?im)^(?:[ \t]*-+ ?(?:original message|below this line is a copy|this is a copy)|[ \t]*-+ ?(?:Original|Returned|Undelivered) (?:message|mail)|Received: from |Return-Path: )").expect("valid regex")
    });
    CUT.find(text).map_or(text, |m| &text[..m.start()])
}
