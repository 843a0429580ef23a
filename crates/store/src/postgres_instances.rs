//! [`InstanceStore`] on PostgreSQL: instances, their bound keys, and durable operations shared
//! by every node.

use crate::postgres::{conflict_or, corrupt, in_transaction, Fail, PostgresStore};
use crate::sql::{self, INSTANCE_COLS};
use async_trait::async_trait;
use deadpool_postgres::{GenericClient, Transaction};
use keyplane_core::audit::AuditEvent;
use keyplane_core::instance::{Instance, InstanceState, NewOperation, OpState, Operation};
use keyplane_core::keypair::Namespace;
use keyplane_core::query::{InstancePage, InstanceQuery};
use keyplane_core::store::{Claimable, Conflict, InstanceStore, StoreError, StoreResult};
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;

/// First key of the advisory lock an instance address is held under while it is checked and
/// inserted ("kpad" in ASCII); the second is the address's hash.
const ADDRESS_LOCK: i32 = 0x6b70_6164;

const OPERATION_COLS: &str = "id, account_id, instance_id, action, request_id, kind, step, \
     was_running, target_generation, state, created_at";

pub(crate) fn instance_from_row(r: &Row) -> Result<Instance, Fail> {
    crate::rows::instance(r)
}

fn operation_from_row(r: &Row) -> Result<Operation, Fail> {
    crate::rows::operation(r)
}

/// Instances matching `where_sql`, oldest first, with their bound keys.
async fn query_instances(
    c: &impl GenericClient,
    where_sql: &str,
    args: &[&(dyn ToSql + Sync)],
) -> Result<Vec<Instance>, Fail> {
    let sql = format!("SELECT {INSTANCE_COLS} FROM instances {where_sql} ORDER BY created_at, id");
    let st = c.prepare_cached(&sql).await?;
    let mut out = c
        .query(&st, args)
        .await?
        .iter()
        .map(instance_from_row)
        .collect::<Result<Vec<_>, _>>()?;
    fill_keys(c, &mut out).await?;
    Ok(out)
}

/// Fill each instance's bound keys, in binding order.
pub(crate) async fn fill_keys(c: &impl GenericClient, out: &mut [Instance]) -> Result<(), Fail> {
    if out.is_empty() {
        return Ok(());
    }
    let ids: Vec<&str> = out.iter().map(|i| i.id.as_str()).collect();
    let keys = c
        .prepare_cached(
            "SELECT instance_id, key_pair_id FROM instance_keys WHERE instance_id = ANY($1) \
             ORDER BY instance_id, position",
        )
        .await?;
    let rows = c.query(&keys, &[&ids]).await?;
    for row in rows {
        let instance: String = row.try_get(0)?;
        if let Some(i) = out.iter_mut().find(|i| i.id == instance) {
            i.key_ids.push(row.try_get(1)?);
        }
    }
    Ok(())
}

/// Record one operation on an instance the transaction has locked (or just inserted).
async fn insert_op(tx: &Transaction<'_>, op: &NewOperation) -> Result<(), Fail> {
    let busy = tx.prepare_cached(sql::OPEN_OPERATION).await?;
    if tx.query_opt(&busy, &[&op.instance_id]).await?.is_some() {
        return Err(Fail::Store(StoreError::Conflict(Conflict::InstanceBusy)));
    }
    let insert = tx
        .prepare_cached(
            "INSERT INTO operations (account_id, instance_id, action, request_id, kind, step, \
             was_running, target_generation, state, claim_until, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, 0, FALSE, 0, 'OPERATING', 0, $6, $6)",
        )
        .await?;
    tx.execute(
        &insert,
        &[
            &op.account_id,
            &op.instance_id,
            &op.action,
            &op.request_id,
            &crate::op_kind::encode(&op.kind, op.state_before),
            &op.created_at,
        ],
    )
    .await
    .map_err(|e| conflict_or(e, |_| Conflict::InstanceBusy))?;
    let latest = tx.prepare_cached(sql::MARK_OPERATING).await?;
    let n = tx
        .execute(
            &latest,
            &[
                &op.action,
                &op.request_id,
                &op.new_state.map(|s| s.as_str()),
                &op.instance_id,
            ],
        )
        .await?;
    if n == 0 {
        return Err(Fail::Store(StoreError::NotFound(op.instance_id.clone())));
    }
    Ok(())
}

async fn write_keys(tx: &Transaction<'_>, id: &str, key_ids: &[String]) -> Result<(), Fail> {
    tx.execute(sql::DELETE_INSTANCE_KEYS, &[&id]).await?;
    let insert = tx.prepare_cached(sql::INSERT_INSTANCE_KEY).await?;
    for (i, k) in key_ids.iter().enumerate() {
        tx.execute(&insert, &[&id, k, &(i as i64)]).await?;
    }
    Ok(())
}

/// Lock an instance row for the rest of the transaction; its effective keys and generation.
async fn lock_instance(tx: &Transaction<'_>, id: &str) -> Result<(Vec<String>, i64), Fail> {
    let st = tx
        .prepare_cached(
            "SELECT effective_key_ids, desired_generation FROM instances WHERE id = $1 FOR UPDATE",
        )
        .await?;
    let row = tx
        .query_opt(&st, &[&id])
        .await?
        .ok_or_else(|| Fail::Store(StoreError::NotFound(id.to_string())))?;
    let effective: String = row.try_get(0)?;
    Ok((
        serde_json::from_str(&effective).unwrap_or_default(),
        row.try_get(1)?,
    ))
}

/// Set the effective keys of a locked instance; bump the desired generation when they change.
async fn write_effective(
    tx: &Transaction<'_>,
    id: &str,
    (current, generation): (Vec<String>, i64),
    effective: &[String],
) -> Result<i64, Fail> {
    if current == effective {
        return Ok(generation);
    }
    let encoded = serde_json::to_string(effective).map_err(crate::sqlite::backend)?;
    tx.execute(sql::SET_EFFECTIVE_KEYS, &[&encoded, &id])
        .await?;
    Ok(generation + 1)
}

/// Insert instances with their bound keys, then their operations.
async fn insert_all(
    tx: &Transaction<'_>,
    instances: &[Instance],
    ops: &[NewOperation],
) -> Result<(), Fail> {
    let insert = tx
        .prepare_cached(&format!(
            "INSERT INTO instances ({INSTANCE_COLS}) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,\
             $10,$11,$12,$13,$14,$15,$16,$17,$18,$19,$20,$21,$22,$23,$24)"
        ))
        .await?;
    for i in instances {
        // One address, one instance, whatever the port: the unique constraint covers only the
        // pair, so the address is locked for the rest of the transaction and checked.
        tx.execute(
            "SELECT pg_advisory_xact_lock($1, hashtext($2))",
            &[&ADDRESS_LOCK, &i.private_ip],
        )
        .await?;
        let taken = tx.query_opt(sql::ADDRESS_TAKEN, &[&i.private_ip]).await?;
        if taken.is_some() {
            return Err(Fail::Store(StoreError::Conflict(Conflict::Address)));
        }
        let effective =
            serde_json::to_string(&i.effective_key_ids).map_err(crate::sqlite::backend)?;
        tx.execute(
            &insert,
            &[
                &i.id,
                &i.account_id,
                &i.namespace.as_str(),
                &i.region,
                &i.zone,
                &i.name,
                &i.image_id,
                &i.os.as_str(),
                &i.os_name,
                &i.instance_type,
                &i.state.as_str(),
                &i.host.as_str(),
                &i.private_ip,
                &(i.ssh_port as i64),
                &i.password_hash.as_ref().map(|h| h.expose()),
                &effective,
                &i.desired_generation,
                &i.applied_generation,
                &i.latest_operation,
                &i.latest_operation_state.map(|s| s.as_str()),
                &i.latest_operation_request_id,
                &i.latest_operation_error,
                &i.created_at,
                &i.host_name,
            ],
        )
        .await
        .map_err(|e| {
            conflict_or(e, |c| match c {
                "instances_address" => Conflict::Address,
                _ => Conflict::Id,
            })
        })?;
        write_keys(tx, &i.id, &i.key_ids).await?;
    }
    for op in ops {
        insert_op(tx, op).await?;
    }
    Ok(())
}

#[async_trait]
impl InstanceStore for PostgresStore {
    async fn insert_instances(
        &self,
        instances: &[Instance],
        ops: &[NewOperation],
        audit: Option<&AuditEvent>,
    ) -> StoreResult<()> {
        in_transaction!(self, |tx| {
            insert_all(&tx, instances, ops).await?;
            crate::postgres_audit::write_event(&tx, audit).await?;
        })
    }

    async fn insert_instances_once(
        &self,
        instances: &[Instance],
        ops: &[NewOperation],
        client_token: &str,
        audit: Option<&AuditEvent>,
    ) -> StoreResult<Vec<String>> {
        let first = instances
            .first()
            .ok_or_else(|| StoreError::Backend("no instances".into()))?;
        let ids: Vec<String> = instances.iter().map(|i| i.id.clone()).collect();
        let encoded = serde_json::to_string(&ids).map_err(crate::sqlite::backend)?;
        in_transaction!(self, |tx| {
            // The token row first: a concurrent launch with the same token waits on it here
            // and then finds the winner's instances.
            let claimed = tx
                .execute(
                    "INSERT INTO client_tokens (account_id, namespace, token, instance_ids, created_at) \
                     VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
                    &[&first.account_id, &first.namespace.as_str(), &client_token, &encoded, &first.created_at],
                )
                .await?;
            if claimed == 1 {
                insert_all(&tx, instances, ops).await?;
                crate::postgres_audit::write_event(&tx, audit).await?;
                ids.clone()
            } else {
                let row = tx
                    .query_one(
                        sql::CLIENT_TOKEN,
                        &[&first.account_id, &first.namespace.as_str(), &client_token],
                    )
                    .await?;
                let stored: String = row.try_get(0)?;
                serde_json::from_str(&stored)
                    .map_err(|e| corrupt("client token", &e.to_string()))?
            }
        })
    }

    async fn list_instances(
        &self,
        account_id: &str,
        namespace: Namespace,
    ) -> StoreResult<Vec<Instance>> {
        async {
            let _timer = self
                .latency
                .timer("postgres", keyplane_core::store::CallKind::Read);
            let c = self.client().await?;
            query_instances(
                &c,
                "WHERE account_id = $1 AND namespace = $2",
                &[&account_id, &namespace.as_str()],
            )
            .await
        }
        .await
        .map_err(Fail::into_store)
    }

    async fn get_instance(&self, id: &str) -> StoreResult<Option<Instance>> {
        async {
            let _timer = self
                .latency
                .timer("postgres", keyplane_core::store::CallKind::Read);
            let c = self.client().await?;
            Ok(query_instances(&c, "WHERE id = $1", &[&id]).await?.pop())
        }
        .await
        .map_err(Fail::into_store)
    }

    async fn all_instances(&self) -> StoreResult<Vec<Instance>> {
        async {
            let _timer = self
                .latency
                .timer("postgres", keyplane_core::store::CallKind::Read);
            let c = self.client().await?;
            query_instances(&c, "", &[]).await
        }
        .await
        .map_err(Fail::into_store)
    }

    async fn count_instances_by_state(&self) -> StoreResult<Vec<(Namespace, InstanceState, u64)>> {
        async {
            let _timer = self
                .latency
                .timer("postgres", keyplane_core::store::CallKind::Read);
            let c = self.client().await?;
            let stmt = c.prepare_cached(sql::COUNT_BY_STATE).await?;
            let mut out = Vec::new();
            for r in c.query(&stmt, &[]).await? {
                let (ns, state): (String, String) = (r.try_get(0)?, r.try_get(1)?);
                out.push((
                    crate::stored::namespace(&ns)?,
                    InstanceState::parse(&state).ok_or_else(|| corrupt("state", &state))?,
                    r.try_get::<_, i64>(2)? as u64,
                ));
            }
            Ok(out)
        }
        .await
        .map_err(Fail::into_store)
    }

    async fn submit_operations(
        &self,
        ops: &[NewOperation],
        audit: Option<&AuditEvent>,
    ) -> StoreResult<()> {
        let mut ids: Vec<&str> = ops.iter().map(|op| op.instance_id.as_str()).collect();
        ids.sort_unstable();
        ids.dedup();
        in_transaction!(self, |tx| {
            // Lock the instances in id order (no deadlock between overlapping submissions):
            // a concurrent submission for any of them waits here, then sees our operation.
            let lock = tx
                .prepare_cached(
                    "SELECT id FROM instances WHERE id = ANY($1) ORDER BY id FOR UPDATE",
                )
                .await?;
            tx.query(&lock, &[&ids]).await?;
            for op in ops {
                insert_op(&tx, op).await?;
            }
            crate::postgres_audit::write_event(&tx, audit).await?;
        })
    }

    async fn claim_operation_scoped(
        &self,
        worker: &str,
        now: i64,
        lease_until: i64,
        scope: Claimable<'_>,
    ) -> StoreResult<Option<Operation>> {
        let (any, owner, adopt_before) = scope.parts();
        in_transaction!(self, |tx| {
            // SKIP LOCKED: a row another node is claiming right now is passed over, not waited
            // for; the claim is the row lock plus the new claim_until, committed together.
            let claim = tx
                .prepare_cached(&format!(
                    "UPDATE operations SET claimed_by = $1, claim_until = $2, updated_at = $3 \
                     WHERE id = (SELECT o.id FROM operations o \
                                 LEFT JOIN instances i ON i.id = o.instance_id \
                                 WHERE o.state = 'OPERATING' AND o.claim_until <= $3 \
                                 AND ($4 OR i.id IS NULL OR i.host <> 'sandbox' \
                                      OR ($5::TEXT IS NOT NULL \
                                          AND (i.sandbox_owner IS NULL OR i.sandbox_owner = $5)) \
                                      OR ($5::TEXT IS NULL AND i.sandbox_owner IS NULL \
                                          AND o.created_at <= $6)) \
                                 ORDER BY o.id LIMIT 1 FOR UPDATE OF o SKIP LOCKED) \
                     RETURNING {OPERATION_COLS}"
                ))
                .await?;
            match tx
                .query_opt(
                    &claim,
                    &[&worker, &lease_until, &now, &any, &owner, &adopt_before],
                )
                .await?
            {
                Some(row) => {
                    let op = operation_from_row(&row)?;
                    if let Some(owner) = owner {
                        tx.execute(sql::TAKE_SANDBOX, &[&owner, &op.instance_id])
                            .await?;
                    }
                    Some(op)
                }
                None => None,
            }
        })
    }

    async fn renew_claim(&self, op_id: i64, worker: &str, lease_until: i64) -> StoreResult<bool> {
        in_transaction!(self, |tx| {
            tx.execute(sql::RENEW_CLAIM, &[&lease_until, &op_id, &worker])
                .await?
                == 1
        })
    }

    async fn save_progress(&self, op: &Operation) -> StoreResult<()> {
        in_transaction!(self, |tx| {
            tx.execute(
                sql::SAVE_PROGRESS,
                &[
                    &(op.step as i64),
                    &op.was_running,
                    &op.target_generation,
                    &op.id,
                ],
            )
            .await?;
        })
    }

    async fn finish_operation(
        &self,
        op_id: i64,
        state: OpState,
        error: Option<&str>,
    ) -> StoreResult<()> {
        in_transaction!(self, |tx| {
            // The state before the update, read under the row lock the update takes.
            let row = tx
                .query_opt(
                    "UPDATE operations o SET state = $1, error = $2, claimed_by = NULL \
                     FROM (SELECT id, state FROM operations WHERE id = $3 FOR UPDATE) old \
                     WHERE o.id = old.id RETURNING o.instance_id, o.request_id, old.state",
                    &[&state.as_str(), &error, &op_id],
                )
                .await?
                .ok_or_else(|| Fail::Store(StoreError::NotFound(op_id.to_string())))?;
            let (instance, request_id): (String, String) = (row.try_get(0)?, row.try_get(1)?);
            let was: String = row.try_get(2)?;
            if was == OpState::Operating.as_str() && state != OpState::Operating {
                crate::postgres_audit::operation_ended(
                    &tx,
                    &request_id,
                    state != OpState::Success,
                    error,
                )
                .await?;
            }
            tx.execute(
                sql::FINISH_ON_INSTANCE,
                &[&state.as_str(), &error, &instance, &request_id],
            )
            .await?;
        })
    }

    async fn set_instance_state(&self, id: &str, state: InstanceState) -> StoreResult<()> {
        in_transaction!(self, |tx| {
            tx.execute(sql::SET_STATE, &[&state.as_str(), &id]).await?;
        })
    }

    async fn set_password_hash(&self, id: &str, hash: Option<&str>) -> StoreResult<()> {
        in_transaction!(self, |tx| {
            let n = tx.execute(sql::SET_PASSWORD_HASH, &[&hash, &id]).await?;
            if n == 0 {
                return Err(StoreError::NotFound(id.to_string()).into());
            }
        })
    }

    async fn set_instance_name(
        &self,
        id: &str,
        name: &str,
        audit: Option<&AuditEvent>,
    ) -> StoreResult<()> {
        in_transaction!(self, |tx| {
            let n = tx.execute(sql::SET_NAME, &[&name, &id]).await?;
            if n == 0 {
                return Err(StoreError::NotFound(id.to_string()).into());
            }
            crate::postgres_audit::write_event(&tx, audit).await?;
        })
    }

    async fn set_bindings(
        &self,
        id: &str,
        key_ids: &[String],
        effective: Option<&[String]>,
    ) -> StoreResult<i64> {
        in_transaction!(self, |tx| {
            let current = lock_instance(&tx, id).await?;
            write_keys(&tx, id, key_ids).await?;
            match effective {
                Some(eff) => write_effective(&tx, id, current, eff).await?,
                None => current.1,
            }
        })
    }

    async fn activate_bindings(&self, id: &str) -> StoreResult<i64> {
        in_transaction!(self, |tx| {
            let current = lock_instance(&tx, id).await?;
            let rows = tx.query(sql::KEYS_OF_INSTANCE, &[&id]).await?;
            let keys = rows
                .iter()
                .map(|r| r.try_get::<_, String>(0))
                .collect::<Result<Vec<_>, _>>()?;
            write_effective(&tx, id, current, &keys).await?
        })
    }

    async fn record_served_generation(&self, id: &str, generation: i64) -> StoreResult<()> {
        in_transaction!(self, |tx| {
            tx.execute(sql::RECORD_SERVED, &[&generation, &id]).await?;
        })
    }

    async fn served_generation(&self, id: &str) -> StoreResult<Option<i64>> {
        in_transaction!(self, |tx| {
            tx.query_opt(sql::SERVED_GENERATION, &[&id])
                .await?
                .map(|r| r.try_get::<_, i64>(0))
                .transpose()?
        })
    }

    async fn set_applied_generation(&self, id: &str, generation: i64) -> StoreResult<bool> {
        in_transaction!(self, |tx| {
            let n = tx
                .execute(
                    "UPDATE instances SET applied_generation = GREATEST(applied_generation, $1) \
                     WHERE id = $2 AND $1::BIGINT >= 0 AND $1::BIGINT <= served_generation",
                    &[&generation, &id],
                )
                .await?;
            n == 1
        })
    }

    async fn delete_instance(&self, id: &str) -> StoreResult<()> {
        in_transaction!(self, |tx| {
            tx.execute(sql::DELETE_INSTANCE_KEYS, &[&id]).await?;
            tx.execute(sql::DELETE_INSTANCE, &[&id]).await?;
        })
    }

    async fn instances_by_ids(
        &self,
        account_id: &str,
        namespace: Namespace,
        ids: &[String],
    ) -> StoreResult<Vec<Instance>> {
        async {
            let _timer = self
                .latency
                .timer("postgres", keyplane_core::store::CallKind::Read);
            let c = self.client().await?;
            query_instances(
                &c,
                "WHERE account_id = $1 AND namespace = $2 AND id = ANY($3)",
                &[&account_id, &namespace.as_str(), &ids],
            )
            .await
        }
        .await
        .map_err(Fail::into_store)
    }

    async fn query_instances(
        &self,
        account_id: &str,
        namespace: Namespace,
        query: &InstanceQuery,
    ) -> StoreResult<InstancePage> {
        async {
            let _timer = self
                .latency
                .timer("postgres", keyplane_core::store::CallKind::Read);
            let c = self.client().await?;
            crate::postgres_query::query_instances(&c, account_id, namespace, query).await
        }
        .await
        .map_err(Fail::into_store)
    }

    async fn count_instances(&self, account_id: &str, namespace: Namespace) -> StoreResult<usize> {
        async {
            let _timer = self
                .latency
                .timer("postgres", keyplane_core::store::CallKind::Read);
            let c = self.client().await?;
            crate::postgres_query::count_instances(&c, account_id, namespace).await
        }
        .await
        .map_err(Fail::into_store)
    }

    async fn taken_addresses(&self, addresses: &[String]) -> StoreResult<Vec<String>> {
        async {
            let _timer = self
                .latency
                .timer("postgres", keyplane_core::store::CallKind::Read);
            let c = self.client().await?;
            crate::postgres_query::taken_addresses(&c, addresses).await
        }
        .await
        .map_err(Fail::into_store)
    }
}
