//! Ticket numbers and the token that carries them in subjects.
//!
//! A number is `YYYYMMDD` + two-digit system id + a per-day counter (at least 5 digits) + a Luhn check digit, e.g.
//! `2026112310000012`. The check digit makes a mistyped number (one wrong digit, or two neighbours swapped) invalid,
//! so it cannot land on somebody else's ticket.

/// Builds a ticket number from its parts.
pub fn ticket_number(date_yyyymmdd: &str, system_id: u8, counter: u64) -> String {
    let body = format!("{date_yyyymmdd}{system_id:02}{counter:05}");
    let check = luhn_check_digit(&body);
    format!("{body}{check}")
}

/// True when `number` is all digits, long enough to be ours, and its last digit is the Luhn check digit of the rest.
pub fn is_valid_number(number: &str) -> bool {
    if number.len() < 16 || !number.bytes().all(|b| b.is_ascii_digit()) {
        return false;
    }
    let (body, check) = number.split_at(number.len() - 1);
    luhn_check_digit(body) == check.as_bytes()[0] - b'0'
}

fn luhn_check_digit(body: &str) -> u8 {
    let sum: u32 = body
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(b - b'0');
            if i % 2 == 0 {
                let d2 = d * 2;
                if d2 > 9 { d2 - 9 } else { d2 }
            } else {
                d
            }
        })
        .sum();
    ((10 - sum % 10) % 10) as u8
}

/// The configured token shape, e.g. `[Ticket#{number}]`, split around the number.
#[derive(Debug, Clone)]
pub struct TokenFormat {
    prefix: String,
    suffix: String,
}

/// A token found in a subject: the number and where the whole token stood.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundToken {
    pub number: String,
    pub start: usize,
    pub end: usize,
}

impl TokenFormat {
    pub fn new(format: &str) -> Self {
        let (prefix, suffix) = format.split_once("{number}").unwrap_or((format, ""));
        TokenFormat { prefix: prefix.to_string(), suffix: suffix.to_string() }
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    pub fn render(&self, number: &str) -> String {
        format!("{}{}{}", self.prefix, number, self.suffix)
    }

    /// Every well-formed token in the subject (prefix matched case-insensitively, digits, then the suffix).
    /// The check digit is not tested here: the resolver decides what an invalid number means.
    pub fn find_all(&self, subject: &str) -> Vec<FoundToken> {
        let mut found = Vec::new();
        let lower = subject.to_lowercase();
        // Positions in the lowercase copy are used on the subject, so it is searched only when lowercasing keeps
        // every character's byte length: the totals can match while offsets shift ('ẞ' shrinks, 'İ' grows), and a
        // shifted offset inside a character panicked (found by fuzzing). Otherwise: an exact-case search.
        let same_offsets = subject.chars().all(|c| c.to_lowercase().map(char::len_utf8).sum::<usize>() == c.len_utf8());
        let haystack = if same_offsets { lower.as_str() } else { subject };
        let needle = if same_offsets { self.prefix.to_lowercase() } else { self.prefix.clone() };
        // An empty prefix would match everywhere without moving on; the config refuses such a format.
        if needle.is_empty() {
            return found;
        }
        let mut from = 0;
        while let Some(pos) = haystack[from..].find(&needle) {
            let start = from + pos;
            let digits_start = start + needle.len();
            let digits_len = subject[digits_start..].bytes().take_while(u8::is_ascii_digit).count();
            let digits_end = digits_start + digits_len;
            if digits_len > 0 && subject[digits_end..].starts_with(&self.suffix) {
                found.push(FoundToken {
                    number: subject[digits_start..digits_end].to_string(),
                    start,
                    end: digits_end + self.suffix.len(),
                });
                from = digits_end + self.suffix.len();
            } else {
                from = digits_start;
            }
        }
        found
    }

    /// The subject with every token removed and whitespace tidied: the first step of subject normalisation.
    pub fn strip(&self, subject: &str) -> String {
        let mut out = String::with_capacity(subject.len());
        let mut last = 0;
        for t in self.find_all(subject) {
            out.push_str(&subject[last..t.start]);
            last = t.end;
        }
        out.push_str(&subject[last..]);
        out.split_whitespace().collect::<Vec<_>>().join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_carry_a_valid_check_digit() {
        let n = ticket_number("20261123", 10, 1);
        assert_eq!(n.len(), 16);
        assert!(n.starts_with("202611231000001"));
        assert!(is_valid_number(&n));
    }

    #[test]
    fn any_single_digit_typo_is_caught() {
        let n = ticket_number("20261123", 10, 4711);
        for i in 0..n.len() {
            for d in b'0'..=b'9' {
                let mut bytes = n.clone().into_bytes();
                if bytes[i] == d {
                    continue;
                }
                bytes[i] = d;
                let typo = String::from_utf8(bytes).unwrap();
                assert!(!is_valid_number(&typo), "{typo} should be invalid");
            }
        }
    }

    #[test]
    fn adjacent_swaps_are_caught() {
        let n = ticket_number("20261123", 10, 12345);
        let b = n.as_bytes();
        for i in 0..b.len() - 1 {
            // Luhn misses only the 09 <-> 90 swap.
            if b[i] == b[i + 1] || (b[i] == b'0' && b[i + 1] == b'9') || (b[i] == b'9' && b[i + 1] == b'0') {
                continue;
            }
            let mut s = b.to_vec();
            s.swap(i, i + 1);
            assert!(!is_valid_number(std::str::from_utf8(&s).unwrap()));
        }
    }

    #[test]
    fn short_or_non_digit_numbers_are_invalid() {
        for bad in ["", "123", "20261123100000a2", "202611231000001"] {
            assert!(!is_valid_number(bad), "{bad}");
        }
    }

    #[test]
    fn finds_and_strips_tokens_case_insensitively() {
        let f = TokenFormat::new("[Ticket#{number}]");
        let s = "RE: [ticket#2026112310000012] Printer on fire";
        let found = f.find_all(s);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].number, "2026112310000012");
        assert_eq!(f.strip(s), "RE: Printer on fire");
        assert!(f.find_all("[Ticket#] nothing [Ticket#12").is_empty());
        assert_eq!(f.render("1"), "[Ticket#1]");
    }

    #[test]
    fn a_subject_whose_lowercase_shifts_byte_offsets_does_not_panic() {
        // 'İ' lowercases to a longer "i̇", the Kelvin sign to a shorter 'k': the same total length, but every
        // offset after the first 'İ' is one byte off, inside the 'é' (found by the fuzz run, examples/fuzz).
        let f = TokenFormat::new("[Ticket#{number}]");
        let s = "Ré: İstanbul [Ticket#éé [TİCKET#2026112310000002] \u{212a} x [Ticket#2026112310000029]";
        let found: Vec<String> = f.find_all(s).into_iter().map(|t| t.number).collect();
        assert_eq!(found, vec!["2026112310000029"], "exact case where lowercasing would shift offsets");
        assert_eq!(TokenFormat::new("{number}").find_all("12 34"), vec![], "an empty prefix finds nothing");
    }

    #[test]
    fn other_token_formats_work() {
        let f = TokenFormat::new("RT-{number}:");
        assert_eq!(f.find_all("Re: RT-2026112310000012: hi")[0].number, "2026112310000012");
    }
}
