//! Validation: every error names file, line and column, the rule, and the fix; all errors are collected.

use super::*;

/// `(line, column, rule, message fragment)` of each error, in order.
fn positions(text: &str) -> Vec<(usize, usize, Option<String>, String)> {
    errors(text).into_iter().map(|e| (e.line, e.column, e.rule, e.message)).collect()
}

fn single(text: &str) -> (usize, usize, Option<String>, String) {
    let mut all = positions(text);
    assert_eq!(all.len(), 1, "expected one error, got {all:#?}");
    all.remove(0)
}

const HEAD: &str = "[[rule]]\nname = \"r\"\n";

#[test]
fn broken_regex_points_at_the_pattern() {
    let text = format!("{HEAD}[rule.when]\nsubject = {{ regex = \"(unclosed\" }}\n[rule.then]\nqueue = \"billing\"\n");
    let (line, col, rule, msg) = single(&text);
    assert_eq!((line, col, rule.as_deref()), (4, 21, Some("r")));
    assert!(msg.starts_with("invalid regex: unclosed group"), "{msg}");
    let e = &errors(&text)[0];
    assert!(e.to_string().starts_with("t.toml:4:21: rule \"r\": invalid regex"), "{e}");
}

#[test]
fn oversized_regex_is_refused() {
    let text = format!("{HEAD}[rule.when]\nbody = {{ regex = '\\w{{2000}}\\w{{2000}}' }}\n[rule.then]\nstop = true\n");
    let (line, col, _, msg) = single(&text);
    assert_eq!((line, col), (4, 18));
    assert!(msg.contains("too large"), "{msg}");
}

#[test]
fn unknown_keys_everywhere_with_suggestions() {
    let text = r#"[[rule]]
name = "r"
folowups = true
[rule.when]
subjet = "x"
from = { contians = "y" }
when_extra.x = 1
[rule.then]
queu = "billing"
"#;
    let all = positions(text);
    let found: Vec<(usize, usize, &str)> = all.iter().map(|(l, c, _, m)| (*l, *c, m.as_str())).collect();
    assert_eq!(found.len(), 5, "{all:#?}");
    assert_eq!((found[0].0, found[0].1), (3, 1));
    assert!(found[0].2.contains("\"folowups\"") && found[0].2.contains("did you mean \"followups\"?"));
    assert_eq!((found[1].0, found[1].1), (5, 1));
    assert!(found[1].2.contains("did you mean \"subject\"?"), "{}", found[1].2);
    assert_eq!((found[2].0, found[2].1), (6, 10));
    assert!(found[2].2.contains("did you mean \"contains\"?"), "{}", found[2].2);
    assert_eq!((found[3].0, found[3].1), (7, 1));
    assert_eq!((found[4].0, found[4].1), (9, 1));
    assert!(found[4].2.contains("did you mean \"queue\"?"), "{}", found[4].2);
    assert!(all.iter().all(|e| e.2.as_deref() == Some("r")));
}

#[test]
fn unknown_queue_in_action_and_condition() {
    let text = format!("{HEAD}[rule.when]\nfollowup = true\nqueue = \"suport\"\n[rule.then]\nqueue = \"biling\"\n");
    let all = positions(&text);
    assert_eq!((all[0].0, all[0].1), (5, 9), "{all:#?}");
    assert!(all[0].3.contains("unknown queue \"suport\"; did you mean \"support\"?"), "{}", all[0].3);
    assert_eq!((all[1].0, all[1].1), (7, 9));
    assert!(all[1].3.contains("known queues: support, billing, sales, vip, spam"), "{}", all[1].3);
}

#[test]
fn unknown_template_for_reply_and_reject() {
    let text = format!("{HEAD}[rule.then]\nauto_reply = \"acknowledgment\"\n");
    let (line, col, _, msg) = single(&text);
    assert_eq!((line, col), (4, 14));
    assert!(msg.contains("unknown template \"acknowledgment\"") && msg.contains("did you mean \"acknowledgement\"?"));
    let (line, col, _, msg) = single(&format!("{HEAD}[rule.then]\nreject = \"nope\"\n"));
    assert_eq!((line, col), (4, 10));
    assert!(msg.contains("for `reject`"), "{msg}");
}

#[test]
fn toml_syntax_error_has_its_position() {
    let (line, col, rule, msg) = single("[[rule]]\nname = \"r\"\n[rule.then]\nqueue = \"billing\nstop = true\n");
    assert_eq!((line, col, rule), (4, 17, None));
    assert!(msg.starts_with("TOML syntax error: "), "{msg}");
    let (line, col, _, _) = single("[[rule]]\nname = \"r\"\nname = \"again\"\n");
    assert_eq!((line, col), (3, 1));
}

#[test]
fn bad_values_and_names() {
    let cases: &[(&str, (usize, usize), &str)] = &[
        ("[[rule]]\nname = \"\"\n[rule.then]\nstop = true\n", (2, 8), "rule name is empty"),
        ("[[rule]]\n[rule.then]\nstop = true\n", (1, 1), "rule has no name"),
        ("[[rule]]\nname = \"r\"\n", (1, 1), "rule has no actions"),
        ("[[rule]]\nname = \"r\"\n[rule.then]\n", (3, 1), "[rule.then] has no actions"),
        ("[[rule]]\nname = \"r\"\n[rule.then]\npriority = \"urgent\"\n", (4, 12), "unknown priority \"urgent\""),
        ("[[rule]]\nname = \"r\"\n[rule.then]\npriority = 9\n", (4, 12), "unknown priority \"9\""),
        ("[[rule]]\nname = \"r\"\n[rule.then]\nstate = \"done\"\n", (4, 9), "unknown state \"done\""),
        ("[[rule]]\nname = \"r\"\n[rule.then]\nowner = \"bob\"\n", (4, 9), "not a mail address"),
        ("[[rule]]\nname = \"r\"\n[rule.then]\nnotify = [\"a@b.example\", 3]\n", (4, 26), "notify entries"),
        ("[[rule]]\nname = \"r\"\n[rule.then]\ntags = [\"a b\"]\n", (4, 9), "without spaces"),
        ("[[rule]]\nname = \"r\"\n[rule.then]\nstop = \"yes\"\n", (4, 8), "must be true or false"),
        ("[rule]\nname = \"r\"\n", (1, 2), "write [[rule]] with double brackets"),
        ("[[rules]]\nname = \"r\"\n", (1, 3), "unknown key \"rules\""),
        (
            "[[rule]]\nname = \"r\"\n[rule.when]\nclassification = \"robot\"\n[rule.then]\nstop = true\n",
            (4, 18),
            "unknown classification \"robot\"",
        ),
        (
            "[[rule]]\nname = \"r\"\n[rule.when]\nsize = { greater_than = \"5 megs\" }\n[rule.then]\nstop = true\n",
            (4, 25),
            "is not a size",
        ),
        (
            "[[rule]]\nname = \"r\"\n[rule.when]\nsubject = { contains = \"a\", regex = \"b\" }\n[rule.then]\nstop = true\n",
            (4, 29),
            "only one operator",
        ),
        (
            "[[rule]]\nname = \"r\"\n[rule.when]\nheader = { equals = \"b\" }\n[rule.then]\nstop = true\n",
            (4, 10),
            "needs the header's name",
        ),
        ("[[rule]]\nname = \"r\"\n[rule.when]\nany = []\n[rule.then]\nstop = true\n", (4, 7), "empty `any` list"),
        (
            "[[rule]]\nname = \"r\"\n[rule.when]\nsubject = { in = [\"a\", 1] }\n[rule.then]\nstop = true\n",
            (4, 24),
            "list items must be strings",
        ),
    ];
    for (text, (line, col), fragment) in cases {
        let (l, c, _, msg) = single(text);
        assert_eq!((l, c), (*line, *col), "{text}\n{msg}");
        assert!(msg.contains(fragment), "{msg:?} should contain {fragment:?}");
    }
}

#[test]
fn contradictions_in_one_rule() {
    let cases: &[(&str, &str)] = &[
        ("queue = \"billing\"\nreject = \"rejection\"", "`reject` refuses the mail"),
        ("queue = \"billing\"\nspam = true", "`spam` quarantines the mail"),
        ("reject = \"rejection\"\nspam = true", "but `reject` answers it"),
        ("reject = \"rejection\"\nauto_reply = true", "`reject` already answers"),
        ("tags = [\"x\", \"-x\"]", "both added and removed"),
    ];
    for (then, fragment) in cases {
        let (_, _, rule, msg) = single(&format!("{HEAD}[rule.then]\n{then}\n"));
        assert_eq!(rule.as_deref(), Some("r"));
        assert!(msg.contains("contradictory actions") && msg.contains(fragment), "{msg}");
    }
    let text = format!("{HEAD}followups = false\n[rule.when]\nfollowup = true\n[rule.then]\nstop = true\n");
    let (line, col, _, msg) = single(&text);
    assert_eq!((line, col), (3, 13));
    assert!(msg.contains("contradicts"), "{msg}");
    // Stopping with no other action is fine.
    rules(&format!("{HEAD}[rule.then]\nstop = true\n"));
}

#[test]
fn capture_references_must_exist() {
    let when = "[rule.when]\nsubject = { regex = '(?P<order>\\d+)' }\nnot = { body = { regex = '(?P<body>x)' } }\n";
    let all = positions(&format!("{HEAD}{when}[rule.then]\ntags = [\"a-${{2}}\", \"b-${{body}}\", \"c-${{order\"]\n"));
    assert_eq!(all.len(), 3, "{all:#?}");
    assert!(all[0].3.contains("groups 1 to 1"), "{}", all[0].3);
    assert!(all[1].3.contains("named groups: order"), "{}", all[1].3);
    assert!(all[2].3.contains("unclosed"), "{}", all[2].3);
    let at: Vec<(usize, usize)> = all.iter().map(|e| (e.0, e.1)).collect();
    assert_eq!(at, [(7, 9), (7, 19), (7, 32)]);
}

#[test]
fn dotted_keys_report_their_own_line() {
    let (line, col, _, msg) = single("[[rule]]\nname = \"r\"\nwhen.subjekt = \"x\"\nthen.stop = true\n");
    assert_eq!((line, col), (3, 6));
    assert!(msg.contains("did you mean \"subject\"?"), "{msg}");
}

#[test]
fn all_errors_of_all_files_are_collected_with_duplicates_across_files() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| std::fs::write(dir.path().join(name), text).unwrap();
    write(
        "10-a.toml",
        "[[rule]]\nname = \"shared\"\n[rule.then]\nqueue = \"nope\"\n\n[[rule]]\nname = \"ok\"\n[rule.then]\nstop = true\n",
    );
    write("20-b.toml", "[[rule]]\nname = \"shared\"\n[rule.then]\npriority = \"meh\"\n");
    write("30-c.toml", "[[rule]\n");
    let err = RuleSet::load_dir(dir.path(), &vocab()).unwrap_err();
    let lines: Vec<String> = err.to_string().lines().map(str::to_string).collect();
    assert_eq!(lines.len(), 4, "{err}");
    let a = dir.path().join("10-a.toml");
    let b = dir.path().join("20-b.toml");
    assert!(lines[0].starts_with(&format!("{}:4:9: rule \"shared\": unknown queue", a.display())), "{}", lines[0]);
    assert_eq!(
        lines[1],
        format!(
            "{}:2:8: rule \"shared\": duplicate rule name; it is already used at {}:2:8; rule names must be unique across all rule files",
            b.display(),
            a.display()
        )
    );
    assert!(lines[2].starts_with(&format!("{}:4:12: rule \"shared\": unknown priority", b.display())), "{}", lines[2]);
    assert!(lines[3].contains("30-c.toml:1:") && lines[3].contains("TOML syntax error"), "{}", lines[3]);
}

#[test]
fn missing_directory_is_one_error() {
    let err = RuleSet::load_dir(std::path::Path::new("/nonexistent/rules"), &vocab()).unwrap_err();
    assert_eq!(err.0.len(), 1);
    assert!(err.to_string().starts_with("/nonexistent/rules: cannot read the rules directory"), "{err}");
}
