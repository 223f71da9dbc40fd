//! Closing sign-off blocks: "Best regards," / "Jane Doe" / "Senior Accountant | ACME GmbH" / "+49 30 1234567" at
//! the very end of the reply's own text (after quotes, attributions and delimited signatures are already cut).
//!
//! No RFC covers this; the rule follows how people and clients write, and is tuned to keep text when unsure:
//!
//! - The block opens with a whole line that is a valediction, in one of many languages ("Kind regards,",
//!   "Mit freundlichen Grüßen", "Cordialement", "С уважением", "よろしくお願いします" …). A valediction inside a
//!   sentence, or followed by more paragraphs, is not one.
//! - Below it, up to the end, only 1–[`MAX_BLOCK`] short lines that read like a name, a title, a company, a phone
//!   number, an address or a URL: none longer than [`MAX_SIG_CHARS`] characters, none quoted, none a sentence or
//!   its continuation (prose ending in '.', a '?', '!', ':' or ',' at the end, a lower-case first word), no "P.S.".
//! - The block must say more than a name: at least two such lines, or one with contact details (an address, a URL,
//!   a phone number, a "|"-separated title). "Thanks,\nSome One" and a lone "Cheers" stay: Discourse's
//!   email_reply_trimmer expects them kept (its users read them as part of the reply), and a name costs the agent
//!   nothing, while a title/phone/address block is the noise an agent should not have to read on every reply.
//! - "Thanks"-like valedictions ("Thanks", "Thank you", "Danke", "Merci" …) count only without a closing '.' or
//!   '!': "Thank you!" is a sentence of the reply.
//! - Something of the reply's own text must remain above the block; otherwise nothing is cut. The valediction must
//!   close that text, not continue a list: never under a line ending in ':', and a bare one-word valediction
//!   ("Best", "Regards") only after a blank line or a finished sentence.
//!
//! Only the last lines are looked at (at most [`MAX_SCAN`]), so the cost is constant per body.

use std::sync::LazyLock;

use regex::Regex;

use super::lines::Kind;

/// Most lines (name, title, company, phone, address, URL) a sign-off block may have below its valediction.
const MAX_BLOCK: usize = 6;
/// Most lines (blank ones included) looked at from the end of the text.
const MAX_SCAN: usize = 16;
/// Longest line, in characters, that may belong to a sign-off block.
const MAX_SIG_CHARS: usize = 60;
/// Most whitespace-separated words on a signature line ("Head of Customer Success, ACME Europe GmbH").
const MAX_SIG_WORDS: usize = 8;
/// Longest valediction line, in bytes (the regex is only tried on lines this short). This is also what bounds a
/// "Grüße aus <place>": a counted `{1,30}` there made the regex take 8 ms to build, in every one-mail `ingest`.
const MAX_VALEDICTION: usize = 80;

/// Valedictions that are never a sentence of their own, after surrounding blanks are trimmed. Optional trailing
/// punctuation or dashes. No `\b` (see the note in [`super::lines`]): every alternative is anchored at both ends.
static VALEDICTION: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?xi)^(?:
          # English
           (?:(?:with\ )?(?:best|kind|kindest|warm|warmest|many|fond|sincere)\ )?(?:regards|wishes)
          |(?:thanks|thank\ you|many\ thanks)\ (?:and|&)\ (?:best\ |kind\ )?regards
          |regards|rgds|br|kr|best|all\ the\ best|cheers|sincerely(?:\ yours)?|yours(?:\ (?:sincerely|truly|faithfully))?
          |respectfully(?:\ yours)?|cordially|take\ care|greetings|kind\ greetings
          # German
          |mit\ (?:freundlichen|besten|herzlichen|lieben|vielen)\ (?:gr(?:ü|ue|u)(?:ß|ss)en|gr(?:ü|ue)(?:ß|ss)e)
          |(?:freundliche|viele|beste|liebe|herzliche|sch(?:ö|oe)ne)\ gr(?:ü|ue)(?:ß|ss)e(?:\ aus\ [\p{L}\ .-]+)?
          |mfg|lg|vg|bg|gr(?:u|ü)(?:ß|ss)|gr(?:ü|ue)(?:ß|ss)e|servus|tsch(?:ü|ue)ss
          # French
          |(?:bien\ )?cordialement|bien\ (?:à|a)\ (?:vous|toi)|(?:meilleures\ |sinc(?:è|e)res\ |bien\ des\ )?salutations
          |(?:bien\ )?amicalement|bonne\ (?:journ(?:é|e)e|soir(?:é|e)e)|(?:à|a)\ bient(?:ô|o)t
          # Spanish, Portuguese, Catalan
          |(?:un\ )?saludos?(?:\ cordiales?)?|un\ saludo\ cordial|atentamente|cordialmente|un\ abrazo|abra(?:ç|c)os?
          |atenciosamente|(?:melhores\ )?cumprimentos|salutacions
          # Italian
          |(?:cordiali|distinti|tanti)\ saluti|saluti|un\ saluto|a\ presto|buona\ giornata
          # Dutch
          |(?:met\ )?(?:vriendelijke|hartelijke)\ groet(?:en)?|groet(?:en|jes)?|mvg
          # Scandinavian, Finnish
          |med\ v(?:ä|a)nlig(?:a)?\ h(?:ä|a)lsning(?:ar)?|v(?:ä|a)nliga\ h(?:ä|a)lsningar|h(?:ä|a)lsningar|mvh
          |(?:med\ )?venn?lig(?:\ hilsen|e\ hilsener)|hilsen|(?:ystävällisin\ )?terveisin
          # Central and Eastern European
          |pozdrawiam(?:\ serdecznie)?|z\ powa(?:ż|z)aniem|pozdrowienia|s\ pozdravem|s\ pozdravom|üdvözlettel|tisztelettel
          |cu\ stim(?:ă|a)|с\ уважением|всего\ доброго|с\ наилучшими\ пожеланиями|з\ повагою|saygılarımla|με\ εκτίμηση
          # East Asian
          |(?:どうぞ)?(?:よろしく|宜しく)(?:お願い(?:いた|致)?します|お願い申し上げます)?|此致(?:\s*敬礼)?|敬礼|祝好|顺祝商祺
          |감사합니다|수고하세요
        )[\s,.!;~。、！-]*$",
    )
    .expect("valid regex")
});

/// Thanks-like closings: a valediction only when no '.' or '!' makes them a sentence ("Thank you!").
static THANKS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?xi)^(?:thanks(?:\ again|\ in\ advance|\ a\ lot)?|thank\ you(?:\ in\ advance)?|many\ thanks|thx|
          danke(?:\ sch(?:ö|oe)n)?|vielen\ dank|besten\ dank|merci(?:\ beaucoup)?|gracias|muchas\ gracias|grazie(?:\ mille)?|
          obrigad[oa]|bedankt|dank\ je\ wel|tack|takk|tak|kiitos|dziękuję|děkuji|спасибо|teşekkürler|谢谢|謝謝|
          ありがとうございます)\s*,?$",
    )
    .expect("valid regex")
});

/// Contact details on a signature line: an address, a URL, or a "|"-separated title.
static CONTACT: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)[^\s@]@[^\s@]+\.[a-z]|https?://|www\.|\s[|·•]\s").expect("valid regex"));

/// Every pattern of this module, for the test that keeps `\b` out of them.
#[cfg(test)]
pub(super) fn patterns() -> Vec<&'static str> {
    REGEXES.into_iter().map(|re| LazyLock::force(re).as_str()).collect()
}

/// This module's regexes, in the order a sign-off block needs them.
static REGEXES: [&LazyLock<Regex>; 3] = [&VALEDICTION, &THANKS, &CONTACT];

/// Where the closing sign-off block starts in `keep` (indices of the kept lines, in order), if there is one.
pub(super) fn start(keep: &[usize], kinds: &[Kind], lines: &[&str]) -> Option<usize> {
    let (mut block, mut contact) = (0, false);
    for pos in (keep.len().saturating_sub(MAX_SCAN)..keep.len()).rev() {
        let i = keep[pos];
        match kinds[i] {
            Kind::Empty => continue,
            Kind::Text => {}
            _ => return None,
        }
        let line = lines[i].trim();
        if block > 0 && is_valediction(line) {
            let enough = block >= 2 || contact;
            let above = pos.checked_sub(1).map(|p| lines[keep[p]].trim());
            let text_above = keep[..pos].iter().any(|&j| kinds[j] == Kind::Text);
            return (enough && text_above && closes_the_text(line, above)).then_some(pos);
        }
        if block == MAX_BLOCK || !is_signature_line(line) {
            return None;
        }
        block += 1;
        contact |= has_contact(line);
    }
    None
}

/// A valediction closes the text above it, rather than continuing a list ("Ranking:" / "Best" / "Worst" / "Average"):
/// never under a line ending in ':', and a bare one-word valediction ("Best", "Regards", "LG") only after a blank
/// line or a finished sentence.
fn closes_the_text(valediction: &str, above: Option<&str>) -> bool {
    let Some(above) = above.filter(|a| !a.is_empty()) else { return true };
    if above.ends_with([':', '：']) {
        return false;
    }
    let one_bare_word = valediction.split_whitespace().nth(1).is_none() && valediction.chars().all(char::is_alphabetic);
    !one_bare_word || above.ends_with(['.', '!', '?', ')', '…', '。', '！', '？'])
}

fn is_valediction(line: &str) -> bool {
    line.len() <= MAX_VALEDICTION && (VALEDICTION.is_match(line) || THANKS.is_match(line))
}

/// A short line that reads like a name, title, company, phone number, address or URL, not like a sentence.
fn is_signature_line(line: &str) -> bool {
    if line.chars().nth(MAX_SIG_CHARS).is_some() || line.split_whitespace().nth(MAX_SIG_WORDS).is_some() {
        return false;
    }
    let lower = line.to_lowercase();
    if lower.starts_with("p.s") || lower.starts_with("ps:") || lower.starts_with("ps ") || lower.starts_with("pps") {
        return false;
    }
    // A line ending in a comma goes on ("Regards" / "to everyone who helped,"); '?', '!' or ':' end a sentence.
    if line.ends_with(['?', '!', ':', ',', ';', '？', '！', '：', '。', '，']) {
        return false;
    }
    // Names, titles and companies start with a capital, a digit or a sign; a lower-case word continues a sentence,
    // unless the line is an address, URL or phone number ("jane@acme.example", "www.acme.example").
    if line.chars().next().is_some_and(char::is_lowercase) && !has_contact(line) {
        return false;
    }
    !ends_like_a_sentence(line)
}

/// "I attached the log." is a sentence; "Jane Doe, Ph.D.", "ACME Inc." and "Berlin." are not: a full stop ends a
/// sentence when it follows a lower-case word of two or more letters, after at least three words.
fn ends_like_a_sentence(line: &str) -> bool {
    let Some(body) = line.strip_suffix('.') else { return false };
    let mut words = body.split_whitespace().rev();
    let Some(last) = words.next() else { return false };
    let lower_word = last.chars().count() >= 2
        && last.chars().all(char::is_alphabetic)
        && last.chars().next().is_some_and(char::is_lowercase);
    lower_word && words.nth(1).is_some()
}

/// An address, a URL, a "|" separator, or a phone number (six digits or more on a line of mostly digits).
fn has_contact(line: &str) -> bool {
    let digits = line.chars().filter(char::is_ascii_digit).count();
    let letters = line.chars().filter(|c| c.is_alphabetic()).count();
    (digits >= 6 && digits >= letters) || CONTACT.is_match(line)
}

/// Builds this module's regexes now, in the reverse of the order a mail needs them (see [`crate::parse::warm_up`]).
pub(crate) fn warm_up() {
    for re in REGEXES.into_iter().rev() {
        LazyLock::force(re);
    }
}

#[cfg(test)]
mod tests {
    use super::{ends_like_a_sentence, has_contact, is_signature_line, is_valediction};

    #[test]
    fn valedictions_in_many_languages() {
        for v in [
            "Best regards,",
            "Kind Regards",
            "Regards",
            "Best,",
            "Cheers!",
            "Sincerely,",
            "Yours truly,",
            "Thanks & Regards,",
            "Mit freundlichen Grüßen",
            "Mit freundlichen Gruessen",
            "Viele Grüße aus Hamburg",
            "LG",
            "Cordialement,",
            "Bien à vous,",
            "Saludos,",
            "Un saludo.",
            "Atentamente,",
            "Cordiali saluti",
            "Distinti saluti,",
            "Met vriendelijke groet,",
            "Groeten,",
            "Med vänlig hälsning",
            "Hilsen",
            "Med vennlig hilsen",
            "Pozdrawiam,",
            "С уважением,",
            "よろしくお願いします。",
            "此致敬礼",
            "Thanks,",
            "Thank you",
            "Danke",
        ] {
            assert!(is_valediction(v), "{v}");
        }
        for v in [
            "Thank you!",
            "Thanks.",
            "Regards to your team and see you on Monday",
            "Best solution so far,",
            "I send my regards,",
            "Best regards, Jane",
        ] {
            assert!(!is_valediction(v), "{v}");
        }
    }

    #[test]
    fn signature_lines_are_short_and_not_sentences() {
        for l in [
            "Jane Doe",
            "John E. Doe, Ph.D.",
            "Senior Accountant | ACME GmbH",
            "+49 30 1234567",
            "ACME Inc.",
            "https://acme.example",
            "www.acme.example",
            "jane.doe@acme.example",
            "//Jef",
        ] {
            assert!(is_signature_line(l), "{l}");
        }
        for l in [
            "I attached the log.",
            "Can you call me back?",
            "P.S. the printer is on floor 2",
            "Note:",
            "to everyone who helped,",
            "and the whole team",
            "This e-mail and any attachment is confidential and meant only for you",
        ] {
            assert!(!is_signature_line(l), "{l}");
        }
        assert!(ends_like_a_sentence("Please try again later."));
        assert!(!ends_like_a_sentence("Berlin."));
        assert!(has_contact("Tel. +49 (30) 123 45 67"));
        assert!(has_contact("jane.doe@acme.example"));
        assert!(!has_contact("Jane Doe"));
        assert!(!has_contact("Room 12"));
    }
}
