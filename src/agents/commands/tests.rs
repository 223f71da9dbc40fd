use super::*;

const TICKET: &str = "2026112310000012";

fn ok(line: usize, text: &str, command: Command) -> CommandLine {
    CommandLine { line, text: text.to_string(), parsed: Ok(command) }
}

fn refused(line: usize, text: &str, why: &str) -> CommandLine {
    CommandLine { line, text: text.to_string(), parsed: Err(why.to_string()) }
}

fn tag(add: &[&str], remove: &[&str]) -> Command {
    let owned = |v: &[&str]| v.iter().map(|s| s.to_string()).collect();
    Command::Tag { add: owned(add), remove: owned(remove) }
}

#[test]
fn replies_split_into_note_commands_and_body() {
    struct Case {
        name: &'static str,
        input: &'static str,
        note: bool,
        commands: Vec<CommandLine>,
        body: &'static str,
    }
    let cases = [
        Case { name: "plain text", input: "Hello,\nthanks.", note: false, commands: vec![], body: "Hello,\nthanks." },
        Case { name: "empty", input: "", note: false, commands: vec![], body: "" },
        Case { name: "only blank lines", input: "\n \n\t\n", note: false, commands: vec![], body: "" },
        Case {
            name: "mixed commands and text",
            input: "#priority high\n#tag +billing -new vip\n#close\nDone, refund sent.\n\nRegards",
            note: false,
            commands: vec![
                ok(1, "#priority high", Command::Priority(Priority::High)),
                ok(2, "#tag +billing -new vip", tag(&["billing", "vip"], &["new"])),
                ok(3, "#close", Command::Close),
            ],
            body: "Done, refund sent.\n\nRegards",
        },
        Case {
            name: "note only",
            input: "#note\nCalled the customer, all fine.",
            note: true,
            commands: vec![],
            body: "Called the customer, all fine.",
        },
        Case { name: "note without text", input: "#NOTE", note: true, commands: vec![], body: "" },
        Case {
            name: "note after other commands, leading and inner blank lines",
            input: "\n\n#take\n\n#note\n\n  Internal: waiting for finance.  \n",
            note: true,
            commands: vec![ok(3, "#take", Command::Take)],
            body: "Internal: waiting for finance.",
        },
        Case {
            name: "CRLF",
            input: "#note\r\n#pending 3\r\n\r\nLine one\r\nLine two\r\n",
            note: true,
            commands: vec![ok(2, "#pending 3", Command::Pending(3))],
            body: "Line one\nLine two",
        },
        Case {
            name: "case-insensitive names",
            input: "#Close\n#REOPEN\n#Take",
            note: false,
            commands: vec![
                ok(1, "#Close", Command::Close),
                ok(2, "#REOPEN", Command::Reopen),
                ok(3, "#Take", Command::Take),
            ],
            body: "",
        },
        Case {
            name: "unknown commands are refused, not body",
            input: "#clsoe\n#hashtag-fun now\nThanks",
            note: false,
            commands: vec![
                refused(1, "#clsoe", "unknown command #clsoe"),
                refused(2, "#hashtag-fun now", "unknown command #hashtag-fun"),
            ],
            body: "Thanks",
        },
        Case {
            name: "markdown heading is body",
            input: "# Summary\n#close",
            note: false,
            commands: vec![],
            body: "# Summary\n#close",
        },
        Case {
            name: "hash digit and lone hash are body",
            input: "#1 priority is the invoice.\n#close",
            note: false,
            commands: vec![],
            body: "#1 priority is the invoice.\n#close",
        },
        Case { name: "lone hash", input: "#\n#close", note: false, commands: vec![], body: "#\n#close" },
        Case {
            name: "hash in the body after text is not a command",
            input: "#take\nSee below.\n#close\n#note",
            note: false,
            commands: vec![ok(1, "#take", Command::Take)],
            body: "See below.\n#close\n#note",
        },
        Case {
            name: "indented command",
            input: "   #close\nBye",
            note: false,
            commands: vec![ok(1, "#close", Command::Close)],
            body: "Bye",
        },
        Case {
            name: "note with an argument stays a note and reports the argument",
            input: "#note called them\nSecret",
            note: true,
            commands: vec![refused(
                1,
                "#note called them",
                "#note takes no argument, got \"called them\"; write the note below the commands",
            )],
            body: "Secret",
        },
    ];
    for case in cases {
        let reply = parse_agent_reply(case.input);
        assert_eq!(reply.note, case.note, "{}: note", case.name);
        assert_eq!(reply.commands, case.commands, "{}: commands", case.name);
        assert_eq!(reply.body, case.body, "{}: body", case.name);
    }
}

/// One command line at a time, argument handling only.
fn parse_one(line: &str) -> Result<Command, String> {
    let reply = parse_agent_reply(line);
    assert_eq!(reply.commands.len(), 1, "{line:?} gave {reply:?}");
    reply.commands.into_iter().next().unwrap().parsed
}

#[test]
fn arguments_are_parsed() {
    let cases: Vec<(&str, Command)> = vec![
        ("#assign Agent2@Example.com", Command::Assign("agent2@example.com".into())),
        ("#assign <agent2@example.com>", Command::Assign("agent2@example.com".into())),
        ("#assign ops@localhost", Command::Assign("ops@localhost".into())),
        ("#queue Billing", Command::Queue("Billing".into())),
        ("#queue  First Level::EMEA ", Command::Queue("First Level::EMEA".into())),
        ("#priority 1", Command::Priority(Priority::VeryLow)),
        ("#priority very-high", Command::Priority(Priority::VeryHigh)),
        ("#priority Very High", Command::Priority(Priority::VeryHigh)),
        ("#priority very_low", Command::Priority(Priority::VeryLow)),
        ("#Priority NORMAL", Command::Priority(Priority::Normal)),
        ("#tag x", tag(&["x"], &[])),
        ("#tag -x", tag(&[], &["x"])),
        ("#tag +a,-b, c", tag(&["a", "c"], &["b"])),
        ("#merge 2026112310000012", Command::Merge(TICKET.into())),
        ("#merge #2026112310000012", Command::Merge(TICKET.into())),
        ("#pending 1", Command::Pending(1)),
        ("#pending 365", Command::Pending(365)),
        ("#pending 3d", Command::Pending(3)),
        ("#pending 7 days", Command::Pending(7)),
        ("#pending 1 Day", Command::Pending(1)),
    ];
    for (line, want) in cases {
        assert_eq!(parse_one(line), Ok(want), "{line}");
    }
}

#[test]
fn bad_arguments_are_refused_with_a_reason() {
    let cases = [
        ("#close now", "#close takes no argument"),
        ("#take it", "#take takes no argument"),
        ("#assign", "#assign: needs an address"),
        ("#assign bob", "not an address"),
        ("#assign bob@", "not an address"),
        ("#assign @example.com", "not an address"),
        ("#assign a@b@c", "not an address"),
        ("#assign a@exa mple.com", "not an address"),
        ("#assign a@example..com", "not an address"),
        ("#assign a@-example.com", "not an address"),
        ("#assign a@b.com, c@d.com", "not an address"),
        ("#queue", "#queue needs a queue name"),
        ("#priority", "got nothing"),
        ("#priority urgent", "got urgent"),
        ("#priority 0", "got 0"),
        ("#priority 6", "got 6"),
        ("#tag", "#tag needs tags"),
        ("#tag + x", "\"+\" names no tag"),
        ("#tag -", "\"-\" names no tag"),
        ("#merge", "#merge needs the number"),
        ("#merge 2026112310000013", "not a valid ticket number"),
        ("#merge abc", "not a valid ticket number"),
        ("#pending", "#pending takes a number of days from 1 to 365"),
        ("#pending 0", "from 1 to 365"),
        ("#pending 366", "from 1 to 365"),
        ("#pending -1", "from 1 to 365"),
        ("#pending 3 weeks", "from 1 to 365"),
        ("#pending 99999999999999999999", "from 1 to 365"),
        ("#pending d", "from 1 to 365"),
    ];
    for (line, want) in cases {
        match parse_one(line) {
            Err(why) => assert!(why.contains(want), "{line}: {why:?} should say {want:?}"),
            Ok(c) => panic!("{line}: accepted as {c:?}"),
        }
    }
}

#[test]
fn garbage_never_panics() {
    let inputs = [
        "#",
        "##",
        "#\u{0}",
        "#é",
        "#close\u{2028}x",
        "#pending \u{ff11}",
        "#tag \u{0}",
        "#assign é@é",
        "\r",
        "\r\n\r\n#",
        "#assign <>",
        "#assign <",
        "#merge ####",
        "#queue \t",
        "#x\r#y",
    ];
    for input in inputs {
        let reply = parse_agent_reply(input);
        for c in &reply.commands {
            assert!(c.line >= 1, "{input:?}");
        }
    }
    let long = format!("#tag {}\n{}", "+x ".repeat(10_000), "#close\n".repeat(10_000));
    let reply = parse_agent_reply(&long);
    assert_eq!(reply.commands.len(), 10_001);
}
