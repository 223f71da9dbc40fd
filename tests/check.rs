//! `postdesk check` as an admin (and systemd's ExecStartPre) runs it: every mistake in one run, and the things the
//! config cannot say: whether this user can use the state directory and the database, whether the database is sound,
//! whether the secrets are private.

mod common;

use std::os::unix::fs::PermissionsExt;

use common::*;

fn lines(s: &str) -> Vec<&str> {
    s.lines().filter(|l| !l.trim().is_empty()).collect()
}

#[test]
fn a_config_with_three_mistakes_lists_all_three() {
    let env = Env::with_extra("site_nme = \"typo\"\n[tickets]\nsystem_id = 300\n[limits]\nmax_mime_parts = \"many\"\n");
    let out = env.run(&["check"]);
    assert_eq!(out.status.code(), Some(78), "{}", stderr(&out));
    let err = stderr(&out);
    let all = lines(&err);
    assert_eq!(all.len(), 3, "{err}");
    assert!(all[0].contains(":2:") && all[0].contains("site_nme"), "{err}");
    assert!(all[1].contains(":4:") && all[1].contains("300"), "{err}");
    assert!(all[2].contains(":6:") && all[2].contains("many"), "{err}");
}

#[test]
fn a_sound_setup_passes_and_the_database_gets_a_quick_check() {
    let env = Env::new();
    let out = env.run(&["check"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("created on first start"), "{}", stdout(&out));
    assert!(env.ingest_bytes(&fixture("new-ticket.eml")).status.success());
    let out = env.run(&["check"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("quick_check ok"), "{}", stdout(&out));
}

#[test]
fn a_damaged_database_and_a_readable_password_file_are_both_reported() {
    let env = Env::new();
    let state = env.dir.path().join("state");
    std::fs::create_dir_all(&state).unwrap();
    std::fs::write(state.join("postdesk.db"), vec![0x5a; 8192]).unwrap();
    let pw = env.dir.path().join("imap-password");
    std::fs::write(&pw, "secret\n").unwrap();
    std::fs::set_permissions(&pw, std::fs::Permissions::from_mode(0o644)).unwrap();
    let text = std::fs::read_to_string(&env.config).unwrap();
    std::fs::write(
        &env.config,
        format!(
            "{text}[imap]\nhost = \"127.0.0.1\"\ntls = \"plain\"\nusername = \"u\"\npassword_file = \"{}\"\n",
            pw.display()
        ),
    )
    .unwrap();
    let out = env.run(&["check"]);
    assert_eq!(out.status.code(), Some(78), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("postdesk.db") && err.contains("not a database"), "{err}");
    assert!(err.contains("imap-password") && err.contains("chmod 600"), "{err}");
}

#[test]
fn root_does_not_create_files_in_the_service_users_state_directory() {
    // Regression: a root `postdesk status` created the database root:root 0644, which the daemon could not write.
    let env = Env::new();
    let state = env.dir.path().join("state");
    std::fs::create_dir_all(&state).unwrap();
    assert!(std::process::Command::new("chown").arg("nobody").arg(&state).status().unwrap().success());
    for args in [&["status"][..], &["ticket", "list"]] {
        let out = env.run(args);
        assert_eq!(out.status.code(), Some(77), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains("runuser -u postdesk"), "{}", stderr(&out));
    }
    assert_eq!(std::fs::read_dir(&state).unwrap().count(), 0, "files were created");
}

#[test]
fn a_state_directory_the_service_user_cannot_write_fails_the_check() {
    // As CI runs the tests (root), check as another user, the way ExecStartPre runs it as the service user.
    let env = Env::new();
    std::fs::set_permissions(env.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let state = env.dir.path().join("state");
    std::fs::create_dir_all(&state).unwrap();
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = std::process::Command::new("runuser")
        .args(["-u", "nobody", "--"])
        .arg(env!("CARGO_BIN_EXE_postdesk"))
        .arg("--config")
        .arg(&env.config)
        .arg("check")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(78), "{}", stderr(&out));
    assert!(stderr(&out).contains("not writable by uid"), "{}", stderr(&out));
}
