//! Who sent this mail: a mail system reporting on delivery (bounce), an auto-responder, a mailing list, or a human.
//! The order is bounce > auto-reply > list > human: a vacation notice relayed by a list is still an auto-reply.
//!
//! Bounces follow RFC 3464 (`multipart/report; report-type=delivery-status`) where the MTA does, and the text
//! shapes of Exim, qmail, Postfix, Exchange, Lotus Notes and webmail providers where it does not ([`bounce`]). ARF
//! feedback reports (RFC 5965) and "delivered"/"relayed" DSNs are DSN-shaped automatic mail too, so they are classed
//! as bounces, and their recipients carry the DSN's action so later stages can tell a failure from a notice.
//! Read receipts (MDN, RFC 8098) and auto-replies (RFC 3834 `Auto-Submitted`, the de-facto headers and subjects of
//! common responders) are auto-replies.
//!
//! Header names are compared case-insensitively everywhere (RFC 5322 §1.2.2). The rule that wins when in doubt is
//! that human mail is never classed automatic: phrases in a body or a subject a person might write count only
//! together with a second, independent sign.

mod bounce;
mod recipients;

use std::sync::LazyLock;

use regex::Regex;

use crate::model::{Address, BounceInfo, Classification, Header};

/// What the classifier looks at, gathered by `mod.rs` from the parsed tree.
#[derive(Debug, Default)]
pub struct Evidence<'a> {
    pub headers: &'a [Header],
    pub subject: &'a str,
    pub from: Option<&'a Address>,
    /// The bounce's own To addresses: the sender of the returned mail, never the failed recipient.
    pub to: &'a [Address],
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
    /// A `message/disposition-notification` part was present (RFC 8098 §3).
    pub disposition_notification: bool,
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
    if let Some(reason) = bounce::reason(e) {
        let info = recipients::bounce_info(e);
        return Verdict { classification: Classification::Bounce, reason: Some(reason), bounce: Some(info) };
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
    e.headers.iter().find(|h| h.name.trim().eq_ignore_ascii_case(name)).map(|h| h.value.trim())
}

/// The start of the body: bounce and out-of-office phrasing comes first; quoted history later must not count.
fn body_head<'a>(e: &Evidence<'a>, max: usize) -> &'a str {
    let mut end = e.text.len().min(max);
    while !e.text.is_char_boundary(end) {
        end -= 1;
    }
    &e.text[..end]
}

/// "Re:", "Fwd:", "AW:", "SV:", "回复:" …: a person's client answered or forwarded something. A mail system's own
/// notice never starts so, so body phrases under such a subject are quoted or pasted, not the mail's own voice.
static REPLY_PREFIX: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)^\s*(?:re|fwd?|aw|wg|sv|vs|vb|antw|doorst|tr|rv|rif|r|i|odp|pd|enc|res|ynt|ilt|vá|továbbítás|atb|sv|fs|回复|回覆|答复|转发|轉寄|転送)\s*(?:\[\d+\]|\(\d+\))?\s*[:：]",
    )
    .expect("valid regex")
});

pub(super) fn is_reply_subject(subject: &str) -> bool {
    REPLY_PREFIX.is_match(subject)
}

/// "Fwd:", "WG:", "TR:", "RV:", "I:", "VS:", "PD:", "転送:" …: a forward, which passes a notice on whole.
pub(super) fn is_forward_subject(subject: &str) -> bool {
    static FORWARD: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(
            r"(?i)^\s*(?:fwd?|wg|tr|rv|enc|i|pd|vb|doorst|vs|fs|továbbítás|転送|转发|轉寄)\s*(?:\[\d+\])?\s*[:：]",
        )
        .expect("valid regex")
    });
    FORWARD.is_match(subject)
}

/// Subjects auto-responders write: a prefix before the original subject.
static AUTO_SUBJECT_PREFIX: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?ix)^\s*[\[(]?\s*(?:
           out\ of\ (?:the\ )?office(?:\ auto\ ?reply|\ reply)?|automatic\ (?:reply|response|answer)|auto(?:matic)?[-\ ]?(?:reply|response|responder|antwort|answer)
          |autoreply|abwesenheitsnotiz|automatische\ antwort|r[ée]ponse\ automatique
          |respuesta\ autom[aá]tica|risposta\ automatica|automatisch\ antwoord|odpowied[źz]\ automatyczna
          |automatyczna\ odpowied[źz]|autosvar|automatisk\ svar|automatiskt\ svar|automaattinen\ vastaus
          |resposta\ autom[aá]tica|автоматический\ ответ|автоответ|automatikus\ v[áa]lasz|otomatik\ yan[ıi]t
          |automatick[áa]\ odpov[ěe][ďd]|automatick[áa]\ odpove[ďd]|r[ăa]spuns\ automat|αυτόματη\ απάντηση
          |自动回复|自動回覆|自動応答|自動返信|自動回信|不在通知|자동\ 응답|vacation\ (?:reply|message|notice)
        )\s*[\])]?\s*[:：\]]",
    )
    .expect("valid regex")
});

/// A marker at the end of a subject: a weak sign (a person answering such a mail keeps it).
static AUTO_SUBJECT_SUFFIX: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)[\[(](?:automatic|auto)[-\ ]?(?:response|reply|answer|responder)[\])]\s*$|\bis\s+out\s+of\s+(?:the\s+)?office\s*\.?$",
    )
    .expect("valid regex")
});

/// Out-of-office words anywhere in a subject: a weak sign, people write these too.
static AUTO_SUBJECT_WORDS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?ix)out\ of\ (?:the\ )?office|\bOOO\b|auto(?:matic)?[-\ ]?(?:reply|response|responder|antwort)
        |abwesenheit|automatische\ antwort|r[ée]ponse\ automatique|\babsen(?:ce|t)\b|respuesta\ autom[aá]tica|risposta\ automatica
        |automatisch\ antwoord|odpowied[źz]\ automatyczna|automatyczna\ odpowied[źz]|autosvar|automatiskt\ svar|automaattinen\ vastaus
        |自动回复|自動回覆|自動応答|自動返信|on\ vacation|vacation|away\ from\ (?:the\ )?office|resposta\ autom[aá]tica
        |fuera\ de\ la\ oficina|not\ in\ the\ office|thank\ you\ for\ your\ (?:e-?mail|message)|we\ have\ received\ your",
    )
    .expect("valid regex")
});

/// Out-of-office and acknowledgement phrasing near the top of a body: a weak sign.
static AUTO_BODY: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?ix)\bI\ (?:am|will\ be|'m|’m)\ (?:currently\ |now\ )?(?:out\ of\ (?:the\ )?office|on\ (?:vacation|holiday|leave|annual\ leave)|away\ from|absent)
        |this\ is\ an\ auto(?:mated|matic)[-\ ]?(?:reply|response|message)|auto-?generated\ (?:reply|response|message)
        |(?:automatic|automated)\ (?:reply|response)
        |ich\ bin\ (?:bis|vom|derzeit|zurzeit|momentan|ab).{0,60}(?:nicht|abwesend|urlaub)
        |je\ suis\ absent|estar[ée]\ fuera\ de\ la\ oficina|estoy\ fuera\ de\ la\ oficina|sono\ fuori\ ufficio
        |ik\ ben\ (?:afwezig|niet\ aanwezig)|jestem\ nieobecn|jag\ är\ (?:ledig|borta|tjänstledig)|jeg\ er\ (?:på\ ferie|fraværende)
        |estou\ ausente|я\ в\ отпуске|不在にして|休假",
    )
    .expect("valid regex")
});

/// Challenge-response systems (Boxbe, Bluebottle, Spam Arrest …) asking the sender to prove they are a person.
static CHALLENGE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?ix)allowed\ list|whitelist|approved\ senders|verify\ (?:that\ )?you\ are\ (?:a\ )?(?:human|real|person)
        |challenge[-\ ]response|protected\ by\ (?:bluebottle|boxbe|spam\ ?arrest|mailblocks)|to\ ensure\ delivery\ of\ your\ (?:e-?mail|message)
        |please\ (?:click|confirm).{0,80}(?:deliver|verify|sender)|your\ message\ (?:is|has\ been)\ (?:being\ )?held|guest\ list
        |this\ account\ is\ protected|prove\ (?:that\ )?you\ are",
    )
    .expect("valid regex")
});

/// Distinct matches of `re` in `text`, up to `cap`.
fn distinct_matches(re: &Regex, text: &str, cap: usize) -> usize {
    let mut seen: Vec<String> = Vec::new();
    for m in re.find_iter(text) {
        let k = m.as_str().to_lowercase();
        if !seen.contains(&k) {
            seen.push(k);
            if seen.len() >= cap {
                break;
            }
        }
    }
    seen.len()
}

fn strong_auto_header(e: &Evidence<'_>) -> Option<String> {
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
        "X-Vacation",
    ] {
        if let Some(v) = header(e, name) {
            return Some(format!("{name}: {v}"));
        }
    }
    if let Some(v) = header(e, "X-Apple-Action").filter(|v| v.eq_ignore_ascii_case("vacation")) {
        return Some(format!("X-Apple-Action: {v}"));
    }
    if let Some(v) = header(e, "Precedence").filter(|v| {
        let l = v.to_ascii_lowercase();
        l == "auto_reply" || l == "auto-reply" || l == "autoreply"
    }) {
        return Some(format!("Precedence: {v}"));
    }
    None
}

fn auto_reply_reason(e: &Evidence<'_>) -> Option<String> {
    // RFC 8098 §3: a read receipt is `multipart/report; report-type=disposition-notification`.
    if e.disposition_notification
        || (e.content_type == "multipart/report" && e.report_type.as_deref() == Some("disposition-notification"))
    {
        return Some("read receipt (MDN, RFC 8098)".into());
    }
    if let Some(reason) = strong_auto_header(e) {
        return Some(reason);
    }
    // RFC 5321 §4.5.5: the null reverse-path is for notifications, which people's mail never is.
    if e.return_path == Some("") {
        return Some("null sender (Return-Path <>)".into());
    }
    if let Some(m) = AUTO_SUBJECT_PREFIX.find(e.subject) {
        return Some(format!("subject \"{}\"", m.as_str().trim()));
    }
    weak_auto_reason(e)
}

/// Two independent weak signs make an auto-reply; one alone never does.
fn weak_auto_reason(e: &Evidence<'_>) -> Option<String> {
    // A list relays its members' mail: only the strong signs above tell a relayed auto-reply.
    if list_header(e).is_some() {
        return None;
    }
    let mut signs: Vec<String> = Vec::new();
    if let Some(v) = header(e, "X-Auto-Response-Suppress") {
        let lower = v.to_ascii_lowercase();
        if ["oof", "all", "autoreply"].iter().any(|w| lower.split([',', ' ']).any(|t| t.trim() == *w)) {
            signs.push(format!("X-Auto-Response-Suppress: {v}"));
        }
    }
    if let Some(v) = header(e, "Precedence").filter(|v| ["bulk", "junk"].contains(&v.to_ascii_lowercase().as_str())) {
        signs.push(format!("Precedence: {v}"));
    }
    // "Re: x (Automatic Response)" is what some responders write, and what a person answering one writes too.
    if let Some(m) = AUTO_SUBJECT_SUFFIX.find(e.subject) {
        signs.push(format!("subject \"{}\"", m.as_str().trim()));
    } else if !is_reply_subject(e.subject)
        && let Some(m) = AUTO_SUBJECT_WORDS.find(e.subject)
    {
        signs.push(format!("subject \"{}\"", m.as_str()));
    }
    // The body is one witness however many phrases it has, except that a challenge-response system says two
    // distinct things no person writes together ("allowed list" and "verify you are human").
    let head = unquoted_head(body_head(e, 2048));
    let challenges = distinct_matches(&CHALLENGE, &head, 2);
    if challenges >= 2 {
        signs.push("challenge-response phrases".into());
        signs.push("challenge-response request".into());
    } else if let Some(m) = AUTO_BODY.find(&head) {
        signs.push(format!("body text \"{}\"", m.as_str()));
    } else if challenges == 1 {
        signs.push("a challenge-response phrase".into());
    }
    (signs.len() >= 2).then(|| signs.join(", "))
}

/// The body's first lines without `>` quotes: a quoted out-of-office is someone else's.
fn unquoted_head(head: &str) -> String {
    head.lines().filter(|l| !l.trim_start().starts_with('>')).collect::<Vec<_>>().join("\n")
}

fn list_header(e: &Evidence<'_>) -> Option<&'static str> {
    ["List-Id", "List-Unsubscribe", "List-Post", "Mailing-List", "X-Mailing-List", "List-Help", "List-Archive"]
        .into_iter()
        .find(|name| header(e, name).is_some())
}

/// Majordomo-style lists without `List-*` headers still send from `owner-…`, `…-request` or `…-bounces` envelopes.
fn list_envelope(e: &Evidence<'_>) -> bool {
    let sender = header(e, "Sender").unwrap_or("").to_ascii_lowercase();
    let rp = e.return_path.unwrap_or("").to_ascii_lowercase();
    [sender.as_str(), rp.as_str()].iter().any(|a| {
        let local = a.trim_matches(['<', '>', ' ']).split('@').next().unwrap_or("");
        local.starts_with("owner-")
            || local.ends_with("-request")
            || local.contains("-bounces")
            || local.ends_with("-owner")
    })
}

fn list_reason(e: &Evidence<'_>) -> Option<String> {
    if let Some(name) = list_header(e) {
        return Some(format!("{name} header"));
    }
    if let Some(v) = header(e, "Precedence") {
        let lower = v.to_ascii_lowercase();
        if lower == "list" || ((lower == "bulk" || lower == "junk") && list_envelope(e)) {
            return Some(format!("Precedence: {v}"));
        }
        // RFC 3834 §2: bulk mail is never answered automatically; without a second sign it is not an auto-reply.
        if lower == "bulk" || lower == "junk" {
            return Some(format!("Precedence: {v} (bulk mail)"));
        }
    }
    None
}

/// Builds this module's regexes now, in the reverse of the order a mail needs them (see [`crate::parse::warm_up`]).
pub(crate) fn warm_up() {
    LazyLock::force(&CHALLENGE);
    LazyLock::force(&AUTO_BODY);
    LazyLock::force(&AUTO_SUBJECT_WORDS);
    LazyLock::force(&AUTO_SUBJECT_SUFFIX);
    LazyLock::force(&AUTO_SUBJECT_PREFIX);
    LazyLock::force(&REPLY_PREFIX);
    bounce::warm_up();
}

#[cfg(test)]
mod tests;
