//! Conditions: what a rule's `[rule.when]` table compiles to. Compiling validates as it goes and reports every
//! problem with its position; evaluation lives in [`super::eval`].

use regex::{Regex, RegexBuilder};

use super::Vocabulary;
use super::error::{Sink, suggest, unknown_key};
use super::value::{Entry, Kind, Node};
use crate::model::Classification;

/// Compiled regexes may use at most this much memory; a pattern over it is a validation error, not a slow mail.
pub const REGEX_SIZE_LIMIT: usize = 1 << 20;

#[derive(Debug)]
pub(crate) enum Cond {
    All(Vec<Cond>),
    Any(Vec<Cond>),
    Not(Box<Cond>),
    Text(Box<TextCond>),
    Size { greater_than: Option<u64>, less_than: Option<u64> },
    HasAttachment(bool),
    Followup(bool),
    HeaderExists { name: String, exists: bool },
}

/// The parts of a mail a text condition can look at. Some have several values (recipients, headers of one name,
/// attachments): a positive operator holds when any value matches, a negated one when none does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Field {
    From,
    FromDomain,
    FromName,
    Recipient,
    Subject,
    Body,
    Header(String),
    Classification,
    AttachmentType,
    AttachmentName,
    AttachmentExt,
    Queue,
}

#[derive(Debug)]
pub(crate) enum Matcher {
    Equals(String),
    Contains(String),
    StartsWith(String),
    EndsWith(String),
    In(Vec<String>),
    Regex(Regex),
    Glob(Regex),
}

#[derive(Debug)]
pub(crate) struct TextCond {
    pub field: Field,
    pub matcher: Matcher,
    pub negate: bool,
    pub case_sensitive: bool,
    /// The operator as written (`not_contains`), and its operand as written, for explanations.
    pub op: &'static str,
    pub literal: String,
    /// A positive regex outside any `not`: its captures feed `${…}` in tags.
    pub capture: bool,
}

const TEXT_FIELDS: [(&str, Field); 11] = [
    ("from", Field::From),
    ("from_domain", Field::FromDomain),
    ("from_name", Field::FromName),
    ("recipient", Field::Recipient),
    ("subject", Field::Subject),
    ("body", Field::Body),
    ("classification", Field::Classification),
    ("attachment_type", Field::AttachmentType),
    ("attachment_name", Field::AttachmentName),
    ("attachment_ext", Field::AttachmentExt),
    ("queue", Field::Queue),
];

pub(crate) const CONDITION_KEYS: [&str; 18] = [
    "from",
    "from_domain",
    "from_name",
    "recipient",
    "subject",
    "body",
    "classification",
    "attachment_type",
    "attachment_name",
    "attachment_ext",
    "queue",
    "header",
    "size",
    "has_attachment",
    "followup",
    "all",
    "any",
    "not",
];

const OPS: [&str; 14] = [
    "equals",
    "contains",
    "starts_with",
    "ends_with",
    "regex",
    "glob",
    "in",
    "not_equals",
    "not_contains",
    "not_starts_with",
    "not_ends_with",
    "not_regex",
    "not_glob",
    "not_in",
];

impl Field {
    pub fn label(&self) -> String {
        match self {
            Field::Header(name) => format!("header {name:?}"),
            other => TEXT_FIELDS.iter().find(|(_, f)| f == other).map_or("?", |(k, _)| k).to_string(),
        }
    }
}

/// Compiles the conditions of one rule, remembering what its tags may refer to.
pub(crate) struct CondCompiler<'s, 'a> {
    pub sink: &'s mut Sink<'a>,
    pub vocab: &'s Vocabulary,
    /// Set when a `followup` condition appears anywhere: the rule then also runs for follow-ups.
    pub mentions_followup: bool,
    /// Highest numbered group and all named groups of the capturing regexes.
    pub groups: usize,
    pub group_names: Vec<String>,
    /// How many `not`s enclose the condition being compiled.
    negated: usize,
}

impl<'s, 'a> CondCompiler<'s, 'a> {
    pub fn new(sink: &'s mut Sink<'a>, vocab: &'s Vocabulary) -> Self {
        CondCompiler { sink, vocab, mentions_followup: false, groups: 0, group_names: Vec::new(), negated: 0 }
    }

    /// A table of conditions, all of which must hold. `place` names it in messages.
    pub fn table(&mut self, entries: &[Entry], place: &str) -> Cond {
        Cond::All(entries.iter().filter_map(|e| self.entry(e, place)).collect())
    }

    fn entry(&mut self, e: &Entry, place: &str) -> Option<Cond> {
        let v = &e.value;
        match e.key.as_str() {
            "all" | "any" => {
                let list = self.list_of_tables(e)?;
                Some(if e.key == "all" { Cond::All(list) } else { Cond::Any(list) })
            }
            "not" => {
                let t = self.nonempty_table(v, "not = { subject = { contains = \"x\" } }")?;
                self.negated += 1;
                let inner = self.table(t, "a `not` table");
                self.negated -= 1;
                Some(Cond::Not(Box::new(inner)))
            }
            "size" => self.size(v),
            "has_attachment" => self.bool(v, "has_attachment").map(Cond::HasAttachment),
            "followup" => {
                self.mentions_followup = true;
                self.bool(v, "followup").map(Cond::Followup)
            }
            "header" => self.header(v),
            key => match TEXT_FIELDS.iter().find(|(k, _)| *k == key) {
                Some((_, field)) => self.text(field.clone(), v, &[]),
                None => {
                    self.sink.at(&e.key_span, unknown_key(key, place, &CONDITION_KEYS));
                    None
                }
            },
        }
    }

    fn list_of_tables(&mut self, e: &Entry) -> Option<Vec<Cond>> {
        let example =
            format!("{} = [{{ from_domain = \"a.example\" }}, {{ subject = {{ contains = \"x\" }} }}]", e.key);
        let Kind::Array(items) = &e.value.kind else {
            self.sink.at(&e.value.span, format!("`{}` needs a list of condition tables, e.g. {example}", e.key));
            return None;
        };
        if items.is_empty() {
            self.sink.at(&e.value.span, format!("empty `{}` list; add conditions, e.g. {example}", e.key));
            return None;
        }
        let place = format!("an `{}` entry", e.key);
        let conds = items.iter().filter_map(|item| self.nonempty_table(item, &example).map(|t| self.table(t, &place)));
        Some(conds.collect())
    }

    fn nonempty_table<'n>(&mut self, v: &'n Node, example: &str) -> Option<&'n [Entry]> {
        match v.as_table() {
            Some([]) => self.sink.at(&v.span, format!("empty condition table; write e.g. {example}")),
            Some(t) => return Some(t),
            None => self
                .sink
                .at(&v.span, format!("expected a table of conditions, found {}; e.g. {example}", v.type_name())),
        }
        None
    }

    fn bool(&mut self, v: &Node, key: &str) -> Option<bool> {
        let b = v.as_bool();
        if b.is_none() {
            self.sink.at(&v.span, format!("`{key}` must be true or false, found {}", v.type_name()));
        }
        b
    }

    fn size(&mut self, v: &Node) -> Option<Cond> {
        const KEYS: [&str; 2] = ["greater_than", "less_than"];
        let Some(t) = v.as_table() else {
            self.sink.at(
                &v.span,
                format!("`size` needs a table, e.g. size = {{ greater_than = \"5MB\" }}; found {}", v.type_name()),
            );
            return None;
        };
        let (mut gt, mut lt, mut ok) = (None, None, true);
        for e in t {
            let slot = match e.key.as_str() {
                "greater_than" => &mut gt,
                "less_than" => &mut lt,
                k => {
                    self.sink.at(&e.key_span, unknown_key(k, "`size`", &KEYS));
                    ok = false;
                    continue;
                }
            };
            match parse_size(&e.value) {
                Ok(n) => *slot = Some(n),
                Err(msg) => {
                    self.sink.at(&e.value.span, msg);
                    ok = false;
                }
            }
        }
        if ok && gt.is_none() && lt.is_none() {
            self.sink.at(&v.span, "`size` needs greater_than and/or less_than, e.g. { greater_than = \"5MB\" }");
            return None;
        }
        if let (Some(g), Some(l)) = (gt, lt)
            && g.saturating_add(1) >= l
        {
            self.sink
                .at(&v.span, format!("size greater than {g} and less than {l} bytes never matches; fix the bounds"));
            return None;
        }
        ok.then_some(Cond::Size { greater_than: gt, less_than: lt })
    }

    fn header(&mut self, v: &Node) -> Option<Cond> {
        let example = "header = { name = \"X-Spam-Flag\", equals = \"YES\" }";
        let Some(t) = v.as_table() else {
            self.sink.at(&v.span, format!("`header` needs a table, e.g. {example}; found {}", v.type_name()));
            return None;
        };
        let Some(name_entry) = t.iter().find(|e| e.key == "name") else {
            self.sink.at(&v.span, format!("`header` needs the header's name, e.g. {example}"));
            return None;
        };
        let name = match name_entry.value.as_str() {
            Some(n) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_graphic() && b != b':') => n.to_string(),
            _ => {
                let msg = "header name must be a header field name without the colon, e.g. \"X-Spam-Flag\"";
                self.sink.at(&name_entry.value.span, msg);
                return None;
            }
        };
        if let Some(exists) = t.iter().find(|e| e.key == "exists") {
            if let Some(other) = t.iter().find(|e| e.key != "name" && e.key != "exists") {
                self.sink.at(&other.key_span, "`exists` cannot be combined with an operator; use two conditions");
                return None;
            }
            let exists = self.bool(&exists.value, "exists")?;
            return Some(Cond::HeaderExists { name, exists });
        }
        self.text(Field::Header(name), v, &["name", "exists"])
    }

    /// A text condition: `"x"` (equals), `["x", "y"]` (in), or `{ op = …, case_sensitive = … }`.
    /// `extra` are further keys the table may hold (the header's `name`).
    fn text(&mut self, field: Field, v: &Node, extra: &[&str]) -> Option<Cond> {
        let (op, operand, cs) = match &v.kind {
            Kind::Str(_) => ("equals", v, false),
            Kind::Array(_) => ("in", v, false),
            Kind::Table(t) => self.op_table(&field, v, t, extra)?,
            _ => {
                let msg = format!(
                    "`{}` needs a string, a list of strings or a table like {{ contains = \"x\" }}; found {}",
                    field.label(),
                    v.type_name()
                );
                self.sink.at(&v.span, msg);
                return None;
            }
        };
        self.build(field, op, operand, cs).map(|c| Cond::Text(Box::new(c)))
    }

    fn op_table<'n>(
        &mut self,
        field: &Field,
        v: &'n Node,
        t: &'n [Entry],
        extra: &[&str],
    ) -> Option<(&'static str, &'n Node, bool)> {
        let (mut op, mut cs, mut ok) = (None, false, true);
        for e in t {
            if let Some(o) = OPS.iter().find(|o| **o == e.key) {
                if op.is_some() {
                    let msg = "only one operator per condition; combine several with all = [{ … }, { … }]";
                    self.sink.at(&e.key_span, msg);
                    ok = false;
                }
                op = Some((*o, &e.value));
            } else if e.key == "case_sensitive" {
                cs = self.bool(&e.value, "case_sensitive").unwrap_or_else(|| {
                    ok = false;
                    false
                });
            } else if !extra.contains(&e.key.as_str()) {
                let mut known: Vec<&str> = OPS.to_vec();
                known.push("case_sensitive");
                known.extend_from_slice(extra);
                self.sink.at(&e.key_span, unknown_key(&e.key, &format!("the `{}` condition", field.label()), &known));
                ok = false;
            }
        }
        match op {
            Some((op, operand)) if ok => Some((op, operand, cs)),
            Some(_) => None,
            None => {
                if ok {
                    let msg = format!("`{}` needs an operator: one of {}", field.label(), OPS.join(", "));
                    self.sink.at(&v.span, msg);
                }
                None
            }
        }
    }

    fn build(&mut self, field: Field, op: &'static str, v: &Node, cs: bool) -> Option<TextCond> {
        let negate = op.starts_with("not_");
        let base = op.trim_start_matches("not_");
        let fold = |s: &str| if cs { s.to_string() } else { s.to_lowercase() };
        let matcher = if base == "in" {
            let list = self.string_list(v, op)?;
            for (s, span) in &list {
                self.check_literal(&field, s, span)?;
            }
            Matcher::In(list.iter().map(|(s, _)| fold(s)).collect())
        } else {
            let Some(s) = v.as_str() else {
                self.sink.at(&v.span, format!("`{op}` needs a string, found {}", v.type_name()));
                return None;
            };
            if s.is_empty() && base != "equals" {
                self.sink.at(&v.span, format!("`{op}` with an empty string is always true; give some text"));
                return None;
            }
            if base == "equals" {
                self.check_literal(&field, s, &v.span)?;
            }
            match base {
                "equals" => Matcher::Equals(fold(s)),
                "contains" => Matcher::Contains(fold(s)),
                "starts_with" => Matcher::StartsWith(fold(s)),
                "ends_with" => Matcher::EndsWith(fold(s)),
                "regex" => Matcher::Regex(self.regex(s, cs, v, !negate)?),
                _ => match simple_glob(s) {
                    Some(m) => m(fold(s.trim_matches('*'))),
                    None => Matcher::Glob(self.regex(&glob_to_regex(s), cs, v, false)?),
                },
            }
        };
        let capture = base == "regex" && !negate && self.negated == 0;
        let literal = match &v.kind {
            Kind::Str(s) => format!("\"{s}\""),
            _ => format!("[{}]", self.string_list_quiet(v).join(", ")),
        };
        Some(TextCond { field, matcher, negate, case_sensitive: cs, op, literal, capture })
    }

    fn regex(&mut self, pattern: &str, cs: bool, v: &Node, may_capture: bool) -> Option<Regex> {
        match RegexBuilder::new(pattern).case_insensitive(!cs).size_limit(REGEX_SIZE_LIMIT).build() {
            Ok(re) => {
                if may_capture && self.negated == 0 {
                    self.groups = self.groups.max(re.captures_len() - 1);
                    self.group_names.extend(re.capture_names().flatten().map(str::to_string));
                }
                Some(re)
            }
            Err(e) => {
                self.sink.at(&v.span, regex_message(&e));
                None
            }
        }
    }

    fn string_list<'n>(&mut self, v: &'n Node, op: &str) -> Option<Vec<(&'n str, std::ops::Range<usize>)>> {
        let items = match &v.kind {
            Kind::Array(items) if !items.is_empty() => items,
            _ => {
                self.sink.at(&v.span, format!("`{op}` needs a non-empty list of strings, e.g. [\"a\", \"b\"]"));
                return None;
            }
        };
        let mut out = Vec::new();
        for item in items {
            match item.as_str() {
                Some(s) => out.push((s, item.span.clone())),
                None => {
                    self.sink.at(&item.span, format!("`{op}` list items must be strings, found {}", item.type_name()))
                }
            }
        }
        (out.len() == items.len()).then_some(out)
    }

    fn string_list_quiet(&self, v: &Node) -> Vec<String> {
        match &v.kind {
            Kind::Array(items) => items.iter().filter_map(Node::as_str).map(|s| format!("\"{s}\"")).collect(),
            _ => Vec::new(),
        }
    }

    /// Exact values of fields with a closed vocabulary must be known: a typo would silently never match.
    fn check_literal(&mut self, field: &Field, s: &str, span: &std::ops::Range<usize>) -> Option<()> {
        match field {
            Field::Classification if Classification::parse(&s.to_ascii_lowercase()).is_none() => {
                let msg = format!("unknown classification {s:?}; use one of human, auto-reply, bounce, list");
                self.sink.at(span, msg);
                None
            }
            Field::Queue if !self.vocab.queues.iter().any(|q| q.eq_ignore_ascii_case(s)) => {
                let msg = unknown_queue(s, &self.vocab.queues);
                self.sink.at(span, msg);
                None
            }
            _ => Some(()),
        }
    }
}

pub(crate) fn unknown_queue(name: &str, queues: &[String]) -> String {
    let known: Vec<&str> = queues.iter().map(String::as_str).collect();
    let hint = suggest(name, &known).map(|s| format!("did you mean \"{s}\"? ")).unwrap_or_default();
    format!(
        "unknown queue {name:?}; {hint}known queues: {} (add a [[queues]] entry in postdesk.toml or fix the spelling)",
        known.join(", ")
    )
}

/// regex's syntax errors span several lines (pattern, caret, message); keep the message.
fn regex_message(e: &regex::Error) -> String {
    match e {
        regex::Error::Syntax(s) => {
            let what = s.lines().rev().find_map(|l| l.trim().strip_prefix("error:")).unwrap_or(s).trim();
            format!(
                "invalid regex: {what}; fix the pattern (in TOML, write '…' literal strings to avoid doubling backslashes)"
            )
        }
        regex::Error::CompiledTooBig(limit) => {
            format!("regex is too large once compiled (limit {limit} bytes); simplify it or split it into conditions")
        }
        other => format!("invalid regex: {other}"),
    }
}

/// Globs of the shapes `x`, `x*`, `*x`, `*x*` need no regex: they are equals, starts_with, ends_with, contains.
fn simple_glob(glob: &str) -> Option<fn(String) -> Matcher> {
    let inner = glob.trim_matches('*');
    if inner.is_empty() || inner.contains(['*', '?']) || glob.len() - inner.len() > 2 {
        return None;
    }
    Some(match (glob.starts_with('*'), glob.ends_with('*')) {
        (false, false) => Matcher::Equals,
        (false, true) => Matcher::StartsWith,
        (true, false) => Matcher::EndsWith,
        (true, true) => Matcher::Contains,
    })
}

/// `*` is any run of characters, `?` one character; the whole value must match.
fn glob_to_regex(glob: &str) -> String {
    let mut re = String::from("^(?s:");
    let mut buf = [0u8; 4];
    for c in glob.chars() {
        match c {
            '*' => re.push_str(".*"),
            '?' => re.push('.'),
            c => re.push_str(&regex::escape(c.encode_utf8(&mut buf))),
        }
    }
    re.push_str(")$");
    re
}

/// A byte count: an integer, or a string such as "5MB", "512 KB", "1GiB" (units are powers of 1024).
pub(crate) fn parse_size(v: &Node) -> Result<u64, String> {
    let bad = |what: &str| format!("{what} is not a size; write e.g. \"5MB\", \"512KB\" or 1048576 (bytes)");
    match &v.kind {
        Kind::Int(n) => u64::try_from(*n).map_err(|_| bad(&n.to_string())),
        Kind::Str(s) => {
            let t = s.trim();
            let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
            let (digits, unit) = t.split_at(split);
            let n: u64 = digits.parse().map_err(|_| bad(&format!("{s:?}")))?;
            let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
                "" | "b" => 1,
                "k" | "kb" | "kib" => 1 << 10,
                "m" | "mb" | "mib" => 1 << 20,
                "g" | "gb" | "gib" => 1 << 30,
                _ => return Err(bad(&format!("{s:?}"))),
            };
            n.checked_mul(mult).ok_or_else(|| bad(&format!("{s:?}")))
        }
        _ => Err(bad(v.type_name())),
    }
}
