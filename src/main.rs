//! The `postdesk` binary: parse the command line, run, map failures to sysexits codes.

fn main() -> std::process::ExitCode {
    postdesk::cli::main()
}
