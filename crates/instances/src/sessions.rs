//! SSH sessions from the host, started inside the instance.
//!
//! Stage 1 of the init leaves one small process in the instance, `keyplane-sessions` (this
//! executable, `keyplane sandbox-sessions`), in every namespace and cgroup of the instance. Its
//! standard input is one end of a socket pair whose other end the server keeps. For each
//! connection the server accepts, it passes the TCP socket and the write end of a pipe (for
//! sshd's log) over that pair, and the helper starts `sshd -i` on them: a fork inside the
//! instance, already where sshd must run.
//!
//! Should the helper be gone (root inside may kill any of its processes), the server starts
//! the session from outside instead ([`crate::sandbox::session_command`]).
// Why a helper inside: a process that joins the instance's cgroups from outside waits in the
// kernel for an RCU grace period (a cgroup v1 migration), 5 to 50 ms here on every login, and
// the shell, prlimit, nsenter and second shell in front of sshd cost some 10 ms more.

use std::io::IoSlice;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::process::Stdio;

use rustix::net::{
    RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SendAncillaryBuffer,
    SendAncillaryMessage, SendFlags,
};

/// The subcommand of the keyplane executable that runs [`run`].
pub const SUBCOMMAND: &str = "sandbox-sessions";

/// The name the helper shows in `ps` inside the instance.
pub(crate) const PROCESS_NAME: &str = "keyplane-sessions";

/// The helper's loop: receives a connection and a log pipe at a time on standard input and
/// starts `sshd -i` on them; exits when the server closes its end.
pub fn run() -> ! {
    let stdin = std::io::stdin();
    let channel = stdin.as_fd();
    loop {
        match receive(channel) {
            Ok(Some((socket, log))) => start_sshd(socket, log),
            // A message without exactly a socket and a pipe: nothing to start.
            Ok(None) => {}
            Err(rustix::io::Errno::INTR) => {}
            Err(_) => std::process::exit(0),
        }
    }
}

/// One message from the server: `Some` with its two descriptors, `None` for any other shape.
/// A closed channel is an error (`PIPE`), so the loop ends.
fn receive(channel: BorrowedFd<'_>) -> rustix::io::Result<Option<(OwnedFd, OwnedFd)>> {
    let mut byte = [0u8; 1];
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(2))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let msg = rustix::net::recvmsg(
        channel,
        &mut [std::io::IoSliceMut::new(&mut byte)],
        &mut control,
        RecvFlags::CMSG_CLOEXEC,
    )?;
    if msg.bytes == 0 {
        return Err(rustix::io::Errno::PIPE);
    }
    let mut fds: Vec<OwnedFd> = Vec::new();
    for m in control.drain() {
        if let RecvAncillaryMessage::ScmRights(received) = m {
            fds.extend(received);
        }
    }
    let mut fds = fds.into_iter();
    Ok(match (fds.next(), fds.next(), fds.next()) {
        (Some(socket), Some(log), None) => Some((socket, log)),
        _ => None,
    })
}

/// Starts `sshd -i` with the connection as its standard input and output and the pipe as its
/// standard error, and reaps it on a thread of its own.
fn start_sshd(socket: OwnedFd, log: OwnedFd) {
    let Ok(socket_out) = socket.try_clone() else {
        return;
    };
    let child = std::process::Command::new(crate::sandbox::GUEST_SSHD)
        .args(["-i", "-e", "-f", "/etc/ssh/sshd_config"])
        .env_clear()
        .env("PATH", crate::sandbox::SAFE_PATH)
        .current_dir("/")
        .stdin(Stdio::from(socket))
        .stdout(Stdio::from(socket_out))
        .stderr(Stdio::from(log))
        .spawn();
    // Our copies of the descriptors are closed here: the client sees the connection close as
    // soon as sshd exits, and the server's end of the log pipe reads its end.
    if let Ok(mut child) = child {
        let _ = std::thread::Builder::new()
            .stack_size(64 * 1024)
            .spawn(move || child.wait());
    }
}

/// Passes a connection and the write end of its log pipe to the helper, without waiting: a
/// helper that does not take them (gone, or not reading) is an error.
pub(crate) fn send(
    channel: BorrowedFd<'_>,
    socket: BorrowedFd<'_>,
    log: BorrowedFd<'_>,
) -> std::io::Result<()> {
    let fds = [socket, log];
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(2))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    if !control.push(SendAncillaryMessage::ScmRights(&fds)) {
        return Err(std::io::Error::other("no room for the descriptors"));
    }
    rustix::net::sendmsg(
        channel,
        &[IoSlice::new(&[0])],
        &mut control,
        SendFlags::DONTWAIT | SendFlags::NOSIGNAL,
    )?;
    Ok(())
}

/// A socket pair for the helper: the server's end and the end stage 1 gets as standard input.
pub(crate) fn channel() -> std::io::Result<(OwnedFd, OwnedFd)> {
    use rustix::net::{AddressFamily, SocketFlags, SocketType};
    Ok(rustix::net::socketpair(
        AddressFamily::UNIX,
        SocketType::SEQPACKET,
        SocketFlags::CLOEXEC,
        None,
    )?)
}
