//! Thread: which ticket does a mail belong to? A pure resolver over a lookup trait, so it is tested without a
//! database. Order (after mox and RFC 5322 §3.6.4): the ticket token in the subject, then References (newest
//! first) and In-Reply-To against Message-IDs we stored, else a new ticket.
//!
//! # Who is a party: proof, not claims (issue 10)
//!
//! Joining a ticket and changing who its mail goes to are two decisions. A mail joins a ticket on weak evidence
//! (the token in its subject from a sender who claims to be a party, or a reference to any Message-ID of the
//! ticket), so that people who write back the way mail clients do are never split off into a new ticket. But
//! `From:` is forged at will, and a customer's Message-ID travels to everyone the customer wrote to, so such a
//! follow-up is only *claimed* ([`Standing::Claimed`]): it is stored on the ticket and agents see it, yet it never
//! adds Cc/To addresses as parties (who agents' answers go to) and gets no acknowledgement unless the address it
//! would go to is already a party of the ticket (then nothing is revealed that the recipient does not know).
//!
//! A follow-up is *proven* ([`Standing::Proven`]) when In-Reply-To or References name a Message-ID that we issued
//! and signed for this ticket ([`Signer::verify_message_id`](crate::outbound::Signer::verify_message_id)): only
//! people who received our mail about the ticket know it. A proven follow-up from a party adds its To/Cc as parties
//! and is acknowledged at its Reply-To, as the ticket's first mail is.

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

/// How a follow-up is tied to its ticket; see the module documentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// It answers a Message-ID we signed for this ticket.
    Proven,
    /// It joined by the subject token or by a Message-ID anyone may have seen.
    Claimed,
}

/// Whether `mail` answers one of our own signed Message-IDs of `ticket` (after merges): `verify` returns the ticket
/// number a Message-ID was signed for.
pub fn standing<L: ThreadLookup>(
    mail: &InboundMail,
    ticket: &TicketRef,
    verify: impl Fn(&str) -> Option<String>,
    lookup: &L,
) -> Result<Standing, L::Error> {
    for id in mail.parent_ids() {
        let Some(number) = verify(id) else { continue };
        if lookup.ticket_by_number(&number)?.is_some_and(|t| t.id == ticket.id) {
            return Ok(Standing::Proven);
        }
    }
    Ok(Standing::Claimed)
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

    #[test]
    fn only_our_signed_message_ids_of_the_same_ticket_prove_a_follow_up() {
        let (f, n) = world();
        let ticket = f.by_number[&n].clone();
        let other = ticket_number("20261123", 10, 8);
        // Stands in for the signer: `ours-<number>@desk` verifies to <number>.
        let verify = |id: &str| id.strip_prefix("ours-").and_then(|r| r.strip_suffix("@desk")).map(str::to_string);
        let ours = format!("ours-{n}@desk");
        let cases: Vec<(&str, InboundMail, Standing)> = vec![
            ("answers our mail", mail("x@y.example", "hi", &[], &[&ours]), Standing::Proven),
            (
                "our mail deep in References",
                mail("x@y.example", "hi", &[&ours, "first@customer.example"], &[]),
                Standing::Proven,
            ),
            (
                "bare token from the customer",
                mail("alice@customer.example", &format!("[Ticket#{n}]"), &[], &[]),
                Standing::Claimed,
            ),
            (
                "the customer's Message-ID",
                mail("x@y.example", "hi", &[], &["first@customer.example"]),
                Standing::Claimed,
            ),
            (
                "our mail about another ticket",
                mail("x@y.example", "hi", &[], &[&format!("ours-{other}@desk")]),
                Standing::Claimed,
            ),
            (
                "a forged id of ours for a number that does not exist",
                mail("x@y.example", "hi", &[], &["ours-1@desk"]),
                Standing::Claimed,
            ),
        ];
        for (name, m, want) in cases {
            assert_eq!(standing(&m, &ticket, verify, &f).unwrap(), want, "{name}");
        }
    }
}
