//! How rules combine into a decision: order, overrides, stop, follow-ups, captures, explanations.

use super::*;

fn followup(queue: &'static str) -> RouteContext<'static> {
    RouteContext { is_followup: true, current_queue: Some(queue), default_queue: "support" }
}

#[test]
fn no_rule_matching_gives_the_default_queue_for_new_tickets() {
    let set = rules(&one_rule("from_domain = \"nobody.example\""));
    let d = set.route(&mail(), &NEW);
    assert_eq!(d.queue, "support");
    assert_eq!((d.priority, d.auto_reply, d.spam, d.fired.len()), (None, AutoReply::Default, false, 0));
    assert_eq!(RuleSet::empty().route(&mail(), &NEW).queue, "support");
}

#[test]
fn follow_ups_keep_their_queue_and_skip_new_ticket_rules() {
    let text = r#"
[[rule]]
name = "everything to sales"
[rule.then]
queue = "sales"
"#;
    let set = rules(text);
    assert_eq!(set.route(&mail(), &NEW).queue, "sales");
    let d = set.route(&mail(), &followup("billing"));
    assert_eq!((d.queue.as_str(), d.fired.len()), ("billing", 0));
    let e = set.explain(&mail(), &followup("billing"));
    assert!(e.rules[0].skipped.as_deref().unwrap().starts_with("follow-ups excluded"), "{e}");
    // A follow-up whose ticket has no queue recorded falls back to the default.
    let ctx = RouteContext { is_followup: true, current_queue: None, default_queue: "support" };
    assert_eq!(set.route(&mail(), &ctx).queue, "support");
}

#[test]
fn followups_flag_or_condition_lets_a_rule_route_replies() {
    for rule in [
        "[[rule]]\nname = \"r\"\nfollowups = true\n[rule.then]\npriority = \"high\"\n",
        "[[rule]]\nname = \"r\"\n[rule.when]\nfollowup = true\n[rule.then]\npriority = \"high\"\n",
        "[[rule]]\nname = \"r\"\n[rule.when]\nany = [{ followup = true }, { subject = \"x\" }]\n[rule.then]\npriority = \"high\"\n",
    ] {
        let d = rules(rule).route(&mail(), &followup("billing"));
        assert_eq!(d.priority, Some(Priority::High), "{rule}");
        assert_eq!(d.queue, "billing");
    }
}

#[test]
fn later_rules_override_scalars_and_tags_accumulate() {
    let text = r#"
[[rule]]
name = "first"
[rule.then]
queue = "billing"
priority = "low"
owner = "a@example.com"
state = "open"
auto_reply = "acknowledgement"
tags = ["one", "triage"]
notify = ["lead@example.com"]

[[rule]]
name = "second"
[rule.then]
queue = "sales"
priority = 5
state = "pending"
auto_reply = false
tags = ["+two", "-triage", "-gone"]
notify = ["lead@example.com", "boss@example.com"]
"#;
    let d = rules(text).route(&mail(), &NEW);
    assert_eq!(d.queue, "sales");
    assert_eq!(d.priority, Some(Priority::VeryHigh));
    assert_eq!(d.owner.as_deref(), Some("a@example.com"));
    assert_eq!(d.state, Some(TicketState::Pending));
    assert_eq!(d.auto_reply, AutoReply::Off);
    assert_eq!(d.tags_add, ["one", "two"]);
    assert_eq!(d.tags_remove, ["triage", "gone"]);
    assert_eq!(d.notify, ["lead@example.com", "boss@example.com"]);
    let fired: Vec<&str> = d.fired.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(fired, ["first", "second"]);
}

#[test]
fn stop_ends_evaluation() {
    let text = r#"
[[rule]]
name = "first"
[rule.then]
queue = "billing"
stop = true

[[rule]]
name = "second"
[rule.then]
queue = "sales"
"#;
    let set = rules(text);
    let d = set.route(&mail(), &NEW);
    assert_eq!((d.queue.as_str(), d.fired.len()), ("billing", 1));
    let e = set.explain(&mail(), &NEW);
    assert_eq!(e.rules[1].skipped.as_deref(), Some("after stop by rule \"first\""));
    assert!(!e.rules[1].matched);
}

#[test]
fn reject_spam_and_template_replies() {
    let text = r#"
[[rule]]
name = "reject"
[rule.when]
attachment_ext = "pdf"
[rule.then]
reject = "rejection"

[[rule]]
name = "spam"
[rule.when]
header = { name = "X-Spam-Flag", equals = "no" }
[rule.then]
spam = true
"#;
    let d = rules(text).route(&mail(), &NEW);
    assert_eq!(d.reject.as_deref(), Some("rejection"));
    assert!(d.spam);
    let e = rules(text).explain(&mail(), &NEW);
    assert!(e.reply_reason.contains("spam") && e.reply_reason.contains("\"spam\""), "{}", e.reply_reason);
}

#[test]
fn disabled_rules_are_skipped() {
    let set = rules("[[rule]]\nname = \"off\"\nenabled = false\n[rule.then]\nqueue = \"sales\"\n");
    assert_eq!(set.route(&mail(), &NEW).queue, "support");
    assert_eq!(set.explain(&mail(), &NEW).rules[0].skipped.as_deref(), Some("disabled (enabled = false)"));
}

#[test]
fn regex_captures_fill_tags() {
    let text = r#"
[[rule]]
name = "captures"
[rule.when]
subject = { regex = '(invoice) #(?P<number>\d+)' }
from = { regex = '@([a-z]+)\.' }
[rule.then]
tags = ["order-${2}", "n-${number}", "${1}", "dom-${1}x"]
"#;
    let d = rules(text).route(&mail(), &NEW);
    // ${1} is taken from the first regex that has a group 1 (the subject's), keeping the sender's spelling.
    assert_eq!(d.tags_add, ["order-12345", "n-12345", "Invoice", "dom-Invoicex"]);
}

#[test]
fn captures_from_failed_any_branches_are_dropped() {
    let text = r#"
[[rule]]
name = "branches"
[rule.when]
any = [
    { all = [{ subject = { regex = '(?P<word>invoice)' } }, { body = { contains = "never there" } }] },
    { subject = { regex = '(?P<word>overdue)' } },
]
[rule.then]
tags = ["w-${word}"]
"#;
    assert_eq!(rules(text).route(&mail(), &NEW).tags_add, ["w-overdue"]);
}

#[test]
fn unmatched_optional_group_gives_empty_text_and_whitespace_becomes_dashes() {
    let text = r#"
[[rule]]
name = "optional"
[rule.when]
subject = { regex = '(refund)?(invoice #\d+)' }
[rule.then]
tags = ["${1}", "x-${2}"]
"#;
    assert_eq!(rules(text).route(&mail(), &NEW).tags_add, ["x-Invoice-#12345"]);
}

#[test]
fn rule_files_run_in_file_name_order() {
    let dir = tempfile::tempdir().unwrap();
    let rule = |name: &str, queue: &str| format!("[[rule]]\nname = \"{name}\"\n[rule.then]\nqueue = \"{queue}\"\n");
    std::fs::write(dir.path().join("20-late.toml"), rule("late", "sales")).unwrap();
    std::fs::write(dir.path().join("10-early.toml"), rule("early", "billing")).unwrap();
    std::fs::write(dir.path().join("README.md"), "not a rule file").unwrap();
    let set = RuleSet::load_dir(dir.path(), &vocab()).unwrap();
    assert_eq!(set.len(), 2);
    let d = set.route(&mail(), &NEW);
    assert_eq!(d.queue, "sales");
    let order: Vec<(&str, &str)> = d.fired.iter().map(|f| (f.file.as_str(), f.name.as_str())).collect();
    assert_eq!(order, [("10-early.toml", "early"), ("20-late.toml", "late")]);
    assert_eq!(set.rule_names().collect::<Vec<_>>(), order);
}

#[test]
fn explanation_names_the_deciding_condition_and_serializes() {
    let text = r#"
[[rule]]
name = "billing"
[rule.when]
recipient = { ends_with = "billing@example.com" }
[rule.then]
queue = "billing"

[[rule]]
name = "refunds"
[rule.when]
recipient = { ends_with = "billing@example.com" }
subject = { regex = 'refund' }
[rule.then]
tags = ["refund"]
"#;
    let e = rules(text).explain(&mail(), &NEW);
    assert_eq!(e.rules[0].deciding, r#"recipient ends_with "billing@example.com" matched "Billing@Example.com""#);
    assert!(e.rules[1].deciding.starts_with(r#"subject regex "refund" did not match (subject is "Invoice"#), "{e}");
    assert!(e.reply_reason.starts_with("no rule set auto_reply"), "{}", e.reply_reason);
    let text = e.to_string();
    assert!(text.contains("MATCHED t.toml \"billing\"") && text.contains("queue:      billing"), "{text}");
    let json = serde_json::to_value(&e).unwrap();
    assert_eq!(json["decision"]["queue"], "billing");
    assert_eq!(json["decision"]["auto_reply"], "default");
    assert_eq!(json["rules"][1]["matched"], false);
}

#[test]
fn a_large_body_is_matched_only_in_its_first_max_rule_body_bytes() {
    // Issue 10: rules ran over the whole of a 20 MB body; they now see its first `limits.max_rule_body_bytes`.
    let set = rules(&one_rule("body = { contains = \"refund\" }")).with_body_limit(1024);
    let hit = |text: String| {
        let mut m = mail();
        m.visible_text = text;
        let routed = !set.route(&m, &NEW).tags_add.is_empty();
        assert_eq!(routed, !set.explain(&m, &NEW).decision.tags_add.is_empty(), "route and explain agree");
        routed
    };
    assert!(hit(format!("{}please refund", "x".repeat(1000))), "inside the limit");
    assert!(!hit(format!("{}please refund", "x".repeat(2000))), "past the limit");
    assert!(!hit(format!("{}ü refund", "x".repeat(1023))), "a limit inside a character cuts before it");
}
