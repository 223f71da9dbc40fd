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
