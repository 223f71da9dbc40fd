//! Hostile senders and hostile surroundings (issue 10), through the real binary without a network: ticket hijack
//! through Cc and Reply-To, joining by reference, backscatter, files readable by other local users.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).permissions().mode() & 0o777
}

/// Runs the daemon from a shell with umask 022, as cron or a login shell would, against an IMAP port where nothing
/// listens: it opens the database and records its state while it retries.
#[test]
fn readable_mail_outside_systemd_umask_022_creates_nothing_group_or_world_readable() {
    let env = Env::with_extra("");
    let state = env.dir.path().join("state");
    let password = env.dir.path().join("imap-password");
    std::fs::write(&password, "pw").unwrap();
    std::fs::set_permissions(&password, std::fs::Permissions::from_mode(0o600)).unwrap();
    let config = std::fs::read_to_string(&env.config).unwrap()
        + &format!(
            "[imap]\nhost = \"127.0.0.1\"\nport = 9\ntls = \"plain\"\nusername = \"u\"\npassword_file = \"{}\"\n\
             reconnect_max_seconds = 1\n",
            password.display()
        );
    std::fs::write(&env.config, config).unwrap();
    let script =
        format!("umask 022; exec '{}' --config '{}' run", env!("CARGO_BIN_EXE_postdesk"), env.config.display());
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(&script)
        .env("POSTDESK_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let db = state.join("postdesk.db");
    let wal = state.join("postdesk.db-wal");
    let started = Instant::now();
    while !(db.exists() && wal.exists()) && started.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(100));
    }
    let seen: Vec<(String, u32)> = std::fs::read_dir(&state)
        .unwrap()
        .map(|e| e.unwrap().path())
        .map(|p| (p.file_name().unwrap().to_string_lossy().into_owned(), mode(&p)))
        .collect();
    let dir_mode = mode(&state);
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    assert!(wal.exists() || seen.iter().any(|(n, _)| n.ends_with("-wal")), "no WAL appeared: {seen:?} {out:?}");
    assert!(seen.iter().any(|(n, _)| n == "postdesk.db"), "{seen:?}");
    assert_eq!(dir_mode & 0o077, 0, "state directory is {dir_mode:o}");
    for (name, m) in &seen {
        assert_eq!(m & 0o077, 0, "{name} is {m:o}: readable by other local users");
    }
    // A one-shot command from the same shell creates its files privately too.
    let fresh = Env::with_extra("");
    let script = format!(
        "umask 022; '{}' --config '{}' ingest < '{}'",
        env!("CARGO_BIN_EXE_postdesk"),
        fresh.config.display(),
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/new-ticket.eml").display()
    );
    let out = Command::new("sh").arg("-c").arg(&script).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let state = fresh.dir.path().join("state");
    assert_eq!(mode(&state) & 0o077, 0);
    assert_eq!(mode(&state.join("postdesk.db")) & 0o077, 0);
}
