//! HMAC-SHA256 proofs that a Message-ID or a reply address was made by this installation.
//!
//! - Message-IDs `pd.<ticket>.<random>.<sig>@domain`: a reply that quotes one in References / In-Reply-To threads onto
//!   that ticket, and nobody can forge one for another ticket.
//! - Agent Message-IDs `pd.<ticket>.<random>.a<sig>@domain` on notifications sent to one agent: the signature also
//!   covers that agent's address, so a reply referencing one proves the replier read that agent's mail. A plain
//!   Message-ID goes to customers too and proves nothing about who answers.
//! - Reply addresses `support+T<ticket>-<sig>@domain`: the signature covers the ticket *and* the agent it was sent to,
//!   so mail to that address is trusted as that agent's answer only when it comes from that agent.
//!
//! Signatures are truncated to 80 bits (RFC 2104 §5 allows truncation to at least half the hash length when the
//! attacker cannot test offline; 80 bits online is far out of reach) and compared in constant time.

use std::fmt;
use std::io::{self, Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Bytes of the HMAC kept in ids and addresses: 10 bytes = 80 bits = 20 hex digits.
const SIG_BYTES: usize = 10;
const KEY_FILE: &str = "hmac.key";
/// Domain separation: a Message-ID signature can never be replayed as a reply-address signature.
const MID_CONTEXT: &[u8] = b"postdesk message-id v1\0";
const REPLY_CONTEXT: &[u8] = b"postdesk reply-address v1\0";
const AGENT_MID_CONTEXT: &[u8] = b"postdesk agent message-id v1\0";

/// Holds the installation's secret key. `Debug` shows no key material.
#[derive(Clone)]
pub struct Signer {
    key: [u8; 32],
}

impl fmt::Debug for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Signer { key: *** }")
    }
}

impl Signer {
    pub fn from_key(key: [u8; 32]) -> Signer {
        Signer { key }
    }

    /// Reads `<state_dir>/hmac.key`, creating it with 32 random bytes (mode 0600) when missing. An existing key
    /// readable by group or others is refused: anyone holding it can forge agent replies.
    pub fn load_or_create(state_dir: &Path) -> io::Result<Signer> {
        let path = state_dir.join(KEY_FILE);
        match read_key(&path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            other => return other.map(Signer::from_key),
        }
        let key: [u8; 32] = rand::random();
        // Written to a private temp file, then hard-linked into place: the link fails if another process created the
        // key meanwhile (unlike rename, which would replace a key already in use), and readers never see half a key.
        let tmp = state_dir.join(format!(".{KEY_FILE}.{}.{:016x}", std::process::id(), rand::random::<u64>()));
        let written = (|| {
            let mut file = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp)?;
            file.write_all(&key)?;
            file.sync_all()?;
            std::fs::hard_link(&tmp, &path)
        })();
        let _ = std::fs::remove_file(&tmp);
        match written {
            Ok(()) => {
                if let Ok(dir) = std::fs::File::open(state_dir) {
                    let _ = dir.sync_all();
                }
                Ok(Signer::from_key(key))
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => read_key(&path).map(Signer::from_key),
            Err(e) => Err(io::Error::new(e.kind(), format!("{}: cannot create key file: {e}", path.display()))),
        }
    }

    /// A new signed Message-ID (without angle brackets) for mail about `ticket_number`.
    pub fn message_id(&self, ticket_number: &str, domain: &str) -> String {
        let random = hex::encode(rand::random::<[u8; 8]>());
        let sig = hex::encode(&self.mac(MID_CONTEXT, &[ticket_number.as_bytes(), random.as_bytes()])[..SIG_BYTES]);
        format!("pd.{ticket_number}.{random}.{sig}@{domain}")
    }

    /// The ticket number of a Message-ID this signer made; `None` for any other id. Accepts `<…>` around it.
    pub fn verify_message_id(&self, id: &str) -> Option<String> {
        let id = id.trim().trim_start_matches('<').trim_end_matches('>');
        let (local, _domain) = id.rsplit_once('@')?;
        let rest = local.strip_prefix("pd.")?;
        let mut parts = rest.rsplitn(3, '.');
        let (sig, random, ticket) = (parts.next()?, parts.next()?, parts.next()?);
        if ticket.is_empty() || random.len() != 16 || !random.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let sig = decode_sig(sig)?;
        self.mac_state(MID_CONTEXT, &[ticket.as_bytes(), random.as_bytes()]).verify_truncated_left(&sig).ok()?;
        Some(ticket.to_string())
    }

    /// A new Message-ID for mail about `ticket_number` sent to one agent only, e.g. a notification:
    /// `pd.<ticket>.<random>.a<sig>@domain`, the signature covering ticket, random part and the lowercased agent.
    /// [`Signer::verify_message_id`] refuses it (the signature field is one character longer), so callers that thread
    /// by Message-ID try [`Signer::verify_agent_message_id`] as well.
    pub fn agent_message_id(&self, ticket_number: &str, agent: &str, domain: &str) -> String {
        let random = hex::encode(rand::random::<[u8; 8]>());
        let sig = hex::encode(&self.agent_mid_mac(ticket_number, agent, &random)[..SIG_BYTES]);
        format!("pd.{ticket_number}.{random}.a{sig}@{domain}")
    }

    /// The ticket number when `id` is a Message-ID made by [`Signer::agent_message_id`] for `agent`; `None` for a
    /// plain Message-ID, another agent's, or anything else. Accepts `<…>` around it.
    pub fn verify_agent_message_id(&self, id: &str, agent: &str) -> Option<String> {
        let id = id.trim().trim_start_matches('<').trim_end_matches('>');
        let (local, _domain) = id.rsplit_once('@')?;
        let rest = local.strip_prefix("pd.")?;
        let mut parts = rest.rsplitn(3, '.');
        let (sig, random, ticket) = (parts.next()?, parts.next()?, parts.next()?);
        if ticket.is_empty() || random.len() != 16 || !random.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let sig = decode_sig(sig.strip_prefix('a')?)?;
        let agent = agent.trim().to_ascii_lowercase();
        self.mac_state(AGENT_MID_CONTEXT, &[ticket.as_bytes(), agent.as_bytes(), random.as_bytes()])
            .verify_truncated_left(&sig)
            .ok()?;
        Some(ticket.to_string())
    }

    fn agent_mid_mac(&self, ticket_number: &str, agent: &str, random: &str) -> Vec<u8> {
        let agent = agent.trim().to_ascii_lowercase();
        self.mac(AGENT_MID_CONTEXT, &[ticket_number.as_bytes(), agent.as_bytes(), random.as_bytes()])
    }

    /// The address an agent answers to: `base` plus-tagged with the ticket number and a signature over the ticket
    /// and the agent's (lowercased) address, e.g. `support+T2026112310000012-<sig>@example.com`.
    pub fn reply_address(&self, base: &str, ticket_number: &str, agent: &str) -> String {
        let (local, domain) = base.trim().rsplit_once('@').unwrap_or((base.trim(), ""));
        let sig = hex::encode(&self.reply_mac(ticket_number, agent)[..SIG_BYTES]);
        format!("{local}+T{ticket_number}-{sig}@{domain}")
    }

    /// The ticket number when `address` is a reply address made for `agent`. The caller checks that the address is
    /// one of ours; the signature only proves ticket and agent. Case-insensitive, since MTAs may fold local parts.
    pub fn verify_reply_address(&self, address: &str, agent: &str) -> Option<String> {
        let address = address.trim().trim_start_matches('<').trim_end_matches('>');
        let (local, _domain) = address.rsplit_once('@')?;
        let (_base, tag) = local.rsplit_once('+')?;
        let tag = tag.strip_prefix(['T', 't'])?;
        let (ticket, sig) = tag.rsplit_once('-')?;
        if ticket.is_empty() {
            return None;
        }
        let sig = decode_sig(sig)?;
        let agent = agent.trim().to_ascii_lowercase();
        self.mac_state(REPLY_CONTEXT, &[ticket.as_bytes(), agent.as_bytes()]).verify_truncated_left(&sig).ok()?;
        Some(ticket.to_string())
    }

    fn reply_mac(&self, ticket_number: &str, agent: &str) -> Vec<u8> {
        let agent = agent.trim().to_ascii_lowercase();
        self.mac(REPLY_CONTEXT, &[ticket_number.as_bytes(), agent.as_bytes()])
    }

    fn mac(&self, context: &[u8], fields: &[&[u8]]) -> Vec<u8> {
        self.mac_state(context, fields).finalize().into_bytes().to_vec()
    }

    /// Fields are length-prefixed, so ("12", "3") and ("1", "23") never sign alike.
    fn mac_state(&self, context: &[u8], fields: &[&[u8]]) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(context);
        for field in fields {
            mac.update(&(field.len() as u64).to_be_bytes());
            mac.update(field);
        }
        mac
    }
}

fn decode_sig(sig: &str) -> Option<Vec<u8>> {
    if sig.len() != SIG_BYTES * 2 {
        return None;
    }
    hex::decode(sig).ok()
}

fn read_key(path: &Path) -> io::Result<[u8; 32]> {
    let file = std::fs::File::open(path)?;
    let mode = file.metadata()?.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!("{}: key file is readable by group or others (mode {mode:o}); run `chmod 600 {0}`", path.display()),
        ));
    }
    let mut bytes = Vec::with_capacity(33);
    file.take(33).read_to_end(&mut bytes)?;
    bytes.try_into().map_err(|b: Vec<u8>| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{}: key file must hold exactly 32 bytes, found {}", path.display(), b.len()),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const TICKET: &str = "2026112310000012";

    fn signer() -> Signer {
        Signer::from_key([7; 32])
    }

    #[test]
    fn message_id_roundtrip() {
        let s = signer();
        let id = s.message_id(TICKET, "example.com");
        assert!(id.starts_with("pd.2026112310000012.") && id.ends_with("@example.com"), "{id}");
        assert_eq!(s.verify_message_id(&id).as_deref(), Some(TICKET));
        assert_eq!(s.verify_message_id(&format!("<{id}>")).as_deref(), Some(TICKET));
        assert_ne!(id, s.message_id(TICKET, "example.com"), "ids are unique");
    }

    #[test]
    fn message_id_tampered_or_foreign_is_refused() {
        let s = signer();
        let id = s.message_id(TICKET, "example.com");
        let other_ticket = id.replacen(TICKET, "2026112310000020", 1);
        assert_eq!(s.verify_message_id(&other_ticket), None);
        let (head, tail) = id.split_at(id.find('@').unwrap() - 1);
        let flipped = format!("{head}{}{}", if tail.starts_with('0') { "1" } else { "0" }, &tail[1..]);
        assert_eq!(s.verify_message_id(&flipped), None, "{flipped}");
        assert_eq!(Signer::from_key([8; 32]).verify_message_id(&id), None, "another key");
    }

    #[test]
    fn reply_address_roundtrip_and_agent_binding() {
        let s = signer();
        let addr = s.reply_address("support@example.com", TICKET, "Agent1@Example.com");
        assert!(addr.starts_with("support+T2026112310000012-") && addr.ends_with("@example.com"), "{addr}");
        assert_eq!(s.verify_reply_address(&addr, "agent1@example.com").as_deref(), Some(TICKET));
        assert_eq!(s.verify_reply_address(&addr.to_uppercase(), "AGENT1@example.com").as_deref(), Some(TICKET));
        assert_eq!(s.verify_reply_address(&addr, "agent2@example.com"), None, "another agent");
        assert_eq!(Signer::from_key([8; 32]).verify_reply_address(&addr, "agent1@example.com"), None, "another key");
        let tampered = addr.replacen(TICKET, "2026112310000020", 1);
        assert_eq!(s.verify_reply_address(&tampered, "agent1@example.com"), None);
    }

    #[test]
    fn message_id_signature_is_not_a_reply_signature() {
        let s = signer();
        let id = s.message_id(TICKET, "example.com");
        let sig = id.split('@').next().unwrap().rsplit('.').next().unwrap();
        assert_eq!(s.verify_reply_address(&format!("support+T{TICKET}-{sig}@example.com"), ""), None);
    }

    #[test]
    fn agent_message_id_roundtrip_and_agent_binding() {
        let s = signer();
        let id = s.agent_message_id(TICKET, "Agent1@Example.com", "example.com");
        assert!(id.starts_with("pd.2026112310000012.") && id.ends_with("@example.com"), "{id}");
        assert_eq!(s.verify_agent_message_id(&id, "agent1@example.com").as_deref(), Some(TICKET));
        assert_eq!(s.verify_agent_message_id(&format!("<{id}>"), " AGENT1@example.com ").as_deref(), Some(TICKET));
        assert_eq!(s.verify_agent_message_id(&id, "agent2@example.com"), None, "another agent");
        assert_eq!(Signer::from_key([8; 32]).verify_agent_message_id(&id, "agent1@example.com"), None, "another key");
        let tampered = id.replacen(TICKET, "2026112310000020", 1);
        assert_eq!(s.verify_agent_message_id(&tampered, "agent1@example.com"), None);
        assert_ne!(id, s.agent_message_id(TICKET, "agent1@example.com", "example.com"), "ids are unique");
    }

    #[test]
    fn agent_and_plain_message_ids_do_not_cross() {
        let s = signer();
        let agent_id = s.agent_message_id(TICKET, "agent1@example.com", "example.com");
        assert_eq!(s.verify_message_id(&agent_id), None, "an agent id is not a plain id");
        let plain = s.message_id(TICKET, "example.com");
        assert_eq!(s.verify_agent_message_id(&plain, "agent1@example.com"), None, "a plain id proves no agent");
        // The same signature bytes with the agent marker added: domain separation refuses it.
        let (local, domain) = plain.rsplit_once('@').unwrap();
        let (head, sig) = local.rsplit_once('.').unwrap();
        assert_eq!(s.verify_agent_message_id(&format!("{head}.a{sig}@{domain}"), "agent1@example.com"), None);
        // A reply-address signature for the same agent does not verify as an agent Message-ID either.
        let addr = s.reply_address("support@example.com", TICKET, "agent1@example.com");
        let reply_sig = addr.split('@').next().unwrap().rsplit('-').next().unwrap();
        let random = "0123456789abcdef";
        let forged = format!("pd.{TICKET}.{random}.a{reply_sig}@example.com");
        assert_eq!(s.verify_agent_message_id(&forged, "agent1@example.com"), None);
    }

    #[test]
    fn garbage_never_panics_and_never_verifies() {
        let s = signer();
        let inputs = [
            "",
            "@",
            "<>",
            "pd.",
            "pd.@x",
            "pd...@x",
            "pd.1.2.3@x",
            "pd.1.0123456789abcdef.zzzzzzzzzzzzzzzzzzzz@x",
            "pd..0123456789abcdef.00000000000000000000@x",
            "pd.1.0123456789abcdef.a@x",
            "pd.1.0123456789abcdef.a0000000000000000000@x",
            "pd.1.0123456789abcdef.aé000000000000000000@x",
            "support+T@x",
            "support+T-@x",
            "support+T1-00@x",
            "support+Té-ééééééééééé@x",
            "+@",
            "a+b+c+d@e@f",
            "\u{0}\u{ffff}",
        ];
        for input in inputs {
            assert_eq!(s.verify_message_id(input), None, "{input:?}");
            assert_eq!(s.verify_reply_address(input, "agent@example.com"), None, "{input:?}");
            assert_eq!(s.verify_agent_message_id(input, "agent@example.com"), None, "{input:?}");
        }
    }

    #[test]
    fn debug_hides_the_key() {
        assert_eq!(format!("{:?}", signer()), "Signer { key: *** }");
    }

    #[test]
    fn key_file_is_created_private_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let a = Signer::load_or_create(dir.path()).unwrap();
        let path = dir.path().join(KEY_FILE);
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(std::fs::read(&path).unwrap().len(), 32);
        let b = Signer::load_or_create(dir.path()).unwrap();
        assert_eq!(a.key, b.key);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "no temp file left behind");
    }

    #[test]
    fn key_file_readable_by_others_or_wrong_size_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(KEY_FILE);
        std::fs::write(&path, [1u8; 32]).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        let err = Signer::load_or_create(dir.path()).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::PermissionDenied, "{err}");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(Signer::load_or_create(dir.path()).unwrap().key, [1u8; 32]);
        std::fs::write(&path, [1u8; 31]).unwrap();
        assert_eq!(Signer::load_or_create(dir.path()).unwrap_err().kind(), io::ErrorKind::InvalidData);
    }
}
