//! Line classification for reply stripping: what kind of line is this, looked at alone or in a small window.
//!
//! Every regex here runs on one line, or on a join of at most [`MAX_WINDOW`] lines capped at [`MAX_JOINED`]
//! bytes, so the work per line is bounded and the whole pass stays linear in the size of the body.

use std::sync::LazyLock;

use regex::Regex;

/// Longest line we consider as a marker, header or signature; longer lines are text or quotes.
pub(super) const MAX_LINE: usize = 400;
/// Attribution lines wrapped by the sender's client span at most this many lines (blank lines included).
pub(super) const MAX_WINDOW: usize = 5;
/// Upper bound on a joined attribution window.
pub(super) const MAX_JOINED: usize = 500;

/// What a line of the body is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    /// Whitespace only.
    Empty,
    /// `-- `, `____`, `----`, `====`, `****`: everything from here on is signature or footer.
    Delimiter,
    /// "Sent from my iPhone" and friends.
    MobileSig,
    /// Start of quoted history: an attribution ("On … wrote:"), an "Original Message" or forward marker, or part
    /// of an Outlook header block.
    Marker,
    /// Looks like `From: …` / `Betreff: …`; becomes [`Kind::Marker`] when part of a header block, else text.
    Header {
        from: bool,
    },
    /// Quoted with `>` (or supercite `Name>`).
    Quote,
    Text,
}

static QUOTE: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^[ \t]*[A-Za-z]{0,10}>").expect("valid regex"));

static DELIMITER: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^(?:--|ᐧ|[-_=*+—–]{3,})$").expect("valid regex"));

/// `-Name` on its own line after a blank line, as in "-Abhishek Kona": at most 40 characters after the first letter,
/// counted in [`is_dash_name`]. Written `{0,40}` the bound made the regex 40 copies of two Unicode classes, 14 ms
/// to compile: a third of the CPU of a one-mail `postdesk ingest`.
static DASH_NAME: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^-\p{L}[\p{L}\p{M} .'-]*$").expect("valid regex"));
const DASH_NAME_MAX_CHARS: usize = 2 + 40;

/// Outlook "Original Message" separators and forward markers, after `*` and blanks are trimmed.
static MARKER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?xi)^(?:
          -{2,}\s*(?:original\ message|ursprüngliche\ nachricht|originalnachricht|message\ d'origine|
             mensaje\ original|messaggio\ originale|oorspronkelijk\ bericht|oryginalna\ wiadomość|
             mensagem\ original|исходное\ сообщение|ursprungligt\ meddelande|opprinnelig\ melding|
             oprindelig\ meddelelse|alkuperäinen\ viesti|původní\ zpráva|eredeti\ üzenet|原始邮件|原始郵件)\s*-{2,}
         |-{2,}\s*(?:forwarded\ message|weitergeleitete\ nachricht|message\ transféré|mensaje\ reenviado|
             messaggio\ inoltrato|doorgestuurd\ bericht|wiadomość\ przekazana|mensagem\ encaminhada|
             пересылаемое\ сообщение|пересланное\ сообщение|vidarebefordrat\ meddelande|videresendt\ melding|
             videresendt\ meddelelse|转发的邮件|転送されたメッセージ)\s*-*
         |(?:begin\ forwarded\ message|anfang\ der\ weitergeleiteten\ (?:nachricht|e-mail)|
             début\ du\ message\ (?:réexpédié|transféré)|inicio\ del\ mensaje\ reenviado|
             inizio\ messaggio\ inoltrato|begin\ doorgestuurd\ bericht)\s*[:：]?
        )$",
    )
    .expect("valid regex")
});

/// Attribution verbs at the end of an "On … wrote:" line, in many languages.
static ATTRIB_VERB: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?xi)(?:
           \bwrote|\bwrites|\bschrieb\b.*|\ba\ écrit|\bescribió|\bha\ scritto|\bescreveu|\bgeschreven|\bschreef\b.*|
           \bpisze|\bnapisał(?:\(a\)|a)?|написал(?:\(а\)|а)?|написав|написала|\bпише|\bskrev\b.*|\bkirjoitti|
           \bírta|\bnapsal(?:\(a\)|a)?|\byazdı|写道|寫道|書きました|님이\ 작성
         )\s*[:：]$",
    )
    .expect("valid regex")
});

/// Evidence that a "... wrote:" line is an attribution and not prose: an address, a date, a time or a year.
static ATTRIB_EVIDENCE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"@|\d{1,2}:\d{2}|\b\d{1,4}[./-]\d{1,2}[./-]\d{1,4}\b|\b(?:19|20)\d{2}\b|\d{4}年").expect("valid regex")
});

/// Gmail's date-first attribution: "2013/7/20 sam <sam@x.org>", "2016-03-03 17:21 GMT+01:00 Some One".
static ATTRIB_DATE_FIRST: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)^\d{1,4}[-/.]\d{1,2}[-/.]\d{1,4}\b.*(?:\bGMT[+-]\d|@[^\s<>]+>\s*[:：]?$)").expect("valid regex")
});

/// "Thu, 26 Jun 2014 14:00:51 +0400 от Alexander L <abc@example.com>:": a dated line ending in `<address>:`.
static ATTRIB_ADDRESS_COLON: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"@[^\s<>]+>\s*[:：]$").expect("valid regex"));

/// A line that clearly opens an attribution: "On …", "Am …", a date.
static ATTRIB_STRONG_START: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)^(?:(?:on|am|le|el|il|op|em|den|dnia|w\ dniu)\b|\d|在)").expect("valid regex"));

/// A line that may open a wrapped attribution.
static ATTRIB_START: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)^(?:on|am|le|el|il|op|em|den|dnia|w\ dniu|\d|在)\b|[<@]|^在").expect("valid regex")
});

/// Header names of quoted Outlook-style header blocks, in many languages. The first group are "From" names.
const FROM_NAMES: &str = "from|von|de|da|van|od|от|від|från|fra|lähettäjä|kimden|feladó|发件人|寄件者|差出人|보낸 사람";
const OTHER_NAMES: &str = "sent|to|cc|bcc|subject|date|reply-to|gesendet|an|betreff|datum|kopie|envoyé|à|objet|\
    enviado|enviada|para|asunto|fecha|inviato|a|oggetto|data|risposta|verzonden|aan|onderwerp|wysłano|wysłane|do|temat|\
    dw|assunto|отправлено|кому|тема|дата|копия|надіслано|skickat|till|ämne|kopia|sendt|til|emne|dato|kopi|lähetetty|\
    vastaanottaja|aihe|gönderildi|kime|konu|tarih|elküldve|címzett|tárgy|发送时间|收件人|主题|抄送|日期|寄件日期|收件者|\
    主旨|副本|送信日時|宛先|件名|日付|받는 사람|제목|날짜";

static HEADER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!(r"(?i)^\s*\*?(?:(?P<from>{FROM_NAMES})|{OTHER_NAMES})\s*\*?\s*[:：]")).expect("valid regex")
});

/// Mobile and webmail signatures, matched against the whole (simplified) line.
static MOBILE_SIG: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?xi)^(?:
           sent\ (?:from|with|via|using|by|on)\ (?:my\ |the\ |a\ |an\ )?[^,.;:!?]{1,48}?
             (?:[,.!]?\s*(?:please\s+)?(?:excuse|pardon|forgive|sorry\ for)\b.*|[.!])?
          |sent\ wirelessly\ from\ .{1,40}
          |from\ my\ (?:iphone|ipad|android|mobile|phone|blackberry|samsung|galaxy|cell)\b.{0,24}
          |\S{1,30}\ from\ (?:my\ )?mobile(?:\ device|\ phone)?
          |get\ outlook\ for\ .{1,60}
          |envoy[ée]\ (?:de|depuis)\ (?:mon|ma)\ .{1,40}
          |enviado\ (?:desde|do|de)\ (?:mi|meu|o\ meu)\ .{1,40}
          |inviato\ da(?:l\ mio)?\ .{1,40}
          |(?:verzonden|verstuurd)\ (?:vanaf|met|van)\ .{1,40}
          |von\ meinem\ .{1,40}\ gesendet\.?
          |diese\ nachricht\ wurde\ von\ meinem\ .{1,60}\ gesendet\.?
          |wysłane\ z\ .{1,40}
          |отправлено\ с\ .{1,40}
          |(?:skickat|sendt|sendt)\ fr(?:å|a)n?\ min\ .{1,40}
          |lähetetty\ .{1,30}(?:sta|stä)
          |從我的\ ?.{1,20}?\ ?傳送|发自我的.{1,20}|.{1,20}から送信
        )$",
    )
    .expect("valid regex")
});

/// Markdown links `[text](url)`, bare `<url>` and `(url)` groups inside a signature line.
static SIG_NOISE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\[([^\]]{0,60})\]\([^)]{0,200}\)|<[^>]{0,200}>|\((?:https?://|www\.)[^)]{0,200}\)|https?://\S+")
        .expect("valid regex")
});

/// Classifies each line on its own; wrapped attributions and header blocks are found by [`mark_windows`] later.
pub(super) fn classify(line: &str) -> Kind {
    let trimmed = line.trim();
    if trimmed.is_empty() {
        return Kind::Empty;
    }
    if QUOTE.is_match(line) {
        return Kind::Quote;
    }
    if line.len() > MAX_LINE {
        return Kind::Text;
    }
    if DELIMITER.is_match(trimmed) {
        return Kind::Delimiter;
    }
    if is_mobile_signature(trimmed) {
        return Kind::MobileSig;
    }
    if is_marker(trimmed) || is_attribution(trimmed) {
        return Kind::Marker;
    }
    if let Some(caps) = HEADER.captures(line) {
        return Kind::Header { from: caps.name("from").is_some() };
    }
    Kind::Text
}

pub(super) fn is_dash_name(line: &str) -> bool {
    let line = line.trim();
    line.chars().nth(DASH_NAME_MAX_CHARS).is_none() && DASH_NAME.is_match(line)
}

/// Setext underlines (`Title` over `=====`) are text, not delimiters.
pub(super) fn is_setext_underline(line: &str) -> bool {
    let t = line.trim();
    t.len() >= 3 && (t.bytes().all(|b| b == b'=') || t.bytes().all(|b| b == b'-'))
}

fn is_marker(trimmed: &str) -> bool {
    MARKER.is_match(trimmed.trim_matches(|c: char| c == '*' || c == '_' || c.is_whitespace()))
}

fn is_mobile_signature(trimmed: &str) -> bool {
    let brackets = |c: char| "<>()[]*_ \t".contains(c);
    // Links first ("Get [Outlook for Android](https://…)"), or brackets first ("<<sent by galaxy>>").
    let links_first = SIG_NOISE.replace_all(trimmed, "$1");
    let brackets_first = SIG_NOISE.replace_all(trimmed.trim_matches(brackets), "$1");
    [links_first, brackets_first].iter().any(|c| {
        let cleaned = c.trim_matches(brackets);
        !cleaned.is_empty() && cleaned.len() <= 120 && MOBILE_SIG.is_match(cleaned)
    })
}

/// Whether `text` (one line, or a window of lines joined with spaces) is an attribution line.
pub(super) fn is_attribution(text: &str) -> bool {
    let dashed = text.starts_with("--");
    let s = text.trim_matches(|c: char| c == '-' || c == '*' || c.is_whitespace());
    if s.is_empty() {
        return false;
    }
    if ATTRIB_DATE_FIRST.is_match(s) || (ATTRIB_ADDRESS_COLON.is_match(s) && ATTRIB_EVIDENCE.is_match(s)) {
        return true;
    }
    // "---- On Tue, 22 Dec 2015 … wrote ----" has no colon.
    let with_colon;
    let s = if dashed && !s.ends_with(':') {
        with_colon = format!("{s}:");
        with_colon.as_str()
    } else {
        s
    };
    ATTRIB_VERB.is_match(s) && ATTRIB_EVIDENCE.is_match(s)
}

/// Whether a line may start a wrapped attribution (the first line of a window of two or more).
pub(super) fn may_start_attribution(line: &str) -> bool {
    let t = line.trim_start_matches(|c: char| c == '-' || c == '*' || c.is_whitespace());
    !t.is_empty() && line.len() <= MAX_LINE && ATTRIB_START.is_match(t)
}

/// Whether a line opens an attribution unambiguously ("On …", "Am …", a date): preferred as a window start.
pub(super) fn strongly_starts_attribution(line: &str) -> bool {
    let t = line.trim_start_matches(|c: char| c == '-' || c == '*' || c.is_whitespace());
    ATTRIB_STRONG_START.is_match(t)
}

#[cfg(test)]
mod tests {
    use super::is_dash_name;

    /// The 40-character bound moved out of the regex (it made the regex slow to build); it must still hold.
    #[test]
    fn dash_name_keeps_its_forty_character_bound() {
        assert!(is_dash_name("-Abhishek Kona"));
        assert!(is_dash_name("  -Zoë O'Brien-Smith  "));
        assert!(is_dash_name(&format!("-A{}", "é".repeat(40))));
        assert!(!is_dash_name(&format!("-A{}", "é".repeat(41))));
        assert!(!is_dash_name("-1 item left"));
        assert!(!is_dash_name("- a list item"));
    }
}
