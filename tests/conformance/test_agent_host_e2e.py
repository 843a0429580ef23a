"""A real host managed by `keyplane agent`: a network namespace with its own sshd and the
agent inside it, registered with a single-use token, bound through the CVM API, and logged
into with the key over the namespace's address."""
import os
import shutil
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from sandbox import REPO, SSH, call, save_private_key, wait_settled
from support import KeyplaneServer, cvm, keyplane_bin

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("ip") or not os.path.exists("/usr/sbin/sshd"),
    reason="needs root, iproute2 and openssh-server",
)


def sh(*argv, check=True):
    return subprocess.run(argv, capture_output=True, text=True, check=check)


@pytest.fixture
def netns():
    """A namespace `kph-<id>` with a veth pair: 127.213.N.1 on the host, 127.213.N.2 inside.

    Why loopback-range addresses over a link: no private-range address ever goes on a host
    interface. `route_localnet` lets 127/8 travel over the veth, and a route in each side's
    local table, more specific than its `local 127.0.0.0/8`, sends the peer's address over it
    (it goes with the link when the link is deleted)."""
    tag = uuid.uuid4().hex[:6]
    n = int(tag, 16) % 250 + 1
    ns, host_if, ns_if = f"kph-{tag}", f"kpa{tag}", f"kpb{tag}"
    host_ip, ns_ip = f"127.213.{n}.1", f"127.213.{n}.2"
    sh("ip", "netns", "add", ns)
    try:
        sh("ip", "link", "add", host_if, "type", "veth", "peer", "name", ns_if)
        sh("ip", "link", "set", ns_if, "netns", ns)
        Path(f"/proc/sys/net/ipv4/conf/{host_if}/route_localnet").write_text("1")
        sh("ip", "addr", "add", f"{host_ip}/32", "dev", host_if)
        sh("ip", "link", "set", host_if, "up")
        sh("ip", "route", "add", f"{ns_ip}/32", "dev", host_if, "table", "local", "src", host_ip)
        sh("ip", "netns", "exec", ns, "sh", "-c",
           f"echo 1 > /proc/sys/net/ipv4/conf/{ns_if}/route_localnet && "
           f"ip addr add {ns_ip}/32 dev {ns_if} && ip link set {ns_if} up && ip link set lo up && "
           f"ip route add {host_ip}/32 dev {ns_if} table local src {ns_ip}")
        yield ns, host_ip, ns_ip
    finally:
        sh("ip", "link", "del", host_if, check=False)
        sh("ip", "netns", "del", ns, check=False)


def methods_offered(ip) -> str:
    """What sshd offers root: the client's 'Permission denied (...)' list."""
    r = subprocess.run([*SSH, "-o", "BatchMode=yes", "-o", "PubkeyAuthentication=no",
                        f"root@{ip}", "true"], capture_output=True, text=True, timeout=30)
    return r.stderr


def key_login(ip, key_file):
    return subprocess.run([*SSH, "-i", str(key_file), "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
                           "-o", "PreferredAuthentications=publickey", f"root@{ip}", "id -u"],
                          capture_output=True, text=True, timeout=30)


def start_host(ns, ns_ip, workdir: Path, server_url, token):
    """sshd and the agent in the namespace, with a private /root (a bind mount) so the
    machine's own root account is not touched. `workdir` must not be under /root (the bind
    would hide it), so the agent runs from a copy of the binary there."""
    home = workdir / "roothome"
    agent_bin = workdir / "keyplane"
    shutil.copy(keyplane_bin(), agent_bin)
    home.mkdir(mode=0o700)
    sshd_dir = workdir / "ssh"
    (sshd_dir / "sshd_config.d").mkdir(parents=True)
    sh("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(sshd_dir / "host_key"))
    (sshd_dir / "sshd_config").write_text(
        f"Include {sshd_dir}/sshd_config.d/*.conf\n"
        f"ListenAddress {ns_ip}\nPort 22\nHostKey {sshd_dir}/host_key\nPidFile {sshd_dir}/sshd.pid\n"
        "UsePAM no\nPermitRootLogin yes\nStrictModes no\nKbdInteractiveAuthentication no\n")
    script = (
        f"mount --bind {home} /root && mkdir -p /run/sshd && "
        f"/usr/sbin/sshd -f {sshd_dir}/sshd_config && "
        f"exec {agent_bin} agent --server {server_url} --token {token} "
        f"--state-file {workdir}/agent/state.json --login-user root --sshd-dir {sshd_dir} "
        f"--sshd-pid-file {sshd_dir}/sshd.pid --address {ns_ip} --hostname nshost --poll-secs 5"
    )
    log = open(workdir / "agent.log", "w")
    proc = subprocess.Popen(["ip", "netns", "exec", ns, "unshare", "--mount", "--propagation", "private",
                             "sh", "-c", script], stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    return proc, sshd_dir, home


def test_a_registered_host_is_bound_and_logged_into(netns, tmp_path):
    ns, host_ip, ns_ip = netns
    data = REPO / "target" / "e2e" / uuid.uuid4().hex[:12]
    srv = KeyplaneServer(data, ["--rate-limit", "0"], host=host_ip).start()
    # Why not under the checkout: a clone in /root would be hidden by the host's private /root.
    workdir = tmp_path / "host"
    workdir.mkdir()
    agent = None
    try:
        creds = srv.create_account("ops")
        token = sh(keyplane_bin(), "agent-token", "create", "--account", "ops", "--dialect", "cvm",
                   "--region", "ap-guangzhou", "--data-dir", str(data)).stdout.strip()
        assert token.startswith("kpreg1.")
        agent, sshd_dir, home = start_host(ns, ns_ip, workdir, srv.url, token)
        client = cvm(srv, creds)
        deadline = time.monotonic() + 30
        while not (found := call(client, "DescribeInstances").InstanceSet):
            assert agent.poll() is None, (workdir / "agent.log").read_text()
            assert time.monotonic() < deadline, "the host did not register"
            time.sleep(0.2)
        inst = found[0]
        assert inst.InstanceName == "nshost" and inst.InstanceState == "RUNNING"
        assert inst.PrivateIpAddresses == [ns_ip]
        assert "password" in methods_offered(ns_ip)

        kp = call(client, "CreateKeyPair", KeyName="host_key", ProjectId=0).KeyPair
        key_file = save_private_key(kp.PrivateKey, tmp_path)
        assert key_login(ns_ip, key_file).returncode != 0
        call(client, "AssociateInstancesKeyPairs", InstanceIds=[inst.InstanceId], KeyIds=[kp.KeyId])
        done = wait_settled(client, [inst.InstanceId])[inst.InstanceId]
        assert done.LatestOperationState == "SUCCESS", done.LatestOperationErrorMsg
        r = key_login(ns_ip, key_file)
        assert r.returncode == 0 and r.stdout.strip() == "0", r.stderr
        assert "password" not in methods_offered(ns_ip), "password login is off while a key is bound"
        keys = (home / ".ssh" / "keyplane_authorized_keys")
        assert oct(keys.stat().st_mode & 0o777) == "0o600"
        assert (home / ".ssh" / "authorized_keys").exists() is False, "the agent writes only its own file"

        # The server goes away: the host keeps the last applied state, and the agent reconnects.
        srv.fixed_port = srv.port
        assert srv.stop() == 0
        log = workdir / "agent.log"
        deadline = time.monotonic() + 60
        while "agent step failed" not in log.read_text():
            assert agent.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "the agent never noticed the server was gone"
            time.sleep(0.1)
        assert agent.poll() is None, "the agent survives an unreachable server"
        assert key_login(ns_ip, key_file).returncode == 0, "the last applied state stays"
        srv.start()
        client = cvm(srv, creds)

        call(client, "DisassociateInstancesKeyPairs", InstanceIds=[inst.InstanceId], KeyIds=[kp.KeyId])
        done = wait_settled(client, [inst.InstanceId])[inst.InstanceId]
        assert done.LatestOperationState == "SUCCESS", done.LatestOperationErrorMsg
        assert key_login(ns_ip, key_file).returncode != 0
        assert "password" in methods_offered(ns_ip), "password login is back"

        # The token was single-use: a second host cannot register with it.
        r = subprocess.run([keyplane_bin(), "agent", "--server", srv.url, "--token", token, "--once",
                            "--state-file", str(workdir / "other" / "state.json"), "--address", "127.213.0.9"],
                           capture_output=True, text=True, timeout=30)
        assert r.returncode != 0 and "already used" in r.stderr, r.stderr
    finally:
        if agent is not None:
            os.killpg(agent.pid, 15)
            agent.wait(timeout=10)
        pid_file = workdir / "ssh" / "sshd.pid"
        if pid_file.exists():
            subprocess.run(["kill", pid_file.read_text().strip()], check=False)
        srv.stop()
