//! The example rules shipped in `rules/` must load with the documented vocabulary and route as their
//! comments say.

use super::*;

fn shipped() -> RuleSet {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("rules");
    RuleSet::load_dir(&dir, &vocab()).unwrap_or_else(|e| panic!("shipped rules are invalid:\n{e}"))
}

fn customer_mail(from: &str, to: &str, subject: &str) -> InboundMail {
    InboundMail {
        size: 2_000,
        from: Some(Address::new(Some("Customer"), from)),
        to: vec![Address::new(None, to)],
        subject: subject.into(),
        visible_text: "Hello,\nplease help.\n".into(),
        ..InboundMail::default()
    }
}

#[test]
fn shipped_rules_are_valid() {
    assert!(shipped().len() >= 8);
}

#[test]
fn billing_address_routes_to_billing_with_priority_and_tags() {
    let d = shipped().route(&customer_mail("bob@customer.example", "Billing@Example.com", "Question"), &NEW);
    assert_eq!(d.queue, "billing");
    assert_eq!(d.priority, Some(Priority::High));
    assert_eq!(d.tags_add, ["billing", "invoice"]);
    assert_eq!(d.tags_remove, ["triage"]);
    assert_eq!(d.auto_reply, AutoReply::Template("acknowledgement".into()));
}

#[test]
fn shipped_rules_cover_spam_invoices_vip_and_bounces() {
    let set = shipped();
    let mut spam = customer_mail("x@spam.example", "support@example.com", "Win");
    spam.headers.push(Header { name: "X-Spam-Flag".into(), value: "YES".into() });
    let d = set.route(&spam, &NEW);
    assert!(d.spam && d.fired.len() == 1, "{d}");

    let d = set.route(&customer_mail("a@b.example", "support@example.com", "Invoice no. 123456 unpaid"), &NEW);
    assert_eq!((d.queue.as_str(), d.tags_add.as_slice()), ("billing", &["invoice-123456".to_string()][..]));

    let d = set.route(&customer_mail("ceo@bigcustomer.example", "billing@example.com", "Hi"), &NEW);
    assert_eq!((d.queue.as_str(), d.priority), ("vip", Some(Priority::VeryHigh)));
    assert!(d.tags_add.contains(&"billing".to_string()) && d.tags_add.contains(&"vip".to_string()));

    let reply = customer_mail("ceo@bigcustomer.example", "support@example.com", "Re: Hi");
    let ctx = RouteContext { is_followup: true, current_queue: Some("vip"), default_queue: "support" };
    let d = set.route(&reply, &ctx);
    assert_eq!((d.queue.as_str(), d.priority), ("vip", Some(Priority::VeryHigh)));

    let mut bounce = customer_mail("mailer-daemon@example.net", "support@example.com", "Undelivered");
    bounce.classification = Classification::Bounce;
    let ctx = RouteContext { is_followup: true, current_queue: Some("billing"), default_queue: "support" };
    let d = set.route(&bounce, &ctx);
    assert_eq!((d.queue.as_str(), d.auto_reply.clone()), ("billing", AutoReply::Off));
    assert_eq!(d.tags_add, ["undeliverable"]);
}
