//! The PostgreSQL schema: the SQLite store's migrations, version for version, in PostgreSQL
//! types (`BIGINT` for integers, `BOOLEAN` for flags, `BIGSERIAL` operation ids), with the
//! unique constraints named so that a violation maps back to its [`Conflict`] and one more
//! guarantee SQLite gets from its single writer: at most one operation in progress per
//! instance (`operations_one_open`).
//!
//! [`Conflict`]: keyplane_core::store::Conflict

/// Schema versions, applied in order; the `schema_migrations` table records which ran.
/// Version N here is version N of the SQLite store, in PostgreSQL types.
pub(crate) const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE accounts (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL CONSTRAINT accounts_name UNIQUE,
    is_admin BOOLEAN NOT NULL,
    secret_id TEXT NOT NULL CONSTRAINT accounts_secret_id UNIQUE,
    secret_key TEXT NOT NULL,
    access_key_id TEXT NOT NULL CONSTRAINT accounts_access_key_id UNIQUE,
    access_key_secret TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE TABLE key_pairs (
    id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts(id),
    namespace TEXT NOT NULL,
    region TEXT NOT NULL,
    name TEXT NOT NULL,
    description TEXT NOT NULL,
    project_id BIGINT NOT NULL,
    public_key TEXT NOT NULL,
    fingerprint_sha256 TEXT NOT NULL,
    fingerprint_md5 TEXT NOT NULL,
    tags TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    CONSTRAINT key_pairs_name UNIQUE (account_id, namespace, region, name)
);
CREATE INDEX key_pairs_by_account ON key_pairs(account_id, namespace, created_at);
CREATE TABLE nonces (
    scope TEXT NOT NULL,
    nonce TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (scope, nonce)
);
CREATE INDEX nonces_by_expiry ON nonces(expires_at);
"#,
    r#"
CREATE TABLE instances (
    id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts(id),
    namespace TEXT NOT NULL,
    region TEXT NOT NULL,
    zone TEXT NOT NULL,
    name TEXT NOT NULL,
    image_id TEXT NOT NULL,
    os TEXT NOT NULL,
    os_name TEXT NOT NULL,
    instance_type TEXT NOT NULL,
    state TEXT NOT NULL,
    host TEXT NOT NULL,
    private_ip TEXT NOT NULL,
    ssh_port BIGINT NOT NULL,
    password_hash TEXT,
    effective_key_ids TEXT NOT NULL,
    desired_generation BIGINT NOT NULL,
    applied_generation BIGINT NOT NULL,
    latest_operation TEXT,
    latest_operation_state TEXT,
    latest_operation_request_id TEXT,
    latest_operation_error TEXT,
    created_at BIGINT NOT NULL,
    CONSTRAINT instances_address UNIQUE (private_ip, ssh_port)
);
CREATE INDEX instances_by_account ON instances(account_id, namespace, created_at);
CREATE TABLE instance_keys (
    instance_id TEXT NOT NULL REFERENCES instances(id) ON DELETE CASCADE,
    key_pair_id TEXT NOT NULL REFERENCES key_pairs(id),
    position BIGINT NOT NULL,
    PRIMARY KEY (instance_id, key_pair_id)
);
CREATE INDEX instance_keys_by_key ON instance_keys(key_pair_id);
CREATE TABLE operations (
    id BIGSERIAL PRIMARY KEY,
    account_id TEXT NOT NULL,
    instance_id TEXT NOT NULL,
    action TEXT NOT NULL,
    request_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    step BIGINT NOT NULL,
    was_running BOOLEAN NOT NULL,
    target_generation BIGINT NOT NULL,
    state TEXT NOT NULL,
    error TEXT,
    claimed_by TEXT,
    claim_until BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX operations_open ON operations(state, id);
CREATE UNIQUE INDEX operations_one_open ON operations(instance_id) WHERE state = 'OPERATING';
"#,
    r#"
CREATE UNIQUE INDEX key_pairs_public_key ON key_pairs(account_id, namespace, region, fingerprint_sha256);
CREATE TABLE settings (name TEXT PRIMARY KEY, value TEXT NOT NULL);
"#,
    r#"
ALTER TABLE instances ADD COLUMN sandbox_owner TEXT;
"#,
    r#"
CREATE TABLE client_tokens (
    account_id TEXT NOT NULL,
    namespace TEXT NOT NULL,
    token TEXT NOT NULL,
    instance_ids TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (account_id, namespace, token)
);
"#,
    r#"
ALTER TABLE instances ADD COLUMN host_name TEXT NOT NULL DEFAULT '';
"#,
    r#"
ALTER TABLE instances ADD COLUMN served_generation BIGINT NOT NULL DEFAULT 0;
UPDATE instances SET served_generation = desired_generation;
"#,
    crate::postgres_console::MIGRATION,
    crate::READ_INDEXES,
    crate::postgres_audit::MIGRATION,
    // Version 11 also moves SQLite's index of the audit trail by account out of the changes'
    // transactions (`sqlite_audit_index`). PostgreSQL keeps `audit_events_by_account`: its
    // identities are not committed in order, so a mark of what is indexed could pass an event
    // still to be committed.
    crate::audit_sql::drop_alias_rows!(),
    crate::key_pair_counts::POSTGRES_MIGRATION,
];

/// Advisory lock key held while migrating (any constant; "kplnmigr" in ASCII).
pub(crate) const MIGRATION_LOCK: i64 = 0x6b70_6c6e_6d69_6772;
