//! Hostile senders and hostile surroundings (issue 10), through the real binary without a network: ticket hijack
//! through Cc and Reply-To, joining by reference, backscatter, files readable by other local users.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).permissions().mode() & 0o777
}

/// Runs the daemon from a shell with umask 022, as cron or a login shell would, against an IMAP port where nothing
/// listens: it opens the database and records its state while it retries.
#[test]
fn readable_mail_outside_systemd_umask_022_creates_nothing_group_or_world_readable() {
    let env = Env::with_extra("");
    let state = env.dir.path().join("state");
    let password = env.dir.path().join("imap-password");
    std::fs::write(&password, "pw").unwrap();
    std::fs::set_permissions(&password, std::fs::Permissions::from_mode(0o600)).unwrap();
    let config = std::fs::read_to_string(&env.config).unwrap()
        + &format!(
            "[imap]\nhost = \"127.0.0.1\"\nport = 9\ntls = \"plain\"\nusername = \"u\"\npassword_file = \"{}\"\n\
             reconnect_max_seconds = 1\n",
            password.display()
        );
    std::fs::write(&env.config, config).unwrap();
    let script =
        format!("umask 022; exec '{}' --config '{}' run", env!("CARGO_BIN_EXE_postdesk"), env.config.display());
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(&script)
        .env("POSTDESK_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let db = state.join("postdesk.db");
    let wal = state.join("postdesk.db-wal");
    let started = Instant::now();
    while !(db.exists() && wal.exists()) && started.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(100));
    }
    let seen: Vec<(String, u32)> = std::fs::read_dir(&state)
        .unwrap()
        .map(|e| e.unwrap().path())
        .map(|p| (p.file_name().unwrap().to_string_lossy().into_owned(), mode(&p)))
        .collect();
    let dir_mode = mode(&state);
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    assert!(wal.exists() || seen.iter().any(|(n, _)| n.ends_with("-wal")), "no WAL appeared: {seen:?} {out:?}");
    assert!(seen.iter().any(|(n, _)| n == "postdesk.db"), "{seen:?}");
    assert_eq!(dir_mode & 0o077, 0, "state directory is {dir_mode:o}");
    for (name, m) in &seen {
        assert_eq!(m & 0o077, 0, "{name} is {m:o}: readable by other local users");
    }
    // A one-shot command from the same shell creates its files privately too.
    let fresh = Env::with_extra("");
    let script = format!(
        "umask 022; '{}' --config '{}' ingest < '{}'",
        env!("CARGO_BIN_EXE_postdesk"),
        fresh.config.display(),
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/new-ticket.eml").display()
    );
    let out = Command::new("sh").arg("-c").arg(&script).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let state = fresh.dir.path().join("state");
    assert_eq!(mode(&state) & 0o077, 0);
    assert_eq!(mode(&state.join("postdesk.db")) & 0o077, 0);
}

const DESK: &str = "[smtp]\nhost = \"127.0.0.1\"\nport = 9\ntls = \"plain\"\n[[role]]\nname = \"first-level\"\n\
    queues = [\"support\"]\n[[agent]]\naddress = \"agent1@example.test\"\nname = \"Agent One\"\nroles = [\"first-level\"]\n";

fn outbox(env: &Env) -> Vec<serde_json::Value> {
    let out = env.run(&["outbox", "list", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn queued_raw(env: &Env, message_id: &str) -> String {
    let store = postdesk::store::Store::open(&env.dir.path().join("state/postdesk.db")).unwrap();
    let row = store.due_outbox(i64::MAX, 10_000).unwrap().into_iter().find(|d| d.message_id == message_id);
    String::from_utf8(row.expect("queued row").raw).unwrap()
}

/// Every address any queued mail goes to.
fn all_recipients(env: &Env) -> Vec<String> {
    outbox(env)
        .iter()
        .flat_map(|r| r["recipients"].as_array().unwrap().iter().map(|a| a.as_str().unwrap().to_string()))
        .collect()
}

/// The recipients of the newest mail of `kind`.
fn newest(env: &Env, kind: &str) -> Vec<String> {
    let rows: Vec<serde_json::Value> = outbox(env).into_iter().filter(|r| r["kind"] == kind).collect();
    let row = rows.iter().max_by_key(|r| r["id"].as_i64().unwrap()).unwrap_or_else(|| panic!("no {kind} queued"));
    let mut to: Vec<String> =
        row["recipients"].as_array().unwrap().iter().map(|a| a.as_str().unwrap().into()).collect();
    to.sort();
    to
}

/// An agent's answer on `number`, sent to the signed reply address of the newest notification.
fn agent_answers(env: &Env, number: &str, n: u32) {
    let notes: Vec<serde_json::Value> = outbox(env).into_iter().filter(|r| r["kind"] == "notification").collect();
    let note = notes.iter().max_by_key(|r| r["id"].as_i64().unwrap()).expect("a notification");
    let raw = queued_raw(env, note["message_id"].as_str().unwrap());
    let parsed = postdesk::parse::parse_mail(raw.as_bytes(), &postdesk::config::Limits::default()).unwrap();
    let answer = format!(
        "From: Agent One <agent1@example.test>\r\nTo: {}\r\nSubject: Re: [Ticket#{number}]\r\n\
         Message-ID: <agent-answer-{n}@example.test>\r\nContent-Type: text/plain\r\n\r\nWe are on it.\r\n",
        parsed.reply_to[0].email
    );
    let out = env.ingest_bytes(answer.as_bytes());
    assert!(stdout(&out).contains("(answer)"), "{}", stdout(&out));
}

fn history(env: &Env, number: &str) -> Vec<String> {
    let t = env.ticket_json(number);
    t["history"].as_array().unwrap().iter().map(|h| format!("{} {}", h["event"], h["detail"])).collect()
}

/// Issue 10 item 1: From forged to the customer, the ticket token, `Cc:` and `Reply-To:` a stranger. The stranger
/// must not become a party (agents' answers), nor get the follow-up acknowledgement (number and subject).
#[test]
fn ticket_hijack_through_cc_and_reply_to_reaches_no_stranger() {
    let env = Env::with_extra(DESK);
    let number = ticket_number(&stdout(&env.ingest_bytes(&fixture("new-ticket.eml"))));
    let forged = format!(
        "From: Alice Example <alice@customer.example>\r\nTo: support@example.test\r\n\
         Cc: stranger@evil.example\r\nReply-To: stranger@evil.example\r\n\
         Subject: Re: [Ticket#{number}] Printer on the 3rd floor is on fire\r\nMessage-ID: <forged-1@evil.example>\r\n\
         Content-Type: text/plain\r\n\r\nPlease copy my assistant.\r\n"
    );
    let out = env.ingest_bytes(forged.as_bytes());
    assert!(stdout(&out).contains(&format!("follow-up on ticket {number} (by subject token)")), "{}", stdout(&out));
    assert!(!all_recipients(&env).iter().any(|r| r.contains("evil")), "{:?}", outbox(&env));
    let history = history(&env, &number);
    assert!(history.iter().any(|h| h.contains("withheld") && h.contains("stranger@evil.example")), "{history:?}");
    assert!(history.iter().any(|h| h.contains("parties not added") && h.contains("stranger@evil.example")));
    agent_answers(&env, &number, 1);
    // The Cc of the ticket's first mail stays a party; the forged Cc never became one.
    assert_eq!(newest(&env, "agent-reply"), vec!["alice@customer.example", "bob@customer.example"]);
    assert!(!all_recipients(&env).iter().any(|r| r.contains("evil")), "{:?}", outbox(&env));
}

/// What keeps working: the customer answering our signed mail adds her Cc and is acknowledged at her Reply-To;
/// the customer writing again with only the token is acknowledged at her own (party) address.
#[test]
fn follow_ups_answering_our_signed_mail_still_add_cc_and_honour_reply_to() {
    let env = Env::with_extra(DESK);
    let number = ticket_number(&stdout(&env.ingest_bytes(&fixture("new-ticket.eml"))));
    let ack = outbox(&env).into_iter().find(|r| r["kind"] == "acknowledgement").unwrap();
    let ack_id = ack["message_id"].as_str().unwrap();
    let reply = format!(
        "From: Alice Example <alice@customer.example>\r\nTo: support@example.test\r\nCc: carol@customer.example\r\n\
         Reply-To: alice.home@customer.example\r\nSubject: Re: [Ticket#{number}] Printer\r\n\
         Message-ID: <reply-1@customer.example>\r\nIn-Reply-To: <{ack_id}>\r\nReferences: <first-mail.4711@customer.example> <{ack_id}>\r\n\
         Content-Type: text/plain\r\n\r\nStill smoking.\r\n"
    );
    assert!(stdout(&env.ingest_bytes(reply.as_bytes())).contains("follow-up"));
    assert_eq!(newest(&env, "followup"), vec!["alice.home@customer.example"]);
    agent_answers(&env, &number, 1);
    assert_eq!(
        newest(&env, "agent-reply"),
        vec!["alice@customer.example", "bob@customer.example", "carol@customer.example"]
    );
    let bare = format!(
        "From: alice@customer.example\r\nTo: support@example.test\r\nSubject: [Ticket#{number}] any news?\r\n\
         Message-ID: <reply-2@customer.example>\r\nContent-Type: text/plain\r\n\r\nHello?\r\n"
    );
    let before = outbox(&env).len();
    assert!(stdout(&env.ingest_bytes(bare.as_bytes())).contains("by subject token"));
    assert_eq!(outbox(&env).len(), before + 2, "an acknowledgement and a notification");
    assert_eq!(newest(&env, "followup"), vec!["alice@customer.example"]);
}

/// Issue 10 item 2: a stranger whose mail only references the customer's Message-ID joins the ticket (agents see
/// it) but learns nothing: no acknowledgement with the ticket's number and subject.
#[test]
fn join_by_reference_leaks_nothing_of_the_ticket() {
    let env = Env::with_extra(DESK);
    let number = ticket_number(&stdout(&env.ingest_bytes(&fixture("new-ticket.eml"))));
    let acks_before = outbox(&env).iter().filter(|r| r["kind"] != "notification").count();
    let probe = "From: mallory@evil.example\r\nTo: support@example.test\r\nCc: friend@evil.example\r\nSubject: hi\r\n\
        Message-ID: <probe-1@evil.example>\r\nIn-Reply-To: <first-mail.4711@customer.example>\r\n\
        Content-Type: text/plain\r\n\r\nWhat is this about?\r\n";
    let out = env.ingest_bytes(probe.as_bytes());
    assert!(stdout(&out).contains(&format!("follow-up on ticket {number}")), "{}", stdout(&out));
    assert_eq!(outbox(&env).iter().filter(|r| r["kind"] != "notification").count(), acks_before);
    assert!(!all_recipients(&env).iter().any(|r| r.contains("evil")), "{:?}", outbox(&env));
    assert!(history(&env, &number).iter().any(|h| h.contains("withheld") && h.contains("mallory@evil.example")));
    agent_answers(&env, &number, 1);
    assert_eq!(newest(&env, "agent-reply"), vec!["alice@customer.example", "bob@customer.example"]);
}

/// Issue 10 item 6: forged senders used to make us mail third parties. `user+1@`, `user+2@` … are one sender for
/// the per-sender limit, and first-time senders share an hourly cap; refusals show in `status` and the history.
#[test]
fn backscatter_from_forged_senders_is_capped_per_normalised_sender_and_per_hour() {
    let env = Env::with_extra(
        "[smtp]\nhost = \"127.0.0.1\"\nport = 9\ntls = \"plain\"\n[replies]\nmax_unknown_senders_per_hour = 10\n",
    );
    let mail = |from: &str, n: usize| {
        format!(
            "From: {from}\r\nTo: support@example.test\r\nSubject: question {n}\r\nMessage-ID: <bs-{n}@evil.example>\r\n\
             Content-Type: text/plain\r\n\r\nAttacker text {n}.\r\n"
        )
    };
    for n in 0..8 {
        env.ingest_bytes(mail(&format!("Victim+{n}@Target.example"), n).as_bytes());
    }
    let acks = |env: &Env| outbox(env).iter().filter(|r| r["kind"] == "acknowledgement").count();
    assert_eq!(acks(&env), 5, "plus-variants of one address share its limit of 5");
    let mut last = String::new();
    for n in 8..18 {
        last = ticket_number(&stdout(&env.ingest_bytes(mail(&format!("forged{n}@elsewhere.example"), n).as_bytes())));
    }
    assert_eq!(env.tickets().len(), 18, "every mail still makes its ticket");
    assert_eq!(acks(&env), 10, "at most 10 automatic replies an hour to first-time senders");
    assert!(history(&env, &last).iter().any(|h| h.contains("withheld") && h.contains("hourly cap")));
    let out = env.run(&["status", "--json"]);
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status["auto_replies"]["refused_sender_limit_24h"], 3, "{status}");
    assert_eq!(status["auto_replies"]["refused_unknown_senders_cap_24h"], 5, "{status}");
    assert_eq!(status["auto_replies"]["unknown_senders_last_hour"], 10, "{status}");
    let text = stdout(&env.run(&["status"]));
    assert!(text.contains("refused in 24h: 3 by the per-sender limit, 5 by the hourly cap"), "{text}");
    // A customer we know (a party of an earlier ticket) is not held back by the cap for strangers.
    let known = String::from_utf8(fixture("new-ticket.eml")).unwrap();
    env.ingest_bytes(known.as_bytes());
    std::thread::sleep(Duration::from_millis(1100));
    let again = known.replace("first-mail.4711", "second-mail").replace("on fire", "still on fire");
    env.ingest_bytes(again.as_bytes());
    let to_alice = outbox(&env).iter().filter(|r| r["recipients"][0] == "alice@customer.example").count();
    assert_eq!(to_alice, 1, "the first mail from alice met the cap; her second, as a known customer, did not");
}
