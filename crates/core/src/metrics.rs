//! What the server counts and times, in Prometheus' text format (`GET /metrics`): requests by
//! dialect, action and code, their latency, operations by kind and final state, their
//! duration, instances booted again at server start, instances by state, connected agents,
//! and store calls' latency.
//!
//! No label ever holds an id or a secret: labels are dialect and action names, error codes,
//! operation kinds and states, each from a fixed set.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicI64;

/// Labels of a request count: the dialect, the action (`other` for one the dialect does not
/// serve) and the answer's code (`ok` for success).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    dialect: String,
    action: String,
    code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ActionLabels {
    dialect: String,
    action: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OperationLabels {
    kind: String,
    state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct InstanceLabels {
    namespace: String,
    state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StoreLabels {
    backend: String,
    kind: String,
}

type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

/// The server's metrics.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    request_seconds: Histograms<ActionLabels>,
    operations: Family<OperationLabels, Counter>,
    operation_seconds: Histograms<KindLabels>,
    restores: Family<OutcomeLabels, Counter>,
    instances: Family<InstanceLabels, Gauge<i64, AtomicI64>>,
    agents_connected: Gauge<i64, AtomicI64>,
    store_seconds: Histograms<StoreLabels>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

/// From 100 µs to about 6.5 s: API calls.
fn fast_buckets() -> Histogram {
    Histogram::new(exponential_buckets(0.0001, 2.0, 17))
}

/// From 10 µs to about 0.65 s: store calls.
fn store_buckets() -> Histogram {
    Histogram::new(exponential_buckets(0.00001, 2.0, 17))
}

/// From 10 ms to about 5.5 min: operations (a launch boots a machine).
fn slow_buckets() -> Histogram {
    Histogram::new(exponential_buckets(0.01, 2.0, 16))
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// Every series registered, all at zero.
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("keyplane");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "requests",
            "API requests by dialect, action and answer code (ok for success)",
            requests.clone(),
        );
        let request_seconds: Histograms<ActionLabels> = Family::new_with_constructor(fast_buckets);
        registry.register(
            "request_duration_seconds",
            "Time to answer an API request, by dialect and action",
            request_seconds.clone(),
        );
        let operations = Family::<OperationLabels, Counter>::default();
        registry.register(
            "operations",
            "Operations settled, by kind and final state",
            operations.clone(),
        );
        let operation_seconds: Histograms<KindLabels> = Family::new_with_constructor(slow_buckets);
        registry.register(
            "operation_duration_seconds",
            "Time a worker took to carry out an operation, by kind",
            operation_seconds.clone(),
        );
        let restores = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "restores",
            "Instances that were running when the server stopped, booted again at its start, \
             by outcome (started, failed)",
            restores.clone(),
        );
        let instances = Family::<InstanceLabels, Gauge<i64, AtomicI64>>::default();
        registry.register(
            "instances",
            "Instances by namespace and state (read from the store at each scrape)",
            instances.clone(),
        );
        let agents_connected = Gauge::<i64, AtomicI64>::default();
        registry.register(
            "agents_connected",
            "Agents waiting in a long poll on this node",
            agents_connected.clone(),
        );
        let store_seconds: Histograms<StoreLabels> = Family::new_with_constructor(store_buckets);
        registry.register(
            "store_duration_seconds",
            "Time a store call took, waiting for a connection included, by back end and kind \
             (read, or write: a transaction)",
            store_seconds.clone(),
        );
        Metrics {
            registry,
            store_seconds,
            requests,
            request_seconds,
            operations,
            operation_seconds,
            restores,
            instances,
            agents_connected,
        }
    }

    /// An API request answered: `action` must be one the dialect serves (or `other`), `code`
    /// its answer's code or `ok`.
    pub fn request(&self, dialect: &str, action: &str, code: &str, seconds: f64) {
        self.requests
            .get_or_create(&RequestLabels {
                dialect: dialect.into(),
                action: action.into(),
                code: code.into(),
            })
            .inc();
        self.request_seconds
            .get_or_create(&ActionLabels {
                dialect: dialect.into(),
                action: action.into(),
            })
            .observe(seconds);
    }

    /// An operation of `kind` reached its final `state` after `seconds`.
    pub fn operation(&self, kind: &str, state: &str, seconds: f64) {
        self.operations
            .get_or_create(&OperationLabels {
                kind: kind.into(),
                state: state.into(),
            })
            .inc();
        self.operation_seconds
            .get_or_create(&KindLabels { kind: kind.into() })
            .observe(seconds);
    }

    /// An instance that was running when the server stopped was booted again at its start
    /// (`started`), or its boot failed (`failed`).
    pub fn restore(&self, outcome: &str) {
        self.restores
            .get_or_create(&OutcomeLabels {
                outcome: outcome.into(),
            })
            .inc();
    }

    /// An agent's long poll begins; the guard ends it when dropped.
    pub fn agent_connected(&self) -> AgentConnection<'_> {
        self.agents_connected.inc();
        AgentConnection(self)
    }

    /// The instance counts by namespace and state, as the store has them now (series not
    /// given drop to zero).
    pub fn set_instances<'a>(&self, counts: impl IntoIterator<Item = (&'a str, &'a str, u64)>) {
        self.instances.clear();
        for (namespace, state, n) in counts {
            self.instances
                .get_or_create(&InstanceLabels {
                    namespace: namespace.into(),
                    state: state.into(),
                })
                .set(i64::try_from(n).unwrap_or(i64::MAX));
        }
    }

    /// Everything in Prometheus' text exposition format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}

impl crate::store::LatencySink for Metrics {
    fn observe(&self, backend: &'static str, kind: crate::store::CallKind, seconds: f64) {
        self.store_seconds
            .get_or_create(&StoreLabels {
                backend: backend.into(),
                kind: kind.as_str().into(),
            })
            .observe(seconds);
    }
}

/// An agent's long poll in progress (see [`Metrics::agent_connected`]).
pub struct AgentConnection<'a>(&'a Metrics);

impl Drop for AgentConnection<'_> {
    fn drop(&mut self) {
        self.0.agents_connected.dec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_are_named_and_counted() {
        let m = Metrics::new();
        m.request("tencent-v3", "DescribeKeyPairs", "ok", 0.002);
        m.operation("bind", "SUCCESS", 0.3);
        m.set_instances([("cvm", "RUNNING", 2)]);
        use crate::store::LatencySink;
        m.observe("sqlite", crate::store::CallKind::Write, 0.001);
        {
            let _a = m.agent_connected();
            assert!(m.encode().contains("keyplane_agents_connected 1"));
        }
        let text = m.encode();
        assert!(text.contains(
            r#"keyplane_requests_total{dialect="tencent-v3",action="DescribeKeyPairs",code="ok"} 1"#
        ));
        assert!(text.contains(r#"keyplane_operations_total{kind="bind",state="SUCCESS"} 1"#));
        assert!(text.contains(r#"keyplane_instances{namespace="cvm",state="RUNNING"} 2"#));
        assert!(text.contains("keyplane_agents_connected 0"));
        assert!(text
            .contains(r#"keyplane_store_duration_seconds_count{backend="sqlite",kind="write"} 1"#));
        assert!(text.contains("# EOF"));
    }
}
