"""A provisioning run as on the clouds: ansible-core (from PyPI) logs in with a key bound through
each dialect's official SDK (CVM, Lighthouse, ECS) and sets the instance up.

The playbook adds a user with sudo, installs a package with apt from the Debian archive, writes
a file under /etc and starts an HTTP server on port 8080. A second instance of the same account
fetches from that server; an instance of another account cannot. After a reboot the file, the
package and the user are still there; after terminate the disk is gone.
"""
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

import ecs as ecs_sdk
import sandbox
import test_lighthouse_e2e as lh
from sandbox import PASSWORD, call, describe, key_login, logged_in, start_sandbox_server, wait_settled
from support import cvm

ANSIBLE = str(Path(sys.executable).with_name("ansible-playbook"))

PLAYBOOK = """
- hosts: all
  gather_facts: false
  tasks:
    - name: a user with sudo
      ansible.builtin.user: {name: deploy, shell: /bin/bash, groups: sudo, append: true}
    - name: a package from the Debian archive
      ansible.builtin.apt: {name: tree, state: present, update_cache: true}
    - name: a file under /etc
      ansible.builtin.copy: {dest: /etc/keyplane-provisioned, content: "provisioned by ansible\\n"}
    - name: an HTTP server on port 8080
      ansible.builtin.shell:
        executable: /bin/bash
        cmd: >
          cd /etc && (setsid nohup python3 -m http.server 8080 >/var/log/web.log 2>&1 &);
          for i in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/8080) 2>/dev/null && exit 0; sleep 0.1; done; exit 1
"""

CHECK = ("id -u deploy; id -nG deploy | tr ' ' '\\n' | grep -x sudo; dpkg-query -W -f='${Status}\\n' tree; "
         "cat /etc/keyplane-provisioned")


@pytest.fixture(scope="module")
def sbx():
    srv = start_sandbox_server()
    yield srv
    assert srv.stop() == 0, srv.output()


def provision(target, key_file, tmp_path):
    ip, port = target.PrivateIpAddresses[0], target.DefaultLoginPort
    inventory = tmp_path / "inventory.ini"
    inventory.write_text(f"vm ansible_host={ip} ansible_port={port} ansible_user=root "
                         f"ansible_ssh_private_key_file={key_file} ansible_python_interpreter=/usr/bin/python3\n")
    playbook = tmp_path / "site.yml"
    playbook.write_text(PLAYBOOK)
    env = dict(os.environ, ANSIBLE_HOST_KEY_CHECKING="False", ANSIBLE_NOCOLOR="1",
               ANSIBLE_SSH_ARGS="-F /dev/null -o UserKnownHostsFile=/dev/null -o IdentitiesOnly=yes",
               ANSIBLE_LOCAL_TEMP=str(tmp_path / "ansible-local"), ANSIBLE_HOME=str(tmp_path / "ansible"))
    r = subprocess.run([ANSIBLE, "-i", str(inventory), str(playbook)], capture_output=True, text=True,
                       env=env, timeout=600)
    if r.returncode != 0:
        import re
        reasons = re.findall(r'"(?:msg|stderr)": "((?:[^"\\]|\\.){0,600})', r.stdout)
        raise AssertionError(f"ansible-playbook failed ({r.returncode}): {reasons}\n{r.stdout[-1500:]}")


def ssh_key(target, key_file, script) -> subprocess.CompletedProcess:
    ip, port = target.PrivateIpAddresses[0], target.DefaultLoginPort
    return subprocess.run([*sandbox.SSH, "-p", str(port), "-i", str(key_file), "-o", "IdentitiesOnly=yes",
                           "-o", "BatchMode=yes", f"root@{ip}", script], capture_output=True, text=True,
                          timeout=60)


def fetch_from(target, key_file, ip) -> bool:
    probe = f"python3 -c \"import urllib.request as u; u.urlopen('http://{ip}:8080/keyplane-provisioned', timeout=3)\""
    return ssh_key(target, key_file, probe).returncode == 0


def assert_provisioned(target, key_file):
    r = ssh_key(target, key_file, CHECK)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.split("\n")
    assert lines[0].isdigit() and lines[1] == "sudo", r.stdout
    assert lines[2] == "install ok installed" and lines[3] == "provisioned by ansible", r.stdout


def test_cvm(sbx, keygen, tmp_path):
    alice, bob = cvm(sbx, sbx.create_account()), cvm(sbx, sbx.create_account())
    key_file, public = keygen.new()
    key_id = call(alice, "ImportKeyPair", KeyName="ansible", ProjectId=0, PublicKey=public).KeyId
    web, peer = sandbox.run_instances(alice, count=2)
    (stranger,) = sandbox.run_instances(bob)
    call(alice, "AssociateInstancesKeyPairs", InstanceIds=[web, peer], KeyIds=[key_id], ForceStop=True)
    insts = wait_settled(alice, [web, peer])
    assert all(i.LatestOperationState == "SUCCESS" for i in insts.values())
    target = insts[web]
    provision(target, key_file, tmp_path)
    assert_provisioned(target, key_file)
    ip = target.PrivateIpAddresses[0]
    assert fetch_from(insts[peer], key_file, ip), "an instance of the same account fetches from it"
    bob_key, bob_public = keygen.new()
    bob_kid = call(bob, "ImportKeyPair", KeyName="bob", ProjectId=0, PublicKey=bob_public).KeyId
    call(bob, "AssociateInstancesKeyPairs", InstanceIds=[stranger], KeyIds=[bob_kid], ForceStop=True)
    other = wait_settled(bob, [stranger])[stranger]
    assert not fetch_from(other, bob_key, ip), "another account's instance cannot"

    call(alice, "RebootInstances", InstanceIds=[web])
    target = wait_settled(alice, [web])[web]
    assert_provisioned(target, key_file)

    call(alice, "TerminateInstances", InstanceIds=[web])
    deadline = time.monotonic() + 60
    while call(alice, "DescribeInstances", InstanceIds=[web]).TotalCount:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert not (Path(sbx.data_dir) / "sandbox" / "guests" / web).exists(), "the disk is gone"


def test_lighthouse(sbx, keygen, tmp_path):
    client = lh.lighthouse(sbx, sbx.create_account())
    key_file, public = keygen.new()
    key_id = lh.call(client, "ImportKeyPair", KeyName="ansible", PublicKey=public).KeyId
    iid = lh.create_instance(client)
    lh.call(client, "AssociateInstancesKeyPairs", InstanceIds=[iid], KeyIds=[key_id])
    assert lh.wait_settled(client, iid).LatestOperationState == "SUCCESS"
    lh.call(client, "StartInstances", InstanceIds=[iid])
    inst = lh.wait_settled(client, iid)
    target = lh.at(sbx, inst)
    provision(target, key_file, tmp_path)
    assert_provisioned(target, key_file)
    lh.call(client, "RebootInstances", InstanceIds=[iid])
    lh.wait_settled(client, iid)
    assert_provisioned(target, key_file)


def test_ecs(sbx, keygen, tmp_path):
    creds = sbx.create_account()
    core = ecs_sdk.Core(sbx, creds)
    key_file, public = keygen.new()
    core.call("ImportKeyPair", KeyPairName="ansible", PublicKeyBody=public)
    r = core.call("RunInstances", ImageId=ecs_sdk.LINUX, InstanceType=ecs_sdk.INSTANCE_TYPE,
                  KeyPairName="ansible", Amount=1)
    (iid,) = r["InstanceIdSets"]["InstanceIdSet"]
    inst = ecs_sdk.wait_status(core, iid, "Running")
    target = ecs_sdk.ssh_target(sbx, inst)
    assert logged_in(key_login(target, key_file)), "a key given at launch logs in from the first boot"
    provision(target, key_file, tmp_path)
    assert_provisioned(target, key_file)
    core.call("RebootInstance", InstanceId=iid)
    ecs_sdk.wait_status(core, iid, "Running")
    assert_provisioned(target, key_file)
