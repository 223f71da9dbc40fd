//! Backups, integrity and quarantine against the real stack (Dovecot + Postfix from scripts/mailstack.sh) with
//! `postdesk run` working: a backup taken mid-burst restores, a damaged database stops `run` from starting, and
//! mail left in the IMAP quarantine folder for its size is fetched into one ticket once the limit is raised.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::stack::*;
use postdesk::store::{Store, TicketFilter};

fn postdesk(config: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_postdesk")).arg("--config").arg(config).args(args).output().unwrap()
}

fn text(out: &std::process::Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

fn tickets(state: &Path) -> usize {
    Store::open_read_only(&state.join("postdesk.db"))
        .and_then(|s| s.list_tickets(&TicketFilter::default()))
        .map(|t| t.len())
        .unwrap_or(0)
}

/// Loads `count` customer mails into the support INBOX at once.
fn load_burst(stack: &Stack, count: usize) {
    let maildir = stack.dir.path().join("burst");
    for sub in ["new", "cur", "tmp"] {
        std::fs::create_dir_all(maildir.join(sub)).unwrap();
    }
    for n in 0..count {
        let mail = customer_mail(n, &format!("burst {n}"));
        std::fs::write(maildir.join("new").join(format!("{n:05}.burst")), mail).unwrap();
    }
    stack.ctl(&["load", "support@example.test", maildir.to_str().unwrap()]);
}

#[test]
fn a_backup_taken_during_a_burst_passes_check_and_restore_brings_it_back() {
    const MAILS: usize = 300;
    let stack = Stack::start();
    let state = stack.dir.path().join("pd");
    let config = stack.postdesk_config(&state, "", false);
    // Small batches: the burst lasts long enough for backups to land in the middle of it.
    std::fs::write(&config, std::fs::read_to_string(&config).unwrap() + "batch_size = 5\n").unwrap();
    load_burst(&stack, MAILS);
    let mut daemon = Daemon::start(&config);
    assert!(wait_until(Duration::from_secs(30), || tickets(&state) > 0).is_some(), "{}", daemon.log_text());
    let backups = stack.dir.path().join("backups");
    let mut taken = Vec::new();
    for _ in 0..3 {
        let out = postdesk(&config, &["db", "backup", "--to", backups.to_str().unwrap(), "--json"]);
        assert!(out.status.success(), "backup while the daemon runs: {}", text(&out));
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        taken.push(report);
        std::thread::sleep(Duration::from_millis(150));
    }
    let mid_burst: Vec<u64> = taken.iter().map(|r| r["facts"]["tickets"].as_u64().unwrap()).collect();
    println!("tickets in the backups: {mid_burst:?} of {MAILS}");
    assert!(
        wait_until(Duration::from_secs(120), || stack.count("support", "INBOX") == 0).is_some(),
        "{}",
        daemon.log_text()
    );
    assert!(wait_until(Duration::from_secs(30), || tickets(&state) == MAILS).is_some());

    // Each copy is one consistent moment: every ticket has its article and its ledger row.
    let chosen = taken.iter().find(|r| r["facts"]["tickets"].as_u64().unwrap() < MAILS as u64).unwrap_or(&taken[0]);
    let file = chosen["path"].as_str().unwrap();
    for key in ["articles", "ledger"] {
        assert_eq!(chosen["facts"][key], chosen["facts"]["tickets"], "{key} vs tickets in {chosen}");
    }
    let out = postdesk(&config, &["db", "check", file, "--json"]);
    assert!(out.status.success(), "db check of the backup: {}", text(&out));
    let checked: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(checked["ok"], true);
    assert_eq!(checked["facts"]["tickets"], chosen["facts"]["tickets"]);

    let out = postdesk(&config, &["db", "restore", file]);
    assert_eq!(out.status.code(), Some(75), "restore must refuse while the daemon runs: {}", text(&out));
    assert!(text(&out).contains("stop"), "{}", text(&out));
    daemon.signal("TERM");
    assert!(daemon.wait_exit(Duration::from_secs(10)).is_some_and(|s| s.success()));

    let out = postdesk(&config, &["db", "restore", file]);
    assert!(out.status.success(), "restore: {}", text(&out));
    assert_eq!(tickets(&state) as u64, chosen["facts"]["tickets"].as_u64().unwrap(), "the backup's tickets are back");
    let out = postdesk(&config, &["db", "check"]);
    assert!(out.status.success(), "the restored database passes db check: {}", text(&out));
    // The daemon starts on the restored database.
    let daemon = Daemon::start(&config);
    assert!(
        wait_until(Duration::from_secs(15), || daemon.log_text().contains("connected")).is_some(),
        "{}",
        daemon.log_text()
    );
}

#[test]
fn run_refuses_to_start_on_a_database_damaged_in_the_middle() {
    let stack = Stack::start();
    let state = stack.dir.path().join("pd");
    let config = stack.postdesk_config(&state, "", false);
    load_burst(&stack, 150);
    let mut daemon = Daemon::start(&config);
    assert!(wait_until(Duration::from_secs(60), || tickets(&state) == 150).is_some(), "{}", daemon.log_text());
    daemon.signal("TERM");
    assert!(daemon.wait_exit(Duration::from_secs(10)).is_some());
    let db = state.join("postdesk.db");
    common::damage_middle(&db);

    stack.deliver("support", &customer_mail(9999, "arrives while the database is damaged"));
    let mut daemon = Daemon::start(&config);
    let status = daemon.wait_exit(Duration::from_secs(20)).expect("run kept going on a damaged database");
    assert_eq!(status.code(), Some(65), "{}", daemon.log_text());
    let log = daemon.log_text();
    assert!(log.contains("damaged") && log.contains("quick_check") && log.contains("db restore"), "{log}");
    assert_eq!(stack.count("support", "INBOX"), 1, "the mail stays in the INBOX");
}

#[test]
fn mail_left_in_the_imap_quarantine_for_its_size_is_fetched_into_one_ticket_once_the_limit_is_raised() {
    let stack = Stack::start();
    let state = stack.dir.path().join("pd");
    let config = stack.postdesk_config(&state, "[limits]\nmax_message_bytes = 4096\n", false);
    let mut big = customer_mail(1, "a big one");
    big.extend(b"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\r\n".repeat(200));
    stack.deliver("support", &big);
    stack.deliver("support", &customer_mail(2, "a small one"));
    let daemon = Daemon::start(&config);
    assert!(wait_until(Duration::from_secs(20), || tickets(&state) == 1).is_some(), "{}", daemon.log_text());
    assert!(wait_until(Duration::from_secs(10), || stack.count("support", "postdesk/quarantine") == 1).is_some());

    let out = postdesk(&config, &["quarantine", "fetch", "--all"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("still over"), "nothing is fetched before the limit is raised: {}", text(&out));
    assert_eq!(stack.count("support", "postdesk/quarantine"), 1);

    let raised =
        std::fs::read_to_string(&config).unwrap().replace("max_message_bytes = 4096", "max_message_bytes = 1048576");
    std::fs::write(&config, raised).unwrap();
    let out = postdesk(&config, &["quarantine", "fetch", "--all"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("fetched from IMAP: new ticket"), "{}", text(&out));
    assert_eq!(tickets(&state), 2);
    assert_eq!(stack.count("support", "postdesk/quarantine"), 0, "moved out after the commit");
    assert_eq!(stack.count("support", "postdesk/processed"), 2);

    // Again, and as a replay: nothing more.
    assert!(postdesk(&config, &["quarantine", "fetch", "--all"]).status.success());
    let out = postdesk(&config, &["quarantine", "replay", "1"]);
    assert!(text(&out).contains("already replayed"), "{}", text(&out));
    assert_eq!(tickets(&state), 2, "one ticket for the mail, however often it is fetched or replayed");
    let store = Store::open_read_only(&state.join("postdesk.db")).unwrap();
    let item = store.quarantine_item(1).unwrap().unwrap();
    assert_eq!(item.action.unwrap().action, "replayed");
}
