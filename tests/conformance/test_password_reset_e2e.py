"""End to end: password resets with real effect, through the official SDKs and real `ssh`.

- CVM 3.0: an instance launched with only a key; unbinding leaves no way in (no password was
  set); ResetInstancesPassword with ForceStop stops it, sets the password and starts it again,
  and the new password logs in. A password reset while a key is bound stays off until unbound.
  The legacy v2 ResetInstancePassword on the same instance replaces it again.
- Lighthouse: ResetInstancesPassword on a RUNNING instance shuts it down (it stays STOPPED);
  after StartInstances the new password logs in and the old one does not.
- ECS: ModifyInstanceAttribute Password: the old password works until RebootInstance, the new
  one after; on a stopped instance it is in place at StartInstance. And RunInstances /
  CreateInstance with KeyPairName: DescribeInstances shows it, the key logs in, the password
  does not.
"""
import json
import time
import urllib.request

import pytest

import test_lighthouse_e2e as lh
from ecs import (INSTANCE_TYPE, LINUX, REGION, Core, describe as ecs_describe, error_of, ssh_target,
                 tea, tea_call, wait_status)
from sandbox import (PASSWORD, call, describe, key_login, logged_in, password_login, run_instances,
                     save_private_key, start_sandbox_server, wait_settled)
from support import cvm, expect_error, v1_query

NEW = "Kp-Reset-0rd"
NEWER = "Kp-Reset-0rd-2"


@pytest.fixture(scope="module")
def sbx():
    srv = start_sandbox_server()
    yield srv
    assert srv.stop() == 0, srv.output()
    out = srv.output(last=len(srv.log))
    for secret in (NEW, NEWER):
        assert secret not in out, "a password reached the server's log"


def legacy(sbx, creds, action, params):
    q = v1_query(sbx.endpoint, {"Action": action, "Region": "gz", "Timestamp": int(time.time()),
                                "Nonce": int(time.time() * 1e6) % 2**31, "SecretId": creds["secret_id"],
                                **params},
                 creds["secret_key"], path="/v2/index.php")
    with urllib.request.urlopen(f"http://{sbx.endpoint}/v2/index.php?{q}", timeout=30) as resp:
        return json.loads(resp.read())


def no_way_in(inst, key_file):
    """Neither the key nor any password logs in, though the instance's sshd answers (it
    refuses the credentials; the connection itself is not refused)."""
    key = key_login(inst, key_file)
    assert "Permission denied" in key.stderr, key.stderr
    return (not logged_in(key)
            and not logged_in(password_login(inst, PASSWORD))
            and not logged_in(password_login(inst, NEW)))


def test_cvm_key_only_instance_unbound_then_reset(sbx, tmp_path):
    creds = sbx.create_account()
    client = cvm(sbx, creds)
    kp = call(client, "CreateKeyPair", KeyName="only_key", ProjectId=0).KeyPair
    key_file = save_private_key(kp.PrivateKey, tmp_path)
    (iid,) = run_instances(client, password=None, key_ids=[kp.KeyId])
    inst = describe(client, iid)
    assert inst.LoginSettings.KeyIds == [kp.KeyId]
    assert logged_in(key_login(inst, key_file)), "launched with the key"

    call(client, "DisassociateInstancesKeyPairs", InstanceIds=[iid], KeyIds=[kp.KeyId], ForceStop=True)
    inst = wait_settled(client, [iid])[iid]
    assert (inst.InstanceState, inst.LatestOperationState) == ("RUNNING", "SUCCESS")
    assert no_way_in(inst, key_file), "no password was ever set: nothing logs in"

    expect_error(client, "UnsupportedOperation.InstanceStateRunning",
                 call, client, "ResetInstancesPassword", InstanceIds=[iid], Password=NEW)
    expect_error(client, "InvalidPassword",
                 call, client, "ResetInstancesPassword", InstanceIds=[iid], Password="weakpass", ForceStop=True)
    r = call(client, "ResetInstancesPassword", InstanceIds=[iid], Password=NEW, ForceStop=True)
    op = describe(client, iid)
    assert (op.LatestOperation, op.LatestOperationRequestId) == ("ResetInstancesPassword", r.RequestId)
    inst = wait_settled(client, [iid])[iid]
    assert inst.LatestOperationState == "SUCCESS", inst.LatestOperationErrorMsg
    assert inst.InstanceState == "RUNNING", "stopped, reset and started again"
    assert logged_in(password_login(inst, NEW)), "the new password logs in"
    assert not logged_in(key_login(inst, key_file))

    # Legacy v2 on the same instance: a running one needs hardPowerOffFlag.
    answer = legacy(sbx, creds, "ResetInstancePassword", {"instanceIds.0": iid, "password": NEWER})
    assert (answer["code"], answer["codeDesc"]) == (5100, "UnsupportedOperation.InstanceStateRunning"), answer
    answer = legacy(sbx, creds, "ResetInstancePassword",
                    {"instanceIds.0": iid, "password": NEWER, "hardPowerOffFlag": 1})
    assert (answer["code"], answer["codeDesc"]) == (0, "Success"), answer
    inst = wait_settled(client, [iid])[iid]
    assert (inst.LatestOperation, inst.LatestOperationState) == ("ResetInstancePassword", "SUCCESS")
    assert inst.InstanceState == "RUNNING"
    assert logged_in(password_login(inst, NEWER)), "what v2 sets, the instance uses"
    assert not logged_in(password_login(inst, NEW)), "the previous password is replaced"

    # A reset while a key is bound changes the password, but password login stays off.
    call(client, "AssociateInstancesKeyPairs", InstanceIds=[iid], KeyIds=[kp.KeyId], ForceStop=True)
    wait_settled(client, [iid])
    call(client, "ResetInstancesPassword", InstanceIds=[iid], Password=NEW, ForceStop=True)
    inst = wait_settled(client, [iid])[iid]
    assert inst.LatestOperationState == "SUCCESS", inst.LatestOperationErrorMsg
    assert logged_in(key_login(inst, key_file))
    assert not logged_in(password_login(inst, NEW)), "a bound key keeps password login off"
    call(client, "DisassociateInstancesKeyPairs", InstanceIds=[iid], KeyIds=[kp.KeyId], ForceStop=True)
    inst = wait_settled(client, [iid])[iid]
    assert logged_in(password_login(inst, NEW)), "unbinding turns it back on, with the new password"
    assert not logged_in(password_login(inst, NEWER))


def test_cvm_reset_of_a_stopped_instance_needs_no_force_stop(sbx):
    client = cvm(sbx, sbx.create_account())
    (iid,) = run_instances(client)
    call(client, "StopInstances", InstanceIds=[iid])
    wait_settled(client, [iid])
    call(client, "ResetInstancesPassword", InstanceIds=[iid], Password=NEW, UserName="root")
    inst = wait_settled(client, [iid])[iid]
    assert (inst.InstanceState, inst.LatestOperationState) == ("STOPPED", "SUCCESS")
    call(client, "StartInstances", InstanceIds=[iid])
    inst = wait_settled(client, [iid])[iid]
    assert logged_in(password_login(inst, NEW))
    assert not logged_in(password_login(inst, PASSWORD))


def test_lighthouse_reset_shuts_the_instance_down(sbx):
    client = lh.lighthouse(sbx, sbx.create_account())
    iid = lh.create_instance(client, name="lh-reset")
    assert logged_in(password_login(lh.at(sbx, lh.describe(client, iid)), PASSWORD))
    expect_error(client, "InvalidParameterValue.InvalidPassword",
                 lh.call, client, "ResetInstancesPassword", InstanceIds=[iid], Password="weakpass")
    r = lh.call(client, "ResetInstancesPassword", InstanceIds=[iid], Password=NEW)
    op = lh.describe(client, iid)
    assert (op.LatestOperation, op.LatestOperationRequestId) == ("ResetInstancesPassword", r.RequestId)
    inst = lh.wait_settled(client, iid)
    assert inst.LatestOperationState == "SUCCESS"
    assert inst.InstanceState == "STOPPED", "a running instance is shut down for the reset"
    assert not logged_in(password_login(lh.at(sbx, inst), NEW)), "really shut down"
    lh.call(client, "StartInstances", InstanceIds=[iid])
    inst = lh.wait_settled(client, iid)
    assert inst.InstanceState == "RUNNING"
    assert logged_in(password_login(lh.at(sbx, inst), NEW)), "the new password logs in"
    assert not logged_in(password_login(lh.at(sbx, inst), PASSWORD)), "the old one does not"


def test_ecs_password_takes_effect_at_the_next_reboot(sbx):
    creds = sbx.create_account()
    core, t = Core(sbx, creds), tea(sbx, creds)
    (iid,) = tea_call(t, "RunInstances", region_id=REGION, image_id=LINUX, instance_type=INSTANCE_TYPE,
                      password=PASSWORD, amount=1).instance_id_sets.instance_id_set
    target = ssh_target(sbx, wait_status(core, iid, "Running"))
    assert logged_in(password_login(target, PASSWORD))
    assert error_of(core.call, "ModifyInstanceAttribute", InstanceId=iid, Password="weakpass") == (
        400, "InvalidPassword.Malformed")
    assert error_of(core.call, "ModifyInstanceAttribute", InstanceId=iid, Password=NEW,
                    HostName="renamed") == (400, "InvalidParameter")

    tea_call(t, "ModifyInstanceAttribute", instance_id=iid, password=NEW, instance_name="renamed")
    inst = ecs_describe(core, iid)
    assert (inst["Status"], inst["InstanceName"]) == ("Running", "renamed"), "renamed, still running"
    assert logged_in(password_login(target, PASSWORD)), "the old password works until the reboot"
    assert not logged_in(password_login(target, NEW))
    core.call("RebootInstance", InstanceId=iid)
    wait_status(core, iid, "Running")
    assert logged_in(password_login(target, NEW)), "after the reboot the new password logs in"
    assert not logged_in(password_login(target, PASSWORD))

    # Stopped: in place at the next start.
    core.call("StopInstance", InstanceId=iid)
    wait_status(core, iid, "Stopped")
    core.call("ModifyInstanceAttribute", InstanceId=iid, Password=NEWER)
    core.call("StartInstance", InstanceId=iid)
    wait_status(core, iid, "Running")
    assert logged_in(password_login(target, NEWER))
    assert not logged_in(password_login(target, NEW))


def test_ecs_launch_with_a_key_pair_name_turns_password_login_off(sbx, keygen):
    creds = sbx.create_account()
    core, t = Core(sbx, creds), tea(sbx, creds)
    key_file, public = keygen.new()
    core.call("ImportKeyPair", KeyPairName="boot_key", PublicKeyBody=public)
    (run,) = tea_call(t, "RunInstances", region_id=REGION, image_id=LINUX, instance_type=INSTANCE_TYPE,
                      password=PASSWORD, key_pair_name="boot_key", amount=1).instance_id_sets.instance_id_set
    created = core.call("CreateInstance", ImageId=LINUX, InstanceType=INSTANCE_TYPE, Password=PASSWORD,
                        KeyPairName="boot_key")["InstanceId"]
    wait_status(core, created, "Stopped")
    core.call("StartInstance", InstanceId=created)
    for iid in (run, created):
        inst = wait_status(core, iid, "Running")
        assert inst["KeyPairName"] == "boot_key", inst
        target = ssh_target(sbx, inst)
        assert logged_in(key_login(target, key_file)), f"{iid}: the key works from the first boot"
        assert not logged_in(password_login(target, PASSWORD)), f"{iid}: password login is off"
    found = core.call("DescribeInstances", KeyPairName="boot_key")["Instances"]["Instance"]
    assert sorted(i["InstanceId"] for i in found) == sorted([run, created])
