//! Replies out, end to end on the real stack: Dovecot holds the support and customer mailboxes, Postfix relays what
//! postdesk sends into them.

mod common;

use std::time::Duration;

use common::stack::*;
use postdesk::store::{Store, TicketFilter};

fn smtp(stack: &Stack) -> String {
    format!(
        "##[smtp]\nhost = \"127.0.0.1\"\nport = {}\ntls = \"plain\"\nretry_base_seconds = 1\nretry_max_seconds = 2\n",
        stack.port("PD_SMTP_PORT")
    )
}

fn store(state: &std::path::Path) -> Store {
    Store::open(&state.join("postdesk.db")).unwrap()
}

fn parsed(raw: &[u8]) -> postdesk::model::InboundMail {
    postdesk::parse::parse_mail(raw, &postdesk::config::Limits::default()).expect("a mail")
}

fn from_customer(user: &str, n: usize, subject: &str, extra: &str) -> Vec<u8> {
    format!(
        "From: Customer <{user}@example.test>\r\nTo: support@example.test\r\nSubject: {subject}\r\n\
         Message-ID: <c{n}.{}@example.test>\r\n{extra}Content-Type: text/plain; charset=utf-8\r\n\r\nHello from {user}.\r\n",
        std::process::id()
    )
    .into_bytes()
}

#[test]
fn the_customer_gets_an_acknowledgement_and_a_reply_to_it_threads_by_in_reply_to() {
    let stack = Stack::start();
    let state = stack.dir.path().join("pd");
    let config = stack.postdesk_config(&state, &smtp(&stack), false);
    let daemon = Daemon::start(&config);
    let first = from_customer("customer", 1, "My laptop will not boot", "");
    stack.deliver("support", &first);
    assert!(
        wait_until(Duration::from_secs(20), || stack.count("customer", "INBOX") == 1).is_some(),
        "no acknowledgement:\n{}",
        daemon.log_text()
    );
    let ack = parsed(&stack.mails("customer", "INBOX").remove(0));
    let tickets = store(&state).list_tickets(&TicketFilter::default()).unwrap();
    assert_eq!(tickets.len(), 1);
    let number = &tickets[0].number;
    assert!(ack.subject.contains(&format!("[Ticket#{number}]")), "{}", ack.subject);
    assert_eq!(ack.in_reply_to, vec![format!("c1.{}@example.test", std::process::id())]);
    assert_eq!(ack.header("Auto-Submitted"), Some("auto-replied"));
    let ack_id = format!("<{}>", ack.message_id.unwrap());

    // The customer answers the acknowledgement: new subject, no token, only In-Reply-To.
    stack.deliver("support", &from_customer("customer", 2, "more details", &format!("In-Reply-To: {ack_id}\r\n")));
    let on_ticket = || {
        store(&state)
            .ticket_detail(number)
            .unwrap()
            .unwrap()
            .articles
            .iter()
            .filter(|a| a.direction == "inbound")
            .count()
    };
    assert!(wait_until(Duration::from_secs(20), || on_ticket() == 2).is_some(), "{}", daemon.log_text());
    assert_eq!(store(&state).list_tickets(&TicketFilter::default()).unwrap().len(), 1);
}

#[test]
fn relay_outage_queues_mail_and_everything_drains_once_when_it_returns() {
    let stack = Stack::start();
    let state = stack.dir.path().join("pd");
    let config = stack.postdesk_config(&state, &smtp(&stack), false);
    let daemon = Daemon::start(&config);
    assert!(wait_until(Duration::from_secs(10), || daemon.log_text().contains("connected")).is_some());
    stack.ctl(&["stop-postfix"]);
    let users = ["customer", "customer2", "stranger"];
    for (n, user) in users.iter().enumerate() {
        stack.deliver("support", &from_customer(user, n, &format!("outage {n}"), ""));
    }
    assert!(
        wait_until(Duration::from_secs(20), || store(&state).list_tickets(&TicketFilter::default()).unwrap().len()
            == 3)
        .is_some(),
        "ingest must go on while the relay is down:\n{}",
        daemon.log_text()
    );
    std::thread::sleep(Duration::from_secs(3));
    let counts = store(&state).outbox_counts().unwrap();
    assert_eq!((counts.queued, counts.sent), (3, 0));
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_postdesk"))
        .arg("--config")
        .arg(&config)
        .arg("status")
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&status.stdout).contains("outbox:      3 queued"),
        "{}",
        String::from_utf8_lossy(&status.stdout)
    );

    stack.ctl(&["start-postfix"]);
    assert!(
        wait_until(Duration::from_secs(30), || store(&state).outbox_counts().unwrap().sent == 3).is_some(),
        "{}",
        daemon.log_text()
    );
    assert!(wait_until(Duration::from_secs(20), || users.iter().all(|u| stack.count(u, "INBOX") >= 1)).is_some());
    std::thread::sleep(Duration::from_secs(2));
    for u in users {
        assert_eq!(stack.count(u, "INBOX"), 1, "{u} must get exactly one acknowledgement");
    }
}

#[test]
fn a_crash_between_the_relays_250_and_the_outbox_update_sends_at_most_one_duplicate() {
    let stack = Stack::start();
    let state = stack.dir.path().join("pd");
    let config = stack.postdesk_config(&state, &smtp(&stack), false);
    stack.deliver("support", &from_customer("customer", 1, "crash window", ""));
    let mut crashing = {
        let log = config.with_extension("crash.log");
        let file = std::fs::File::create(&log).unwrap();
        std::process::Command::new(env!("CARGO_BIN_EXE_postdesk"))
            .arg("--config")
            .arg(&config)
            .arg("run")
            .env("POSTDESK_FAILPOINT", "after-smtp-250")
            .env("POSTDESK_LOG", "info")
            .stderr(file)
            .spawn()
            .unwrap()
    };
    let status = crashing.wait().unwrap();
    assert!(!status.success(), "the failpoint must abort the daemon");
    assert_eq!(store(&state).outbox_counts().unwrap().sent, 0, "the crash came before the outbox update");

    let daemon = Daemon::start(&config);
    assert!(
        wait_until(Duration::from_secs(20), || store(&state).outbox_counts().unwrap().sent == 1).is_some(),
        "{}",
        daemon.log_text()
    );
    assert!(wait_until(Duration::from_secs(20), || stack.count("customer", "INBOX") >= 2).is_some());
    std::thread::sleep(Duration::from_secs(2));
    let mails = stack.mails("customer", "INBOX");
    assert!(mails.len() <= 2, "at most one duplicate, got {}", mails.len());
    let ids: Vec<String> = mails.iter().map(|m| parsed(m).message_id.unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] == w[1]), "a duplicate keeps the same Message-ID: {ids:?}");
}

#[test]
fn two_autoresponders_pointed_at_each_other_exchange_at_most_the_rate_limit() {
    let stack = Stack::start();
    let state = stack.dir.path().join("pd");
    let config = stack.postdesk_config(&state, &smtp(&stack), false);
    let daemon = Daemon::start(&config);
    // bot1 is a naive autoresponder: it answers every mail, with no Auto-Submitted or other marks.
    stack.smtp_send("bot1@example.test", "support@example.test", &from_customer("bot1", 0, "hello", ""));
    let mut answered = 0;
    let mut quiet_since = std::time::Instant::now();
    while quiet_since.elapsed() < Duration::from_secs(8) && answered < 30 {
        let inbox = stack.mails("bot1", "INBOX");
        if inbox.len() > answered {
            for mail in &inbox[answered..] {
                let mail = parsed(mail);
                let subject = mail.subject.clone();
                let id = format!("<{}>", mail.message_id.unwrap_or_default());
                let reply = format!(
                    "From: bot1@example.test\r\nTo: support@example.test\r\nSubject: Re: {subject}\r\nIn-Reply-To: {id}\r\n\
                     Message-ID: <bot-{answered}-{}@example.test>\r\n\r\nThank you for your mail!\r\n",
                    std::process::id()
                );
                stack.smtp_send("bot1@example.test", "support@example.test", reply.as_bytes());
                answered += 1;
            }
            quiet_since = std::time::Instant::now();
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let received = stack.count("bot1", "INBOX");
    println!("postdesk sent {received} automatic replies; the bot answered {answered}");
    assert_eq!(received, 5, "the rate limit (5 per sender per day) must end the loop:\n{}", daemon.log_text());
    assert!(answered >= 5);
}

/// Whether a daemon's log segment ends with a mail handed to the relay ("to the relay", then "relay accepted" at its
/// 250) and not yet marked sent ("sent", after the commit): the kill that ended it landed between a 250 (the relay's,
/// which may have been on the wire and not yet read) and its commit. Returns (kills in flight, of them after the 250
/// was read).
fn kill_in_the_send_window(segment: &str) -> (usize, usize) {
    let id_of = |line: &str| line.split("id=").nth(1).and_then(|s| s.split_whitespace().next()).map(str::to_string);
    let (mut handed, mut accepted) = (None, false);
    for line in segment.lines() {
        if line.contains("to the relay") {
            (handed, accepted) = (id_of(line), false);
        } else if line.contains("relay accepted") && id_of(line) == handed {
            accepted = true;
        } else if line.contains(" sent ") && id_of(line) == handed {
            (handed, accepted) = (None, false);
        }
    }
    (usize::from(handed.is_some()), usize::from(handed.is_some() && accepted))
}

/// After a crash, 73 of ~88 kills that landed while mail was being sent produced an extra acknowledgement: rows were
/// marked sent well after their 250. Each row is now marked in a transaction of its own right after the 250, so
/// only a kill inside that window can duplicate a mail, and only the one mail in flight.
#[test]
fn random_sigkill_while_sending_duplicates_only_mail_killed_between_its_250_and_its_commit() {
    const MAILS: usize = 40;
    let stack = Stack::start();
    let state = stack.dir.path().join("pd");
    let config = stack.postdesk_config(&state, &format!("[replies]\nmax_auto_replies = 1000\n{}", smtp(&stack)), false);
    let maildir = stack.dir.path().join("burst");
    for sub in ["new", "cur", "tmp"] {
        std::fs::create_dir_all(maildir.join(sub)).unwrap();
    }
    for n in 0..MAILS {
        let mail = from_customer("customer", n, &format!("question {n}"), "");
        std::fs::write(maildir.join("new").join(format!("{n:05}.burst")), mail).unwrap();
    }
    stack.ctl(&["load", "support@example.test", maildir.to_str().unwrap()]);

    let seed = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64;
    println!("kill schedule seed {seed}");
    let (mut rng, mut kills, mut in_window, mut after_250) = (seed, 0, 0, 0);
    for _ in 0..15 {
        let mut daemon = Daemon::start(&config);
        let before = daemon.log_text().len();
        rng = rng.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        std::thread::sleep(Duration::from_millis(300 + (rng >> 33) % 1200));
        daemon.kill9();
        kills += 1;
        let (window, read_250) = kill_in_the_send_window(&daemon.log_text()[before..]);
        (in_window, after_250) = (in_window + window, after_250 + read_250);
        if store(&state).outbox_counts().unwrap().sent == MAILS as i64 {
            break;
        }
    }
    let daemon = Daemon::start(&config);
    let all_sent =
        || stack.count("support", "INBOX") == 0 && store(&state).outbox_counts().unwrap().sent == MAILS as i64;
    assert!(wait_until(Duration::from_secs(90), all_sent).is_some(), "not all sent:\n{}", daemon.log_text());
    drop(daemon);
    stack.flush_postfix();
    assert!(wait_until(Duration::from_secs(60), || stack.count("customer", "INBOX") >= MAILS).is_some());
    std::thread::sleep(Duration::from_secs(3));
    let acks = stack.mails("customer", "INBOX");
    let mut ids: Vec<String> = acks.iter().map(|m| parsed(m).message_id.unwrap()).collect();
    ids.sort();
    ids.dedup();
    let extra = acks.len() - MAILS;
    println!(
        "{kills} SIGKILLs, {in_window} between handing a mail to the relay and its commit ({after_250} after its 250 \
         was read), {extra} extra acknowledgements"
    );
    assert_eq!(ids.len(), MAILS, "every mail acknowledged, each under one Message-ID");
    assert!(extra <= in_window, "{extra} extra acknowledgements, but only {in_window} kills landed in the window");
}
