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
