//! Line classification for reply stripping: what kind of line is this, looked at alone or in a small window.
//!
//! Every regex here runs on one line, or on a join of at most [`MAX_WINDOW`] lines capped at [`MAX_JOINED`]
//! bytes, so the work per line is bounded and the whole pass stays linear in the size of the body.
//!
//! No pattern uses `\b`: a Unicode word boundary makes the regex crate's lazy DFA give up on any non-ASCII
//! haystack and fall back to the PikeVM, tens of times slower per byte (a fuzzed Spanish attribution repeated
//! 800 times took 6 s in a debug build). `(?:^|\W)word` and `word(?:\W|$)` say the same for a yes/no match.

use std::sync::LazyLock;

use regex::Regex;

use crate::parse::pattern::GatedRegex;

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

/// "Original message" phrases of mail clients, in many languages (Outlook, webmail, mobile clients).
const ORIGINAL: &str = "original\\ message|original-nachricht|ursprüngliche\\ nachricht|originalnachricht|\
    message\\ d'origine|message\\ original|mensaje\\ original|messaggio\\ originale|oorspronkelijk\\ bericht|\
    origineel\\ bericht|oryginalna\\ wiadomość|wiadomość\\ oryginalna|mensagem\\ original|исходное\\ сообщение|\
    оригинальное\\ сообщение|ursprungligt\\ meddelande|originalmeddelande|opprinnelig\\ melding|\
    original\\ melding|oprindelig\\ meddelelse|originalmeddelelse|alkuperäinen\\ viesti|upprunaleg\\ skilaboð|\
    původní\\ zpráva|pôvodná\\ správa|eredeti\\ üzenet|orijinal\\ mesaj|özgün\\ ileti|αρχικό\\ μήνυμα|\
    mesaj\\ original|mesajul\\ original|izvorna\\ poruka|izvirno\\ sporočilo|originalus\\ laiškas|\
    oriģinālā\\ ziņojums|algne\\ kiri|missatge\\ original|mensaxe\\ orixinal|tin\\ nhắn\\ gốc|pesan\\ asli|\
    原始邮件|原始郵件|原始信件|元のメッセージ|원본\\ 메시지|הודעה\\ מקורית|الرسالة\\ الأصلية";
const FORWARDED: &str = "forwarded\\ message|weitergeleitete\\ nachricht|message\\ transféré|mensaje\\ reenviado|\
    messaggio\\ inoltrato|doorgestuurd\\ bericht|wiadomość\\ przekazana|mensagem\\ encaminhada|\
    пересылаемое\\ сообщение|пересланное\\ сообщение|vidarebefordrat\\ meddelande|videresendt\\ melding|\
    videresendt\\ meddelelse|välitetty\\ viesti|přeposlaná\\ zpráva|továbbított\\ üzenet|iletilen\\ ileti|\
    προωθημένο\\ μήνυμα|mesaj\\ redirecționat|转发的邮件|轉寄的郵件|転送されたメッセージ|전달된\\ 메시지";

/// Outlook "Original Message" separators and forward markers, after `*` and blanks are trimmed: the phrase between
/// runs of dashes or underscores, or alone on its line (some clients write it bare).
static MARKER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!(
        r"(?xi)^(?:
          [-_=]{{2,}}\s*(?:{ORIGINAL})\s*[-_=]*
         |(?:{ORIGINAL})\s*[-_=]{{2,}}
         |(?:{ORIGINAL})\s*[:：]?
         |[-_=]{{2,}}\s*(?:{FORWARDED})\s*[-_=]*
         |(?:begin\ forwarded\ message|anfang\ der\ weitergeleiteten\ (?:nachricht|e-mail)|
             début\ du\ message\ (?:réexpédié|transféré)|inicio\ del\ mensaje\ reenviado|
             inizio\ messaggio\ inoltrato|begin\ doorgestuurd\ bericht|början\ på\ vidarebefordrat\ meddelande|
             start\ på\ videresendt\ (?:melding|meddelelse)|início\ da\ mensagem\ reencaminhada|
             转发邮件开始|転送されたメッセージの始まり)\s*[:：]?
        )$"
    ))
    .expect("valid regex")
});

/// Attribution verbs at the end of an "On … wrote:" line, in many languages. The colon is optional for a line that
/// also opens like an attribution (see [`is_attribution`]).
static ATTRIB_VERB: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?xi)(?:
           (?:^|\W)(?:wrote|writes|(?:schrieb|schreef|skrev)(?:\W.*)?|hat\ geschrieben|a\ écrit|escribió|escribio|
             ha\ scritto|escreveu|escribiu|va\ escriure|a\ scris|geschreven|pisze|napisał(?:\(a\)|a)?|пише|skrifaði|
             kirjoitti|írta|napsal(?:\(a\)|a)?|napísal(?:\(a\)|a)?|je\ napisa[lo](?:\(a\)|a)?|rašė|rakstīja|kirjutas|
             yazdı|đã\ viết|menulis)
          |написал(?:\(а\)|а)?|написав|написала|έγραψε|כתב|كتب|写道|寫道|書きました|のメッセージ|님이\ 작성|작성
         )\s*[:：]?$",
    )
    .expect("valid regex")
});

/// Evidence that a "... wrote:" line is an attribution and not prose: an address, a date, a time or a year.
static ATTRIB_EVIDENCE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"@|\d{1,2}:\d{2}|(?:^|\W)\d{1,4}[./-]\d{1,2}[./-]\d{1,4}(?:\W|$)|(?:^|\W)(?:19|20)\d{2}(?:\W|$)|\d{4}年",
    )
    .expect("valid regex")
});

/// Gmail's date-first attribution: "2013/7/20 sam <sam@x.org>", "2016-03-03 17:21 GMT+01:00 Some One".
static ATTRIB_DATE_FIRST: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)^\d{1,4}[-/.]\d{1,2}[-/.]\d{1,4}(?:\W(?:.*\W)?GMT[+-]\d|(?:\W.*)?@[^\s<>]+>\s*[:：]?$)")
        .expect("valid regex")
});

/// "Thu, 26 Jun 2014 14:00:51 +0400 от Alexander L <abc@example.com>:": a dated line ending in `<address>:`.
static ATTRIB_ADDRESS_COLON: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"@[^\s<>]+>\s*[:：]$").expect("valid regex"));

/// A line that clearly opens an attribution: "On …", "Am …", a date.
static ATTRIB_STRONG_START: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)^(?:(?:on|am|le|el|il|op|em|den|dnia|w\ dniu|dne|dňa|dana|vào|pada|στις|la|a)(?:\W|$)|\d|在|於)")
        .expect("valid regex")
});

/// A line that may open a wrapped attribution.
static ATTRIB_START: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)^(?:on|am|le|el|il|op|em|den|dnia|w\ dniu|dne|dňa|dana|vào|pada|στις|\d|在)(?:\W|$)|[<@]|^在|^於")
        .expect("valid regex")
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
static MOBILE_SIG: GatedRegex = GatedRegex::new(
    r"(?xi)^(?:
           sent\ (?:from|with|via|using|by|on)\ (?:my\ |the\ |a\ |an\ )?[^,.;:!?]{1,48}?
             (?:[,.!]?\s*(?:please\s+)?(?:excuse|pardon|forgive|sorry\ for)(?:\W.*)?|[.!])?
          |sent\ wirelessly\ from\ .{1,40}
          |from\ my\ (?:iphone|ipad|android|mobile|phone|blackberry|samsung|galaxy|cell)(?:\W.{0,23})?
          |\S{1,30}\ from\ (?:my\ )?mobile(?:\ device|\ phone)?
          |get\ outlook\ for\ .{1,60}
          |envoy[ée]\ (?:de|depuis|avec|à\ partir\ de)\ .{1,40}
          |enviado\ (?:desde|do|de|com|con|a\ partir\ do)\ .{1,40}
          |enviat\ (?:des\ de|amb)\ .{1,40}
          |inviato\ (?:da|dal|con|tramite)\ .{1,40}
          |(?:verzonden|verstuurd)\ (?:vanaf|met|van|via)\ .{1,40}
          |von\ (?:meinem|meiner|unterwegs)(?:\W.{0,39})?\ gesendet\.?|gesendet\ (?:von|mit|vom|über)\ .{1,40}
          |diese\ nachricht\ wurde\ von\ meinem\ .{1,60}\ gesendet\.?
          |wysłane\ z\ .{1,40}|wysłano\ z\ .{1,40}|odesláno\ z\ .{1,40}|odoslané\ z\ .{1,40}
          |отправлено\ (?:с|из)\ .{1,40}|надіслано\ (?:з|із)\ .{1,40}
          |(?:skickat|sendt|skickad)\ (?:fr(?:å|a)n?|med|via)\ .{1,40}|lähetetty\ .{1,30}(?:sta|stä|lla|llä)
          |sent\ fr[aá]\ .{1,40}|.{1,30}\ (?:cihazımdan|telefonumdan)\ gönderildi|\S{1,30}?'?(?:umdan|imden|ımdan|ümden|dan|den|tan|ten)\ gönderildi
          |στάλθηκε\ από\ .{1,40}|trimis\ de\ pe\ .{1,40}|poslano\ (?:s|sa|iz|z)\ .{1,40}|elküldve\ .{1,40}
          |gửi\ từ\ .{1,40}|dikirim\ dari\ .{1,40}|dihantar\ dari\ .{1,40}|נשלח\ מ.{1,40}
          |從我的\ ?.{1,20}?\ ?傳送|(?:从|從)我的\ ?.{1,20}?\ ?发送|(?:发|發)自我的.{1,20}|.{1,20}から送信|.{1,20}에서\ 보냄
          |(?:yahoo|aol|gmx|web\.de|proton|protonmail|tutanota|zoho|yandex|mail\.ru)\ mail\ (?:for|on|app)(?:\W.{0,29})?
        )$",
);

/// Markdown links `[text](url)`, bare `<url>` and `(url)` groups inside a signature line.
static SIG_NOISE: GatedRegex =
    GatedRegex::new(r"\[([^\]]{0,60})\]\([^)]{0,200}\)|<[^>]{0,200}>|\((?:https?://|www\.)[^)]{0,200}\)|https?://\S+");

/// The plain regexes of this module, in the order a body's lines first need them.
static REGEXES: [&LazyLock<Regex>; 11] = [
    &QUOTE,
    &DELIMITER,
    &MARKER,
    &ATTRIB_DATE_FIRST,
    &ATTRIB_ADDRESS_COLON,
    &ATTRIB_EVIDENCE,
    &ATTRIB_VERB,
    &ATTRIB_STRONG_START,
    &ATTRIB_START,
    &HEADER,
    &DASH_NAME,
];

/// Every pattern of this module, for the test that keeps `\b` out of them.
#[cfg(test)]
pub(super) fn patterns() -> Vec<&'static str> {
    REGEXES
        .into_iter()
        .map(|re| LazyLock::force(re).as_str())
        .chain([MOBILE_SIG.exact().as_str(), SIG_NOISE.exact().as_str()])
        .collect()
}

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
    // Cheap byte tests first: each regex below costs a call per line, and bodies run to millions of lines.
    if trimmed.starts_with(['-', '_', '=', '*', '+', '—', '–', 'ᐧ']) && DELIMITER.is_match(trimmed) {
        return Kind::Delimiter;
    }
    if trimmed.len() <= MAX_SIGNATURE && is_mobile_signature(trimmed) {
        return Kind::MobileSig;
    }
    if (may_be_marker(trimmed) && is_marker(trimmed)) || is_attribution(trimmed) {
        return Kind::Marker;
    }
    if line.contains([':', '：'])
        && let Some(caps) = HEADER.captures(line)
    {
        return Kind::Header { from: caps.name("from").is_some() };
    }
    Kind::Text
}

/// Longest mobile signature line considered (links included); the cleaned text is at most 120 bytes.
const MAX_SIGNATURE: usize = 300;
/// Longest "Original Message" / forward separator line considered (long runs of dashes included).
const MAX_MARKER: usize = 160;

/// Separators have runs of dashes, underscores or equals signs, or are a short phrase alone on their line.
fn may_be_marker(trimmed: &str) -> bool {
    trimmed.len() <= 64 || (trimmed.len() <= MAX_MARKER && ["--", "__", "=="].iter().any(|r| trimmed.contains(r)))
}

/// Whether `s` has anything an attribution needs as evidence (see [`ATTRIB_EVIDENCE`]): a digit, `@` or 年.
pub(super) fn may_have_evidence(s: &str) -> bool {
    s.bytes().any(|b| b.is_ascii_digit() || b == b'@') || s.contains('年')
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
    // Without links or brackets the line is its own cleaned form: one match, no rewriting.
    if !trimmed.contains(['<', '>', '(', ')', '[', ']', '*', '_']) && !trimmed.contains("http") {
        return trimmed.len() <= 120 && MOBILE_SIG.is_match(trimmed);
    }
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
    if !may_have_evidence(text) {
        return false;
    }
    let dashed = text.starts_with("--");
    let s = text.trim_matches(|c: char| c == '-' || c == '*' || c.is_whitespace());
    if s.is_empty() {
        return false;
    }
    if ATTRIB_DATE_FIRST.is_match(s) || (ATTRIB_ADDRESS_COLON.is_match(s) && ATTRIB_EVIDENCE.is_match(s)) {
        return true;
    }
    if !ATTRIB_VERB.is_match(s) || !ATTRIB_EVIDENCE.is_match(s) {
        return false;
    }
    // Without its colon ("---- On Tue, 22 Dec 2015 … wrote ----", "On Mon, … <a@b.c> wrote") a line must also open
    // like an attribution, so prose ending in "wrote" stays text.
    s.ends_with([':', '：']) || dashed || ATTRIB_STRONG_START.is_match(s)
}

/// Whether a line ends with an attribution verb (colon or not): it may close a wrapped attribution.
pub(super) fn ends_with_attribution_verb(line: &str) -> bool {
    line.len() <= MAX_LINE && ATTRIB_VERB.is_match(line.trim_end_matches(|c: char| c == '-' || c.is_whitespace()))
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

/// Builds this module's regexes now, in the reverse of the order a mail needs them (see [`crate::parse::warm_up`]).
pub(crate) fn warm_up() {
    for re in REGEXES.into_iter().rev() {
        LazyLock::force(re);
    }
    MOBILE_SIG.warm_up();
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
