//! Table-driven cases for the classifier's rules, one per cause; whole-mail fixtures are in `tests/classify.rs`.

use super::*;
use crate::model::Permanence;

fn h(name: &str, value: &str) -> Header {
    Header { name: name.into(), value: value.into() }
}

fn verdict(headers: &[Header], subject: &str, from: &str, text: &str) -> Verdict {
    let from = Address::new(None, from);
    classify(&Evidence { headers, subject, from: Some(&from), text, ..Default::default() })
}

#[test]
fn header_names_are_case_insensitive() {
    for name in ["List-ID", "list-id", "LIST-ID", "List-Id"] {
        let headers = [h(name, "<x.lists.example.org>"), h("PRECEDENCE", "bulk")];
        let v = verdict(&headers, "Re: [x] release plan", "ann@example.org", "I agree.");
        assert_eq!(v.classification, Classification::List, "{name}");
    }
    for name in ["AUTO-SUBMITTED", "auto-submitted"] {
        let v = verdict(&[h(name, "auto-replied")], "Re: x", "a@example.org", "text");
        assert_eq!(v.classification, Classification::AutoReply, "{name}");
    }
    let v = verdict(&[h("precedence", "LIST")], "x", "a@example.org", "text");
    assert_eq!(v.classification, Classification::List);
}

#[test]
fn a_list_post_with_precedence_bulk_is_not_an_auto_reply() {
    let headers =
        [h("List-ID", "Dev <dev.example.org>"), h("Precedence", "bulk"), h("X-Auto-Response-Suppress", "All")];
    let v =
        verdict(&headers, "Re: out of office policy", "bob@example.org", "I am out of the office next week, sorry.");
    assert_eq!(v.classification, Classification::List);
}

#[test]
fn people_writing_about_absence_or_bounces_stay_human() {
    let cases = [
        ("Re: Absence request for Monday", "I will be on vacation from Monday, Bob covers."),
        ("Out of office coverage", "Who covers for Anna while she is on leave?"),
        (
            "Fwd: Undelivered Mail Returned to Sender",
            "Why does this bounce?\n\n> Your message was not delivered:\n> user unknown",
        ),
        ("Re: bounced mail", "Your reply bounced: user unknown, it said. Please check."),
        ("Whitelist our IP please", "Can you whitelist 192.0.2.1? We want to ensure delivery of your newsletters."),
        ("Thank you for your email", "Thanks for answering so fast."),
        ("Re: Re: your question (Automatic Response)", "Your auto-responder answered me. When are you back?"),
    ];
    for (subject, text) in cases {
        let v = verdict(&[], subject, "carol@customer.example", text);
        assert_eq!(v.classification, Classification::Human, "{subject}: {:?}", v.reason);
    }
}

#[test]
fn responders_are_auto_replies() {
    let cases: &[(&[Header], &str, &str)] = &[
        (&[], "Automatic reply: your question", "Thanks"),
        (&[], "Out of Office AutoReply: x", "Away"),
        (&[], "Abwesenheitsnotiz: Anfrage", "Ich bin nicht da"),
        (&[], "Réponse automatique : x", "absent"),
        (&[], "[Automatyczna odpowiedź] test", "x"),
        (&[], "自動回覆: 問題", "x"),
        (&[], "Re: your question (Automatic Response)", "I am out of the office until Monday."),
        (&[h("X-Autoreply", "yes")], "Re: x", "x"),
        (&[h("Precedence", "bulk")], "Re: x", "I am out of the office until Monday."),
        (&[h("X-Auto-Response-Suppress", "All")], "Away until Monday", "I am currently on vacation."),
    ];
    for (headers, subject, text) in cases {
        let v = verdict(headers, subject, "dan@example.org", text);
        assert_eq!(v.classification, Classification::AutoReply, "{subject}");
    }
}

#[test]
fn read_receipts_are_automatic() {
    let from = Address::new(None, "erin@example.org");
    let e = Evidence {
        subject: "Read: your ticket",
        from: Some(&from),
        content_type: "multipart/report".into(),
        report_type: Some("disposition-notification".into()),
        ..Default::default()
    };
    assert_eq!(classify(&e).classification, Classification::AutoReply);
    let e = Evidence { subject: "Gelesen: x", from: Some(&from), disposition_notification: true, ..Default::default() };
    assert_eq!(classify(&e).classification, Classification::AutoReply);
}

fn dsn(blocks: &str) -> Verdict {
    let from = Address::new(None, "MAILER-DAEMON@mx.example.net");
    classify(&Evidence {
        subject: "Delivery Status Notification",
        from: Some(&from),
        content_type: "multipart/report".into(),
        report_type: Some("delivery-status".into()),
        delivery_status: vec![format!("Reporting-MTA: dns; mx.example.net\n\n{blocks}")],
        ..Default::default()
    })
}

#[test]
fn dsn_action_decides_permanence() {
    let v = dsn("Final-Recipient: rfc822; a@example.com\nAction: failed\nStatus: 4.4.7\n\n\
                 Final-Recipient: rfc822; b@example.com\nAction: delayed\nStatus: 4.4.1\n\n\
                 Final-Recipient: rfc822; c@example.com\nAction: delivered\nStatus: 2.0.0\n\n\
                 Final-Recipient: rfc822;\"d@example.com\"\nStatus: 5.1.1\n");
    let r = &v.bounce.unwrap().recipients;
    let got: Vec<(&str, Option<Permanence>)> = r.iter().map(|r| (r.address.as_str(), r.permanence)).collect();
    assert_eq!(
        got,
        [
            ("a@example.com", Some(Permanence::Permanent)),
            ("b@example.com", Some(Permanence::Temporary)),
            ("c@example.com", None),
            ("d@example.com", Some(Permanence::Permanent)),
        ]
    );
    // An expired 4.x.x failure is final for the mail but says nothing about the address.
    assert!(r[0].is_permanent() && !r[0].suppresses_address());
    assert!(!r[1].suppresses_address() && !r[2].suppresses_address() && r[3].suppresses_address());
}

#[test]
fn dsn_recipient_with_program_or_route_is_the_address() {
    let v = dsn("Final-Recipient: rfc822; |/usr/bin/procmail -f- u@example.com\nAction: failed\n\n\
                 Final-Recipient: RFC822; <'q@example.com'>\nAction: failed\n");
    let got: Vec<String> = v.bounce.unwrap().recipients.into_iter().map(|r| r.address).collect();
    assert_eq!(got, ["u@example.com", "q@example.com"]);
}

fn text_bounce(subject: &str, headers: &[Header], text: &str) -> Verdict {
    let from = Address::new(Some("Mail Delivery System"), "MAILER-DAEMON@mx.example.net");
    let to = [Address::new(None, "support@helpdesk.example")];
    classify(&Evidence { headers, subject, from: Some(&from), to: &to, text, ..Default::default() })
}

fn summary(v: &Verdict) -> Vec<(String, Option<Permanence>)> {
    v.bounce.iter().flat_map(|b| b.recipients.iter()).map(|r| (r.address.clone(), r.permanence)).collect()
}

#[test]
fn free_text_permanence_comes_from_the_wording() {
    let p = Some(Permanence::Permanent);
    let t = Some(Permanence::Temporary);
    let cases: &[(&str, &str, Option<Permanence>)] = &[
        ("Undelivered Mail", "Could not be delivered to:\n\n  x@example.com: user unknown\n", p),
        // A returned mail is a failed delivery, whatever the reason; see `suppresses_address` for what follows.
        ("Undelivered Mail", "Could not be delivered to:\n\n  x@example.com: mailbox full\n", p),
        ("Undelivered Mail", "Could not be delivered to:\n\n  x@example.com: 552 5.2.2 mailbox full\n", p),
        (
            "Warning: message delayed",
            "Delivery to the following recipient has been delayed:\n\n  x@example.com\n\nWill retry for 4 more days.\n",
            t,
        ),
        (
            "failure notice",
            "Hi. This is the qmail-send program.\n\n<x@example.com>:\nI'm not going to try again; this message has been in the queue too long.\n",
            p,
        ),
    ];
    for (subject, text, want) in cases {
        let v = text_bounce(subject, &[], text);
        assert_eq!(v.classification, Classification::Bounce, "{text}");
        assert_eq!(summary(&v), [("x@example.com".to_string(), *want)], "{text}");
    }
}

#[test]
fn free_text_recipients_are_the_failed_ones() {
    // Every failed recipient; not the sender echoed in MAIL FROM, not the bounce's own To, not help addresses.
    let text = "This message was created automatically by mail delivery software.\n\n\
        A message that you sent could not be delivered to one or more of its recipients.\n\n\
          'a@example.com'\n    SMTP error from remote mail server after MAIL FROM:<support@helpdesk.example>:\n    550 5.1.1 unknown\n\
          b@example.com\n    SMTP error from remote mail server after RCPT TO:<b@example.com>:\n    550 5.1.1 unknown\n\n\
        For help, write to postmaster@mx.example.net.\n";
    let v = text_bounce("Mail delivery failed", &[], text);
    let got: Vec<String> = summary(&v).into_iter().map(|(a, _)| a).collect();
    assert_eq!(got, ["a@example.com", "b@example.com"], "{v:?}");
    let text =
        "Your message could not be delivered to:\n\n  x@example.com\n\nList help:\n  dev-request@lists.example.org\n";
    let v = text_bounce("Undeliverable", &[], text);
    let got: Vec<String> = summary(&v).into_iter().map(|(a, _)| a).collect();
    assert_eq!(got, ["x@example.com"], "a list's admin address is never a recipient");
    let headers = [h("x-failed-recipients", "c@example.com, d@example.com")];
    let v = text_bounce("Mail delivery failed", &headers, "could not be delivered\n c@example.com: 550 5.1.1\n");
    let got: Vec<String> = summary(&v).into_iter().map(|(a, _)| a).collect();
    assert_eq!(got, ["c@example.com", "d@example.com"]);
}

#[test]
fn a_notice_without_a_sender_address_is_a_bounce() {
    let e = Evidence {
        subject: "Message could not be delivered",
        text: "Your message to x@example.com could not be delivered: no such user.",
        ..Default::default()
    };
    assert_eq!(classify(&e).classification, Classification::Bounce);
}

#[test]
fn a_bounce_line_of_thousands_of_addresses_names_each_recipient_once() {
    // Fuzzing found a qmail notice whose one 53 KB line repeats an address: every address re-read the line before it.
    let text = format!(
        "Hi. This is the qmail-send program at mail.example.net.\n\
         I'm afraid I wasn't able to deliver your message to the following addresses.\n\
         This is a permanent error; I've given up. Sorry it didn't work out.\n\n<{}>:\n",
        "nobody.here@example.net>".repeat(5_000)
    );
    let v = text_bounce("failure notice", &[], &text);
    let got: Vec<String> = v.bounce.unwrap().recipients.into_iter().map(|r| r.address).collect();
    assert_eq!(got, ["nobody.here@example.net"]);
}
