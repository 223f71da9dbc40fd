//! Automatic replies as the outbox records them, without a network: the relay is configured but nothing sends
//! (no daemon runs), so every row the pipeline queues can be inspected.

mod common;

use common::*;

const SMTP: &str = "[smtp]\nhost = \"127.0.0.1\"\nport = 9\ntls = \"plain\"\n";

fn env() -> Env {
    Env::with_extra(SMTP)
}

fn outbox(env: &Env) -> Vec<serde_json::Value> {
    let out = env.run(&["outbox", "list", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The raw bytes queued for `ticket`'s acknowledgement, read from the database.
fn queued_raw(env: &Env, message_id: &str) -> String {
    let store = postdesk::store::Store::open(&env.dir.path().join("state/postdesk.db")).unwrap();
    let due = store.due_outbox(i64::MAX, 1000).unwrap();
    let row = due.into_iter().find(|d| d.message_id == message_id).expect("queued row");
    String::from_utf8(row.raw).unwrap()
}

fn mail(from: &str, subject: &str, extra: &str, n: u32) -> Vec<u8> {
    format!(
        "From: {from}\r\nTo: support@example.test\r\nSubject: {subject}\r\nMessage-ID: <m{n}@customer.example>\r\n{extra}\
         Content-Type: text/plain\r\n\r\nHello.\r\n"
    )
    .into_bytes()
}

#[test]
fn a_new_ticket_queues_an_acknowledgement_with_token_and_threading_headers() {
    let env = env();
    let out = env.ingest_bytes(&fixture("new-ticket.eml"));
    let number = ticket_number(&stdout(&out));
    let rows = outbox(&env);
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["kind"], "acknowledgement");
    assert_eq!(rows[0]["state"], "queued");
    assert_eq!(rows[0]["recipients"][0], "alice@customer.example");
    let raw = queued_raw(&env, rows[0]["message_id"].as_str().unwrap());
    assert!(raw.contains(&format!("[Ticket#{number}]")), "{raw}");
    assert!(raw.contains("In-Reply-To: <first-mail.4711@customer.example>"), "{raw}");
    assert!(raw.contains("References: <first-mail.4711@customer.example>"), "{raw}");
    assert!(
        raw.contains("Auto-Submitted: auto-replied") && raw.contains("X-Postdesk-Loop: support@example.test"),
        "{raw}"
    );
    // The reply shows on the ticket as an outbound article.
    let t = env.ticket_json(&number);
    let arts = t["articles"].as_array().unwrap();
    assert_eq!(arts.len(), 2);
    assert_eq!(arts[1]["direction"], "outbound");
    assert_eq!(arts[1]["message_id"], rows[0]["message_id"]);
}

#[test]
fn automatic_and_bulk_mail_make_tickets_but_get_no_reply() {
    let env = env();
    let cases: [(&str, &str); 3] = [
        ("Out of office: your mail", "Auto-Submitted: auto-replied\r\n"),
        ("Weekly digest", "List-Id: <news.lists.example>\r\nList-Unsubscribe: <mailto:leave@lists.example>\r\n"),
        ("Special offer", "Precedence: bulk\r\n"),
    ];
    for (n, (subject, extra)) in cases.iter().enumerate() {
        let out = env.ingest_bytes(&mail(&format!("sender{n}@customer.example"), subject, extra, n as u32));
        assert!(stdout(&out).contains("new ticket"), "{subject}: {}", stdout(&out));
    }
    // A bounce about a mail we never sent (backscatter) is filed too, and never answered.
    let dsn = "Return-Path: <>\r\nFrom: Mail Delivery System <MAILER-DAEMON@mx.example>\r\nTo: support@example.test\r\n\
        Subject: Undelivered Mail Returned to Sender\r\nMessage-ID: <dsn-9@mx.example>\r\nMIME-Version: 1.0\r\n\
        Content-Type: multipart/report; report-type=delivery-status; boundary=\"B\"\r\n\r\n--B\r\n\
        Content-Type: text/plain\r\n\r\nUndeliverable.\r\n--B\r\nContent-Type: message/delivery-status\r\n\r\n\
        Reporting-MTA: dns; mx.example\r\n\r\nFinal-Recipient: rfc822; nobody@else.example\r\nAction: failed\r\n\
        Status: 5.1.1\r\n\r\n--B--\r\n";
    let out = env.ingest_bytes(dsn.as_bytes());
    assert!(stdout(&out).contains("new ticket"), "{}", stdout(&out));
    assert_eq!(env.tickets().len(), 4);
    assert!(outbox(&env).is_empty(), "{:?}", outbox(&env));
    let mailer_daemon = mail("MAILER-DAEMON@mx.example", "Delivery failure", "", 99);
    env.ingest_bytes(&mailer_daemon);
    assert!(outbox(&env).is_empty());
}

#[test]
fn at_most_five_automatic_replies_per_sender_per_day() {
    let env = env();
    for n in 0..8 {
        env.ingest_bytes(&mail("chatty@customer.example", &format!("question {n}"), "", n));
    }
    assert_eq!(env.tickets().len(), 8);
    assert_eq!(outbox(&env).len(), 5);
}

#[test]
fn our_own_mail_coming_back_never_becomes_a_ticket() {
    let env = env();
    env.ingest_bytes(&fixture("new-ticket.eml"));
    let rows = outbox(&env);
    let raw = queued_raw(&env, rows[0]["message_id"].as_str().unwrap());
    let out = env.ingest_bytes(raw.as_bytes());
    assert!(stdout(&out).contains("loop guard"), "{}", stdout(&out));
    assert_eq!(env.tickets().len(), 1);
}

/// A delivery status notification (RFC 3464) saying our mail `ack_id` to alice@customer.example failed with 5.1.1.
fn dsn_for(ack_id: &str, number: &str) -> String {
    format!(
        "From: MAILER-DAEMON@mx.example.test (Mail Delivery System)\r\nTo: support@example.test\r\n\
         Subject: Undelivered Mail Returned to Sender\r\nMessage-ID: <dsn-1@mx.example.test>\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/report; report-type=delivery-status; boundary=\"B\"\r\n\r\n\
         --B\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n\
         --B\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.test\r\n\r\n\
         Final-Recipient: rfc822; alice@customer.example\r\nAction: failed\r\nStatus: 5.1.1\r\n\
         Diagnostic-Code: smtp; 550 5.1.1 user unknown\r\n\r\n\
         --B\r\nContent-Type: text/rfc822-headers\r\n\r\nFrom: support@example.test\r\nTo: alice@customer.example\r\n\
         Message-ID: <{ack_id}>\r\nSubject: [Ticket#{number}] Printer\r\n\r\n--B--\r\n"
    )
}

#[test]
fn a_bounce_of_our_reply_lands_on_its_ticket_and_suppresses_the_address() {
    let env = env();
    let number = ticket_number(&stdout(&env.ingest_bytes(&fixture("new-ticket.eml"))));
    let ack_id = outbox(&env)[0]["message_id"].as_str().unwrap().to_string();
    let dsn = dsn_for(&ack_id, &number);
    let out = env.ingest_bytes(dsn.as_bytes());
    assert!(stdout(&out).contains(&format!("follow-up on ticket {number} (by bounce of")), "{}", stdout(&out));
    let t = env.ticket_json(&number);
    assert_eq!(t["state"], "new", "a bounce never reopens or changes the ticket state");
    assert_eq!(t["articles"].as_array().unwrap().last().unwrap()["classification"], "bounce");
    let list = stdout(&env.run(&["suppress", "list"]));
    assert!(list.contains("alice@customer.example") && list.contains("5.1.1"), "{list}");
    assert!(outbox(&env)[0]["bounced"].as_str().unwrap().contains("5.1.1"));

    // Suppressed: no acknowledgement for her next ticket, until an admin clears the address.
    let mut again = fixture("new-ticket.eml");
    again = String::from_utf8(again)
        .unwrap()
        .replace("first-mail.4711", "second")
        .replace("on fire", "smoking")
        .into_bytes();
    env.ingest_bytes(&again);
    assert_eq!(outbox(&env).len(), 1);
    assert!(env.run(&["suppress", "remove", "Alice@Customer.example"]).status.success());
    let third = String::from_utf8(again).unwrap().replace("<second", "<third").replace("smoking", "gone").into_bytes();
    env.ingest_bytes(&third);
    assert_eq!(outbox(&env).len(), 2);
}

/// Regression: a 5.x.x status was the only test of permanence, so a "delayed" DSN carrying a 5.x.x code, or any
/// permanent failure that says nothing about the address, could suppress a customer. Only `Action: failed` with
/// an address-level status may (RFC 3464 §2.3.3, RFC 3463 §3.3).
#[test]
fn a_delay_warning_or_a_full_mailbox_never_suppresses_the_address() {
    for (action, status) in [("delayed", "4.4.1"), ("delayed", "5.1.1"), ("failed", "5.2.2"), ("failed", "4.4.7")] {
        let env = env();
        let number = ticket_number(&stdout(&env.ingest_bytes(&fixture("new-ticket.eml"))));
        let ack_id = outbox(&env)[0]["message_id"].as_str().unwrap().to_string();
        let dsn =
            dsn_for(&ack_id, &number).replace("Action: failed", &format!("Action: {action}")).replace("5.1.1", status);
        let out = env.ingest_bytes(dsn.as_bytes());
        assert!(stdout(&out).contains(&format!("follow-up on ticket {number} (by bounce of")), "{}", stdout(&out));
        let list = stdout(&env.run(&["suppress", "list"]));
        assert!(!list.contains("alice@customer.example"), "{action} {status} suppressed: {list}");
    }
}

#[test]
fn crlf_in_a_subject_cannot_inject_headers_into_our_reply() {
    let env = env();
    let evil = mail("eve@customer.example", "=?utf-8?q?Hello=0D=0ABcc:_victim@example.org?=", "", 1);
    env.ingest_bytes(&evil);
    let rows = outbox(&env);
    let raw = queued_raw(&env, rows[0]["message_id"].as_str().unwrap());
    let head = raw.split("\r\n\r\n").next().unwrap();
    assert_eq!(head.matches("\r\nSubject:").count(), 1, "{head}");
    assert!(!head.to_ascii_lowercase().contains("\r\nbcc:"), "{head}");
}

#[test]
fn outbox_retry_requeues_a_row_and_refuses_unknown_ids() {
    let env = env();
    env.ingest_bytes(&fixture("new-ticket.eml"));
    let id = outbox(&env)[0]["id"].as_i64().unwrap();
    assert!(env.run(&["outbox", "retry", &id.to_string()]).status.success());
    assert_eq!(env.run(&["outbox", "retry", "999"]).status.code(), Some(66));
    let status = stdout(&env.run(&["status"]));
    assert!(status.contains("outbox:      1 queued"), "{status}");
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        let target = to.join(path.file_name().unwrap());
        if path.is_dir() { copy_dir(&path, &target) } else { std::fs::copy(&path, &target).map(|_| ()).unwrap() }
    }
}

#[test]
fn a_broken_template_or_an_undefined_variable_is_refused_by_check_with_file_and_line() {
    let cases = [
        ("{% if ticket.number %}\nunclosed block\n", "acknowledgement.txt:"),
        ("Hello {{ custmer.name }}\n", "undefined"),
    ];
    for (body, expect) in cases {
        let dir = tempfile::tempdir().unwrap();
        let templates = dir.path().join("templates");
        copy_dir(std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/templates")), &templates);
        std::fs::write(
            templates.join("default/acknowledgement.txt"),
            format!("Subject: {{{{ ticket.token }}}} hi\n\n{body}"),
        )
        .unwrap();
        let env = Env::new();
        let text = std::fs::read_to_string(&env.config).unwrap();
        let text = text.replace(concat!(env!("CARGO_MANIFEST_DIR"), "/templates"), templates.to_str().unwrap());
        std::fs::write(&env.config, text).unwrap();
        let out = env.run(&["check"]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(78), "{err}");
        assert!(err.contains("default/acknowledgement.txt:") && err.contains(expect), "{err}");
        let line = err.split("acknowledgement.txt:").nth(1).unwrap().split(':').next().unwrap();
        assert!(line.parse::<usize>().is_ok(), "a line number: {err}");
    }
}

#[test]
fn config_seeded_agents_are_notified_and_a_rules_notify_list_is_told_too() {
    let env = Env::with_extra(&format!(
        "{SMTP}[[queues]]\nname = \"billing\"\n[[role]]\nname = \"first-level\"\nqueues = [\"support\"]\n\
         [[agent]]\naddress = \"Agent1@example.test\"\nname = \"Agent One\"\nroles = [\"first-level\"]\n"
    ));
    std::fs::write(
        env.dir.path().join("rules/50-boss.toml"),
        "[[rule]]\nname = \"tell the boss\"\n[rule.when]\nsubject = { contains = \"fire\" }\n[rule.then]\nnotify = [\"boss@example.test\"]\n",
    )
    .unwrap();
    env.ingest_bytes(&fixture("new-ticket.eml"));
    let agents = stdout(&env.run(&["agent", "list"]));
    assert!(agents.contains("agent1@example.test") && agents.contains("first-level"), "{agents}");
    let rows = outbox(&env);
    let to = |kind: &str| -> Vec<String> {
        rows.iter().filter(|r| r["kind"] == kind).map(|r| r["recipients"][0].as_str().unwrap().to_string()).collect()
    };
    assert_eq!(to("acknowledgement"), vec!["alice@customer.example"]);
    let mut notified = to("notification");
    notified.sort();
    assert_eq!(notified, vec!["agent1@example.test", "boss@example.test"]);
    let raw = queued_raw(
        &env,
        rows.iter().find(|r| r["recipients"][0] == "agent1@example.test").unwrap()["message_id"].as_str().unwrap(),
    );
    assert!(raw.contains("Reply-To: <support+T") || raw.contains("Reply-To: support+T"), "signed reply address: {raw}");
    assert!(raw.contains("Auto-Submitted: auto-generated"), "{raw}");
}

#[test]
fn the_queues_agents_get_a_bounce_notice_when_our_mail_bounced() {
    let env = Env::with_extra(&format!(
        "{SMTP}[[role]]\nname = \"first-level\"\nqueues = [\"support\"]\n\
         [[agent]]\naddress = \"agent1@example.test\"\nname = \"Agent One\"\nroles = [\"first-level\"]\n"
    ));
    let number = ticket_number(&stdout(&env.ingest_bytes(&fixture("new-ticket.eml"))));
    let ack = outbox(&env).into_iter().find(|r| r["kind"] == "acknowledgement").unwrap();
    env.ingest_bytes(dsn_for(ack["message_id"].as_str().unwrap(), &number).as_bytes());
    let notices: Vec<serde_json::Value> = outbox(&env).into_iter().filter(|r| r["kind"] == "bounce-notice").collect();
    assert_eq!(notices.len(), 1, "{:?}", outbox(&env));
    assert_eq!(notices[0]["recipients"][0], "agent1@example.test");
    let raw = queued_raw(&env, notices[0]["message_id"].as_str().unwrap());
    assert!(raw.contains("Undeliverable") && raw.contains("alice@customer.example"), "{raw}");
}

#[test]
fn an_unanswered_lock_times_out_and_tells_its_owner_and_pending_tickets_open_again() {
    use postdesk::thread::ThreadLookup;
    let env = Env::with_extra(&format!(
        "{SMTP}[[role]]\nname = \"first-level\"\nqueues = [\"support\"]\n\
         [[agent]]\naddress = \"agent1@example.test\"\nname = \"Agent One\"\nroles = [\"first-level\"]\n"
    ));
    let number = ticket_number(&stdout(&env.ingest_bytes(&fixture("new-ticket.eml"))));
    let second = String::from_utf8(fixture("new-ticket.eml"))
        .unwrap()
        .replace("first-mail.4711", "other")
        .replace("on fire", "out of paper");
    let pending_number = ticket_number(&stdout(&env.ingest_bytes(second.as_bytes())));
    let setup = postdesk::setup::Setup::load(&env.config).unwrap();
    let mut store = postdesk::store::Store::open(&setup.config.database_path()).unwrap();
    let now = chrono::Utc::now().timestamp();
    {
        let tx = store.begin().unwrap();
        let locked = tx.ticket_by_number(&number).unwrap().unwrap();
        tx.set_lock(locked.id, Some("agent1@example.test"), Some(now + 60)).unwrap();
        let waiting = tx.ticket_by_number(&pending_number).unwrap().unwrap();
        tx.set_pending(waiting.id, Some(now + 60)).unwrap();
        tx.commit().unwrap();
    }
    let signer =
        std::sync::Arc::new(postdesk::outbound::Signer::load_or_create(&setup.config.storage.state_dir).unwrap());
    let before =
        postdesk::pipeline::Pipeline::with_clock(setup.clone(), signer.clone(), std::sync::Arc::new(move || now));
    assert_eq!(before.housekeeping(&mut store).unwrap(), 0, "nothing is due yet");
    let later = postdesk::pipeline::Pipeline::with_clock(setup, signer, std::sync::Arc::new(move || now + 120));
    assert_eq!(later.housekeeping(&mut store).unwrap(), 2);
    assert_eq!(later.housekeeping(&mut store).unwrap(), 0, "handled once");

    let locked = env.ticket_json(&number);
    assert!(locked["history"].as_array().unwrap().iter().any(|h| h["event"] == "lock timeout"), "{locked}");
    assert_eq!(env.ticket_json(&pending_number)["state"], "open");
    let timeout_notices: Vec<serde_json::Value> = outbox(&env)
        .into_iter()
        .filter(|r| r["kind"] == "notification" && r["ticket"] == number.as_str())
        .filter(|r| queued_raw(&env, r["message_id"].as_str().unwrap()).contains("timed out"))
        .collect();
    assert_eq!(timeout_notices.len(), 1);
    assert_eq!(timeout_notices[0]["recipients"][0], "agent1@example.test");
}

#[test]
fn an_agents_answer_keeps_its_attachments_on_the_ticket() {
    let env = Env::with_extra(&format!(
        "{SMTP}[[role]]\nname = \"first-level\"\nqueues = [\"support\"]\n\
         [[agent]]\naddress = \"agent1@example.test\"\nname = \"Agent One\"\nroles = [\"first-level\"]\n"
    ));
    let number = ticket_number(&stdout(&env.ingest_bytes(&fixture("new-ticket.eml"))));
    let note = outbox(&env).into_iter().find(|r| r["kind"] == "notification").unwrap();
    let raw = queued_raw(&env, note["message_id"].as_str().unwrap());
    let notification = postdesk::parse::parse_mail(raw.as_bytes(), &postdesk::config::Limits::default()).unwrap();
    let reply_to = notification.reply_to[0].email.clone();
    let answer = format!(
        "From: Agent One <agent1@example.test>\r\nTo: {reply_to}\r\nSubject: Re: [Ticket#{number}]\r\n\
         Message-ID: <agent-answer@example.test>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"B\"\r\n\r\n\
         --B\r\nContent-Type: text/plain\r\n\r\nHere is the driver.\r\n\
         --B\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=\"driver.bin\"\r\n\
         Content-Transfer-Encoding: base64\r\n\r\nAAECAwQFBgc=\r\n--B--\r\n"
    );
    let out = env.ingest_bytes(answer.as_bytes());
    assert!(stdout(&out).contains("agent agent1@example.test (answer)"), "{}", stdout(&out));
    let ticket = env.ticket_json(&number);
    let agent_article =
        ticket["articles"].as_array().unwrap().iter().find(|a| a["direction"] == "agent").unwrap().clone();
    assert_eq!(agent_article["visible_text"], "Here is the driver.");
    assert_eq!(agent_article["attachments"][0]["filename"], "driver.bin");
    assert_eq!(agent_article["attachments"][0]["size"], 8);
}

#[test]
fn outbox_hold_release_and_cancel_work_like_postsuper_and_keep_the_reason() {
    let env = env();
    for n in 1..=2 {
        let out = env.ingest_bytes(&mail(&format!("c{n}@customer.example"), "help", "", n));
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let rows = outbox(&env);
    let (b, a) = (rows[0]["id"].as_i64().unwrap(), rows[1]["id"].as_i64().unwrap());
    let ok = |args: &[&str]| {
        let out = env.run(args);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        stdout(&out)
    };
    ok(&["outbox", "hold", &a.to_string(), "--reason", "wrong template"]);
    ok(&["outbox", "cancel", &b.to_string(), "--reason", "customer asked us to stop"]);
    let state = |id: i64| outbox(&env).into_iter().find(|r| r["id"] == id).unwrap();
    assert_eq!(state(a)["state"], "held");
    assert_eq!(state(b)["state"], "cancelled");
    assert_eq!(state(b)["admin_note"], "customer asked us to stop");
    let status = stdout(&env.run(&["status"]));
    assert!(status.contains("0 queued") && status.contains("1 held, 1 cancelled"), "{status}");

    // Wrong state and unknown rows are refused with distinct codes; nothing changes.
    assert_eq!(env.run(&["outbox", "release", &b.to_string()]).status.code(), Some(65));
    assert_eq!(
        env.run(&["outbox", "retry", &b.to_string()]).status.code(),
        Some(66),
        "a cancelled mail stays cancelled"
    );
    assert_eq!(env.run(&["outbox", "hold", "9999"]).status.code(), Some(66));
    assert_eq!(state(b)["state"], "cancelled");

    ok(&["outbox", "release", &a.to_string()]);
    assert_eq!(state(a)["state"], "queued");
    assert_eq!(state(a)["admin_note"], "wrong template", "the hold's reason stays on record");
}
