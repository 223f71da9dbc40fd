//! Mail sources. `files` reads what an admin or an MTA hands to `postdesk ingest`; `imap` is the daemon's source.
//! Both produce [`crate::pipeline::Incoming`] for the same pipeline.

pub mod files;
pub mod handoff;
pub mod imap;
