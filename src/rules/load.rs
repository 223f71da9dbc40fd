//! Compiling one rule file: `[[rule]]` tables into [`Rule`]s, validating names, conditions and actions, and
//! collecting every error rather than stopping at the first.

use std::ops::Range;
use std::path::PathBuf;

use super::cond::{Cond, CondCompiler, unknown_queue};
use super::error::{Sink, unknown_key};
use super::value::{self, Entry, Kind, Node};
use super::{AutoReply, Vocabulary};
use crate::model::{Priority, TicketState};

#[derive(Debug)]
pub(crate) struct Rule {
    /// The file's name as shown to admins (`50-billing.toml`).
    pub file: String,
    pub name: String,
    pub enabled: bool,
    /// Whether the rule also runs for replies to existing tickets.
    pub followups: bool,
    pub when: Cond,
    pub then: Actions,
    /// Some tag refers to a regex capture, so evaluation must collect them.
    pub uses_captures: bool,
}

#[derive(Debug, Default)]
pub(crate) struct Actions {
    pub queue: Option<String>,
    pub priority: Option<Priority>,
    pub tags: Vec<Tag>,
    pub owner: Option<String>,
    pub state: Option<TicketState>,
    pub auto_reply: Option<AutoReply>,
    pub notify: Vec<String>,
    pub reject: Option<String>,
    pub spam: Option<bool>,
    pub stop: bool,
}

#[derive(Debug)]
pub(crate) struct Tag {
    pub remove: bool,
    pub pieces: Vec<Piece>,
}

#[derive(Debug)]
pub(crate) enum Piece {
    Lit(String),
    Group(usize),
    Named(String),
}

const RULE_KEYS: [&str; 6] = ["name", "description", "enabled", "followups", "when", "then"];
const ACTION_KEYS: [&str; 10] =
    ["queue", "priority", "tags", "owner", "state", "auto_reply", "notify", "reject", "spam", "stop"];

/// Where each rule name was first defined, to report duplicates across files.
pub(crate) struct NameAt {
    pub name: String,
    pub file: PathBuf,
    pub line: usize,
    pub column: usize,
}

/// Compiles one file's rules onto `rules`; problems go to `sink`.
pub(crate) fn compile_file(
    label: &str,
    sink: &mut Sink<'_>,
    vocab: &Vocabulary,
    rules: &mut Vec<Rule>,
    names: &mut Vec<NameAt>,
) {
    let root = match value::parse(sink.text) {
        Ok(root) => root,
        Err((span, message)) => return sink.at(&span, format!("TOML syntax error: {message}")),
    };
    for e in root.as_table().unwrap_or_default() {
        if e.key != "rule" {
            sink.at(&e.key_span, unknown_key(&e.key, "a rule file (rules are written as [[rule]] tables)", &["rule"]));
            continue;
        }
        let Kind::Array(items) = &e.value.kind else {
            sink.at(&e.key_span, "rules are an array of tables: write [[rule]] with double brackets");
            continue;
        };
        for item in items {
            match item.as_table() {
                Some(t) => rules.extend(compile_rule(label, t, &item.span, sink, vocab, names)),
                None => sink.at(&item.span, "each rule must be a table; write [[rule]] followed by its keys"),
            }
        }
    }
}

fn find<'e>(t: &'e [Entry], key: &str) -> Option<&'e Entry> {
    t.iter().find(|e| e.key == key)
}

fn compile_rule(
    label: &str,
    t: &[Entry],
    span: &Range<usize>,
    sink: &mut Sink<'_>,
    vocab: &Vocabulary,
    names: &mut Vec<NameAt>,
) -> Option<Rule> {
    sink.rule = None;
    let errors_before = sink.errors.len();
    let name = rule_name(t, span, sink, names);
    for e in t.iter().filter(|e| !RULE_KEYS.contains(&e.key.as_str())) {
        sink.at(&e.key_span, unknown_key(&e.key, "a [[rule]]", &RULE_KEYS));
    }
    let flag = |sink: &mut Sink<'_>, key: &str| {
        let e = find(t, key)?;
        let b = e.value.as_bool();
        if b.is_none() {
            sink.at(&e.value.span, format!("`{key}` must be true or false, found {}", e.value.type_name()));
        }
        b.map(|b| (b, e.value.span.clone()))
    };
    let enabled = flag(sink, "enabled").is_none_or(|(b, _)| b);
    let followups = flag(sink, "followups");
    if let Some(d) = find(t, "description").filter(|d| d.value.as_str().is_none()) {
        sink.at(&d.value.span, format!("`description` must be a string, found {}", d.value.type_name()));
    }

    let mut cc = CondCompiler::new(sink, vocab);
    let when = match find(t, "when") {
        None => Cond::All(Vec::new()),
        Some(e) => match e.value.as_table() {
            Some(w) => cc.table(w, "[rule.when]"),
            None => {
                let msg = format!("`when` must be a table of conditions ([rule.when]), found {}", e.value.type_name());
                cc.sink.at(&e.value.span, msg);
                Cond::All(Vec::new())
            }
        },
    };
    let (mentions_followup, groups, group_names) = (cc.mentions_followup, cc.groups, cc.group_names);
    if let (Some((false, fspan)), true) = (&followups, mentions_followup) {
        let msg = "`followups = false` contradicts the `followup` condition; remove `followups` (a followup condition \
                   already makes the rule run for replies)";
        sink.at(fspan, msg);
    }
    let captures = Captures { groups, names: &group_names };
    let then = match find(t, "then") {
        Some(e) => actions(&e.value, sink, vocab, &captures),
        None => {
            sink.at(span, "rule has no actions; add a [rule.then] table, e.g. queue = \"support\"");
            Actions::default()
        }
    };
    let uses_captures = then.tags.iter().any(|t| t.pieces.iter().any(|p| !matches!(p, Piece::Lit(_))));
    let followups = followups.map_or(mentions_followup, |(b, _)| b);
    let rule = Rule { file: label.to_string(), name: name?, enabled, followups, when, then, uses_captures };
    (sink.errors.len() == errors_before).then_some(rule)
}

fn rule_name(t: &[Entry], span: &Range<usize>, sink: &mut Sink<'_>, names: &mut Vec<NameAt>) -> Option<String> {
    let Some(e) = find(t, "name") else {
        sink.at(span, "rule has no name; add name = \"…\" (names appear in logs and `rules test`)");
        return None;
    };
    let name = match e.value.as_str().map(str::trim) {
        Some(n) if !n.is_empty() => n.to_string(),
        Some(_) => {
            sink.at(&e.value.span, "rule name is empty; give the rule a short unique name");
            return None;
        }
        None => {
            sink.at(&e.value.span, format!("rule name must be a string, found {}", e.value.type_name()));
            return None;
        }
    };
    sink.rule = Some(name.clone());
    let (line, column) = sink.position(&e.value.span);
    if let Some(first) = names.iter().find(|n| n.name == name) {
        let msg = format!(
            "duplicate rule name; it is already used at {}:{}:{}; rule names must be unique across all rule files",
            first.file.display(),
            first.line,
            first.column
        );
        sink.at(&e.value.span, msg);
    } else {
        names.push(NameAt { name: name.clone(), file: sink.file.to_path_buf(), line, column });
    }
    Some(name)
}

/// What `${…}` in a tag may refer to: the capture groups of the rule's positive regex conditions.
struct Captures<'a> {
    groups: usize,
    names: &'a [String],
}

fn actions(v: &Node, sink: &mut Sink<'_>, vocab: &Vocabulary, caps: &Captures<'_>) -> Actions {
    let mut a = Actions::default();
    let errors_before = sink.errors.len();
    let Some(t) = v.as_table() else {
        sink.at(&v.span, format!("`then` must be a table of actions ([rule.then]), found {}", v.type_name()));
        return a;
    };
    for e in t {
        action(e, &mut a, sink, vocab, caps);
    }
    let span = |key: &str| find(t, key).map_or(v.span.clone(), |e| e.key_span.clone());
    let replies = matches!(a.auto_reply, Some(AutoReply::On | AutoReply::Template(_)));
    let spam = a.spam == Some(true);
    let conflicts = [
        (a.reject.is_some() && a.queue.is_some(), "reject", "`reject` refuses the mail, so `queue` has no effect"),
        (spam && a.queue.is_some(), "spam", "`spam` quarantines the mail, so `queue` has no effect"),
        (spam && a.reject.is_some(), "spam", "`spam` quarantines the mail silently, but `reject` answers it"),
        (a.reject.is_some() && replies, "auto_reply", "`reject` already answers with its template"),
        (spam && replies, "auto_reply", "`spam` mail is never answered"),
    ];
    for (_, key, why) in conflicts.iter().filter(|c| c.0) {
        sink.at(&span(key), format!("contradictory actions: {why}; remove one of them"));
    }
    for (i, tag) in a.tags.iter().enumerate() {
        let twin = a.tags[..i].iter().find(|o| o.remove != tag.remove && same_pieces(&o.pieces, &tag.pieces));
        if twin.is_some() {
            sink.at(&span("tags"), "contradictory actions: the same tag is both added and removed; keep one");
        }
    }
    let nothing = a.queue.is_none()
        && a.priority.is_none()
        && a.tags.is_empty()
        && a.owner.is_none()
        && a.state.is_none()
        && a.auto_reply.is_none()
        && a.notify.is_empty()
        && a.reject.is_none()
        && a.spam.is_none()
        && !a.stop;
    if nothing && sink.errors.len() == errors_before {
        sink.at(&v.span, "[rule.then] has no actions; add e.g. queue = \"support\", or stop = true");
    }
    a
}

fn same_pieces(a: &[Piece], b: &[Piece]) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|p| match p {
            (Piece::Lit(x), Piece::Lit(y)) | (Piece::Named(x), Piece::Named(y)) => x == y,
            (Piece::Group(x), Piece::Group(y)) => x == y,
            _ => false,
        })
}

fn action(e: &Entry, a: &mut Actions, sink: &mut Sink<'_>, vocab: &Vocabulary, caps: &Captures<'_>) {
    let v = &e.value;
    let want = |sink: &mut Sink<'_>, what: &str| {
        sink.at(&v.span, format!("`{}` must be {what}, found {}", e.key, v.type_name()));
    };
    match (e.key.as_str(), &v.kind) {
        ("queue", Kind::Str(q)) => match vocab.queues.iter().find(|k| *k == q) {
            Some(_) => a.queue = Some(q.clone()),
            None => sink.at(&v.span, unknown_queue(q, &vocab.queues)),
        },
        ("priority", Kind::Str(_) | Kind::Int(_)) => {
            let text = match &v.kind {
                Kind::Str(s) => s.clone(),
                _ => v_int(v).to_string(),
            };
            match Priority::parse(&text) {
                Some(p) => a.priority = Some(p),
                None => {
                    sink.at(&v.span, format!("unknown priority {text:?}; use one of {}", Priority::NAMES.join(", ")))
                }
            }
        }
        ("state", Kind::Str(s)) => match TicketState::parse(s) {
            Some(TicketState::Merged) => {
                sink.at(&v.span, "state \"merged\" is only set by merging tickets; use another")
            }
            Some(st) => a.state = Some(st),
            None => sink.at(&v.span, format!("unknown state {s:?}; use one of new, open, pending, closed")),
        },
        ("owner", Kind::Str(s)) => match address(s) {
            Some(addr) => a.owner = Some(addr),
            None => sink.at(&v.span, format!("owner {s:?} is not a mail address; write e.g. \"agent@example.com\"")),
        },
        ("auto_reply", Kind::Bool(b)) => a.auto_reply = Some(if *b { AutoReply::On } else { AutoReply::Off }),
        ("auto_reply", Kind::Str(t)) => {
            a.auto_reply = template(t, v, sink, vocab, "auto_reply").map(|t| AutoReply::Template(t.to_string()));
        }
        ("reject", Kind::Str(t)) => a.reject = template(t, v, sink, vocab, "reject").map(str::to_string),
        ("spam", Kind::Bool(b)) => a.spam = Some(*b),
        ("stop", Kind::Bool(b)) => a.stop = *b,
        ("notify", Kind::Str(_) | Kind::Array(_)) => {
            for item in one_or_many(v) {
                match item.as_str().and_then(address) {
                    Some(addr) if !a.notify.contains(&addr) => a.notify.push(addr),
                    Some(_) => {}
                    None => sink.at(&item.span, "notify entries must be mail addresses, e.g. \"lead@example.com\""),
                }
            }
        }
        ("tags", Kind::Str(_) | Kind::Array(_)) => {
            for item in one_or_many(v) {
                match item.as_str() {
                    Some(s) => a.tags.extend(tag(s, &item.span, sink, caps)),
                    None => sink.at(&item.span, format!("tags must be strings, found {}", item.type_name())),
                }
            }
        }
        ("queue" | "state" | "owner" | "reject", _) => want(sink, "a string"),
        ("priority", _) => want(sink, "a string such as \"high\""),
        ("auto_reply", _) => want(sink, "true, false or a template name"),
        ("spam" | "stop", _) => want(sink, "true or false"),
        ("notify" | "tags", _) => want(sink, "a list of strings"),
        (key, _) => sink.at(&e.key_span, unknown_key(key, "[rule.then]", &ACTION_KEYS)),
    }
}

fn v_int(v: &Node) -> i64 {
    match v.kind {
        Kind::Int(i) => i,
        _ => 0,
    }
}

fn one_or_many(v: &Node) -> &[Node] {
    match &v.kind {
        Kind::Array(items) => items,
        _ => std::slice::from_ref(v),
    }
}

fn address(s: &str) -> Option<String> {
    let s = s.trim();
    let (local, domain) = s.split_once('@')?;
    let ok = !local.is_empty() && domain.contains('.') && !s.contains(char::is_whitespace) && !domain.contains('@');
    ok.then(|| s.to_string())
}

fn template<'t>(t: &'t str, v: &Node, sink: &mut Sink<'_>, vocab: &Vocabulary, key: &str) -> Option<&'t str> {
    if vocab.templates.iter().any(|k| k == t) {
        return Some(t);
    }
    let known: Vec<&str> = vocab.templates.iter().map(String::as_str).collect();
    let hint = super::error::suggest(t, &known).map(|s| format!("did you mean \"{s}\"? ")).unwrap_or_default();
    let msg = format!(
        "unknown template {t:?} for `{key}`; {hint}known templates: {} (add it to the templates dir or fix the name)",
        known.join(", ")
    );
    sink.at(&v.span, msg);
    None
}

/// `"billing"` and `"+billing"` add, `"-triage"` removes; `${1}` / `${name}` insert a regex capture.
fn tag(s: &str, span: &Range<usize>, sink: &mut Sink<'_>, caps: &Captures<'_>) -> Option<Tag> {
    let (remove, body) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    if body.is_empty() || body.contains(char::is_whitespace) {
        sink.at(span, format!("tag {s:?} must be a non-empty word without spaces, e.g. \"billing\" or \"-triage\""));
        return None;
    }
    let mut pieces = Vec::new();
    let mut rest = body;
    while let Some(start) = rest.find("${") {
        if start > 0 {
            pieces.push(Piece::Lit(rest[..start].to_string()));
        }
        let Some(end) = rest[start..].find('}') else {
            sink.at(span, format!("tag {s:?} has an unclosed ${{; write ${{1}} or ${{name}}"));
            return None;
        };
        let inner = &rest[start + 2..start + end];
        pieces.push(capture_ref(inner, s, span, sink, caps)?);
        rest = &rest[start + end + 1..];
    }
    if !rest.is_empty() {
        pieces.push(Piece::Lit(rest.to_string()));
    }
    Some(Tag { remove, pieces })
}

fn capture_ref(inner: &str, s: &str, span: &Range<usize>, sink: &mut Sink<'_>, caps: &Captures<'_>) -> Option<Piece> {
    let origin = "captures come from regex conditions of this rule (not under `not`, not `not_regex`)";
    if let Ok(n) = inner.parse::<usize>() {
        if n >= 1 && n <= caps.groups {
            return Some(Piece::Group(n));
        }
        let have = match caps.groups {
            0 => "the rule's regexes have no capture groups".to_string(),
            g => format!("the rule's regexes have groups 1 to {g}"),
        };
        sink.at(span, format!("tag {s:?} uses ${{{n}}}, but {have}; {origin}"));
        return None;
    }
    if caps.names.iter().any(|n| n == inner) {
        return Some(Piece::Named(inner.to_string()));
    }
    let known = if caps.names.is_empty() { "none".to_string() } else { caps.names.join(", ") };
    sink.at(
        span,
        format!("tag {s:?} uses ${{{inner}}}, but no regex names that group (named groups: {known}); {origin}"),
    );
    None
}
