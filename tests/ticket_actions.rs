//! `postdesk ticket reply|note|close|reopen|assign|queue|priority|merge` as an admin runs them: the real binary on a
//! throwaway database. What they send is checked in the outbox here and in the customer's mailbox in
//! `ticket_actions_live.rs`.

mod common;

use std::io::Write;
use std::process::Stdio;

use common::*;

const SMTP: &str = "[smtp]\nhost = \"127.0.0.1\"\nport = 9\ntls = \"plain\"\n[[queues]]\nname = \"billing\"\n";

fn desk() -> (Env, String) {
    let env = Env::with_extra(SMTP);
    for args in [
        &["role", "add", "first-level", "--queue", "support"][..],
        &["role", "add", "accounts", "--queue", "billing"],
        &["agent", "add", "agent1@example.test", "--name", "Agent One", "--role", "first-level"],
        &["agent", "add", "agent2@example.test", "--name", "Agent Two", "--role", "first-level"],
        &["agent", "add", "agent3@example.test", "--name", "Agent Three", "--role", "accounts"],
    ] {
        let out = env.run(args);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
    }
    let out = env.ingest_bytes(&fixture("new-ticket.eml"));
    assert!(out.status.success(), "{}", stderr(&out));
    let number = ticket_number(&stdout(&out));
    (env, number)
}

fn with_stdin(env: &Env, args: &[&str], text: &str) -> std::process::Output {
    let mut child = env.cmd(args).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

fn outbox(env: &Env) -> Vec<serde_json::Value> {
    let out = env.run(&["outbox", "list", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn history(env: &Env, number: &str) -> Vec<(String, String, String)> {
    env.ticket_json(number)["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            let s = |k: &str| h[k].as_str().unwrap().to_string();
            (s("actor"), s("event"), s("detail"))
        })
        .collect()
}

#[test]
fn a_reply_from_the_command_line_is_queued_to_the_customer_and_the_cc_as_the_agents_would_be() {
    let (env, number) = desk();
    let before = outbox(&env).len();
    let out = with_stdin(
        &env,
        &["ticket", "reply", &number, "--from-agent", "AGENT1@example.test"],
        "Hello Alice,\r\nwe sent a technician.\r\n",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("answer to alice@customer.example (Cc bob@customer.example) queued"),
        "{}",
        stdout(&out)
    );
    let rows = outbox(&env);
    let reply = rows.iter().find(|r| r["kind"] == "agent-reply").expect("an agent-reply row");
    assert_eq!(rows.len(), before + 1, "no notification: the answer is the agent's own");
    assert_eq!(reply["recipients"], serde_json::json!(["alice@customer.example", "bob@customer.example"]));
    let ticket = env.ticket_json(&number);
    let article = ticket["articles"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["direction"] == "outbound" && a["classification"] == "human");
    let article = article.expect("the answer is shown on the ticket");
    assert_eq!(article["visible_text"], "Hello Alice,\nwe sent a technician.");
    assert_eq!(article["in_reply_to"], "first-mail.4711@customer.example");
    assert!(
        history(&env, &number).iter().any(|(actor, event, _)| actor == "agent1@example.test" && event == "answered")
    );

    // An admin (no --from-agent) answers too, recorded as admin; an empty text is refused and changes nothing.
    let out = with_stdin(&env, &["ticket", "reply", &number], "From the admin.");
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(history(&env, &number).iter().any(|(actor, event, _)| actor == "admin" && event == "answered"));
    let rows = outbox(&env).len();
    let out = with_stdin(&env, &["ticket", "reply", &number], " \n\n");
    assert_eq!(out.status.code(), Some(65), "{}", stderr(&out));
    assert_eq!(outbox(&env).len(), rows);
}

#[test]
fn commands_from_the_command_line_leave_the_same_history_as_by_mail_and_refusals_change_nothing() {
    let (env, number) = desk();
    let run = |args: &[&str]| env.run(args);

    let out = run(&["ticket", "priority", &number, "very high"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(env.ticket_json(&number)["priority"], "very-high");

    let out = run(&["ticket", "assign", &number, "agent2@example.test", "--from-agent", "agent1@example.test"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(env.ticket_json(&number)["owner"], "agent2@example.test");
    let told = outbox(&env);
    assert!(
        told.iter()
            .any(|r| r["kind"] == "notification" && r["recipients"] == serde_json::json!(["agent2@example.test"]))
    );

    let out = run(&["ticket", "close", &number]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(env.ticket_json(&number)["state"], "closed");
    let out = run(&["ticket", "reopen", &number]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(env.ticket_json(&number)["state"], "open");

    let h = history(&env, &number);
    let commands: Vec<_> =
        h.iter().filter(|(_, e, _)| e == "command").map(|(a, _, d)| (a.as_str(), d.as_str())).collect();
    assert_eq!(
        commands,
        vec![
            ("admin", "#priority very high: priority very-high"),
            ("agent1@example.test", "#assign agent2@example.test: assigned to agent2@example.test"),
            ("admin", "#close: closed"),
            ("admin", "#reopen: open again"),
        ]
    );

    // Refused: each exits non-zero with the reason and leaves no trace.
    let cases: [(&[&str], i32, &str); 6] = [
        (&["ticket", "priority", &number, "urgent"], 65, "#priority takes"),
        (&["ticket", "queue", &number, "nowhere"], 65, "no queue named \"nowhere\""),
        (&["ticket", "assign", &number, "agent3@example.test"], 65, "no rights on queue support"),
        (&["ticket", "close", &number, "--from-agent", "agent3@example.test"], 77, "no rights on queue support"),
        (&["ticket", "close", &number, "--from-agent", "nobody@example.test"], 77, "not an enabled agent"),
        (&["ticket", "close", "2026010110000010"], 66, "no ticket"),
    ];
    for (args, code, message) in cases {
        let out = run(args);
        assert_eq!(out.status.code(), Some(code), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(message), "{args:?}: {}", stderr(&out));
    }
    assert_eq!(history(&env, &number), h, "a refused action must not be recorded or applied");
}

#[test]
fn notes_reach_the_queue_not_the_customer_and_moves_and_merges_follow_the_agents_rules() {
    let (env, number) = desk();
    let before = outbox(&env).len();
    let out = with_stdin(&env, &["ticket", "note", &number, "--from-agent", "agent1@example.test"], "Called Alice.");
    assert!(out.status.success(), "{}", stderr(&out));
    let rows = outbox(&env);
    let new: Vec<_> = rows[..rows.len() - before].iter().collect();
    assert_eq!(new.len(), 1, "only agent2 hears of agent1's note: {new:?}");
    assert_eq!(new[0]["recipients"], serde_json::json!(["agent2@example.test"]));
    let ticket = env.ticket_json(&number);
    assert!(
        ticket["articles"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["internal"] == true && a["visible_text"] == "Called Alice.")
    );

    // agent1 has no rights on billing: the move is refused; the admin may.
    let out = env.run(&["ticket", "queue", &number, "billing", "--from-agent", "agent1@example.test"]);
    assert_eq!(out.status.code(), Some(65), "{}", stderr(&out));
    let out = env.run(&["ticket", "queue", &number, "billing"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(env.ticket_json(&number)["queue"], "billing");

    // A second ticket merged into the first; a typo in the number (bad check digit) is refused before anything.
    let other = env.ingest_bytes(&common::stack::customer_mail(7, "Another printer"));
    let other = ticket_number(&stdout(&other));
    let mut typo = number.clone();
    let last = typo.pop().unwrap();
    typo.push(if last == '0' { '1' } else { '0' });
    let out = env.run(&["ticket", "merge", &other, &typo]);
    assert_eq!(out.status.code(), Some(65), "{}", stderr(&out));
    let out = env.run(&["ticket", "merge", &other, &number]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(env.ticket_json(&other)["state"], "merged");
    // Acting on the merged ticket acts on the ticket it went into, as a mail with its token would.
    let out = env.run(&["ticket", "close", &other]);
    assert!(stdout(&out).contains(&format!("ticket {number}: closed")), "{}", stdout(&out));
}
