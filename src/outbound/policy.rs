//! The "no mail loops" decision: may we send an automatic reply (acknowledgement, rejection, …) to this mail?
//! Pure: the caller supplies the counts and lists it looked up.
//!
//! Follows RFC 3834 §2: no automatic response to automatic mail (`Auto-Submitted` other than `no`, §5), to mailing
//! lists (`List-Id`, RFC 2919; `List-Unsubscribe`, RFC 2369), to the null sender (bounces, RFC 5321 §4.5.5), or to
//! ourselves; plus the de-facto signals `Precedence: bulk|junk|list|auto_reply` and Microsoft's
//! `X-Auto-Response-Suppress`, the system addresses `MAILER-DAEMON` and `postmaster`, and "no-reply" senders.
//!
//! Then the budget (issue 10), against loops no header reveals and against backscatter (forged senders used to make
//! us mail third parties): at most `max_auto_replies` per address in the window, the address normalised
//! ([`normalise_sender`]: case and `+tag` ignored, so `user+1@`, `user+2@` … are one sender), and at most
//! `max_unknown_per_hour` automatic replies per hour to first-time senders, whoever they claim to be.

use crate::model::{Classification, InboundMail};

use super::message::LOOP_HEADER;
use super::signing::Signer;

pub struct ReplyPolicyInput<'a> {
    pub mail: &'a InboundMail,
    /// Our addresses (site and queue addresses), any case.
    pub own_addresses: &'a [String],
    /// The sender is on the hard-bounce list.
    pub suppressed: bool,
    /// Automatic replies sent to this sender (normalised) in the rate window.
    pub recent_auto_replies: u32,
    pub max_auto_replies: u32,
    /// The reply would go to an address that is no party of an earlier ticket.
    pub first_contact: bool,
    /// Automatic replies to first-time senders in the last hour, all senders together.
    pub recent_first_contact: u32,
    pub max_unknown_per_hour: u32,
}

/// Why no automatic reply is sent. `budget` names the budget that refused it (`sender-limit`,
/// `unknown-senders-cap`), for `postdesk status`; `None` for the loop rules, which refuse by design.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blocked {
    pub reason: String,
    pub budget: Option<&'static str>,
}

impl From<String> for Blocked {
    fn from(reason: String) -> Self {
        Blocked { reason, budget: None }
    }
}

/// The key the per-sender limit counts by: lowercase, `<>` and a `+tag` of the local part removed (RFC 5233
/// subaddresses; the common `+` separator).
pub fn normalise_sender(address: &str) -> String {
    let a = address.trim().trim_start_matches('<').trim_end_matches('>').to_ascii_lowercase();
    match a.rsplit_once('@') {
        Some((local, domain)) => format!("{}@{domain}", local.split('+').next().unwrap_or(local)),
        None => a,
    }
}

/// `None` when an automatic reply may be sent; otherwise why not, for the log and the ticket's history.
pub fn auto_reply_blocker(input: &ReplyPolicyInput) -> Option<Blocked> {
    if let Some(reason) = loop_blocker(input) {
        return Some(reason.into());
    }
    let to = input.mail.reply_address().map_or_else(String::new, |a| a.email.clone());
    if input.recent_auto_replies >= input.max_auto_replies {
        let reason = format!(
            "rate limit: {} automatic replies to {} (or its +variants) recently (limit {})",
            input.recent_auto_replies, to, input.max_auto_replies
        );
        return Some(Blocked { reason, budget: Some("sender-limit") });
    }
    if input.first_contact && input.recent_first_contact >= input.max_unknown_per_hour {
        let reason = format!(
            "hourly cap: {} automatic replies to first-time senders in the last hour (limit {}); {to} is one",
            input.recent_first_contact, input.max_unknown_per_hour
        );
        return Some(Blocked { reason, budget: Some("unknown-senders-cap") });
    }
    None
}

fn loop_blocker(input: &ReplyPolicyInput) -> Option<String> {
    let mail = input.mail;
    if mail.classification != Classification::Human {
        let why = mail.classification_reason.as_deref().map(|r| format!(" ({r})")).unwrap_or_default();
        return Some(format!("mail is classified as {}{why}", mail.classification.as_str()));
    }
    if let Some(reason) = header_blocker(mail) {
        return Some(reason);
    }
    if matches!(mail.return_path.as_deref().map(str::trim), Some("" | "<>")) {
        return Some("null envelope sender (Return-Path: <>)".into());
    }
    let Some(reply_to) = mail.reply_address() else {
        return Some("no sender address to reply to".into());
    };
    let senders =
        mail.from.iter().chain(mail.reply_to.iter()).map(|a| a.email.as_str()).chain(mail.return_path.as_deref());
    for address in senders {
        if let Some(kind) = system_sender(address) {
            return Some(format!("sender {address} is a {kind} address"));
        }
        if is_own_address(address, input.own_addresses) {
            return Some(format!("sender {address} is one of our own addresses"));
        }
    }
    if input.suppressed {
        return Some(format!("{} is suppressed after a hard bounce", reply_to.email));
    }
    None
}

/// The header signals of automatic or bulk mail, in RFC 3834 order of authority.
fn header_blocker(mail: &InboundMail) -> Option<String> {
    if let Some(v) = mail.header("Auto-Submitted") {
        // RFC 3834 §5: keyword, optionally followed by `; parameters`. Only `no` marks human mail.
        let keyword = v.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
        if keyword != "no" {
            return Some(format!("Auto-Submitted: {}", v.trim()));
        }
    }
    if let Some(v) = mail.header("Precedence") {
        let p = v.trim().to_ascii_lowercase();
        if matches!(p.as_str(), "bulk" | "junk" | "list" | "auto_reply") {
            return Some(format!("Precedence: {p}"));
        }
    }
    for list_header in ["List-Id", "List-Unsubscribe"] {
        if mail.header(list_header).is_some() {
            return Some(format!("mailing-list mail ({list_header} header)"));
        }
    }
    if let Some(v) = mail.header("X-Auto-Response-Suppress") {
        let asks = v.split(',').map(|s| s.trim().to_ascii_lowercase()).any(|s| s == "all" || s == "autoreply");
        if asks {
            return Some(format!("X-Auto-Response-Suppress: {}", v.trim()));
        }
    }
    // Any postdesk's marker, not only ours: two helpdesks acknowledging each other is a loop too.
    if let Some(v) = mail.header(LOOP_HEADER) {
        return Some(format!("{LOOP_HEADER}: {} (sent by a postdesk)", v.trim()));
    }
    None
}

/// Whether `address` belongs to a mail system rather than a person who reads replies. Decided on the local part,
/// with `-`, `_`, `.` ignored and any `+tag` removed: `mailer-daemon`, `postmaster` (RFC 5321 §4.5.1), and local
/// parts beginning with `noreply` / `donotreply` (`no-reply`, `do_not_reply`, `noreply-alerts`, …).
fn system_sender(address: &str) -> Option<&'static str> {
    let address = address.trim().trim_start_matches('<').trim_end_matches('>');
    let local = address.rsplit_once('@').map_or(address, |(l, _)| l);
    let local = local.split('+').next().unwrap_or("");
    let squashed: String =
        local.chars().filter(|c| !matches!(c, '-' | '_' | '.')).collect::<String>().to_ascii_lowercase();
    match squashed.as_str() {
        "mailerdaemon" => Some("MAILER-DAEMON"),
        "postmaster" => Some("postmaster"),
        s if s.starts_with("noreply") || s.starts_with("donotreply") => Some("no-reply"),
        _ => None,
    }
}

/// `address` is one of `own`, or a plus-variant of one (`support+T123-…@example.com`), case-insensitively.
fn is_own_address(address: &str, own: &[String]) -> bool {
    let strip = |a: &str| -> Option<(String, String)> {
        let a = a.trim().trim_start_matches('<').trim_end_matches('>').to_ascii_lowercase();
        let (local, domain) = a.rsplit_once('@')?;
        let base = local.split('+').next().unwrap_or(local);
        Some((base.to_string(), domain.to_string()))
    };
    let Some(candidate) = strip(address) else { return false };
    own.iter().filter_map(|o| strip(o)).any(|o| o == candidate)
}

/// True when this mail was sent by this installation: it carries our loop marker with one of our addresses, or its
/// own Message-ID is one we signed. Such mail is never processed as customer mail.
pub fn is_our_own_mail(mail: &InboundMail, signer: &Signer, own_addresses: &[String]) -> bool {
    let marked =
        mail.headers_named(LOOP_HEADER).any(|v| own_addresses.iter().any(|o| o.eq_ignore_ascii_case(v.trim())));
    marked || mail.message_id.as_deref().is_some_and(|id| signer.verify_message_id(id).is_some())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Address, Header};

    fn own() -> Vec<String> {
        vec!["support@example.com".into(), "Billing@Example.com".into()]
    }

    fn human() -> InboundMail {
        InboundMail {
            from: Some(Address::new(Some("Carol"), "carol@customer.test")),
            return_path: Some("carol@customer.test".into()),
            subject: "Printer on fire".into(),
            ..InboundMail::default()
        }
    }

    fn with_header(name: &str, value: &str) -> InboundMail {
        let mut m = human();
        m.headers.push(Header { name: name.into(), value: value.into() });
        m
    }

    fn from(address: &str) -> InboundMail {
        InboundMail { from: Some(Address::new(None, address)), return_path: None, ..human() }
    }

    fn decide(mail: &InboundMail) -> Option<String> {
        let own = own();
        auto_reply_blocker(&ReplyPolicyInput {
            mail,
            own_addresses: &own,
            suppressed: false,
            recent_auto_replies: 0,
            max_auto_replies: 5,
            first_contact: false,
            recent_first_contact: 0,
            max_unknown_per_hour: 100,
        })
        .map(|b| b.reason)
    }

    #[test]
    fn blockers_table() {
        let classified = |c| InboundMail { classification: c, ..human() };
        let cases: Vec<(&str, InboundMail, Option<&str>)> = vec![
            ("plain human mail", human(), None),
            ("Auto-Submitted: no", with_header("Auto-Submitted", "No"), None),
            ("Precedence: first-class", with_header("Precedence", "first-class"), None),
            ("classified auto-reply", classified(Classification::AutoReply), Some("auto-reply")),
            ("classified bounce", classified(Classification::Bounce), Some("bounce")),
            ("classified list", classified(Classification::List), Some("list")),
            ("auto-replied", with_header("auto-submitted", "auto-replied"), Some("Auto-Submitted")),
            ("auto-generated+params", with_header("Auto-Submitted", "auto-generated; owner-email=x"), Some("Auto")),
            ("Precedence bulk", with_header("Precedence", "Bulk"), Some("Precedence: bulk")),
            ("Precedence junk", with_header("Precedence", "junk"), Some("Precedence: junk")),
            ("Precedence list", with_header("Precedence", "list"), Some("Precedence: list")),
            ("Precedence auto_reply", with_header("Precedence", "auto_reply"), Some("auto_reply")),
            ("List-Id", with_header("List-Id", "<users.lists.example.org>"), Some("List-Id")),
            ("List-Unsubscribe", with_header("List-Unsubscribe", "<mailto:u@x>"), Some("List-Unsubscribe")),
            ("X-Auto-Response-Suppress", with_header("X-Auto-Response-Suppress", "OOF, AutoReply"), Some("Suppress")),
            ("our loop marker", with_header(LOOP_HEADER, "support@example.com"), Some(LOOP_HEADER)),
            ("another postdesk's marker", with_header(LOOP_HEADER, "help@other.test"), Some(LOOP_HEADER)),
            ("null sender", InboundMail { return_path: Some(String::new()), ..human() }, Some("null")),
            ("null sender <>", InboundMail { return_path: Some("<>".into()), ..human() }, Some("null")),
            ("no sender at all", InboundMail { from: None, ..human() }, Some("no sender")),
            ("MAILER-DAEMON", from("MAILER-DAEMON@mx.example.net"), Some("MAILER-DAEMON")),
            ("postmaster", from("Postmaster@example.net"), Some("postmaster")),
            ("noreply", from("noreply@shop.test"), Some("no-reply")),
            ("no-reply", from("no-reply@shop.test"), Some("no-reply")),
            ("do-not-reply", from("Do-Not-Reply@shop.test"), Some("no-reply")),
            ("donotreply", from("donotreply@shop.test"), Some("no-reply")),
            ("noreply-alerts", from("noreply-alerts@shop.test"), Some("no-reply")),
            (
                "noreply in return path only",
                InboundMail { return_path: Some("no_reply@b.test".into()), ..human() },
                Some("no-reply"),
            ),
            ("replyto person is fine", from("reply@shop.test"), None),
            ("own address", from("SUPPORT@example.com"), Some("own")),
            ("own plus-variant", from("support+T2026112310000012-abc@example.com"), Some("own")),
            ("second own address", from("billing@example.com"), Some("own")),
            ("same local part, other domain", from("support@customer.test"), None),
            (
                "reply-to is ours",
                InboundMail { reply_to: vec![Address::new(None, "support@example.com")], ..human() },
                Some("own"),
            ),
        ];
        for (what, mail, expected) in cases {
            let got = decide(&mail);
            match expected {
                None => assert_eq!(got, None, "{what}"),
                Some(needle) => {
                    let reason = got.unwrap_or_else(|| panic!("{what}: expected a blocker"));
                    assert!(reason.contains(needle), "{what}: {reason:?} lacks {needle:?}");
                }
            }
        }
    }

    #[test]
    fn suppression_and_rate_limit() {
        let mail = human();
        let own = own();
        let input = |suppressed, recent| ReplyPolicyInput {
            mail: &mail,
            own_addresses: &own,
            suppressed,
            recent_auto_replies: recent,
            max_auto_replies: 3,
            first_contact: false,
            recent_first_contact: 0,
            max_unknown_per_hour: 100,
        };
        assert_eq!(auto_reply_blocker(&input(false, 2)), None);
        let limited = auto_reply_blocker(&input(false, 3)).unwrap();
        assert!(limited.reason.contains("rate limit") && limited.budget == Some("sender-limit"), "{limited:?}");
        let suppressed = auto_reply_blocker(&input(true, 0)).unwrap();
        assert!(suppressed.reason.contains("suppressed") && suppressed.budget.is_none());
    }

    #[test]
    fn backscatter_budget_caps_first_time_senders_per_hour_and_normalises_senders() {
        let mail = human();
        let own = own();
        let input = |first_contact, recent_first_contact| ReplyPolicyInput {
            mail: &mail,
            own_addresses: &own,
            suppressed: false,
            recent_auto_replies: 0,
            max_auto_replies: 5,
            first_contact,
            recent_first_contact,
            max_unknown_per_hour: 10,
        };
        assert_eq!(auto_reply_blocker(&input(true, 9)), None);
        assert_eq!(auto_reply_blocker(&input(true, 10)).unwrap().budget, Some("unknown-senders-cap"));
        assert_eq!(auto_reply_blocker(&input(false, 10)), None, "known correspondents are not capped");
        for (raw, want) in [
            ("User+1@Example.COM", "user@example.com"),
            ("<user+a+b@example.com>", "user@example.com"),
            ("user@example.com", "user@example.com"),
            ("+tag@example.com", "@example.com"),
            ("no-at-sign", "no-at-sign"),
        ] {
            assert_eq!(normalise_sender(raw), want, "{raw}");
        }
    }

    #[test]
    fn our_own_mail_by_marker_or_signed_message_id() {
        let signer = Signer::from_key([3; 32]);
        let own = own();
        assert!(!is_our_own_mail(&human(), &signer, &own));
        assert!(is_our_own_mail(&with_header(LOOP_HEADER, " Support@Example.com "), &signer, &own));
        assert!(!is_our_own_mail(&with_header(LOOP_HEADER, "help@other.test"), &signer, &own));
        let ours = InboundMail { message_id: Some(signer.message_id("2026112310000012", "example.com")), ..human() };
        assert!(is_our_own_mail(&ours, &signer, &own));
        assert!(!is_our_own_mail(&ours, &Signer::from_key([4; 32]), &own), "another installation's id");
        let replying = InboundMail { in_reply_to: ours.message_id.clone().into_iter().collect(), ..human() };
        assert!(!is_our_own_mail(&replying, &signer, &own), "a reply to our mail is not our mail");
    }
}
