//! Retention and the rights of the people who write in: `customer erase` leaves no trace of the address anywhere in
//! the database (every column of every table is read raw, and raw mail through the store's accessor, however it is
//! stored); `customer export` hands everything over; `[retention]` purges closed tickets after N days, by a fixed
//! clock, and nothing else.

mod common;

use std::io::Write;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use common::*;
use postdesk::agents::CommandLine;
use postdesk::agents::commands::parse_command;
use postdesk::pipeline::actions::Action;
use postdesk::pipeline::{Incoming, Pipeline};
use postdesk::store::Store;

const CAROL: &str = "carol@customer.example";

/// A mail with an attachment (base64, so its bytes are not in the raw mail as written).
fn mail(from: &str, cc: &str, subject: &str, body: &str, attachment: &str, n: usize) -> Vec<u8> {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(attachment);
    format!(
        "From: {from}\r\nTo: support@example.test\r\n{cc}Subject: {subject}\r\nMessage-ID: <m{n}.{}@sender.example>\r\n\
         Date: Mon, 23 Nov 2026 10:00:00 +0000\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n\
         --b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n\
         --b\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\
         Content-Disposition: attachment; filename=\"scan{n}.bin\"\r\n\r\n{b64}\r\n--b--\r\n",
        std::process::id()
    )
    .into_bytes()
}

fn with_stdin(env: &Env, args: &[&str], text: &str) -> std::process::Output {
    let mut child = env.cmd(args).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

fn ingest(env: &Env, raw: &[u8]) -> String {
    let out = env.ingest_bytes(raw);
    assert!(out.status.success(), "{}", stderr(&out));
    stdout(&out)
}

/// Every place the database holds `needle` (any case): "table.column" for each text or blob value containing it,
/// and "raw_messages #id" for raw mail read back through [`Store::raw_by_id`].
fn traces(db: &std::path::Path, needle: &str) -> Vec<String> {
    let needle = needle.to_ascii_lowercase().into_bytes();
    let holds = |bytes: &[u8]| bytes.to_ascii_lowercase().windows(needle.len()).any(|w| w == needle.as_slice());
    let conn = rusqlite::Connection::open(db).unwrap();
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table'")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let mut found = Vec::new();
    for table in &tables {
        let mut stmt = conn.prepare(&format!("SELECT * FROM \"{table}\"")).unwrap();
        let columns: Vec<String> = stmt.column_names().iter().map(|c| c.to_string()).collect();
        let mut rows = stmt.query([]).unwrap();
        while let Some(row) = rows.next().unwrap() {
            for (i, column) in columns.iter().enumerate() {
                let hit = match row.get_ref(i).unwrap() {
                    rusqlite::types::ValueRef::Text(t) => holds(t),
                    rusqlite::types::ValueRef::Blob(b) => holds(b),
                    _ => false,
                };
                if hit {
                    found.push(format!("{table}.{column}"));
                }
            }
        }
    }
    let store = Store::open_read_only(db).unwrap();
    let ids: Vec<i64> = conn
        .prepare("SELECT id FROM raw_messages")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    for id in ids {
        if holds(&store.raw_by_id(id).unwrap().unwrap()) {
            found.push(format!("raw_messages #{id}"));
        }
    }
    found
}

#[test]
fn customer_erase_leaves_no_trace_of_the_address_and_keeps_the_ticket_skeletons_and_other_peoples_data() {
    let env = Env::with_extra(
        "[limits]\nmax_message_bytes = 4096\n[smtp]\nhost = \"127.0.0.1\"\nport = 9\ntls = \"plain\"\n",
    );
    let out = env.run(&["role", "add", "desk", "--queue", "support"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = env.run(&["agent", "add", "agent1@example.test", "--name", "Agent One", "--role", "desk"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let db = env.dir.path().join("state/postdesk.db");

    // Carol's own ticket, with an attachment Dave will send too, and her follow-up in another spelling.
    let scan = "the very same scanned invoice";
    let own = ticket_number(&ingest(
        &env,
        &mail("Carol Example <Carol@Customer.Example>", "", "My invoice", "Hi, Carol here.", scan, 1),
    ));
    let follow = format!("Re: [Ticket#{own}] My invoice");
    ingest(&env, &mail(&format!("Carol Example <{CAROL}>"), "", &follow, "Still waiting.", "other file", 2));
    // Dave's ticket: Carol is Cc'd and named in the text; Dave's attachment is stored once, inside Carol's mail.
    let daves = ticket_number(&ingest(
        &env,
        &mail(
            "Dave <dave@other.example>",
            &format!("Cc: Carol <{}>\r\n", CAROL.to_uppercase()),
            "Shared printer",
            &format!("Please also ask {CAROL} about it."),
            scan,
            3,
        ),
    ));
    let daves_later = ingest(
        &env,
        &mail(
            "Dave <dave@other.example>",
            "",
            &format!("Re: [Ticket#{daves}] Shared printer"),
            "Any news?",
            "dave's own",
            4,
        ),
    );
    assert!(daves_later.contains("follow-up"), "{daves_later}");
    // Too large: quarantined with its bytes.
    let big = format!("From: {CAROL}\r\nSubject: huge\r\n\r\n{}\r\n", "x".repeat(5000));
    assert!(ingest(&env, big.as_bytes()).contains("quarantined"));
    // An answer and a note from the command line, a hard bounce and a relay error naming her.
    assert!(with_stdin(&env, &["ticket", "reply", &own], "Dear Carol Example, it is paid.").status.success());
    assert!(with_stdin(&env, &["ticket", "note", &own], &format!("{CAROL} phoned.")).status.success());
    {
        let mut store = Store::open(&db).unwrap();
        let tx = store.begin().unwrap();
        tx.suppress(CAROL, "bounced 5.1.1", 1).unwrap();
        tx.set_status("last_error", &format!("550 5.1.1 <{CAROL}>: mailbox full"), 1).unwrap();
        tx.commit().unwrap();
    }
    let before = traces(&db, CAROL);
    for place in [
        "tickets.customer",
        "articles.body_text",
        "outbox.raw",
        "quarantine.data",
        "suppressions.address",
        "auto_replies.address",
        "ticket_parties.address",
        "daemon_status.value",
    ] {
        assert!(before.iter().any(|t| t == place), "the test must put the address in {place}: {before:?}");
    }
    assert!(before.iter().any(|t| t.starts_with("raw_messages #")));

    // Export first: both tickets, the raw mail and what we sent her.
    let export_dir = env.dir.path().join("export");
    let out = env.run(&["customer", "export", CAROL, "--to", export_dir.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(export_dir.join("customer.json")).unwrap()).unwrap();
    let numbers: Vec<&str> =
        json["tickets"].as_array().unwrap().iter().map(|t| t["number"].as_str().unwrap()).collect();
    assert_eq!(numbers, vec![own.as_str(), daves.as_str()]);
    // Her two mails, and of Dave's ticket only the mail she was Cc'd on: Dave's later mail is his alone.
    assert_eq!(json["mail_files"].as_array().unwrap().len(), 3, "{json}");
    assert!(!json.to_string().contains("Any news?"), "another customer's mail was exported");
    assert!(!json["sent_files"].as_array().unwrap().is_empty());
    assert_eq!(json["suppressed"]["reason"], "bounced 5.1.1");
    let first = json["mail_files"][0].as_str().unwrap();
    assert!(String::from_utf8_lossy(&std::fs::read(export_dir.join(first)).unwrap()).contains("Hi, Carol here."));

    // A dry run changes nothing; the erasure itself, in yet another spelling.
    let out = env.run(&["customer", "erase", "CAROL@customer.example", "--dry-run"]);
    assert!(stdout(&out).contains("would erase"), "{}", stderr(&out));
    assert_eq!(traces(&db, CAROL), before);
    let out = env.run(&["customer", "erase", "CAROL@customer.example", "--reason", "request 2026-117"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(traces(&db, CAROL), Vec::<String>::new(), "the address survived the erasure");
    assert_eq!(traces(&db, "Carol Example"), Vec::<String>::new(), "her name survived the erasure");
    assert!(traces(&db, "Carol here").is_empty() && traces(&db, "Still waiting").is_empty(), "her texts survived");

    // Skeletons remain; Dave's data is his; the audit line names no one.
    let tickets = env.tickets();
    assert_eq!(tickets.len(), 2);
    let t = env.ticket_json(&own);
    assert_eq!((t["customer"].as_str(), t["subject"].as_str()), (Some("[erased]"), Some("[erased]")));
    assert!(t["history"].as_array().unwrap().iter().any(|h| h["event"] == "erased" && h["actor"] == "admin"));
    let d = env.ticket_json(&daves);
    assert_eq!(d["customer"], "dave@other.example");
    let texts: Vec<&str> = d["articles"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["direction"] == "inbound")
        .map(|a| a["visible_text"].as_str().unwrap())
        .collect();
    assert_eq!(texts, vec!["", "Any news?"], "the mail naming Carol is emptied, Dave's later mail kept");
    let out = env.run(&[
        "ticket",
        "attachment",
        &daves,
        &postdesk::store::sha256_hex(b"dave's own")[..12],
        "-o",
        "/dev/null",
    ]);
    assert!(out.status.success(), "Dave's attachment must survive: {}", stderr(&out));
    let out = env.run(&["customer", "audit"]);
    assert!(stdout(&out).contains("erased") && stdout(&out).contains("request 2026-117"), "{}", stdout(&out));
    let out = env.run(&["customer", "erase", CAROL]);
    assert_eq!(out.status.code(), Some(66), "nothing left to erase: {}", stdout(&out));
}

fn setup_with_clock(env: &Env, clock: Arc<AtomicI64>) -> (Pipeline, Store) {
    let setup = postdesk::setup::Setup::load(&env.config).unwrap();
    let signer = postdesk::setup::load_signer(&setup.config).unwrap();
    let pipeline = Pipeline::with_clock(setup, signer, Arc::new(move || clock.load(Ordering::SeqCst)));
    let store = Store::open(&env.dir.path().join("state/postdesk.db")).unwrap();
    (pipeline, store)
}

fn command(word: &str, args: &str) -> Action {
    Action::Command(CommandLine { line: 0, text: format!("#{word} {args}"), parsed: parse_command(word, args) })
}

#[test]
fn retention_purges_closed_tickets_after_n_days_by_the_clock_and_nothing_else() {
    let env = Env::with_extra(
        "[retention]\nclosed_ticket_days = 30\n[smtp]\nhost = \"127.0.0.1\"\nport = 9\ntls = \"plain\"\n",
    );
    const DAY: i64 = 86_400;
    let t0 = 1_795_000_000; // 2026-11-18
    let clock = Arc::new(AtomicI64::new(t0));
    let (pipeline, mut store) = setup_with_clock(&env, clock.clone());
    let shared = "an attachment in an old and a new ticket";
    let mut batch: Vec<Incoming> = [
        mail("Old <old@customer.example>", "", "Old question", "old", shared, 1),
        mail("Busy <busy@customer.example>", "", "Busy question", "busy", "b", 2),
        mail("Open <open@customer.example>", "", "Open question", "open", shared, 3),
        mail("Merged <merged@customer.example>", "", "Merged question", "merged", "m", 4),
    ]
    .into_iter()
    .enumerate()
    .map(|(i, raw)| Incoming::new(format!("test:{i}"), raw))
    .collect();
    let outcomes = pipeline.process_batch(&mut store, &mut batch).unwrap();
    let numbers: Vec<String> = outcomes.iter().map(|o| ticket_number(&o.to_string())).collect();
    let (old, busy, open, merged) = (&numbers[0], &numbers[1], &numbers[2], &numbers[3]);
    pipeline.act(&mut store, merged, None, command("merge", old)).unwrap();
    pipeline.act(&mut store, old, None, command("close", "")).unwrap();
    pipeline.act(&mut store, busy, None, command("close", "")).unwrap();
    // Busy gets a note on day 20: its 30 days start again.
    clock.store(t0 + 20 * DAY, Ordering::SeqCst);
    pipeline.act(&mut store, busy, None, Action::Note("looked again".into())).unwrap();

    let db = env.dir.path().join("state/postdesk.db");
    let count = |table: &str| -> i64 {
        let conn = rusqlite::Connection::open(&db).unwrap();
        conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0)).unwrap()
    };
    // Day 29: nothing is old enough.
    clock.store(t0 + 29 * DAY, Ordering::SeqCst);
    pipeline.housekeeping(&mut store).unwrap();
    assert_eq!(store.list_tickets(&Default::default()).unwrap().len(), 4);

    // Day 31: the old ticket and the one merged into it go, with everything of theirs; one audit line remains.
    let (raw_before, ledger_before, outbox_before) = (count("raw_messages"), count("ingest_ledger"), count("outbox"));
    clock.store(t0 + 31 * DAY, Ordering::SeqCst);
    pipeline.housekeeping(&mut store).unwrap();
    let left: Vec<String> = store.list_tickets(&Default::default()).unwrap().into_iter().map(|t| t.number).collect();
    assert_eq!(left.len(), 2, "{left:?}");
    assert!(left.contains(busy) && left.contains(open));
    assert!(store.ticket_detail(old).unwrap().is_none() && store.ticket_detail(merged).unwrap().is_none());
    assert_eq!(count("raw_messages"), raw_before - 2);
    assert_eq!(count("ingest_ledger"), ledger_before - 2);
    assert!(count("outbox") < outbox_before, "their acknowledgements and notices go too");
    let conn = rusqlite::Connection::open(env.dir.path().join("state/postdesk.db")).unwrap();
    let orphans: i64 = conn
        .query_row(
            "SELECT (SELECT count(*) FROM articles WHERE ticket_id NOT IN (SELECT id FROM tickets))
                  + (SELECT count(*) FROM ticket_history WHERE ticket_id NOT IN (SELECT id FROM tickets))
                  + (SELECT count(*) FROM attachments WHERE article_id NOT IN (SELECT id FROM articles))
                  + (SELECT count(*) FROM outbox WHERE ticket_id NOT IN (SELECT id FROM tickets))
                  + (SELECT count(*) FROM blobs WHERE raw_id NOT IN (SELECT id FROM raw_messages))",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(orphans, 0);
    assert!(traces(&env.dir.path().join("state/postdesk.db"), "old@customer.example").is_empty());
    // The attachment the open ticket shares with the purged one is still there, byte for byte.
    let limits = postdesk::config::Limits::default();
    let content = postdesk::attachments::content(&store, &postdesk::store::sha256_hex(shared.as_bytes()), &limits);
    assert_eq!(content.unwrap().as_deref(), Some(shared.as_bytes()));
    let audit = store.audit_list(10).unwrap();
    assert_eq!(audit.len(), 1, "{audit:?}");
    assert!(audit[0].detail.contains(old) && audit[0].detail.contains("1 merged into it"), "{audit:?}");
    assert_eq!((audit[0].actor.as_str(), audit[0].action.as_str()), ("system", "purged"));

    // Day 51: the busy ticket's 30 days from its note are over.
    clock.store(t0 + 51 * DAY, Ordering::SeqCst);
    pipeline.housekeeping(&mut store).unwrap();
    let left: Vec<String> = store.list_tickets(&Default::default()).unwrap().into_iter().map(|t| t.number).collect();
    assert_eq!(left, vec![open.clone()], "an open ticket is never purged");
}

#[test]
fn a_zero_retention_is_a_config_error_naming_the_line() {
    let env = Env::with_extra("[retention]\nclosed_ticket_days = 0\n");
    let out = env.run(&["check"]);
    assert_eq!(out.status.code(), Some(78), "{}", stderr(&out));
    assert!(stderr(&out).contains("postdesk.toml:3:") && stderr(&out).contains("nonzero"), "{}", stderr(&out));
}
