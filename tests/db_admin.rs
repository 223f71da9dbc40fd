//! `postdesk db …` and `postdesk quarantine …` through the real binary: backups that restore, damaged or lost
//! databases refused, ticket numbers never issued twice, quarantined mail replayed exactly once.

mod common;

use common::*;

fn customer(n: usize, subject: &str) -> Vec<u8> {
    format!(
        "From: Customer {n} <c{n}@customer.example>\r\nTo: support@example.test\r\nSubject: {subject}\r\n\
         Message-ID: <db{n}@customer.example>\r\nDate: Mon, 23 Nov 2026 10:00:00 +0000\r\n\r\nmail {n}\r\n"
    )
    .into_bytes()
}

fn ingest_ok(env: &Env, raw: &[u8]) -> String {
    let out = env.ingest_bytes(raw);
    assert!(out.status.success(), "ingest: {}", stderr(&out));
    stdout(&out)
}

fn db(env: &Env) -> std::path::PathBuf {
    env.dir.path().join("state/postdesk.db")
}

/// The newest backup file in a directory.
fn newest(dir: &std::path::Path) -> std::path::PathBuf {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".sqlite.zst"))
        .collect();
    files.sort();
    files.pop().expect("no backup written")
}

#[test]
fn a_restored_older_backup_does_not_reissue_ticket_numbers_handed_out_after_it() {
    let env = Env::new();
    let first = ticket_number(&ingest_ok(&env, &customer(1, "before the backup")));
    let backups = env.dir.path().join("backups");
    let out = env.run(&["db", "backup", "--to", backups.to_str().unwrap()]);
    assert!(out.status.success(), "backup: {}", stderr(&out));
    let file = newest(&backups);
    let second = ticket_number(&ingest_ok(&env, &customer(2, "after the backup")));

    let out = env.run(&["db", "check", file.to_str().unwrap()]);
    assert!(out.status.success(), "check of the backup: {}", stderr(&out));
    assert!(stdout(&out).contains("tickets 1 "), "{}", stdout(&out));

    let out = env.run(&["db", "restore", file.to_str().unwrap()]);
    assert!(out.status.success(), "restore: {}", stderr(&out));
    assert!(stdout(&out).contains("kept as"), "{}", stdout(&out));
    let numbers: Vec<String> = env.tickets().iter().map(|t| t["number"].as_str().unwrap().to_string()).collect();
    assert_eq!(numbers, [first], "the backup's state is back");

    let third = ticket_number(&ingest_ok(&env, &customer(3, "after the restore")));
    assert_ne!(third, second, "a number handed out after the backup was issued again");
    assert!(third > second, "{third} should come after {second}");
}

#[test]
fn a_restore_after_the_database_was_lost_still_skips_numbers_handed_out_after_the_backup() {
    let env = Env::new();
    ingest_ok(&env, &customer(1, "before the backup"));
    let backups = env.dir.path().join("backups");
    assert!(env.run(&["db", "backup", "--to", backups.to_str().unwrap()]).status.success());
    let second = ticket_number(&ingest_ok(&env, &customer(2, "after the backup")));
    // The disk lost the database: only the record beside it knows the second number.
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db(&env).display()));
    }
    let out = env.run(&["db", "restore", newest(&backups).to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("no database to keep aside"), "{}", stdout(&out));
    let third = ticket_number(&ingest_ok(&env, &customer(3, "after the restore")));
    assert!(third > second, "{third} must come after {second}, which was handed out after the backup");
    let listed = stdout(&env.run(&["quarantine", "list"]));
    assert!(listed.is_empty(), "{listed}");
}

#[test]
fn a_database_damaged_in_the_middle_is_refused_by_ingest_with_75_and_by_db_check() {
    let env = Env::new();
    let files: Vec<String> = (0..300)
        .map(|n| {
            let path = env.dir.path().join(format!("filler{n}.eml"));
            std::fs::write(&path, customer(n, &format!("filler {n} {}", "x".repeat(2000)))).unwrap();
            path.to_string_lossy().into_owned()
        })
        .collect();
    let mut args = vec!["ingest"];
    args.extend(files.iter().map(String::as_str));
    assert!(env.run(&args).status.success());
    // Fold the WAL into the file first, so the damage lands on pages the database really reads.
    let out = env.run(&["db", "check"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let backups = env.dir.path().join("backups");
    assert!(env.run(&["db", "backup", "--to", backups.to_str().unwrap()]).status.success());
    let path = db(&env);
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())).unwrap();
    }
    damage_middle(&path);
    let before = std::fs::read(&path).unwrap();

    let out = env.ingest_bytes(&customer(999, "into a damaged database"));
    assert_eq!(out.status.code(), Some(75), "ingest must let the MTA keep the mail: {}", stderr(&out));
    assert!(stderr(&out).contains("damaged") && stderr(&out).contains("db restore"), "{}", stderr(&out));
    assert_eq!(std::fs::read(&path).unwrap(), before, "nothing may be written into a damaged database");

    let out = env.run(&["db", "check"]);
    assert_eq!(out.status.code(), Some(65), "{}", stdout(&out));

    // A damaged backup is refused too, and the live file is left as it was.
    let bad = env.dir.path().join("damaged-copy.db");
    std::fs::copy(&path, &bad).unwrap();
    let out = env.run(&["db", "restore", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(65), "{}", stderr(&out));
    assert!(stderr(&out).contains("refusing"), "{}", stderr(&out));

    let out = env.run(&["db", "restore", newest(&backups).to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(ingest_ok(&env, &customer(999, "after the restore")).contains("new ticket"));
}

#[test]
fn an_empty_database_file_and_a_lost_database_are_not_taken_for_new_ones() {
    let env = Env::new();
    ingest_ok(&env, &customer(1, "history"));
    let path = db(&env);
    for suffix in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    std::fs::write(&path, b"").unwrap();
    let out = env.ingest_bytes(&customer(2, "into nothing"));
    assert_eq!(out.status.code(), Some(75), "{}", stderr(&out));
    assert!(stderr(&out).contains("0-byte"), "{}", stderr(&out));

    std::fs::remove_file(&path).unwrap();
    for args in [&["ingest"][..], &["ticket", "list"][..]] {
        let out = if args == ["ingest"] { env.ingest_bytes(&customer(2, "x")) } else { env.run(args) };
        assert!(!out.status.success(), "{args:?} started an empty database in place of the lost one");
        assert!(stderr(&out).contains("missing"), "{}", stderr(&out));
    }
    assert!(!path.exists());
    let out = env.run(&["db", "init"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let again = ticket_number(&ingest_ok(&env, &customer(3, "afresh")));
    assert_eq!(&again[10..15], "00002", "numbering goes on after the lost database: {again}");
}

#[test]
fn a_mail_quarantined_for_size_is_replayed_into_one_ticket_after_the_limit_is_raised() {
    let env = Env::with_extra("[limits]\nmax_message_bytes = 2048\n");
    let big = customer(5, &format!("too big {}", "y".repeat(3000)));
    let out = ingest_ok(&env, &big);
    assert!(out.contains("quarantined (#1)"), "{out}");

    let out = env.run(&["quarantine", "show", "1"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let shown = stdout(&out);
    assert!(shown.contains("Message-ID: <db5@customer.example>") && shown.contains(&format!("{} bytes", big.len())));
    assert!(shown.contains("max_message_bytes"), "{shown}");
    assert_eq!(env.run(&["quarantine", "raw", "1"]).stdout, big, "raw gives the exact bytes");

    let out = env.run(&["quarantine", "replay", "1"]);
    assert_eq!(out.status.code(), Some(65), "still too big: {}", stdout(&out));
    assert!(env.tickets().is_empty());

    let text = std::fs::read_to_string(&env.config).unwrap().replace("2048", "1048576");
    std::fs::write(&env.config, text).unwrap();
    let out = env.run(&["quarantine", "replay", "1"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("new ticket"), "{}", stdout(&out));
    // Twice, and once more as part of --all, and the same bytes piped in again: still one ticket.
    let out = env.run(&["quarantine", "replay", "1"]);
    assert!(out.status.success() && stdout(&out).contains("already"), "{}", stdout(&out));
    assert!(env.run(&["quarantine", "replay", "--all"]).status.success());
    assert!(ingest_ok(&env, &big).contains("duplicate"));
    assert_eq!(env.tickets().len(), 1);
    let shown = stdout(&env.run(&["quarantine", "show", "1"]));
    assert!(shown.contains("replayed") && shown.contains("cli:"), "{shown}");
    let listed = stdout(&env.run(&["quarantine", "list"]));
    assert!(listed.contains("#1     replayed"), "{listed}");
}

#[test]
fn a_dropped_mail_keeps_its_reason_and_loses_its_bytes() {
    let env = Env::new();
    let out = ingest_ok(&env, b"not a mail at all");
    assert!(out.contains("quarantined (#1)"), "{out}");
    assert_eq!(env.run(&["quarantine", "drop", "1"]).status.code(), Some(64), "--reason is required (a usage error)");
    let out = env.run(&["quarantine", "drop", "1", "--reason", "junk from a scanner"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let shown = stdout(&env.run(&["quarantine", "show", "1"]));
    assert!(shown.contains("dropped") && shown.contains("junk from a scanner"), "{shown}");
    assert!(!env.run(&["quarantine", "raw", "1"]).status.success());
    let out = env.run(&["quarantine", "replay", "1"]);
    assert!(!out.status.success(), "a dropped mail has nothing to replay");
    assert!(env.tickets().is_empty());
}

#[test]
fn backup_rotation_removes_copies_older_than_keep_days_and_nothing_else() {
    let env = Env::new();
    ingest_ok(&env, &customer(1, "something to back up"));
    let backups = env.dir.path().join("backups");
    std::fs::create_dir_all(&backups).unwrap();
    let now = chrono::Utc::now();
    let named = |days: i64| {
        let at = now - chrono::Duration::days(days) - chrono::Duration::minutes(5);
        backups.join(format!("postdesk-{}.sqlite.zst", at.format("%Y%m%dT%H%M%SZ")))
    };
    for days in [1, 6, 8, 30] {
        std::fs::write(named(days), b"old").unwrap();
    }
    std::fs::write(backups.join("README"), b"not a backup").unwrap();
    let out = env.run(&["db", "backup", "--to", backups.to_str().unwrap(), "--keep-days", "7"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(named(1).exists() && named(6).exists(), "copies within 7 days are kept");
    assert!(!named(8).exists() && !named(30).exists(), "older copies are removed");
    assert!(backups.join("README").exists());
    assert_eq!(std::fs::read_dir(&backups).unwrap().count(), 4, "two kept, the new one, and README");
}
