//! Finding every mistake in a config file in one run. serde stops at the first problem, so each problem found is
//! recorded with its line, its line (or whole table, for a misspelt `[table]`) is blanked out, and the file is read
//! again, until it deserializes; then the values are validated as a whole. Blanking keeps byte offsets, so every
//! line and column reported is one of the file as written.

use std::path::Path;

use crate::config::{Config, ConfigError, line_column};

/// More problems than this in one file are not worth listing one by one: the file is probably not a config at all.
const MOST_REPORTED: usize = 50;

/// The config (when the file could be read at all once its bad lines were left out) and every problem found.
pub fn deserialize_all(text: &str, path: &Path) -> (Option<Config>, Vec<ConfigError>) {
    let invalid = |text: &str, offset: usize, message: String| {
        let (line, column) = line_column(text, offset);
        ConfigError::Invalid { file: path.into(), line, column, message }
    };
    // A syntax error leaves nothing sound to read on from.
    if let Err(e) = text.parse::<toml::Table>() {
        let offset = e.span().map_or(0, |s| s.start);
        return (None, vec![invalid(text, offset, e.message().trim().to_string())]);
    }
    let mut patched = text.to_string();
    let mut blanked_keys: Vec<String> = Vec::new();
    let mut errors = Vec::new();
    while errors.len() < MOST_REPORTED {
        let e = match toml::from_str::<Config>(&patched) {
            Ok(config) => return (Some(config), errors),
            Err(e) => e,
        };
        let message = e.message().trim();
        let Some(span) = e.span() else {
            errors.push(invalid(text, 0, explain_toml_error(message)));
            break;
        };
        if let Some(field) = missing_field(message) {
            // A required key we blanked ourselves (it had the wrong type) is not a second mistake.
            if !blanked_keys.iter().any(|k| k == field) {
                errors.push(invalid(text, span.start, explain_toml_error(message)));
            }
            break;
        }
        errors.push(invalid(text, span.start, explain_toml_error(message)));
        match blank_out(&patched, span.start) {
            Some((next, key)) if next.parse::<toml::Table>().is_ok() => {
                patched = next;
                blanked_keys.push(key);
            }
            _ => break,
        }
    }
    (None, errors)
}

/// `patched` with the line holding `offset` replaced by spaces, and the whole table when that line is a table header.
/// None when there is nothing left to blank there (the problem does not go away by leaving the line out).
fn blank_out(patched: &str, offset: usize) -> Option<(String, String)> {
    let start = patched[..offset.min(patched.len())].rfind('\n').map_or(0, |i| i + 1);
    let line_end = |from: usize| patched[from..].find('\n').map_or(patched.len(), |i| from + i);
    let first = &patched[start..line_end(start)];
    if first.trim().is_empty() {
        return None;
    }
    let header = first.trim_start().starts_with('[');
    let mut end = line_end(start);
    if header {
        // The table's keys go with it; left behind they would land in the table before and be reported there.
        while end < patched.len() {
            let next = line_end(end + 1);
            if patched[end + 1..next].trim_start().starts_with('[') {
                break;
            }
            end = next;
        }
    }
    let key = first.split(['=', ']']).next().unwrap_or("").trim().trim_start_matches('[').trim().to_string();
    let key = key.rsplit('.').next().unwrap_or("").trim().trim_matches('"').to_string();
    let blank: String = patched[start..end].chars().map(|c| if c == '\n' { '\n' } else { ' ' }).collect();
    // Multi-byte characters become one space each: pad so every later offset stays where it was.
    let pad = " ".repeat(end - start - blank.len());
    Some((format!("{}{blank}{pad}{}", &patched[..start], &patched[end..]), key))
}

/// The field of serde's "missing field `x`".
fn missing_field(message: &str) -> Option<&str> {
    message.strip_prefix("missing field `")?.split('`').next()
}

/// serde's messages name the problem; add the fix where it is not obvious.
pub fn explain_toml_error(message: &str) -> String {
    let message = message.trim();
    if message.starts_with("unknown field") {
        format!("{message}; remove or rename this key")
    } else if message.starts_with("missing field") {
        format!("{message}; add this key")
    } else {
        message.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(text: &str) -> Vec<String> {
        match Config::parse(text, Path::new("/etc/postdesk/postdesk.toml")) {
            Ok(_) => vec![],
            Err(ConfigError::Several(all)) => all.iter().map(ToString::to_string).collect(),
            Err(one) => vec![one.to_string()],
        }
    }

    #[test]
    fn three_mistakes_are_all_reported_with_their_lines() {
        let text = "address = \"support@example.com\"\n[limits]\nmax_mesage_bytes = 5\nmax_mime_parts = \"many\"\n\
                    [tickets]\ntoken_format = \"[Ticket]\"\n";
        let all = problems(text);
        assert_eq!(all.len(), 3, "{all:#?}");
        assert!(all[0].starts_with("/etc/postdesk/postdesk.toml:3:1:") && all[0].contains("max_mesage_bytes"));
        assert!(all[1].starts_with("/etc/postdesk/postdesk.toml:4:"), "{}", all[1]);
        assert!(all[2].contains("tickets.token_format"), "{}", all[2]);
    }

    #[test]
    fn a_misspelt_table_is_one_mistake_not_one_per_key() {
        let text = "address = \"support@example.com\"\n[imapp]\nhost = \"x\"\nusername = \"y\"\n[limits]\nbogus = 1\n";
        let all = problems(text);
        assert_eq!(all.len(), 2, "{all:#?}");
        assert!(all[0].contains(":2:") && all[0].contains("imapp"), "{}", all[0]);
        assert!(all[1].contains(":6:") && all[1].contains("bogus"), "{}", all[1]);
    }

    #[test]
    fn a_required_key_of_the_wrong_type_is_one_mistake() {
        let all = problems("address = 5\n[limits]\nmax_mime_parts = 0\n");
        assert_eq!(all.len(), 1, "{all:#?}");
        assert!(all[0].contains(":1:"), "{}", all[0]);
    }

    #[test]
    fn a_syntax_error_is_reported_alone_with_its_line() {
        let all = problems("address = \"a@b.c\"\n[limits\nmax_mime_parts = 0\n");
        assert_eq!(all.len(), 1, "{all:#?}");
        assert!(all[0].contains(":2:"), "{}", all[0]);
    }

    #[test]
    fn lines_stay_right_after_blanking_a_line_with_non_ascii_text() {
        let all = problems("address = \"a@b.c\"\nsite_nam = \"Ünïcödé Support\"\n[limits]\nbogus = 1\n");
        assert_eq!(all.len(), 2, "{all:#?}");
        assert!(all[1].starts_with("/etc/postdesk/postdesk.toml:4:1:"), "{}", all[1]);
    }
}
