-- Attachment bytes are kept once, inside the raw mail that first carried them, instead of a second, decoded copy.
-- A blob with raw_id set has empty data: its content is the attachment of that raw mail whose SHA-256 is the key,
-- recovered by parsing the mail again (src/attachments.rs). Blobs written before this migration keep their data.
ALTER TABLE blobs ADD COLUMN raw_id INTEGER REFERENCES raw_messages(id);
