//! Every operator, its negation, case handling and every combinator, against [`super::mail`].

use super::*;

fn check(cases: &[(&str, bool)], mail: &InboundMail, ctx: &RouteContext<'_>) {
    let mut failed = Vec::new();
    for (when, want) in cases {
        let set = rules(&one_rule(when));
        let decision = set.route(mail, ctx);
        let got = !decision.fired.is_empty();
        let explained = set.explain(mail, ctx);
        assert_eq!(explained.decision, decision, "explain and route disagree on {when}");
        assert_eq!(explained.rules[0].matched, got, "explain verdict differs on {when}");
        if got != *want {
            failed.push(format!("{when}: want {want}, got {got} ({})", explained.rules[0].deciding));
        }
    }
    assert!(failed.is_empty(), "failed cases:\n{}", failed.join("\n"));
}

#[test]
fn address_and_name_fields() {
    check(
        &[
            (r#"from = "alice@customer.example""#, true),
            (r#"from = { equals = "Alice@Customer.Example", case_sensitive = true }"#, true),
            (r#"from = { equals = "alice@customer.example", case_sensitive = true }"#, false),
            (r#"from = { not_equals = "bob@other.example" }"#, true),
            (r#"from = { not_equals = "ALICE@customer.example" }"#, false),
            (r#"from_domain = "customer.example""#, true),
            (r#"from_domain = { ends_with = ".EXAMPLE" }"#, true),
            (r#"from_domain = { not_ends_with = ".example" }"#, false),
            (r#"from_name = { contains = "smith" }"#, true),
            (r#"from_name = { not_contains = "smith" }"#, false),
            (r#"from_name = { contains = "smith", case_sensitive = true }"#, false),
            (r#"recipient = { ends_with = "billing@example.com" }"#, true),
            (r#"recipient = "helpdesk@example.com""#, true),
            (r#"recipient = { starts_with = "support@" }"#, true),
            (r#"recipient = { not_starts_with = "support@" }"#, false),
            (r#"recipient = { not_contains = "sales" }"#, true),
            (r#"recipient = { not_contains = "example.com" }"#, false),
        ],
        &mail(),
        &NEW,
    );
}

#[test]
fn subject_and_body_operators() {
    check(
        &[
            (r#"subject = { contains = "OVERDUE" }"#, true),
            (r#"subject = { contains = "ärger" }"#, true),
            (r#"subject = { contains = "ärger", case_sensitive = true }"#, false),
            (r#"subject = { not_contains = "refund" }"#, true),
            (r#"subject = { starts_with = "invoice" }"#, true),
            (r#"subject = { not_starts_with = "re:" }"#, true),
            (r#"subject = { ends_with = "ärger" }"#, true),
            (r#"subject = { not_ends_with = "ärger" }"#, false),
            (r##"subject = { regex = '#\d+' }"##, true),
            (r#"subject = { regex = '^overdue' }"#, false),
            (r#"subject = { not_regex = '^overdue' }"#, true),
            (r#"subject = { not_regex = 'overdue' }"#, false),
            (r#"subject = { regex = 'INVOICE', case_sensitive = true }"#, false),
            (r#"subject = { glob = "invoice*overdue*" }"#, true),
            (r#"subject = { glob = "invoice" }"#, false),
            (r#"subject = { not_glob = "*spam*" }"#, true),
            (r#"subject = { glob = "*ÄRGER" }"#, true),
            (r#"subject = { glob = "?nvoice #*" }"#, true),
            (r#"subject = { glob = "*#12345*" }"#, true),
            (r#"subject = { glob = "*#12345" }"#, false),
            (r#"subject = { glob = "Invoice*", case_sensitive = true }"#, true),
            (r#"subject = { glob = "invoice*", case_sensitive = true }"#, false),
            (r#"subject = ["x", "invoice #12345 overdue – ärger"]"#, true),
            (r#"subject = { in = ["x", "y"] }"#, false),
            (r#"subject = { not_in = ["x", "y"] }"#, true),
            (r#"subject = { equals = "invoice #12345 overdue – ärger" }"#, true),
            (r#"body = { contains = "find attached" }"#, true),
            (r#"body = { regex = '(?m)^thanks$' }"#, true),
            (r#"body = { not_contains = "urgent" }"#, true),
        ],
        &mail(),
        &NEW,
    );
}

#[test]
fn headers_classification_attachments_size() {
    check(
        &[
            (r#"header = { name = "x-spam-flag", equals = "no" }"#, true),
            (r#"header = { name = "X-Spam-Flag", equals = "YES" }"#, false),
            (r#"header = { name = "Received", contains = "mx2" }"#, true),
            (r#"header = { name = "X-Missing", not_equals = "x" }"#, true),
            (r#"header = { name = "X-Missing", contains = "x" }"#, false),
            (r#"header = { name = "X-Mailer", exists = true }"#, true),
            (r#"header = { name = "List-Id", exists = false }"#, true),
            (r#"header = { name = "List-Id", exists = true }"#, false),
            (r#"classification = "human""#, true),
            (r#"classification = { in = ["bounce", "auto-reply"] }"#, false),
            (r#"classification = { not_in = ["bounce", "auto-reply"] }"#, true),
            ("has_attachment = true", true),
            ("has_attachment = false", false),
            (r#"attachment_type = { starts_with = "application/" }"#, true),
            (r#"attachment_type = { glob = "image/*" }"#, false),
            (r#"attachment_ext = "pdf""#, true),
            (r#"attachment_name = { ends_with = ".pdf" }"#, true),
            (r#"size = { greater_than = "10KB" }"#, true),
            (r#"size = { greater_than = "1MB" }"#, false),
            (r#"size = { less_than = 20001 }"#, true),
            (r#"size = { greater_than = 1000, less_than = "19KB" }"#, false),
            ("followup = false", true),
            ("followup = true", false),
            (r#"queue = "billing""#, false),
            (r#"queue = { not_equals = "billing" }"#, true),
        ],
        &mail(),
        &NEW,
    );
}

#[test]
fn combinators_nest() {
    check(
        &[
            (r#"all = [{ from_domain = "customer.example" }, { subject = { contains = "invoice" } }]"#, true),
            (r#"all = [{ from_domain = "customer.example" }, { subject = { contains = "refund" } }]"#, false),
            (r#"any = [{ from_domain = "other.example" }, { subject = { contains = "invoice" } }]"#, true),
            (r#"any = [{ from_domain = "other.example" }, { subject = { contains = "refund" } }]"#, false),
            (r#"not = { from_domain = "customer.example" }"#, false),
            (r#"not = { from_domain = "other.example" }"#, true),
            ("from_domain = \"customer.example\"\nsubject = { contains = \"refund\" }", false),
            ("from_domain = \"customer.example\"\nsubject = { contains = \"invoice\" }", true),
            (
                r#"any = [{ not = { has_attachment = true } }, { all = [{ subject = { contains = "invoice" } }, { not = { body = { contains = "urgent" } } }] }]"#,
                true,
            ),
            (
                "[[rule.when.any]]\nfrom = \"x@y.example\"\n[[rule.when.any]]\nsubject = { contains = \"overdue\" }",
                true,
            ),
        ],
        &mail(),
        &NEW,
    );
}

#[test]
fn follow_up_conditions_see_the_ticket_queue() {
    let ctx = RouteContext { is_followup: true, current_queue: Some("Billing"), default_queue: "support" };
    check(
        &[
            ("followup = true", true),
            ("followup = true\nqueue = \"billing\"", true),
            ("followup = true\nqueue = { in = [\"sales\", \"vip\"] }", false),
            ("followup = true\nqueue = { equals = \"billing\", case_sensitive = true }", false),
        ],
        &mail(),
        &ctx,
    );
}

#[test]
fn missing_sender_fails_positive_and_passes_negated_operators() {
    let mut m = mail();
    m.from = None;
    check(
        &[
            (r#"from = { contains = "@" }"#, false),
            (r#"from = { not_contains = "@" }"#, true),
            (r#"from_domain = { not_in = ["customer.example"] }"#, true),
            (r#"from_name = { regex = '.' }"#, false),
        ],
        &m,
        &NEW,
    );
}
