"""Sandbox instances are whole machines, driven through the official Tencent SDK and `ssh`.

Root inside installs into its own disk, adds users and writes /etc; what it writes survives a
reboot, never reaches the host, and goes with terminate. Instances of one account reach each
other at the addresses DescribeInstances reports; another account's do not, nor does anything
inside reach the host's loopback. And a launch on a server whose sandbox prerequisites are
missing ends LAUNCH_FAILED with the reason instead of waiting forever.
"""
import hashlib
import os
import subprocess
import time
from pathlib import Path

import pytest

from sandbox import (PASSWORD, SSH, call, describe, require_sandbox, run_instances, start_sandbox_server,
                     wait_settled)
from support import KeyplaneServer, cvm


@pytest.fixture(scope="module")
def sbx():
    srv = start_sandbox_server()
    yield srv
    assert srv.stop() == 0, srv.output()


def root_ssh(inst, script, timeout=120) -> subprocess.CompletedProcess:
    ip, port = inst.PrivateIpAddresses[0], inst.DefaultLoginPort
    return subprocess.run(["sshpass", "-p", PASSWORD, *SSH, "-p", str(port),
                           "-o", "PubkeyAuthentication=no", f"root@{ip}", script],
                          capture_output=True, text=True, timeout=timeout)


def ok(inst, script, timeout=120) -> str:
    r = root_ssh(inst, script, timeout)
    assert r.returncode == 0, (script, r.stdout, r.stderr)
    return r.stdout


def tree_digest(*roots) -> str:
    """A digest of names, sizes and modification times under `roots` (not following links)."""
    h = hashlib.sha256()
    for root in roots:
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames.sort()
            for name in sorted(filenames):
                p = os.path.join(dirpath, name)
                try:
                    st = os.lstat(p)
                except OSError:
                    continue
                h.update(f"{p}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def test_root_owns_its_disk_and_it_persists(sbx):
    client = cvm(sbx, sbx.create_account())
    (iid,) = run_instances(client)
    inst = describe(client, iid)
    ok(inst, "useradd -m -s /bin/bash deploy && echo 'deploy ALL=(ALL) NOPASSWD:ALL' > /etc/sudoers.d/deploy"
             " && echo provisioned > /etc/keyplane-e2e && dpkg -l sudo >/dev/null"
             " && printf '#!/bin/sh\\necho booted >> /var/log/rc-local-ran\\n' > /etc/rc.local && chmod +x /etc/rc.local")
    assert not Path("/etc/keyplane-e2e").exists(), "the instance's /etc is its own"
    text = ok(inst, "cat /etc/hostname /etc/machine-id; hostname")
    name, machine_id, hostname = text.split()
    assert name == hostname == inst.InstanceName or name == iid
    assert len(machine_id) == 32 and machine_id != Path("/etc/machine-id").read_text().strip()

    call(client, "RebootInstances", InstanceIds=[iid])
    inst = wait_settled(client, [iid])[iid]
    assert inst.LatestOperationState == "SUCCESS", inst.LatestOperationErrorMsg
    after = ok(inst, "cat /etc/keyplane-e2e; id -u deploy; sudo -u deploy sudo -n true && echo sudo-ok;"
                     " cat /var/log/rc-local-ran; cat /etc/machine-id")
    assert after.split() == ["provisioned", "1000", "sudo-ok", "booted", machine_id], after

    call(client, "TerminateInstances", InstanceIds=[iid])
    deadline = time.monotonic() + 60
    while call(client, "DescribeInstances", InstanceIds=[iid]).TotalCount:
        assert time.monotonic() < deadline, "terminate did not finish"
        time.sleep(0.1)
    guests = list(Path(sbx.data_dir, "sandbox", "guests").glob(iid))
    assert guests == [], "terminate deletes the disk"


def test_user_data_runs_once_at_first_boot(sbx):
    import base64
    client = cvm(sbx, sbx.create_account())
    script = "#!/bin/sh\necho ran-as-$(id -un) >> /root/user-data-ran\n"
    r = call(client, "RunInstances", ImageId="img-kpdeb12x", Placement={"Zone": "ap-guangzhou-3"},
             LoginSettings={"Password": PASSWORD}, UserData=base64.b64encode(script.encode()).decode())
    (iid,) = r.InstanceIdSet
    inst = wait_settled(client, [iid])[iid]
    assert inst.LatestOperationState == "SUCCESS", inst.LatestOperationErrorMsg

    def ran():
        deadline = time.monotonic() + 30
        while True:
            out = root_ssh(inst, "cat /root/user-data-ran 2>/dev/null").stdout
            if out or time.monotonic() > deadline:
                return out
            time.sleep(0.2)

    assert ran() == "ran-as-root\n"
    fetch = ("python3 -c \"import sys, urllib.request as u; "
             "sys.stdout.write(u.urlopen('http://%s/latest/%s', timeout=3).read().decode())\"")
    assert ok(inst, fetch % ("metadata.tencentyun.com", "meta-data/instance-id")) == iid
    assert ok(inst, fetch % ("100.100.100.200", "meta-data/private-ipv4")) == inst.PrivateIpAddresses[0]
    assert ok(inst, fetch % ("169.254.0.23", "user-data")) == script, "the metadata service serves user data"
    call(client, "RebootInstances", InstanceIds=[iid])
    inst = wait_settled(client, [iid])[iid]
    assert ok(inst, "cat /root/user-data-ran") == "ran-as-root\n", "user data runs at the first boot only"
    assert "ran-as-root" in ok(inst, "cat /var/log/cloud-init-output.log; cat /root/user-data-ran")


def test_vpc_per_account_and_no_way_to_the_host(sbx):
    alice, bob = cvm(sbx, sbx.create_account()), cvm(sbx, sbx.create_account())
    a1, a2 = run_instances(alice, count=2)
    (b1,) = run_instances(bob)
    i1, i2, j1 = describe(alice, a1), describe(alice, a2), describe(bob, b1)
    ok(i1, "nohup python3 -m http.server 8080 >/dev/null 2>&1 & "
           "for i in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/8080) 2>/dev/null && break; sleep 0.1; done")
    target = i1.PrivateIpAddresses[0]
    fetch = f"python3 -c \"import urllib.request as u; print(u.urlopen('http://{target}:8080/', timeout=3).status)\""
    assert ok(i2, fetch).strip() == "200", "instances of one account reach each other"
    assert root_ssh(j1, fetch).returncode != 0, "another account's instances do not"
    own = ("python3 -c \"import sys, urllib.request as u; "
           "sys.stdout.write(u.urlopen('http://169.254.0.23/latest/meta-data/instance-id', timeout=3).read().decode())\"")
    assert ok(i2, own) == a2 and ok(j1, own) == b1, "each instance's metadata is about itself"

    api_port = sbx.endpoint.rsplit(":", 1)[1]
    probe = (f"(exec 3<>/dev/tcp/127.0.0.1/{api_port}) 2>/dev/null && echo API; "
             f"(exec 3<>/dev/tcp/10.0.2.2/{api_port}) 2>/dev/null && echo GATEWAY; exit 0")
    assert ok(i1, probe).strip() == "", "the host's loopback services are unreachable"
    r = subprocess.run(["curl", "-s", "-m", "2", f"http://{target}:8080/"], capture_output=True)
    assert r.returncode != 0, "a listener inside is not on the host"

    places = ["/", "/etc", "/tmp", "/var/tmp", "/dev/shm", "/run", "/root", "/home", "/srv", "/opt"]
    before = tree_digest("/etc")
    ok(i1, f"for d in {' '.join(places)}; do echo x > $d/keyplane-containment || exit 1; done; "
           "for m in $(awk '{print $2}' /proc/mounts | sort -r); do umount -l $m 2>/dev/null; done; "
           "for d in " + " ".join(places) + "; do echo y > $d/keyplane-containment 2>/dev/null; done; exit 0")
    assert before == tree_digest("/etc"), "nothing written inside reaches the host's /etc"
    leaked = [p for p in places if os.path.exists(os.path.join(p, "keyplane-containment"))]
    assert leaked == [], "nothing written inside reaches the host"


def test_launch_without_prerequisites_ends_launch_failed(tmp_path):
    require_sandbox()
    srv = KeyplaneServer(tmp_path / "data", ["--rate-limit", "0", "--sandbox-dir", "/proc/keyplane-no-such-dir"])
    srv.start()
    try:
        assert "sandbox instances are unavailable" in srv.output(), srv.output()
        client = cvm(srv, srv.create_account())
        r = call(client, "RunInstances", ImageId="img-kpdeb12x", Placement={"Zone": "ap-guangzhou-3"},
                 LoginSettings={"Password": PASSWORD})
        (iid,) = r.InstanceIdSet
        inst = wait_settled(client, [iid], timeout=30)[iid]
        assert inst.LatestOperationState == "FAILED"
        assert inst.InstanceState == "LAUNCH_FAILED"
        assert "unavailable" in (inst.LatestOperationErrorMsg or ""), inst.LatestOperationErrorMsg
    finally:
        srv.stop()


def test_instance_type_sets_the_limits_and_a_type_too_large_is_refused(sbx):
    from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
    client = cvm(sbx, sbx.create_account())
    with pytest.raises(TencentCloudSDKException) as refused:
        call(client, "RunInstances", ImageId="img-kpdeb12x", Placement={"Zone": "ap-guangzhou-3"},
             InstanceType="S5.16XLARGE256", LoginSettings={"Password": PASSWORD})
    assert refused.value.code == "ResourceInsufficient.SpecifiedInstanceType", refused.value
    assert call(client, "DescribeInstances").TotalCount == 0, "a refused launch creates nothing"

    r = call(client, "RunInstances", ImageId="img-kpdeb12x", Placement={"Zone": "ap-guangzhou-3"},
             InstanceType="S5.SMALL1", InstanceCount=2, LoginSettings={"Password": PASSWORD})
    small, other = r.InstanceIdSet
    settled = wait_settled(client, r.InstanceIdSet)
    assert all(i.LatestOperationState == "SUCCESS" for i in settled.values()), settled
    inst = describe(client, small)
    assert (inst.CPU, inst.Memory) == (1, 1), "DescribeInstances reports the type's figures"
    limits = [p for p in Path("/sys/fs/cgroup/memory").rglob(small) if p.is_dir()]
    assert len(limits) == 1, limits
    assert int((limits[0] / "memory.limit_in_bytes").read_text()) == 1 << 30
    if (limits[0] / "memory.memsw.limit_in_bytes").exists():
        assert int((limits[0] / "memory.memsw.limit_in_bytes").read_text()) == 1 << 30, "no swapping past it"

    # Running out of memory kills inside the instance's own limit; the rest goes on.
    hog = root_ssh(inst, "python3 -c 'b = bytearray(3 << 30); print(len(b))'")
    assert hog.returncode != 0 and "3221225472" not in hog.stdout, (hog.returncode, hog.stdout)
    assert ok(inst, "echo alive").strip() == "alive", "the instance itself goes on"
    assert ok(describe(client, other), "echo alive").strip() == "alive", "so does its neighbour"
    assert call(client, "DescribeInstances", InstanceIds=[small]).TotalCount == 1, "and the server"


def test_host_sessions_start_inside_and_without_the_helper_from_outside(sbx):
    client = cvm(sbx, sbx.create_account())
    (iid,) = run_instances(client)
    inst = describe(client, iid)
    # sshd's parent inside: the session helper, whose parent is the instance's init.
    helper = ok(inst, "p=$(ps -o ppid= -p $PPID); ps -o pid=,ppid=,args= -p $p").split(None, 2)
    assert helper[1] == "1" and helper[2].startswith("keyplane-sessions"), helper
    # Root inside may end the helper: the next sessions are started from outside, as sshd
    # entered into the instance (no parent inside).
    ok(inst, f"kill {helper[0]}")
    for _ in range(3):
        assert ok(inst, "ps -o ppid= -p $PPID").strip() == "0"
    assert ok(inst, "id -u").strip() == "0"


def test_the_key_exchange_offered_leaves_out_sntrup761(sbx):
    client = cvm(sbx, sbx.create_account())
    (iid,) = run_instances(client)
    inst = describe(client, iid)
    ip, port = inst.PrivateIpAddresses[0], inst.DefaultLoginPort

    def offering(kex):  # no credentials: the attempt ends at the key exchange or at login
        return subprocess.run(["ssh", "-F", "/dev/null", "-o", "StrictHostKeyChecking=no",
                               "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes", "-p", str(port),
                               "-o", f"KexAlgorithms={kex}", f"root@{ip}", "true"],
                              capture_output=True, text=True, timeout=60)
    only = offering("sntrup761x25519-sha512@openssh.com")
    assert only.returncode != 0 and "no matching key exchange" in only.stderr, only.stderr
    curve = offering("curve25519-sha256")
    assert curve.returncode != 0 and "Permission denied" in curve.stderr, curve.stderr
    assert ok(inst, "id -u").strip() == "0", "the default client list still logs in"


def test_the_guest_agent_runs_inside_through_the_metadata_service(sbx):
    client = cvm(sbx, sbx.create_account())
    mine, neighbour = run_instances(client, count=2)
    inst = describe(client, mine)
    daemons = [line for line in ok(inst, "ps -eo args").splitlines()
               if line.startswith("/run/keyplane/agent agent --metadata")]
    assert len(daemons) == 1 and "--once" not in daemons[0], daemons
    assert "applied" in ok(inst, "cat /var/log/keyplane-agent.log")
    assert "did not apply the SSH state" not in sbx.output(), "the host did not have to apply it"

    get = ("python3 -c \"import sys, urllib.request as u, urllib.error as e\n"
           "try: r = u.urlopen('http://169.254.0.23/keyplane/agent/v1/instances/%s/ssh-state', timeout=3); "
           "print(r.status, r.read().decode())\n"
           "except e.HTTPError as x: print(x.code)\"")
    status, _, body = ok(inst, get % mine).strip().partition(" ")
    assert status == "200" and '"generation"' in body, body
    assert ok(inst, get % neighbour).strip() == "404", "an instance's agent channel is about itself only"
