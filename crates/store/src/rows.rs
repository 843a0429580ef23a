//! Row mapping, the same on both back ends: accounts, key pairs, instances and operations are
//! built from the columns of [`crate::sql::ACCOUNT_COLS`], [`crate::sql::KEY_COLS`],
//! [`crate::sql::INSTANCE_COLS`] and the operation columns, read through [`Cells`], which a
//! `rusqlite::Row` and a `tokio_postgres::Row` each implement. The audit trail's rows are
//! read through it too ([`crate::audit_sql::EventRow::read`]).

use crate::postgres::Fail;
use keyplane_core::account::{Account, Secret};
use keyplane_core::instance::{HostKind, Instance, InstanceState, OpState, Operation, OsType};
use keyplane_core::keypair::KeyPair;
use keyplane_core::store::StoreError;

/// The cells of one result row, by column index, in each back end's own error.
pub(crate) trait Cells {
    type Error;

    fn text(&self, i: usize) -> Result<String, Self::Error>;

    /// A text cell, borrowed: for one that is parsed, not kept.
    fn str(&self, i: usize) -> Result<&str, Self::Error>;

    fn text_or_null(&self, i: usize) -> Result<Option<String>, Self::Error>;

    fn int(&self, i: usize) -> Result<i64, Self::Error>;

    /// A truth value: an INTEGER 0 or 1 on SQLite, a boolean on PostgreSQL.
    fn flag(&self, i: usize) -> Result<bool, Self::Error>;

    /// `e` (a stored value this version cannot read) as this back end's error.
    fn invalid(e: StoreError) -> Self::Error;
}

impl Cells for rusqlite::Row<'_> {
    type Error = rusqlite::Error;

    fn text(&self, i: usize) -> rusqlite::Result<String> {
        self.get(i)
    }

    fn str(&self, i: usize) -> rusqlite::Result<&str> {
        let cell = self.get_ref(i)?;
        cell.as_str().map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(i, cell.data_type(), Box::new(e))
        })
    }

    fn text_or_null(&self, i: usize) -> rusqlite::Result<Option<String>> {
        self.get(i)
    }

    fn int(&self, i: usize) -> rusqlite::Result<i64> {
        self.get(i)
    }

    fn flag(&self, i: usize) -> rusqlite::Result<bool> {
        Ok(self.get::<_, i64>(i)? != 0)
    }

    fn invalid(e: StoreError) -> rusqlite::Error {
        crate::sqlite::stored(e)
    }
}

impl Cells for tokio_postgres::Row {
    type Error = Fail;

    fn text(&self, i: usize) -> Result<String, Fail> {
        Ok(self.try_get(i)?)
    }

    fn str(&self, i: usize) -> Result<&str, Fail> {
        Ok(self.try_get(i)?)
    }

    fn text_or_null(&self, i: usize) -> Result<Option<String>, Fail> {
        Ok(self.try_get(i)?)
    }

    fn int(&self, i: usize) -> Result<i64, Fail> {
        Ok(self.try_get(i)?)
    }

    fn flag(&self, i: usize) -> Result<bool, Fail> {
        Ok(self.try_get(i)?)
    }

    fn invalid(e: StoreError) -> Fail {
        Fail::Store(e)
    }
}

/// `parsed`, or the error naming the stored `what` that is not one.
fn known<T, R: Cells>(parsed: Option<T>, what: &str, value: &str) -> Result<T, R::Error> {
    parsed.ok_or_else(|| R::invalid(crate::stored::invalid(what, value)))
}

/// A stored JSON array (tags, key ids): most are empty, and need no parser.
fn json_list<T: serde::de::DeserializeOwned>(text: &str) -> Vec<T> {
    match text {
        "[]" => Vec::new(),
        _ => serde_json::from_str(text).unwrap_or_default(),
    }
}

/// The account in the columns of [`crate::sql::ACCOUNT_COLS`].
pub(crate) fn account<R: Cells>(r: &R) -> Result<Account, R::Error> {
    Ok(Account {
        id: r.text(0)?,
        name: r.text(1)?,
        is_admin: r.flag(2)?,
        secret_id: r.text(3)?,
        secret_key: Secret::new(r.text(4)?),
        access_key_id: r.text(5)?,
        access_key_secret: Secret::new(r.text(6)?),
        created_at: r.int(7)?,
    })
}

/// The key pair in the columns of [`crate::sql::KEY_COLS`], with no associations yet.
pub(crate) fn key_pair<R: Cells>(r: &R) -> Result<KeyPair, R::Error> {
    Ok(KeyPair {
        id: r.text(0)?,
        account_id: r.text(1)?,
        namespace: crate::stored::namespace(r.str(2)?).map_err(R::invalid)?,
        region: r.text(3)?,
        name: r.text(4)?,
        description: r.text(5)?,
        project_id: r.int(6)?,
        public_key: r.text(7)?,
        fingerprint_sha256: r.text(8)?,
        fingerprint_md5: r.text(9)?,
        tags: json_list(r.str(10)?),
        created_at: r.int(11)?,
        associated_instance_ids: Vec::new(),
    })
}

/// The instance in the columns of [`crate::sql::INSTANCE_COLS`], with no bound keys yet.
pub(crate) fn instance<R: Cells>(r: &R) -> Result<Instance, R::Error> {
    let (os, state, host) = (r.str(7)?, r.str(10)?, r.str(11)?);
    Ok(Instance {
        id: r.text(0)?,
        account_id: r.text(1)?,
        namespace: crate::stored::namespace(r.str(2)?).map_err(R::invalid)?,
        region: r.text(3)?,
        zone: r.text(4)?,
        name: r.text(5)?,
        image_id: r.text(6)?,
        os: known::<_, R>(OsType::parse(os), "os", os)?,
        os_name: r.text(8)?,
        instance_type: r.text(9)?,
        state: known::<_, R>(InstanceState::parse(state), "state", state)?,
        host: known::<_, R>(HostKind::parse(host), "host", host)?,
        private_ip: r.text(12)?,
        ssh_port: r.int(13)? as u16,
        password_hash: r.text_or_null(14)?.map(Secret::new),
        key_ids: Vec::new(),
        effective_key_ids: json_list(r.str(15)?),
        desired_generation: r.int(16)?,
        applied_generation: r.int(17)?,
        latest_operation: r.text_or_null(18)?,
        latest_operation_state: r.text_or_null(19)?.and_then(|s| OpState::parse(&s)),
        latest_operation_request_id: r.text_or_null(20)?,
        latest_operation_error: r.text_or_null(21)?,
        created_at: r.int(22)?,
        host_name: match r.text(23)? {
            h if h.is_empty() => r.text(0)?,
            h => h,
        },
    })
}

/// The operation in the columns `id, account_id, instance_id, action, request_id, kind, step,
/// was_running, target_generation, state, created_at`.
pub(crate) fn operation<R: Cells>(r: &R) -> Result<Operation, R::Error> {
    let kind = r.text(5)?;
    let step = r.int(6)?;
    let state = r.text(9)?;
    let (kind, state_before) =
        known::<_, R>(crate::op_kind::decode(&kind), "operation kind", &kind)?;
    Ok(Operation {
        id: r.int(0)?,
        account_id: r.text(1)?,
        instance_id: r.text(2)?,
        action: r.text(3)?,
        request_id: r.text(4)?,
        kind,
        step: known::<_, R>(
            i32::try_from(step).ok(),
            "operation step",
            &step.to_string(),
        )?,
        was_running: r.flag(7)?,
        state_before,
        target_generation: r.int(8)?,
        state: known::<_, R>(OpState::parse(&state), "operation state", &state)?,
        created_at: r.int(10)?,
    })
}
