//! An instance driver that keeps its machines in memory, for the real operation worker in the
//! in-process tests: it records every step it carried out, applies the SSH state as the guest
//! agent does (through the router's agent API, with the instance's token), and fails a step on
//! request.

use axum::body::{to_bytes, Body};
use axum::http::Request;
use keyplane_instances::worker::StepError;
use keyplane_instances::{
    Error, GuestAgentRun, ImageCache, ImageInfo, InstanceDriver, InstanceSpec, Result,
};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, OnceLock};
use tower::ServiceExt;

/// A step the driver carried out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    /// An instance was laid out.
    Create {
        /// Instance id.
        id: String,
        /// Its host name.
        hostname: String,
        /// Its root password hash.
        password_hash: Option<String>,
        /// Its user data.
        user_data: Option<Vec<u8>>,
    },
    /// It was started.
    Start(String),
    /// It was stopped, `force`: without a grace period.
    Stop {
        /// Instance id.
        id: String,
        /// Without a grace period.
        force: bool,
    },
    /// It was deleted.
    Destroy(String),
    /// Root's password hash was set for the next boot.
    SetPasswordHash {
        /// Instance id.
        id: String,
        /// The hash.
        hash: Option<String>,
    },
    /// The guest agent applied this SSH state.
    Apply {
        /// Instance id.
        id: String,
        /// The public keys it wrote.
        keys: Vec<String>,
        /// Whether password login stays on.
        password_authentication: bool,
    },
}

impl Call {
    /// The instance the step was about.
    pub fn instance(&self) -> &str {
        match self {
            Call::Create { id, .. }
            | Call::Stop { id, .. }
            | Call::SetPasswordHash { id, .. }
            | Call::Apply { id, .. } => id,
            Call::Start(id) | Call::Destroy(id) => id,
        }
    }
}

/// What a driver call can be told to fail, or to wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Step {
    /// [`Call::Create`].
    Create,
    /// [`Call::Start`].
    Start,
    /// [`Call::Stop`].
    Stop,
    /// [`Call::Destroy`].
    Destroy,
    /// [`Call::SetPasswordHash`].
    SetPassword,
    /// [`Call::Apply`].
    Apply,
    /// Telling whether a machine runs (no call is recorded for it): failed, the driver cannot
    /// tell.
    Running,
}

/// One machine the driver holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Machine {
    /// Whether it runs.
    pub running: bool,
    /// The public keys its SSH state holds.
    pub keys: Vec<String>,
    /// Whether password login is on (`None`: no SSH state applied yet).
    pub password_authentication: Option<bool>,
    /// Root's password hash for the next boot.
    pub password_hash: Option<String>,
}

#[derive(Default)]
struct Inner {
    machines: BTreeMap<String, Machine>,
    calls: Vec<Call>,
    /// Injected failures: of one instance's calls, or (`None`) of every instance's.
    failures: HashMap<(Step, Option<String>), String>,
}

/// The in-memory driver.
#[derive(Default)]
pub struct FakeDriver {
    inner: Mutex<Inner>,
    app: OnceLock<axum::Router>,
    held: tokio::sync::watch::Sender<HashSet<Step>>,
}

impl FakeDriver {
    /// A driver whose guest agent talks to `app` (set once, with [`FakeDriver::serve_agents_on`]).
    pub fn new() -> Arc<FakeDriver> {
        Arc::new(FakeDriver::default())
    }

    /// The router the guest agent runs reach the server through.
    pub fn serve_agents_on(&self, app: axum::Router) {
        let _ = self.app.set(app);
    }

    /// Every step carried out so far, in order.
    pub fn calls(&self) -> Vec<Call> {
        self.lock().calls.clone()
    }

    /// The steps carried out since the last time they were taken.
    pub fn take_calls(&self) -> Vec<Call> {
        std::mem::take(&mut self.lock().calls)
    }

    /// The machine `id`, if the driver holds it.
    pub fn machine(&self, id: &str) -> Option<Machine> {
        self.lock().machines.get(id).cloned()
    }

    /// Every machine stops at once, without any call (the host lost power); nothing else of
    /// them is lost.
    pub fn power_loss(&self) {
        for m in self.lock().machines.values_mut() {
            m.running = false;
        }
    }

    /// Make every later call of `step` fail with `detail` (until [`FakeDriver::heal`]).
    pub fn fail(&self, step: Step, detail: &str) {
        self.lock()
            .failures
            .insert((step, None), detail.to_string());
    }

    /// Make every later call of `step` on instance `id` fail with `detail`.
    pub fn fail_for(&self, step: Step, id: &str, detail: &str) {
        self.lock()
            .failures
            .insert((step, Some(id.to_string())), detail.to_string());
    }

    /// Let `step` succeed again, on every instance.
    pub fn heal(&self, step: Step) {
        self.lock().failures.retain(|(s, _), _| *s != step);
    }

    /// Make every later call of `step` wait (before doing anything) until
    /// [`FakeDriver::release`].
    pub fn hold(&self, step: Step) {
        self.held.send_modify(|h| {
            h.insert(step);
        });
    }

    /// Let the calls of `step` that wait go on.
    pub fn release(&self, step: Step) {
        self.held.send_modify(|h| {
            h.remove(&step);
        });
    }

    /// Wait while `step` is held, then answer its injected failure on `id`, if any.
    async fn enter(&self, step: Step, id: &str) -> Option<String> {
        let mut held = self.held.subscribe();
        held.wait_for(|h| !h.contains(&step)).await.unwrap();
        let inner = self.lock();
        inner
            .failures
            .get(&(step, Some(id.to_string())))
            .or_else(|| inner.failures.get(&(step, None)))
            .cloned()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Change the machine `id` (which must exist) and record `call`.
    fn on_machine(&self, id: &str, call: Call, change: impl FnOnce(&mut Machine)) -> Result<()> {
        let mut inner = self.lock();
        let machine = inner
            .machines
            .get_mut(id)
            .ok_or_else(|| Error::NotFound(id.to_string()))?;
        change(machine);
        inner.calls.push(call);
        Ok(())
    }

    /// `GET` or `POST` on the agent API of `id`, as the guest agent does.
    async fn agent_call(&self, id: &str, token: &str, tail: &str, body: Option<Value>) -> Value {
        let app = self.app.get().expect("the router is set").clone();
        let req = Request::builder()
            .method(if body.is_some() { "POST" } else { "GET" })
            .uri(format!("/keyplane/agent/v1/instances/{id}/{tail}"))
            .header("host", "127.0.0.1:8787")
            .header("authorization", format!("Bearer {token}"))
            .header("content-type", "application/json")
            .body(Body::from(body.map(|b| b.to_string()).unwrap_or_default()))
            .unwrap();
        let resp = app.oneshot(req).await.unwrap();
        let status = resp.status();
        let bytes = to_bytes(resp.into_body(), 1 << 20).await.unwrap();
        assert!(
            status.is_success(),
            "agent {tail}: {status} {}",
            String::from_utf8_lossy(&bytes)
        );
        serde_json::from_slice(&bytes).unwrap()
    }
}

fn injected(step: Step, id: &str, detail: String) -> Error {
    match step {
        Step::Create | Step::Start => Error::StartFailed {
            id: id.to_string(),
            detail,
        },
        _ => Error::Io {
            context: detail,
            source: std::io::Error::other("injected by the test"),
        },
    }
}

#[async_trait::async_trait]
impl InstanceDriver for FakeDriver {
    fn agent_inside(&self) -> bool {
        false
    }

    fn max_processes(&self) -> u64 {
        1024
    }

    fn image(&self, name: &str) -> Result<Option<ImageInfo>> {
        Ok(
            (name == keyplane_instances::DEFAULT_IMAGE).then(|| ImageInfo {
                name: name.to_string(),
                os_name: "Debian GNU/Linux 12 (bookworm)".into(),
                size_bytes: 1 << 30,
                source: "test".into(),
                created_at: 0,
            }),
        )
    }

    async fn ensure_image(&self, name: &str, _cache: &ImageCache) -> Result<ImageInfo> {
        self.image(name)?
            .ok_or_else(|| Error::InvalidImage(format!("no image {name}")))
    }

    fn list(&self) -> Result<Vec<String>> {
        Ok(self.lock().machines.keys().cloned().collect())
    }

    async fn running(&self, id: &str) -> Result<Option<bool>> {
        if let Some(detail) = self.enter(Step::Running, id).await {
            return Err(injected(Step::Running, id, detail));
        }
        Ok(self.machine(id).map(|m| m.running))
    }

    async fn create(&self, spec: InstanceSpec) -> Result<()> {
        if let Some(detail) = self.enter(Step::Create, &spec.id).await {
            return Err(injected(Step::Create, &spec.id, detail));
        }
        let mut inner = self.lock();
        let machine = inner.machines.entry(spec.id.clone()).or_default();
        machine.password_hash = spec.password_hash.clone();
        inner.calls.push(Call::Create {
            id: spec.id,
            hostname: spec.hostname,
            password_hash: spec.password_hash,
            user_data: spec.user_data,
        });
        Ok(())
    }

    async fn start(&self, id: &str) -> Result<()> {
        if let Some(detail) = self.enter(Step::Start, id).await {
            return Err(injected(Step::Start, id, detail));
        }
        self.on_machine(id, Call::Start(id.into()), |m| m.running = true)
    }

    async fn stop(&self, id: &str, force: bool) -> Result<()> {
        if let Some(detail) = self.enter(Step::Stop, id).await {
            return Err(injected(Step::Stop, id, detail));
        }
        let call = Call::Stop {
            id: id.into(),
            force,
        };
        self.on_machine(id, call, |m| m.running = false)
    }

    async fn destroy(&self, id: &str) -> Result<()> {
        if let Some(detail) = self.enter(Step::Destroy, id).await {
            return Err(injected(Step::Destroy, id, detail));
        }
        let mut inner = self.lock();
        inner.machines.remove(id);
        inner.calls.push(Call::Destroy(id.into()));
        Ok(())
    }

    async fn set_password_hash(&self, id: &str, hash: Option<&str>) -> Result<()> {
        if let Some(detail) = self.enter(Step::SetPassword, id).await {
            return Err(injected(Step::SetPassword, id, detail));
        }
        let hash = hash.map(str::to_string);
        let call = Call::SetPasswordHash {
            id: id.into(),
            hash: hash.clone(),
        };
        self.on_machine(id, call, |m| m.password_hash = hash)
    }

    async fn run_guest_agent(&self, id: &str, run: GuestAgentRun<'_>) -> Result<(), StepError> {
        if self.machine(id).is_none() {
            return Err(Error::NotFound(id.to_string()).into());
        }
        if let Some(detail) = self.enter(Step::Apply, id).await {
            return Err(StepError::GuestAgentFailed(detail));
        }
        let desired = self.agent_call(id, run.token, "ssh-state", None).await;
        let keys: Vec<String> = desired["authorized_keys"]
            .as_array()
            .expect("authorized_keys")
            .iter()
            .map(|k| k.as_str().unwrap().to_string())
            .collect();
        let password_authentication = desired["password_authentication"].as_bool().unwrap();
        let call = Call::Apply {
            id: id.into(),
            keys: keys.clone(),
            password_authentication,
        };
        self.on_machine(id, call, |m| {
            m.keys = keys;
            m.password_authentication = Some(password_authentication);
        })?;
        let report = json!({"generation": desired["generation"], "ok": true, "message": ""});
        self.agent_call(id, run.token, "report", Some(report)).await;
        Ok(())
    }
}
