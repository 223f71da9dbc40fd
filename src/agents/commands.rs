//! The commands at the top of an agent's reply, e.g.
//!
//! ```text
//! #note
//! #priority high
//! #tag +billing -new
//! Called the customer; the refund goes out tomorrow.
//! ```
//!
//! Grammar (on the reply's visible text, quotes already stripped; LF or CRLF):
//!
//! - The *leading block* is every line up to the first line that is neither blank nor a command line. Blank lines
//!   inside it are skipped. Everything from that first other line on, trimmed, is the body.
//! - A command line is, after leading whitespace, `#` immediately followed by an ASCII letter: `#word args…`. The
//!   word is case-insensitive. `# Heading` (hash, then a space), `#1` or a lone `#` are text and start the body, so
//!   a markdown heading or a numbered remark is never taken for a command.
//! - `#note` anywhere in the leading block makes the whole reply internal; it is not listed as a command.
//! - Any other `#word` in the leading block is listed, parsed or refused with the reason: an unknown word is refused
//!   ("unknown command #foo"), never treated as body, so a typo such as `#clsoe` is reported rather than mailed to
//!   the customer.
//! - A `#` line after the body has started is body text.
//!
//! | command | argument |
//! |---|---|
//! | `#close`, `#reopen`, `#take` | none |
//! | `#assign ADDRESS` | one address (`<…>` allowed), lowercased |
//! | `#queue NAME` | the rest of the line, may contain spaces |
//! | `#priority P` | a [`Priority`] name or number: `very-low`…`very-high` (also `very high`, `very_high`), `1`…`5` |
//! | `#tag +x -y z` | tags separated by spaces or commas; `+` or bare adds, `-` removes |
//! | `#merge NUMBER` | a valid ticket number (check digit included), optional leading `#` |
//! | `#pending N` | days, 1 to 365; `3`, `3d`, `3 days` |
//!
//! A refused command is never half-applied: the caller gets the reason to report back and should decide whether to
//! hold the whole reply (a refused `#close` usually means the agent expected something that did not happen).

use crate::model::Priority;
use crate::token;

/// One thing an agent asks of a ticket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Close,
    Reopen,
    /// Hand the ticket to the agent with this (lowercased) address.
    Assign(String),
    /// Assign the ticket to the agent who wrote the reply.
    Take,
    Queue(String),
    Priority(Priority),
    Tag {
        add: Vec<String>,
        remove: Vec<String>,
    },
    /// Merge this ticket into the ticket with this number.
    Merge(String),
    /// Set the ticket pending for this many days.
    Pending(u32),
}

/// A command line as written, with the outcome of parsing it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandLine {
    /// 1-based line number in the visible text, for the report back to the agent.
    pub line: usize,
    /// The line as written, trimmed.
    pub text: String,
    /// The command, or why it was refused (unknown command, bad argument).
    pub parsed: Result<Command, String>,
}

/// An agent's reply split into its commands and the text to send (or to store as a note).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AgentReply {
    /// `#note` was given: the body is internal and goes to no customer.
    pub note: bool,
    pub commands: Vec<CommandLine>,
    /// The text after the commands, trimmed; empty when the reply held only commands.
    pub body: String,
}

/// Splits the visible text of an agent's reply into commands and body. Never panics.
pub fn parse_agent_reply(visible_text: &str) -> AgentReply {
    let mut reply = AgentReply::default();
    let lines: Vec<&str> = visible_text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l)).collect();
    let mut body_start = lines.len();
    for (i, raw) in lines.iter().enumerate() {
        let line = raw.trim();
        if line.is_empty() {
            continue;
        }
        let Some((word, args)) = command_word(line) else {
            body_start = i;
            break;
        };
        if word.eq_ignore_ascii_case("note") {
            reply.note = true;
            if args.is_empty() {
                continue;
            }
        }
        reply.commands.push(CommandLine { line: i + 1, text: line.to_string(), parsed: parse_command(word, args) });
    }
    reply.body = lines[body_start..].join("\n").trim().to_string();
    reply
}

/// `#word rest` → (`word`, `rest` trimmed) when the line is a command line: `#` directly followed by a letter.
fn command_word(line: &str) -> Option<(&str, &str)> {
    let rest = line.strip_prefix('#')?;
    if !rest.starts_with(|c: char| c.is_ascii_alphabetic()) {
        return None;
    }
    let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
    Some((&rest[..end], rest[end..].trim()))
}

/// One command, `#word args`, parsed by the grammar above: also how the command line's `postdesk ticket close|…`
/// read their arguments, so both front ends accept and refuse exactly the same.
pub fn parse_command(word: &str, args: &str) -> Result<Command, String> {
    let name = word.to_ascii_lowercase();
    let bare = |command: Command| {
        if args.is_empty() { Ok(command) } else { Err(format!("#{name} takes no argument, got \"{args}\"")) }
    };
    match name.as_str() {
        "close" => bare(Command::Close),
        "reopen" => bare(Command::Reopen),
        "take" => bare(Command::Take),
        // Reached only with an argument: a bare #note is not a command. The reply is still a note (the flag is set
        // before this), so a mistaken argument never makes internal text public.
        "note" => Err(format!("#note takes no argument, got \"{args}\"; write the note below the commands")),
        "assign" => parse_address(args).map(Command::Assign).map_err(|e| format!("#assign: {e}")),
        "queue" if args.is_empty() => Err("#queue needs a queue name".to_string()),
        "queue" => Ok(Command::Queue(args.to_string())),
        "priority" => parse_priority(args).map(Command::Priority),
        "tag" => parse_tags(args),
        "merge" => parse_merge(args).map(Command::Merge),
        "pending" => parse_days(args).map(Command::Pending),
        _ => Err(format!("unknown command #{word}")),
    }
}

/// One address, `local@domain` with a dotted hostname-like domain; `<…>` removed, lowercased.
fn parse_address(args: &str) -> Result<String, String> {
    if args.is_empty() {
        return Err("needs an address".to_string());
    }
    let addr = args.strip_prefix('<').and_then(|a| a.strip_suffix('>')).unwrap_or(args);
    let bad = || Err(format!("\"{args}\" is not an address"));
    if addr.chars().any(|c| c.is_whitespace() || c.is_control() || "<>,;\"()[]\\".contains(c)) {
        return bad();
    }
    let Some((local, domain)) = addr.split_once('@') else { return bad() };
    let label_ok = |l: &str| {
        !l.is_empty() && !l.starts_with('-') && !l.ends_with('-') && l.chars().all(|c| c.is_alphanumeric() || c == '-')
    };
    if local.is_empty() || local.starts_with('.') || local.ends_with('.') || local.contains("..") {
        return bad();
    }
    if !domain.split('.').all(label_ok) {
        return bad();
    }
    Ok(addr.to_lowercase())
}

fn parse_priority(args: &str) -> Result<Priority, String> {
    let normalised = args.trim().to_ascii_lowercase().replace([' ', '_'], "-");
    Priority::parse(&normalised).ok_or_else(|| {
        let shown = if args.is_empty() { "nothing" } else { args };
        format!("#priority takes {} or 1 to 5, got {shown}", Priority::NAMES.join(", "))
    })
}

fn parse_tags(args: &str) -> Result<Command, String> {
    let (mut add, mut remove) = (Vec::new(), Vec::new());
    for word in args.split(|c: char| c.is_whitespace() || c == ',').filter(|w| !w.is_empty()) {
        let (list, tag) = match word.strip_prefix('-') {
            Some(tag) => (&mut remove, tag),
            None => (&mut add, word.strip_prefix('+').unwrap_or(word)),
        };
        if tag.is_empty() {
            return Err(format!("#tag: \"{word}\" names no tag"));
        }
        list.push(tag.to_string());
    }
    if add.is_empty() && remove.is_empty() {
        return Err("#tag needs tags: +add -remove (a bare tag is added)".to_string());
    }
    Ok(Command::Tag { add, remove })
}

/// A ticket number with a valid check digit: a typo must not merge into somebody else's ticket.
fn parse_merge(args: &str) -> Result<String, String> {
    let number = args.strip_prefix('#').unwrap_or(args);
    if token::is_valid_number(number) {
        Ok(number.to_string())
    } else if number.is_empty() {
        Err("#merge needs the number of the ticket to merge into".to_string())
    } else {
        Err(format!("#merge: \"{args}\" is not a valid ticket number"))
    }
}

fn parse_days(args: &str) -> Result<u32, String> {
    let lower = args.to_ascii_lowercase();
    let digits = ["days", "day", "d"].iter().find_map(|unit| lower.strip_suffix(unit)).unwrap_or(&lower).trim();
    match digits.parse::<u32>() {
        Ok(days @ 1..=365) => Ok(days),
        _ => Err(format!("#pending takes a number of days from 1 to 365, got \"{args}\"")),
    }
}

#[cfg(test)]
mod tests;
