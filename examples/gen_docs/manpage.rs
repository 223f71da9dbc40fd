//! postdesk(8): one page with every subcommand and its options, rendered from the clap definitions, plus the
//! sections clap knows nothing about (exit status, files, environment, the MTA pipe).

use clap::CommandFactory;
use clap_mangen::Man;
use clap_mangen::roff::{Roff, bold, italic, roman};

pub fn postdesk_8() -> String {
    let mut cmd = postdesk::cli::Cli::command().bin_name("postdesk");
    cmd.build();
    let man = Man::new(cmd.clone())
        .section("8")
        .manual("System Manager's Manual")
        .source(format!("postdesk {}", env!("CARGO_PKG_VERSION")));
    let mut page = Vec::new();
    for render in [Man::render_title, Man::render_name_section, Man::render_synopsis_section] {
        render(&man, &mut page).expect("writing to memory");
    }
    let mut roff = Roff::new();
    roff.control("SH", ["DESCRIPTION"]).text([roman(
        "postdesk is an email-driven helpdesk. The daemon (postdesk run) watches a support mailbox over IMAP; an MTA \
         may instead pipe each message to postdesk ingest. Every mail becomes a ticket or a follow-up in an SQLite \
         database, is routed by rule files, and is answered from templates through an SMTP relay. The configuration \
         is described in postdesk.toml(5).",
    )]);
    roff.control("SH", ["OPTIONS"]);
    args(&mut roff, &cmd);
    roff.control("SH", ["COMMANDS"]);
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set() && s.get_name() != "help") {
        command(&mut roff, sub);
    }
    extra_sections(&mut roff);
    let mut text = String::from_utf8(page).expect("roff is text");
    text.push_str(&roff.to_roff());
    text
}

/// A subcommand's usage line, its description and options; then its own subcommands.
fn command(roff: &mut Roff, cmd: &clap::Command) {
    if cmd.has_subcommands() {
        for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set() && s.get_name() != "help") {
            command(roff, sub);
        }
        return;
    }
    let usage = cmd.clone().render_usage().to_string();
    let usage = usage.trim().trim_start_matches("Usage:").trim().to_string();
    roff.control("SS", [usage.as_str()]);
    let about = cmd.get_long_about().or(cmd.get_about()).map(ToString::to_string).unwrap_or_default();
    roff.text([roman(about)]);
    args(roff, cmd);
}

fn args(roff: &mut Roff, cmd: &clap::Command) {
    // Global options (--config) are described once, under OPTIONS.
    let top = cmd.get_name() == "postdesk";
    for arg in cmd.get_arguments().filter(|a| !a.is_hide_set() && (top || !a.is_global_set())) {
        let id = arg.get_id().as_str();
        if id == "help" || id == "version" {
            continue;
        }
        let value = arg.get_value_names().and_then(|v| v.first()).map_or_else(|| id.to_uppercase(), |v| v.to_string());
        let takes_value = arg.get_num_args().is_some_and(|n| n.takes_values());
        let mut label = Vec::new();
        match (arg.get_short(), arg.get_long()) {
            (Some(s), Some(l)) => label.push(bold(format!("-{s}, --{l}"))),
            (None, Some(l)) => label.push(bold(format!("--{l}"))),
            (Some(s), None) => label.push(bold(format!("-{s}"))),
            (None, None) => label.push(italic(value.clone())),
        }
        if arg.get_long().is_some() && takes_value {
            label.push(roman(" "));
            label.push(italic(value));
        }
        roff.control("TP", []).text(label);
        let help = arg.get_long_help().or(arg.get_help()).map(ToString::to_string).unwrap_or_default();
        // clap drops the final period of a one-line doc comment; the sentences added below need it back.
        let help = if help.is_empty() || help.ends_with('.') { help } else { format!("{help}.") };
        let mut body = vec![roman(help)];
        let values: Vec<String> =
            arg.get_possible_values().iter().filter(|v| !v.is_hide_set()).map(|v| v.get_name().to_string()).collect();
        if !values.is_empty() {
            body.push(roman(format!(" One of: {}.", values.join(", "))));
        }
        let defaults: Vec<String> = arg.get_default_values().iter().map(|v| v.to_string_lossy().into_owned()).collect();
        if !defaults.is_empty() && takes_value {
            body.push(roman(format!(" Default: {}.", defaults.join(", "))));
        }
        if let Some(env) = arg.get_env() {
            body.push(roman(format!(" Environment: {}.", env.to_string_lossy())));
        }
        roff.text(body);
    }
}

fn paragraph(roff: &mut Roff, tag: &str, text: &str) {
    roff.control("TP", []).text([bold(tag)]).text([roman(text)]);
}

fn extra_sections(roff: &mut Roff) {
    roff.control("SH", ["EXIT STATUS"]);
    roff.text([roman("The codes of sysexits.h, which MTAs act on:")]);
    for (code, meaning) in [
        (
            "0",
            "Success. For ingest: every mail was stored, or quarantined with the reason (refused mail is never \
               handed back to the MTA).",
        ),
        ("64", "Usage error: unknown subcommand or option, missing argument (EX_USAGE). --help and --version exit 0."),
        ("65", "The input is bad: a mail that cannot be parsed (EX_DATAERR)."),
        ("66", "No such ticket, article, attachment, outbox row or input file (EX_NOINPUT)."),
        ("69", "A service postdesk needs is unavailable (EX_UNAVAILABLE)."),
        ("70", "Internal error (EX_SOFTWARE)."),
        ("73", "An output file cannot be created (EX_CANTCREAT)."),
        (
            "77",
            "Root was about to create the database in a state directory owned by another user (the service user): \
                run the command as that user, e.g. runuser -u postdesk -- postdesk status (EX_NOPERM).",
        ),
        (
            "75",
            "Temporary failure: try again later (EX_TEMPFAIL). postdesk ingest reading a mail from standard input \
                (an MTA's pipe) exits 75 for every failure, whether the database is locked, full or damaged, the \
                config unreadable or broken, or the state directory missing, so the MTA keeps the mail queued and \
                retries instead of bouncing it.",
        ),
        (
            "78",
            "Configuration error (EX_CONFIG), naming file, line and fix; systemd does not restart the daemon \
                (RestartPreventExitStatus=78).",
        ),
    ] {
        paragraph(roff, code, meaning);
    }
    roff.control("SH", ["ENVIRONMENT"]);
    paragraph(roff, "POSTDESK_CONFIG", "The config file, when --config is not given.");
    paragraph(
        roff,
        "POSTDESK_LOG",
        "Log filter (error, warn, info, debug, or a tracing filter). Default: info for \
        run, warn for the other commands. Logs go to standard error (the journal under systemd).",
    );
    paragraph(
        roff,
        "CREDENTIALS_DIRECTORY",
        "Set by systemd for LoadCredential=: the passwords imap-password and \
        smtp-password are read from here when the config names no password_file.",
    );
    roff.control("SH", ["FILES"]);
    paragraph(roff, "/etc/postdesk/postdesk.toml", "The configuration, see postdesk.toml(5).");
    paragraph(roff, "/etc/postdesk/rules/", "Routing rule files (*.toml), read in name order.");
    paragraph(roff, "/etc/postdesk/templates/", "Reply templates, one directory per set.");
    paragraph(
        roff,
        "/var/lib/postdesk/",
        "State: the database postdesk.db, its lock and the key that signs \
        Message-IDs and agents' reply addresses. Owned by the postdesk user, mode 0700.",
    );
    roff.control("SH", ["MAIL TRANSPORT"]);
    roff.text([roman("Instead of IMAP, Postfix can hand mail over through a pipe(8) transport; master.cf: ")]);
    roff.control("nf", []);
    roff.text([roman(
        "postdesk unix - n n - - pipe\n  flags=DRq user=postdesk argv=/usr/bin/postdesk --config /etc/postdesk/postdesk.toml ingest",
    )]);
    roff.control("fi", []);
    roff.text([roman(
        "and a transport_maps entry \"support@example.com postdesk:\". With recipient_delimiter = + the agents' \
         reply addresses (support+T...@) reach the same transport. Examples: /usr/share/doc/postdesk/examples/postfix/.",
    )]);
    roff.control("SH", ["SEE ALSO"]);
    roff.text([roman("postdesk.toml(5), pipe(8), master(5), transport(5), systemd.service(5), sysexits.h")]);
}
