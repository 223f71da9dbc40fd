//! Raw mail as stored. Every mail is kept byte for byte, and most of a helpdesk's mail is text that compresses
//! well, so rows are written as a zstd frame when that is smaller (the shared workload: 108 → 76 MB fewer bytes for
//! the store thread to write and fsync). `raw_messages.encoding` says which: NULL is the bytes themselves (every
//! row written before migration 0006, and mail that does not shrink), `zstd` a frame of them. Readers get the
//! exact bytes back either way; the SHA-256 in the row is always that of the exact bytes.

use super::{Result, StoreError};

/// The `raw_messages.encoding` of a zstd frame.
pub(super) const ZSTD: &str = "zstd";

/// Level 1: most of the size win at a few hundred MB/s, inside the store's transaction (see docs/benchmark.md).
const LEVEL: i32 = 1;

/// The zstd frame of `raw`, or None when compressing would not save at least an eighth (already compressed
/// attachments, tiny mails): such mail is stored as it is and costs nothing to read back.
pub fn compress(raw: &[u8]) -> Option<Vec<u8>> {
    let packed = zstd::bulk::compress(raw, LEVEL).ok()?;
    (packed.len() < raw.len() - raw.len() / 8).then_some(packed)
}

/// The exact bytes of a stored row. `size` is the row's recorded size: the frame must decode to exactly that.
pub(super) fn decode(data: Vec<u8>, encoding: Option<&str>, size: i64) -> Result<Vec<u8>> {
    match encoding {
        None => Ok(data),
        Some(ZSTD) => {
            let raw = zstd::bulk::decompress(&data, size.max(0) as usize)
                .map_err(|e| StoreError::Invalid(format!("a stored mail does not decompress: {e}")))?;
            if raw.len() as i64 != size {
                return Err(StoreError::Invalid(format!(
                    "a stored mail decompresses to {} bytes, not the {size} recorded",
                    raw.len()
                )));
            }
            Ok(raw)
        }
        Some(other) => Err(StoreError::Invalid(format!(
            "a stored mail has encoding \"{other}\", which this postdesk does not know; upgrade postdesk"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_mail_is_compressed_and_comes_back_exact() {
        let raw = "Subject: hello\r\n\r\n".to_string() + &"the printer is on fire again\r\n".repeat(200);
        let packed = compress(raw.as_bytes()).expect("repetitive text shrinks");
        assert!(packed.len() < raw.len() / 4);
        assert_eq!(decode(packed, Some(ZSTD), raw.len() as i64).unwrap(), raw.as_bytes());
    }

    #[test]
    fn mail_that_does_not_shrink_is_kept_as_it_is() {
        // Bytes with no redundancy (as in an already-compressed attachment) do not shrink by an eighth.
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let noise: Vec<u8> = (0..4096)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        assert!(compress(&noise).is_none());
        assert!(compress(b"").is_none());
    }

    #[test]
    fn a_frame_that_lies_about_its_size_or_an_unknown_encoding_is_an_error() {
        let raw = b"abcabcabcabcabcabcabcabcabcabcabcabcabcabcabcabc".repeat(10);
        let packed = compress(&raw).unwrap();
        assert!(decode(packed.clone(), Some(ZSTD), raw.len() as i64 - 1).is_err());
        assert!(decode(packed, Some("lz4"), raw.len() as i64).is_err());
        assert_eq!(decode(b"plain".to_vec(), None, 5).unwrap(), b"plain");
    }
}
