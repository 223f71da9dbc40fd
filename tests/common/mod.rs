//! Helpers shared by the integration tests: a throwaway config + database, and running the real binary.
#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

pub struct Env {
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
}

impl Env {
    pub fn new() -> Env {
        Self::with_extra("")
    }

    pub fn with_extra(extra: &str) -> Env {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("postdesk.toml");
        std::fs::write(
            &config,
            format!(
                "address = \"support@example.test\"\n{extra}\n[storage]\nstate_dir = \"state\"\n[rules]\ndir = \"rules\"\n\
                 [templates]\ndir = \"{}\"\n",
                Path::new(env!("CARGO_MANIFEST_DIR")).join("templates").display()
            ),
        )
        .unwrap();
        std::fs::create_dir_all(dir.path().join("rules")).unwrap();
        Env { dir, config }
    }

    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_postdesk"));
        c.arg("--config").arg(&self.config).args(args).env_remove("POSTDESK_CONFIG");
        c
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }

    pub fn ingest_bytes(&self, raw: &[u8]) -> Output {
        let mut child =
            self.cmd(&["ingest"]).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        child.stdin.take().unwrap().write_all(raw).unwrap();
        child.wait_with_output().unwrap()
    }

    pub fn ticket_json(&self, number: &str) -> serde_json::Value {
        let out = self.run(&["ticket", "show", number, "--json"]);
        assert!(out.status.success(), "ticket show: {}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).unwrap()
    }

    pub fn tickets(&self) -> Vec<serde_json::Value> {
        let out = self.run(&["ticket", "list", "--json"]);
        assert!(out.status.success(), "ticket list: {}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice::<Vec<serde_json::Value>>(&out.stdout).unwrap()
    }
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The ticket number in an `ingest` line such as `stdin: new ticket 2026112310000012`.
pub fn ticket_number(line: &str) -> String {
    line.split_whitespace()
        .find(|w| w.len() >= 16 && w.bytes().all(|b| b.is_ascii_digit()))
        .unwrap_or_else(|| panic!("no ticket number in {line:?}"))
        .to_string()
}

pub fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)).unwrap()
}

pub mod stack;

/// Overwrites pages in the middle of a database file with noise, as a failing disk might.
pub fn damage_middle(path: &Path) {
    use std::io::{Seek, SeekFrom, Write};
    let len = std::fs::metadata(path).unwrap().len();
    let pages = (len / 2 / 4096).min(50);
    assert!(pages >= 10, "database too small to damage in the middle: {len} bytes");
    let mut f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    let mut noise = 0x2545_f491u32;
    for page in 0..pages {
        f.seek(SeekFrom::Start((len / 4 / 4096 + page) * 4096)).unwrap();
        let bytes: Vec<u8> = (0..4096)
            .map(|_| {
                noise ^= noise << 13;
                noise ^= noise >> 17;
                noise ^= noise << 5;
                noise as u8
            })
            .collect();
        f.write_all(&bytes).unwrap();
    }
}
