//! Is this mail a delivery report? RFC 3464 DSNs and RFC 5965 feedback reports by their structure; the free-text
//! notices of Exim, qmail, Postfix, Sendmail, Exchange, Lotus Notes, GroupWise and webmail providers by their sender
//! (a mailer daemon, the null sender, or none at all) together with their subject and wording.
//!
//! Everyday failure wording ("not delivered", "user unknown") counts only where a mail system speaks: from a
//! daemon, the null sender or no sender, or under a bounce subject that no person's client wrote ("Re:", "Fwd:"),
//! and never on `>` quoted lines, so a customer discussing a bounce stays a customer. Phrases only MTAs write
//! ("This is the mail system at host …") count anywhere near the top: a forwarded bounce is a bounce.

use std::sync::LazyLock;

use regex::Regex;

use super::{Evidence, body_head, header, is_forward_subject, is_reply_subject};

static BOUNCE_SUBJECT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?ix)undeliver(?:ed|able)|returned\ mail|return(?:ed)?\ to\ sender|mail\ delivery\ (?:failed|failure|problem|system)
        |delivery\ (?:status\ notification|failure|notification|has\ failed|problem|report)|failure\ notice|non[-\ ]?deliver
        |could\ not\ (?:be\ )?deliver|delivery\ failed|mail\ (?:system\ )?error|warning:\ could\ not\ send|message\ not\ delivered
        |not\ delivered|rejected|bounced?\b|delayed\ mail|delivery\ (?:delayed|status)|mailbox\ (?:unavailable|full)|error\ sending
        |メールエラー|配信エラー|配送エラー|配信不能|不達|エラー通知|nicht\ zustellbar|unzustellbar|non\ remis|no\ se\ puede\ entregar|mail\ could\ not|sending\ failed|permanent\ error
        |message\ status\ -\ undeliverable|delivery_?\ ?failure|nondeliverable|returned\ mail|mail\ system\ error
        |notificaci[óo]n\ de\ estado\ de\ entrega|no\ entregad|non\ recapitabile|impossibile\ recapitare|onbestelbaar
        |niet\ bezorgd|impossible\ de\ remettre|olevererbar|ikke\ levert|kan\ ikke\ leveres|kunne\ ikke\ leveres
        |nem\ k[ée]zbes[íi]thet|nie\ mo[żz]na\ dostarczy[ćc]|niedostarczon|не\ доставлено|недоставлен|n[ãa]o\ entregue
        |n[ãa]o\ foi\ poss[íi]vel\ entregar|toimitus\ ep[äa]onnistui|teslim\ edilemedi|nedoru[čc]itel|退信|无法投递|未能送达",
    )
    .expect("valid regex")
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
        |invalid\ (?:user|recipient|address)|requested\ action\ not\ taken|送信できませんでした|配信できませんでした
        |was\ not\ delivered|could\ not\ be\ reached|undeliverable|not\ listed\ in\ (?:domino\ )?(?:public\ )?directory
        |delivery\ (?:attempts\ will\ continue|is\ delayed|has\ been\ delayed)|still\ trying|not\ yet\ been\ delivered
        |message\ could\ not\ be\ delivered|konnte\ nicht\ zugestellt|n'a\ pas\ pu\ [êe]tre\ (?:remis|distribu)|no\ se\ pudo\ entregar
        |non\ [èe]\ stato\ possibile\ recapitare|kon\ niet\ worden\ bezorgd|kunde\ inte\ levereras|nie\ zosta[łl]a\ dostarczona",
    )
    .expect("valid regex")
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
    .expect("valid regex")
});

/// ARF-like complaint notices sent without a `message/feedback-report` part (Hotmail's JMRP, RFC 5965 lookalikes).
static FEEDBACK_SUBJECT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)complaint about message from|abuse report|feedback[- ]loop|spam report").expect("valid regex")
});

static DAEMON_FROM: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)^(?:mailer-daemon|post_?master|mail-daemon|maildaemon|mailerdaemon|mail\.?delivery|bounces?|nobody|double-bounce|mdaemon|smtp)(?:[@+._-]|$)").expect("valid regex")
});
static DAEMON_NAME: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)mail\s*delivery\s*(?:subsystem|system|service)|mailer[-\ ]daemon|post_?master|mail\s*administrator|delivery\s*status").expect("valid regex")
});

/// Whether the byte at `at` sits on a `>` quoted line.
fn is_quoted(text: &str, at: usize) -> bool {
    let line_start = text[..at].rfind('\n').map_or(0, |p| p + 1);
    text[line_start..at].trim_start().starts_with('>')
}

/// The first match of `re` in the top of the body that is not on a `>` quoted line.
fn unquoted_find<'a>(re: &Regex, text: &'a str) -> Option<&'a str> {
    re.find_iter(text).find(|m| !is_quoted(text, m.start())).map(|m| m.as_str())
}

/// Why this mail is a bounce, or `None`.
pub(super) fn reason(e: &Evidence<'_>) -> Option<String> {
    match e.report_type.as_deref() {
        Some("delivery-status" | "global-delivery-status") if e.content_type == "multipart/report" => {
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
    let null_sender = e.return_path == Some("");
    // Some gateways' NDRs and institutional notices carry no sender address at all; people's mail always does.
    let no_sender = e.from.is_none();
    let person_subject = is_reply_subject(e.subject);
    let head = body_head(e, 8192);
    // Phrases MTAs write count when unquoted (and not under a person's "Re:"), or quoted under "Fwd:": a forwarded
    // bounce is still about a failed delivery, a reply quoting one line of it is a conversation.
    let system_voice = daemon || null_sender || no_sender;
    let forward = is_forward_subject(e.subject);
    let strong = STRONG_BOUNCE_BODY
        .find_iter(head)
        .find(|m| if is_quoted(head, m.start()) { forward } else { system_voice || !person_subject || forward });
    if let Some(m) = strong.map(|m| m.as_str()) {
        return Some(format!("body text \"{m}\""));
    }
    if FEEDBACK_SUBJECT.is_match(e.subject) && (e.returned_message_id.is_some() || e.returned_headers.is_some()) {
        return Some("complaint notice with the reported message attached (feedback loop)".into());
    }
    let subject = BOUNCE_SUBJECT.is_match(e.subject);
    let body = unquoted_find(&BOUNCE_BODY, head);
    if daemon && (subject || body.is_some()) {
        return Some(format!("From {} with a delivery-failure shape", e.from.map_or("", |f| f.email.as_str())));
    }
    if (null_sender || no_sender) && (subject || body.is_some()) {
        let who = if null_sender { "null sender (Return-Path <>)" } else { "no sender address" };
        return Some(format!("{who} with a delivery-failure shape"));
    }
    if subject
        && !person_subject
        && let Some(m) = body
    {
        return Some(format!("bounce subject and body text \"{m}\""));
    }
    if daemon || header(e, "X-Failed-Recipients").is_some() {
        return Some("sent by a mailer daemon".into());
    }
    None
}

/// Builds this module's regexes now, in the reverse of the order a mail needs them (see [`crate::parse::warm_up`]).
pub(crate) fn warm_up() {
    LazyLock::force(&DAEMON_NAME);
    LazyLock::force(&DAEMON_FROM);
    LazyLock::force(&FEEDBACK_SUBJECT);
    LazyLock::force(&STRONG_BOUNCE_BODY);
    LazyLock::force(&BOUNCE_BODY);
    LazyLock::force(&BOUNCE_SUBJECT);
}
