//! Failures and the sysexits codes they map to. Every front end (the CLI, the daemon) reports through these, so
//! none of them needs the other: 75 (EX_TEMPFAIL) for what an MTA should retry, 78 (EX_CONFIG) for bad config.

use crate::config;
use crate::store::StoreError;

pub const EX_TEMPFAIL: u8 = 75;
pub const EX_CONFIG: u8 = 78;
pub const EX_USAGE: u8 = 64;
pub const EX_SOFTWARE: u8 = 70;
pub const EX_NOINPUT: u8 = 66;
/// Input that is not acceptable: an empty reply, an unknown queue, a refused command; an id the command does not
/// apply to; a damaged or missing database (or backup), which the admin must restore: retrying cannot help.
pub const EX_DATAERR: u8 = 65;
/// Not allowed: the agent named has no rights on the ticket's queue.
pub const EX_NOPERM: u8 = 77;
pub const EX_CANTCREAT: u8 = 73;

/// A failure with the exit code it maps to.
#[derive(Debug)]
pub struct Failure {
    pub code: u8,
    pub message: String,
}

impl Failure {
    pub fn new(code: u8, message: impl Into<String>) -> Self {
        Failure { code, message: message.into() }
    }
}

impl From<config::ConfigError> for Failure {
    fn from(e: config::ConfigError) -> Self {
        Failure::new(EX_CONFIG, e.to_string())
    }
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        Failure::new(if e.is_transient() { EX_TEMPFAIL } else { EX_SOFTWARE }, e.to_string())
    }
}

/// A database that cannot be used is the admin's to fix (65: restore it), unless the trouble passes by itself (a
/// restore in progress, a lock): 75.
impl From<crate::store::integrity::IntegrityError> for Failure {
    fn from(e: crate::store::integrity::IntegrityError) -> Self {
        Failure::new(if e.is_transient() { EX_TEMPFAIL } else { EX_DATAERR }, e.to_string())
    }
}
