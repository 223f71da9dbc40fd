//! Plain-text renderings for people: `ticket show`, `status`. Every value that came from mail goes through
//! [`crate::inert::line`] (one line, control characters escaped); bodies keep their lines (see [`crate::say_raw!`]).

use std::fmt::Write;

use crate::inert::line;
use crate::store::{OutboxCounts, ReplyBudget, StatusCounts, TicketDetail};

pub fn ticket_text(d: &TicketDetail) -> String {
    let t = &d.ticket;
    let mut out = String::new();
    let _ = writeln!(out, "Ticket {}  {}", t.number, line(&t.subject));
    let _ = writeln!(
        out,
        "  state {}  queue {}  priority {}  owner {}",
        t.state,
        t.queue,
        t.priority,
        line(t.owner.as_deref().unwrap_or("-"))
    );
    let customer = match &d.customer_name {
        Some(name) => format!("{} <{}>", line(name), line(&t.customer)),
        None => line(&t.customer).into_owned(),
    };
    let _ = writeln!(out, "  customer {customer}");
    if !d.tags.is_empty() {
        let _ = writeln!(out, "  tags {}", line(&d.tags.join(", ")));
    }
    if let Some(c) = &d.claimed_number {
        let _ =
            writeln!(out, "  subject named ticket {c}; the sender was not a party of it, so this ticket was opened");
    }
    if let Some(m) = &d.merged_into {
        let _ = writeln!(out, "  merged into {m}");
    }
    if !d.rules.is_empty() {
        let _ = writeln!(out, "  rules fired:");
        for r in &d.rules {
            let _ = writeln!(out, "    article {}: {} ({})", r.article_id, line(&r.rule), line(&r.file));
        }
    }
    for a in &d.articles {
        let _ = writeln!(out);
        let who = line(a.sender.as_deref().unwrap_or("(no sender)"));
        let kind = if a.internal { "note" } else { a.direction.as_str() };
        let _ = writeln!(out, "--- article {} [{kind}, {}] from {who}", a.id, a.classification);
        let _ = writeln!(out, "    Subject: {}", line(&a.subject));
        if let Some(id) = &a.message_id {
            let _ = writeln!(out, "    Message-ID: <{}>", line(id));
        }
        if let Some(d) = a.duplicate_of {
            let _ = writeln!(out, "    flagged: reuses the Message-ID of article {d} with different content");
        }
        for f in &a.attachments {
            let _ = writeln!(
                out,
                "    attachment: {} ({}, {} bytes) sha256 {}",
                line(f.filename.as_deref().unwrap_or("(unnamed)")),
                line(&f.content_type),
                f.size,
                &f.sha256[..f.sha256.len().min(12)]
            );
        }
        let _ = writeln!(out);
        // Lines of the body as they are; the control characters in them are escaped on output (`say_raw!`).
        for body_line in a.visible_text.lines() {
            let _ = writeln!(out, "    {}", crate::inert::text(body_line));
        }
    }
    if !d.history.is_empty() {
        let _ = writeln!(out, "\nhistory:");
        for h in &d.history {
            let _ = writeln!(out, "  {} {} {} {}", format_time(h.at), line(&h.actor), line(&h.event), line(&h.detail));
        }
    }
    out
}

pub fn status_text(s: &StatusCounts, outbox: &OutboxCounts, running: bool, now: i64) -> String {
    let mut out = String::new();
    if !running {
        let _ = writeln!(out, "daemon:      NOT RUNNING (no `postdesk run` holds the state directory)");
    }
    let fact = |key: &str| s.daemon.get(key).map(|f| (f.value.as_str(), f.updated_at));
    match fact("connected") {
        _ if !running => {}
        Some(("yes", at)) => {
            let _ = writeln!(out, "daemon:      connected since {} ({} ago)", format_time(at), ago(now - at));
        }
        Some((_, at)) => {
            let why = line(fact("last_error").map(|(v, _)| v).unwrap_or("unknown"));
            let _ = writeln!(out, "daemon:      NOT connected since {} ({}): {why}", format_time(at), ago(now - at));
        }
        None => {
            let _ = writeln!(
                out,
                "daemon:      running, no IMAP connection reported (starting, or no [imap]: sending only)"
            );
        }
    }
    if let Some((v, at)) = fact("last_fetch") {
        let _ = writeln!(out, "last fetch:  {} ({} ago), {v} mails", format_time(at), ago(now - at));
    }
    if let Some((v, _)) = fact("backlog") {
        let _ = writeln!(out, "backlog:     {v} mails waiting in the mailbox");
    }
    let _ = writeln!(out, "ingested:    {} mails ({} duplicates)", s.ingested, s.duplicates);
    let _ = writeln!(out, "quarantined: {}", s.quarantined);
    let _ = writeln!(out, "tickets:     {} ({} open)", s.tickets, s.open_tickets);
    let waiting = match outbox.oldest_queued_at {
        Some(at) => format!(", oldest waiting {}", ago(now - at)),
        None => String::new(),
    };
    let _ =
        writeln!(out, "outbox:      {} queued{waiting}, {} failed, {} sent", outbox.queued, outbox.failed, outbox.sent);
    if outbox.waiting_for_relay > 0 || outbox.held > 0 || outbox.cancelled > 0 {
        let _ = writeln!(
            out,
            "             {} waiting for the relay, {} held, {} cancelled",
            outbox.waiting_for_relay, outbox.held, outbox.cancelled
        );
    }
    out
}

/// The running daemon's own account (its health file): relay, database, reloads. Trouble is written in capitals.
pub fn health_text(h: &crate::health::HealthView, now: i64) -> String {
    let mut out = String::new();
    let when =
        |at: Option<i64>| at.map(|at| format!("{} ({} ago)", format_time(at), ago(now - at))).unwrap_or_default();
    let _ = writeln!(out, "doing:       {} (as of {} ago)", h.activity, ago(now - h.updated_at));
    match h.relay.state.as_str() {
        "down" => {
            let why = h.relay.last_error.as_deref().unwrap_or("unknown");
            let _ = writeln!(out, "relay:       DOWN since {}: {why}", when(h.relay.since));
        }
        "up" => {
            let _ = writeln!(out, "relay:       up since {}", when(h.relay.since));
            if let (Some(e), at) = (&h.relay.last_error, h.relay.last_error_at) {
                let _ = writeln!(out, "             last relay error {}: {e}", when(at));
            }
        }
        _ => {
            let _ = writeln!(out, "relay:       not tried yet");
        }
    }
    let d = &h.database;
    if d.state == "failing" {
        let why = d.last_error.as_deref().unwrap_or("unknown");
        let retry = d.retry_in_seconds.map(|s| format!("; next try {s}s after the last")).unwrap_or_default();
        let _ = writeln!(out, "database:    FAILING since {}: {why}{retry}", when(d.failing_since));
    } else if let Some(e) = &d.last_error {
        let _ = writeln!(out, "database:    ok; last error {}: {e}", when(d.last_error_at));
    } else {
        let _ = writeln!(out, "database:    ok");
    }
    if d.errors > 0 {
        let lock = d.last_lock_wait_at.map(|at| format!(", last {}", when(Some(at)))).unwrap_or_default();
        let _ = writeln!(
            out,
            "             {} errors since start: {} disk full, {} lock waits{lock}",
            d.errors, d.disk_full, d.lock_waits
        );
    }
    let r = &h.reload;
    if let Some(at) = r.last_refused_at.filter(|at| Some(*at) > r.last_ok_at) {
        let why = r.last_refused_error.as_deref().unwrap_or("").lines().next().unwrap_or("");
        let _ = writeln!(out, "reload:      REFUSED {} (running config kept): {why}", when(Some(at)));
    } else if let Some(at) = r.last_ok_at {
        let _ = writeln!(out, "reload:      last reload {}", when(Some(at)));
    }
    out
}

/// The auto-reply budget's line of `postdesk status` (issue 10): refusals show, so backscatter is noticed.
pub fn reply_budget_text(b: &ReplyBudget) -> String {
    format!(
        "auto-replies: {} of {} to first-time senders in the last hour; refused in 24h: {} by the per-sender limit, \
         {} by the hourly cap\n",
        b.unknown_senders_last_hour,
        b.unknown_senders_cap,
        b.refused_sender_limit_24h,
        b.refused_unknown_senders_cap_24h
    )
}

pub fn format_time(at: i64) -> String {
    chrono::DateTime::from_timestamp(at, 0).map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string()).unwrap_or_default()
}

fn ago(seconds: i64) -> String {
    match seconds.max(0) {
        s if s < 120 => format!("{s}s"),
        s if s < 7200 => format!("{}m", s / 60),
        s if s < 172_800 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86_400),
    }
}

/// JSON for scripts, pretty-printed and exact: serde_json escapes control characters in strings itself, so this
/// bypasses [`crate::say!`]'s escaping.
pub fn print_json<T: serde::Serialize>(value: &T) {
    let json = serde_json::to_string_pretty(value).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
    let _ = std::io::Write::write_all(&mut std::io::stdout().lock(), format!("{json}\n").as_bytes());
}
