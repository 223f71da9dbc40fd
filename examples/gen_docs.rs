//! Writes postdesk(8) and the shell completions, both generated from the clap definitions, into a directory:
//! `cargo run --example gen_docs -- DIR`. scripts/build-deb.sh runs it before `cargo deb`, which installs the files.
//! (An example, not a subcommand: the generators stay out of the shipped binary.)

#[path = "gen_docs/manpage.rs"]
mod manpage;

use std::path::PathBuf;

use clap::CommandFactory;
use clap_complete::Shell;

fn main() -> std::io::Result<()> {
    let out = PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| "target/assets".into()));
    std::fs::create_dir_all(&out)?;
    std::fs::write(out.join("postdesk.8"), manpage::postdesk_8())?;
    let mut cmd = postdesk::cli::Cli::command();
    for (shell, file) in [(Shell::Bash, "postdesk.bash"), (Shell::Zsh, "_postdesk"), (Shell::Fish, "postdesk.fish")] {
        let mut f = std::fs::File::create(out.join(file))?;
        clap_complete::generate(shell, &mut cmd, "postdesk", &mut f);
    }
    println!("{}: postdesk.8, postdesk.bash, _postdesk, postdesk.fish", out.display());
    Ok(())
}
