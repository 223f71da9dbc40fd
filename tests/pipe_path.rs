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
