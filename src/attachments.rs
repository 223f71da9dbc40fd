//! Attachment contents. Every received mail is kept byte for byte, so its attachments are already on disk once;
//! writing them again, decoded, doubled what a mail with attachments cost. The store keeps one `blobs` row per
//! content (SHA-256) naming the raw mail that first carried it, and the bytes are recovered here by parsing that
//! mail again with the same parser: what comes out is what came out at ingest, and the hash proves it.

use crate::config::Limits;
use crate::store::{Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum AttachmentError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("attachment {sha256}: its mail (raw message {raw_id}) {problem}")]
    Unrecoverable { sha256: String, raw_id: i64, problem: String },
}

/// The bytes of the attachment whose content hashes to `sha256`, or None when no attachment has that hash.
/// `limits` are today's parse limits; the size limit is lifted to the mail's own size, which was accepted once.
pub fn content(store: &Store, sha256: &str, limits: &Limits) -> Result<Option<Vec<u8>>, AttachmentError> {
    let Some(blob) = store.blob(sha256)? else { return Ok(None) };
    let Some(raw_id) = blob.raw_id else { return Ok(Some(blob.data)) };
    let unrecoverable =
        |problem: String| AttachmentError::Unrecoverable { sha256: sha256.to_string(), raw_id, problem };
    let raw = store.raw_by_id(raw_id)?.ok_or_else(|| unrecoverable("is missing".into()))?;
    let limits = Limits { max_message_bytes: limits.max_message_bytes.max(raw.len()), ..*limits };
    let mail = crate::parse::parse_mail(&raw, &limits).map_err(|e| unrecoverable(format!("no longer parses: {e}")))?;
    mail.attachments
        .into_iter()
        .find(|a| a.sha256 == sha256 && a.size as i64 == blob.size)
        .map(|a| Some(a.data))
        .ok_or_else(|| unrecoverable("has no attachment with this content".into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::sha256_hex;
    use crate::pipeline::{Incoming, Pipeline};
    use crate::setup::Setup;

    fn mail(n: usize, attachment_b64: &str, qp_text: &str) -> Vec<u8> {
        format!(
            "From: Carol <carol@example.test>\r\nTo: support@example.test\r\nSubject: Scan {n}\r\n\
             Message-ID: <scan-{n}@example.test>\r\nMIME-Version: 1.0\r\n\
             Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n\
             --b\r\nContent-Type: text/plain\r\n\r\nThe scan is attached.\r\n\
             --b\r\nContent-Type: application/octet-stream; name=\"scan.bin\"\r\n\
             Content-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename=\"scan.bin\"\r\n\r\n\
             {attachment_b64}\r\n\
             --b\r\nContent-Type: text/csv; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\
             Content-Disposition: attachment; filename=\"totals.csv\"\r\n\r\n{qp_text}\r\n--b--\r\n"
        )
        .into_bytes()
    }

    #[test]
    fn attachments_come_back_byte_for_byte_from_the_raw_mail_and_are_kept_once() {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("postdesk.toml");
        std::fs::create_dir(dir.path().join("rules")).unwrap();
        let templates = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("templates");
        let text = format!(
            "address = \"support@example.test\"\n[storage]\nstate_dir = \"{0}\"\n[rules]\ndir = \"{0}/rules\"\n\
             [templates]\ndir = \"{1}\"\n",
            dir.path().display(),
            templates.display()
        );
        std::fs::write(&config, text).unwrap();
        let setup = Setup::load(&config).unwrap();
        let signer = crate::setup::load_signer(&setup.config).unwrap();
        let pipeline = Pipeline::new(setup, signer);
        let mut store = Store::open_in_memory().unwrap();

        // Every byte value, so nothing survives by being text.
        let binary: Vec<u8> = (0..=255u8).cycle().take(3000).collect();
        use base64::Engine;
        let encoded = base64::engine::general_purpose::STANDARD.encode(&binary);
        let wrapped: Vec<&str> = encoded.as_bytes().chunks(76).map(|c| std::str::from_utf8(c).unwrap()).collect();
        let qp = "K=C3=A4se;12,50=\r\nEUR\r\nBrot;3";
        let batch: Vec<Incoming> = (1..=2)
            .map(|n| Incoming {
                source: format!("test:{n}"),
                source_key: None,
                raw: mail(n, &wrapped.join("\r\n"), qp),
                refused: None,
            })
            .collect();
        let parsed = pipeline.parse_batch(&batch);
        pipeline.store_batch(&mut store, &batch, parsed).unwrap();

        let limits = Limits::default();
        let bin = content(&store, &sha256_hex(&binary), &limits).unwrap().expect("the binary attachment");
        assert_eq!(bin, binary);
        let csv = content(&store, &sha256_hex("Käse;12,50EUR\r\nBrot;3".as_bytes()), &limits).unwrap();
        assert_eq!(csv.as_deref(), Some("Käse;12,50EUR\r\nBrot;3".as_bytes()));
        assert_eq!(content(&store, &sha256_hex(b"never sent"), &limits).unwrap(), None);

        // Two mails carried the same file: one blob, kept in the first mail, and no attachment bytes written again.
        let blob = store.blob(&sha256_hex(&binary)).unwrap().unwrap();
        assert!(blob.data.is_empty(), "{blob:?}");
        assert_eq!(blob.size, 3000);
        let first = store.list_tickets(&crate::store::TicketFilter::default()).unwrap();
        assert_eq!(first.len(), 2);
        let scans: Vec<_> = first
            .iter()
            .map(|t| store.ticket_detail(&t.number).unwrap().unwrap())
            .flat_map(|d| d.articles.into_iter().flat_map(|a| a.attachments))
            .collect();
        assert_eq!(scans.len(), 4, "each mail lists both of its files");
        let raw = store.raw_by_id(blob.raw_id.expect("kept in a raw mail")).unwrap().unwrap();
        assert!(String::from_utf8_lossy(&raw).contains("Subject: Scan 1"), "the first mail holds it");
    }
}
