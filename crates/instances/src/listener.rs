//! The per-instance TCP listener: one `sshd -i` inside the instance per accepted connection,
//! started by the instance's session helper ([`crate::sessions`]) or, without it, from outside.
//!
//! Why a listener in the server process: a user namespace cannot bind a port below 1024 in the
//! host's network namespace (it does not own it), and an in-process listener costs nothing per
//! idle instance. Dropping the task closes the listening socket (connections are refused).

use std::net::SocketAddr;
use std::os::fd::{AsFd, OwnedFd};
use std::process::Stdio;
use std::sync::Arc;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::process::Child;
use tokio::task::{JoinHandle, JoinSet};

use crate::sandbox::{self, NsParams};

/// Concurrent sessions per instance; further connections are closed at once (like sshd's
/// `MaxStartups`, but counting whole sessions).
const MAX_SESSIONS: usize = 64;

/// Everything needed to start a session inside one running instance.
#[derive(Debug, Clone)]
pub(crate) struct SessionSpawner {
    pub id: String,
    pub pid1: u32,
    pub start_time: u64,
    pub ns: NsParams,
    /// The session helper inside the instance: the server's end of its channel, its host PID
    /// and start time.
    pub helper: Option<(Arc<OwnedFd>, u32, u64)>,
}

/// A session that was started: its sshd's log, read until the session ends.
enum Session {
    /// Started by the helper inside: the read end of sshd's standard error.
    Inside(std::io::PipeReader),
    /// Started from outside.
    Outside(Child),
}

impl SessionSpawner {
    /// Starts `sshd -i` in the instance with the connection as its stdin and stdout: through
    /// the helper inside when it is there, else from outside.
    fn spawn(&self, stream: TcpStream) -> std::io::Result<Session> {
        if !sandbox::init_alive(self.pid1, self.start_time) {
            return Err(std::io::Error::other("instance init is gone"));
        }
        // Why: sshd turns Nagle's algorithm off only once a session is interactive. Before
        // that, each of its replies that follows a write of its own still unacknowledged (the
        // EXT_INFO then the SERVICE_ACCEPT, the hostkeys notice then the channel confirmation)
        // waits for the client's delayed ACK, about 40 ms each, on every login.
        stream.set_nodelay(true)?;
        let stream = stream.into_std()?;
        stream.set_nonblocking(false)?;
        let socket = OwnedFd::from(stream);
        if let Some((channel, pid, start_time)) = &self.helper {
            if sandbox::init_alive(*pid, *start_time) {
                let (log, log_w) = std::io::pipe()?;
                match crate::sessions::send(channel.as_fd(), socket.as_fd(), log_w.as_fd()) {
                    // Our copies close here: sshd holds the connection and its log's end.
                    Ok(()) => return Ok(Session::Inside(log)),
                    Err(e) => tracing::debug!(instance = %self.id,
                        "the session helper did not take the connection: {e}"),
                }
            }
        }
        let socket_out = socket.try_clone()?;
        let mut cmd = sandbox::session_command(&self.id, self.pid1, &self.ns);
        cmd.stdin(Stdio::from(socket))
            .stdout(Stdio::from(socket_out))
            .stderr(Stdio::piped());
        // `cmd` (and with it our copies of the socket) is dropped on return, so the client sees
        // the connection close as soon as sshd exits.
        cmd.spawn().map(Session::Outside)
    }
}

/// Accepts connections until the returned task is aborted. Aborting it drops the session tasks
/// but not their processes: those end when the instance's init is killed.
pub(crate) fn spawn_listener(listener: TcpListener, spawner: SessionSpawner) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut sessions = JoinSet::new();
        loop {
            tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((stream, peer)) => {
                        if sessions.len() >= MAX_SESSIONS {
                            tracing::warn!(instance = %spawner.id, %peer, "too many sessions");
                            continue;
                        }
                        match spawner.spawn(stream) {
                            Ok(session) => {
                                sessions.spawn(run_session(session, spawner.id.clone(), peer));
                            }
                            Err(e) => {
                                tracing::warn!(instance = %spawner.id, %peer, "session start failed: {e}");
                            }
                        }
                    }
                    Err(e) => {
                        // Typically EMFILE: back off instead of spinning.
                        tracing::warn!(instance = %spawner.id, "accept failed: {e}");
                        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    }
                },
                Some(_) = sessions.join_next(), if !sessions.is_empty() => {}
            }
        }
    })
}

/// Forwards sshd's log lines to tracing until the session ends (and reaps it when it was
/// started from outside).
async fn run_session(session: Session, id: String, peer: SocketAddr) {
    tracing::debug!(instance = %id, %peer, "ssh session started");
    match session {
        Session::Inside(log) => {
            match tokio::net::unix::pipe::Receiver::from_owned_fd(OwnedFd::from(log)) {
                Ok(log) => forward_log(log, &id, peer).await,
                Err(e) => tracing::debug!(instance = %id, %peer, "sshd's log: {e}"),
            }
            tracing::debug!(instance = %id, %peer, "ssh session ended");
        }
        Session::Outside(mut child) => {
            if let Some(stderr) = child.stderr.take() {
                forward_log(stderr, &id, peer).await;
            }
            let status = child.wait().await;
            tracing::debug!(instance = %id, %peer, ?status, "ssh session ended");
        }
    }
}

async fn forward_log(log: impl tokio::io::AsyncRead + Unpin, id: &str, peer: SocketAddr) {
    let mut lines = BufReader::new(log).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        tracing::debug!(instance = %id, %peer, "sshd: {line}");
    }
}
