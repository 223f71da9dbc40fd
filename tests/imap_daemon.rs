//! `postdesk run` against a real Dovecot on loopback (started by scripts/mailstack.sh): IDLE pickup, moves,
//! reconnects, exactly-once under SIGKILL, oversized mail, and the errors an admin meets first.

mod common;

use std::time::Duration;

use common::stack::*;
use postdesk::store::{Store, TicketFilter};

fn tickets(state: &std::path::Path) -> usize {
    match Store::open(&state.join("postdesk.db")) {
        Ok(store) => store.list_tickets(&TicketFilter::default()).map(|t| t.len()).unwrap_or(0),
        Err(_) => 0,
    }
}

#[test]
fn idle_pickup_makes_a_ticket_and_moves_the_mail() {
    let stack = Stack::start();
    let state = stack.dir.path().join("pd");
    let config = stack.postdesk_config(&state, "", true);
    // With polling ten minutes apart, only IDLE can bring the mail in within the wait below.
    let text = std::fs::read_to_string(&config).unwrap().replace("poll_seconds = 2", "poll_seconds = 600");
    std::fs::write(&config, text).unwrap();
    let daemon = Daemon::start(&config);
    assert!(
        wait_until(Duration::from_secs(10), || daemon.log_text().contains("connected")).is_some(),
        "{}",
        daemon.log_text()
    );
    // Let the daemon settle into IDLE before the mail arrives, so the figure measures IDLE, not the first scan.
    std::thread::sleep(Duration::from_millis(300));
    stack.deliver("support", &customer_mail(1, "IDLE test"));
    let took = wait_until(Duration::from_secs(30), || tickets(&state) == 1).expect("IDLE brought no ticket in 30 s");
    println!("IDLE: mail to ticket in {} ms", took.as_millis());
    assert!(wait_until(Duration::from_secs(5), || stack.count("support", "postdesk/processed") == 1).is_some());
    assert_eq!(stack.count("support", "INBOX"), 0);
    let log = daemon.log_text();
    assert!(log.contains("processed") && log.contains("imap:INBOX/1"), "{log}");
    assert!(!log.contains(stack.var("PD_PASSWORD")), "the password must never reach the log");
}

#[test]
fn reconnects_by_itself_after_the_server_was_away() {
    let stack = Stack::start();
    let state = stack.dir.path().join("pd");
    let config = stack.postdesk_config(&state, "", false);
    let mut daemon = Daemon::start(&config);
    stack.deliver("support", &customer_mail(1, "before the outage"));
    assert!(wait_until(Duration::from_secs(10), || tickets(&state) == 1).is_some(), "{}", daemon.log_text());
    stack.ctl(&["stop-dovecot"]);
    // Mail keeps arriving while the IMAP server is down: Postfix queues it until Dovecot's LMTP is back.
    stack.smtp_send("customer2@customer.example", "support@example.test", &customer_mail(2, "during the outage"));
    std::thread::sleep(Duration::from_secs(8));
    assert!(daemon.child.try_wait().unwrap().is_none(), "the daemon must not exit when the server goes away");
    stack.ctl(&["start-dovecot"]);
    stack.flush_postfix();
    let took = wait_until(Duration::from_secs(30), || tickets(&state) == 2);
    assert!(took.is_some(), "mail sent during the outage was not picked up:\n{}", daemon.log_text());
    assert!(daemon.log_text().contains("reconnecting"), "{}", daemon.log_text());
    daemon.signal("TERM");
    let status = daemon.wait_exit(Duration::from_secs(5)).expect("SIGTERM: no exit within 5 s");
    assert!(status.success(), "SIGTERM exit: {status:?}");
}

#[test]
fn random_sigkill_during_a_burst_loses_and_duplicates_nothing() {
    const MAILS: usize = 150;
    let stack = Stack::start();
    let state = stack.dir.path().join("pd");
    let config = stack.postdesk_config(&state, "", false);
    // Small batches, so kills land between commit and move as well as mid-batch.
    std::fs::write(&config, std::fs::read_to_string(&config).unwrap() + "batch_size = 7\n").unwrap();
    let maildir = stack.dir.path().join("burst");
    for sub in ["new", "cur", "tmp"] {
        std::fs::create_dir_all(maildir.join(sub)).unwrap();
    }
    for n in 0..MAILS {
        std::fs::write(maildir.join("new").join(format!("{n:05}.burst")), customer_mail(n, &format!("burst {n}")))
            .unwrap();
    }
    stack.ctl(&["load", "support@example.test", maildir.to_str().unwrap()]);
    assert_eq!(stack.count("support", "INBOX"), MAILS);

    let seed: u64 = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64;
    println!("kill schedule seed {seed}");
    let mut rng = seed;
    let mut kills = 0;
    for _ in 0..12 {
        let mut daemon = Daemon::start(&config);
        rng = rng.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        let delay = Duration::from_millis(50 + (rng >> 33) % 400);
        std::thread::sleep(delay);
        daemon.kill9();
        kills += 1;
        if stack.count("support", "INBOX") == 0 {
            break;
        }
    }
    // A final, undisturbed run finishes whatever is left.
    let daemon = Daemon::start(&config);
    assert!(
        wait_until(Duration::from_secs(60), || stack.count("support", "INBOX") == 0).is_some(),
        "INBOX not empty after the last run:\n{}",
        daemon.log_text()
    );
    drop(daemon);
    println!("{kills} SIGKILLs");

    let store = Store::open(&state.join("postdesk.db")).unwrap();
    let all = store.list_tickets(&TicketFilter::default()).unwrap();
    let counts = store.status_counts().unwrap();
    let mut subjects: Vec<&str> = all.iter().map(|t| t.subject.as_str()).collect();
    subjects.sort_unstable();
    subjects.dedup();
    assert_eq!(all.len(), MAILS, "tickets: lost or duplicated");
    assert_eq!(subjects.len(), MAILS, "two tickets for one mail");
    assert_eq!(counts.articles as usize, MAILS, "articles: lost or duplicated");
    assert_eq!(counts.duplicates, 0);
    assert_eq!(stack.count("support", "INBOX"), 0);
    assert_eq!(stack.count("support", "postdesk/processed"), MAILS, "every mail moved exactly once");
}

#[test]
fn oversized_mail_is_quarantined_without_download_and_mail_behind_it_flows() {
    let stack = Stack::start();
    let state = stack.dir.path().join("pd");
    let config = stack.postdesk_config(&state, "[limits]\nmax_message_bytes = 10485760\n", false);
    let mut big =
        b"From: big@customer.example\r\nTo: support@example.test\r\nSubject: huge\r\nMessage-ID: <huge@x>\r\n\r\n"
            .to_vec();
    while big.len() < 50 * 1024 * 1024 {
        big.extend_from_slice(b"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789\r\n");
    }
    stack.deliver("support", &big);
    drop(big);
    stack.deliver("support", &customer_mail(7, "behind the big one"));
    let daemon = Daemon::start(&config);
    assert!(wait_until(Duration::from_secs(20), || tickets(&state) == 1).is_some(), "{}", daemon.log_text());
    assert!(wait_until(Duration::from_secs(10), || stack.count("support", "postdesk/quarantine") == 1).is_some());
    assert_eq!(stack.count("support", "INBOX"), 0);
    let store = Store::open(&state.join("postdesk.db")).unwrap();
    let q = store.quarantine_list(10).unwrap();
    assert_eq!(q.len(), 1);
    assert!(q[0].reason.contains("over the limit") && q[0].reason.contains("max_message_bytes"), "{}", q[0].reason);
    assert!(!q[0].kept_bytes, "the body must not have been downloaded");
    assert!(q[0].size > 50_000_000);
}

#[test]
fn bad_password_file_wrong_password_and_untrusted_certificate_exit_78_with_a_clear_message() {
    use std::os::unix::fs::PermissionsExt;
    let stack = Stack::start();
    let state = stack.dir.path().join("pd");
    let run = |config: &std::path::Path| {
        std::process::Command::new(env!("CARGO_BIN_EXE_postdesk"))
            .arg("--config")
            .arg(config)
            .arg("run")
            .output()
            .unwrap()
    };

    let config = stack.postdesk_config(&state, "", false);
    let pw = state.join("imap-password");
    std::fs::set_permissions(&pw, std::fs::Permissions::from_mode(0o640)).unwrap();
    let out = run(&config);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(78), "{err}");
    assert!(err.contains("readable by group or others") && err.contains("chmod 600"), "{err}");

    std::fs::write(&pw, "not-the-password").unwrap();
    std::fs::set_permissions(&pw, std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = run(&config);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(78), "{err}");
    assert!(err.contains("login") && err.contains("failed"), "{err}");
    assert!(!err.contains("not-the-password"));

    let config = stack.postdesk_config(&state, "", true);
    let text = std::fs::read_to_string(&config).unwrap().replace(stack.var("PD_CA_FILE"), stack.var("PD_BAD_CA_FILE"));
    std::fs::write(&config, text).unwrap();
    let out = run(&config);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(78), "{err}");
    assert!(err.contains("certificate") && err.contains("not trusted"), "{err}");
}

#[test]
fn one_instance_per_state_directory_and_status_shows_the_connection() {
    let stack = Stack::start();
    let state = stack.dir.path().join("pd");
    let config = stack.postdesk_config(&state, "", false);
    let mut daemon = Daemon::start(&config);
    assert!(wait_until(Duration::from_secs(10), || daemon.log_text().contains("connected")).is_some());
    let second = std::process::Command::new(env!("CARGO_BIN_EXE_postdesk"))
        .arg("--config")
        .arg(&config)
        .arg("run")
        .output()
        .unwrap();
    assert_eq!(second.status.code(), Some(75));
    assert!(String::from_utf8_lossy(&second.stderr).contains("already running"));
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_postdesk"))
        .arg("--config")
        .arg(&config)
        .arg("status")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&status.stdout);
    assert!(text.contains("connected since") && text.contains("backlog:") && text.contains("quarantined:"), "{text}");
    daemon.signal("TERM");
    assert!(daemon.wait_exit(Duration::from_secs(5)).is_some_and(|s| s.success()));
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_postdesk"))
        .arg("--config")
        .arg(&config)
        .arg("status")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&status.stdout).contains("NOT RUNNING"));
}

#[test]
fn rules_hot_reload_takes_good_edits_and_refuses_bad_ones() {
    let stack = Stack::start();
    let state = stack.dir.path().join("pd");
    let config =
        stack.postdesk_config(&state, "##[[queues]]\nname = \"billing\"\n[[queues]]\nname = \"urgent\"\n", false);
    let billing = "[[rule]]\nname = \"billing by recipient\"\n[rule.when]\nrecipient = \"billing@example.test\"\n[rule.then]\nqueue = \"billing\"\n";
    std::fs::write(state.join("rules/50-billing.toml"), billing).unwrap();
    let daemon = Daemon::start(&config);
    assert!(
        wait_until(Duration::from_secs(10), || daemon.log_text().contains("connected")).is_some(),
        "{}",
        daemon.log_text()
    );

    // A good new rule file is picked up without a restart.
    let urgent = "[[rule]]\nname = \"urgent subject\"\n[rule.when]\nsubject = { contains = \"urgent\" }\n[rule.then]\nqueue = \"urgent\"\n";
    std::fs::write(state.join("rules/40-urgent.toml"), urgent).unwrap();
    assert!(
        wait_until(Duration::from_secs(10), || daemon.log_text().contains("reloaded")).is_some(),
        "{}",
        daemon.log_text()
    );
    stack.deliver("support", &customer_mail(1, "URGENT: server down"));

    // A broken file is refused; the rules in force keep routing.
    std::fs::write(
        state.join("rules/60-broken.toml"),
        "[[rule]]\nname = \"broken\"\n[rule.when]\nsubject = { regex = \"(\" }\n[rule.then]\nqueue = \"nowhere\"\n",
    )
    .unwrap();
    assert!(
        wait_until(Duration::from_secs(10), || daemon.log_text().contains("refused")).is_some(),
        "{}",
        daemon.log_text()
    );
    let log = daemon.log_text();
    assert!(log.contains("60-broken.toml:4:") && log.contains("keeping the rules in force"), "{log}");
    let mut to_billing = customer_mail(2, "invoice question");
    to_billing = String::from_utf8(to_billing)
        .unwrap()
        .replace("To: support@example.test", "To: billing@example.test")
        .into_bytes();
    stack.deliver("support", &to_billing);

    assert!(wait_until(Duration::from_secs(10), || tickets(&state) == 2).is_some(), "{}", daemon.log_text());
    let store = Store::open(&state.join("postdesk.db")).unwrap();
    let mut queues: Vec<String> =
        store.list_tickets(&TicketFilter::default()).unwrap().into_iter().map(|t| t.queue).collect();
    queues.sort();
    assert_eq!(queues, vec!["billing".to_string(), "urgent".to_string()]);
}

#[test]
fn a_uidvalidity_change_rematches_by_content_and_imports_nothing_twice() {
    let stack = Stack::start();
    let state = stack.dir.path().join("pd");
    let config = stack.postdesk_config(&state, "", false);
    let mut daemon = Daemon::start(&config);
    for n in 0..5 {
        stack.deliver("support", &customer_mail(n, &format!("renumbered {n}")));
    }
    assert!(wait_until(Duration::from_secs(20), || stack.count("support", "postdesk/processed") == 5).is_some());
    daemon.signal("TERM");
    assert!(daemon.wait_exit(Duration::from_secs(5)).is_some());

    // The mailbox is restored from a backup: the same mails are back in INBOX, renumbered under a new UIDVALIDITY.
    let doveadm = |args: &[&str]| {
        let out = std::process::Command::new("doveadm")
            .arg("-c")
            .arg(stack.var("PD_DOVECOT_CONF"))
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "doveadm {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    doveadm(&["move", "-u", "support@example.test", "INBOX", "mailbox", "postdesk/processed", "all"]);
    doveadm(&["mailbox", "update", "-u", "support@example.test", "--uid-validity", "4242", "INBOX"]);
    assert_eq!(stack.count("support", "INBOX"), 5);

    let daemon = Daemon::start(&config);
    assert!(
        wait_until(Duration::from_secs(20), || stack.count("support", "INBOX") == 0).is_some(),
        "{}",
        daemon.log_text()
    );
    let log = daemon.log_text();
    assert!(log.contains("UIDVALIDITY changed"), "{log}");
    let store = Store::open(&state.join("postdesk.db")).unwrap();
    let counts = store.status_counts().unwrap();
    assert_eq!((counts.tickets, counts.articles), (5, 5), "nothing imported twice");
    assert_eq!(counts.duplicates, 5, "each renumbered mail recognised by its content");
    assert_eq!(stack.count("support", "postdesk/processed"), 5);
}

#[test]
fn starttls_upgrades_and_verifies_the_certificate() {
    let stack = Stack::start();
    let state = stack.dir.path().join("pd");
    let config = stack.postdesk_config(&state, "", false);
    let starttls = |ca: &str| {
        let text = std::fs::read_to_string(&config)
            .unwrap()
            .replace("tls = \"plain\"", &format!("tls = \"starttls\"\nca_file = \"{ca}\""));
        std::fs::write(&config, text).unwrap();
    };
    starttls(stack.var("PD_CA_FILE"));
    let mut daemon = Daemon::start(&config);
    assert!(
        wait_until(Duration::from_secs(10), || daemon.log_text().contains("connected")).is_some(),
        "{}",
        daemon.log_text()
    );
    stack.deliver("support", &customer_mail(1, "over STARTTLS"));
    assert!(wait_until(Duration::from_secs(10), || tickets(&state) == 1).is_some(), "{}", daemon.log_text());
    daemon.signal("TERM");
    assert!(daemon.wait_exit(Duration::from_secs(5)).is_some_and(|s| s.success()));

    // The same server with a CA that did not sign its certificate: refused after STARTTLS, exit 78.
    let text = std::fs::read_to_string(&config).unwrap().replace(stack.var("PD_CA_FILE"), stack.var("PD_BAD_CA_FILE"));
    std::fs::write(&config, text).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_postdesk"))
        .arg("--config")
        .arg(&config)
        .arg("run")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(78), "{err}");
    assert!(err.contains("not trusted"), "{err}");
}

/// Mail announced (`* 1 EXISTS`) with the answer to some other command is not announced again when IDLE starts.
/// The wait must notice the report and send the daemon back to search, not idle on mail already in the box.
#[test]
fn mail_reported_before_idle_starts_is_not_left_waiting() {
    let stack = Stack::start();
    let state = stack.dir.path().join("pd");
    let config = postdesk::config::Config::load(&stack.postdesk_config(&state, "", false)).unwrap();
    let imap = config.imap.expect("an [imap] section");
    let password = postdesk::config::read_secret(imap.password_file.as_deref(), "imap", "imap-password").unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let mut conn = postdesk::ingest::imap::connect(&imap, &password, None).await.unwrap();
        assert!(conn.list().await.unwrap().is_empty());
        stack.deliver("support", &customer_mail(1, "arrives between search and IDLE"));
        // A NOOP (the poll wait's) carries the server's report of the new mail, `* 1 EXISTS` and `* 1 RECENT`, in
        // its answer. IDLE, started next, has nothing more to report.
        let (_stop_tx, mut stop) = tokio::sync::watch::channel(false);
        let (conn, _) = conn.wait(false, Duration::from_millis(1), &mut stop).await.unwrap();
        let waited =
            tokio::time::timeout(Duration::from_secs(30), conn.wait(true, Duration::from_secs(600), &mut stop)).await;
        let (mut conn, outcome) = waited.expect("the wait idled on mail the server had already reported").unwrap();
        assert!(outcome.maybe_new);
        assert_eq!(conn.list().await.unwrap().len(), 1, "the reported mail is found by the next search");
    });
}
