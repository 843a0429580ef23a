"""End to end: real sandbox instances, the official Tencent SDK, and the real `ssh` client.

Run an instance with a password and log in with it; create a key pair, bind it with
ForceStop, wait for SUCCESS, log in with the private key while password login is refused;
unbind, and password login works again while the key is refused. The same through the legacy
v2 calls. And a server killed during a batch bind finishes every operation after a restart.
"""
import subprocess
import time
import urllib.request

import pytest

from sandbox import (PASSWORD, call, describe, key_login, logged_in, password_login,
                     run_instances, save_private_key, start_sandbox_server, wait_settled)
from support import cvm, v1_query


@pytest.fixture(scope="module")
def sbx():
    srv = start_sandbox_server()
    yield srv
    assert srv.stop() == 0, srv.output()


@pytest.fixture
def client(sbx):
    return cvm(sbx, sbx.create_account())


def test_password_key_and_back(client, tmp_path):
    (iid,) = run_instances(client)
    inst = describe(client, iid)
    assert inst.InstanceState == "RUNNING"
    assert inst.LoginSettings.KeyIds in (None, [])
    assert logged_in(password_login(inst)), "the creation password logs in"

    kp = call(client, "CreateKeyPair", KeyName="e2e_key", ProjectId=0).KeyPair
    key_file = save_private_key(kp.PrivateKey, tmp_path)
    assert not logged_in(key_login(inst, key_file)), "an unbound key is refused"

    r = call(client, "AssociateInstancesKeyPairs", InstanceIds=[iid], KeyIds=[kp.KeyId], ForceStop=True)
    op = describe(client, iid)
    assert op.LatestOperation == "AssociateInstancesKeyPairs"
    assert op.LatestOperationRequestId == r.RequestId
    inst = wait_settled(client, [iid])[iid]
    assert inst.LatestOperationState == "SUCCESS", inst.LatestOperationErrorMsg
    assert inst.InstanceState == "RUNNING", "ForceStop stops the instance and starts it again"
    assert inst.LoginSettings.KeyIds == [kp.KeyId]
    assert logged_in(key_login(inst, key_file)), "the bound key logs in"
    assert not logged_in(password_login(inst)), "password login is off while a key is bound"
    bound = call(client, "DescribeKeyPairs", KeyIds=[kp.KeyId]).KeyPairSet[0]
    assert bound.AssociatedInstanceIds == [iid]

    call(client, "DisassociateInstancesKeyPairs", InstanceIds=[iid], KeyIds=[kp.KeyId], ForceStop=True)
    inst = wait_settled(client, [iid])[iid]
    assert inst.LatestOperationState == "SUCCESS", inst.LatestOperationErrorMsg
    assert inst.LoginSettings.KeyIds in (None, [])
    assert logged_in(password_login(inst)), "password login is back after unbinding"
    assert not logged_in(key_login(inst, key_file)), "the unbound key is refused"


def test_running_instance_without_force_stop_is_refused(client):
    (iid,) = run_instances(client)
    kp = call(client, "CreateKeyPair", KeyName="nf_key", ProjectId=0).KeyPair
    with pytest.raises(Exception) as e:
        call(client, "AssociateInstancesKeyPairs", InstanceIds=[iid], KeyIds=[kp.KeyId])
    assert e.value.code == "UnsupportedOperation.InstanceStateRunning"


def test_stop_start_and_reboot_are_real(client):
    (iid,) = run_instances(client)
    call(client, "StopInstances", InstanceIds=[iid])
    inst = wait_settled(client, [iid])[iid]
    assert inst.InstanceState == "STOPPED"
    assert not logged_in(password_login(inst)), "a stopped instance refuses connections"
    call(client, "StartInstances", InstanceIds=[iid])
    inst = wait_settled(client, [iid])[iid]
    assert inst.InstanceState == "RUNNING"
    assert logged_in(password_login(inst))
    call(client, "RebootInstances", InstanceIds=[iid])
    inst = wait_settled(client, [iid])[iid]
    assert inst.InstanceState == "RUNNING" and inst.LatestOperationState == "SUCCESS"
    assert logged_in(password_login(inst))
    call(client, "TerminateInstances", InstanceIds=[iid])
    deadline = time.monotonic() + 30
    while call(client, "DescribeInstances", InstanceIds=[iid]).TotalCount:
        assert time.monotonic() < deadline, "terminated instance still listed"
        time.sleep(0.1)
    assert not logged_in(password_login(inst))


def legacy(sbx, creds, action, params):
    host = sbx.endpoint
    q = v1_query(host, {"Action": action, "Region": "ap-guangzhou", "Timestamp": int(time.time()),
                        "Nonce": int(time.time() * 1e6) % 2**31, "SecretId": creds["secret_id"], **params},
                 creds["secret_key"], path="/v2/index.php")
    with urllib.request.urlopen(f"http://{host}/v2/index.php?{q}", timeout=30) as resp:
        import json
        return json.loads(resp.read())


def test_legacy_v2_bind_and_unbind(sbx, tmp_path):
    creds = sbx.create_account()
    client = cvm(sbx, creds)
    (iid,) = run_instances(client)
    kp = call(client, "CreateKeyPair", KeyName="legacy_key", ProjectId=0).KeyPair
    key_file = save_private_key(kp.PrivateKey, tmp_path)

    answer = legacy(sbx, creds, "BindInstanceKey", {"instanceIds.0": iid, "keyId": kp.KeyId})
    assert answer["code"] != 0, "a running instance must be shut down first"

    call(client, "StopInstances", InstanceIds=[iid])
    wait_settled(client, [iid])
    answer = legacy(sbx, creds, "BindInstanceKey", {"instanceIds.0": iid, "keyId": kp.KeyId})
    assert answer["code"] == 0, answer
    inst = wait_settled(client, [iid])[iid]
    assert inst.LatestOperation == "BindInstanceKey" and inst.LatestOperationState == "SUCCESS"
    assert inst.LoginSettings.KeyIds == [kp.KeyId], "what v2 binds, API 3.0 describes"
    call(client, "StartInstances", InstanceIds=[iid])
    inst = wait_settled(client, [iid])[iid]
    assert logged_in(key_login(inst, key_file))
    assert not logged_in(password_login(inst))

    call(client, "StopInstances", InstanceIds=[iid])
    wait_settled(client, [iid])
    answer = legacy(sbx, creds, "UnBindInstanceKey", {"instanceIds.0": iid, "keyId": kp.KeyId})
    assert answer["code"] == 0, answer
    wait_settled(client, [iid])
    call(client, "StartInstances", InstanceIds=[iid])
    inst = wait_settled(client, [iid])[iid]
    assert inst.LoginSettings.KeyIds in (None, [])
    assert logged_in(password_login(inst)), "unbinding returns login to the password"
    assert not logged_in(key_login(inst, key_file))


def test_kill_during_batch_bind_loses_nothing(tmp_path):
    srv = start_sandbox_server()
    try:
        creds = srv.create_account()
        client = cvm(srv, creds)
        ids = run_instances(client, count=12)
        kp = call(client, "CreateKeyPair", KeyName="batch_key", ProjectId=0).KeyPair
        key_file = save_private_key(kp.PrivateKey, tmp_path)
        call(client, "AssociateInstancesKeyPairs", InstanceIds=ids, KeyIds=[kp.KeyId], ForceStop=True)
        time.sleep(0.05)
        srv.kill()
        srv.start()
        settled = wait_settled(cvm(srv, creds), ids, timeout=120)
        for iid, inst in settled.items():
            assert inst.LatestOperationState in ("SUCCESS", "FAILED"), iid
            assert inst.LatestOperationState == "SUCCESS", (iid, inst.LatestOperationErrorMsg)
            assert inst.InstanceState == "RUNNING"
            assert inst.LoginSettings.KeyIds == [kp.KeyId]
            assert logged_in(key_login(inst, key_file)), f"{iid}: keys on the instance match DescribeInstances"
            assert not logged_in(password_login(inst)), iid
    finally:
        if srv.running:
            srv.stop()


def test_instances_come_back_after_a_restart(tmp_path):
    srv = start_sandbox_server()
    try:
        creds = srv.create_account()
        client = cvm(srv, creds)
        running, stopped = run_instances(client, count=2)
        kp = call(client, "CreateKeyPair", KeyName="restart_key", ProjectId=0).KeyPair
        key_file = save_private_key(kp.PrivateKey, tmp_path)
        call(client, "AssociateInstancesKeyPairs", InstanceIds=[running], KeyIds=[kp.KeyId], ForceStop=True)
        call(client, "StopInstances", InstanceIds=[stopped])
        wait_settled(client, [running, stopped])
        assert srv.stop() == 0
        srv.start()
        client = cvm(srv, creds)
        deadline = time.monotonic() + 30
        while True:
            inst = describe(client, running)
            if logged_in(key_login(inst, key_file)):
                break
            assert time.monotonic() < deadline, "the running instance did not come back"
            time.sleep(0.2)
        assert inst.InstanceState == "RUNNING"
        assert not logged_in(password_login(inst)), "the key binding survives the restart"
        off = describe(client, stopped)
        assert off.InstanceState == "STOPPED"
        assert not logged_in(password_login(off)), "a stopped instance stays stopped"
    finally:
        if srv.running:
            srv.stop()


def test_the_host_name_asked_for_is_the_instances_own(client):
    from sandbox import PASSWORD, SSH, address
    r = call(client, "RunInstances", ImageId="img-kpdeb12x", Placement={"Zone": "ap-guangzhou-3"},
             HostName="build-box", LoginSettings={"Password": PASSWORD})
    inst = wait_settled(client, r.InstanceIdSet)[r.InstanceIdSet[0]]
    assert inst.HostName == "build-box"
    ip, port = address(inst)
    out = subprocess.run(["sshpass", "-p", PASSWORD, *SSH, "-p", str(port), "-o", "PubkeyAuthentication=no",
                          f"root@{ip}", "hostname"], capture_output=True, text=True, timeout=30)
    assert out.stdout.strip() == "build-box", out
