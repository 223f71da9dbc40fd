-- Outbox control: why a queued row waits, and an admin's hold or cancel (`postdesk outbox hold|release|cancel`).
-- state gains 'held' (never sent until released) and 'cancelled' (kept, never sent).
-- wait_reason is 'relay' when the last attempt could not reach the relay (connection refused, timeout, TLS, 421):
-- such rows are all tried again the moment the relay answers. 'recipient' is a 4xx for this mail alone.
ALTER TABLE outbox ADD COLUMN wait_reason TEXT;
ALTER TABLE outbox ADD COLUMN admin_note TEXT;   -- the reason given with hold or cancel
