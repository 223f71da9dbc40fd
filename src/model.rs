//! The owned, parsed form of one inbound mail that every later stage (thread, route, store, respond) works on.
//! Nothing here borrows from the raw bytes, so a mail can cross threads and outlive its buffer.

use serde::Serialize;

/// A mailbox address as written in a header. `email` keeps the sender's spelling; compare with [`Address::key`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Address {
    pub name: Option<String>,
    pub email: String,
}

impl Address {
    pub fn new(name: Option<&str>, email: &str) -> Self {
        Address { name: name.map(str::to_owned), email: email.trim().to_owned() }
    }

    /// Addresses compare case-insensitively in practice (RFC 5321 allows a case-sensitive local part, but no
    /// real mail system relies on it, and helpdesk customers type their address in any case).
    pub fn key(&self) -> String {
        self.email.to_ascii_lowercase()
    }

    pub fn domain(&self) -> &str {
        self.email.rsplit_once('@').map(|(_, d)| d).unwrap_or("")
    }
}

/// What kind of sender produced a mail; decides whether we may answer it automatically (RFC 3834).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Classification {
    #[default]
    Human,
    AutoReply,
    Bounce,
    List,
}

impl Classification {
    pub fn as_str(self) -> &'static str {
        match self {
            Classification::Human => "human",
            Classification::AutoReply => "auto-reply",
            Classification::Bounce => "bounce",
            Classification::List => "list",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "human" => Classification::Human,
            "auto-reply" => Classification::AutoReply,
            "bounce" => Classification::Bounce,
            "list" => Classification::List,
            _ => return None,
        })
    }
}

/// One recipient a delivery status notification reports on (RFC 3464 §2.3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FailedRecipient {
    pub address: String,
    /// Enhanced status code such as `5.1.1` (RFC 3463), when the bounce names one.
    pub status: Option<String>,
    /// `failed`, `delayed`, `delivered`, … from the DSN's Action field, when present.
    pub action: Option<String>,
    /// Whether the delivery has been given up or is still being retried; `None` for reports that are not
    /// failures (`delivered`, `relayed`, feedback reports) and for failures nothing tells about.
    pub permanence: Option<Permanence>,
}

/// Whether a delivery failure is final (RFC 3464 §2.3.3 `Action: failed`, or a 5.x.x status) or a warning that
/// the reporting MTA is still trying (`Action: delayed`, 4.x.x, "will retry").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Permanence {
    Permanent,
    Temporary,
}

impl FailedRecipient {
    /// The reporting MTA has given up on this recipient.
    pub fn is_permanent(&self) -> bool {
        self.permanence == Some(Permanence::Permanent)
    }

    /// Whether this failure says the address itself is bad, so we stop mailing it: a permanent failure, except
    /// where its status (RFC 3463) says the address is fine: a transient 4.x.x class (a mail that expired in a
    /// queue says the host was unreachable), a full mailbox (X.2.2, which §3.3 calls a "persistent transient"
    /// condition), a delivery time expired (X.4.7), or a policy/security refusal of our mail (X.7.x: spam filters,
    /// authentication), which says nothing about the mailbox.
    pub fn suppresses_address(&self) -> bool {
        let status = self.status.as_deref().unwrap_or("");
        let address_fine = status.starts_with('4')
            || status.ends_with(".2.2")
            || status.ends_with(".4.7")
            || status.get(1..4) == Some(".7.");
        self.is_permanent() && !address_fine
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct BounceInfo {
    pub recipients: Vec<FailedRecipient>,
    /// Message-ID of the mail that bounced, from the returned headers (`text/rfc822-headers` or `message/rfc822`).
    pub original_message_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    /// The sender's name for the file: metadata only, never used as a path.
    pub filename: Option<String>,
    pub content_type: String,
    /// Decoded size in bytes.
    pub size: usize,
    /// Lowercase hex SHA-256 of the decoded content: its address in the store.
    pub sha256: String,
    /// The decoded bytes. Empty in mail from [`crate::parse::parse_mail_hashed`]: the store keeps attachments
    /// inside the raw mail, so the pipeline does not carry a second copy.
    pub data: Vec<u8>,
}

/// Lowercase hex SHA-256 of bytes.
pub fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(data))
}

/// A header as it appeared, with its value unfolded and RFC 2047-decoded where that applies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Header {
    pub name: String,
    pub value: String,
}

/// An inbound mail after parsing and classification.
#[derive(Debug, Clone, Default)]
pub struct InboundMail {
    /// Size of the raw message in bytes.
    pub size: usize,
    /// Message-ID without angle brackets.
    pub message_id: Option<String>,
    pub in_reply_to: Vec<String>,
    /// Oldest first, as in the header (RFC 5322 §3.6.4).
    pub references: Vec<String>,
    pub from: Option<Address>,
    pub sender: Option<Address>,
    pub reply_to: Vec<Address>,
    pub to: Vec<Address>,
    pub cc: Vec<Address>,
    /// `Delivered-To` / `X-Original-To` values: the address the MTA delivered to, which To may not show (Bcc).
    pub delivered_to: Vec<String>,
    /// The envelope sender from `Return-Path`; `Some("")` for the null sender `<>`.
    pub return_path: Option<String>,
    /// Decoded subject as sent.
    pub subject: String,
    /// `Date:` as Unix seconds, when parsable.
    pub date: Option<i64>,
    /// Every top-level header in order.
    pub headers: Vec<Header>,
    /// The full text body (text/plain, or HTML converted to text when the mail has no plain part).
    pub text: String,
    /// The HTML body, when the mail had one.
    pub html: Option<String>,
    /// The new text of a reply: quotes, attribution lines and signatures removed. `text` keeps everything.
    pub visible_text: String,
    pub attachments: Vec<Attachment>,
    pub classification: Classification,
    /// Why the classifier decided as it did (e.g. `Auto-Submitted: auto-replied`), for logs and `rules test`.
    pub classification_reason: Option<String>,
    pub bounce: Option<BounceInfo>,
    /// Oddities the parser survived (bad charset, broken header): data, not errors.
    pub warnings: Vec<String>,
}

impl InboundMail {
    /// The first header with this name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|h| h.name.eq_ignore_ascii_case(name)).map(|h| h.value.as_str())
    }

    pub fn headers_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers.iter().filter(move |h| h.name.eq_ignore_ascii_case(name)).map(|h| h.value.as_str())
    }

    /// The address replies should go to: Reply-To, else From.
    pub fn reply_address(&self) -> Option<&Address> {
        self.reply_to.first().or(self.from.as_ref())
    }

    /// Every recipient the mail names: To, Cc, then delivery headers.
    pub fn recipient_keys(&self) -> Vec<String> {
        let mut all: Vec<String> = self.to.iter().chain(self.cc.iter()).map(Address::key).collect();
        all.extend(self.delivered_to.iter().map(|a| a.trim().to_ascii_lowercase()));
        all.sort();
        all.dedup();
        all
    }

    /// Message-IDs this mail answers, newest first: References from the end, then In-Reply-To (RFC 5322 §3.6.4).
    pub fn parent_ids(&self) -> Vec<&str> {
        let mut ids: Vec<&str> = self.references.iter().rev().map(String::as_str).collect();
        for id in &self.in_reply_to {
            if !ids.contains(&id.as_str()) {
                ids.push(id);
            }
        }
        ids
    }
}

/// Ticket priority, 1 (very low) to 5 (very high), as in OTRS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Priority {
    VeryLow = 1,
    Low = 2,
    #[default]
    Normal = 3,
    High = 4,
    VeryHigh = 5,
}

impl Priority {
    pub const NAMES: [&'static str; 5] = ["very-low", "low", "normal", "high", "very-high"];

    pub fn as_str(self) -> &'static str {
        Self::NAMES[self as usize - 1]
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s.trim().to_ascii_lowercase().as_str() {
            "very-low" | "1" => Priority::VeryLow,
            "low" | "2" => Priority::Low,
            "normal" | "3" => Priority::Normal,
            "high" | "4" => Priority::High,
            "very-high" | "5" => Priority::VeryHigh,
            _ => return None,
        })
    }
}

/// Ticket lifecycle state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum TicketState {
    #[default]
    New,
    Open,
    Pending,
    Closed,
    Merged,
}

impl TicketState {
    pub const NAMES: [&'static str; 5] = ["new", "open", "pending", "closed", "merged"];

    pub fn as_str(self) -> &'static str {
        Self::NAMES[self as usize]
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s.trim().to_ascii_lowercase().as_str() {
            "new" => TicketState::New,
            "open" => TicketState::Open,
            "pending" => TicketState::Pending,
            "closed" => TicketState::Closed,
            "merged" => TicketState::Merged,
            _ => return None,
        })
    }
}

/// The ticket an automatic reply is about.
pub struct TicketFacts {
    pub id: i64,
    pub number: String,
    pub subject: String,
    pub queue: String,
    pub state: String,
    pub priority: String,
}
