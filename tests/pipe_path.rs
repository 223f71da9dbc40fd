//! `postdesk ingest` as an MTA runs it: one process per mail, several at once, and big mailboxes in one call.

mod common;

use common::*;

fn small_mail(n: usize) -> Vec<u8> {
    format!(
        "From: Customer {n} <customer{n}@example.org>\r\nTo: support@example.test\r\nSubject: printer problem {n}\r\n\
         Message-ID: <pipe.{n}@example.org>\r\nDate: Mon, 23 Nov 2026 10:00:00 +0100\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\r\nThe printer in room {n} does not print.\r\n"
    )
    .into_bytes()
}

/// Two concurrent pipes used to fail "database is locked" within milliseconds instead of waiting out the busy
/// timeout. Four at once, starting before the database exists (so the very first statements contend: creation,
/// WAL switch, migrations), then again on the existing database: every call must succeed.
#[test]
fn four_concurrent_pipes_never_fail_with_database_is_locked() {
    let env = Env::new();
    for round in 0..2 {
        let failures: Vec<String> = std::thread::scope(|s| {
            let workers: Vec<_> = (0..4)
                .map(|w| {
                    let env = &env;
                    s.spawn(move || {
                        let mut failed = Vec::new();
                        for k in 0..8 {
                            let out = env.ingest_bytes(&small_mail(round * 1000 + w * 100 + k));
                            if !out.status.success() {
                                failed.push(format!("exit {:?}: {}", out.status.code(), stderr(&out)));
                            }
                        }
                        failed
                    })
                })
                .collect();
            workers.into_iter().flat_map(|w| w.join().unwrap()).collect()
        });
        assert!(failures.is_empty(), "round {round}: {} calls failed: {failures:?}", failures.len());
    }
    assert_eq!(env.tickets().len(), 64);
}

/// Batch ingest reads an mbox mail by mail; every mail of a file larger than one batch arrives, in order, once.
#[test]
fn an_mbox_bigger_than_a_batch_is_streamed_whole() {
    let env = Env::new();
    let mut mbox = Vec::new();
    for n in 0..150 {
        mbox.extend_from_slice(b"From customer@example.org Mon Nov 23 10:00:00 2026\r\n");
        mbox.extend_from_slice(&small_mail(n));
        mbox.extend_from_slice(b"\r\n");
    }
    let path = env.dir.path().join("big.mbox");
    std::fs::write(&path, &mbox).unwrap();
    let out = env.run(&["ingest", path.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let lines: Vec<String> = stdout(&out).lines().map(str::to_string).collect();
    assert_eq!(lines.len(), 150);
    assert!(lines[149].contains("big.mbox#150: new ticket"), "{}", lines[149]);
    assert_eq!(env.tickets().len(), 150);
}

/// Raw mail is stored compressed; `ticket raw` gives the exact bytes back.
#[test]
fn ticket_raw_returns_the_exact_bytes_of_a_compressed_mail() {
    let env = Env::new();
    let mut mail = small_mail(1);
    for line in 0..200 {
        mail.extend_from_slice(format!("> quoted line {line} of an earlier message in this thread\r\n").as_bytes());
    }
    let out = env.ingest_bytes(&mail);
    assert!(out.status.success(), "{}", stderr(&out));
    let number = ticket_number(&stdout(&out));
    let article = env.ticket_json(&number)["articles"][0]["id"].to_string();
    let raw = env.run(&["ticket", "raw", &article]);
    assert!(raw.status.success(), "{}", stderr(&raw));
    assert_eq!(raw.stdout, mail);
}

/// A `postdesk run` with no mailbox to watch and a relay nobody listens on: the daemon of a pipe-only installation.
fn pipe_daemon(env: &Env) -> std::process::Child {
    let log = std::fs::File::create(env.dir.path().join("daemon.log")).unwrap();
    let child = env.cmd(&["run"]).env("POSTDESK_LOG", "info").stderr(log).spawn().unwrap();
    let socket = env.dir.path().join("state/ingest.sock");
    let start = std::time::Instant::now();
    while !socket.exists() {
        assert!(start.elapsed() < std::time::Duration::from_secs(30), "no socket:\n{}", daemon_log(env));
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child
}

fn daemon_log(env: &Env) -> String {
    std::fs::read_to_string(env.dir.path().join("daemon.log")).unwrap_or_default()
}

const CLOSED_RELAY: &str = "[smtp]\nhost = \"127.0.0.1\"\nport = 9\ntls = \"plain\"\nrelay_probe_max_seconds = 1\n";

/// With the daemon running, `ingest` hands each mail over and prints the daemon's answer: a new ticket, then the
/// same bytes again as a duplicate, and four pipes at once all succeed. Every mail went through the daemon.
#[test]
fn ingest_hands_mail_to_the_running_daemon() {
    let env = Env::with_extra(CLOSED_RELAY);
    let mut daemon = pipe_daemon(&env);
    let first = env.ingest_bytes(&small_mail(1));
    assert!(first.status.success(), "{}", stderr(&first));
    assert!(stdout(&first).starts_with("stdin: new ticket "), "{}", stdout(&first));
    let again = env.ingest_bytes(&small_mail(1));
    assert!(again.status.success(), "{}", stderr(&again));
    assert!(stdout(&again).contains("duplicate"), "{}", stdout(&again));
    let failures: Vec<String> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..4)
            .map(|w| {
                let env = &env;
                s.spawn(move || {
                    (0..5)
                        .map(|k| env.ingest_bytes(&small_mail(100 + w * 10 + k)))
                        .filter(|out| !out.status.success())
                        .map(|out| stderr(&out))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers.into_iter().flat_map(|w| w.join().unwrap()).collect()
    });
    assert!(failures.is_empty(), "{failures:?}");
    assert_eq!(daemon_log(&env).matches("mail handed over").count(), 22, "{}", daemon_log(&env));
    let _ = daemon.kill();
    let _ = daemon.wait();
    assert_eq!(env.tickets().len(), 21);
}

/// A daemon killed outright leaves its socket behind: `ingest` finds nobody listening and takes the mail in itself.
#[test]
fn ingest_works_alone_when_the_daemon_died_and_left_its_socket() {
    let env = Env::with_extra(CLOSED_RELAY);
    let mut daemon = pipe_daemon(&env);
    daemon.kill().unwrap();
    daemon.wait().unwrap();
    assert!(env.dir.path().join("state/ingest.sock").exists());
    let out = env.ingest_bytes(&small_mail(7));
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).starts_with("stdin: new ticket "), "{}", stdout(&out));
    assert_eq!(env.tickets().len(), 1);
    assert!(!daemon_log(&env).contains("mail handed over"));
}
