//! The agent's conversation with the server: fetch (long poll), apply, report.

use crate::{apply_target, DesiredState, Plan, Report, Target};
use serde::{Deserialize, Serialize};
use std::time::Duration;
use thiserror::Error;

/// Settings of an agent.
#[derive(Clone)]
pub struct AgentConfig {
    /// Base URL of any Keyplane API node (`http://127.0.0.1:8787`).
    pub server: String,
    /// The instance this agent speaks for.
    pub instance_id: String,
    /// Its agent token; `None` inside a sandbox instance, whose metadata service (the
    /// `server` then) knows which instance asks.
    pub token: Option<String>,
    /// Where the state is applied.
    pub target: Target,
    /// How long one long poll may wait for a change, seconds.
    pub poll_secs: u64,
}

impl std::fmt::Debug for AgentConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentConfig")
            .field("server", &self.server)
            .field("instance_id", &self.instance_id)
            .field("token", &"[REDACTED]")
            .field("target", &self.target)
            .finish()
    }
}

/// Why an agent step failed.
#[derive(Debug, Error)]
pub enum AgentError {
    /// The server could not be reached or answered garbage.
    #[error("server unreachable or invalid answer: {0}")]
    Transport(String),
    /// The server refused the request.
    #[error("server refused: HTTP {status}: {body}")]
    Refused {
        /// HTTP status.
        status: u16,
        /// Body text.
        body: String,
    },
    /// Applying the state failed.
    #[error("applying the SSH state failed: {0}")]
    Apply(String),
}

/// A guest agent.
pub struct Agent {
    cfg: AgentConfig,
    http: reqwest::Client,
}

impl Agent {
    /// An agent with `cfg`.
    pub fn new(cfg: AgentConfig) -> Agent {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(cfg.poll_secs + 15))
            .no_proxy()
            .build()
            .expect("an HTTP client without TLS always builds");
        Agent { cfg, http }
    }

    fn url(&self, tail: &str) -> String {
        format!(
            "{}/keyplane/agent/v1/instances/{}/{tail}",
            self.cfg.server.trim_end_matches('/'),
            self.cfg.instance_id
        )
    }

    fn authorized(&self, req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.cfg.token {
            Some(token) => req.bearer_auth(token),
            None => req,
        }
    }

    async fn check(resp: reqwest::Response) -> Result<reqwest::Response, AgentError> {
        let status = resp.status();
        if status.is_success() {
            return Ok(resp);
        }
        let body = resp.text().await.unwrap_or_default();
        Err(AgentError::Refused {
            status: status.as_u16(),
            body,
        })
    }

    /// The desired state; with `after`, waits up to `wait` for a generation above it.
    pub async fn fetch(&self, after: Option<i64>, wait: u64) -> Result<DesiredState, AgentError> {
        let mut req = self.authorized(self.http.get(self.url("ssh-state")));
        if let Some(after) = after {
            req = req.query(&[("after", after.to_string()), ("wait", wait.to_string())]);
        }
        let resp = req
            .send()
            .await
            .map_err(|e| AgentError::Transport(e.to_string()))?;
        Self::check(resp)
            .await?
            .json()
            .await
            .map_err(|e| AgentError::Transport(e.to_string()))
    }

    /// Tell the server what happened to `generation`.
    pub async fn report(&self, report: &Report) -> Result<(), AgentError> {
        let resp = self
            .authorized(self.http.post(self.url("report")))
            .json(report)
            .send()
            .await
            .map_err(|e| AgentError::Transport(e.to_string()))?;
        Self::check(resp).await.map(|_| ())
    }

    async fn apply_and_report(&self, desired: &DesiredState) -> Result<Plan, AgentError> {
        let target = self.cfg.target.clone();
        let d = desired.clone();
        let outcome = tokio::task::spawn_blocking(move || apply_target(&target, &d))
            .await
            .map_err(|e| AgentError::Apply(e.to_string()))?;
        let report = Report {
            generation: desired.generation,
            ok: outcome.is_ok(),
            message: outcome.as_ref().err().cloned().unwrap_or_default(),
        };
        self.report(&report).await?;
        let plan = outcome.map_err(AgentError::Apply)?;
        tracing::info!(
            instance = %self.cfg.instance_id,
            generation = desired.generation,
            added = plan.add.len(),
            removed = plan.remove.len(),
            password_authentication = desired.password_authentication,
            "applied"
        );
        Ok(plan)
    }

    /// Fetch the current state, apply it, report; once.
    pub async fn run_once(&self) -> Result<Plan, AgentError> {
        let desired = self.fetch(None, 0).await?;
        self.apply_and_report(&desired).await
    }

    /// Keep the instance in the desired state until `shutdown` resolves: long polls pick up a
    /// change as soon as the server has it; while the server is unreachable the last applied
    /// state stays and the agent retries with capped exponential backoff.
    pub async fn run(&self, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        let mut applied: Option<i64> = None;
        let mut backoff = Duration::from_millis(500);
        loop {
            let step = async {
                let desired = self.fetch(applied, self.cfg.poll_secs).await?;
                if applied.is_none_or(|a| desired.generation > a) {
                    self.apply_and_report(&desired).await?;
                }
                Ok::<i64, AgentError>(desired.generation)
            };
            tokio::select! {
                _ = &mut shutdown => return,
                outcome = step => match outcome {
                    Ok(generation) => {
                        applied = Some(generation);
                        backoff = Duration::from_millis(500);
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, retry_in_ms = backoff.as_millis() as u64, "agent step failed");
                        tokio::select! {
                            _ = &mut shutdown => return,
                            _ = tokio::time::sleep(backoff) => {}
                        }
                        backoff = (backoff * 2).min(Duration::from_secs(30));
                    }
                }
            }
        }
    }
}

/// What registration returns: the host's instance and its own agent token.
#[derive(Clone, Serialize, Deserialize)]
pub struct Registered {
    /// The new instance's id.
    pub instance_id: String,
    /// The token for every later call (valid for this instance only).
    pub agent_token: String,
    /// The dialect namespace (`cvm`, `lighthouse`, `ecs`).
    pub namespace: String,
    /// The region.
    pub region: String,
}

impl std::fmt::Debug for Registered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registered")
            .field("instance_id", &self.instance_id)
            .field("agent_token", &"[REDACTED]")
            .finish()
    }
}

/// Register this host with a registration token (`POST /keyplane/agent/v1/register`).
pub async fn register(
    server: &str,
    token: &str,
    hostname: &str,
    address: &str,
    ssh_port: u16,
    os_name: &str,
) -> Result<Registered, AgentError> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .no_proxy()
        .build()
        .map_err(|e| AgentError::Transport(e.to_string()))?;
    let body = serde_json::json!({
        "token": token, "hostname": hostname, "address": address,
        "ssh_port": ssh_port, "os_name": os_name,
    });
    let resp = http
        .post(format!(
            "{}/keyplane/agent/v1/register",
            server.trim_end_matches('/')
        ))
        .json(&body)
        .send()
        .await
        .map_err(|e| AgentError::Transport(e.to_string()))?;
    Agent::check(resp)
        .await?
        .json()
        .await
        .map_err(|e| AgentError::Transport(e.to_string()))
}
