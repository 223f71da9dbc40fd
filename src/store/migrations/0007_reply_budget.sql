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
