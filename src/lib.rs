//! postdesk: an email-driven helpdesk.
//!
//! Mail flows one way through plain, network-free stages:
//! fetch (IMAP / stdin) -> [`parse`] -> [`thread`] -> [`rules`] -> [`store`] (one transaction) -> ack the source,
//! and from the store's outbox -> [`outbound`] render -> send over SMTP.
#![forbid(unsafe_code)]

pub mod cli;
pub mod config;
pub mod daemon;
pub mod ingest;
pub mod model;
pub mod outbound;
pub mod parse;
pub mod pipeline;
pub mod report;
pub mod rules;
pub mod store;
pub mod thread;
pub mod tls;
pub mod token;
