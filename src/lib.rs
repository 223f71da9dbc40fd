//! postdesk: an email-driven helpdesk.
//!
//! Mail flows one way through plain, network-free stages:
//! fetch (IMAP / stdin) -> [`parse`] -> [`thread`] -> [`rules`] -> [`store`] (one transaction) -> ack the source,
//! and from the store's outbox -> [`outbound`] render -> send over SMTP.
#![forbid(unsafe_code)]

pub mod config;
pub mod model;
pub mod parse;
pub mod rules;
pub mod token;
