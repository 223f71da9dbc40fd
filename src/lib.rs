//! postdesk: an email-driven helpdesk.
//!
//! Mail flows one way through plain, network-free stages:
//! fetch (IMAP / stdin) -> [`parse`] -> [`thread`] -> [`rules`] -> [`store`] (one transaction) -> ack the source,
//! and from the store's outbox -> [`outbound`] render -> send over SMTP.
#![forbid(unsafe_code)]

/// Prints a line to stdout, ignoring write errors: `postdesk ticket list | head` must end quietly when the reader
/// goes away, not panic on the broken pipe. Control characters are shown escaped ([`inert::text`]): whatever a
/// value holds, a human-readable line cannot drive the terminal. Exact output (JSON, raw mail) does not use it.
#[macro_export]
macro_rules! say {
    () => {{ let _ = std::io::Write::write_all(&mut std::io::stdout().lock(), b"\n"); }};
    ($($arg:tt)*) => {{ $crate::say_raw!("{}\n", format_args!($($arg)*)); }};
}

/// Writes each item on a line of its own: how the lists of load errors (rules, templates) display.
pub(crate) fn write_lines<T: std::fmt::Display>(f: &mut std::fmt::Formatter<'_>, items: &[T]) -> std::fmt::Result {
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            f.write_str("\n")?;
        }
        write!(f, "{item}")?;
    }
    Ok(())
}

/// Like [`say!`] without the newline.
#[macro_export]
macro_rules! say_raw {
    ($($arg:tt)*) => {{
        let text = format!($($arg)*);
        let _ = std::io::Write::write_all(&mut std::io::stdout().lock(), $crate::inert::text(&text).as_bytes());
    }};
}

pub mod act;
pub mod admin;
pub mod agents;
pub mod attachments;
pub mod checkup;
pub mod cli;
pub mod config;
pub mod config_errors;
pub mod daemon;
pub mod exit;
pub mod health;
pub mod inert;
pub mod ingest;
pub mod logging;
pub mod metrics;
pub mod model;
pub mod ops;
pub mod outbound;
pub mod parse;
pub mod pipeline;
pub mod privacy;
pub mod report;
pub mod respond;
pub mod rules;
pub mod setup;
pub mod store;
pub mod supervise;
pub mod thread;
pub mod tls;
pub mod token;
