//! Parse: raw bytes -> [`InboundMail`]. Total over its input: it never panics, and oddities become warnings.
//! Limits are checked before the MIME parser runs ([`limits`]), so hostile mail is refused cheaply; the parsed tree
//! is counted again afterwards. Classification (bounce / auto-reply / list / human) is in [`classify`].

pub mod classify;
pub mod html;
pub mod limits;
mod pattern;
pub mod strip;
pub mod subject;

use std::panic::{AssertUnwindSafe, catch_unwind};

use mail_parser::parsers::MessageStream;
use mail_parser::{HeaderValue, Message, MessageParser, MessagePart, MimeHeaders, PartType};

use crate::config::Limits;
use crate::model::{Address, Attachment, Header, InboundMail};

/// Why a mail was not parsed but quarantined. The text is what admins read in `postdesk status` and logs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("message is {size} bytes, over the limit of {limit} (limits.max_message_bytes)")]
    TooLarge { size: usize, limit: usize },
    #[error("message has more than {limit} MIME parts (limits.max_mime_parts)")]
    TooManyParts { limit: usize },
    #[error("MIME nesting is deeper than {limit} levels (limits.max_nesting_depth)")]
    TooDeep { limit: usize },
    #[error("not a mail message: {0}")]
    NotMail(String),
    #[error("the parser failed on this message: {0}")]
    ParserFailed(String),
}

/// Whether parsed attachments carry their decoded bytes or only their hash and size.
#[derive(Clone, Copy, PartialEq, Eq)]
enum AttachmentBytes {
    Keep,
    HashOnly,
}

/// Builds the parser's regexes ahead of need, on the calling thread. A one-mail process (the MTA pipe's `ingest`)
/// runs this on a second thread while the first reads its config, rules and database, so the ~10 ms the regex
/// crate takes to build them overlaps that work instead of following it. The order is the reverse of the order a
/// mail needs them: the parsing thread builds what it reaches first itself and the two meet in the middle (a regex
/// is built once, by whichever thread gets to it first; the other waits for it).
pub fn warm_up() {
    classify::warm_up();
    strip::warm_up();
    subject::warm_up();
}

/// Runs [`warm_up`] on a thread of its own: the one-mail `ingest` overlaps it with its start-up, the daemon keeps it
/// out of the first mail's time. A thread that cannot start only means the regexes are built when first needed.
pub fn warm_up_on_the_side() {
    let _ = std::thread::Builder::new().name("warm-up".into()).spawn(warm_up);
}

/// Parses and classifies one message.
pub fn parse_mail(raw: &[u8], limits: &Limits) -> Result<InboundMail, Rejection> {
    parse(raw, limits, AttachmentBytes::Keep)
}

/// [`parse_mail`] for the pipeline: attachments keep their hash and size but not their bytes, which the store
/// keeps inside the raw mail. A batch in memory is then about its raw size, not twice that.
pub fn parse_mail_hashed(raw: &[u8], limits: &Limits) -> Result<InboundMail, Rejection> {
    parse(raw, limits, AttachmentBytes::HashOnly)
}

fn parse(raw: &[u8], limits: &Limits, attachment_bytes: AttachmentBytes) -> Result<InboundMail, Rejection> {
    if raw.len() > limits.max_message_bytes {
        return Err(Rejection::TooLarge { size: raw.len(), limit: limits.max_message_bytes });
    }
    let size = raw.len();
    let raw = &*limits::without_leading_whitespace(raw);
    limits::prescan(raw, limits)?;
    // mail-parser is fuzzed and meant to be total; catching a panic anyway keeps one bad mail from taking down the
    // fetch loop (defence in depth). The same goes for our own extraction code below.
    catch_unwind(AssertUnwindSafe(|| {
        let message = MessageParser::default()
            .parse(raw)
            .ok_or_else(|| Rejection::NotMail("the MIME parser found no headers".into()))?;
        check_tree(&message, limits)?;
        Ok(build(&message, size, attachment_bytes))
    }))
    .unwrap_or_else(|panic| {
        let what = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "panic".into());
        Err(Rejection::ParserFailed(what))
    })
}

/// Counts the parts and nesting depth of the parsed tree, nested messages included.
fn check_tree(message: &Message<'_>, limits: &Limits) -> Result<(), Rejection> {
    let mut parts = 0usize;
    // (message, part id, depth)
    let mut stack: Vec<(&Message<'_>, u32, usize)> = vec![(message, 0, 1)];
    while let Some((msg, id, depth)) = stack.pop() {
        if depth > limits.max_nesting_depth {
            return Err(Rejection::TooDeep { limit: limits.max_nesting_depth });
        }
        let Some(part) = msg.parts.get(id as usize) else { continue };
        parts += 1;
        if parts > limits.max_mime_parts {
            return Err(Rejection::TooManyParts { limit: limits.max_mime_parts });
        }
        match &part.body {
            PartType::Multipart(children) => stack.extend(children.iter().map(|&c| (msg, c, depth + 1))),
            PartType::Message(nested) => stack.push((nested, 0, depth + 1)),
            _ => {}
        }
    }
    Ok(())
}

/// What a person can read of one value: longer subjects, names and filenames are cut (with "…"), so a 20 MB subject
/// does not become a 20 MB ticket title, acknowledgement subject and list line.
const MAX_SUBJECT_CHARS: usize = 1000;
const MAX_NAME_CHARS: usize = 256;
const MAX_FILENAME_CHARS: usize = 255;
/// RFC 5321 §4.5.3.1.3: a path is at most 256 octets with its angle brackets; longer addresses are not deliverable.
const MAX_ADDRESS_BYTES: usize = 254;
/// Top-level headers kept for rules, classification and proofs: the first (newest) this many, each value decoded
/// from at most this many bytes. Real mail has a few dozen; 900,000 header lines would otherwise cost 250 MB.
const MAX_HEADERS: usize = 1000;
const MAX_HEADER_VALUE_BYTES: usize = 64 * 1024;

fn clip(s: &str, max_chars: usize) -> String {
    match s.char_indices().nth(max_chars) {
        Some((end, _)) => format!("{}…", &s[..end]),
        None => s.to_string(),
    }
}

fn build(message: &Message<'_>, size: usize, attachment_bytes: AttachmentBytes) -> InboundMail {
    let mut mail = InboundMail {
        size,
        message_id: message.message_id().map(strip_brackets),
        in_reply_to: id_list(message.in_reply_to()),
        references: id_list(message.references()),
        from: message.from().and_then(|a| addresses(Some(a)).into_iter().next()),
        sender: message.sender().and_then(|a| addresses(Some(a)).into_iter().next()),
        reply_to: addresses(message.reply_to()),
        to: addresses(message.to()),
        cc: addresses(message.cc()),
        subject: clip(message.subject().unwrap_or_default(), MAX_SUBJECT_CHARS),
        date: message.date().filter(|d| d.is_valid()).map(|d| d.to_timestamp()),
        headers: top_headers(message),
        ..InboundMail::default()
    };
    mail.delivered_to = mail
        .headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case("Delivered-To") || h.name.eq_ignore_ascii_case("X-Original-To"))
        .map(|h| strip_brackets(h.value.trim()))
        .filter(|v| !v.is_empty())
        .collect();
    mail.return_path = mail.header("Return-Path").map(|v| strip_brackets(v.split_whitespace().next().unwrap_or("")));
    fill_bodies(message, &mut mail, attachment_bytes);
    mail.visible_text = strip::visible_text(&mail.text);
    add_warnings(message, &mut mail);

    let evidence = evidence(message, &mail);
    let verdict = classify::classify(&evidence);
    mail.classification = verdict.classification;
    mail.classification_reason = verdict.reason;
    mail.bounce = verdict.bounce;
    mail
}

fn strip_brackets(id: &str) -> String {
    id.trim().trim_start_matches('<').trim_end_matches('>').trim().to_string()
}

fn id_list(value: &HeaderValue<'_>) -> Vec<String> {
    match value {
        HeaderValue::Text(t) => vec![strip_brackets(t)],
        HeaderValue::TextList(list) => list.iter().map(|t| strip_brackets(t)).collect(),
        _ => Vec::new(),
    }
    .into_iter()
    .filter(|s| !s.is_empty())
    .collect()
}

/// Every mailbox of an address header, group members included (RFC 5322 §3.4).
fn addresses(value: Option<&mail_parser::Address<'_>>) -> Vec<Address> {
    let to_address = |a: &mail_parser::Addr<'_>| {
        let name = a.name().map(|n| clip(n, MAX_NAME_CHARS));
        a.address().filter(|e| e.len() <= MAX_ADDRESS_BYTES).map(|e| Address::new(name.as_deref(), e))
    };
    match value {
        Some(mail_parser::Address::List(list)) => list.iter().filter_map(to_address).collect(),
        Some(mail_parser::Address::Group(groups)) => {
            groups.iter().flat_map(|g| g.addresses.iter()).filter_map(to_address).collect()
        }
        None => Vec::new(),
    }
}

/// Top-level headers in order, each value unfolded and RFC 2047-decoded as unstructured text.
fn top_headers(message: &Message<'_>) -> Vec<Header> {
    let raw = message.raw_message();
    message
        .root_part()
        .headers
        .iter()
        .take(MAX_HEADERS)
        .map(|h| {
            let end = (h.offset_end as usize).min(h.offset_start as usize + MAX_HEADER_VALUE_BYTES);
            let bytes = raw.get(h.offset_start as usize..end).unwrap_or_default();
            let value = match MessageStream::new(bytes).parse_unstructured() {
                HeaderValue::Text(t) => t.trim().to_string(),
                _ => String::new(),
            };
            Header { name: h.name.as_str().to_string(), value }
        })
        .collect()
}

fn is_plain(part: &MessagePart<'_>) -> bool {
    part.content_type().is_none_or(|ct| {
        ct.ctype().eq_ignore_ascii_case("text") && ct.subtype().is_none_or(|s| s.eq_ignore_ascii_case("plain"))
    })
}

/// text: every text/plain body part joined, else the HTML converted; html: the HTML body parts; attachments:
/// every other leaf part (inline images included), nested messages as their raw bytes.
fn fill_bodies(message: &Message<'_>, mail: &mut InboundMail, attachment_bytes: AttachmentBytes) {
    let mut texts = Vec::new();
    for part in message.text_body.iter().filter_map(|&id| message.parts.get(id as usize)) {
        if let PartType::Text(t) = &part.body
            && is_plain(part)
        {
            texts.push(t.as_ref());
        }
    }
    let htmls: Vec<&str> = message
        .html_body
        .iter()
        .filter_map(|&id| match &message.parts.get(id as usize)?.body {
            PartType::Html(h) => Some(h.as_ref()),
            _ => None,
        })
        .collect();
    if !htmls.is_empty() {
        mail.html = Some(htmls.join("\n"));
    }
    mail.text = if texts.is_empty() {
        mail.html.as_deref().map(html::html_to_text).unwrap_or_default()
    } else {
        texts.join("\n")
    };
    let bodies: Vec<u32> = message.text_body.iter().chain(message.html_body.iter()).copied().collect();
    for (id, part) in message.parts.iter().enumerate() {
        let data: &[u8] = match &part.body {
            PartType::Multipart(_) => continue,
            PartType::Text(_) | PartType::Html(_) if bodies.contains(&(id as u32)) => continue,
            PartType::Text(t) | PartType::Html(t) => t.as_bytes(),
            PartType::Binary(b) | PartType::InlineBinary(b) => b,
            PartType::Message(_) => {
                message.raw_message().get(part.offset_body as usize..part.offset_end as usize).unwrap_or_default()
            }
        };
        if id == 0 && data.is_empty() {
            continue;
        }
        mail.attachments.push(Attachment {
            filename: part.attachment_name().map(|n| clip(n, MAX_FILENAME_CHARS)),
            content_type: content_type(part).unwrap_or_else(|| "application/octet-stream".into()),
            size: data.len(),
            sha256: crate::model::sha256_hex(data),
            data: if attachment_bytes == AttachmentBytes::Keep { data.to_vec() } else { Vec::new() },
        });
    }
}

fn content_type(part: &MessagePart<'_>) -> Option<String> {
    let ct = part.content_type()?;
    Some(match ct.subtype() {
        Some(sub) => format!("{}/{}", ct.ctype(), sub).to_ascii_lowercase(),
        None => ct.ctype().to_ascii_lowercase(),
    })
}

fn add_warnings(message: &Message<'_>, mail: &mut InboundMail) {
    for (id, part) in message.parts.iter().enumerate() {
        if part.is_encoding_problem {
            mail.warnings
                .push(format!("MIME part {id}: broken transfer encoding or charset; decoded as far as possible"));
        }
    }
    if mail.message_id.is_none() {
        mail.warnings.push("no Message-ID header".into());
    }
    if mail.from.is_none() {
        mail.warnings.push("no usable From address".into());
    }
    if mail.date.is_none() && mail.header("Date").is_some() {
        mail.warnings.push("Date header could not be parsed".into());
    }
}

/// Gathers what the classifier needs from the parsed tree: DSN and ARF parts, returned headers.
fn evidence<'a>(message: &Message<'_>, mail: &'a InboundMail) -> classify::Evidence<'a> {
    let mut e = classify::Evidence {
        headers: &mail.headers,
        subject: &mail.subject,
        from: mail.from.as_ref(),
        to: &mail.to,
        return_path: mail.return_path.as_deref(),
        text: &mail.text,
        ..Default::default()
    };
    if let Some(ct) = message.root_part().content_type() {
        e.content_type = content_type(message.root_part()).unwrap_or_default();
        e.report_type = ct.attribute("report-type").map(|r| r.trim().to_ascii_lowercase());
    }
    for part in &message.parts {
        let kind = content_type(part).unwrap_or_default();
        let body = || match &part.body {
            PartType::Text(t) | PartType::Html(t) => t.to_string(),
            PartType::Binary(b) | PartType::InlineBinary(b) => String::from_utf8_lossy(b).into_owned(),
            _ => String::new(),
        };
        match kind.as_str() {
            "message/delivery-status" | "message/global-delivery-status" => e.delivery_status.push(body()),
            "message/feedback-report" => e.feedback_report.push(body()),
            "message/disposition-notification" | "message/global-disposition-notification" => {
                e.disposition_notification = true;
            }
            // A returned message mail-parser could not parse as one still holds its headers as text.
            "message/rfc822" if !matches!(part.body, PartType::Message(_)) => {
                e.returned_headers.get_or_insert_with(body);
            }
            "text/rfc822-headers" | "message/rfc822-headers" | "text/rfc822-header" => {
                e.returned_headers.get_or_insert_with(body);
            }
            _ => {}
        }
        if let PartType::Message(nested) = &part.body
            && e.returned_message_id.is_none()
        {
            e.returned_message_id = nested.message_id().map(strip_brackets);
            e.returned_to = addresses(nested.to()).into_iter().next().map(|a| a.email);
        }
    }
    e
}
