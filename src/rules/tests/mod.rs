//! Rule engine tests: operators and combinators (table-driven), routing semantics, validation positions,
//! and the shipped example rules.

mod ops;
mod routing;
mod shipped;
mod validate;

use super::*;
use crate::model::{Address, Attachment, Classification, Header, InboundMail};

pub(super) fn vocab() -> Vocabulary {
    let s = |v: &[&str]| v.iter().map(|s| s.to_string()).collect();
    Vocabulary {
        queues: s(&["support", "billing", "sales", "vip", "spam"]),
        templates: s(&["acknowledgement", "followup", "rejection", "notification", "bounce-notice"]),
    }
}

pub(super) const NEW: RouteContext<'static> =
    RouteContext { is_followup: false, current_queue: None, default_queue: "support" };

/// A customer mail with something for every condition to look at.
pub(super) fn mail() -> InboundMail {
    let header = |n: &str, v: &str| Header { name: n.into(), value: v.into() };
    InboundMail {
        size: 20_000,
        from: Some(Address::new(Some("Alice Smith"), "Alice@Customer.Example")),
        to: vec![Address::new(None, "support@example.com")],
        cc: vec![Address::new(Some("Billing"), "Billing@Example.com")],
        delivered_to: vec!["helpdesk@example.com".into()],
        subject: "Invoice #12345 overdue – ÄRGER".into(),
        visible_text: "Hello, please find attached the Invoice.\nThanks\n".into(),
        headers: vec![
            header("Received", "from mx1.example.net"),
            header("Received", "from mx2.example.net"),
            header("X-Spam-Flag", "NO"),
            header("X-Mailer", "Thunderbird 128"),
        ],
        attachments: vec![Attachment {
            filename: Some("invoice.PDF".into()),
            content_type: "application/pdf".into(),
            size: 4,
            sha256: crate::model::sha256_hex(b"%PDF"),
            data: b"%PDF".to_vec(),
        }],
        classification: Classification::Human,
        ..InboundMail::default()
    }
}

pub(super) fn rules(text: &str) -> RuleSet {
    RuleSet::load_str("t.toml", text, &vocab()).unwrap_or_else(|e| panic!("rules should load:\n{e}\n---\n{text}"))
}

pub(super) fn errors(text: &str) -> Vec<RuleError> {
    match RuleSet::load_str("t.toml", text, &vocab()) {
        Ok(_) => panic!("rules should not load:\n{text}"),
        Err(e) => e.0,
    }
}

/// One rule with these conditions and a marker action.
pub(super) fn one_rule(when: &str) -> String {
    format!("[[rule]]\nname = \"r\"\n[rule.when]\n{when}\n[rule.then]\ntags = [\"hit\"]\n")
}

#[test]
fn rule_set_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<RuleSet>();
    assert!(RuleSet::empty().is_empty());
}
