//! The command line as a user and a script meet it: sysexits codes for usage errors, a description for every
//! subcommand and option, and `postdesk ingest` from an MTA never exiting with a code the MTA would bounce on.

mod common;

use clap::CommandFactory;
use common::*;
use postdesk::cli::Cli;

/// Every subcommand and every option of `cmd` (recursively) that has no one-line description.
fn undescribed(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
    for arg in cmd.get_arguments() {
        let id = arg.get_id().as_str();
        if id == "help" || id == "version" {
            continue;
        }
        if arg.get_help().is_none_or(|h| h.to_string().trim().is_empty()) {
            missing.push(format!("{path} {id}"));
        }
    }
    for sub in cmd.get_subcommands() {
        let sub_path = format!("{path} {}", sub.get_name());
        if sub.get_about().is_none_or(|h| h.to_string().trim().is_empty()) {
            missing.push(sub_path.clone());
        }
        undescribed(sub, &sub_path, missing);
    }
}

#[test]
fn every_subcommand_and_option_has_a_description_in_help() {
    let cmd = Cli::command();
    cmd.clone().debug_assert();
    let mut missing = Vec::new();
    undescribed(&cmd, "postdesk", &mut missing);
    assert!(missing.is_empty(), "no description in --help for:\n{}", missing.join("\n"));
}

/// `postdesk ingest` as an MTA runs it: the mail on stdin. postdesk may fail before reading it all, as it may when
/// the config is broken, so a closed pipe is not an error here.
fn mta_delivers(env: &Env) -> std::process::Output {
    use std::io::Write;
    use std::process::Stdio;
    let mut child =
        env.cmd(&["ingest"]).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let _ = child.stdin.take().unwrap().write_all(&fixture("new-ticket.eml"));
    child.wait_with_output().unwrap()
}

#[test]
fn unknown_subcommand_and_bad_options_exit_64_help_and_version_exit_0() {
    let env = Env::new();
    for args in [&["bogus-subcommand"][..], &["ticket", "show"], &["status", "--no-such-option"], &[]] {
        let out = env.run(args);
        assert_eq!(out.status.code(), Some(64), "{args:?}: {}", stderr(&out));
        assert!(!stderr(&out).is_empty(), "{args:?} says nothing");
    }
    for args in [&["--help"][..], &["--version"], &["ticket", "--help"], &["help", "ingest"]] {
        let out = env.run(args);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", stderr(&out));
        assert!(!stdout(&out).is_empty());
    }
}

#[test]
fn ingest_from_an_mta_defers_when_the_config_is_missing_broken_or_the_state_dir_is_unusable() {
    let env = Env::new();
    // Broken config (a syntax error), then an unreadable path, then a state directory that cannot be created.
    std::fs::write(&env.config, "address = \n").unwrap();
    let out = mta_delivers(&env);
    assert_eq!(out.status.code(), Some(75), "{}", stderr(&out));
    assert!(stderr(&out).contains("postdesk.toml"), "{}", stderr(&out));

    std::fs::remove_file(&env.config).unwrap();
    let out = mta_delivers(&env);
    assert_eq!(out.status.code(), Some(75), "{}", stderr(&out));

    let blocker = env.dir.path().join("not-a-dir");
    std::fs::write(&blocker, "").unwrap();
    std::fs::write(
        &env.config,
        format!(
            "address = \"support@example.test\"\n[storage]\nstate_dir = \"{}/state\"\n[rules]\ndir = \"rules\"\n\
             [templates]\ndir = \"{}\"\n",
            blocker.display(),
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("templates").display()
        ),
    )
    .unwrap();
    let out = mta_delivers(&env);
    assert_eq!(out.status.code(), Some(75), "{}", stderr(&out));
    // The same problems from an admin's `ingest FILE` keep their precise codes.
    let file = env.dir.path().join("mail.eml");
    std::fs::write(&file, fixture("new-ticket.eml")).unwrap();
    let out = env.run(&["ingest", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(78), "{}", stderr(&out));
}

#[test]
fn ingest_from_an_mta_defers_when_the_database_is_corrupt() {
    let env = Env::new();
    let state = env.dir.path().join("state");
    std::fs::create_dir_all(&state).unwrap();
    std::fs::write(state.join("postdesk.db"), vec![0x5a; 8192]).unwrap();
    let out = mta_delivers(&env);
    assert_eq!(out.status.code(), Some(75), "{}", stderr(&out));
}
