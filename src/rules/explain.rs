//! `rules test`: what every rule made of one mail, and why the reply decision is what it is.

use std::fmt;

use serde::Serialize;

use super::eval::View;
use super::load::Rule;
use super::{AutoReply, Decision, RouteContext};
use crate::model::{Classification, InboundMail};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Explanation {
    pub rules: Vec<RuleVerdict>,
    pub decision: Decision,
    /// Why a reply is or is not sent, in words.
    pub reply_reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuleVerdict {
    pub file: String,
    pub name: String,
    pub matched: bool,
    /// Why the rule was not evaluated: "disabled", "follow-ups excluded …", "after stop by rule …".
    pub skipped: Option<String>,
    /// The condition that decided, e.g. `recipient ends_with "billing@" matched "billing@example.com"`.
    pub deciding: String,
}

pub(crate) fn explain(rules: &[Rule], mail: &InboundMail, ctx: &RouteContext<'_>, body_limit: usize) -> Explanation {
    let view = View::new(mail, ctx, body_limit);
    let mut decision = Decision::start(ctx);
    let mut caps = Vec::new();
    let mut stopped_by: Option<&str> = None;
    let mut setters = ReplySetters::default();
    let mut verdicts = Vec::with_capacity(rules.len());
    for rule in rules {
        let mut v = RuleVerdict {
            file: rule.file.clone(),
            name: rule.name.clone(),
            matched: false,
            skipped: None,
            deciding: String::new(),
        };
        if let Some(by) = stopped_by {
            v.skipped = Some(format!("after stop by rule {by:?}"));
        } else if !rule.enabled {
            v.skipped = Some("disabled (enabled = false)".into());
        } else if !rule.applies(ctx) {
            v.skipped = Some("follow-ups excluded (set followups = true to route replies too)".into());
        } else {
            (v.matched, v.deciding) = rule.when.explain(&view);
            if v.matched {
                caps.clear();
                if rule.uses_captures {
                    rule.when.eval(&view, Some(&mut caps));
                }
                decision.apply(rule, &caps);
                setters.note(rule);
                if rule.then.stop {
                    stopped_by = Some(&rule.name);
                }
            }
        }
        verdicts.push(v);
    }
    let reply_reason = setters.reason(&decision, mail);
    Explanation { rules: verdicts, decision, reply_reason }
}

/// The last rule to set each action that decides about replies.
#[derive(Default)]
struct ReplySetters<'r> {
    auto_reply: Option<&'r str>,
    reject: Option<&'r str>,
    spam: Option<&'r str>,
}

impl<'r> ReplySetters<'r> {
    fn note(&mut self, rule: &'r Rule) {
        let name = Some(rule.name.as_str());
        if rule.then.auto_reply.is_some() {
            self.auto_reply = name;
        }
        if rule.then.reject.is_some() {
            self.reject = name;
        }
        if rule.then.spam.is_some() {
            self.spam = name;
        }
    }

    fn reason(&self, d: &Decision, mail: &InboundMail) -> String {
        let by = |r: Option<&str>| format!("rule {:?}", r.unwrap_or("?"));
        if d.spam {
            return format!("no reply: {} marks the mail as spam, so it goes to quarantine", by(self.spam));
        }
        if let Some(t) = &d.reject {
            return format!("{} rejects the mail: template {t:?} is sent and no ticket is made", by(self.reject));
        }
        let automatic = mail.classification != Classification::Human;
        let note = if automatic {
            format!(
                "; note the mail is classified as {} ({}): RFC 3834 says automatic mail is never answered automatically",
                mail.classification.as_str(),
                mail.classification_reason.as_deref().unwrap_or("no reason recorded")
            )
        } else {
            String::new()
        };
        match &d.auto_reply {
            AutoReply::Default => format!("no rule set auto_reply: the daemon's default applies{note}"),
            AutoReply::Off => format!("{} turns the auto-reply off", by(self.auto_reply)),
            AutoReply::On => format!("{} turns the auto-reply on with the usual template{note}", by(self.auto_reply)),
            AutoReply::Template(t) => format!("{} auto-replies with template {t:?}{note}", by(self.auto_reply)),
        }
    }
}

impl fmt::Display for Explanation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "rules:")?;
        for v in &self.rules {
            let (mark, why) = match (&v.skipped, v.matched) {
                (Some(s), _) => ("skipped", s.as_str()),
                (None, true) => ("MATCHED", v.deciding.as_str()),
                (None, false) => ("no     ", v.deciding.as_str()),
            };
            writeln!(f, "  {mark} {} {:?}: {why}", v.file, v.name)?;
        }
        write!(f, "{}", self.decision)?;
        write!(f, "reply: {}", self.reply_reason)
    }
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let or_dash = |s: Option<&str>| s.unwrap_or("-").to_string();
        let list = |v: &[String]| if v.is_empty() { "-".to_string() } else { v.join(", ") };
        let mut tags: Vec<String> = self.tags_add.iter().map(|t| format!("+{t}")).collect();
        tags.extend(self.tags_remove.iter().map(|t| format!("-{t}")));
        let auto = match &self.auto_reply {
            AutoReply::Default => "default".to_string(),
            AutoReply::Off => "off".to_string(),
            AutoReply::On => "on".to_string(),
            AutoReply::Template(t) => format!("template {t:?}"),
        };
        let fired: Vec<String> = self.fired.iter().map(|r| format!("{} {:?}", r.file, r.name)).collect();
        writeln!(f, "decision:")?;
        // Queue, tags and owner may hold regex captures from the mail: one line each, control characters escaped.
        let line = crate::inert::line;
        writeln!(f, "  queue:      {}", line(&self.queue))?;
        writeln!(f, "  priority:   {}", or_dash(self.priority.map(|p| p.as_str())))?;
        writeln!(f, "  tags:       {}", line(&if tags.is_empty() { "-".into() } else { tags.join(" ") }))?;
        writeln!(f, "  owner:      {}", line(&or_dash(self.owner.as_deref())))?;
        writeln!(f, "  state:      {}", or_dash(self.state.map(|s| s.as_str())))?;
        writeln!(f, "  auto-reply: {auto}")?;
        writeln!(f, "  notify:     {}", line(&list(&self.notify)))?;
        writeln!(f, "  reject:     {}", or_dash(self.reject.as_deref()))?;
        writeln!(f, "  spam:       {}", if self.spam { "yes" } else { "no" })?;
        writeln!(f, "  fired:      {}", list(&fired))
    }
}
