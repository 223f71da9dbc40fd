//! Routing rules: load and validate the admin's rule files, then decide for each mail which queue, priority,
//! tags, owner, state and replies it gets. Pure: no I/O besides reading the rule files at load time.
//!
//! A [`RuleSet`] is compiled once per (re)load, regexes included, and shared behind an `Arc`; [`RuleSet::route`]
//! is a pure function of the rule set, the parsed mail and a [`RouteContext`].
//!
//! # The rule language
//! Files `*.toml` in the rules directory are read in file-name order (`10-spam.toml` before `50-billing.toml`);
//! each holds `[[rule]]` tables, evaluated in order:
//!
//! ```toml
//! [[rule]]
//! name = "billing by recipient"   # required, unique across all files
//! followups = false               # default: new tickets only (true also when a `followup` condition is used)
//! enabled = true                  # default
//! description = "free text"       # optional
//! [rule.when]                     # a table is an implicit `all`; no [rule.when] matches every mail
//! recipient = { ends_with = "billing@example.com" }   # any of To, Cc, Delivered-To
//! subject = { regex = 'invoice #(?P<invoice>\d+)' }
//! [rule.then]
//! queue = "billing"
//! priority = "high"               # very-low, low, normal, high, very-high
//! tags = ["billing", "+invoice-${invoice}", "-triage"]   # add ("x" or "+x") or remove ("-x")
//! stop = true                     # no later rule runs
//! ```
//!
//! Condition keys: `from` (sender address), `from_domain`, `from_name`, `recipient`, `subject`, `body` (the
//! visible new text, its first `limits.max_rule_body_bytes`: 64 KiB by default), `header = { name = "X-Spam-Flag", equals = "YES" }` (or `exists = true`), `classification`
//! (human, auto-reply, bounce, list), `attachment_type` (content type), `attachment_name`, `attachment_ext`,
//! `queue` (the ticket's current queue, for follow-ups), `has_attachment = true`, `followup = true`,
//! `size = { greater_than = "5MB", less_than = 1000 }` (units B, KB, MB, GB are powers of 1024), and the
//! combinators `all = [{…}, …]`, `any = [{…}, …]`, `not = {…}`, nestable.
//!
//! A text condition is `"x"` (equals), `["x", "y"]` (in), or a table with one operator: `equals`, `contains`,
//! `starts_with`, `ends_with`, `regex`, `glob` (`*`, `?`; whole value), `in` (a list), or a negation of any
//! (`not_contains`, …). Matching ignores case unless `case_sensitive = true`. Fields with several values
//! (recipients, headers of one name, attachments) match when any value matches; a negated operator holds when no
//! value matches, so it also holds when the field is absent.
//!
//! Actions: `queue`, `priority`, `tags`, `owner` (an address), `state` (new, open, pending, closed),
//! `auto_reply` (true, false or a template name), `notify` (extra addresses), `reject` (a template: refuse the
//! mail with it), `spam = true` (quarantine), `stop = true`. Later rules override earlier queue, priority, owner,
//! state, auto_reply, reject and spam; tags and notify accumulate. `${1}` or `${name}` in a tag insert a capture
//! of the rule's first regex condition that has it.

mod cond;
mod error;
mod eval;
mod explain;
mod load;
mod value;

use std::path::Path;

use serde::Serialize;

pub use cond::REGEX_SIZE_LIMIT;
pub use error::{RuleError, RuleErrors};
pub use explain::{Explanation, RuleVerdict};

use eval::View;
use load::{NameAt, Rule};

use crate::model::{InboundMail, Priority, TicketState};

/// The names rule files may refer to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Vocabulary {
    pub queues: Vec<String>,
    pub templates: Vec<String>,
}

/// A compiled, validated rule set. `Send + Sync`; share it behind an `Arc` and swap the `Arc` on reload.
#[derive(Debug)]
pub struct RuleSet {
    rules: Vec<Rule>,
    /// `body` conditions see at most this many bytes of the new text: matching cost stays bounded whatever the
    /// mail's size, and what decides routing is at the top of a mail.
    body_limit: usize,
}

/// [`RuleSet::body_limit`] unless the config says otherwise (`limits.max_rule_body_bytes`).
pub const DEFAULT_BODY_LIMIT: usize = 64 * 1024;

impl Default for RuleSet {
    fn default() -> Self {
        RuleSet { rules: Vec::new(), body_limit: DEFAULT_BODY_LIMIT }
    }
}

/// What routing needs to know beyond the mail itself.
#[derive(Debug, Clone, Copy)]
pub struct RouteContext<'a> {
    /// The mail answers an existing ticket.
    pub is_followup: bool,
    /// That ticket's queue.
    pub current_queue: Option<&'a str>,
    /// `tickets.default_queue`: where new tickets go when no rule sets a queue.
    pub default_queue: &'a str,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum AutoReply {
    /// No rule said: the daemon's own policy applies.
    #[default]
    Default,
    Off,
    /// Reply with the queue's usual template.
    On,
    Template(String),
}

/// What the rules decided for one mail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Decision {
    pub queue: String,
    pub priority: Option<Priority>,
    pub tags_add: Vec<String>,
    pub tags_remove: Vec<String>,
    pub owner: Option<String>,
    pub state: Option<TicketState>,
    pub auto_reply: AutoReply,
    pub notify: Vec<String>,
    /// Refuse the mail, answering with this template; no ticket is made.
    pub reject: Option<String>,
    /// Quarantine the mail as spam; no ticket, no reply.
    pub spam: bool,
    /// The rules whose actions were applied, in order.
    pub fired: Vec<FiredRule>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FiredRule {
    pub file: String,
    pub name: String,
}

impl RuleSet {
    pub fn empty() -> RuleSet {
        RuleSet::default()
    }

    /// Loads every `*.toml` file in `dir` in file-name order. All errors of all files are returned together.
    pub fn load_dir(dir: &Path, vocab: &Vocabulary) -> Result<RuleSet, RuleErrors> {
        let whole_file = |file: &Path, message: String| RuleError {
            file: file.to_path_buf(),
            line: 0,
            column: 0,
            rule: None,
            message,
        };
        let entries = std::fs::read_dir(dir)
            .map_err(|e| RuleErrors(vec![whole_file(dir, format!("cannot read the rules directory: {e}"))]))?;
        let mut files: Vec<(String, std::path::PathBuf)> = entries
            .filter_map(Result::ok)
            .filter_map(|e| Some((e.file_name().into_string().ok()?, e.path())))
            .filter(|(name, path)| name.ends_with(".toml") && !name.starts_with('.') && path.is_file())
            .collect();
        files.sort();
        let (mut rules, mut names, mut errors) = (Vec::new(), Vec::new(), Vec::new());
        for (name, path) in &files {
            match std::fs::read_to_string(path) {
                Ok(text) => compile(name, path, &text, vocab, &mut rules, &mut names, &mut errors),
                Err(e) => errors.push(whole_file(path, format!("cannot read rule file: {e}"))),
            }
        }
        if errors.is_empty() { Ok(RuleSet { rules, body_limit: DEFAULT_BODY_LIMIT }) } else { Err(RuleErrors(errors)) }
    }

    /// Compiles one file's text; `file_name` labels errors and fired rules.
    pub fn load_str(file_name: &str, text: &str, vocab: &Vocabulary) -> Result<RuleSet, RuleErrors> {
        let (mut rules, mut names, mut errors) = (Vec::new(), Vec::new(), Vec::new());
        compile(file_name, Path::new(file_name), text, vocab, &mut rules, &mut names, &mut errors);
        if errors.is_empty() { Ok(RuleSet { rules, body_limit: DEFAULT_BODY_LIMIT }) } else { Err(RuleErrors(errors)) }
    }

    /// Sets how many bytes of the body `body` conditions see.
    pub fn with_body_limit(mut self, bytes: usize) -> RuleSet {
        self.body_limit = bytes;
        self
    }

    pub fn len(&self) -> usize {
        self.rules.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// `(file, name)` of every rule, in evaluation order.
    pub fn rule_names(&self) -> impl Iterator<Item = (&str, &str)> {
        self.rules.iter().map(|r| (r.file.as_str(), r.name.as_str()))
    }

    /// Runs the rules over one mail. Allocates only for the per-mail view and for rules that fire.
    pub fn route(&self, mail: &InboundMail, ctx: &RouteContext<'_>) -> Decision {
        let view = View::new(mail, ctx, self.body_limit);
        let mut decision = Decision::start(ctx);
        let mut caps = Vec::new();
        for rule in self.rules.iter().filter(|r| r.applies(ctx)) {
            caps.clear();
            let collect = if rule.uses_captures { Some(&mut caps) } else { None };
            if rule.when.eval(&view, collect) {
                decision.apply(rule, &caps);
                if rule.then.stop {
                    break;
                }
            }
        }
        decision
    }

    /// Like [`RuleSet::route`], with a verdict for every rule and the reason for the reply decision.
    pub fn explain(&self, mail: &InboundMail, ctx: &RouteContext<'_>) -> Explanation {
        explain::explain(&self.rules, mail, ctx, self.body_limit)
    }
}

fn compile(
    label: &str,
    path: &Path,
    text: &str,
    vocab: &Vocabulary,
    rules: &mut Vec<Rule>,
    names: &mut Vec<NameAt>,
    errors: &mut Vec<RuleError>,
) {
    let mut sink = error::Sink::new(path, text);
    load::compile_file(label, &mut sink, vocab, rules, names);
    errors.append(&mut sink.errors);
}

impl Rule {
    fn applies(&self, ctx: &RouteContext<'_>) -> bool {
        self.enabled && (self.followups || !ctx.is_followup)
    }
}

impl Decision {
    /// Nothing decided yet: a follow-up stays in its ticket's queue, a new ticket goes to the default queue.
    fn start(ctx: &RouteContext<'_>) -> Decision {
        let queue = match (ctx.is_followup, ctx.current_queue) {
            (true, Some(q)) => q,
            _ => ctx.default_queue,
        };
        Decision {
            queue: queue.to_string(),
            priority: None,
            tags_add: Vec::new(),
            tags_remove: Vec::new(),
            owner: None,
            state: None,
            auto_reply: AutoReply::Default,
            notify: Vec::new(),
            reject: None,
            spam: false,
            fired: Vec::new(),
        }
    }

    fn apply(&mut self, rule: &Rule, caps: &[regex::Captures<'_>]) {
        let a = &rule.then;
        if let Some(q) = &a.queue {
            self.queue.clone_from(q);
        }
        self.priority = a.priority.or(self.priority);
        if let Some(o) = &a.owner {
            self.owner = Some(o.clone());
        }
        self.state = a.state.or(self.state);
        if let Some(r) = &a.auto_reply {
            self.auto_reply = r.clone();
        }
        for tag in &a.tags {
            let name = tag.render(caps);
            if name.is_empty() {
                continue;
            }
            let (into, from) = if tag.remove {
                (&mut self.tags_remove, &mut self.tags_add)
            } else {
                (&mut self.tags_add, &mut self.tags_remove)
            };
            from.retain(|t| *t != name);
            if !into.contains(&name) {
                into.push(name);
            }
        }
        for n in &a.notify {
            if !self.notify.contains(n) {
                self.notify.push(n.clone());
            }
        }
        if let Some(r) = &a.reject {
            self.reject = Some(r.clone());
        }
        self.spam = a.spam.unwrap_or(self.spam);
        self.fired.push(FiredRule { file: rule.file.clone(), name: rule.name.clone() });
    }
}

impl load::Tag {
    /// The tag with its `${…}` filled from the first capture that has the group; a group that did not
    /// participate in the match becomes empty. Whitespace in captured text becomes `-`: tags are single words.
    fn render(&self, caps: &[regex::Captures<'_>]) -> String {
        let mut out = String::new();
        for piece in &self.pieces {
            let captured = match piece {
                load::Piece::Lit(s) => {
                    out.push_str(s);
                    continue;
                }
                load::Piece::Group(n) => caps.iter().find_map(|c| c.get(*n)),
                load::Piece::Named(n) => caps.iter().find_map(|c| c.name(n)),
            };
            let text = captured.map_or("", |m| m.as_str().trim());
            out.extend(text.chars().map(|c| if c.is_whitespace() { '-' } else { c }));
        }
        out
    }
}

#[cfg(test)]
mod tests;
