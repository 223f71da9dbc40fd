//! Subject normalisation: reply/forward prefixes removed with an anchored, multilingual list.
//!
//! Only prefixes from a fixed list are removed, and only when followed by a colon (ASCII or full-width), optionally
//! with a counter (`Re[2]:`, `Re(2):`, `Re^2:`): "Rex: hello", "Sven: hi", "ANTWERP office" and "AWS bill" stay.
//! Also removed: security banners mail gateways put in front (`[EXTERNAL]`, `[SPAM]`, …), a whole-subject forward
//! wrapper (`[Fwd: hello]`) and trailing `(fwd)` markers. Other bracketed tags (`[list-name]`) are kept: unlike
//! mail-parser's `thread_name()` we don't drop any leading `[...]`. The ticket token must be removed before this
//! runs. Whitespace runs collapse to one space.

use std::sync::LazyLock;

use regex::Regex;

/// Reply and forward prefixes, lowercase where it matters (matching is case-insensitive).
const PREFIXES: &str = "re|res|aw|sv|vs|antw|antwort|odp|réf|ref|rif|r|bls|ynt|atb|yan|vá|válasz|\
    fwd|fw|wg|tr|trs|rv|enc|doorst|vl|i|fs|vb|pd|ilt|i̇lt|İlt|yml|továbbítás|\
    απ|σχετ|πρθ|отв|на|ответ|пер|השב|הועבר|رد|إعادة توجيه|\
    回复|回覆|答复|答覆|转发|轉寄|轉發|返信|転送|답장|전달";

static PREFIX: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!(r"(?i)^(?:{PREFIXES})(?:\s*\[[^\]\s]{{0,6}}\]|\s*\(\d{{1,4}}\)|\^\d{{1,4}})?\s*[:：]"))
        .expect("valid regex")
});

/// Banners that mail gateways put in front of the subject.
static BANNER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)^(?:\[(?:external(?:\ (?:email|sender|mail))?|ext|caution|spam|suspected\ spam|possible\ spam|\
         warning|extern|externe?|externo|esterno)\]|\*{1,3}(?:external|spam)\*{1,3})[:：]?",
    )
    .expect("valid regex")
});

static TRAILING_FWD: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)\s*\((?:fwd|fw|wg|tr|rv|enc|doorst|vl|回覆|轉寄|转发)\)$").expect("valid regex"));

/// `subject` without leading reply/forward prefixes. The ticket token must be removed before calling this.
pub fn normalize_subject(subject: &str) -> String {
    let mut s = collapse_whitespace(subject);
    loop {
        let before = s.len();
        s = strip_prefixes(&s);
        s = strip_trailing_fwd(&s);
        s = unwrap_forward(&s);
        if s.len() == before {
            return s;
        }
    }
}

fn collapse_whitespace(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn strip_prefixes(s: &str) -> String {
    let mut rest = s.trim();
    while let Some(m) = PREFIX.find(rest).or_else(|| BANNER.find(rest)).filter(|m| !m.is_empty()) {
        rest = rest[m.end()..].trim_start();
    }
    rest.to_string()
}

fn strip_trailing_fwd(s: &str) -> String {
    let mut rest = s;
    while let Some(m) = TRAILING_FWD.find(rest) {
        rest = &rest[..m.start()];
    }
    rest.trim().to_string()
}

/// `[Fwd: hello world]` (the whole subject) is `hello world`.
fn unwrap_forward(s: &str) -> String {
    if let Some(inner) = s.strip_prefix('[').and_then(|s| s.strip_suffix(']'))
        && PREFIX.is_match(inner.trim_start())
        && !inner.contains([']', '['])
    {
        return strip_prefixes(inner);
    }
    s.to_string()
}

/// Builds this module's regexes now, in the reverse of the order a mail needs them (see [`crate::parse::warm_up`]).
pub(crate) fn warm_up() {
    LazyLock::force(&TRAILING_FWD);
    LazyLock::force(&BANNER);
    LazyLock::force(&PREFIX);
}

#[cfg(test)]
mod tests {
    use super::normalize_subject;

    #[test]
    fn removes_prefixes_in_many_languages() {
        let cases = [
            ("Re: hello", "hello"),
            ("RE: RE: hello", "hello"),
            ("Re[2]: hello", "hello"),
            ("Re(2): hello", "hello"),
            ("Re^2: hello", "hello"),
            ("AW: Antwort: hallo", "hallo"),
            ("WG: Anfrage", "Anfrage"),
            ("SV: VS: hej", "hej"),
            ("Antw: Doorst: vraag", "vraag"),
            ("Odp: pytanie", "pytanie"),
            ("Réf : question", "question"),
            ("Ref: question", "question"),
            ("RIF: domanda", "domanda"),
            ("Rif: domanda", "domanda"),
            ("Fwd: FW: Fw: note", "note"),
            ("TR: question", "question"),
            ("RV: pregunta", "pregunta"),
            ("ENC: Enc: pergunta", "pergunta"),
            ("Vá: kérdés", "kérdés"),
            ("Ynt: soru", "soru"),
            ("İlt: soru", "soru"),
            ("Yan: soru", "soru"),
            ("ΑΠ: ερώτηση", "ερώτηση"),
            ("ΣΧΕΤ: ερώτηση", "ερώτηση"),
            ("ΠΡΘ: ερώτηση", "ερώτηση"),
            ("Отв: вопрос", "вопрос"),
            ("НА: вопрос", "вопрос"),
            ("Ответ: вопрос", "вопрос"),
            ("回复：问题", "问题"),
            ("回覆: 問題", "問題"),
            ("答复：问题", "问题"),
            ("转发: 问题", "问题"),
            ("轉寄：問題", "問題"),
            ("返信: 質問", "質問"),
            ("転送：質問", "質問"),
            ("답장: 질문", "질문"),
            ("전달: 질문", "질문"),
            ("re: fwd[5]: aw(3):   spaced   out  ", "spaced out"),
            ("[EXTERNAL] Re: invoice", "invoice"),
            ("[Fwd: hello world]", "hello world"),
            ("hello (fwd)", "hello"),
            ("Re:", ""),
        ];
        for (input, want) in cases {
            assert_eq!(normalize_subject(input), want, "{input:?}");
        }
    }

    #[test]
    fn keeps_words_that_merely_start_like_a_prefix() {
        for subject in [
            "Rex: hello",
            "Sven: hi",
            "ANTWERP office",
            "AWS bill",
            "Fwdx: no",
            "Reason: unknown",
            "Trip report",
            "Inquiry: prices",
            "[notmuch] archive",
            "Re ply",
            "Hello Re: there",
        ] {
            assert_eq!(normalize_subject(subject), subject, "{subject:?}");
        }
    }

    #[test]
    fn cleans_whitespace() {
        assert_eq!(normalize_subject("  Re:\tmulti\r\n  line  "), "multi line");
        assert_eq!(normalize_subject(""), "");
    }
}
