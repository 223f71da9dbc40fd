//! The `postdesk` binary: parse the command line, run, map failures to sysexits codes.

fn main() -> std::process::ExitCode {
    // Everything postdesk creates (database, WAL, state directory, backups, keys) holds mail or secrets: private to
    // its user whoever starts it — systemd, cron, a shell or an MTA pipe with umask 022 (issue 10).
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
    postdesk::cli::main()
}
