//! The systemd notify protocol as the daemon speaks it, read from a NOTIFY_SOCKET the test creates (what systemd
//! does for `Type=notify`): READY=1, STATUS= lines, WATCHDOG=1 at half of WATCHDOG_USEC, RELOADING=1 with
//! MONOTONIC_USEC around a reload, a refused reload visible in STATUS= and `postdesk status`, and pings that stop
//! when the store is wedged. The daemon runs without [imap] (sending only) against a relay port nobody listens on.

mod common;

use std::os::unix::net::UnixDatagram;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::*;

/// Datagrams the daemon sent, with when they arrived.
struct Socket {
    rx: mpsc::Receiver<(Instant, String)>,
    seen: Vec<(Instant, String)>,
}

impl Socket {
    fn bind(path: &std::path::Path) -> Socket {
        let socket = UnixDatagram::bind(path).unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 4096];
            while let Ok(n) = socket.recv(&mut buf) {
                // sd-notify ends each assignment with a newline; compare without it.
                let text = String::from_utf8_lossy(&buf[..n]).trim_end().to_string();
                if tx.send((Instant::now(), text)).is_err() {
                    break;
                }
            }
        });
        Socket { rx, seen: Vec::new() }
    }

    /// Waits until some datagram received from now on satisfies `check`; returns it.
    fn expect(&mut self, limit: Duration, what: &str, check: impl Fn(&str) -> bool) -> (Instant, String) {
        let end = Instant::now() + limit;
        while let Ok(msg) = self.rx.recv_timeout(end.saturating_duration_since(Instant::now())) {
            self.seen.push(msg.clone());
            if check(&msg.1) {
                return msg;
            }
        }
        panic!("no {what} within {limit:?}; got {:#?}", self.seen.iter().map(|m| &m.1).collect::<Vec<_>>());
    }

    /// Everything that arrives within `span`.
    fn collect(&mut self, span: Duration) -> Vec<(Instant, String)> {
        let end = Instant::now() + span;
        let mut got = Vec::new();
        while let Ok(msg) = self.rx.recv_timeout(end.saturating_duration_since(Instant::now())) {
            got.push(msg);
        }
        got
    }
}

struct Run {
    env: Env,
    child: Child,
    socket: Socket,
}

impl Drop for Run {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(failpoint: Option<&str>) -> Run {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let env = Env::with_extra(&format!(
        "[smtp]\nhost = \"127.0.0.1\"\nport = {port}\ntls = \"plain\"\nrelay_probe_max_seconds = 1\n"
    ));
    let socket_path = env.dir.path().join("notify.sock");
    let socket = Socket::bind(&socket_path);
    let mut cmd = env.cmd(&["run"]);
    cmd.env("NOTIFY_SOCKET", &socket_path)
        .env("WATCHDOG_USEC", "1000000")
        .env_remove("WATCHDOG_PID")
        .env("POSTDESK_LOG", "info")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(env.dir.path().join("run.log")).unwrap());
    if let Some(f) = failpoint {
        cmd.env("POSTDESK_FAILPOINT", f);
    }
    let child = cmd.spawn().unwrap();
    Run { env, child, socket }
}

fn signal(child: &Child, sig: &str) {
    Command::new("kill").arg(format!("-{sig}")).arg(child.id().to_string()).status().unwrap();
}

#[test]
fn ready_status_watchdog_and_a_refused_reload_are_told_to_systemd_and_to_status() {
    let mut run = start(None);
    let s = &mut run.socket;
    s.expect(Duration::from_secs(20), "READY=1", |m| m.lines().any(|l| l == "READY=1"));
    let relay_down = |m: &str| m.starts_with("STATUS=relay down since ") && m.ends_with(", 0 queued");
    // The outbox can find the relay down before the daemon is ready: the STATUS may come before READY=1 or after.
    if !s.seen.iter().any(|(_, m)| relay_down(m)) {
        s.expect(Duration::from_secs(10), "relay-down STATUS", relay_down);
    }
    let pings = s.collect(Duration::from_secs(3)).into_iter().filter(|(_, m)| m == "WATCHDOG=1").count();
    // Half of WATCHDOG_USEC = 0.5 s: about six in three seconds.
    assert!((3..=8).contains(&pings), "{pings} pings in 3 s at a 1 s watchdog");

    // A broken rule file: the reload is refused, the running setup stays, and both systemd and `status` say so.
    let bad = run.env.dir.path().join("rules/10-broken.toml");
    std::fs::write(&bad, "[[rule]]\nname = \"broken\"\nno_such_key = 1\n").unwrap();
    signal(&run.child, "HUP");
    let (_, reloading) = run.socket.expect(Duration::from_secs(10), "RELOADING=1", |m| m.contains("RELOADING=1"));
    let usec: u64 = reloading
        .lines()
        .find_map(|l| l.strip_prefix("MONOTONIC_USEC="))
        .unwrap_or_else(|| panic!("RELOADING=1 without MONOTONIC_USEC: {reloading:?}"))
        .parse()
        .unwrap();
    assert!(usec > 0);
    run.socket.expect(Duration::from_secs(5), "refusal STATUS", |m| m.starts_with("STATUS=reload refused"));
    run.socket.expect(Duration::from_secs(5), "READY=1 after the reload", |m| m == "READY=1");
    run.socket.expect(Duration::from_secs(5), "lasting refusal STATUS", |m| m.contains("last reload refused at"));
    let status = stdout(&run.env.run(&["status"]));
    assert!(status.contains("reload:      REFUSED") && status.contains("10-broken.toml"), "{status}");
    assert!(status.contains("relay:       DOWN since"), "{status}");
    let json: serde_json::Value = serde_json::from_slice(&run.env.run(&["status", "--json"]).stdout).unwrap();
    assert_eq!(json["health"]["relay"]["state"], "down", "{json:#}");
    assert!(json["health"]["reload"]["last_refused_error"].as_str().unwrap().contains("10-broken.toml"), "{json:#}");
    assert!(json["health"]["relay"]["last_error"].as_str().is_some(), "{json:#}");

    // Fixed: the next reload is taken and the refusal leaves the STATUS line.
    std::fs::remove_file(&bad).unwrap();
    signal(&run.child, "HUP");
    run.socket.expect(Duration::from_secs(10), "RELOADING=1", |m| m.contains("RELOADING=1"));
    run.socket.expect(Duration::from_secs(5), "READY=1", |m| m == "READY=1");
    run.socket.expect(Duration::from_secs(5), "STATUS without the refusal", |m| {
        m.starts_with("STATUS=") && !m.contains("refused")
    });
    let status = stdout(&run.env.run(&["status"]));
    assert!(!status.contains("REFUSED") && status.contains("reload:      last reload"), "{status}");

    signal(&run.child, "TERM");
    run.socket.expect(Duration::from_secs(10), "STOPPING=1", |m| m == "STOPPING=1");
}

#[test]
fn watchdog_pings_stop_when_the_store_is_wedged() {
    // The failpoint takes the store's mutex three seconds after start and never gives it back.
    let mut run = start(Some("wedge-store"));
    let (ready, _) = run.socket.expect(Duration::from_secs(20), "READY=1", |m| m.lines().any(|l| l == "READY=1"));
    let pings: Vec<Duration> = run
        .socket
        .collect(Duration::from_secs(9))
        .into_iter()
        .filter(|(_, m)| m == "WATCHDOG=1")
        .map(|(at, _)| at - ready)
        .collect();
    assert!(pings.iter().filter(|t| **t < Duration::from_millis(2500)).count() >= 3, "pings before: {pings:?}");
    assert!(
        pings.iter().all(|t| *t < Duration::from_secs(6)),
        "pings went on with the store wedged (systemd would not restart us): {pings:?}"
    );
}
