//! The real mail stack (Dovecot + Postfix on loopback) for integration tests, started by `scripts/mailstack.sh`,
//! and a `postdesk run` child process against it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Stack {
    pub dir: tempfile::TempDir,
    pub env: HashMap<String, String>,
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/mailstack.sh")
}

impl Stack {
    pub fn start() -> Stack {
        Self::start_with(&[])
    }

    /// A stack started with these variables in mailstack.sh's environment (e.g. PD_PIPE_ARGV).
    pub fn start_with(vars: &[(&str, &str)]) -> Stack {
        let dir = tempfile::Builder::new().prefix("pd-stack-").tempdir().unwrap();
        let out = Command::new("bash")
            .arg(script())
            .arg("start")
            .arg(dir.path())
            .envs(vars.iter().copied())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "mailstack start failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let text = std::fs::read_to_string(dir.path().join("env")).unwrap();
        let env = text
            .lines()
            .filter_map(|l| l.strip_prefix("export "))
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.trim_matches('"').to_string()))
            .collect();
        Stack { dir, env }
    }

    pub fn var(&self, key: &str) -> &str {
        self.env.get(key).unwrap_or_else(|| panic!("{key} missing from the stack's env file"))
    }

    pub fn port(&self, key: &str) -> u16 {
        self.var(key).parse().unwrap()
    }

    pub fn ctl(&self, args: &[&str]) -> String {
        let out =
            Command::new("bash").arg(script()).arg(args[0]).arg(self.dir.path()).args(&args[1..]).output().unwrap();
        assert!(out.status.success(), "mailstack {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn deliver(&self, user: &str, raw: &[u8]) {
        let f = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(f.path(), raw).unwrap();
        self.ctl(&["deliver", &format!("{user}@example.test"), f.path().to_str().unwrap()]);
    }

    pub fn count(&self, user: &str, mailbox: &str) -> usize {
        self.ctl(&["count", &format!("{user}@example.test"), mailbox]).trim().parse().unwrap_or(0)
    }

    /// Raw bytes of every mail in a mailbox.
    pub fn mails(&self, user: &str, mailbox: &str) -> Vec<Vec<u8>> {
        self.ctl(&["fetch", &format!("{user}@example.test"), mailbox])
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|p| std::fs::read(p.trim()).unwrap())
            .collect()
    }

    /// A postdesk config for the support mailbox over plaintext IMAP on loopback (or implicit TLS with `tls`).
    pub fn postdesk_config(&self, state: &Path, extra: &str, tls: bool) -> PathBuf {
        let pw = state.join("imap-password");
        std::fs::create_dir_all(state).unwrap();
        std::fs::write(&pw, self.var("PD_PASSWORD")).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&pw, std::fs::Permissions::from_mode(0o600)).unwrap();
        let (host, port, mode) = if tls {
            (
                "localhost",
                self.port("PD_IMAPS_PORT"),
                format!("tls = \"tls\"\nca_file = \"{}\"", self.var("PD_CA_FILE")),
            )
        } else {
            ("127.0.0.1", self.port("PD_IMAP_PORT"), "tls = \"plain\"".to_string())
        };
        let config = state.join("postdesk.toml");
        let (top, tables) = extra.split_once("##").unwrap_or(("", extra));
        std::fs::write(
            &config,
            format!(
                "address = \"support@example.test\"\n{top}\n[storage]\nstate_dir = \"{}\"\n[rules]\ndir = \"{}\"\n\
                 [templates]\ndir = \"{}\"\n[imap]\nhost = \"{host}\"\nport = {port}\n{mode}\nusername = \"support@example.test\"\n\
                 password_file = \"{}\"\nreconnect_max_seconds = 2\npoll_seconds = 2\n{tables}\n",
                state.display(),
                state.join("rules").display(),
                Path::new(env!("CARGO_MANIFEST_DIR")).join("templates").display(),
                pw.display()
            ),
        )
        .unwrap();
        std::fs::create_dir_all(state.join("rules")).unwrap();
        config
    }
}

/// The last `lines` lines of a log file, for a failing test's output.
pub fn log_tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

impl Drop for Stack {
    fn drop(&mut self) {
        if std::thread::panicking() {
            // A failing test's output says where the mail stopped: Postfix's queue and log, Dovecot's log.
            let queue = Command::new("postqueue").arg("-c").arg(self.var("PD_POSTFIX_CONFIG_DIR")).arg("-p").output();
            let queue = queue.map(|o| String::from_utf8_lossy(&o.stdout).into_owned()).unwrap_or_default();
            eprintln!("--- postfix queue ---\n{queue}");
            eprintln!("--- postfix.log ---\n{}", log_tail(&self.dir.path().join("postfix.log"), 60));
            eprintln!("--- dovecot.log ---\n{}", log_tail(&self.dir.path().join("dovecot.log"), 40));
        }
        let _ = Command::new("bash").arg(script()).arg("stop").arg(self.dir.path()).output();
    }
}

/// A `postdesk run` child; killed on drop.
pub struct Daemon {
    pub child: Child,
    pub log: PathBuf,
}

impl Daemon {
    pub fn start(config: &Path) -> Daemon {
        let log = config.with_extension(format!("log.{}", std::process::id()));
        let file = std::fs::OpenOptions::new().create(true).append(true).open(&log).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_postdesk"))
            .arg("--config")
            .arg(config)
            .arg("run")
            .env("POSTDESK_LOG", "info")
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .unwrap();
        Daemon { child, log }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn signal(&self, sig: &str) {
        Command::new("kill").arg(format!("-{sig}")).arg(self.child.id().to_string()).status().unwrap();
    }

    /// Waits for exit, up to `limit`.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let start = Instant::now();
        while start.elapsed() < limit {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("--- postdesk run log ---\n{}", log_tail(&self.log, 80));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `check` until it returns true or `limit` passes; returns the time it took.
pub fn wait_until(limit: Duration, mut check: impl FnMut() -> bool) -> Option<Duration> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if check() {
            return Some(start.elapsed());
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    None
}

/// A simple, unique customer mail.
pub fn customer_mail(n: usize, subject: &str) -> Vec<u8> {
    format!(
        "From: Customer {n} <customer{n}@customer.example>\r\nTo: support@example.test\r\nSubject: {subject}\r\n\
         Message-ID: <m{n}.{}@customer.example>\r\nDate: Mon, 23 Nov 2026 10:00:00 +0000\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\r\nHello, this is mail number {n}.\r\n",
        std::process::id()
    )
    .into_bytes()
}

impl Stack {
    /// Sends a mail through the stack's Postfix with a minimal SMTP dialogue (the client side of a test, talking to
    /// the real server).
    pub fn smtp_send(&self, from: &str, to: &str, raw: &[u8]) {
        use std::io::{BufRead, BufReader, Write};
        let stream = std::net::TcpStream::connect(("127.0.0.1", self.port("PD_SMTP_PORT"))).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut writer = stream;
        let mut expect = |code: &str| loop {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            assert!(line.starts_with(code), "SMTP: expected {code}, got {line:?}");
            if line.as_bytes().get(3) != Some(&b'-') {
                break;
            }
        };
        expect("220");
        for (cmd, code) in [
            ("EHLO test.example".to_string(), "250"),
            (format!("MAIL FROM:<{from}>"), "250"),
            (format!("RCPT TO:<{to}>"), "250"),
            ("DATA".to_string(), "354"),
        ] {
            writer.write_all(format!("{cmd}\r\n").as_bytes()).unwrap();
            expect(code);
        }
        let text = String::from_utf8_lossy(raw).replace("\r\n", "\n");
        for line in text.lines() {
            let line = if line.starts_with('.') { format!(".{line}") } else { line.to_string() };
            writer.write_all(format!("{line}\r\n").as_bytes()).unwrap();
        }
        writer.write_all(b".\r\n").unwrap();
        expect("250");
        writer.write_all(b"QUIT\r\n").unwrap();
    }

    /// Asks Postfix to retry its deferred queue now.
    pub fn flush_postfix(&self) {
        let _ = Command::new("postqueue").arg("-c").arg(self.var("PD_POSTFIX_CONFIG_DIR")).arg("-f").output();
    }
}
