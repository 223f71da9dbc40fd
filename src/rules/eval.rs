//! Evaluating conditions against one mail. A [`View`] is built once per mail and shared by every rule: it holds
//! the values conditions look at, and lowercases each one at most once, on first use, so that a thousand
//! case-insensitive rules cost one lowercase copy of the subject, not a thousand.

use std::borrow::Cow;
use std::cell::OnceCell;

use regex::Captures;

use super::RouteContext;
use super::cond::{Cond, Field, Matcher, TextCond};
use crate::model::InboundMail;

pub(crate) struct Val<'m> {
    pub orig: &'m str,
    lower: OnceCell<Cow<'m, str>>,
}

impl<'m> Val<'m> {
    fn new(orig: &'m str) -> Self {
        Val { orig, lower: OnceCell::new() }
    }

    fn lower(&self) -> &str {
        self.lower.get_or_init(|| {
            if self.orig.bytes().any(|b| b.is_ascii_uppercase() || b >= 0x80) {
                Cow::Owned(self.orig.to_lowercase())
            } else {
                Cow::Borrowed(self.orig)
            }
        })
    }
}

pub(crate) struct View<'m> {
    from: Option<Val<'m>>,
    from_domain: Option<Val<'m>>,
    from_name: Option<Val<'m>>,
    recipients: Vec<Val<'m>>,
    subject: Val<'m>,
    body: Val<'m>,
    headers: Vec<(&'m str, Val<'m>)>,
    classification: Val<'m>,
    attachment_types: Vec<Val<'m>>,
    attachment_names: Vec<Val<'m>>,
    attachment_exts: Vec<Val<'m>>,
    queue: Option<Val<'m>>,
    size: u64,
    pub is_followup: bool,
}

impl<'m> View<'m> {
    /// `body_limit`: `body` conditions see only the first this many bytes (cut back to a character boundary).
    pub fn new(mail: &'m InboundMail, ctx: &RouteContext<'m>, body_limit: usize) -> Self {
        let from = mail.from.as_ref();
        let names = mail.attachments.iter().filter_map(|a| a.filename.as_deref());
        View {
            from: from.map(|a| Val::new(&a.email)),
            from_domain: from.map(|a| Val::new(a.domain())),
            from_name: from.and_then(|a| a.name.as_deref()).map(Val::new),
            recipients: (mail.to.iter().chain(&mail.cc).map(|a| a.email.as_str()))
                .chain(mail.delivered_to.iter().map(|a| a.trim()))
                .map(Val::new)
                .collect(),
            subject: Val::new(&mail.subject),
            body: Val::new(&mail.visible_text[..mail.visible_text.floor_char_boundary(body_limit)]),
            headers: mail.headers.iter().map(|h| (h.name.as_str(), Val::new(&h.value))).collect(),
            classification: Val::new(mail.classification.as_str()),
            attachment_types: mail.attachments.iter().map(|a| Val::new(&a.content_type)).collect(),
            attachment_names: names.clone().map(Val::new).collect(),
            attachment_exts: names.filter_map(|n| n.rsplit_once('.')).map(|(_, e)| Val::new(e)).collect(),
            queue: ctx.current_queue.map(Val::new),
            size: mail.size as u64,
            is_followup: ctx.is_followup,
        }
    }

    fn slice(&self, field: &Field) -> &[Val<'m>] {
        match field {
            Field::From => self.from.as_slice(),
            Field::FromDomain => self.from_domain.as_slice(),
            Field::FromName => self.from_name.as_slice(),
            Field::Recipient => &self.recipients,
            Field::Subject => std::slice::from_ref(&self.subject),
            Field::Body => std::slice::from_ref(&self.body),
            Field::Classification => std::slice::from_ref(&self.classification),
            Field::AttachmentType => &self.attachment_types,
            Field::AttachmentName => &self.attachment_names,
            Field::AttachmentExt => &self.attachment_exts,
            Field::Queue => self.queue.as_slice(),
            Field::Header(_) => &[],
        }
    }

    /// The first value of `field` for which `test` holds.
    fn find(&self, field: &Field, mut test: impl FnMut(&Val<'m>) -> bool) -> Option<&Val<'m>> {
        match field {
            Field::Header(name) => {
                self.headers.iter().filter(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v).find(|v| test(v))
            }
            other => self.slice(other).iter().find(|v| test(v)),
        }
    }

    fn has_header(&self, name: &str) -> bool {
        self.headers.iter().any(|(n, _)| n.eq_ignore_ascii_case(name))
    }

    /// What the field held, for "did not match" explanations.
    fn shown(&self, field: &Field) -> String {
        let mut values = Vec::new();
        self.find(field, |v| {
            values.push(v.orig);
            false
        });
        match values.as_slice() {
            [] => format!("no {}", field.label()),
            [one] => format!("{} is {}", field.label(), clip(one)),
            many => {
                let list: Vec<String> = many.iter().take(5).map(|v| clip(v)).collect();
                let more = if many.len() > 5 { ", …" } else { "" };
                format!("{}: {}{more}", field.label(), list.join(", "))
            }
        }
    }
}

/// A value quoted and cut to a readable length.
fn clip(s: &str) -> String {
    const MAX: usize = 60;
    match s.char_indices().nth(MAX) {
        Some((i, _)) => format!("{:?}…", &s[..i]),
        None => format!("{s:?}"),
    }
}

impl TextCond {
    fn test(&self, v: &Val<'_>) -> bool {
        let hay = || if self.case_sensitive { v.orig } else { v.lower() };
        match &self.matcher {
            Matcher::Equals(s) => hay() == s,
            Matcher::Contains(s) => hay().contains(s.as_str()),
            Matcher::StartsWith(s) => hay().starts_with(s.as_str()),
            Matcher::EndsWith(s) => hay().ends_with(s.as_str()),
            Matcher::In(list) => {
                let h = hay();
                list.iter().any(|s| s == h)
            }
            // Case-insensitivity is compiled into the regex, so captures keep the sender's spelling.
            Matcher::Regex(re) | Matcher::Glob(re) => re.is_match(v.orig),
        }
    }

    fn eval<'m>(&self, view: &View<'m>, caps: Option<&mut Vec<Captures<'m>>>) -> bool {
        let found = view.find(&self.field, |v| self.test(v)).map(|v| v.orig);
        if let (Some(orig), true, Some(caps), Matcher::Regex(re)) = (found, self.capture, caps, &self.matcher)
            && let Some(c) = re.captures(orig)
        {
            caps.push(c);
        }
        found.is_some() != self.negate
    }

    fn explain(&self, view: &View<'_>) -> (bool, String) {
        let found = view.find(&self.field, |v| self.test(v)).map(|v| v.orig);
        let desc = format!("{} {} {}", self.field.label(), self.op, self.literal);
        match (found, self.negate) {
            (Some(v), false) => (true, format!("{desc} matched {}", clip(v))),
            (None, false) => (false, format!("{desc} did not match ({})", view.shown(&self.field))),
            (Some(v), true) => (false, format!("{desc} did not hold: {} matches", clip(v))),
            (None, true) => (true, format!("{desc} held ({})", view.shown(&self.field))),
        }
    }
}

impl Cond {
    /// Whether the condition holds. With `caps`, the captures of matching regexes are appended in evaluation
    /// order; captures of branches that failed are dropped again.
    pub fn eval<'m>(&self, view: &View<'m>, mut caps: Option<&mut Vec<Captures<'m>>>) -> bool {
        match self {
            Cond::All(cs) => cs.iter().all(|c| c.eval(view, caps.as_deref_mut())),
            Cond::Any(cs) => cs.iter().any(|c| {
                let mark = caps.as_ref().map_or(0, |v| v.len());
                let ok = c.eval(view, caps.as_deref_mut());
                if !ok && let Some(v) = caps.as_deref_mut() {
                    v.truncate(mark);
                }
                ok
            }),
            Cond::Not(c) => !c.eval(view, None),
            Cond::Text(t) => t.eval(view, caps),
            Cond::Size { greater_than, less_than } => {
                greater_than.is_none_or(|g| view.size > g) && less_than.is_none_or(|l| view.size < l)
            }
            Cond::HasAttachment(b) => view.attachment_types.is_empty() != *b,
            Cond::Followup(b) => view.is_followup == *b,
            Cond::HeaderExists { name, exists } => view.has_header(name) == *exists,
        }
    }

    /// Like [`Cond::eval`], with the condition that decided the outcome, in words.
    pub fn explain(&self, view: &View<'_>) -> (bool, String) {
        match self {
            Cond::All(cs) if cs.is_empty() => (true, "no conditions: matches every mail".into()),
            Cond::All(cs) => {
                let mut held = Vec::new();
                for c in cs {
                    let (ok, why) = c.explain(view);
                    if !ok {
                        return (false, why);
                    }
                    held.push(why);
                }
                (true, held.join("; "))
            }
            Cond::Any(cs) => {
                let mut failed = Vec::new();
                for c in cs {
                    let (ok, why) = c.explain(view);
                    if ok {
                        return (true, why);
                    }
                    failed.push(why);
                }
                (false, format!("none of any [{}]", failed.join("; ")))
            }
            Cond::Not(c) => {
                let (ok, why) = c.explain(view);
                (!ok, format!("not ({why})"))
            }
            Cond::Text(t) => t.explain(view),
            Cond::Size { greater_than, less_than } => {
                let ok = self.eval(view, None);
                let mut bounds = Vec::new();
                bounds.extend(greater_than.map(|g| format!("greater_than {g}")));
                bounds.extend(less_than.map(|l| format!("less_than {l}")));
                let verdict = if ok { "matched" } else { "did not match" };
                (ok, format!("size {} {verdict} (mail is {} bytes)", bounds.join(" and "), view.size))
            }
            Cond::HasAttachment(b) => {
                let n = view.attachment_types.len();
                (self.eval(view, None), format!("has_attachment = {b} (mail has {n} attachments)"))
            }
            Cond::Followup(b) => {
                let kind = if view.is_followup { "a follow-up" } else { "a new ticket" };
                (self.eval(view, None), format!("followup = {b} (mail is {kind})"))
            }
            Cond::HeaderExists { name, exists } => {
                let has = if view.has_header(name) { "present" } else { "absent" };
                (self.eval(view, None), format!("header {name:?} exists = {exists} (header is {has})"))
            }
        }
    }
}
