//! The mail templates admins edit, in minijinja, all checked at load.
//!
//! Layout: `<dir>/<set>/<name>.txt` holds a `Subject: …` line, an empty line, then the text body; an optional
//! `<dir>/<set>/<name>.html` is an HTML alternative. The set `default` is required and must hold every name the
//! daemon sends ([`REQUIRED`]); other sets (one per queue, e.g. `billing/`) override single names and fall back to
//! `default` for the rest. An override brings its own HTML or none: HTML never mixes across sets.
//!
//! Mail content only ever enters as variables, and minijinja never evaluates a variable's value, so `{{ 7*7 }}` in a
//! customer's subject stays literal. Undefined variables are errors (strict mode), and every template is rendered at
//! load against a complete sample context and against one with the optional values (`agent`, `commands`,
//! `reply_hint`) unset, so a typo or an unguarded optional fails `postdesk check`, not a send.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};

use minijinja::{AutoEscape, Environment, ErrorKind, UndefinedBehavior};
use serde::Serialize;

pub const DEFAULT_SET: &str = "default";

/// The names the daemon renders itself; each must exist in the `default` set.
pub const REQUIRED: [&str; 6] =
    ["acknowledgement", "followup", "rejection", "notification", "bounce-notice", "transcript"];

/// Everything a template can use. Optional values are always present (as `none` when unset), so templates test them
/// with `{% if agent %}`.
#[derive(Debug, Clone, Serialize)]
pub struct TemplateContext {
    pub ticket: TicketInfo,
    pub customer: Person,
    /// The mail this message answers or reports on.
    pub article: ArticleInfo,
    /// Who the mail is from (the queue's address and name).
    pub sender: Person,
    pub site: Person,
    /// The agent a notification or transcript is addressed to, or who answered.
    pub agent: Option<Person>,
    /// For the transcript: each command found in an agent's mail and what became of it.
    pub commands: Option<Vec<CommandOutcome>>,
    /// A short line on how to answer, e.g. "Reply to this mail to answer Carol."
    pub reply_hint: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct TicketInfo {
    pub number: String,
    /// The ticket token as configured (`tickets.token_format`), e.g. `[Ticket#2026112310000012]`: put it in every
    /// subject, it is how replies find their ticket.
    pub token: String,
    pub subject: String,
    pub queue: String,
    pub state: String,
    pub priority: String,
}

/// A name (empty when unknown) and a mail address.
#[derive(Debug, Clone, Serialize)]
pub struct Person {
    pub name: String,
    pub address: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct ArticleInfo {
    pub subject: String,
    /// The full text, quotes included.
    pub text: String,
    /// The new text only: quotes and signatures removed.
    pub visible_text: String,
    /// The sender as displayed, e.g. `Carol Customer <carol@customer.test>`.
    pub from: String,
    /// Already formatted for display.
    pub date: String,
}

/// At most `max` bytes of `text` for quoting in a mail: cut at the last line break in the allowed part (or at a
/// character boundary when a single line is that long), then a line saying how much was left out.
pub fn excerpt(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let head = &text[..text.floor_char_boundary(max)];
    let head = match head.rfind('\n') {
        Some(nl) if nl >= head.len() / 2 => &head[..nl],
        _ => head,
    };
    format!("{}\n[… {} more bytes not shown]\n", head.trim_end(), text.len() - head.len())
}

#[derive(Debug, Clone, Serialize)]
pub struct CommandOutcome {
    /// The command line as written, e.g. `#assign agent2@example.com`.
    pub command: String,
    /// What happened, or why it was refused.
    pub outcome: String,
    pub ok: bool,
}

impl TemplateContext {
    /// A complete context with every optional value set: what templates are checked against at load, and what
    /// `postdesk check` can preview.
    pub fn sample() -> TemplateContext {
        let person = |name: &str, address: &str| Person { name: name.into(), address: address.into() };
        TemplateContext {
            ticket: TicketInfo {
                number: "2026112310000012".into(),
                token: "[Ticket#2026112310000012]".into(),
                subject: "Printer on fire".into(),
                queue: "support".into(),
                state: "open".into(),
                priority: "normal".into(),
            },
            customer: person("Carol Customer", "carol@customer.test"),
            article: ArticleInfo {
                subject: "Printer on fire".into(),
                text: "Hello,\nmy printer is on fire.\n\n> older quoted text\n".into(),
                visible_text: "Hello,\nmy printer is on fire.".into(),
                from: "Carol Customer <carol@customer.test>".into(),
                date: "Sun, 23 Nov 2025 10:00:00 +0000".into(),
            },
            sender: person("Example Support", "support@example.com"),
            site: person("Example Corp Support", "support@example.com"),
            agent: Some(person("Alice Agent", "alice@example.com")),
            commands: Some(vec![
                CommandOutcome { command: "#take".into(), outcome: "assigned to you".into(), ok: true },
                CommandOutcome {
                    command: "#queue nowhere".into(),
                    outcome: "no queue named \"nowhere\"".into(),
                    ok: false,
                },
            ]),
            reply_hint: Some("Reply to this mail to answer Carol Customer.".into()),
        }
    }

    fn sample_without_optionals() -> TemplateContext {
        TemplateContext { agent: None, commands: None, reply_hint: None, ..TemplateContext::sample() }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// One line: newlines in the rendered subject become spaces.
    pub subject: String,
    pub text: String,
    pub html: Option<String>,
}

/// One problem in the templates directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateError {
    pub path: PathBuf,
    pub line: Option<usize>,
    pub message: String,
}

impl fmt::Display for TemplateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{line}: {}", self.path.display(), self.message),
            None => write!(f, "{}: {}", self.path.display(), self.message),
        }
    }
}

/// Every problem found at load, one per line when displayed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateErrors(pub Vec<TemplateError>);

impl fmt::Display for TemplateErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        crate::write_lines(f, &self.0)
    }
}

impl std::error::Error for TemplateErrors {}

#[derive(Debug, Clone, thiserror::Error)]
pub enum RenderError {
    #[error("no template \"{name}\" in set \"{set}\" or in \"default\"")]
    Unknown { set: String, name: String },
    #[error("{0}")]
    Failed(TemplateError),
}

/// Where a compiled template came from, to turn minijinja's (name, line) into the admin's (file, line).
#[derive(Debug, Clone)]
struct Origin {
    path: PathBuf,
    /// Lines before the template's first line in the file: 2 for a body after `Subject:` and the empty line.
    line_offset: usize,
    source: String,
}

/// The loaded templates. Immutable and `Send + Sync`: reload by loading anew and swapping.
pub struct Templates {
    env: Environment<'static>,
    /// Set -> names it defines -> whether it has an HTML part.
    sets: BTreeMap<String, BTreeMap<String, bool>>,
    origins: HashMap<String, Origin>,
}

impl fmt::Debug for Templates {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Templates").field("sets", &self.sets).finish_non_exhaustive()
    }
}

impl Templates {
    /// Loads and checks every template under `dir`; all problems are reported together.
    pub fn load(dir: &Path) -> Result<Templates, TemplateErrors> {
        let mut errors = Vec::new();
        let mut templates = Templates { env: new_environment(), sets: BTreeMap::new(), origins: HashMap::new() };
        let set_dirs = match list_sets(dir) {
            Ok(s) => s,
            Err(e) => return Err(TemplateErrors(vec![e])),
        };
        if !set_dirs.iter().any(|s| s == DEFAULT_SET) {
            errors.push(error(dir.join(DEFAULT_SET), None, "missing: the \"default\" template set is required"));
        }
        for set in &set_dirs {
            templates.load_set(dir, set, &mut errors);
        }
        if let Some(default) = templates.sets.get(DEFAULT_SET) {
            for name in REQUIRED.iter().filter(|n| !default.contains_key(**n)) {
                let path = dir.join(DEFAULT_SET).join(format!("{name}.txt"));
                errors.push(error(path, None, "missing: the daemon sends this template; add it to the default set"));
            }
        }
        templates.check_render(&mut errors);
        errors.sort_by(|a, b| (&a.path, a.line).cmp(&(&b.path, b.line)));
        if errors.is_empty() { Ok(templates) } else { Err(TemplateErrors(errors)) }
    }

    /// Every template name available in any set.
    pub fn names(&self) -> Vec<String> {
        let all: BTreeSet<&String> = self.sets.values().flat_map(|names| names.keys()).collect();
        all.into_iter().cloned().collect()
    }

    pub fn sets(&self) -> Vec<String> {
        self.sets.keys().cloned().collect()
    }

    /// Renders `name` from `set`, falling back to `default` when the set (or the set itself) lacks it.
    pub fn render(&self, set: &str, name: &str, ctx: &TemplateContext) -> Result<Rendered, RenderError> {
        let found = [set, DEFAULT_SET]
            .into_iter()
            .find_map(|s| self.sets.get(s).and_then(|names| names.get(name)).map(|html| (s, *html)));
        let Some((set, has_html)) = found else {
            return Err(RenderError::Unknown { set: set.into(), name: name.into() });
        };
        let subject = self.render_one(&format!("{set}/{name}.txt#subject"), ctx)?;
        let text = self.render_one(&format!("{set}/{name}.txt"), ctx)?;
        let html = if has_html { Some(self.render_one(&format!("{set}/{name}.html"), ctx)?) } else { None };
        // Values come from mail: control characters in them are shown escaped, never sent (crate::inert).
        let inert = |s: String| crate::inert::text(&s).into_owned();
        Ok(Rendered { subject: super::message::one_line(&subject), text: inert(text), html: html.map(inert) })
    }

    fn render_one(&self, key: &str, ctx: &TemplateContext) -> Result<String, RenderError> {
        let result = self.env.get_template(key).and_then(|t| t.render(ctx));
        result.map_err(|e| RenderError::Failed(self.locate(key, &e)))
    }

    fn load_set(&mut self, dir: &Path, set: &str, errors: &mut Vec<TemplateError>) {
        let set_dir = dir.join(set);
        let mut files: Vec<(String, String)> = Vec::new();
        match std::fs::read_dir(&set_dir) {
            Ok(entries) => {
                for entry in entries.flatten() {
                    let file = entry.file_name().to_string_lossy().into_owned();
                    if file.starts_with('.') {
                        continue;
                    }
                    match file.rsplit_once('.') {
                        Some((stem, ext @ ("txt" | "html"))) if valid_name(stem) => {
                            files.push((stem.to_string(), ext.to_string()))
                        }
                        _ => errors.push(error(
                            set_dir.join(&file),
                            None,
                            "unexpected file: templates are NAME.txt (Subject line, empty line, body) or NAME.html, \
                             NAME of a-z, 0-9, '-', '_'",
                        )),
                    }
                }
            }
            Err(e) => errors.push(error(set_dir.clone(), None, &format!("cannot read: {e}"))),
        }
        files.sort();
        let mut names: BTreeMap<String, bool> = BTreeMap::new();
        for (name, _) in files.iter().filter(|(_, ext)| ext == "txt") {
            names.insert(name.clone(), false);
        }
        for (name, ext) in &files {
            let path = set_dir.join(format!("{name}.{ext}"));
            if ext == "html" {
                match names.get_mut(name) {
                    Some(has_html) => *has_html = true,
                    None => {
                        errors.push(error(
                            path,
                            None,
                            &format!("has no {name}.txt beside it; the text part is required"),
                        ));
                        continue;
                    }
                }
            }
            let source = match std::fs::read_to_string(&path) {
                Ok(s) => s.replace("\r\n", "\n"),
                Err(e) => {
                    errors.push(error(path, None, &format!("cannot read: {e}")));
                    continue;
                }
            };
            let key = format!("{set}/{name}.{ext}");
            let parts = if ext == "txt" {
                match split_subject(&source) {
                    Ok((subject, body)) => vec![(format!("{key}#subject"), subject, 0), (key, body, 2)],
                    Err((line, message)) => {
                        errors.push(error(path, Some(line), message));
                        continue;
                    }
                }
            } else {
                vec![(key, source, 0)]
            };
            for (key, source, line_offset) in parts {
                let origin = Origin { path: path.clone(), line_offset, source: source.clone() };
                self.origins.insert(key.clone(), origin);
                if let Err(e) = self.env.add_template_owned(key.clone(), source) {
                    errors.push(self.locate(&key, &e));
                }
            }
        }
        self.sets.insert(set.to_string(), names);
    }

    /// Renders every template that compiled against both sample contexts.
    fn check_render(&self, errors: &mut Vec<TemplateError>) {
        let full = TemplateContext::sample();
        let bare = TemplateContext::sample_without_optionals();
        let mut keys: Vec<&String> = self.origins.keys().filter(|k| self.env.get_template(k).is_ok()).collect();
        keys.sort();
        for key in keys {
            if let Err(RenderError::Failed(e)) = self.render_one(key, &full) {
                errors.push(e);
            } else if let Err(RenderError::Failed(mut e)) = self.render_one(key, &bare) {
                e.message.push_str(" (when agent, commands or reply_hint are unset; test them with {% if … %})");
                errors.push(e);
            }
        }
    }

    /// Turns a minijinja error about template `key` into file:line and a message quoting the failing expression.
    fn locate(&self, key: &str, e: &minijinja::Error) -> TemplateError {
        let name = e.name().unwrap_or(key);
        let origin = self.origins.get(name).or_else(|| self.origins.get(key));
        let line = e.line().map(|l| l + origin.map_or(0, |o| o.line_offset));
        let mut message = e.kind().to_string();
        let quoted = e.range().zip(origin).and_then(|(r, o)| o.source.get(r)).map(str::trim).filter(|s| !s.is_empty());
        if let Some(expr) = quoted.filter(|_| e.kind() == ErrorKind::UndefinedError) {
            message = format!("{message} '{expr}'");
        }
        if let Some(detail) = e.detail() {
            message = format!("{message}: {detail}");
        }
        let path = origin.map(|o| o.path.clone()).unwrap_or_else(|| PathBuf::from(name));
        TemplateError { path, line, message }
    }
}

fn new_environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_keep_trailing_newline(true);
    // Block tags on their own line leave no empty line behind: plain-text mail is whitespace-sensitive.
    env.set_trim_blocks(true);
    env.set_lstrip_blocks(true);
    env.set_auto_escape_callback(|name| if name.ends_with(".html") { AutoEscape::Html } else { AutoEscape::None });
    env.add_filter("quote", quote);
    env
}

/// `{{ article.visible_text | quote }}`: every line prefixed with `> `, as mail clients quote.
fn quote(text: String) -> String {
    text.trim_end_matches('\n')
        .lines()
        .map(|l| if l.is_empty() { ">".to_string() } else { format!("> {l}") })
        .collect::<Vec<_>>()
        .join("\n")
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        && !name.starts_with(['-', '_'])
}

fn list_sets(dir: &Path) -> Result<Vec<String>, TemplateError> {
    let entries = std::fs::read_dir(dir).map_err(|e| error(dir.into(), None, &format!("cannot read: {e}")))?;
    let mut sets: Vec<String> = entries
        .flatten()
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| !name.starts_with('.'))
        .collect();
    sets.sort();
    Ok(sets)
}

/// Splits a `.txt` template into the subject template (line 1) and the body (from line 3).
fn split_subject(source: &str) -> Result<(String, String), (usize, &'static str)> {
    let (first, rest) = source.split_once('\n').unwrap_or((source, ""));
    let subject = match first.split_once(':') {
        Some((key, value)) if key.eq_ignore_ascii_case("subject") => value.trim().to_string(),
        _ => return Err((1, "the first line must be \"Subject: …\"")),
    };
    let (second, body) = rest.split_once('\n').unwrap_or((rest, ""));
    if !second.trim().is_empty() {
        return Err((2, "the second line must be empty: it separates the Subject line from the body"));
    }
    Ok((subject, body.to_string()))
}

fn error(path: PathBuf, line: Option<usize>, message: &str) -> TemplateError {
    TemplateError { path, line, message: message.to_string() }
}

#[cfg(test)]
mod tests;
