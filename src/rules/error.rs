//! Validation errors: each names the file, line and column, the rule, what is wrong and how to fix it.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use crate::config::line_column;

/// One problem in a rule file. Displays as `file:line:column: rule "name": message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleError {
    pub file: PathBuf,
    /// 1-based; 0 when the error concerns the whole file (it cannot be read).
    pub line: usize,
    /// 1-based, in characters.
    pub column: usize,
    /// The rule the error is in, when it is inside one that has a name.
    pub rule: Option<String>,
    pub message: String,
}

impl fmt::Display for RuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            0 => write!(f, "{}: ", self.file.display())?,
            line => write!(f, "{}:{line}:{}: ", self.file.display(), self.column)?,
        }
        if let Some(rule) = &self.rule {
            write!(f, "rule {rule:?}: ")?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for RuleError {}

/// Every problem found while loading a rule set, in file order. Displays one line per error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleErrors(pub Vec<RuleError>);

impl fmt::Display for RuleErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        crate::write_lines(f, &self.0)
    }
}

impl std::error::Error for RuleErrors {}

/// Collects errors for one file, turning byte spans into line and column.
pub(crate) struct Sink<'a> {
    pub file: &'a Path,
    pub text: &'a str,
    /// The rule being compiled, set once its name is known.
    pub rule: Option<String>,
    pub errors: Vec<RuleError>,
}

impl<'a> Sink<'a> {
    pub fn new(file: &'a Path, text: &'a str) -> Self {
        Sink { file, text, rule: None, errors: Vec::new() }
    }

    pub fn at(&mut self, span: &Range<usize>, message: impl Into<String>) {
        let (line, column) = line_column(self.text, span.start);
        self.errors.push(RuleError {
            file: self.file.to_path_buf(),
            line,
            column,
            rule: self.rule.clone(),
            message: message.into(),
        });
    }

    pub fn position(&self, span: &Range<usize>) -> (usize, usize) {
        line_column(self.text, span.start)
    }
}

/// The closest of `known` to a misspelt `word`, for "did you mean …?" hints.
pub(crate) fn suggest<'k>(word: &str, known: &[&'k str]) -> Option<&'k str> {
    known
        .iter()
        .map(|k| (edit_distance(word, k), *k))
        .filter(|(d, k)| *d <= 2.max(k.len() / 3))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = if ca == *cb { prev } else { 1 + prev.min(row[j]).min(cur) };
            prev = cur;
        }
    }
    row[b.len()]
}

/// `"unknown key \"x\"; expected one of a, b (did you mean …?)"`
pub(crate) fn unknown_key(key: &str, place: &str, known: &[&str]) -> String {
    let hint = match suggest(key, known) {
        Some(s) => format!("did you mean \"{s}\"?"),
        None => "remove or rename it".to_string(),
    };
    format!("unknown key \"{key}\" in {place}; {hint} (allowed: {})", known.join(", "))
}
