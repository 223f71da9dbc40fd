//! Reply stripping: the new text of a reply, without quoted history, attribution lines or signatures.
//!
//! The full body is stored elsewhere; this only decides what an agent sees first. The approach: classify every
//! line (empty, delimiter, mobile signature, history marker, header, quote, text; see [`lines`]), then decide on the
//! sequence of kinds, the way discourse/email_reply_trimmer does:
//!
//! 1. Everything from the first delimiter (`-- `, `____`, `-----`) on is dropped: signatures and list footers.
//! 2. Mobile signature lines ("Sent from my iPhone") are dropped wherever they are.
//! 3. If the mail *starts* with history (an attribution, a forward marker, a header block) the sender wrote below
//!    it: the leading history is skipped.
//! 4. The first history marker that follows some text cuts the rest, unless the history is a quote followed by a
//!    long unquoted part (an inline or bottom-posted reply), in which case only the marker lines go.
//! 5. Trailing quotes and blank lines go.
//! 6. A closing sign-off block below the reply's own text goes: a valediction line ("Best regards,") followed by a
//!    name and title, phone or address lines up to the end (see [`signoff`] for the guards).
//!
//! A mail with no new text at all: if it holds only `>` quotes, they are returned as they are (someone quoting
//! without comment still says something); if it is a quoted reply chain (it quotes an attribution line), or only
//! history, the result is empty.
//!
//! Lines are returned without trailing whitespace, joined with `\n`, with leading and trailing blank lines removed.
//! Every step is linear in the size of the body: regexes run on single lines or on windows of a few lines.

mod lines;
mod signoff;

use lines::Kind;

/// The visible new text of `text` (a plain-text body, LF or CRLF). Never panics; empty when nothing new was written.
pub fn visible_text(text: &str) -> String {
    let lines: Vec<&str> = text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l)).collect();
    let kinds = classify_all(&lines);
    let keep = decide(&kinds, &lines);
    let kept: Vec<&str> = keep.iter().map(|&i| lines[i].trim_end()).collect();
    let start = kept.iter().position(|l| !l.is_empty()).unwrap_or(kept.len());
    let end = kept.iter().rposition(|l| !l.is_empty()).map_or(start, |e| e + 1);
    kept[start..end].join("\n")
}

fn classify_all(lines: &[&str]) -> Vec<Kind> {
    let mut kinds: Vec<Kind> = lines.iter().map(|l| lines::classify(l)).collect();
    for i in 1..lines.len() {
        if kinds[i] == Kind::Delimiter && kinds[i - 1] == Kind::Text && lines::is_setext_underline(lines[i]) {
            kinds[i] = Kind::Text;
        }
    }
    mark_wrapped_attributions(lines, &mut kinds);
    mark_header_blocks(&mut kinds);
    mark_dash_names(lines, &mut kinds);
    kinds
}

/// Attributions wrapped over several lines ("On Mon, … Jeff Atwood <info@discourse.org>" / "wrote:"). For each line
/// that could end one, the smallest window of up to [`lines::MAX_WINDOW`] lines that reads as an attribution wins.
fn mark_wrapped_attributions(lines: &[&str], kinds: &mut [Kind]) {
    // How each line may open a window, computed once: a line is looked at by up to four windows.
    let mut opens = vec![Opens::Unknown; lines.len()];
    for end in 1..lines.len() {
        if !could_end_attribution(lines[end], kinds[end]) {
            continue;
        }
        if let Some(start) = attribution_window(lines, kinds, end, &mut opens) {
            kinds[start..=end].fill(Kind::Marker);
        }
    }
}

/// Whether a line may open a wrapped attribution window, and how clearly.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Opens {
    Unknown,
    No,
    Weakly,
    Strongly,
}

/// The start of the attribution window ending at `end`: the smallest window opening like "On …" or with a date,
/// else the smallest window opening with an address. A line that is an attribution by itself is only extended to
/// a window with such a clear opening ("On Thu, … Discourse Meta <" / "info@discourse.org> wrote:").
fn attribution_window(lines: &[&str], kinds: &[Kind], end: usize, opens: &mut [Opens]) -> Option<usize> {
    // A complete sentence above a complete attribution is text, not the attribution's first half.
    let above = lines[end - 1].trim_end();
    if kinds[end] == Kind::Marker && (above.is_empty() || above.ends_with(['.', '!', '?', ':'])) {
        return None;
    }
    // Every attribution has a digit, an address or a year somewhere: without one in reach, no window is one.
    let reach = (end + 1).saturating_sub(lines::MAX_WINDOW);
    if !lines[reach..=end].iter().any(|l| lines::may_have_evidence(l)) {
        return None;
    }
    // A window whose last line has no colon and no attribution verb can only be Gmail's date-first form
    // ("2013/7/20 sam <sam@x.org>") or a dashed one: its first line must open with a digit or dashes.
    let last = lines[end].trim_end();
    let date_first_only = !last.ends_with([':', '：']) && !lines::ends_with_attribution_verb(last);
    let mut weak = None;
    for size in 2..=lines::MAX_WINDOW.min(end + 1) {
        step();
        let start = end + 1 - size;
        if kinds[start..end].iter().any(|k| matches!(k, Kind::Delimiter | Kind::Marker)) {
            break;
        }
        if matches!(kinds[start], Kind::Empty | Kind::Quote) {
            continue;
        }
        let first = lines[start].trim_start_matches(|c: char| c == '*' || c.is_whitespace());
        if date_first_only && !first.starts_with(|c: char| c.is_ascii_digit() || c == '-') {
            continue;
        }
        if opens[start] == Opens::Unknown {
            opens[start] = if !lines::may_start_attribution(lines[start]) {
                Opens::No
            } else if lines::strongly_starts_attribution(lines[start]) {
                Opens::Strongly
            } else {
                Opens::Weakly
            };
        }
        if opens[start] == Opens::No {
            continue;
        }
        let strong = opens[start] == Opens::Strongly;
        if !strong && (weak.is_some() || kinds[end] == Kind::Marker) {
            continue;
        }
        let joined = join_window(&lines[start..=end])?;
        if lines::is_attribution(&joined) {
            if strong {
                return Some(start);
            }
            weak = Some(start);
        }
    }
    weak
}

fn could_end_attribution(line: &str, kind: Kind) -> bool {
    let t = line.trim_end();
    match kind {
        Kind::Text | Kind::Header { .. } | Kind::Marker => {
            t.len() <= lines::MAX_LINE
                && (t.ends_with([':', '：', '>', '-']) || t.contains("GMT") || lines::ends_with_attribution_verb(t))
        }
        // "> wrote:" closing an attribution that was wrapped by a client that then quoted it.
        Kind::Quote => t.len() <= 40 && t.ends_with([':', '：']),
        _ => false,
    }
}

fn join_window(window: &[&str]) -> Option<String> {
    let mut joined = String::new();
    for line in window {
        let t = line.trim();
        if t.is_empty() {
            continue;
        }
        if !joined.is_empty() {
            joined.push(' ');
        }
        joined.push_str(t);
        if joined.len() > lines::MAX_JOINED {
            return None;
        }
    }
    Some(joined)
}

/// Runs of header lines (wrapped values allowed) become history markers when they look like a quoted message
/// header: at least three fields, or two with a "From" among them. Lone header-like lines are text.
fn mark_header_blocks(kinds: &mut [Kind]) {
    let mut i = 0;
    while i < kinds.len() {
        if !matches!(kinds[i], Kind::Header { .. }) {
            i += 1;
            continue;
        }
        let (mut end, mut headers, mut has_from) = (i, 0, false);
        let mut j = i;
        while j < kinds.len() {
            step();
            match kinds[j] {
                Kind::Header { from } => {
                    headers += 1;
                    has_from |= from;
                    end = j;
                }
                Kind::Text if j - end <= 2 => {}
                _ => break,
            }
            j += 1;
        }
        let is_block = headers >= 3 || (headers >= 2 && has_from);
        for kind in &mut kinds[i..=end] {
            if is_block {
                *kind = Kind::Marker;
            } else if matches!(kind, Kind::Header { .. }) {
                *kind = Kind::Text;
            }
        }
        i = end + 1;
    }
}

/// "-Abhishek Kona" after a blank line and before the end, a delimiter or history is a signature. One pass from
/// the end carries the next non-empty kind (as classified before this pass), so a body of many such lines stays
/// linear.
fn mark_dash_names(lines: &[&str], kinds: &mut [Kind]) {
    let mut next: Option<Kind> = None;
    for i in (0..lines.len()).rev() {
        step();
        let kind = kinds[i];
        let follows_blank = i == 0 || kinds[i - 1] == Kind::Empty;
        if kind == Kind::Text
            && follows_blank
            && matches!(next, None | Some(Kind::Delimiter | Kind::Marker | Kind::Quote))
            && lines::is_dash_name(lines[i])
        {
            kinds[i] = Kind::Delimiter;
        }
        if kind != Kind::Empty {
            next = Some(kind);
        }
    }
}

#[cfg(test)]
thread_local! {
    /// Units of work done by the passes that look at more than one line: the tests check it grows linearly.
    static STEPS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Counts one unit of multi-line work (tests only).
#[inline]
fn step() {
    #[cfg(test)]
    STEPS.with(|s| s.set(s.get() + 1));
}

#[cfg(test)]
fn steps() -> usize {
    STEPS.with(|s| s.get())
}

/// Indices of the lines to keep, in order.
fn decide(kinds: &[Kind], lines: &[&str]) -> Vec<usize> {
    let end = kinds.iter().position(|k| *k == Kind::Delimiter).unwrap_or(kinds.len());
    let mut seq: Vec<usize> = (0..end).filter(|&i| kinds[i] != Kind::MobileSig).collect();
    let kind = |i: usize| kinds[i];

    // 3. The mail starts with history: the sender wrote below it.
    let first = seq.iter().position(|&i| kind(i) != Kind::Empty);
    if let Some(first) = first.filter(|&f| kind(seq[f]) == Kind::Marker) {
        let skip = seq[first..]
            .iter()
            .position(|&i| !matches!(kind(i), Kind::Marker | Kind::Quote | Kind::Empty))
            .map_or(seq.len(), |p| first + p);
        seq.drain(..skip);
    }

    // 4. Top-posting: cut at the first marker that follows text, unless a long reply follows the quoted history.
    if let Some(text) = seq.iter().position(|&i| kind(i) == Kind::Text)
        && let Some(marker) = seq[text..].iter().position(|&i| kind(i) == Kind::Marker).map(|p| text + p)
        && !is_inline_reply(&seq[marker + 1..], kinds)
    {
        seq.truncate(marker);
    }
    seq.retain(|&i| kind(i) != Kind::Marker);

    // 5. Trailing quotes go when something new was written; a quoted reply chain alone is history.
    if seq.iter().any(|&i| kind(i) == Kind::Text) {
        while seq.last().is_some_and(|&i| matches!(kind(i), Kind::Quote | Kind::Empty)) {
            seq.pop();
        }
    } else if seq.iter().any(|&i| kind(i) == Kind::Quote && quotes_attribution(lines[i])) {
        seq.clear();
    }

    // 6. The closing sign-off block, when the reply has text of its own above it.
    if let Some(start) = signoff::start(&seq, kinds, lines) {
        seq.truncate(start);
    }
    seq
}

/// After a marker: quoted lines, then a tail of at least seven lines of unquoted text (the trimmer's threshold;
/// shorter tails after a quote are usually footers).
fn is_inline_reply(after: &[usize], kinds: &[Kind]) -> bool {
    let tail_start = after.iter().rposition(|&i| !matches!(kinds[i], Kind::Text | Kind::Empty)).map_or(0, |p| p + 1);
    let quoted = after[..tail_start].iter().any(|&i| kinds[i] == Kind::Quote);
    let tail_text = after[tail_start..].iter().filter(|&&i| kinds[i] == Kind::Text).count();
    quoted && tail_text >= 7
}

fn quotes_attribution(line: &str) -> bool {
    let inner = line.trim_start_matches(|c: char| c == '>' || c.is_whitespace());
    inner.len() <= lines::MAX_LINE && lines::is_attribution(inner)
}

/// Builds the regexes of reply and signature stripping now (see [`crate::parse::warm_up`]).
pub(crate) fn warm_up() {
    signoff::warm_up();
    lines::warm_up();
}

#[cfg(test)]
mod tests;
