-- What the IMAP daemon remembers between runs, and what `postdesk status` shows.

CREATE TABLE imap_state (
    mailbox         TEXT    PRIMARY KEY,
    uidvalidity     INTEGER NOT NULL,
    last_uid        INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE daemon_status (
    key             TEXT    PRIMARY KEY,
    value           TEXT    NOT NULL,
    updated_at      INTEGER NOT NULL
) WITHOUT ROWID;
