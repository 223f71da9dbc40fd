//! Raw mail as stored. Every mail is kept byte for byte, and most of a helpdesk's mail is text that compresses
//! well, so rows are written as zstd when that is smaller (the shared workload: 108 → 76 MB fewer bytes for the
//! store thread to write and fsync). `raw_messages.encoding` says which: NULL is the bytes themselves (every row
//! written before migration 0006, and mail that does not shrink), `zstd` one or more concatenated frames of them.
//! Readers get the exact bytes back either way; the SHA-256 in the row is always that of the exact bytes.

use super::{Result, StoreError};

/// The `raw_messages.encoding` of a zstd frame.
pub(super) const ZSTD: &str = "zstd";

/// Level 1: most of the size win at a few hundred MB/s, on the parsing core (see docs/benchmark.md).
const LEVEL: i32 = 1;

/// Raw bytes per zstd frame of a [`Packed`] mail. zstd decodes concatenated frames as one stream, so a row written
/// in pieces reads back with the same single call as a one-frame row. Level 1 looks back at most 512 KiB, so frames
/// of 1 MiB lose almost nothing against one frame.
const PIECE: usize = 1 << 20;

/// A mail's zstd frames, one per [`PIECE`] of its bytes, each in an allocation of its own exact size: a large
/// mail's compressed form is never one buffer sized for the worst case (zstd's bound is a little over the input,
/// which for the workload's 6 MB mail was 6 MB held beside the mail; docs/benchmark.md, issue 12, seventh pass).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packed {
    frames: Vec<Vec<u8>>,
    /// The length of the bytes packed.
    size: usize,
}

impl Packed {
    /// The frames, in order: the row's stored bytes are their concatenation.
    pub fn frames(&self) -> &[Vec<u8>] {
        &self.frames
    }

    /// How many bytes the row stores.
    pub fn stored_len(&self) -> usize {
        self.frames.iter().map(Vec::len).sum()
    }

    /// The length of the mail itself.
    pub fn size(&self) -> usize {
        self.size
    }

    /// The exact bytes packed.
    pub fn unpack(&self) -> Result<Vec<u8>> {
        decode(self.frames.concat(), Some(ZSTD), self.size as i64)
    }
}

/// `raw` packed, or None when compressing would not save at least an eighth (already compressed attachments, tiny
/// mails): such mail is stored as it is and costs nothing to read back. Never Some for empty input.
pub fn pack(raw: &[u8]) -> Option<Packed> {
    if raw.len() > SHARED_CONTEXT_BYTES {
        return pack_with(&mut zstd::bulk::Compressor::new(LEVEL).ok()?, raw);
    }
    SMALL_MAIL_COMPRESSOR.with_borrow_mut(|compressor| {
        if compressor.is_none() {
            *compressor = zstd::bulk::Compressor::new(LEVEL).ok();
        }
        pack_with(compressor.as_mut()?, raw)
    })
}

/// Mail up to this size is packed with a context kept by the thread. Setting up a context costs about as much as
/// compressing a small mail (batch `ingest` of 2,000 mails of ~0.8 KB: 9 % less CPU with it kept). A context keeps
/// a workspace sized for the largest input it has seen: ~220 KB for 16 KiB, ~580 KB for a 1 MiB piece. Larger
/// mail therefore gets a context of its own, freed with it; one kept for all mail raised the daemon's peak RSS
/// 2–4 MB, for no gain in time (docs/benchmark.md, issue 12, eighth pass).
const SHARED_CONTEXT_BYTES: usize = 16 << 10;

thread_local! {
    static SMALL_MAIL_COMPRESSOR: std::cell::RefCell<Option<zstd::bulk::Compressor<'static>>> =
        const { std::cell::RefCell::new(None) };
}

fn pack_with(compressor: &mut zstd::bulk::Compressor<'static>, raw: &[u8]) -> Option<Packed> {
    let limit = raw.len() - raw.len() / 8;
    let mut frames = Vec::with_capacity(raw.len().div_ceil(PIECE));
    let mut stored = 0;
    for piece in raw.chunks(PIECE) {
        let mut frame = Vec::with_capacity(zstd::compress_bound(piece.len()));
        compressor.compress_to_buffer(piece, &mut frame).ok()?;
        stored += frame.len();
        if stored >= limit {
            return None;
        }
        // Giving back the unused tail is cheap (in place, or mremap for a mapped buffer), unlike a copy.
        frame.shrink_to_fit();
        frames.push(frame);
    }
    (!frames.is_empty()).then_some(Packed { frames, size: raw.len() })
}

/// The zstd frame(s) of `raw` as one buffer, as a row stores them, or None as for [`pack`].
#[cfg(test)]
pub fn compress(raw: &[u8]) -> Option<Vec<u8>> {
    pack(raw).map(|packed| packed.frames.concat())
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

    #[test]
    fn a_large_mail_is_packed_in_pieces_that_read_back_as_one() {
        // Text that compresses but not trivially: numbered lines, three and a half pieces of it.
        let raw: Vec<u8> = (0..)
            .flat_map(|n: u64| format!("line {n}: the printer on floor {} is on fire\r\n", n % 7).into_bytes())
            .take(PIECE * 7 / 2)
            .collect();
        let packed = pack(&raw).expect("text shrinks");
        assert_eq!(packed.frames().len(), 4);
        assert_eq!(packed.size(), raw.len());
        assert!(packed.frames().iter().all(|f| f.capacity() == f.len()), "exactly sized frames");
        assert_eq!(packed.unpack().unwrap(), raw);
        // The concatenation is what a row stores, and the row's reader takes it whole.
        let stored = compress(&raw).unwrap();
        assert_eq!(stored.len(), packed.stored_len());
        assert_eq!(decode(stored, Some(ZSTD), raw.len() as i64).unwrap(), raw);
        // A piece boundary exactly at the end, and one byte past it.
        for len in [PIECE, PIECE + 1] {
            let packed = pack(&raw[..len]).unwrap();
            assert_eq!(packed.frames().len(), len.div_ceil(PIECE));
            assert_eq!(packed.unpack().unwrap(), &raw[..len]);
        }
    }

    #[test]
    fn a_kept_context_packs_each_mail_as_a_new_one_would() {
        let fresh = |raw: &[u8]| pack_with(&mut zstd::bulk::Compressor::new(LEVEL).unwrap(), raw);
        let first = "Subject: printer\r\n\r\n".to_string() + &"the printer is on fire again\r\n".repeat(40);
        let second = "Subject: invoice\r\n\r\n".to_string() + &"please send the invoice of March\r\n".repeat(30);
        // The same thread packs both (the second with the context the first left), then each again.
        for raw in [&first, &second, &first] {
            assert!(raw.len() <= SHARED_CONTEXT_BYTES);
            let packed = pack(raw.as_bytes()).expect("repetitive text shrinks");
            assert_eq!(Some(&packed), fresh(raw.as_bytes()).as_ref());
            assert_eq!(packed.unpack().unwrap(), raw.as_bytes());
        }
    }
}
