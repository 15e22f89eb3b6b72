//! The SQLite schema, as an append-only list of migrations.
//!
//! `PRAGMA user_version` holds how many migrations a file has had. Never edit a migration that has
//! shipped: add a new one, so files written by an older build upgrade in place.
//!
//! Times compared in SQL (visibility, expiry, ordering) are integer epoch milliseconds; times that
//! only round-trip are kept inside the JSON `item` of their row, so they come back exactly.

/// Migration `i` takes a file from `user_version` `i` to `i + 1`.
pub(super) const MIGRATIONS: &[&str] = &[V1];

const V1: &str = r#"
CREATE TABLE queues (
    name          TEXT PRIMARY KEY,
    -- NULL for a dead-letter queue itself.
    dlq           TEXT,
    max_receives  INTEGER,
    visibility_ms INTEGER NOT NULL
) STRICT;

CREATE TABLE messages (
    -- Insertion order; kept across DLQ moves so "oldest first" means first sent.
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    queue         TEXT NOT NULL REFERENCES queues(name),
    message_id    TEXT NOT NULL UNIQUE,
    body          TEXT NOT NULL,
    sent_at_ms    INTEGER NOT NULL,
    visible_at_ms INTEGER NOT NULL,
    receive_count INTEGER NOT NULL DEFAULT 0,
    -- The receipt of the latest receive; NULL until received (and after a DLQ move).
    receipt       TEXT UNIQUE
) STRICT;
CREATE INDEX messages_by_queue ON messages(queue, visible_at_ms, seq);

CREATE TABLE audit (
    record_key    TEXT NOT NULL,
    -- `<at RFC3339 millis Z>#<event_id>#<connection>`, the DynamoDB sort key.
    sk            TEXT NOT NULL,
    -- `<outcome>#<YYYY-MM-DD>`, the DynamoDB GSI partition.
    outcome_day   TEXT NOT NULL,
    expires_at_ms INTEGER,
    item          TEXT NOT NULL,
    PRIMARY KEY (record_key, sk)
) STRICT, WITHOUT ROWID;
CREATE INDEX audit_by_outcome_day ON audit(outcome_day, sk);

CREATE TABLE dead_letters (
    id            TEXT PRIMARY KEY,
    status        TEXT NOT NULL,
    created_at_ms INTEGER NOT NULL,
    expires_at_ms INTEGER,
    item          TEXT NOT NULL
) STRICT;
CREATE INDEX dead_letters_by_status ON dead_letters(status, created_at_ms, id);

CREATE TABLE idempotency (
    key           TEXT PRIMARY KEY,
    state         TEXT NOT NULL CHECK (state IN ('claimed', 'done')),
    outcome       TEXT,
    -- Claimed: end of the lease. Done: `expires_at`.
    until_ms      INTEGER NOT NULL
) STRICT;

CREATE TABLE leases (
    name          TEXT PRIMARY KEY,
    holder        TEXT NOT NULL,
    until_ms      INTEGER NOT NULL
) STRICT;

CREATE TABLE id_map (
    connection    TEXT NOT NULL,
    source_key    TEXT NOT NULL,
    item          TEXT NOT NULL,
    PRIMARY KEY (connection, source_key)
) STRICT, WITHOUT ROWID;

CREATE TABLE cursors (
    name          TEXT PRIMARY KEY,
    value         TEXT NOT NULL
) STRICT;

CREATE TABLE callbacks (
    route_id      TEXT PRIMARY KEY,
    item          TEXT NOT NULL
) STRICT;

CREATE TABLE blobs (
    key           TEXT PRIMARY KEY,
    body          BLOB NOT NULL,
    expires_at_ms INTEGER
) STRICT;

CREATE TABLE connections (
    id            INTEGER PRIMARY KEY CHECK (id = 1),
    json          TEXT NOT NULL
) STRICT;

CREATE TABLE secrets (
    name          TEXT PRIMARY KEY,
    nonce         BLOB NOT NULL,
    ciphertext    BLOB NOT NULL,
    updated_at_ms INTEGER NOT NULL
) STRICT;
"#;
