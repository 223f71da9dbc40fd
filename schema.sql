-- postdesk database schema (SQLite), the readable whole.
-- The database is built from the append-only migrations in src/store/migrations/; a test checks that they
-- produce exactly this schema. Change both together: add a migration, then update this file.
-- Connection settings (set on every open): journal_mode=WAL, synchronous=FULL, foreign_keys=ON, busy_timeout.

-- ===== from 0001_foundation.sql
-- Tickets, their articles, raw mail, attachments, the ingest ledger and the quarantine.

CREATE TABLE tickets (
    id              INTEGER PRIMARY KEY,
    number          TEXT    NOT NULL UNIQUE,
    subject         TEXT    NOT NULL,
    state           TEXT    NOT NULL DEFAULT 'new',
    queue           TEXT    NOT NULL,
    priority        INTEGER NOT NULL DEFAULT 3,
    customer        TEXT    NOT NULL,              -- lowercased address
    customer_name   TEXT,
    owner           TEXT,
    -- A token someone else's ticket carried in the subject of the mail that opened this one (hijack guard).
    claimed_number  TEXT,
    merged_into     INTEGER REFERENCES tickets(id),
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
);
CREATE INDEX tickets_queue_state ON tickets(queue, state);

-- Who may join a ticket by its subject token: the customer, Cc'd people, agents.
CREATE TABLE ticket_parties (
    ticket_id       INTEGER NOT NULL REFERENCES tickets(id),
    address         TEXT    NOT NULL,              -- lowercased
    role            TEXT    NOT NULL,              -- customer | cc | agent
    PRIMARY KEY (ticket_id, address)
) WITHOUT ROWID;

CREATE TABLE ticket_tags (
    ticket_id       INTEGER NOT NULL REFERENCES tickets(id),
    tag             TEXT    NOT NULL,
    PRIMARY KEY (ticket_id, tag)
) WITHOUT ROWID;

-- Per-day counter behind ticket numbers (YYYYMMDD + system id + counter + check digit).
CREATE TABLE ticket_counters (
    day             TEXT    PRIMARY KEY,
    last            INTEGER NOT NULL
) WITHOUT ROWID;

-- The exact bytes of every ingested mail, stored once per content.
CREATE TABLE raw_messages (
    id              INTEGER PRIMARY KEY,
    sha256          TEXT    NOT NULL UNIQUE,
    size            INTEGER NOT NULL,
    data            BLOB    NOT NULL
);

CREATE TABLE articles (
    id              INTEGER PRIMARY KEY,
    ticket_id       INTEGER NOT NULL REFERENCES tickets(id),
    direction       TEXT    NOT NULL,              -- inbound | outbound
    internal        INTEGER NOT NULL DEFAULT 0,    -- 1: internal note, never shown to the customer
    sender          TEXT,
    sender_name     TEXT,
    recipients      TEXT    NOT NULL DEFAULT '[]', -- JSON array of To addresses
    cc              TEXT    NOT NULL DEFAULT '[]', -- JSON array
    subject         TEXT    NOT NULL,
    message_id      TEXT,
    in_reply_to     TEXT,
    refs            TEXT    NOT NULL DEFAULT '[]', -- JSON array, oldest first
    body_text       TEXT    NOT NULL,
    visible_text    TEXT    NOT NULL,
    classification  TEXT    NOT NULL,              -- human | auto-reply | bounce | list
    classification_reason TEXT,
    -- Set when a mail reused an existing Message-ID with different bytes: kept, but flagged.
    duplicate_of    INTEGER REFERENCES articles(id),
    raw_id          INTEGER REFERENCES raw_messages(id),
    sent_at         INTEGER,                       -- the mail's Date header
    received_at     INTEGER NOT NULL
);
CREATE INDEX articles_ticket ON articles(ticket_id);
CREATE INDEX articles_message_id ON articles(message_id);

-- Attachment contents, addressed by SHA-256 and stored once.
CREATE TABLE blobs (
    sha256          TEXT    PRIMARY KEY,
    size            INTEGER NOT NULL,
    data            BLOB    NOT NULL
) WITHOUT ROWID;

CREATE TABLE attachments (
    id              INTEGER PRIMARY KEY,
    article_id      INTEGER NOT NULL REFERENCES articles(id),
    sha256          TEXT    NOT NULL REFERENCES blobs(sha256),
    filename        TEXT,                          -- the sender's name: metadata only, never a path
    content_type    TEXT    NOT NULL,
    size            INTEGER NOT NULL
);
CREATE INDEX attachments_article ON attachments(article_id);

CREATE TABLE quarantine (
    id              INTEGER PRIMARY KEY,
    reason          TEXT    NOT NULL,
    source          TEXT    NOT NULL,
    sha256          TEXT,
    size            INTEGER NOT NULL,
    data            BLOB,                          -- NULL when the mail was refused before download
    created_at      INTEGER NOT NULL
);

-- One row per mail taken in, whatever became of it. source_key is the source's stable identity
-- (IMAP: mailbox, UIDVALIDITY and UID), so a mail fetched again after a crash is recognised.
CREATE TABLE ingest_ledger (
    id              INTEGER PRIMARY KEY,
    source          TEXT    NOT NULL,
    source_key      TEXT    UNIQUE,
    sha256          TEXT    NOT NULL,
    message_id      TEXT,
    outcome         TEXT    NOT NULL,              -- stored | duplicate | quarantined | ignored
    ticket_id       INTEGER REFERENCES tickets(id),
    article_id      INTEGER REFERENCES articles(id),
    quarantine_id   INTEGER REFERENCES quarantine(id),
    received_at     INTEGER NOT NULL
);
CREATE INDEX ingest_ledger_sha256 ON ingest_ledger(sha256);
CREATE INDEX ingest_ledger_message_id ON ingest_ledger(message_id);

CREATE TABLE ticket_history (
    id              INTEGER PRIMARY KEY,
    ticket_id       INTEGER NOT NULL REFERENCES tickets(id),
    at              INTEGER NOT NULL,
    actor           TEXT    NOT NULL,              -- system | rule | an agent's address
    event           TEXT    NOT NULL,
    detail          TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX ticket_history_ticket ON ticket_history(ticket_id);

-- Which routing rules fired for which article (audit, shown by `ticket show`).
CREATE TABLE rule_hits (
    article_id      INTEGER NOT NULL REFERENCES articles(id),
    ticket_id       INTEGER NOT NULL REFERENCES tickets(id),
    position        INTEGER NOT NULL,
    file            TEXT    NOT NULL,
    rule            TEXT    NOT NULL,
    PRIMARY KEY (article_id, position)
) WITHOUT ROWID;

-- ===== from 0002_daemon.sql
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

-- ===== from 0003_outbox.sql
-- Outgoing mail: the durable outbox, the per-sender auto-reply log (rate limit) and the hard-bounce list.

-- Every mail we send, written in the same transaction as the ticket change that caused it, with its exact bytes
-- and Message-ID fixed then. The sender marks a row sent only after the relay's 250.
CREATE TABLE outbox (
    id              INTEGER PRIMARY KEY,
    ticket_id       INTEGER REFERENCES tickets(id),
    article_id      INTEGER REFERENCES articles(id),  -- the outbound article showing this mail on its ticket
    kind            TEXT    NOT NULL,                 -- template name: acknowledgement, followup, rejection, …
    message_id      TEXT    NOT NULL UNIQUE,
    envelope_from   TEXT    NOT NULL,                 -- '' is the null sender <>
    recipients      TEXT    NOT NULL,                 -- JSON array
    raw             BLOB    NOT NULL,
    state           TEXT    NOT NULL DEFAULT 'queued', -- queued | sent | failed
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    last_error      TEXT,
    bounced         TEXT,                             -- status of a bounce that came back for this mail
    created_at      INTEGER NOT NULL,
    sent_at         INTEGER
);
CREATE INDEX outbox_due ON outbox(state, next_attempt_at);

-- Automatic replies sent, per recipient: the rate limit counts these.
CREATE TABLE auto_replies (
    address         TEXT    NOT NULL,
    sent_at         INTEGER NOT NULL
);
CREATE INDEX auto_replies_address ON auto_replies(address, sent_at);

-- Addresses we stop mailing after a permanent (5.x.x) bounce; cleared with `postdesk suppress remove`.
CREATE TABLE suppressions (
    address         TEXT    PRIMARY KEY,
    reason          TEXT    NOT NULL,
    created_at      INTEGER NOT NULL
) WITHOUT ROWID;

-- ===== from 0004_agents.sql
-- Agents, roles and the queues roles grant; queues added from the CLI; ticket locks and pending times.

CREATE TABLE agents (
    address         TEXT    PRIMARY KEY,           -- lowercased
    name            TEXT    NOT NULL,
    enabled         INTEGER NOT NULL DEFAULT 1,
    created_at      INTEGER NOT NULL
) WITHOUT ROWID;

-- Per-agent notification switches; a missing row means the config's default for that event.
CREATE TABLE agent_notify (
    agent           TEXT    NOT NULL REFERENCES agents(address),
    event           TEXT    NOT NULL,              -- new-ticket | followup | moved | assigned | lock-timeout
    enabled         INTEGER NOT NULL,
    PRIMARY KEY (agent, event)
) WITHOUT ROWID;

CREATE TABLE roles (
    name            TEXT    PRIMARY KEY
) WITHOUT ROWID;

CREATE TABLE role_queues (
    role            TEXT    NOT NULL REFERENCES roles(name),
    queue           TEXT    NOT NULL,
    PRIMARY KEY (role, queue)
) WITHOUT ROWID;

CREATE TABLE agent_roles (
    agent           TEXT    NOT NULL REFERENCES agents(address),
    role            TEXT    NOT NULL REFERENCES roles(name),
    PRIMARY KEY (agent, role)
) WITHOUT ROWID;

-- Queues added with `postdesk queue add`; the config's [[queues]] are there too, and win on a name clash.
CREATE TABLE queues (
    name            TEXT    PRIMARY KEY,
    address         TEXT,
    templates       TEXT
) WITHOUT ROWID;

ALTER TABLE tickets ADD COLUMN locked_until INTEGER;   -- #take: the owner's lock ends then unless answered
ALTER TABLE tickets ADD COLUMN pending_until INTEGER;  -- #pending: reopens then


-- ===== from 0005_attachments_in_raw.sql
-- Attachment bytes are kept once, inside the raw mail that first carried them, instead of a second, decoded copy.
-- A blob with raw_id set has empty data: its content is the attachment of that raw mail whose SHA-256 is the key,
-- recovered by parsing the mail again (src/attachments.rs). Blobs written before this migration keep their data.
ALTER TABLE blobs ADD COLUMN raw_id INTEGER REFERENCES raw_messages(id);

-- ===== from 0006_retention.sql
-- Retention and erasure: one audit line per purged ticket and per erased person, kept after their data is gone.
-- An erasure's line never names the person (that would defeat it): it says what was removed, by whom and why.
CREATE TABLE audit_log (
    id              INTEGER PRIMARY KEY,
    at              INTEGER NOT NULL,
    actor           TEXT    NOT NULL,              -- system (retention) | admin
    action          TEXT    NOT NULL,              -- purged | erased
    detail          TEXT    NOT NULL DEFAULT ''
);

-- Retention looks for closed tickets by their last activity.
CREATE INDEX tickets_state_updated ON tickets(state, updated_at);

-- ===== from 0007_reply_budget.sql
-- The auto-reply budget (issue 10): automatic replies to first-time senders count against a global hourly cap, an
-- address is known when it is a party of an earlier ticket, and every reply the budget refuses is counted for
-- `postdesk status`. Addresses in auto_replies are from now on normalised (lowercase, no +tag).
ALTER TABLE auto_replies ADD COLUMN first_contact INTEGER NOT NULL DEFAULT 0;
CREATE INDEX auto_replies_first_contact ON auto_replies(first_contact, sent_at);
CREATE INDEX ticket_parties_address ON ticket_parties(address);
CREATE TABLE auto_reply_refusals (
    at              INTEGER NOT NULL,
    reason          TEXT    NOT NULL               -- sender-limit | unknown-senders-cap
);
CREATE INDEX auto_reply_refusals_at ON auto_reply_refusals(at);
-- ===== from 0008_quarantine_actions.sql
-- What an admin did about a quarantined mail: replayed it into a ticket, or dropped it with a reason. One row per
-- quarantined mail at most (the primary key), so a replay can only ever happen once.
CREATE TABLE quarantine_actions (
    quarantine_id   INTEGER PRIMARY KEY REFERENCES quarantine(id),
    action          TEXT    NOT NULL,              -- replayed | dropped
    detail          TEXT    NOT NULL,              -- what the replay became, or why it was dropped
    ticket_number   TEXT,                          -- the ticket a replay made or joined
    actor           TEXT    NOT NULL,
    at              INTEGER NOT NULL
);
-- ===== from 0009_outbox_control.sql
-- Outbox control: why a queued row waits, and an admin's hold or cancel (`postdesk outbox hold|release|cancel`).
-- state gains 'held' (never sent until released) and 'cancelled' (kept, never sent).
-- wait_reason is 'relay' when the last attempt could not reach the relay (connection refused, timeout, TLS, 421):
-- such rows are all tried again the moment the relay answers. 'recipient' is a 4xx for this mail alone.
ALTER TABLE outbox ADD COLUMN wait_reason TEXT;
ALTER TABLE outbox ADD COLUMN admin_note TEXT;   -- the reason given with hold or cancel
-- ===== from 0010_fast_reads_lean_writes.sql
-- Reads that stay fast at a million tickets, and fewer bytes and index entries written per mail.
-- `ticket list` is served by indexes on its order (newest activity first), with or without a queue or state filter,
-- and each ticket keeps its article count (a trigger) instead of `ticket list` counting articles per row.
ALTER TABLE tickets ADD COLUMN article_count INTEGER NOT NULL DEFAULT 0;
CREATE TRIGGER articles_count AFTER INSERT ON articles BEGIN
    UPDATE tickets SET article_count = article_count + 1 WHERE id = NEW.ticket_id;
END;
DROP INDEX tickets_queue_state;
CREATE INDEX tickets_updated ON tickets(updated_at);
CREATE INDEX tickets_queue_updated ON tickets(queue, updated_at);
-- tickets_state_updated (state, updated_at) came with 0006, for retention; it serves `ticket list --state` too.
-- No query looks the ledger up by Message-ID (threading uses articles.message_id): one index fewer per mail.
DROP INDEX ingest_ledger_message_id;
-- Raw mail may be stored compressed: NULL is the exact bytes (every row written before this migration),
-- 'zstd' a zstd frame of them (src/store/raw.rs). Readers always get the exact bytes back.
ALTER TABLE raw_messages ADD COLUMN encoding TEXT;
-- ===== from 0011_raw_payload_last.sql
-- Large raw mail is written into a column of its own, the row's last, through SQLite's blob handle: SQLite keeps a
-- zero-filled blob unexpanded only in a record's last column, so a large mail is then streamed into its pages
-- instead of being copied twice into memory on insert (the bound value, then the record). `data` is empty in such
-- rows; `encoding` still says what the bytes are. Readers take `payload` when it is not NULL (src/store/read.rs).
ALTER TABLE raw_messages ADD COLUMN payload BLOB;
