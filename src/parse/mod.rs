//! Parse: raw bytes -> [`InboundMail`]. Total over its input: it never panics, and oddities become warnings.
//! Limits are checked before the MIME parser runs, so hostile mail is refused cheaply.

pub mod html;
pub mod strip;
pub mod subject;

use mail_parser::{HeaderValue, MessageParser};

use crate::config::Limits;
use crate::model::{Address, Header, InboundMail};

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

/// Parses and classifies one message.
pub fn parse_mail(raw: &[u8], limits: &Limits) -> Result<InboundMail, Rejection> {
    if raw.len() > limits.max_message_bytes {
        return Err(Rejection::TooLarge { size: raw.len(), limit: limits.max_message_bytes });
    }
    let message = MessageParser::default().parse(raw).ok_or_else(|| Rejection::NotMail("no headers found".into()))?;
    let mut mail = InboundMail {
        size: raw.len(),
        message_id: message.message_id().map(str::to_owned),
        in_reply_to: text_list(message.in_reply_to()),
        references: text_list(message.references()),
        from: message.from().and_then(|a| a.first()).map(to_address),
        subject: message.subject().unwrap_or_default().to_string(),
        date: message.date().map(|d| d.to_timestamp()),
        text: message.body_text(0).map(|t| t.into_owned()).unwrap_or_default(),
        ..InboundMail::default()
    };
    mail.to = message.to().map(|a| a.iter().map(to_address).collect()).unwrap_or_default();
    mail.cc = message.cc().map(|a| a.iter().map(to_address).collect()).unwrap_or_default();
    mail.headers = message
        .headers_raw()
        .map(|(name, value)| Header { name: name.to_string(), value: value.trim().to_string() })
        .collect();
    mail.visible_text = mail.text.clone();
    Ok(mail)
}

fn to_address(addr: &mail_parser::Addr<'_>) -> Address {
    Address::new(addr.name(), addr.address().unwrap_or_default())
}

fn text_list(value: &HeaderValue<'_>) -> Vec<String> {
    match value {
        HeaderValue::Text(t) => vec![t.to_string()],
        HeaderValue::TextList(list) => list.iter().map(|t| t.to_string()).collect(),
        _ => Vec::new(),
    }
}
