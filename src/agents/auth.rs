//! Is this mail proven to come from the agent its From names?
//!
//! Threat model: anyone can send mail with `From: agent@example.com`, and an agent's mail can close, merge and
//! reassign tickets and reaches customers in the desk's name. So a From that names an agent is only a claim; it counts
//! when the mail also carries something that only the agent can have:
//!
//! - [`Proof::ReplyAddress`]: it was sent to a plus-address of one of our addresses whose signature binds ticket and
//!   agent (`support+T<ticket>-<sig>@…`, [`Signer::reply_address`]). Only that agent's notifications carry it.
//! - [`Proof::SignedReference`]: In-Reply-To / References name a Message-ID we signed for this agent
//!   ([`Signer::agent_message_id`]). Plain Message-IDs go to customers and anyone they forward to: no proof.
//! - [`Proof::Authenticated`]: our own MTA verified DKIM or DMARC for the agent's domain and said so in an
//!   `Authentication-Results` header (RFC 8601), by the rule below.
//!
//! The first two are bearer secrets: whoever receives an agent's notification (say, it is forwarded) can answer as
//! that agent for that ticket. Signatures are HMAC-SHA256 under the installation key, so they cannot be made for
//! another ticket or agent. The third trusts the agent's domain to stop its own users from sending as each other,
//! which a company domain does and a shared free-mail domain may not (DMARC still only proves the domain).
//!
//! # Which `Authentication-Results` header is believed (RFC 8601 §5)
//!
//! 1. Headers are read top down: each hop prepends, so the topmost were written last, by the hops closest to us.
//! 2. Only the topmost block counts. The topmost `Authentication-Results` header of the whole mail must carry
//!    [`AuthContext::authserv_id`] exactly (byte for byte; no case folding, prefix or suffix match): if the topmost
//!    is anyone else's, our MTA wrote none and nothing below is believed. The block is that header and the A-R
//!    headers of ours right below it; it ends at the first `Received` header or A-R with another authserv-id. Our
//!    MTA's milters (OpenDKIM and OpenDMARC each add one) insert theirs at the top, above or just below our MTA's own
//!    `Received` header, in any case above the `Received` header of the hop before us; anything below that was
//!    written before the mail reached us and is ignored, whatever it claims.
//! 3. The block must sit above a `Received` header: results not written by an MTA that received the mail (a file
//!    with a forged header on top and no trace of a hop) prove nothing.
//! 4. Two headers of the block reporting the same method (two `dkim` results, say) contradict each other: our MTA
//!    reports each method once, so one of them came from outside — the MTA did not strip it — and nothing in the
//!    block is believed. This is what refuses a forged pass placed right above our genuine `fail` or `none`.
//! 5. Proof: a result `dkim=pass` whose `header.d` (or else the domain of `header.i`) equals the agent's domain, or
//!    `dmarc=pass` whose `header.from` equals it (case-insensitive, a trailing dot ignored). `fail`, `none`, other
//!    domains (subdomains included), other methods and unparsable result entries prove nothing. Comments and quoted
//!    strings are honoured, so `pass` inside a comment or a `reason="…"` counts for nothing.
//!
//! None of this can tell a forged header from a genuine one when the MTA neither strips incoming A-R headers that
//! carry its authserv-id nor adds its own: RFC 8601 §5 makes removing them the MTA's duty, and the README says how
//! (Postfix + OpenDKIM/OpenDMARC, rspamd). Leave [`AuthContext::authserv_id`] unset unless the MTA is configured so.

use crate::model::InboundMail;
use crate::outbound::signing::Signer;

/// What proved the sender to be the agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proof {
    ReplyAddress,
    SignedReference,
    /// A trusted `Authentication-Results` header: DKIM or DMARC pass for the agent's domain.
    Authenticated,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentProof {
    /// The ticket the proof is bound to; `None` for [`Proof::Authenticated`], which proves the sender only (the
    /// ticket then comes from the subject token or the references, decided by the threading stage).
    pub ticket_number: Option<String>,
    pub proof: Proof,
}

pub struct AuthContext<'a> {
    pub signer: &'a Signer,
    /// Our support and queue addresses, lowercased, without plus tags.
    pub own_addresses: &'a [String],
    /// The authserv-id our MTA writes into `Authentication-Results`; `None` turns [`Proof::Authenticated`] off.
    pub authserv_id: Option<&'a str>,
}

/// Proof that `mail` comes from `agent`, the lowercased address of an enabled agent that the mail's From names.
/// `None` when nothing proves it (the mail is then treated as customer mail), including when From is not `agent`.
///
/// Proofs are tried in the order reply address, signed reference, authentication results; the first one found wins.
/// With several signed reply addresses among the recipients, the first in [`InboundMail::recipient_keys`] order is
/// used; with several signed references, the newest ([`InboundMail::parent_ids`]).
pub fn prove_agent(mail: &InboundMail, agent: &str, ctx: &AuthContext) -> Option<AgentProof> {
    let agent = agent.trim().to_ascii_lowercase();
    if agent.is_empty() || mail.from.as_ref().is_none_or(|f| f.key() != agent) {
        return None;
    }
    let found = |ticket: String, proof| Some(AgentProof { ticket_number: Some(ticket), proof });
    for recipient in mail.recipient_keys() {
        if is_plus_address_of_ours(&recipient, ctx.own_addresses)
            && let Some(ticket) = ctx.signer.verify_reply_address(&recipient, &agent)
        {
            return found(ticket, Proof::ReplyAddress);
        }
    }
    for id in mail.parent_ids() {
        if let Some(ticket) = ctx.signer.verify_agent_message_id(id, &agent) {
            return found(ticket, Proof::SignedReference);
        }
    }
    let authserv_id = ctx.authserv_id?;
    authenticated(mail, &agent, authserv_id).then_some(AgentProof { ticket_number: None, proof: Proof::Authenticated })
}

/// `base+tag@domain` where `base@domain` is one of our addresses. The tag is what follows the *last* `+`, as
/// [`Signer::verify_reply_address`] reads it, so `support+x+T…@…` is not a reply address of `support@…`. The domain
/// must be ours too: the signature does not cover it, and a reply address on a foreign domain never reached us.
fn is_plus_address_of_ours(address: &str, own_addresses: &[String]) -> bool {
    let address = address.trim().trim_start_matches('<').trim_end_matches('>');
    let Some((local, domain)) = address.rsplit_once('@') else { return false };
    let Some((base, tag)) = local.rsplit_once('+') else { return false };
    if base.is_empty() || tag.is_empty() || domain.is_empty() {
        return false;
    }
    let plain = format!("{base}@{domain}");
    own_addresses.iter().any(|own| own.trim().eq_ignore_ascii_case(&plain))
}

/// Whether our MTA authenticated the agent's domain, by the rule in the module documentation.
fn authenticated(mail: &InboundMail, agent: &str, authserv_id: &str) -> bool {
    let Some((_, domain)) = agent.rsplit_once('@') else { return false };
    let domain = normalise_domain(domain);
    if domain.is_empty() || authserv_id.is_empty() {
        return false;
    }
    let Some(block) = trusted_block(mail, authserv_id) else { return false };
    let mut methods: Vec<&str> = block.iter().flat_map(|h| h.methods()).collect();
    let reported = methods.len();
    methods.sort_unstable();
    methods.dedup();
    if methods.len() != reported {
        tracing::warn!(
            authserv_id,
            "two Authentication-Results headers with our authserv-id report the same method: the MTA does not strip \
             forged ones; nothing proven"
        );
        return false;
    }
    block.iter().flat_map(|h| &h.results).any(|r| r.proves_domain(&domain))
}

/// The A-R headers of the topmost block, when it is ours and sits above a `Received` header; see the module docs.
fn trusted_block(mail: &InboundMail, authserv_id: &str) -> Option<Vec<AuthResults>> {
    let is = |h: &crate::model::Header, name: &str| h.name.eq_ignore_ascii_case(name);
    let first = mail.headers.iter().position(|h| is(h, "Authentication-Results"))?;
    let mut block = Vec::new();
    let mut rest = mail.headers[first..].iter();
    for header in rest.by_ref() {
        if is(header, "Received") {
            return (!block.is_empty()).then_some(block);
        }
        if !is(header, "Authentication-Results") {
            continue;
        }
        // An unparsable or foreign header ends the block; for the topmost one, there is no block.
        match parse_authentication_results(&header.value) {
            Some(results) if results.authserv_id == authserv_id => block.push(results),
            _ => break,
        }
    }
    // The block ended at a foreign A-R: a Received header must still follow somewhere below.
    (!block.is_empty() && rest.any(|h| is(h, "Received"))).then_some(block)
}

fn normalise_domain(domain: &str) -> String {
    domain.trim().trim_end_matches('.').to_ascii_lowercase()
}

/// One parsed `Authentication-Results` header field (RFC 8601 §2.2).
#[derive(Debug, PartialEq, Eq)]
struct AuthResults {
    authserv_id: String,
    results: Vec<ResInfo>,
}

impl AuthResults {
    /// Each method this header reports, once.
    fn methods(&self) -> Vec<&str> {
        let mut m: Vec<&str> = self.results.iter().map(|r| r.method.as_str()).collect();
        m.sort_unstable();
        m.dedup();
        m
    }
}

/// One `method=result` entry with its properties, names lowercased.
#[derive(Debug, PartialEq, Eq)]
struct ResInfo {
    method: String,
    result: String,
    /// `(ptype.property, value)`, e.g. `("header.d", "example.com")`; `reason` too.
    props: Vec<(String, String)>,
}

impl ResInfo {
    fn prop(&self, name: &str) -> Option<&str> {
        self.props.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    fn proves_domain(&self, domain: &str) -> bool {
        if self.result != "pass" {
            return false;
        }
        let signed_by = match self.method.as_str() {
            "dkim" => self.prop("header.d").map(str::to_string).or_else(|| {
                // header.i is `[local]@domain` (RFC 6376 §3.5 i=); the domain is what was vouched for.
                self.prop("header.i").and_then(|i| i.rsplit_once('@')).map(|(_, d)| d.to_string())
            }),
            "dmarc" => self.prop("header.from").map(str::to_string),
            _ => None,
        };
        signed_by.is_some_and(|d| normalise_domain(&d) == domain)
    }
}

/// Parses an A-R header value; `None` when not even the authserv-id can be read. Result entries that do not parse
/// are dropped (they prove nothing). Never panics.
fn parse_authentication_results(value: &str) -> Option<AuthResults> {
    let text = strip_comments(value);
    let mut segments = split_outside_quotes(&text, ';').into_iter();
    let head = segments.next()?;
    // authserv-id [ CFWS authres-version ]: the first word, unquoted.
    let authserv_id = words(&head).into_iter().next()?;
    let results = segments.filter_map(|s| parse_resinfo(&s)).collect();
    Some(AuthResults { authserv_id, results })
}

/// `method[/version] = result *(prop = value)`; `None` for `none` (no-result) or anything malformed.
fn parse_resinfo(segment: &str) -> Option<ResInfo> {
    let mut pairs = key_values(segment)?.into_iter();
    let (method, result) = pairs.next()?;
    let method = method.split('/').next().unwrap_or_default().trim().to_ascii_lowercase();
    let props = pairs.map(|(k, v)| (k.to_ascii_lowercase(), v)).collect();
    Some(ResInfo { method, result: result.to_ascii_lowercase(), props })
}

/// `key [WS] = [WS] value` pairs separated by whitespace; a value is a quoted string or a run of non-space
/// characters (it may itself contain `=`, as base64 `header.b` values do). `None` when the segment is not such a list.
fn key_values(segment: &str) -> Option<Vec<(String, String)>> {
    let chars: Vec<char> = segment.chars().collect();
    let mut pairs = Vec::new();
    let mut i = 0;
    let skip_ws = |i: &mut usize| {
        while chars.get(*i).is_some_and(|c| c.is_whitespace()) {
            *i += 1;
        }
    };
    loop {
        skip_ws(&mut i);
        if i >= chars.len() {
            break;
        }
        let start = i;
        while chars.get(i).is_some_and(|&c| !c.is_whitespace() && c != '=') {
            i += 1;
        }
        let key: String = chars[start..i].iter().collect();
        skip_ws(&mut i);
        if key.is_empty() || chars.get(i) != Some(&'=') {
            return None;
        }
        i += 1;
        skip_ws(&mut i);
        let value = read_value(&chars, &mut i)?;
        pairs.push((key, value));
    }
    (!pairs.is_empty()).then_some(pairs)
}

/// A quoted string (RFC 5322 §3.2.4, backslash escapes) or a run of non-space characters starting at `*i`.
fn read_value(chars: &[char], i: &mut usize) -> Option<String> {
    let mut value = String::new();
    if chars.get(*i) == Some(&'"') {
        *i += 1;
        loop {
            match chars.get(*i)? {
                '"' => {
                    *i += 1;
                    return Some(value);
                }
                '\\' => {
                    *i += 1;
                    value.push(*chars.get(*i)?);
                }
                &c => value.push(c),
            }
            *i += 1;
        }
    }
    while let Some(&c) = chars.get(*i).filter(|c| !c.is_whitespace()) {
        value.push(c);
        *i += 1;
    }
    (!value.is_empty()).then_some(value)
}

/// The whitespace-separated words of `text`, quoted strings unquoted.
fn words(text: &str) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        if chars[i].is_whitespace() {
            i += 1;
            continue;
        }
        match read_value(&chars, &mut i) {
            Some(word) => out.push(word),
            None => break,
        }
    }
    out
}

/// Removes RFC 5322 comments `( … )`, nested and with backslash escapes, outside quoted strings; each becomes a space.
/// An unclosed comment runs to the end.
fn strip_comments(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let (mut depth, mut quoted, mut escaped) = (0usize, false, false);
    for c in value.chars() {
        if escaped {
            escaped = false;
            if depth == 0 {
                out.push(c);
            }
            continue;
        }
        match c {
            '\\' if depth > 0 || quoted => {
                escaped = true;
                if depth == 0 {
                    out.push(c);
                }
            }
            '"' if depth == 0 => {
                quoted = !quoted;
                out.push(c);
            }
            '(' if !quoted => depth += 1,
            ')' if depth > 0 => {
                depth -= 1;
                if depth == 0 {
                    out.push(' ');
                }
            }
            _ if depth > 0 => {}
            _ => out.push(c),
        }
    }
    out
}

/// Splits on `sep` outside quoted strings.
fn split_outside_quotes(text: &str, sep: char) -> Vec<String> {
    let mut parts = vec![String::new()];
    let (mut quoted, mut escaped) = (false, false);
    for c in text.chars() {
        let last = parts.last_mut().expect("never empty");
        if escaped {
            escaped = false;
        } else if quoted && c == '\\' {
            escaped = true;
        } else if c == '"' {
            quoted = !quoted;
        } else if c == sep && !quoted {
            parts.push(String::new());
            continue;
        }
        last.push(c);
    }
    parts
}

#[cfg(test)]
mod tests;
