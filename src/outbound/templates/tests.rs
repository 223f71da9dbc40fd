use super::*;

fn shipped_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("templates")
}

/// A copy of the shipped templates to break in one place.
fn copy_of_shipped() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    for set in ["default", "billing"] {
        std::fs::create_dir(tmp.path().join(set)).unwrap();
        for entry in std::fs::read_dir(shipped_dir().join(set)).unwrap() {
            let entry = entry.unwrap();
            std::fs::copy(entry.path(), tmp.path().join(set).join(entry.file_name())).unwrap();
        }
    }
    tmp
}

fn write(dir: &Path, rel: &str, text: &str) {
    std::fs::write(dir.join(rel), text).unwrap();
}

fn load_err(dir: &Path) -> String {
    Templates::load(dir).map(|_| ()).unwrap_err().to_string()
}

#[test]
fn shipped_templates_load_and_render() {
    let t = Templates::load(&shipped_dir()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(t.sets(), vec!["billing".to_string(), "default".to_string()]);
    let mut names = REQUIRED.map(String::from).to_vec();
    names.sort();
    assert_eq!(t.names(), names);
    for ctx in [TemplateContext::sample(), TemplateContext::sample_without_optionals()] {
        for name in REQUIRED {
            for set in ["default", "billing", "no-such-set"] {
                let r = t.render(set, name, &ctx).unwrap_or_else(|e| panic!("{set}/{name}: {e}"));
                assert!(r.subject.contains("[Ticket#2026112310000012]") || name == "rejection", "{name}: {r:?}");
                assert!(!r.subject.contains('\n') && !r.text.trim().is_empty(), "{name}: {r:?}");
                assert!(!r.text.starts_with('\n'), "{set}/{name} starts with an empty line:\n{}", r.text);
                assert!(!r.text.contains("\n\n\n"), "{set}/{name} has a double empty line:\n{}", r.text);
            }
        }
    }
}

#[test]
fn shipped_notification_explains_mail_commands() {
    let t = Templates::load(&shipped_dir()).unwrap();
    let r = t.render("default", "notification", &TemplateContext::sample()).unwrap();
    for needle in ["my printer is on fire", "#note", "#close", "#reopen", "#assign ADDRESS", "#take", "#queue NAME"] {
        assert!(r.text.contains(needle), "{needle} missing in\n{}", r.text);
    }
    for needle in ["#priority LEVEL", "#tag +x -y", "#merge NUMBER", "#pending DAYS", "Reply to this mail to answer"] {
        assert!(r.text.contains(needle), "{needle} missing in\n{}", r.text);
    }
    assert!(!r.text.contains("older quoted text"), "only the visible text is shown");
}

#[test]
fn shipped_transcript_lists_done_and_refused() {
    let t = Templates::load(&shipped_dir()).unwrap();
    let r = t.render("default", "transcript", &TemplateContext::sample()).unwrap();
    assert!(r.text.contains("done     #take: assigned to you\n"), "{}", r.text);
    assert!(r.text.contains("REFUSED  #queue nowhere: no queue named \"nowhere\"\n"), "{}", r.text);
}

#[test]
fn sets_override_single_names_and_fall_back_to_default() {
    let t = Templates::load(&shipped_dir()).unwrap();
    let ctx = TemplateContext::sample();
    let billing = t.render("billing", "acknowledgement", &ctx).unwrap();
    assert!(billing.subject.starts_with("[Ticket#2026112310000012] Billing:"), "{billing:?}");
    assert_eq!(billing.html, None, "an override brings its own HTML or none");
    let default = t.render("default", "acknowledgement", &ctx).unwrap();
    assert!(default.html.is_some());
    assert_eq!(t.render("billing", "followup", &ctx).unwrap(), t.render("default", "followup", &ctx).unwrap());
    let err = t.render("billing", "no-such-template", &ctx).unwrap_err();
    assert!(matches!(err, RenderError::Unknown { .. }), "{err}");
}

#[test]
fn mail_content_is_never_evaluated() {
    let t = Templates::load(&shipped_dir()).unwrap();
    let mut ctx = TemplateContext::sample();
    ctx.ticket.subject = "{{ 7*7 }} {% if true %}x{% endif %}".into();
    ctx.customer.name = "<script>alert(1)</script>".into();
    ctx.article.visible_text = "{{ site.address }}".into();
    let r = t.render("default", "acknowledgement", &ctx).unwrap();
    assert_eq!(r.subject, "[Ticket#2026112310000012] {{ 7*7 }} {% if true %}x{% endif %}");
    assert!(r.text.contains("> {{ site.address }}"), "{}", r.text);
    assert!(r.text.contains("Hello <script>alert(1)</script>,"), "text is not escaped:\n{}", r.text);
    let html = r.html.unwrap();
    assert!(html.contains("Hello &lt;script&gt;alert(1)&lt;&#x2f;script&gt;,"), "html is escaped:\n{html}");
}

#[test]
fn rendered_subject_is_one_line() {
    let t = Templates::load(&shipped_dir()).unwrap();
    let mut ctx = TemplateContext::sample();
    ctx.ticket.subject = "Hello\r\nBcc: evil@example.com\n".into();
    let r = t.render("default", "followup", &ctx).unwrap();
    assert_eq!(r.subject, "[Ticket#2026112310000012] Hello Bcc: evil@example.com");
}

#[test]
fn syntax_error_is_refused_with_file_and_line() {
    let tmp = copy_of_shipped();
    write(tmp.path(), "default/followup.txt", "Subject: hi\n\nline 3\n{{ ticket.number + }}\nline 5\n");
    let err = load_err(tmp.path());
    let expected = format!("{}:4: syntax error", tmp.path().join("default/followup.txt").display());
    assert!(err.starts_with(&expected), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
}

#[test]
fn syntax_error_in_subject_names_line_one() {
    let tmp = copy_of_shipped();
    write(tmp.path(), "billing/acknowledgement.txt", "Subject: {{ ticket.number \n\nbody\n");
    let err = load_err(tmp.path());
    assert!(
        err.starts_with(&format!("{}:1: syntax error", tmp.path().join("billing/acknowledgement.txt").display())),
        "{err}"
    );
}

#[test]
fn undefined_variable_is_refused_with_file_and_line() {
    let tmp = copy_of_shipped();
    write(tmp.path(), "default/acknowledgement.txt", "Subject: hi\n\nHello\n{{ tiket.number }}\n");
    let err = load_err(tmp.path());
    let expected = format!("{}:4: undefined value 'tiket", tmp.path().join("default/acknowledgement.txt").display());
    assert!(err.starts_with(&expected), "{err}");
    // An undefined attribute of a defined object is refused too.
    write(tmp.path(), "default/acknowledgement.txt", "Subject: {{ ticket.nubmer }}\n\nHello\n");
    let err = load_err(tmp.path());
    assert!(err.contains("acknowledgement.txt:1: undefined value"), "{err}");
    // And in HTML.
    write(tmp.path(), "default/acknowledgement.txt", "Subject: hi\n\nHello\n");
    write(tmp.path(), "default/acknowledgement.html", "<p>\n{{ custommer.name }}</p>\n");
    let err = load_err(tmp.path());
    assert!(err.contains("acknowledgement.html:2: undefined value 'custommer"), "{err}");
}

#[test]
fn unguarded_optional_is_refused_at_load() {
    let tmp = copy_of_shipped();
    write(tmp.path(), "default/transcript.txt", "Subject: hi\n\nDear {{ agent.name }}\n");
    let err = load_err(tmp.path());
    assert!(err.contains("transcript.txt:3:") && err.contains("{% if"), "{err}");
    // Looping over an unset list is harmless: it yields nothing.
    write(tmp.path(), "default/transcript.txt", "Subject: hi\n\n{% for c in commands %}{{ c.command }}{% endfor %}\n");
    Templates::load(tmp.path()).unwrap();
}

#[test]
fn layout_problems_are_all_reported_one_per_line() {
    let tmp = copy_of_shipped();
    std::fs::remove_file(tmp.path().join("default/rejection.txt")).unwrap();
    write(tmp.path(), "default/followup.txt", "Hello {{ ticket.number }}\n\nbody\n");
    write(tmp.path(), "default/notification.txt", "Subject: x\nnot empty\nbody\n");
    write(tmp.path(), "billing/lonely.html", "<p>hi</p>\n");
    write(tmp.path(), "billing/Notes.md", "notes\n");
    write(tmp.path(), "billing/.swap", "ignored\n");
    let err = load_err(tmp.path());
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 5, "{err}");
    let has = |needle: &str| lines.iter().any(|l| l.contains(needle));
    assert!(has("default/rejection.txt: missing"), "{err}");
    assert!(has("default/followup.txt:1: the first line must be \"Subject: …\""), "{err}");
    assert!(has("default/notification.txt:2: the second line must be empty"), "{err}");
    assert!(has("billing/lonely.html: has no lonely.txt"), "{err}");
    assert!(has("billing/Notes.md: unexpected file"), "{err}");
}

#[test]
fn default_set_is_required() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir(tmp.path().join("billing")).unwrap();
    write(tmp.path(), "billing/acknowledgement.txt", "Subject: x\n\nbody\n");
    let err = load_err(tmp.path());
    assert!(err.contains("default: missing"), "{err}");
    let err = load_err(&tmp.path().join("nonexistent"));
    assert!(err.contains("cannot read"), "{err}");
}

#[test]
fn crlf_templates_are_accepted() {
    let tmp = copy_of_shipped();
    write(tmp.path(), "default/followup.txt", "Subject: {{ ticket.token }} hi\r\n\r\nline one\r\nline two\r\n");
    let t = Templates::load(tmp.path()).unwrap();
    let r = t.render("default", "followup", &TemplateContext::sample()).unwrap();
    assert_eq!(r.subject, "[Ticket#2026112310000012] hi");
    assert_eq!(r.text, "line one\nline two\n");
}

#[test]
fn templates_are_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Templates>();
}

#[test]
fn quote_filter() {
    assert_eq!(quote("a\n\nb\n".into()), "> a\n>\n> b");
}

#[test]
fn terminal_escapes_in_values_are_shown_escaped_in_rendered_mail() {
    let t = Templates::load(copy_of_shipped().path()).unwrap();
    let mut ctx = TemplateContext::sample();
    ctx.ticket.subject = "Printer \x1b]0;owned\x07 fire".into();
    ctx.customer.name = "Carol \x1b[2J\u{202e}".into();
    ctx.article.visible_text = "line \x1b[31mred\r\nnext\x00\n".into();
    let r = t.render("default", "acknowledgement", &ctx).unwrap();
    assert_eq!(r.subject, "[Ticket#2026112310000012] Printer \\x1b]0;owned\\x07 fire");
    for part in [&r.text, r.html.as_ref().unwrap()] {
        let lines = part.replace("\r\n", "\n");
        assert!(!lines.chars().any(|c| crate::inert::is_unsafe(c) && c != '\n' && c != '\t'), "{part:?}");
    }
    assert!(r.text.contains("Hello Carol \\x1b[2J\\u{202e},"), "{}", r.text);
    assert!(r.text.contains("> line \\x1b[31mred\n> next\\x00"), "{}", r.text);
}

#[test]
fn excerpt_of_a_large_body_is_cut_at_a_line_and_says_so() {
    assert_eq!(excerpt("short\n", 100), "short\n");
    let body = "0123456789\n".repeat(1000);
    let cut = excerpt(&body, 100);
    assert!(cut.starts_with("0123456789\n0123456789\n"), "{cut}");
    assert!(cut.len() < 200, "{cut}");
    assert!(cut.ends_with("0123456789\n[… 10902 more bytes not shown]\n"), "{cut:?}");
    // One long line is cut at a character boundary, never inside a character.
    let cut = excerpt(&"ü".repeat(100), 51);
    assert!(cut.starts_with(&"ü".repeat(25)) && cut.contains("[… 150 more bytes not shown]"), "{cut}");
}
