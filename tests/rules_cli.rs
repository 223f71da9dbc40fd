//! Routing rules as an admin meets them: shipped rules routing real mail, `rules check`, `rules test`.

mod common;

use common::*;

const QUEUES: &str = "[[queues]]\nname = \"billing\"\n[[queues]]\nname = \"sales\"\n[[queues]]\nname = \"vip\"\n";

fn env_with_rules(files: &[(&str, &str)]) -> Env {
    let env = Env::with_extra(QUEUES);
    for (name, text) in files {
        std::fs::write(env.dir.path().join("rules").join(name), text).unwrap();
    }
    env
}

fn shipped_rules_env() -> Env {
    let env = Env::with_extra(QUEUES);
    for entry in std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/rules")).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, env.dir.path().join("rules").join(path.file_name().unwrap())).unwrap();
    }
    env
}

const BILLING_MAIL: &str = "From: Jane <jane@shop.example>\r\nTo: Billing <billing@example.com>\r\nSubject: Invoice 123456 twice\r\n\
     Message-ID: <bill-1@shop.example>\r\nContent-Type: text/plain\r\n\r\nYou charged me twice.\r\n";

#[test]
fn mail_to_billing_lands_in_billing_with_priority_tags_and_the_rule_listed() {
    let env = shipped_rules_env();
    let out = env.ingest_bytes(BILLING_MAIL.as_bytes());
    assert!(out.status.success(), "{}", stderr(&out));
    let number = ticket_number(&stdout(&out));
    let t = env.ticket_json(&number);
    assert_eq!(t["queue"], "billing");
    assert_eq!(t["priority"], "high");
    let tags: Vec<&str> = t["tags"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    assert!(tags.contains(&"billing") && tags.contains(&"invoice") && tags.contains(&"invoice-123456"), "{tags:?}");
    let rules: Vec<&str> = t["rules"].as_array().unwrap().iter().map(|r| r["rule"].as_str().unwrap()).collect();
    assert!(rules.contains(&"billing by recipient"), "{rules:?}");
    let text = stdout(&env.run(&["ticket", "show", &number]));
    assert!(text.contains("rules fired:") && text.contains("billing by recipient (50-billing.toml)"), "{text}");
}

#[test]
fn broken_rule_files_are_refused_with_file_line_and_problem() {
    let cases = [
        (
            "10-regex.toml",
            "[[rule]]\nname = \"bad regex\"\n[rule.when]\nsubject = { regex = \"(unclosed\" }\n[rule.then]\nqueue = \"billing\"\n",
            "10-regex.toml:4:",
            "regex",
        ),
        (
            "20-key.toml",
            "[[rule]]\nname = \"typo\"\n[rule.when]\nsubjct = \"x\"\n[rule.then]\nqueue = \"billing\"\n",
            "20-key.toml:4:",
            "subjct",
        ),
        (
            "30-queue.toml",
            "[[rule]]\nname = \"no such queue\"\n[rule.then]\nqueue = \"bilings\"\n",
            "30-queue.toml:4:",
            "bilings",
        ),
    ];
    for (file, text, position, word) in cases {
        let env = env_with_rules(&[(file, text)]);
        let out = env.run(&["rules", "check"]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(78), "{file}: {err}");
        assert!(err.contains(position) && err.contains(word), "{file}: {err}");
        // `check` refuses the whole setup the same way, and so would `run`.
        assert_eq!(env.run(&["check"]).status.code(), Some(78));
    }
}

#[test]
fn rules_test_explains_every_rule_and_changes_nothing() {
    let env = shipped_rules_env();
    let first = env.ingest_bytes(&fixture("new-ticket.eml"));
    assert!(first.status.success());
    let db = env.dir.path().join("state/postdesk.db");
    let wal = env.dir.path().join("state/postdesk.db-wal");
    let snapshot = || (std::fs::read(&db).unwrap(), std::fs::read(&wal).unwrap_or_default());
    let before = (snapshot(), env.tickets().len());
    let mail = env.dir.path().join("billing.eml");
    std::fs::write(&mail, BILLING_MAIL).unwrap();
    let out = env.run(&["rules", "test", mail.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("billing by recipient") && text.contains("billing"), "{text}");
    let out = env.run(&["rules", "test", mail.to_str().unwrap(), "--json"]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["explanation"]["decision"]["queue"], "billing");
    let verdicts = json["explanation"]["rules"].as_array().unwrap();
    assert!(verdicts.len() >= 5, "every rule gets a verdict");
    assert!(verdicts.iter().any(|v| v["matched"] == true) && verdicts.iter().any(|v| v["matched"] == false));
    assert_eq!((snapshot(), env.tickets().len()), before, "rules test must not write");
}
