//! The per-instance TCP listener: one `sshd -i` inside the instance per accepted connection.
//!
//! Why a listener in the server process: a user namespace cannot bind a port below 1024 in the
//! host's network namespace (it does not own it), and an in-process listener costs nothing per
//! idle instance. Dropping the task closes the listening socket (connections are refused).

use std::net::SocketAddr;
use std::os::fd::OwnedFd;
use std::process::Stdio;

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
}

impl SessionSpawner {
    /// Starts `sshd -i` in the instance with the connection as its stdin and stdout.
    fn spawn(&self, stream: TcpStream) -> std::io::Result<Child> {
        if !sandbox::init_alive(self.pid1, self.start_time) {
            return Err(std::io::Error::other("instance init is gone"));
        }
        let stream = stream.into_std()?;
        stream.set_nonblocking(false)?;
        let socket = OwnedFd::from(stream);
        let socket_out = socket.try_clone()?;
        let mut cmd = sandbox::session_command(&self.id, self.pid1, &self.ns);
        cmd.stdin(Stdio::from(socket))
            .stdout(Stdio::from(socket_out))
            .stderr(Stdio::piped());
        // `cmd` (and with it our copies of the socket) is dropped on return, so the client sees
        // the connection close as soon as sshd exits.
        cmd.spawn()
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
                            Ok(child) => {
                                sessions.spawn(run_session(child, spawner.id.clone(), peer));
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

/// Forwards sshd's log lines to tracing and reaps the session.
async fn run_session(mut child: Child, id: String, peer: SocketAddr) {
    tracing::debug!(instance = %id, %peer, "ssh session started");
    if let Some(stderr) = child.stderr.take() {
        let mut lines = BufReader::new(stderr).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            tracing::debug!(instance = %id, %peer, "sshd: {line}");
        }
    }
    let status = child.wait().await;
    tracing::debug!(instance = %id, %peer, ?status, "ssh session ended");
}
