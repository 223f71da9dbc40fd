//! The MTA path on the test stack's real Postfix: SMTP in -> pipe(8) transport -> `postdesk ingest` -> ticket, as
//! packaging/postfix/ sets it up. When the config cannot be read the mail is deferred (4.x.x) and kept, never
//! bounced; once fixed, the next queue run delivers it.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::stack::{Stack, customer_mail, wait_until};

/// The user the stack's Postfix runs the pipe as (never root, as on a real server).
const PIPE_USER: &str = "pdvmail";

struct Helpdesk {
    dir: tempfile::TempDir,
    config: PathBuf,
}

/// A state directory owned by the pipe's user and a config it can read, in a directory it can traverse.
fn helpdesk() -> Helpdesk {
    let dir = tempfile::Builder::new().prefix("pd-pipe-").tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let state = dir.path().join("state");
    std::fs::create_dir_all(state.join("rules")).unwrap();
    let config = dir.path().join("postdesk.toml");
    std::fs::write(
        &config,
        format!(
            "address = \"helpdesk@example.test\"\n[storage]\nstate_dir = \"{}\"\n[rules]\ndir = \"{}\"\n\
             [templates]\ndir = \"{}\"\n",
            state.display(),
            state.join("rules").display(),
            Path::new(env!("CARGO_MANIFEST_DIR")).join("templates").display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o644)).unwrap();
    let chown = Command::new("chown").args(["-R", &format!("{PIPE_USER}:{PIPE_USER}")]).arg(&state).status().unwrap();
    assert!(chown.success());
    Helpdesk { dir, config }
}

impl Helpdesk {
    /// Subjects of the tickets, read as the pipe's user (a root process would leave root-owned -wal/-shm files).
    fn subjects(&self) -> Vec<String> {
        let out = Command::new("runuser")
            .args(["-u", PIPE_USER, "--", env!("CARGO_BIN_EXE_postdesk"), "--config"])
            .arg(&self.config)
            .args(["ticket", "list", "--json"])
            .output()
            .unwrap();
        if !out.status.success() {
            return Vec::new();
        }
        let list: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
        list.iter().map(|t| t["subject"].as_str().unwrap_or_default().to_string()).collect()
    }
}

fn postfix_log(stack: &Stack) -> String {
    std::fs::read_to_string(stack.var("PD_POSTFIX_LOG")).unwrap_or_default()
}

/// Postfix's log lines about deliveries through the postdesk transport.
fn pipe_lines(stack: &Stack) -> Vec<String> {
    postfix_log(stack).lines().filter(|l| l.contains("relay=postdesk")).map(str::to_string).collect()
}

#[test]
fn postfix_pipe_delivers_into_a_ticket_and_defers_never_bounces_while_the_config_is_unreadable() {
    let desk = helpdesk();
    let argv = format!("{} --config {} ingest", env!("CARGO_BIN_EXE_postdesk"), desk.config.display());
    let stack = Stack::start_with(&[("PD_PIPE_ARGV", &argv)]);
    let to = stack.var("PD_PIPE_ADDRESS").to_string();

    // SMTP in -> pipe -> ticket.
    stack.smtp_send("customer1@customer.example", &to, &customer_mail(1, "Printer on fire"));
    let took = wait_until(Duration::from_secs(60), || desk.subjects().contains(&"Printer on fire".to_string()));
    assert!(took.is_some(), "no ticket from the pipe; postfix says:\n{}", pipe_lines(&stack).join("\n"));
    // Postfix logs the delivery once the command has exited, which may be after the ticket is visible.
    let sent = wait_until(Duration::from_secs(30), || pipe_lines(&stack).iter().any(|l| l.contains("status=sent")));
    assert!(sent.is_some(), "{:?}", pipe_lines(&stack));

    // Plus-addresses (agents' reply addresses) reach the same transport through recipient_delimiter.
    let plus = to.replacen('@', "+T2026112310000012-abc@", 1);
    stack.smtp_send("customer2@customer.example", &plus, &customer_mail(2, "Through the delimiter"));
    let took = wait_until(Duration::from_secs(60), || desk.subjects().contains(&"Through the delimiter".to_string()));
    assert!(took.is_some(), "plus-address not piped:\n{}", pipe_lines(&stack).join("\n"));

    // The config made unreadable for the pipe's user: Postfix must defer (4.x.x) and keep the mail.
    std::fs::set_permissions(&desk.config, std::fs::Permissions::from_mode(0o600)).unwrap();
    stack.smtp_send("customer3@customer.example", &to, &customer_mail(3, "Sent while broken"));
    let deferred = wait_until(Duration::from_secs(60), || {
        pipe_lines(&stack).iter().any(|l| l.contains("status=deferred") && l.contains("postdesk.toml"))
    });
    assert!(deferred.is_some(), "not deferred:\n{}", pipe_lines(&stack).join("\n"));
    // Let Postfix retry a few times (its backoff in the stack is 3 to 6 s): still deferred, never bounced.
    std::thread::sleep(Duration::from_secs(8));
    stack.flush_postfix();
    std::thread::sleep(Duration::from_secs(2));
    let lines = pipe_lines(&stack);
    let deferrals: Vec<&String> = lines.iter().filter(|l| l.contains("status=deferred")).collect();
    assert!(deferrals.iter().all(|l| l.contains("dsn=4.")), "{deferrals:#?}");
    assert!(!postfix_log(&stack).contains("status=bounced"), "a bounce:\n{}", lines.join("\n"));
    assert!(!postfix_log(&stack).contains("sender non-delivery notification"), "a bounce was sent");
    let queue = Command::new("postqueue").arg("-c").arg(stack.var("PD_POSTFIX_CONFIG_DIR")).arg("-p").output().unwrap();
    assert!(String::from_utf8_lossy(&queue.stdout).contains(&to), "mail not kept in the queue");

    // Fixed: the next queue run delivers it.
    std::fs::set_permissions(&desk.config, std::fs::Permissions::from_mode(0o644)).unwrap();
    stack.flush_postfix();
    let took = wait_until(Duration::from_secs(60), || desk.subjects().contains(&"Sent while broken".to_string()));
    assert!(took.is_some(), "not delivered after the fix:\n{}", pipe_lines(&stack).join("\n"));
    assert_eq!(desk.subjects().len(), 3);
}

/// With the daemon running (as the pipe's user, as the package runs both), Postfix's pipe hands the mail to it
/// over the state directory's socket: the daemon commits and answers, and `ingest` exits with its answer. Once the
/// daemon has stopped, the socket is gone and `ingest` takes the next mail in by itself.
#[test]
fn postfix_pipe_hands_mail_to_the_running_daemon_and_works_alone_once_it_stops() {
    use std::os::unix::process::CommandExt;
    let desk = helpdesk();
    let argv = format!("{} --config {} ingest", env!("CARGO_BIN_EXE_postdesk"), desk.config.display());
    let stack = Stack::start_with(&[("PD_PIPE_ARGV", &argv)]);
    let to = stack.var("PD_PIPE_ADDRESS").to_string();
    let mut config = std::fs::read_to_string(&desk.config).unwrap();
    config.push_str(&format!("[smtp]\nhost = \"127.0.0.1\"\nport = {}\ntls = \"plain\"\n", stack.port("PD_SMTP_PORT")));
    std::fs::write(&desk.config, config).unwrap();
    let id = |flag: &str| -> u32 {
        let out = Command::new("id").arg(flag).arg(PIPE_USER).output().unwrap();
        String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
    };
    let log = desk.dir.path().join("daemon.log");
    let mut daemon = Command::new(env!("CARGO_BIN_EXE_postdesk"))
        .arg("--config")
        .arg(&desk.config)
        .arg("run")
        .env("POSTDESK_LOG", "info")
        .stderr(std::fs::File::create(&log).unwrap())
        .uid(id("-u"))
        .gid(id("-g"))
        .spawn()
        .unwrap();
    let socket = desk.config.parent().unwrap().join("state/ingest.sock");
    let daemon_log = || std::fs::read_to_string(&log).unwrap_or_default();
    let listening = wait_until(Duration::from_secs(30), || socket.exists());
    assert!(listening.is_some(), "the daemon made no socket:\n{}", daemon_log());

    stack.smtp_send("customer1@customer.example", &to, &customer_mail(1, "Handed over"));
    let took = wait_until(Duration::from_secs(60), || desk.subjects().contains(&"Handed over".to_string()));
    assert!(took.is_some(), "no ticket; postfix says:\n{}\ndaemon:\n{}", pipe_lines(&stack).join("\n"), daemon_log());
    let sent = wait_until(Duration::from_secs(30), || pipe_lines(&stack).iter().any(|l| l.contains("status=sent")));
    assert!(sent.is_some(), "{:?}", pipe_lines(&stack));
    assert_eq!(daemon_log().matches("mail handed over").count(), 1, "{}", daemon_log());
    assert!(daemon_log().contains("outcome=new ticket"), "{}", daemon_log());

    Command::new("kill").arg("-TERM").arg(daemon.id().to_string()).status().unwrap();
    let stopped = wait_until(Duration::from_secs(30), || daemon.try_wait().unwrap().is_some());
    assert!(stopped.is_some(), "the daemon did not stop:\n{}", daemon_log());
    assert!(!socket.exists(), "the stopped daemon left its socket");

    stack.smtp_send("customer2@customer.example", &to, &customer_mail(2, "Taken in alone"));
    let took = wait_until(Duration::from_secs(60), || desk.subjects().contains(&"Taken in alone".to_string()));
    assert!(took.is_some(), "no ticket without the daemon:\n{}", pipe_lines(&stack).join("\n"));
    assert_eq!(daemon_log().matches("mail handed over").count(), 1);
    assert_eq!(desk.subjects().len(), 2);
}
