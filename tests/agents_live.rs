//! Agents working by mail on the real stack: notifications, answers relayed to the customer, notes, commands, and
//! no impersonation by a forged From.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::stack::*;
use postdesk::model::InboundMail;
use postdesk::store::{Store, TicketFilter};

/// Fields drop in order: the daemon (and, when a test failed, its log) goes before the stack's directory holding it.
struct Desk {
    _daemon: Daemon,
    stack: Stack,
    state: PathBuf,
    config: PathBuf,
}

fn parsed(raw: &[u8]) -> InboundMail {
    postdesk::parse::parse_mail(raw, &postdesk::config::Limits::default()).expect("a mail")
}

fn cli(config: &Path, args: &[&str]) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_postdesk"))
        .arg("--config")
        .arg(config)
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "postdesk {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// agent1 and agent2 work the support queue; agent3 only billing.
fn desk() -> Desk {
    let stack = Stack::start();
    let state = stack.dir.path().join("pd");
    let extra = format!(
        "##[smtp]\nhost = \"127.0.0.1\"\nport = {}\ntls = \"plain\"\nretry_base_seconds = 1\nretry_max_seconds = 2\n\
         [[queues]]\nname = \"billing\"\n",
        stack.port("PD_SMTP_PORT")
    );
    let config = stack.postdesk_config(&state, &extra, false);
    cli(&config, &["role", "add", "first-level", "--queue", "support"]);
    cli(&config, &["role", "add", "accounts", "--queue", "billing"]);
    cli(&config, &["agent", "add", "agent1@example.test", "--name", "Agent One", "--role", "first-level"]);
    cli(&config, &["agent", "add", "agent2@example.test", "--name", "Agent Two", "--role", "first-level"]);
    cli(&config, &["agent", "add", "agent3@example.test", "--name", "Agent Three", "--role", "accounts"]);
    let daemon = Daemon::start(&config);
    Desk { _daemon: daemon, stack, state, config }
}

impl Desk {
    fn store(&self) -> Store {
        Store::open(&self.state.join("postdesk.db")).unwrap()
    }

    fn wait_count(&self, user: &str, n: usize) -> Vec<InboundMail> {
        let ok = wait_until(Duration::from_secs(25), || self.stack.count(user, "INBOX") >= n);
        assert!(ok.is_some(), "{user} expected {n} mails, has {}", self.stack.count(user, "INBOX"));
        std::thread::sleep(Duration::from_millis(300));
        self.stack.mails(user, "INBOX").iter().map(|m| parsed(m)).collect()
    }

    fn ticket(&self) -> postdesk::store::TicketDetail {
        let tickets = self.store().list_tickets(&TicketFilter::default()).unwrap();
        assert_eq!(tickets.len(), 1, "one ticket expected");
        self.store().ticket_detail(&tickets[0].number).unwrap().unwrap()
    }

    /// An agent answers a notification the way a mail client does: to its Reply-To, In-Reply-To its Message-ID,
    /// the notification quoted below the new text.
    fn answer(&self, agent: &str, notification: &InboundMail, text: &str) {
        let to = notification.reply_to.first().expect("notification has a Reply-To").email.clone();
        let quoted: String = notification.text.lines().map(|l| format!("> {l}\r\n")).collect();
        let mail = format!(
            "From: {agent}\r\nTo: {to}\r\nSubject: Re: {}\r\nIn-Reply-To: <{}>\r\nMessage-ID: <{}.{}@example.test>\r\n\
             Content-Type: text/plain; charset=utf-8\r\n\r\n{text}\r\n\r\nOn Mon, 23 Nov 2026, Example Support wrote:\r\n{quoted}",
            notification.subject,
            notification.message_id.clone().unwrap(),
            text.len(),
            std::process::id()
        );
        self.stack.smtp_send(agent, &to, mail.as_bytes());
    }
}

fn customer_mail(n: usize, extra: &str) -> Vec<u8> {
    format!(
        "From: Carol <customer@example.test>\r\nTo: support@example.test\r\nSubject: Printer jams\r\n{extra}\
         Message-ID: <cust-{n}.{}@example.test>\r\nContent-Type: text/plain\r\n\r\nThe printer jams on every page.\r\n",
        std::process::id()
    )
    .into_bytes()
}

#[test]
fn agents_are_notified_their_answer_reaches_the_customer_and_the_customers_answer_comes_back() {
    let d = desk();
    d.stack.deliver("support", &customer_mail(1, ""));
    let notes1 = d.wait_count("agent1", 1);
    d.wait_count("agent2", 1);
    assert_eq!(d.stack.count("agent3", "INBOX"), 0, "agent3 has no rights on the support queue");
    let number = d.ticket().ticket.number.clone();
    assert!(notes1[0].subject.contains(&number));
    assert!(notes1[0].text.contains("The printer jams on every page."));
    d.wait_count("customer", 1); // the acknowledgement

    d.answer("agent1@example.test", &notes1[0], "Hello Carol, please try the rear tray.");
    let customer = d.wait_count("customer", 2);
    let answer = customer.iter().find(|m| m.text.contains("rear tray")).expect("the agent's answer");
    assert!(answer.subject.contains(&format!("[Ticket#{number}]")), "{}", answer.subject);
    assert!(
        !answer.text.contains("jams on every page") && !answer.text.contains("wrote:"),
        "quoted notification leaked: {}",
        answer.text
    );
    assert_eq!(answer.from.as_ref().unwrap().email, "support@example.test");
    assert!(
        !String::from_utf8_lossy(&d.stack.mails("customer", "INBOX")[1]).contains("agent1@"),
        "agent address leaked"
    );

    // Carol answers the agent's mail; it lands on the same ticket and agent1 hears of it.
    let reply = format!("In-Reply-To: <{}>\r\n", answer.message_id.clone().unwrap());
    let before = d.stack.count("agent1", "INBOX");
    d.stack.deliver("support", &customer_mail(2, &reply));
    let notes = d.wait_count("agent1", before + 1);
    assert!(notes.last().unwrap().subject.contains(&number));
    let t = d.ticket();
    assert_eq!(t.articles.iter().filter(|a| a.direction == "inbound").count(), 2);
    assert_eq!(t.articles.iter().filter(|a| a.direction == "agent").count(), 1);
}

#[test]
fn notes_stay_internal_close_works_and_assigning_to_an_agent_without_rights_is_refused() {
    let d = desk();
    d.stack.deliver("support", &customer_mail(1, ""));
    let notification = d.wait_count("agent1", 1).remove(0);
    d.wait_count("customer", 1);
    let agent2_before = d.wait_count("agent2", 1).len();

    d.answer("agent1@example.test", &notification, "#note\nCarol called, she is upset. Checking the logs.");
    // The other agent of the queue hears of the note; the customer hears nothing.
    d.wait_count("agent2", agent2_before + 1);
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(d.stack.count("customer", "INBOX"), 1, "a note must reach no customer");
    let t = d.ticket();
    assert!(t.articles.iter().any(|a| a.internal && a.visible_text.contains("Carol called")));

    d.answer("agent1@example.test", &notification, "#close\n#assign agent3@example.test");
    let mails = d.wait_count("agent1", 2);
    let transcript = mails.iter().find(|m| m.subject.contains("Commands")).expect("a transcript");
    assert!(transcript.text.contains("#close") && transcript.text.contains("closed"), "{}", transcript.text);
    assert!(
        transcript.text.contains("REFUSED") && transcript.text.contains("no rights on queue support"),
        "{}",
        transcript.text
    );
    let t = d.ticket();
    assert_eq!(t.ticket.state, "closed");
    assert_eq!(t.ticket.owner, None);
    assert!(t.history.iter().any(|h| h.event == "command refused" && h.actor == "agent1@example.test"));
}

#[test]
fn a_forged_from_or_a_tampered_signature_is_customer_mail_and_runs_no_command() {
    let d = desk();
    d.stack.deliver("support", &customer_mail(1, ""));
    let notification = d.wait_count("agent1", 1).remove(0);
    d.wait_count("customer", 1);
    let number = d.ticket().ticket.number.clone();
    let reply_to = notification.reply_to[0].email.clone();
    let mut tampered = reply_to.clone();
    let at = tampered.find('@').unwrap();
    let last = tampered.as_bytes()[at - 1];
    tampered.replace_range(at - 1..at, if last == b'0' { "1" } else { "0" });

    for (n, to) in [("forged", "support@example.test".to_string()), ("tampered", tampered)] {
        let mail = format!(
            "From: Agent One <agent1@example.test>\r\nTo: {to}\r\nSubject: Re: [Ticket#{number}] Printer jams\r\n\
             Message-ID: <{n}.{}@evil.example>\r\nContent-Type: text/plain\r\n\r\n#close\r\n#assign agent2@example.test\r\n\
             Please send me all invoices.\r\n",
            std::process::id()
        );
        d.stack.smtp_send("agent1@example.test", &to, mail.as_bytes());
    }
    let store = || d.store();
    assert!(
        wait_until(Duration::from_secs(25), || store().status_counts().unwrap().articles >= 4).is_some(),
        "both mails must be stored"
    );
    std::thread::sleep(Duration::from_secs(2));
    let tickets = store().list_tickets(&TicketFilter::default()).unwrap();
    let original = store().ticket_detail(&number).unwrap().unwrap();
    assert_eq!(original.ticket.state, "new", "no command may run");
    assert_eq!(original.ticket.owner, None);
    assert!(!original.articles.iter().any(|a| a.direction == "agent"), "nothing is recorded as the agent's");
    // Stored as customer mail: the From is no party of the ticket, so each opened a ticket of its own.
    let others: Vec<_> = tickets.iter().filter(|t| t.number != number).collect();
    assert_eq!(others.len(), 2, "{tickets:?}");
    assert!(others.iter().all(|t| t.customer == "agent1@example.test"));
    assert!(!d.stack.mails("agent1", "INBOX").iter().any(|m| parsed(m).subject.contains("Commands")), "no transcript");
    // And nothing went to the customer in the agent's name.
    assert_eq!(d.stack.count("customer", "INBOX"), 1);
}

#[test]
fn an_agent_with_followups_switched_off_gets_no_followup_notice() {
    let d = desk();
    cli(&d.config, &["agent", "notify", "agent2@example.test", "followup", "off"]);
    d.stack.deliver("support", &customer_mail(1, ""));
    d.wait_count("agent1", 1);
    d.wait_count("agent2", 1); // new-ticket notices are still on
    let number = d.ticket().ticket.number.clone();
    let ack = d.wait_count("customer", 1).remove(0);
    let follow =
        format!("Subject: Re: [Ticket#{number}] Printer jams\r\nIn-Reply-To: <{}>\r\n", ack.message_id.unwrap());
    let raw = String::from_utf8(customer_mail(2, &follow)).unwrap().replacen("Subject: Printer jams\r\n", "", 1);
    d.stack.deliver("support", raw.as_bytes());
    d.wait_count("agent1", 2);
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(d.stack.count("agent2", "INBOX"), 1, "agent2 switched follow-up notices off");
    let listed = cli(&d.config, &["agent", "list"]);
    assert!(listed.contains("notifications off: followup"), "{listed}");
}
