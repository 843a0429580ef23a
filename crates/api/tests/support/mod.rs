//! Shared by the in-process API tests: a settable clock, a server on an in-memory store with
//! one account of known credentials and the real operation worker over an in-memory instance
//! driver, and a TC3 signer that signs as the official SDK does.
#![allow(dead_code)]

pub mod driver;

use axum::body::Body;
use axum::http::Request;
use keyplane_api::signature::sha256_hex;
use keyplane_api::signature::tencent::{tc3_canonical_request, tc3_signature, tc3_string_to_sign};
use keyplane_api::{router, ApiConfig, AppState};
use keyplane_core::account::{Account, Secret};
use keyplane_core::instance::OpState;
use keyplane_core::service::Clock;
use keyplane_core::store::InstanceStore;
use keyplane_core::Core;
use keyplane_instances::worker::{Worker, WorkerConfig};
use keyplane_store::SqliteStore;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

#[allow(unused_imports)]
pub use driver::{Call, FakeDriver, Step};

/// What the test servers' sandbox host can give one instance: 16 CPUs, 64 GiB.
pub const TEST_HOST: keyplane_core::compute::HostCapacity = keyplane_core::compute::HostCapacity {
    cpus: 16,
    memory_mib: 64 * 1024,
};

/// The server's clock, which a test may set.
pub struct TestClock(AtomicI64);

impl TestClock {
    /// A clock reading `ts`.
    pub fn at(ts: i64) -> Arc<TestClock> {
        Arc::new(TestClock(AtomicI64::new(ts)))
    }
    /// Set it to `ts`.
    pub fn set(&self, ts: i64) {
        self.0.store(ts, Ordering::SeqCst);
    }
    /// Move it by `secs`.
    pub fn advance(&self, secs: i64) {
        self.0.fetch_add(secs, Ordering::SeqCst);
    }
}

impl Clock for TestClock {
    fn now(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// A router over an in-memory store, and what the test may reach behind it.
pub struct TestServer {
    /// The API.
    pub app: axum::Router,
    /// Its store.
    pub store: Arc<SqliteStore>,
    /// Its clock.
    pub clock: Arc<TestClock>,
    /// Its domain service.
    pub core: Core,
    /// The account inserted with the test's credentials.
    pub account: Account,
    /// The router's state.
    pub state: Arc<AppState>,
    /// The driver of the server's sandbox instances.
    pub driver: Arc<FakeDriver>,
    /// The server's operation worker, which runs while a [`WorkerRun`] lasts.
    pub worker: Arc<Worker>,
}

/// The worker running in the background; it stops when this is dropped.
pub struct WorkerRun {
    stop: tokio::sync::watch::Sender<bool>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl WorkerRun {
    /// Stop the worker and wait until its loop has ended.
    pub async fn stop(mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            task.await.unwrap();
        }
    }
}

impl Drop for WorkerRun {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

/// How long the recorded operations may take to settle before a test fails.
const SETTLE_DEADLINE: Duration = Duration::from_secs(20);

impl TestServer {
    /// Run the worker in the background, as the server does, until the answer is dropped.
    pub fn spawn_worker(&self) -> WorkerRun {
        let (stop, stop_rx) = tokio::sync::watch::channel(false);
        let task = tokio::spawn(self.worker.clone().run(stop_rx));
        WorkerRun {
            stop,
            task: Some(task),
        }
    }

    /// Run the worker until every recorded operation has finished, then stop it, so that
    /// what the API records next stays OPERATING until the next settle.
    pub async fn settle(&self) {
        let run = self.spawn_worker();
        self.wait_settled().await;
        run.stop().await;
    }

    /// Wait (polling, up to a deadline) until instance `id` is in `state`.
    pub async fn wait_for_state(&self, id: &str, state: keyplane_core::instance::InstanceState) {
        let deadline = tokio::time::Instant::now() + SETTLE_DEADLINE;
        loop {
            let now = self.store.get_instance(id).await.unwrap().map(|i| i.state);
            if now == Some(state) {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{id} is {now:?}, not {state:?}"
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    /// Wait (polling, up to a deadline) until no instance has an operation in progress.
    pub async fn wait_settled(&self) {
        let deadline = tokio::time::Instant::now() + SETTLE_DEADLINE;
        loop {
            let busy: Vec<String> = self
                .store
                .all_instances()
                .await
                .unwrap()
                .into_iter()
                .filter(|i| i.latest_operation_state == Some(OpState::Operating))
                .map(|i| i.id)
                .collect();
            if busy.is_empty() {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "operations of {busy:?} did not finish"
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
}

/// The worker of a test server: its instance driver is `driver`, and it is woken as the
/// server's is, by the API recording an operation.
fn worker(core: &Core, state: &AppState, driver: &Arc<FakeDriver>) -> Arc<Worker> {
    let cfg = WorkerConfig {
        concurrency: 4,
        lease_secs: 10,
        agent_exe: "keyplane".into(),
        server_url: "http://127.0.0.1:8787".into(),
        apply_timeout: Duration::from_secs(10),
        sandbox_owner: Some("test-node".into()),
        image_cache: "images".into(),
    };
    let host: Arc<dyn keyplane_instances::InstanceDriver> = driver.clone();
    Worker::new(core.clone(), Ok(host), cfg, state.ssh_changes.clone())
}

/// An account named `name` with fixed Tencent credentials (and generated Alibaba ones).
pub fn account(name: &str, secret_id: &str, secret_key: &str) -> Account {
    let mut a = Account::generate(name, false, 0);
    a.secret_id = secret_id.into();
    a.secret_key = Secret::new(secret_key);
    a
}

/// A server whose clock reads `now`, holding `account`, rate limit `rate_limit` (0: off).
pub async fn server(account: Account, now: i64, rate_limit: u32) -> TestServer {
    let config = ApiConfig {
        rate_limit_per_second: rate_limit,
        ..ApiConfig::default()
    };
    server_with(account, now, config).await
}

/// A server whose clock reads `now`, holding `account`, with `config`.
pub async fn server_with(account: Account, now: i64, config: ApiConfig) -> TestServer {
    let store = Arc::new(SqliteStore::in_memory().unwrap());
    let clock = TestClock::at(now);
    // A fixed host, so that the tests do not depend on the machine that runs them.
    let core = Core::new(store.clone(), clock.clone()).with_host_capacity(TEST_HOST);
    core.add_account(&account).await.unwrap();
    let state = AppState::new(core.clone(), config);
    let app = router(state.clone());
    let driver = FakeDriver::new();
    driver.serve_agents_on(app.clone());
    let worker = worker(&core, &state, &driver);
    TestServer {
        app,
        store,
        clock,
        core,
        account,
        state,
        driver,
        worker,
    }
}

/// What a TC3 request is signed with.
pub struct Tc3<'a> {
    /// SecretId.
    pub secret_id: &'a str,
    /// SecretKey.
    pub secret_key: &'a str,
    /// `cvm` or `lighthouse`.
    pub service: &'a str,
    /// `X-TC-Version`.
    pub version: &'a str,
    /// `X-TC-Region`, when sent.
    pub region: Option<&'a str>,
    /// `X-TC-Timestamp`.
    pub ts: i64,
}

/// A TC3-signed POST with a JSON body, as the official SDK sends it.
pub fn tc3_post(t: &Tc3<'_>, action: &str, body: &str) -> Request<Body> {
    tc3_post_bytes(t, action, body.as_bytes())
}

/// A TC3-signed POST whose body is any bytes (not necessarily UTF-8 or JSON).
pub fn tc3_post_bytes(t: &Tc3<'_>, action: &str, body: &[u8]) -> Request<Body> {
    let host = "127.0.0.1:8787";
    let date = time::OffsetDateTime::from_unix_timestamp(t.ts)
        .unwrap()
        .date()
        .to_string();
    let signed = vec!["content-type".to_string(), "host".to_string()];
    let headers = |n: &str| match n {
        "content-type" => Some("application/json".to_string()),
        "host" => Some(host.to_string()),
        _ => None,
    };
    let canonical = tc3_canonical_request("POST", "", &headers, &signed, &sha256_hex(body));
    let sts = tc3_string_to_sign(&t.ts.to_string(), &date, t.service, &canonical);
    let sig = tc3_signature(t.secret_key, &date, t.service, &sts);
    let mut b = Request::builder()
        .method("POST")
        .uri("/")
        .header("host", host)
        .header("content-type", "application/json")
        .header("x-tc-action", action)
        .header("x-tc-version", t.version)
        .header("x-tc-timestamp", t.ts.to_string())
        .header(
            "authorization",
            format!(
                "TC3-HMAC-SHA256 Credential={}/{date}/{}/tc3_request, SignedHeaders=content-type;host, Signature={sig}",
                t.secret_id, t.service
            ),
        );
    if let Some(r) = t.region {
        b = b.header("x-tc-region", r);
    }
    b.body(Body::from(body.to_vec())).unwrap()
}
