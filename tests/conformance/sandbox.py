"""Helpers for tests that need real sandbox instances: a server whose data directory is
reachable by the instances' unprivileged uids, the CVM instance calls, and real `ssh` logins."""
import os
import random
import socket
import subprocess
import time
import uuid
from pathlib import Path

import pytest

import support
from support import KeyplaneServer, cvm
from tencentcloud.cvm.v20170312 import models

REPO = Path(__file__).resolve().parents[2]
PASSWORD = "Kp-Passw0rd!"
#: Image tarballs shared by every test server (built once per machine by `scripts/test`).
IMAGE_CACHE = os.environ.get("KEYPLANE_TEST_IMAGE_CACHE", "/var/cache/keyplane")
SSH = ["ssh", "-F", "/dev/null", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
       "-o", "ConnectTimeout=10", "-o", "LogLevel=ERROR"]


def require_sandbox():
    if os.geteuid() != 0:
        pytest.skip("sandbox instances need the server to run as root")
    for tool in ("/usr/bin/ssh", "/usr/bin/sshpass", "/usr/bin/newuidmap", "/usr/bin/slirp4netns"):
        if not os.path.exists(tool):
            pytest.skip(f"{tool} is missing (.ci/run installs openssh-client, sshpass, uidmap, slirp4netns)")


def sandbox_args(*extra) -> list:
    """Flags of a test server with sandbox instances: its own SSH port, the shared image cache."""
    return ["--rate-limit", "0", "--ssh-port", free_ssh_port(), "--image-cache", IMAGE_CACHE, *extra]


def free_ssh_port() -> int:
    """A port free on 127.1.0.1..: each test server gets its own, so servers never collide."""
    for _ in range(100):
        port = random.randint(20000, 40000)
        with socket.socket() as s:
            try:
                s.bind(("127.1.0.1", port))
                return port
            except OSError:
                continue
    raise RuntimeError("no free port")


def sandbox_data_dir() -> Path:
    """A data directory under the checkout's target/ (kept out of pytest's temporary dirs so a
    failed run leaves the instances' disks to look at)."""
    base = REPO / "target" / "e2e"
    base.mkdir(parents=True, exist_ok=True)
    os.chmod(base, 0o755)
    return base / uuid.uuid4().hex[:12]


def start_sandbox_server(*extra) -> KeyplaneServer:
    require_sandbox()
    srv = KeyplaneServer(sandbox_data_dir(), sandbox_args(*extra))
    srv.start()
    assert "sandbox instances in" in srv.output(), srv.output()
    return srv


def call(client, action, **params):
    req = getattr(models, action + "Request")()
    req._deserialize(params)
    return getattr(client, action)(req)


def describe(client, iid):
    return call(client, "DescribeInstances", InstanceIds=[iid]).InstanceSet[0]


def wait_settled(client, ids, timeout=60.0):
    """Poll DescribeInstances until no instance in `ids` has an OPERATING latest operation."""
    deadline = time.monotonic() + timeout
    while True:
        found = call(client, "DescribeInstances", InstanceIds=list(ids), Limit=100).InstanceSet
        busy = [i.InstanceId for i in found if i.LatestOperationState == "OPERATING"]
        if not busy and len(found) == len(ids):
            return {i.InstanceId: i for i in found}
        if time.monotonic() > deadline:
            raise AssertionError(f"still OPERATING after {timeout}s: {busy}")
        time.sleep(0.05)


def run_instances(client, count=1, password=PASSWORD, image="img-kpdeb12x", key_ids=None, name="web"):
    login = {"Password": password} if password else {}
    if key_ids:
        login["KeyIds"] = key_ids
    r = call(client, "RunInstances", ImageId=image, Placement={"Zone": "ap-guangzhou-3"},
             InstanceCount=count, InstanceName=name, LoginSettings=login)
    settled = wait_settled(client, r.InstanceIdSet)
    for iid, inst in settled.items():
        assert inst.LatestOperationState == "SUCCESS", (iid, inst.LatestOperationErrorMsg)
    return r.InstanceIdSet


def address(inst):
    return inst.PrivateIpAddresses[0], inst.DefaultLoginPort


def password_login(inst, password=PASSWORD) -> subprocess.CompletedProcess:
    ip, port = address(inst)
    return subprocess.run(["sshpass", "-p", password, *SSH, "-p", str(port),
                           "-o", "PreferredAuthentications=password,keyboard-interactive",
                           "-o", "PubkeyAuthentication=no", f"root@{ip}", "id -u"],
                          capture_output=True, text=True, timeout=30)


def key_login(inst, key_file) -> subprocess.CompletedProcess:
    ip, port = address(inst)
    return subprocess.run([*SSH, "-p", str(port), "-i", str(key_file), "-o", "IdentitiesOnly=yes",
                           "-o", "PreferredAuthentications=publickey", "-o", "BatchMode=yes",
                           f"root@{ip}", "id -u"], capture_output=True, text=True, timeout=30)


def logged_in(result: subprocess.CompletedProcess) -> bool:
    return result.returncode == 0 and result.stdout.strip() == "0"


def save_private_key(pem: str, directory: Path) -> Path:
    path = directory / f"key-{uuid.uuid4().hex[:8]}"
    path.write_text(pem)
    path.chmod(0o600)
    return path


