//! The statements of accounts, key pairs, settings, instances, operations and the console
//! that are one text on both back ends, with the convention of [`crate::audit_sql`]:
//! parameters are written `$n` and each first appears in increasing order, which SQLite binds
//! by position as PostgreSQL does. What differs stays with each back end: locking (`FOR
//! UPDATE`, `SKIP LOCKED`, advisory locks), upserts in each one's types, SQLite's group commit.

/// A bound value, in neither back end's types: each binds it in its own (a list is one JSON
/// array text on SQLite, an array on PostgreSQL).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Arg {
    Text(String),
    OptText(Option<String>),
    Int(i64),
    Texts(Vec<String>),
    Ints(Vec<i64>),
}

/// The columns of an account, in the order of each back end's `account_from_row`.
macro_rules! account_cols {
    () => {
        "id, name, is_admin, secret_id, secret_key, access_key_id, access_key_secret, created_at"
    };
}

/// The columns of a key pair, in the order of each back end's `key_pair_from_row`.
macro_rules! key_cols {
    () => {
        "id, account_id, namespace, region, name, description, project_id, \
         public_key, fingerprint_sha256, fingerprint_md5, tags, created_at"
    };
}

/// [`account_cols!`] as a value.
pub(crate) const ACCOUNT_COLS: &str = account_cols!();

/// [`key_cols!`] as a value.
pub(crate) const KEY_COLS: &str = key_cols!();

/// The columns of an instance, in the order of each back end's `instance_from_row`.
pub(crate) const INSTANCE_COLS: &str =
    "id, account_id, namespace, region, zone, name, image_id, os, os_name, \
    instance_type, state, host, private_ip, ssh_port, password_hash, effective_key_ids, \
    desired_generation, applied_generation, latest_operation, latest_operation_state, \
    latest_operation_request_id, latest_operation_error, created_at, host_name";

/// Insert an account (values in [`ACCOUNT_COLS`] order).
pub(crate) const INSERT_ACCOUNT: &str = concat!(
    "INSERT INTO accounts (",
    account_cols!(),
    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
);

/// Every account, oldest first.
pub(crate) const LIST_ACCOUNTS: &str = concat!(
    "SELECT ",
    account_cols!(),
    " FROM accounts ORDER BY created_at, id"
);

/// Insert a key pair (values in [`KEY_COLS`] order).
pub(crate) const INSERT_KEY_PAIR: &str = concat!(
    "INSERT INTO key_pairs (",
    key_cols!(),
    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
);

/// How many key pairs account `$1` holds in namespace `$2` (its quota's use), from the count
/// kept in the same transactions as the key pairs (see [`crate::key_pair_counts`]): one row
/// rather than the account's index entries, 500 of them at the quota.
pub(crate) const COUNT_KEY_PAIRS: &str = "SELECT COALESCE((SELECT n FROM key_pair_counts \
     WHERE account_id = $1 AND namespace = $2), 0)";

/// Replace account `$3`'s secrets by `$1` and `$2` if they still are `$4` and `$5`.
pub(crate) const REPLACE_SECRETS: &str =
    "UPDATE accounts SET secret_key = $1, access_key_secret = $2 WHERE id = $3 AND \
     secret_key = $4 AND access_key_secret = $5";

/// Replace every credential of account `$5`.
pub(crate) const REPLACE_CREDENTIALS: &str =
    "UPDATE accounts SET secret_id = $1, secret_key = $2, access_key_id = $3, \
     access_key_secret = $4 WHERE id = $5";

/// The value of setting `$1`.
pub(crate) const SETTING: &str = "SELECT value FROM settings WHERE name = $1";

/// (key pair, instance) for every key bound to an instance of account `$1`.
pub(crate) const BOUND_KEYS_OF_ACCOUNT: &str =
    "SELECT ik.key_pair_id, ik.instance_id FROM instance_keys ik JOIN instances i \
     ON i.id = ik.instance_id WHERE i.account_id = $1 ORDER BY i.created_at, i.id";

/// Rename or describe key pair `$3` of account `$4` in namespace `$5` (a NULL keeps the old).
pub(crate) const UPDATE_KEY_PAIR: &str =
    "UPDATE key_pairs SET name = COALESCE($1, name), description = COALESCE($2, description) \
     WHERE id = $3 AND account_id = $4 AND namespace = $5";

/// Delete key pair `$1` of account `$2` in namespace `$3`.
pub(crate) const DELETE_KEY_PAIR: &str =
    "DELETE FROM key_pairs WHERE id = $1 AND account_id = $2 AND namespace = $3";

/// The keys bound to instance `$1`, in their order.
pub(crate) const KEYS_OF_INSTANCE: &str =
    "SELECT key_pair_id FROM instance_keys WHERE instance_id = $1 ORDER BY position";

/// The operation in progress on instance `$1`, if any.
pub(crate) const OPEN_OPERATION: &str =
    "SELECT id FROM operations WHERE instance_id = $1 AND state = 'OPERATING' LIMIT 1";

/// Instance `$4` runs operation `$1` of request `$2`, in state `$3` when not NULL.
pub(crate) const MARK_OPERATING: &str =
    "UPDATE instances SET latest_operation = $1, latest_operation_state = 'OPERATING', \
     latest_operation_request_id = $2, latest_operation_error = NULL, \
     state = COALESCE($3, state) WHERE id = $4";

/// Unbind every key of instance `$1`.
pub(crate) const DELETE_INSTANCE_KEYS: &str = "DELETE FROM instance_keys WHERE instance_id = $1";

/// Bind key `$2` to instance `$1` at position `$3`.
pub(crate) const INSERT_INSTANCE_KEY: &str =
    "INSERT INTO instance_keys (instance_id, key_pair_id, position) VALUES ($1, $2, $3)";

/// Set instance `$2`'s effective keys to `$1` and bump its desired generation.
pub(crate) const SET_EFFECTIVE_KEYS: &str =
    "UPDATE instances SET effective_key_ids = $1, desired_generation = desired_generation + 1 \
     WHERE id = $2";

/// Whether an instance has private address `$1`.
pub(crate) const ADDRESS_TAKEN: &str = "SELECT 1 FROM instances WHERE private_ip = $1 LIMIT 1";

/// The instances created under client token `$3` of account `$1` in namespace `$2`.
pub(crate) const CLIENT_TOKEN: &str =
    "SELECT instance_ids FROM client_tokens WHERE account_id = $1 AND namespace = $2 AND \
     token = $3";

/// Instances by namespace and state.
pub(crate) const COUNT_BY_STATE: &str =
    "SELECT namespace, state, COUNT(*) FROM instances GROUP BY namespace, state";

/// Sandbox instance `$2` is owned by `$1` from now on, unless it has an owner.
pub(crate) const TAKE_SANDBOX: &str =
    "UPDATE instances SET sandbox_owner = $1 WHERE id = $2 AND host = 'sandbox' AND \
     sandbox_owner IS NULL";

/// Worker `$3` keeps operation `$2` until `$1`, if it still holds it.
pub(crate) const RENEW_CLAIM: &str =
    "UPDATE operations SET claim_until = $1 WHERE id = $2 AND claimed_by = $3 \
     AND state = 'OPERATING'";

/// Record operation `$4`'s progress.
pub(crate) const SAVE_PROGRESS: &str =
    "UPDATE operations SET step = $1, was_running = $2, target_generation = $3 WHERE id = $4";

/// Instance `$3` shows its operation of request `$4` ended in state `$1` with error `$2`.
pub(crate) const FINISH_ON_INSTANCE: &str =
    "UPDATE instances SET latest_operation_state = $1, latest_operation_error = $2 \
     WHERE id = $3 AND latest_operation_request_id = $4";

/// Set instance `$2`'s state.
pub(crate) const SET_STATE: &str = "UPDATE instances SET state = $1 WHERE id = $2";

/// Set instance `$2`'s password hash.
pub(crate) const SET_PASSWORD_HASH: &str = "UPDATE instances SET password_hash = $1 WHERE id = $2";

/// Rename instance `$2`.
pub(crate) const SET_NAME: &str = "UPDATE instances SET name = $1 WHERE id = $2";

/// Instance `$2` was served generation `$1`, unless it was served a later one.
pub(crate) const RECORD_SERVED: &str =
    "UPDATE instances SET served_generation = $1 WHERE id = $2 AND served_generation < $1";

/// The generation instance `$1` was last served.
pub(crate) const SERVED_GENERATION: &str = "SELECT served_generation FROM instances WHERE id = $1";

/// Delete instance `$1`.
pub(crate) const DELETE_INSTANCE: &str = "DELETE FROM instances WHERE id = $1";

/// Record a console token.
pub(crate) const INSERT_CONSOLE_TOKEN: &str =
    "INSERT INTO console_tokens (token_hash, kind, account_id, expires_at, created_at) VALUES \
     ($1, $2, $3, $4, $5)";

/// Record a console session.
pub(crate) const INSERT_CONSOLE_SESSION: &str =
    "INSERT INTO console_tokens (token_hash, kind, account_id, expires_at, created_at) VALUES \
     ($1, 'session', $2, $3, $4)";

/// Delete console token `$1`.
pub(crate) const DELETE_CONSOLE_TOKEN: &str = "DELETE FROM console_tokens WHERE token_hash = $1";

/// When each instance of account `$1` last had its agent seen.
pub(crate) const AGENTS_SEEN: &str =
    "SELECT s.instance_id, s.seen_at FROM instances i JOIN agents_seen s \
     ON s.instance_id = i.id WHERE i.account_id = $1 ORDER BY i.created_at, i.id";

/// How many instances account `$1` has in namespace `$2`.
pub(crate) const COUNT_INSTANCES: &str =
    "SELECT COUNT(*) FROM instances WHERE account_id = $1 AND namespace = $2";

#[cfg(test)]
mod tests {
    use super::*;

    /// Each parameter first appears after every lower-numbered one (see [`crate::audit_sql`]).
    fn in_order(text: &str) -> bool {
        let mut highest = 0;
        text.split('$').skip(1).all(|part| {
            let n: usize = part
                .chars()
                .take_while(char::is_ascii_digit)
                .collect::<String>()
                .parse()
                .unwrap();
            let ok = n <= highest + 1;
            highest = highest.max(n);
            ok
        })
    }

    #[test]
    fn every_statement_numbers_its_parameters_in_order() {
        for text in [
            ACCOUNT_COLS,
            KEY_COLS,
            INSTANCE_COLS,
            INSERT_ACCOUNT,
            LIST_ACCOUNTS,
            INSERT_KEY_PAIR,
            COUNT_KEY_PAIRS,
            REPLACE_SECRETS,
            REPLACE_CREDENTIALS,
            SETTING,
            BOUND_KEYS_OF_ACCOUNT,
            UPDATE_KEY_PAIR,
            DELETE_KEY_PAIR,
            KEYS_OF_INSTANCE,
            OPEN_OPERATION,
            MARK_OPERATING,
            DELETE_INSTANCE_KEYS,
            INSERT_INSTANCE_KEY,
            SET_EFFECTIVE_KEYS,
            ADDRESS_TAKEN,
            CLIENT_TOKEN,
            COUNT_BY_STATE,
            TAKE_SANDBOX,
            RENEW_CLAIM,
            SAVE_PROGRESS,
            FINISH_ON_INSTANCE,
            SET_STATE,
            SET_PASSWORD_HASH,
            SET_NAME,
            RECORD_SERVED,
            SERVED_GENERATION,
            DELETE_INSTANCE,
            INSERT_CONSOLE_TOKEN,
            INSERT_CONSOLE_SESSION,
            DELETE_CONSOLE_TOKEN,
            AGENTS_SEEN,
            COUNT_INSTANCES,
        ] {
            assert!(in_order(text), "{text}");
            assert!(!text.contains('?'), "{text}");
        }
        assert!(!in_order("SET a = $2, b = $1"));
        assert!(in_order(RECORD_SERVED));
    }
}
