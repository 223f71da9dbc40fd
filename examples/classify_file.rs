//! Prints how `parse_mail` classifies each file given: `cargo run --example classify_file -- FILE…`.
//! A debugging aid for the classifier: classification, reason, and bounce recipients with their permanence.

use postdesk::config::Limits;
use postdesk::parse::parse_mail;

fn main() {
    for path in std::env::args().skip(1) {
        let raw = match std::fs::read(&path) {
            Ok(raw) => raw,
            Err(e) => {
                eprintln!("{path}: {e}");
                continue;
            }
        };
        match parse_mail(&raw, &Limits::default()) {
            Ok(mail) => {
                println!(
                    "{path}: {} ({})",
                    mail.classification.as_str(),
                    mail.classification_reason.unwrap_or_default()
                );
                for r in mail.bounce.iter().flat_map(|b| b.recipients.iter()) {
                    println!(
                        "  {} status={:?} action={:?} permanence={:?}",
                        r.address, r.status, r.action, r.permanence
                    );
                }
            }
            Err(e) => println!("{path}: rejected: {e}"),
        }
    }
}
