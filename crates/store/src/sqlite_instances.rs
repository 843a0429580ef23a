//! [`InstanceStore`] on SQLite: instances, their bound keys, and durable operations.

use crate::sql::{self, INSTANCE_COLS};
use crate::sqlite::{backend, is_unique_violation, SqliteStore};
use crate::sqlite_cached::Cached;
use async_trait::async_trait;
use keyplane_core::audit::AuditEvent;
use keyplane_core::instance::{Instance, InstanceState, NewOperation, OpState, Operation};
use keyplane_core::keypair::Namespace;
use keyplane_core::query::{InstancePage, InstanceQuery};
use keyplane_core::store::{Claimable, Conflict, InstanceStore, StoreError, StoreResult};
use rusqlite::{params, Connection, OptionalExtension, Row};

fn bad(what: &str, v: &str) -> rusqlite::Error {
    crate::sqlite::stored(crate::stored::invalid(what, v))
}

pub(crate) fn instance_from_row(r: &Row<'_>) -> rusqlite::Result<Instance> {
    crate::rows::instance(r)
}

pub(crate) fn fill_keys(c: &Connection, instances: &mut [Instance]) -> StoreResult<()> {
    let mut st = c.prepare_cached(sql::KEYS_OF_INSTANCE).map_err(backend)?;
    for inst in instances.iter_mut() {
        let rows = st
            .query_map(params![inst.id], |r| r.get::<_, String>(0))
            .map_err(backend)?;
        inst.key_ids = rows.collect::<Result<_, _>>().map_err(backend)?;
    }
    Ok(())
}

fn query_instances(
    c: &Connection,
    where_sql: &str,
    args: &[&dyn rusqlite::ToSql],
) -> StoreResult<Vec<Instance>> {
    query_instances_ordered(c, where_sql, "created_at, id", args)
}

fn query_instances_ordered(
    c: &Connection,
    where_sql: &str,
    order: &str,
    args: &[&dyn rusqlite::ToSql],
) -> StoreResult<Vec<Instance>> {
    let sql = format!("SELECT {INSTANCE_COLS} FROM instances {where_sql} ORDER BY {order}");
    let mut st = c.prepare_cached(&sql).map_err(backend)?;
    let rows = st.query_map(args, instance_from_row).map_err(backend)?;
    let mut out: Vec<Instance> = rows.collect::<Result<_, _>>().map_err(backend)?;
    fill_keys(c, &mut out)?;
    Ok(out)
}

fn insert_op(tx: &Connection, op: &NewOperation) -> StoreResult<()> {
    let busy: Option<i64> = tx
        .row(sql::OPEN_OPERATION, params![op.instance_id], |r| r.get(0))
        .optional()
        .map_err(backend)?;
    if busy.is_some() {
        return Err(StoreError::Conflict(Conflict::InstanceBusy));
    }
    tx.exec(
        "INSERT INTO operations (account_id, instance_id, action, request_id, kind, step, \
         was_running, target_generation, state, claim_until, created_at, updated_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, 0, 0, 0, 'OPERATING', 0, ?6, ?6)",
        params![
            op.account_id,
            op.instance_id,
            op.action,
            op.request_id,
            crate::op_kind::encode(&op.kind, op.state_before),
            op.created_at
        ],
    )
    .map_err(backend)?;
    let n = tx
        .exec(
            sql::MARK_OPERATING,
            params![
                op.action,
                op.request_id,
                op.new_state.map(|s| s.as_str()),
                op.instance_id
            ],
        )
        .map_err(backend)?;
    if n == 0 {
        return Err(StoreError::NotFound(op.instance_id.clone()));
    }
    Ok(())
}

fn operation_from_row(r: &Row<'_>) -> rusqlite::Result<Operation> {
    crate::rows::operation(r)
}

fn write_keys(tx: &Connection, id: &str, key_ids: &[String]) -> StoreResult<()> {
    tx.exec(sql::DELETE_INSTANCE_KEYS, params![id])
        .map_err(backend)?;
    for (i, k) in key_ids.iter().enumerate() {
        tx.exec(sql::INSERT_INSTANCE_KEY, params![id, k, i as i64])
            .map_err(backend)?;
    }
    Ok(())
}

/// Set the effective keys; bump the desired generation when they change. Returns it.
fn write_effective(tx: &Connection, id: &str, effective: &[String]) -> StoreResult<i64> {
    let (current, generation): (String, i64) = tx
        .row(
            "SELECT effective_key_ids, desired_generation FROM instances WHERE id = ?1",
            params![id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()
        .map_err(backend)?
        .ok_or_else(|| StoreError::NotFound(id.to_string()))?;
    let current: Vec<String> = serde_json::from_str(&current).unwrap_or_default();
    if current == effective {
        return Ok(generation);
    }
    let encoded = serde_json::to_string(effective).map_err(backend)?;
    tx.exec(sql::SET_EFFECTIVE_KEYS, params![encoded, id])
        .map_err(backend)?;
    Ok(generation + 1)
}

/// Insert instances with their bound keys, then their operations.
fn insert_all(tx: &Connection, instances: &[Instance], ops: &[NewOperation]) -> StoreResult<()> {
    for i in instances {
        // One address, one instance, whatever the port (the unique index covers the pair).
        let taken: Option<i64> = tx
            .row(sql::ADDRESS_TAKEN, params![i.private_ip], |r| r.get(0))
            .optional()
            .map_err(backend)?;
        if taken.is_some() {
            return Err(StoreError::Conflict(Conflict::Address));
        }
        tx.exec(
            &format!("INSERT INTO instances ({INSTANCE_COLS}) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,?16,?17,?18,?19,?20,?21,?22,?23,?24)"),
            params![
        i.id, i.account_id, i.namespace.as_str(), i.region, i.zone, i.name, i.image_id,
        i.os.as_str(), i.os_name, i.instance_type, i.state.as_str(), i.host.as_str(),
        i.private_ip, i.ssh_port as i64, i.password_hash.as_ref().map(|h| h.expose().to_string()),
        serde_json::to_string(&i.effective_key_ids).map_err(backend)?,
        i.desired_generation, i.applied_generation, i.latest_operation,
        i.latest_operation_state.map(|s| s.as_str()), i.latest_operation_request_id,
        i.latest_operation_error, i.created_at, i.host_name
            ],
        )
        .map_err(|e| match is_unique_violation(&e) {
            Some(msg) if msg.contains("private_ip") => StoreError::Conflict(Conflict::Address),
            Some(_) => StoreError::Conflict(Conflict::Id),
            None => backend(e),
        })?;
        write_keys(tx, &i.id, &i.key_ids)?;
    }
    for op in ops {
        insert_op(tx, op)?;
    }
    Ok(())
}

#[async_trait]
impl InstanceStore for SqliteStore {
    async fn insert_instances(
        &self,
        instances: &[Instance],
        ops: &[NewOperation],
        audit: Option<&AuditEvent>,
    ) -> StoreResult<()> {
        let (instances, ops, audit) = (instances.to_vec(), ops.to_vec(), audit.cloned());
        self.with(move |c| {
            let tx = c.savepoint().map_err(backend)?;
            insert_all(&tx, &instances, &ops)?;
            crate::sqlite_audit::write_event(&tx, audit)?;
            tx.commit().map_err(backend)
        })
        .await
    }

    async fn insert_instances_once(
        &self,
        instances: &[Instance],
        ops: &[NewOperation],
        client_token: &str,
        audit: Option<&AuditEvent>,
    ) -> StoreResult<Vec<String>> {
        let (instances, ops, audit) = (instances.to_vec(), ops.to_vec(), audit.cloned());
        let token = client_token.to_string();
        self.with(move |c| {
            let tx = c.savepoint().map_err(backend)?;
            let first = instances.first().ok_or_else(|| backend("no instances"))?;
            let (account, ns) = (first.account_id.clone(), first.namespace.as_str());
            let earlier: Option<String> = tx
                .row(
                    sql::CLIENT_TOKEN,
                    params![account, ns, token],
                    |r| r.get(0),
                )
                .optional()
                .map_err(backend)?;
            if let Some(ids) = earlier {
                return serde_json::from_str(&ids).map_err(backend);
            }
            insert_all(&tx, &instances, &ops)?;
            let ids: Vec<String> = instances.iter().map(|i| i.id.clone()).collect();
            tx.exec(
                "INSERT INTO client_tokens (account_id, namespace, token, instance_ids, created_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![account, ns, token, serde_json::to_string(&ids).map_err(backend)?, first.created_at],
            )
            .map_err(backend)?;
            crate::sqlite_audit::write_event(&tx, audit)?;
            tx.commit().map_err(backend)?;
            Ok(ids)
        })
        .await
    }

    async fn list_instances(
        &self,
        account_id: &str,
        namespace: Namespace,
    ) -> StoreResult<Vec<Instance>> {
        let account_id = account_id.to_string();
        self.read(move |c| {
            query_instances(
                c,
                "WHERE account_id = ?1 AND namespace = ?2",
                &[&account_id, &namespace.as_str()],
            )
        })
        .await
    }

    async fn get_instance(&self, id: &str) -> StoreResult<Option<Instance>> {
        let id = id.to_string();
        self.read(move |c| Ok(query_instances(c, "WHERE id = ?1", &[&id])?.pop()))
            .await
    }

    async fn all_instances(&self) -> StoreResult<Vec<Instance>> {
        self.read(|c| query_instances(c, "", &[])).await
    }

    async fn count_instances_by_state(&self) -> StoreResult<Vec<(Namespace, InstanceState, u64)>> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(sql::COUNT_BY_STATE).map_err(backend)?;
            let rows = stmt
                .query_map([], |r| {
                    let (ns, state): (String, String) = (r.get(0)?, r.get(1)?);
                    Ok((
                        crate::stored::namespace(&ns).map_err(crate::sqlite::stored)?,
                        InstanceState::parse(&state).ok_or_else(|| bad("state", &state))?,
                        r.get::<_, i64>(2)? as u64,
                    ))
                })
                .map_err(backend)?;
            rows.collect::<rusqlite::Result<Vec<_>>>().map_err(backend)
        })
        .await
    }

    async fn submit_operations(
        &self,
        ops: &[NewOperation],
        audit: Option<&AuditEvent>,
    ) -> StoreResult<()> {
        let (ops, audit) = (ops.to_vec(), audit.cloned());
        self.with(move |c| {
            let tx = c.savepoint().map_err(backend)?;
            for op in &ops {
                insert_op(&tx, op)?;
            }
            crate::sqlite_audit::write_event(&tx, audit)?;
            tx.commit().map_err(backend)
        })
        .await
    }

    async fn claim_operation_scoped(
        &self,
        worker: &str,
        now: i64,
        lease_until: i64,
        scope: Claimable<'_>,
    ) -> StoreResult<Option<Operation>> {
        let worker = worker.to_string();
        let (any, owner, adopt_before) = scope.parts();
        let owner = owner.map(str::to_string);
        self.with(move |c| {
            let tx = c.savepoint().map_err(backend)?;
            let op = tx
                .row(
                    "SELECT o.id, o.account_id, o.instance_id, o.action, o.request_id, o.kind, o.step, \
                     o.was_running, o.target_generation, o.state, o.created_at \
                     FROM operations o LEFT JOIN instances i ON i.id = o.instance_id \
                     WHERE o.state = 'OPERATING' AND o.claim_until <= ?1 \
                     AND (?2 OR i.id IS NULL OR i.host <> 'sandbox' \
                          OR (?3 IS NOT NULL AND (i.sandbox_owner IS NULL OR i.sandbox_owner = ?3)) \
                          OR (?3 IS NULL AND i.sandbox_owner IS NULL AND o.created_at <= ?4)) \
                     ORDER BY o.id LIMIT 1",
                    params![now, any, owner, adopt_before],
                    operation_from_row,
                )
                .optional()
                .map_err(backend)?;
            if let Some(op) = &op {
                tx.exec(
                    "UPDATE operations SET claimed_by = ?1, claim_until = ?2, updated_at = ?3 WHERE id = ?4",
                    params![worker, lease_until, now, op.id],
                )
                .map_err(backend)?;
                if let Some(owner) = &owner {
                    tx.exec(
                        sql::TAKE_SANDBOX,
                        params![owner, op.instance_id],
                    )
                    .map_err(backend)?;
                }
            }
            tx.commit().map_err(backend)?;
            Ok(op)
        })
        .await
    }

    async fn renew_claim(&self, op_id: i64, worker: &str, lease_until: i64) -> StoreResult<bool> {
        let worker = worker.to_string();
        self.with(move |c| {
            let n = c
                .exec(sql::RENEW_CLAIM, params![lease_until, op_id, worker])
                .map_err(backend)?;
            Ok(n == 1)
        })
        .await
    }

    async fn save_progress(&self, op: &Operation) -> StoreResult<()> {
        let op = op.clone();
        self.with(move |c| {
            c.exec(
                sql::SAVE_PROGRESS,
                params![op.step, op.was_running as i64, op.target_generation, op.id],
            )
            .map_err(backend)?;
            Ok(())
        })
        .await
    }

    async fn finish_operation(
        &self,
        op_id: i64,
        state: OpState,
        error: Option<&str>,
    ) -> StoreResult<()> {
        let error = error.map(str::to_string);
        self.with(move |c| {
            let tx = c.savepoint().map_err(backend)?;
            let (instance, request_id, was): (String, String, String) = tx
                .row(
                    "SELECT instance_id, request_id, state FROM operations WHERE id = ?1",
                    params![op_id],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .map_err(backend)?;
            if was == OpState::Operating.as_str() && state != OpState::Operating {
                crate::sqlite_audit::operation_ended(
                    &tx,
                    &request_id,
                    state != OpState::Success,
                    error.as_deref(),
                )?;
            }
            tx.exec(
                "UPDATE operations SET state = ?1, error = ?2, claimed_by = NULL WHERE id = ?3",
                params![state.as_str(), error, op_id],
            )
            .map_err(backend)?;
            tx.exec(
                sql::FINISH_ON_INSTANCE,
                params![state.as_str(), error, instance, request_id],
            )
            .map_err(backend)?;
            tx.commit().map_err(backend)
        })
        .await
    }

    async fn set_instance_state(&self, id: &str, state: InstanceState) -> StoreResult<()> {
        let id = id.to_string();
        self.with(move |c| {
            c.exec(sql::SET_STATE, params![state.as_str(), id])
                .map_err(backend)?;
            Ok(())
        })
        .await
    }

    async fn set_password_hash(&self, id: &str, hash: Option<&str>) -> StoreResult<()> {
        let (id, hash) = (id.to_string(), hash.map(str::to_string));
        self.with(move |c| {
            let n = c
                .exec(sql::SET_PASSWORD_HASH, params![hash, id])
                .map_err(backend)?;
            if n == 0 {
                return Err(StoreError::NotFound(id));
            }
            Ok(())
        })
        .await
    }

    async fn set_instance_name(
        &self,
        id: &str,
        name: &str,
        audit: Option<&AuditEvent>,
    ) -> StoreResult<()> {
        let (id, name, audit) = (id.to_string(), name.to_string(), audit.cloned());
        self.with(move |c| {
            let tx = c.savepoint().map_err(backend)?;
            let n = tx.exec(sql::SET_NAME, params![name, id]).map_err(backend)?;
            if n == 0 {
                return Err(StoreError::NotFound(id));
            }
            crate::sqlite_audit::write_event(&tx, audit)?;
            tx.commit().map_err(backend)
        })
        .await
    }

    async fn set_bindings(
        &self,
        id: &str,
        key_ids: &[String],
        effective: Option<&[String]>,
    ) -> StoreResult<i64> {
        let (id, key_ids) = (id.to_string(), key_ids.to_vec());
        let effective = effective.map(<[String]>::to_vec);
        self.with(move |c| {
            let tx = c.savepoint().map_err(backend)?;
            write_keys(&tx, &id, &key_ids)?;
            let generation = match &effective {
                Some(eff) => write_effective(&tx, &id, eff)?,
                None => tx
                    .row(
                        "SELECT desired_generation FROM instances WHERE id = ?1",
                        params![id],
                        |r| r.get(0),
                    )
                    .optional()
                    .map_err(backend)?
                    .ok_or_else(|| StoreError::NotFound(id.clone()))?,
            };
            tx.commit().map_err(backend)?;
            Ok(generation)
        })
        .await
    }

    async fn activate_bindings(&self, id: &str) -> StoreResult<i64> {
        let id = id.to_string();
        self.with(move |c| {
            let tx = c.savepoint().map_err(backend)?;
            let mut st = tx.prepare(sql::KEYS_OF_INSTANCE).map_err(backend)?;
            let keys: Vec<String> = st
                .query_map(params![id], |r| r.get(0))
                .map_err(backend)?
                .collect::<Result<_, _>>()
                .map_err(backend)?;
            drop(st);
            let generation = write_effective(&tx, &id, &keys)?;
            tx.commit().map_err(backend)?;
            Ok(generation)
        })
        .await
    }

    async fn record_served_generation(&self, id: &str, generation: i64) -> StoreResult<()> {
        let id = id.to_string();
        self.with(move |c| {
            c.exec(sql::RECORD_SERVED, params![generation, id])
                .map_err(backend)?;
            Ok(())
        })
        .await
    }

    async fn served_generation(&self, id: &str) -> StoreResult<Option<i64>> {
        let id = id.to_string();
        self.read(move |c| {
            c.row(sql::SERVED_GENERATION, params![id], |r| r.get(0))
                .optional()
                .map_err(backend)
        })
        .await
    }

    async fn set_applied_generation(&self, id: &str, generation: i64) -> StoreResult<bool> {
        let id = id.to_string();
        self.with(move |c| {
            let n = c
                .exec(
                    "UPDATE instances SET applied_generation = MAX(applied_generation, ?1) \
                     WHERE id = ?2 AND ?1 >= 0 AND ?1 <= served_generation",
                    params![generation, id],
                )
                .map_err(backend)?;
            Ok(n == 1)
        })
        .await
    }

    async fn delete_instance(&self, id: &str) -> StoreResult<()> {
        let id = id.to_string();
        self.with(move |c| {
            let tx = c.savepoint().map_err(backend)?;
            tx.exec(sql::DELETE_INSTANCE_KEYS, params![id])
                .map_err(backend)?;
            tx.exec(sql::DELETE_INSTANCE, params![id])
                .map_err(backend)?;
            tx.commit().map_err(backend)
        })
        .await
    }

    async fn instances_by_ids(
        &self,
        account_id: &str,
        namespace: Namespace,
        ids: &[String],
    ) -> StoreResult<Vec<Instance>> {
        let account_id = account_id.to_string();
        let ids = serde_json::to_string(ids).map_err(backend)?;
        self.read(move |c| {
            // `+`: the primary key finds the rows, not the account index (see sqlite_query).
            query_instances_ordered(
                c,
                "WHERE +account_id = ?1 AND +namespace = ?2 \
                 AND id IN (SELECT value FROM json_each(?3))",
                "+created_at, +id",
                &[&account_id, &namespace.as_str(), &ids],
            )
        })
        .await
    }

    async fn query_instances(
        &self,
        account_id: &str,
        namespace: Namespace,
        query: &InstanceQuery,
    ) -> StoreResult<InstancePage> {
        let (account_id, query) = (account_id.to_string(), query.clone());
        self.read_bounded(move |c| {
            crate::sqlite_query::query_instances(c, &account_id, namespace, &query)
        })
        .await
    }

    async fn count_instances(&self, account_id: &str, namespace: Namespace) -> StoreResult<usize> {
        let account_id = account_id.to_string();
        self.read(move |c| crate::sqlite_query::count_instances(c, &account_id, namespace))
            .await
    }

    async fn taken_addresses(&self, addresses: &[String]) -> StoreResult<Vec<String>> {
        let addresses = addresses.to_vec();
        self.read(move |c| crate::sqlite_query::taken_addresses(c, &addresses))
            .await
    }
}
