//! Thread: which ticket does a mail belong to? A pure resolver over a lookup trait, so it is tested without a
//! database. Order (after mox and RFC 5322 §3.6.4): the ticket token in the subject, then References (newest
//! first) and In-Reply-To against Message-IDs we stored, else a new ticket.

use crate::model::InboundMail;
use crate::token::{TokenFormat, is_valid_number};

/// A ticket as the resolver sees it: after merges are followed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketRef {
    pub id: i64,
    pub number: String,
}

pub trait ThreadLookup {
    type Error;
    /// The (surviving, after merges) ticket with this number.
    fn ticket_by_number(&self, number: &str) -> Result<Option<TicketRef>, Self::Error>;
    /// The (surviving) ticket that holds an article with this Message-ID.
    fn ticket_by_message_id(&self, message_id: &str) -> Result<Option<TicketRef>, Self::Error>;
    /// Whether `address` (any case) is the customer, a Cc'd party or an agent of the ticket.
    fn is_party(&self, ticket_id: i64, address: &str) -> Result<bool, Self::Error>;
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Via {
    Token,
    Reference(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution {
    Existing {
        ticket: TicketRef,
        via: Via,
    },
    /// A new ticket. `claimed` is a valid token of another ticket that the sender may not join (hijack guard);
    /// `note` says why a token present in the subject was not followed.
    New {
        claimed: Option<String>,
        note: Option<String>,
    },
}

pub fn resolve<L: ThreadLookup>(mail: &InboundMail, tokens: &TokenFormat, lookup: &L) -> Result<Resolution, L::Error> {
    let mut note = None;
    let mut claimed = None;
    let sender = mail.from.as_ref().map(|a| a.key());
    for found in tokens.find_all(&mail.subject) {
        if !is_valid_number(&found.number) {
            note = Some(format!("token {} has a bad check digit; not followed", found.number));
            continue;
        }
        let Some(ticket) = lookup.ticket_by_number(&found.number)? else {
            note = Some(format!("token {} names no ticket here", found.number));
            continue;
        };
        let is_party = match &sender {
            Some(s) => lookup.is_party(ticket.id, s)?,
            None => false,
        };
        if is_party {
            return Ok(Resolution::Existing { ticket, via: Via::Token });
        }
        // A stranger with a valid token joins only if the mail also answers one of that ticket's messages.
        if let Some((reference, by_ref)) = first_referenced(mail, lookup)?
            && by_ref.id == ticket.id
        {
            return Ok(Resolution::Existing { ticket, via: Via::Reference(reference) });
        }
        claimed.get_or_insert(found.number);
    }
    if claimed.is_some() {
        return Ok(Resolution::New {
            claimed,
            note: Some("sender is not a party of the ticket named in the subject".into()),
        });
    }
    if let Some((reference, ticket)) = first_referenced(mail, lookup)? {
        return Ok(Resolution::Existing { ticket, via: Via::Reference(reference) });
    }
    Ok(Resolution::New { claimed: None, note })
}

fn first_referenced<L: ThreadLookup>(mail: &InboundMail, lookup: &L) -> Result<Option<(String, TicketRef)>, L::Error> {
    for id in mail.parent_ids() {
        if let Some(ticket) = lookup.ticket_by_message_id(id)? {
            return Ok(Some((id.to_string(), ticket)));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::convert::Infallible;

    use super::*;
    use crate::model::Address;
    use crate::token::ticket_number;

    #[derive(Default)]
    struct Fake {
        by_number: HashMap<String, TicketRef>,
        by_message_id: HashMap<String, TicketRef>,
        parties: Vec<(i64, String)>,
    }

    impl ThreadLookup for Fake {
        type Error = Infallible;
        fn ticket_by_number(&self, n: &str) -> Result<Option<TicketRef>, Infallible> {
            Ok(self.by_number.get(n).cloned())
        }
        fn ticket_by_message_id(&self, id: &str) -> Result<Option<TicketRef>, Infallible> {
            Ok(self.by_message_id.get(id).cloned())
        }
        fn is_party(&self, t: i64, a: &str) -> Result<bool, Infallible> {
            Ok(self.parties.iter().any(|(id, addr)| *id == t && addr == a))
        }
    }

    fn world() -> (Fake, String) {
        let number = ticket_number("20261123", 10, 7);
        let t = TicketRef { id: 1, number: number.clone() };
        let other = TicketRef { id: 2, number: ticket_number("20261123", 10, 8) };
        let mut f = Fake::default();
        f.by_number.insert(number.clone(), t.clone());
        f.by_number.insert(other.number.clone(), other.clone());
        f.by_message_id.insert("first@customer.example".into(), t);
        f.by_message_id.insert("other@customer.example".into(), other);
        f.parties.push((1, "alice@customer.example".into()));
        (f, number)
    }

    fn mail(from: &str, subject: &str, refs: &[&str], irt: &[&str]) -> InboundMail {
        InboundMail {
            from: Some(Address::new(None, from)),
            subject: subject.into(),
            references: refs.iter().map(|s| s.to_string()).collect(),
            in_reply_to: irt.iter().map(|s| s.to_string()).collect(),
            ..InboundMail::default()
        }
    }

    #[test]
    fn resolves_in_order() {
        let (f, n) = world();
        let fmt = TokenFormat::new("[Ticket#{number}]");
        let typo = {
            let mut b = n.clone().into_bytes();
            b[10] = if b[10] == b'9' { b'0' } else { b[10] + 1 };
            String::from_utf8(b).unwrap()
        };
        let cases: Vec<(&str, InboundMail, Resolution)> = vec![
            (
                "token from the customer (any case)",
                mail("Alice@Customer.example", &format!("Re: [Ticket#{n}] printer"), &[], &[]),
                Resolution::Existing { ticket: f.by_number[&n].clone(), via: Via::Token },
            ),
            (
                "in-reply-to alone",
                mail("alice@customer.example", "changed subject", &[], &["first@customer.example"]),
                Resolution::Existing {
                    ticket: f.by_number[&n].clone(),
                    via: Via::Reference("first@customer.example".into()),
                },
            ),
            (
                "newest reference wins",
                mail("x@y.example", "hi", &["first@customer.example", "other@customer.example"], &[]),
                Resolution::Existing {
                    ticket: f.by_message_id["other@customer.example"].clone(),
                    via: Via::Reference("other@customer.example".into()),
                },
            ),
            (
                "stranger with a valid token opens a new ticket that records the claim",
                mail("mallory@evil.example", &format!("[Ticket#{n}] give me the data"), &[], &[]),
                Resolution::New {
                    claimed: Some(n.clone()),
                    note: Some("sender is not a party of the ticket named in the subject".into()),
                },
            ),
            (
                "stranger who answers one of the ticket's mails (a colleague in Bcc) joins",
                mail("bob@customer.example", &format!("Re: [Ticket#{n}]"), &[], &["first@customer.example"]),
                Resolution::Existing {
                    ticket: f.by_number[&n].clone(),
                    via: Via::Reference("first@customer.example".into()),
                },
            ),
            (
                "mistyped number is not followed",
                mail("alice@customer.example", &format!("[Ticket#{typo}] hello"), &[], &[]),
                Resolution::New {
                    claimed: None,
                    note: Some(format!("token {typo} has a bad check digit; not followed")),
                },
            ),
            (
                "nothing known",
                mail("a@b.example", "new problem", &["unknown@x"], &[]),
                Resolution::New { claimed: None, note: None },
            ),
        ];
        for (name, m, want) in cases {
            assert_eq!(resolve(&m, &fmt, &f).unwrap(), want, "{name}");
        }
    }
}
