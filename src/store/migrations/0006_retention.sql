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
