//! Regexes whose counted repetitions make them slow to build, behind a cheap gate.
//!
//! `.{1,40}` or `[^)]{0,200}` compiles to that many copies of a Unicode class automaton: the mobile-signature
//! pattern took 7–14 ms to build, a large part of a one-mail `ingest` process (the MTA pipe starts one per mail).
//! Their *loose* form, every bounded repetition `{m,n}` made `{min(m,1),}`, builds in a tenth of that and matches
//! a superset of the same text, so it can say "no" for the exact one: the exact regex is built only for the first
//! line that passes the gate, which on most mail is none. Matches are always the exact regex's.

use std::borrow::Cow;
use std::sync::OnceLock;

use regex::{Regex, Replacer};
use regex_syntax::ast::{self, Ast, RepetitionKind, RepetitionRange};

/// Repetitions up to this count are cheap enough to keep as they are.
const SMALL_COUNT: u32 = 4;

pub struct GatedRegex {
    source: &'static str,
    loose: OnceLock<Regex>,
    exact: OnceLock<Regex>,
}

impl GatedRegex {
    pub const fn new(source: &'static str) -> GatedRegex {
        GatedRegex { source, loose: OnceLock::new(), exact: OnceLock::new() }
    }

    pub fn is_match(&self, haystack: &str) -> bool {
        self.loose().is_match(haystack) && self.exact().is_match(haystack)
    }

    pub fn replace_all<'h, R: Replacer>(&self, haystack: &'h str, replacement: R) -> Cow<'h, str> {
        if !self.loose().is_match(haystack) {
            return Cow::Borrowed(haystack);
        }
        self.exact().replace_all(haystack, replacement)
    }

    /// Builds the gate now; the exact regex is built when a line first passes it.
    pub fn warm_up(&self) {
        self.loose();
    }

    /// The exact regex (built now if it was not yet).
    pub fn exact(&self) -> &Regex {
        self.exact.get_or_init(|| Regex::new(self.source).expect("valid regex"))
    }

    fn loose(&self) -> &Regex {
        self.loose.get_or_init(|| Regex::new(&loosen(self.source)).expect("valid regex"))
    }
}

/// The pattern with every bounded repetition above [`SMALL_COUNT`] unbounded: `x{1,40}` → `x{1,}`,
/// `x{0,200}` → `x{0,}`, `x{5}` → `x{1,}`. Only ever widens what matches. A pattern that does not parse is
/// returned as it is, for `Regex::new` to report.
pub fn loosen(pattern: &str) -> String {
    let Ok(mut tree) = ast::parse::Parser::new().parse(pattern) else { return pattern.to_owned() };
    widen(&mut tree);
    let mut out = String::with_capacity(pattern.len());
    match ast::print::Printer::new().print(&tree, &mut out) {
        Ok(()) => out,
        Err(_) => pattern.to_owned(),
    }
}

fn widen(tree: &mut Ast) {
    match tree {
        Ast::Repetition(rep) => {
            if let RepetitionKind::Range(range) = &rep.op.kind {
                let (min, max) = match *range {
                    RepetitionRange::Exactly(n) => (n, Some(n)),
                    RepetitionRange::AtLeast(n) => (n, None),
                    RepetitionRange::Bounded(m, n) => (m, Some(n)),
                };
                if max.is_some_and(|max| max > SMALL_COUNT) {
                    rep.op.kind = RepetitionKind::Range(RepetitionRange::AtLeast(min.min(1)));
                }
            }
            widen(&mut rep.ast);
        }
        Ast::Group(group) => widen(&mut group.ast),
        Ast::Alternation(alt) => alt.asts.iter_mut().for_each(widen),
        Ast::Concat(concat) => concat.asts.iter_mut().for_each(widen),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loosening_unbounds_large_counts_only() {
        assert_eq!(loosen(r"^sent from .{1,40}$"), r"^sent from .{1,}$");
        assert_eq!(loosen(r"<[^>]{0,200}>"), r"<[^>]{0,}>");
        assert_eq!(loosen(r"\d{1,4}:\d{2}"), r"\d{1,4}:\d{2}");
        assert_eq!(loosen(r"x{12}"), r"x{1,}");
        // Verbose mode comes back without its layout, which means the same.
        assert_eq!(loosen(r"(?x) a \  (?:b{2,30}|c)"), r"(?x)a\ (?:b{1,}|c)");
    }

    #[test]
    fn the_gate_never_refuses_what_the_exact_regex_matches() {
        let gated = GatedRegex::new(r"(?i)^(?:sent from .{1,10}|[^\]]{0,6}x{5,8})$");
        let exact = Regex::new(r"(?i)^(?:sent from .{1,10}|[^\]]{0,6}x{5,8})$").unwrap();
        for line in ["Sent from my phone", "sent from a very long device name", "abcxxxxx", "abcdefgxxxxx", "xxxx", ""]
        {
            assert_eq!(gated.is_match(line), exact.is_match(line), "{line:?}");
        }
        assert_eq!(gated.replace_all("Sent from ÄÖÜ", "<$0>"), "<Sent from ÄÖÜ>");
        assert_eq!(gated.replace_all("nothing here", "<$0>"), "nothing here");
    }
}
