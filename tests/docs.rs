//! The man pages say what the program does: postdesk(8) has every subcommand and option (it is rendered from the
//! clap definitions), and postdesk.toml(5), written by hand, describes every key the config accepts, so a key added
//! to the config without its documentation fails here.

#[path = "../examples/gen_docs/manpage.rs"]
mod manpage;

use std::path::Path;

use clap::CommandFactory;

fn toml_page() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/man/postdesk.toml.5")).unwrap()
}

/// The keys serde accepts in one table, as its "unknown field" error lists them.
fn accepted_keys(table: &str) -> Vec<String> {
    let text = match table {
        "" => "zz_unknown = 1\n".to_string(),
        t if t.starts_with("[[") => format!("address = \"a@b.c\"\n{t}\nzz_unknown = 1\n"),
        t => format!("address = \"a@b.c\"\n{t}\nzz_unknown = 1\n"),
    };
    let err = toml::from_str::<postdesk::config::Config>(&text).unwrap_err().message().to_string();
    let expected = err.split_once("expected one of ").or_else(|| err.split_once("expected ")).unwrap().1;
    expected.split(", ").flat_map(|k| k.split(" or ")).map(|k| k.trim().trim_matches('`').to_string()).collect()
}

/// The part of the page under `.SS <heading>`.
fn section<'a>(page: &'a str, heading: &str) -> &'a str {
    let start =
        page.find(&format!(".SS {heading}\n")).unwrap_or_else(|| panic!("no .SS {heading} in postdesk.toml(5)"));
    let rest = &page[start + 4..];
    &rest[..rest.find("\n.SS ").or_else(|| rest.find("\n.SH ")).unwrap_or(rest.len())]
}

#[test]
fn postdesk_toml_5_describes_every_config_key() {
    let page = toml_page();
    let tables = [
        ("", "Top level"),
        ("[storage]", "[storage]"),
        ("[tickets]", "[tickets]"),
        ("[limits]", "[limits]"),
        ("[rules]", "[rules]"),
        ("[templates]", "[templates]"),
        ("[replies]", "[replies]"),
        ("[agents]", "[agents]"),
        ("[agents.notify]", "[agents.notify]"),
        ("[imap]", "[imap]"),
        ("[smtp]", "[smtp]"),
        ("[[queues]]", "[[queues]]"),
        ("[[role]]", "[[role]]"),
        ("[[agent]]", "[[agent]]"),
        ("[retention]", "[retention]"),
        ("[logging]", "[logging]"),
        ("[metrics]", "[metrics]"),
    ];
    let mut missing = Vec::new();
    let top = accepted_keys("");
    for (table, heading) in tables {
        let text = section(&page, heading);
        for key in accepted_keys(table) {
            // Top-level keys that are tables have a section of their own.
            let is_table = table.is_empty() && tables.iter().any(|(t, _)| t.trim_matches(['[', ']']) == key);
            if !is_table && !text.contains(&format!(".TP\n.B {key}\n")) {
                missing.push(format!("{heading} {key}"));
            }
        }
    }
    for key in top {
        if !tables.iter().any(|(t, _)| t.trim_matches(['[', ']']) == key) && !["site_name", "address"].contains(&&*key)
        {
            missing.push(format!("top-level table {key} has no section"));
        }
    }
    assert!(missing.is_empty(), "postdesk.toml(5) does not describe:\n{}", missing.join("\n"));
}

#[test]
fn postdesk_8_has_every_subcommand_option_and_exit_code() {
    let page = manpage::postdesk_8();
    fn leaves(cmd: &clap::Command, path: String, out: &mut Vec<(String, clap::Command)>) {
        let subs: Vec<_> = cmd.get_subcommands().filter(|s| s.get_name() != "help").collect();
        if subs.is_empty() {
            out.push((path.clone(), cmd.clone()));
        }
        for s in subs {
            leaves(s, format!("{path} {}", s.get_name()), out);
        }
    }
    let mut all = Vec::new();
    leaves(&postdesk::cli::Cli::command(), "postdesk".into(), &mut all);
    assert!(all.len() > 20, "{} subcommands", all.len());
    for (path, cmd) in all {
        assert!(
            page.contains(&format!(".SS \"{path}")) || page.contains(&format!(".SS {path}")),
            "no {path} in postdesk(8)"
        );
        for arg in cmd.get_arguments().filter_map(|a| a.get_long()).filter(|l| *l != "help") {
            // roff writes every '-' of an option as "\-".
            let escaped = format!("--{arg}").replace('-', "\\-");
            assert!(page.contains(&escaped), "no --{arg} of {path} in postdesk(8)");
        }
    }
    for code in ["64", "65", "66", "69", "75", "78"] {
        assert!(page.contains(&format!(".TP\n\\fB{code}\\fR\n")), "exit status {code} undocumented");
    }
}
