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
