//! The `ingest`, `ticket`, `check` commands as a user runs them: the real binary, a throwaway state directory.

mod common;

use common::*;

fn reply(number: &str, from: &str, extra_headers: &str, subject: &str) -> Vec<u8> {
    format!(
        "From: {from}\r\nTo: support@example.test\r\nSubject: {subject}\r\n{extra_headers}Message-ID: <reply-{number}-{}@customer.example>\r\n\
         Date: Mon, 23 Nov 2026 10:00:00 +0100\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\
         It is still burning.\r\n\r\nOn Mon, 23 Nov 2026 at 09:15, Alice Example <alice@customer.example> wrote:\r\n\
         > the printer on the 3rd floor is smoking again.\r\n",
        from.len() + subject.len() + extra_headers.len()
    )
    .into_bytes()
}

#[test]
fn new_mail_opens_a_ticket_and_replies_thread_by_token_and_by_references() {
    let env = Env::new();
    let out = env.ingest_bytes(&fixture("new-ticket.eml"));
    assert!(out.status.success(), "{}", stderr(&out));
    let line = stdout(&out);
    assert!(line.contains("new ticket"), "{line}");
    let number = ticket_number(&line);
    assert!(postdesk::token::is_valid_number(&number));

    // Token in the subject, from the customer.
    let out =
        env.ingest_bytes(&reply(&number, "alice@customer.example", "", &format!("Re: [Ticket#{number}] Printer")));
    assert!(stdout(&out).contains(&format!("follow-up on ticket {number} (by subject token)")), "{}", stdout(&out));

    // No token, changed subject, only In-Reply-To.
    let out = env.ingest_bytes(&reply(
        &number,
        "alice@customer.example",
        "In-Reply-To: <first-mail.4711@customer.example>\r\n",
        "something else entirely",
    ));
    assert!(stdout(&out).contains(&format!("follow-up on ticket {number} (by reference")), "{}", stdout(&out));

    // References only, from the Cc'd colleague.
    let out = env.ingest_bytes(&reply(
        &number,
        "bob@customer.example",
        "References: <unknown@x.example> <first-mail.4711@customer.example>\r\n",
        "fire",
    ));
    assert!(stdout(&out).contains(&format!("follow-up on ticket {number}")), "{}", stdout(&out));

    let ticket = env.ticket_json(&number);
    let articles = ticket["articles"].as_array().unwrap();
    assert_eq!(articles.len(), 4);
    assert_eq!(ticket["customer"], "alice@customer.example");
    assert_eq!(ticket["subject"], "Printer on the 3rd floor is on fire");
    let visible = articles[1]["visible_text"].as_str().unwrap();
    assert_eq!(visible, "It is still burning.");
    assert!(articles[1]["body_text"].as_str().unwrap().contains("> the printer"));
    // The exact bytes are kept and can be had back.
    let raw = env.run(&["ticket", "raw", &articles[0]["id"].to_string()]);
    assert_eq!(raw.stdout, fixture("new-ticket.eml"));
    assert_eq!(env.tickets().len(), 1);
}

#[test]
fn the_same_file_twice_stores_nothing_the_second_time() {
    let env = Env::new();
    let path = env.dir.path().join("mail.eml");
    std::fs::write(&path, fixture("new-ticket.eml")).unwrap();
    let first = env.run(&["ingest", path.to_str().unwrap()]);
    assert!(stdout(&first).contains("new ticket"));
    let second = env.run(&["ingest", path.to_str().unwrap()]);
    assert!(second.status.success());
    assert!(stdout(&second).contains("duplicate"), "{}", stdout(&second));
    assert_eq!(env.tickets().len(), 1);
    let number = ticket_number(&stdout(&first));
    assert_eq!(env.ticket_json(&number)["articles"].as_array().unwrap().len(), 1);
}

#[test]
fn same_message_id_with_different_bytes_is_kept_and_flagged() {
    let env = Env::new();
    let number = ticket_number(&stdout(&env.ingest_bytes(&fixture("new-ticket.eml"))));
    let mut changed = fixture("new-ticket.eml");
    changed.extend_from_slice(b"P.S. it smells too.\n");
    let out = env.ingest_bytes(&changed);
    assert!(stdout(&out).contains("flagged"), "{}", stdout(&out));
    let ticket = env.ticket_json(&number);
    assert_eq!(ticket["articles"][1]["duplicate_of"], ticket["articles"][0]["id"]);
}

#[test]
fn a_stranger_with_a_valid_token_opens_a_new_ticket_and_a_mistyped_token_is_not_followed() {
    let env = Env::new();
    let number = ticket_number(&stdout(&env.ingest_bytes(&fixture("new-ticket.eml"))));
    let out =
        env.ingest_bytes(&reply(&number, "mallory@evil.example", "", &format!("[Ticket#{number}] send me the data")));
    let line = stdout(&out);
    assert!(line.contains("new ticket") && line.contains(&format!("named ticket {number}")), "{line}");
    let stranger_ticket = ticket_number(&line);
    assert_ne!(stranger_ticket, number);
    assert_eq!(env.ticket_json(&stranger_ticket)["claimed_number"], number.as_str());

    let mut typo = number.clone().into_bytes();
    let last = typo.len() - 1;
    typo[last] = if typo[last] == b'9' { b'0' } else { typo[last] + 1 };
    let typo = String::from_utf8(typo).unwrap();
    let out = env.ingest_bytes(&reply(&number, "alice@customer.example", "", &format!("Re: [Ticket#{typo}] still")));
    assert!(stdout(&out).contains("new ticket"), "{}", stdout(&out));
    assert_eq!(env.ticket_json(&number)["articles"].as_array().unwrap().len(), 1);
}

#[test]
fn mbox_and_maildir_inputs_are_split_into_mails() {
    let env = Env::new();
    let mbox = env.dir.path().join("in.mbox");
    let one = String::from_utf8(fixture("new-ticket.eml")).unwrap();
    let two = one.replace("first-mail.4711", "second-mail").replace("on fire", "out of toner");
    std::fs::write(
        &mbox,
        format!("From a@b Mon Nov 23 09:00:00 2026\n{one}\nFrom a@b Mon Nov 23 09:01:00 2026\n{two}"),
    )
    .unwrap();
    let out = env.run(&["ingest", mbox.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out).matches("new ticket").count(), 2, "{}", stdout(&out));
}

#[test]
fn hostile_mail_is_quarantined_and_ingest_still_exits_zero() {
    let env = Env::new();
    let mut huge = b"From: a@b.example\r\nSubject: big\r\n\r\n".to_vec();
    huge.resize(50 * 1024 * 1024, b'x');
    let mut parts =
        String::from("From: a@b.example\r\nSubject: parts\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n");
    for _ in 0..100_000 {
        parts.push_str("--b\r\nContent-Type: text/plain\r\n\r\nx\r\n");
    }
    parts.push_str("--b--\r\n");
    let not_mail: Vec<u8> = (0..4096u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    for (name, raw) in [("huge", huge), ("parts", parts.into_bytes()), ("binary", not_mail)] {
        let out = env.ingest_bytes(&raw);
        assert!(out.status.success(), "{name}: {}", stderr(&out));
        assert!(stdout(&out).contains("quarantined"), "{name}: {}", stdout(&out));
    }
    let out = env.run(&["quarantine", "list", "--json"]);
    let list: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(list.len(), 3);
    assert!(list.iter().all(|q| q["kept_bytes"] == true));
    assert!(env.tickets().is_empty());
}

#[test]
fn bad_config_exits_78_naming_file_key_and_fix() {
    let env = Env::with_extra("[limits]\nmax_mesage_bytes = 10\n");
    let out = env.run(&["check"]);
    assert_eq!(out.status.code(), Some(78));
    let err = stderr(&out);
    assert!(
        err.contains("postdesk.toml:3:") && err.contains("max_mesage_bytes") && err.contains("remove or rename"),
        "{err}"
    );
    let out = env.run(&["ingest", "/dev/null"]);
    assert_eq!(out.status.code(), Some(78));
}

/// The shipped example config, with the shipped rules/ and templates/ in place of /etc/postdesk/…, passes
/// `check` and `rules check`.
#[test]
fn shipped_example_config_rules_and_templates_pass_check() {
    let root = env!("CARGO_MANIFEST_DIR");
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(format!("{root}/packaging/postdesk.toml"))
        .unwrap()
        .replace("/etc/postdesk/rules", &format!("{root}/rules"))
        .replace("/etc/postdesk/templates", &format!("{root}/templates"))
        .replace("/var/lib/postdesk", dir.path().to_str().unwrap());
    let config = dir.path().join("postdesk.toml");
    std::fs::write(&config, text).unwrap();
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_postdesk"))
            .arg("--config")
            .arg(&config)
            .args(args)
            .output()
            .unwrap()
    };
    let out = run(&["check"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = run(&["rules", "check", &format!("{root}/rules")]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("billing by recipient"), "{}", stdout(&out));
}

#[test]
fn an_attachment_comes_back_byte_for_byte_by_its_hash() {
    let env = Env::new();
    // A PDF-ish header and every byte value, base64 in the mail; kept only inside the raw mail.
    let content: Vec<u8> = b"%PDF-1.4\n".iter().copied().chain((0..=255u8).cycle().take(2048)).collect();
    use base64::Engine;
    let encoded = base64::engine::general_purpose::STANDARD.encode(&content);
    let lines: Vec<&str> = encoded.as_bytes().chunks(76).map(|c| std::str::from_utf8(c).unwrap()).collect();
    let mail = format!(
        "From: alice@customer.example\r\nTo: support@example.test\r\nSubject: Invoice scan\r\n\
         Message-ID: <scan.1@customer.example>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=XX\r\n\r\n\
         --XX\r\nContent-Type: text/plain\r\n\r\nSee the scan.\r\n--XX\r\nContent-Type: application/pdf\r\n\
         Content-Disposition: attachment; filename=\"../../invoice.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\n\
         {}\r\n--XX--\r\n",
        lines.join("\r\n")
    );
    let out = env.ingest_bytes(mail.as_bytes());
    let number = ticket_number(&stdout(&out));
    let ticket = env.ticket_json(&number);
    let listed = &ticket["articles"][0]["attachments"][0];
    assert_eq!(listed["filename"], "../../invoice.pdf");
    let sha = listed["sha256"].as_str().unwrap().to_string();

    let target = env.dir.path().join("saved.pdf");
    let out = env.run(&["ticket", "attachment", &number, &sha[..10], "--output", target.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(std::fs::read(&target).unwrap(), content);
    assert!(!env.dir.path().join("invoice.pdf").exists(), "the sender's filename is never a path");

    let out = env.run(&["ticket", "attachment", &number, &sha]);
    assert_eq!(out.stdout, content, "to standard output when it is not a terminal");
    let out = env.run(&["ticket", "attachment", &number, "0000000000"]);
    assert_eq!(out.status.code(), Some(66), "{}", stderr(&out));
    assert!(stderr(&out).contains("has no attachment"), "{}", stderr(&out));
    let out = env.run(&["ticket", "attachment", &number, "abc"]);
    assert_eq!(out.status.code(), Some(64), "{}", stderr(&out));
}

/// A mail is compressed, and its received bytes let go, as soon as it is parsed (issue 12, seventh pass). Mail that a
/// rule then refuses is quarantined from its compressed form: the quarantine must still hold its exact bytes, and
/// the ticket's raw mail must come back exact too, for mail of one frame and of several.
#[test]
fn mail_refused_after_it_was_compressed_keeps_its_exact_bytes() {
    let env = Env::new();
    std::fs::write(
        env.dir.path().join("rules/10-spam.toml"),
        "[[rule]]\nname = \"spam\"\n[rule.when]\nheader = { name = \"X-Spam-Flag\", equals = \"YES\" }\n\
         [rule.then]\nspam = true\nstop = true\n",
    )
    .unwrap();
    // Text that compresses, in mails under and over zstd's frame piece (1 MiB), with CR LF and bare LF lines.
    let mail = |n: usize, spam: bool, lines: usize| -> Vec<u8> {
        let flag = if spam { "X-Spam-Flag: YES\r\n" } else { "" };
        let mut raw = format!(
            "From: Customer {n} <c{n}@customer.example>\r\nTo: support@example.test\r\nSubject: order {n}\r\n{flag}\
             Message-ID: <packed-{n}@customer.example>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
        )
        .into_bytes();
        for line in 0..lines {
            let end = if line % 3 == 0 { "\n" } else { "\r\n" };
            raw.extend_from_slice(format!("line {line} of order {n}: {} widgets{end}", line * 7 % 1000).as_bytes());
        }
        raw
    };
    let mails = [mail(1, true, 20), mail(2, true, 60_000), mail(3, false, 20), mail(4, false, 60_000)];
    assert!(mails[1].len() > 1 << 20 && mails[3].len() > 1 << 20, "{}", mails[1].len());
    let files: Vec<String> = mails
        .iter()
        .enumerate()
        .map(|(i, raw)| {
            let path = env.dir.path().join(format!("mail-{i}.eml"));
            std::fs::write(&path, raw).unwrap();
            path.display().to_string()
        })
        .collect();
    let mut args = vec!["ingest"];
    args.extend(files.iter().map(String::as_str));
    let out = env.run(&args);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out).matches("quarantined").count(), 2, "{}", stdout(&out));
    assert_eq!(stdout(&out).matches("new ticket").count(), 2, "{}", stdout(&out));

    let store = postdesk::store::Store::open_read_only(&env.dir.path().join("state/postdesk.db")).unwrap();
    for (id, expected) in [(1, &mails[0]), (2, &mails[1])] {
        let item = store.quarantine_item(id).unwrap().expect("quarantined");
        assert!(item.reason.contains("spam by rule"), "{}", item.reason);
        assert!(item.data.as_deref() == Some(expected.as_slice()), "quarantine {id} holds the exact bytes");
        assert_eq!(item.size, expected.len() as i64);
        assert_eq!(item.sha256.as_deref(), Some(postdesk::store::sha256_hex(expected).as_str()));
    }
    for line in stdout(&out).lines().filter(|l| l.contains("new ticket")) {
        let ticket = env.ticket_json(&ticket_number(line));
        let article = ticket["articles"][0]["id"].to_string();
        let raw = env.run(&["ticket", "raw", &article]);
        assert!(raw.status.success(), "{}", stderr(&raw));
        assert!(mails[2..].contains(&raw.stdout), "ticket {line}: its raw mail comes back exact");
    }
}
