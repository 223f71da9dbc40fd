//! Failures and the sysexits codes they map to. Every front end (the CLI, the daemon) reports through these, so
//! none of them needs the other: 75 (EX_TEMPFAIL) for what an MTA should retry, 78 (EX_CONFIG) for bad config.
//! The codes are those of BSD's sysexits.h, which MTAs (Postfix pipe(8), sendmail) act on; postdesk(8) lists them.

use crate::config;
use crate::store::StoreError;

pub const EX_TEMPFAIL: u8 = 75;
pub const EX_CONFIG: u8 = 78;
/// Wrong command line: unknown subcommand or option, missing argument.
pub const EX_USAGE: u8 = 64;
/// A service we need (IMAP, SMTP relay) cannot be reached.
pub const EX_UNAVAILABLE: u8 = 69;
pub const EX_SOFTWARE: u8 = 70;
pub const EX_NOINPUT: u8 = 66;
/// The input itself is bad: a mail that cannot be parsed, a malformed argument, an empty reply, an unknown queue, a refused command; an id the command does not
/// apply to; a damaged or missing database (or backup), which the admin must restore: retrying cannot help.
pub const EX_DATAERR: u8 = 65;
/// Not allowed: the agent named has no rights on the ticket's queue; root working in the service user's state
/// directory.
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

/// Exit for a command line clap refused: 64 (EX_USAGE), after clap's own message. `--help` and `--version` are not
/// errors and exit 0.
pub fn usage_exit(e: clap::Error) -> std::process::ExitCode {
    let _ = e.print();
    if e.use_stderr() { std::process::ExitCode::from(EX_USAGE) } else { std::process::ExitCode::SUCCESS }
}

/// Runs the delivery of one message handed over by an MTA (`postdesk ingest` on stdin). Whatever fails is ours or
/// temporary (config, state directory, database, I/O, even a bug): exit 75 (EX_TEMPFAIL), so the MTA keeps the mail
/// and retries, instead of a permanent code that it would turn into a bounce to the customer (Postfix pipe(8)).
/// Mail we refuse on purpose is quarantined and exits 0, so no permanent code is ever needed here.
pub fn as_mta_delivery(deliver: impl FnOnce() -> Result<(), Failure>) -> Result<(), Failure> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(deliver)) {
        Ok(Ok(())) => Ok(()),
        Ok(Err(f)) => Err(Failure::new(EX_TEMPFAIL, f.message)),
        Err(_) => Err(Failure::new(EX_TEMPFAIL, "internal error (see the message above); the mail stays with the MTA")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_failure_of_an_mta_delivery_is_temporary() {
        for code in [EX_CONFIG, EX_SOFTWARE, EX_NOINPUT, EX_CANTCREAT, EX_DATAERR, EX_USAGE] {
            let f = as_mta_delivery(|| Err(Failure::new(code, "x"))).unwrap_err();
            assert_eq!(f.code, EX_TEMPFAIL, "code {code}");
            assert_eq!(f.message, "x");
        }
        assert!(as_mta_delivery(|| Ok(())).is_ok());
    }

    #[test]
    fn a_panic_during_an_mta_delivery_is_temporary() {
        let f = as_mta_delivery(|| panic!("a bug")).unwrap_err();
        assert_eq!(f.code, EX_TEMPFAIL);
    }
}
