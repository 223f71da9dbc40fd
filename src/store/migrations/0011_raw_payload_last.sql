-- Large raw mail is written into a column of its own, the row's last, through SQLite's blob handle: SQLite keeps a
-- zero-filled blob unexpanded only in a record's last column, so a large mail is then streamed into its pages
-- instead of being copied twice into memory on insert (the bound value, then the record). `data` is empty in such
-- rows; `encoding` still says what the bytes are. Readers take `payload` when it is not NULL (src/store/read.rs).
ALTER TABLE raw_messages ADD COLUMN payload BLOB;
