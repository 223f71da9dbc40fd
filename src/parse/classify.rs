//! Who sent this mail: a mail system reporting on delivery (bounce), an auto-responder, a mailing list, or a human.
//! The order is bounce > auto-reply > list > human: a vacation notice relayed by a list is still an auto-reply.
//!
//! Bounces follow RFC 3464 (`multipart/report; report-type=delivery-status`) where the MTA does, and the text
//! shapes of Exim, qmail, Postfix, Exchange, Lotus Notes and webmail providers where it does not. ARF feedback
//! reports (RFC 5965) and "delivered"/"relayed" DSNs are DSN-shaped automatic mail too, so they are classed as
//! bounces, and their recipients carry the DSN's action so later stages can tell a failure from a notice.
//! Auto-replies follow RFC 3834 (`Auto-Submitted`) and the de-facto headers and subjects of common responders.

use std::sync::LazyLock;

use regex::Regex;

use crate::model::{Address, BounceInfo, Classification, FailedRecipient, Header};

/// What the classifier looks at, gathered by `mod.rs` from the parsed tree.
#[derive(Debug, Default)]
pub struct Evidence<'a> {
    pub headers: &'a [Header],
    pub subject: &'a str,
    pub from: Option<&'a Address>,
    /// `Some("")` for the null sender.
    pub return_path: Option<&'a str>,
    /// Text body (plain, or converted from HTML).
    pub text: &'a str,
    /// Top-level Content-Type, lowercased `type/subtype`, and its `report-type` parameter.
    pub content_type: String,
    pub report_type: Option<String>,
    /// Contents of `message/delivery-status` parts (RFC 3464 §2).
    pub delivery_status: Vec<String>,
    /// Contents of `message/feedback-report` parts (RFC 5965).
    pub feedback_report: Vec<String>,
    /// Message-ID of a returned `message/rfc822` part, or the text of `text/rfc822-headers`.
    pub returned_message_id: Option<String>,
    pub returned_headers: Option<String>,
    /// First To address of the returned message: the recipient when the bounce text names none.
    pub returned_to: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub classification: Classification,
    pub reason: Option<String>,
    pub bounce: Option<BounceInfo>,
}

pub fn classify(e: &Evidence<'_>) -> Verdict {
    if let Some(reason) = bounce_reason(e) {
        return Verdict { classification: Classification::Bounce, reason: Some(reason), bounce: Some(bounce_info(e)) };
    }
    if let Some(reason) = auto_reply_reason(e) {
        return Verdict { classification: Classification::AutoReply, reason: Some(reason), bounce: None };
    }
    if let Some(reason) = list_reason(e) {
        return Verdict { classification: Classification::List, reason: Some(reason), bounce: None };
    }
    Verdict { classification: Classification::Human, reason: None, bounce: None }
}

fn header<'a>(e: &Evidence<'a>, name: &str) -> Option<&'a str> {
    e.headers.iter().find(|h| h.name.eq_ignore_ascii_case(name)).map(|h| h.value.trim())
}

fn has_header(e: &Evidence<'_>, name: &str) -> bool {
    header(e, name).is_some()
}

/// The start of the body: bounce and out-of-office phrasing comes first; quoted history later must not count.
fn body_head<'a>(e: &Evidence<'a>, max: usize) -> &'a str {
    let mut end = e.text.len().min(max);
    while !e.text.is_char_boundary(end) {
        end -= 1;
    }
    &e.text[..end]
}

static BOUNCE_SUBJECT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?ix)undeliver(?:ed|able)|returned\ mail|return(?:ed)?\ to\ sender|mail\ delivery\ (?:failed|failure|problem|system)
        |delivery\ (?:status\ notification|failure|notification|has\ failed|problem|report)|failure\ notice|non[-\ ]?deliver
        |could\ not\ (?:be\ )?deliver|delivery\ failed|mail\ (?:system\ )?error|warning:\ could\ not\ send|message\ not\ delivered
        |not\ delivered|rejected|bounced?\b|delayed\ mail|delivery\ (?:delayed|status)|mailbox\ (?:unavailable|full)|error\ sending
        |メールエラー|配信エラー|配送エラー|配信不能|不達|エラー通知|nicht\ zustellbar|unzustellbar|non\ remis|no\ se\ puede\ entregar|mail\ could\ not|sending\ failed|permanent\ error",
    )
    .unwrap()
});

static BOUNCE_BODY: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?ix)this\ is\ the\ mail\ system\ at\ host|delivery\ to\ the\ following\ recipients?\ (?:failed|was\ delayed)
        |could\ not\ be\ delivered\ to|couldn't\ be\ delivered|hi\.\ this\ is\ the\ qmail|qmail-send\ program
        |message\ was\ created\ automatically\ by\ mail\ delivery\ software|wasn't\ able\ to\ deliver|was\ not\ able\ to\ deliver
        |permanent\ fatal\ errors|following\ address(?:es)?\ had\ (?:permanent|transient)|delivery\ has\ failed\ to\ these
        |your\ message\ (?:did\ not|could\ not|couldn't|wasn't|was\ not|cannot)\ (?:reach|be\ delivered)|undeliverable\ to
        |unable\ to\ deliver|the\ original\ message\ was\ received\ at|delivery\ to\ the\ following|returned\ to\ (?:the\ )?sender
        |not\ be\ delivered|message\ delivery\ (?:has\ )?failed|delivery\ failure|user\ unknown|no\ such\ (?:user|mailbox)
        |mailbox\ (?:unavailable|full|is\ full)|recipient\ address\ rejected|host\ unknown|550[\ -]5\.\d|553[\ -]5\.\d|554[\ -]5\.\d
        |smtp\ error\ from\ remote|retry\ time\ not\ reached|has\ been\ delayed|will\ retry|could\ not\ deliver
        |the\ following\ message\ to|message\ you\ sent\ to|failed\ permanently|permanently\ failed|remote\ server\ said
        |your\ mail\ to\ the\ following\ recipients|delivery\ report|not\ delivered|not\ a\ valid\ (?:user|recipient|address)
        |invalid\ (?:user|recipient|address)|requested\ action\ not\ taken|送信できませんでした|配信できませんでした",
    )
    .unwrap()
});

/// Phrases only mail systems write: enough on their own near the top of the body.
static STRONG_BOUNCE_BODY: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r#"(?ix)this\ is\ the\ mail\ system\ at\ host|delivery\ to\ the\ following\ recipients?\ failed|hi\.\ this\ is\ the\ qmail
        |qmail-send\ program|message\ was\ created\ automatically\ by\ mail\ delivery\ software|could\ not\ be\ delivered\ to:
        |following\ address(?:es)?\ had\ permanent\ fatal\ errors|delivery\ has\ failed\ to\ these\ recipients
        |smtp\ error\ from\ remote\ (?:mail\ )?server|the\ original\ message\ was\ received\ at
        |\\?"notificationType\\?"\s*:\s*\\?"(?:Bounce|Complaint|Delivery)|this\ is\ an\ e?-?mail\ abuse\ report
        |i'm\ sorry\ to\ have\ to\ inform\ you\ that\ your\ message\ could\ not|your\ message\ could\ not\ be\ delivered"#,
    )
    .unwrap()
});

/// ARF-like complaint notices sent without a `message/feedback-report` part (Hotmail's JMRP, RFC 5965 lookalikes).
static FEEDBACK_SUBJECT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)complaint about message from|abuse report|feedback[- ]loop|spam report").unwrap()
});

static DAEMON_FROM: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)^(?:mailer-daemon|post_?master|mail-daemon|maildaemon|mailerdaemon|mail\.?delivery|bounces?|nobody|double-bounce|mdaemon|smtp)(?:[@+._-]|$)").unwrap()
});
static DAEMON_NAME: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)mail\s*delivery\s*(?:subsystem|system|service)|mailer[-\ ]daemon|post_?master|mail\s*administrator|delivery\s*status").unwrap()
});

fn bounce_reason(e: &Evidence<'_>) -> Option<String> {
    match e.report_type.as_deref() {
        Some("delivery-status") if e.content_type == "multipart/report" => {
            return Some("multipart/report delivery-status (RFC 3464)".into());
        }
        Some("feedback-report") if e.content_type == "multipart/report" => {
            return Some("multipart/report feedback-report (ARF, RFC 5965)".into());
        }
        _ => {}
    }
    if !e.delivery_status.is_empty() {
        return Some("message/delivery-status part".into());
    }
    if !e.feedback_report.is_empty() {
        return Some("message/feedback-report part (ARF)".into());
    }
    // The From header itself, not only the parsed address: `MAILER-DAEMON <>` has no usable address.
    let daemon = e.from.is_some_and(|f| DAEMON_FROM.is_match(&f.email))
        || header(e, "From").is_some_and(|v| DAEMON_NAME.is_match(v));
    if let Some(m) = STRONG_BOUNCE_BODY.find(body_head(e, 8192)) {
        return Some(format!("body text \"{}\"", m.as_str()));
    }
    if FEEDBACK_SUBJECT.is_match(e.subject) && (e.returned_message_id.is_some() || e.returned_headers.is_some()) {
        return Some("complaint notice with the reported message attached (feedback loop)".into());
    }
    let subject = BOUNCE_SUBJECT.is_match(e.subject);
    let body = BOUNCE_BODY.find(body_head(e, 8192));
    if daemon && (subject || body.is_some()) {
        return Some(format!("From {} with a delivery-failure shape", e.from.map_or("", |f| f.email.as_str())));
    }
    let null_sender = e.return_path == Some("");
    if null_sender && (subject || body.is_some()) {
        return Some("null sender (Return-Path <>) with a delivery-failure shape".into());
    }
    if subject && let Some(m) = body {
        return Some(format!("bounce subject and body text \"{}\"", m.as_str()));
    }
    if daemon {
        return Some("sent by a mailer daemon".into());
    }
    None
}

static AUTO_SUBJECT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?ix)out\ of\ (?:the\ )?office|\bOOO\b|automatic\ (?:reply|response)|auto(?:matic)?[-\ ]?(?:reply|response|responder|antwort)
        |abwesenheit|automatische\ antwort|r[ée]ponse\ automatique|\babsence\b|respuesta\ autom[aá]tica|risposta\ automatica
        |automatisch\ antwoord|odpowied[źz]\ automatyczna|automatyczna\ odpowied[źz]|autosvar|automatiskt\ svar|automaattinen\ vastaus
        |自动回复|自動回覆|自動応答|自動返信|on\ vacation|vacation\ (?:reply|message|notice)|away\ from\ (?:the\ )?office
        |resposta\ autom[aá]tica|fuera\ de\ la\ oficina|not\ in\ the\ office",
    )
    .unwrap()
});

static AUTO_BODY: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?ix)\bI\ (?:am|will\ be|'m)\ (?:currently\ )?(?:out\ of\ (?:the\ )?office|on\ (?:vacation|holiday|leave)|away\ from)
        |this\ is\ an\ auto(?:mated|matic)[-\ ]?(?:reply|response|message)|auto-?generated\ (?:reply|response|message)
        |allowed\ list|whitelist|approved\ senders|verify\ (?:that\ )?you\ are\ (?:a\ )?(?:human|real)|challenge[-\ ]response
        |protected\ by\ (?:bluebottle|boxbe|spam\ arrest|mailblocks)|to\ ensure\ delivery\ of\ your\ (?:e-?mail|message)
        |please\ (?:click|confirm).{0,80}(?:deliver|verify|sender)|ich\ bin\ (?:bis|vom|derzeit|zurzeit|momentan).{0,60}(?:nicht|abwesend|urlaub)
        |je\ suis\ absent|estar[ée]\ fuera\ de\ la\ oficina|sono\ fuori\ ufficio",
    )
    .unwrap()
});

fn auto_reply_reason(e: &Evidence<'_>) -> Option<String> {
    // RFC 3834 §5: any value other than "no" marks automatic mail.
    if let Some(v) = header(e, "Auto-Submitted")
        && !v.split(';').next().unwrap_or("").trim().eq_ignore_ascii_case("no")
    {
        return Some(format!("Auto-Submitted: {v}"));
    }
    for name in [
        "X-Autoreply",
        "X-Autorespond",
        "X-Autogenerated",
        "X-AutoReply-From",
        "X-Mail-Autoreply",
        "X-FC-MachineGenerated",
        "X-Auto-Reply",
        "X-Autoresponder",
    ] {
        if let Some(v) = header(e, name) {
            return Some(format!("{name}: {v}"));
        }
    }
    if let Some(v) = header(e, "X-Apple-Action").filter(|v| v.eq_ignore_ascii_case("vacation")) {
        return Some(format!("X-Apple-Action: {v}"));
    }
    if let Some(v) = header(e, "X-Auto-Response-Suppress") {
        let lower = v.to_ascii_lowercase();
        if ["oof", "all", "autoreply"].iter().any(|w| lower.split([',', ' ']).any(|t| t.trim() == *w)) {
            return Some(format!("X-Auto-Response-Suppress: {v}"));
        }
    }
    if let Some(v) = header(e, "Precedence") {
        let lower = v.to_ascii_lowercase();
        if ["bulk", "junk", "auto_reply", "auto-reply"].contains(&lower.as_str()) {
            return Some(format!("Precedence: {v}"));
        }
    }
    if let Some(m) = AUTO_SUBJECT.find(e.subject) {
        return Some(format!("subject \"{}\"", m.as_str()));
    }
    if let Some(m) = AUTO_BODY.find(body_head(e, 2048)) {
        return Some(format!("body text \"{}\"", m.as_str()));
    }
    None
}

fn list_reason(e: &Evidence<'_>) -> Option<String> {
    for name in ["List-Id", "List-Unsubscribe", "List-Post", "Mailing-List", "X-Mailing-List", "List-Help"] {
        if has_header(e, name) {
            return Some(format!("{name} header"));
        }
    }
    if header(e, "Precedence").is_some_and(|v| v.eq_ignore_ascii_case("list")) {
        return Some("Precedence: list".into());
    }
    None
}

static FIELD: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"(?im)^([A-Za-z-]+)[ \t]*:[ \t]*(.*)$").unwrap());
static ADDR: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9-]+)+")
        .unwrap()
});
static STATUS: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b").unwrap());
static SMTP_LINE: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"\b[45]\d\d[\ -]").unwrap());
static MSG_ID: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"(?im)^[ \t>]*Message-ID:[ \t]*<([^>\s]+)>").unwrap());

fn bounce_info(e: &Evidence<'_>) -> BounceInfo {
    let mut recipients: Vec<FailedRecipient> = e.delivery_status.iter().flat_map(|d| dsn_recipients(d)).collect();
    if recipients.is_empty() {
        recipients = e.feedback_report.iter().flat_map(|d| feedback_recipients(d)).collect();
    }
    if recipients.is_empty() {
        recipients = ses_recipients(e.text);
    }
    if recipients.is_empty() {
        recipients = text_recipients(e);
    }
    if recipients.is_empty()
        && let Some(to) = &e.returned_to
    {
        recipients.push(FailedRecipient { address: to.clone(), status: None, action: None });
    }
    let mut seen = std::collections::HashSet::new();
    recipients.retain(|r| seen.insert(r.address.to_ascii_lowercase()));
    let original_message_id = e.returned_message_id.clone().or_else(|| {
        let returned = e.returned_headers.as_deref().unwrap_or(e.text);
        MSG_ID.captures(returned).map(|c| c[1].to_string())
    });
    BounceInfo { recipients, original_message_id }
}

/// Amazon SES notifications are JSON (possibly JSON inside a JSON string, hence the optional backslashes).
fn ses_recipients(text: &str) -> Vec<FailedRecipient> {
    static SES: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r#"\\?"(?:emailAddress|recipients)\\?"\s*:\s*\[?\s*\\?"([^"\\\s]+@[^"\\\s]+)\\?"(?:[^}]*?\\?"status\\?"\s*:\s*\\?"([245]\.\d+\.\d+))?"#).unwrap()
    });
    if !text.contains("notificationType") {
        return Vec::new();
    }
    SES.captures_iter(text)
        .map(|c| FailedRecipient {
            address: c[1].to_string(),
            status: c.get(2).map(|m| m.as_str().to_string()),
            action: None,
        })
        .collect()
}

/// Strips `rfc822;` and angle brackets from a DSN address field (RFC 3464 §2.3.1).
fn dsn_address(value: &str) -> String {
    let v = value.split_once(';').map_or(value, |(_, a)| a);
    v.trim().trim_start_matches('<').trim_end_matches('>').trim().to_string()
}

/// Per-recipient blocks of a `message/delivery-status` body (RFC 3464 §2.1): the first block is per-message.
fn dsn_recipients(dsn: &str) -> Vec<FailedRecipient> {
    let dsn = dsn.replace("\r\n", "\n");
    let unfolded = dsn.replace("\n ", " ").replace("\n\t", " ");
    let mut out = Vec::new();
    for block in unfolded.split("\n\n") {
        let (mut final_rcpt, mut original, mut action, mut status) = (None, None, None, None);
        for c in FIELD.captures_iter(block) {
            let value = c[2].trim();
            match c[1].to_ascii_lowercase().as_str() {
                "final-recipient" => final_rcpt = Some(dsn_address(value)),
                "original-recipient" => original = Some(dsn_address(value)),
                "action" => action = Some(value.to_ascii_lowercase()),
                "status" => status = STATUS.find(value).map(|m| m.as_str().to_string()),
                _ => {}
            }
        }
        if let Some(address) = final_rcpt.filter(|a| !a.is_empty()).or(original)
            && address.contains('@')
        {
            out.push(FailedRecipient { address, status, action });
        }
    }
    out
}

/// ARF (RFC 5965 §3.1): the reported recipient is `Original-Rcpt-To`, else `Removal-Recipient`.
fn feedback_recipients(report: &str) -> Vec<FailedRecipient> {
    FIELD
        .captures_iter(report)
        .filter(|c| ["original-rcpt-to", "removal-recipient"].contains(&c[1].to_ascii_lowercase().as_str()))
        .map(|c| FailedRecipient { address: dsn_address(&c[2]), status: None, action: Some("feedback".into()) })
        .filter(|r| r.address.contains('@'))
        .collect()
}

/// Recipients of a non-standard bounce: addresses on lines that carry an SMTP reply, in qmail `<x@y>:` blocks, or
/// indented under the "failed" sentence, skipping the bounce's own parties and anything after the returned mail.
fn text_recipients(e: &Evidence<'_>) -> Vec<FailedRecipient> {
    let text = returned_cut(e.text);
    let own: Vec<String> = e.from.iter().map(|a| a.key()).collect();
    let skip = |a: &str| {
        let l = a.to_ascii_lowercase();
        let local = l.split('@').next().unwrap_or("");
        own.contains(&l) || ["mailer-daemon", "postmaster", "double-bounce"].contains(&local)
    };
    let lines: Vec<&str> = text.lines().collect();
    let mut scored: Vec<(u8, FailedRecipient)> = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        for m in ADDR.find_iter(line) {
            let addr = m.as_str().trim_matches('.').to_string();
            if skip(&addr) {
                continue;
            }
            let window: String = lines[i..(i + 3).min(lines.len())].join(" ");
            let status = STATUS.find(&window).map(|s| s.as_str().to_string());
            let before = &line[..m.start()];
            let after = &line[m.end()..];
            let score = if before.trim_end().ends_with('<') && after.starts_with(">:") {
                3
            } else if SMTP_LINE.is_match(line) || status.is_some() {
                2
            } else if line.starts_with(' ') || line.starts_with('\t') || before.trim().is_empty() {
                1
            } else {
                0
            };
            scored.push((score, FailedRecipient { address: addr, status, action: Some("failed".into()) }));
        }
    }
    let best = scored.iter().map(|(s, _)| *s).max().unwrap_or(0);
    scored.into_iter().filter(|(s, _)| *s == best).map(|(_, r)| r).collect()
}

/// The part of a bounce text before the returned original mail starts.
fn returned_cut(text: &str) -> &str {
    static CUT: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"(?im)^(?:[ \t]*-+ ?(?:original message|below this line is a copy|this is a copy)|[ \t]*-+ ?(?:Original|Returned|Undelivered) (?:message|mail)|Received: from |Return-Path: )").unwrap()
    });
    CUT.find(text).map_or(text, |m| &text[..m.start()])
}
