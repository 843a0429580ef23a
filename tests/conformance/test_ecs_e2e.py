"""Alibaba Cloud ECS 2014-05-26 through both official SDKs against the real server.

- aliyun-python-sdk-ecs (classic HMAC-SHA1 signature, parameters in the query) and
  alibabacloud-ecs20140526 (ACS3-HMAC-SHA256 by default; RPC "v2" mode too).
- The key pair family: create (the PKCS#8 private key works with ssh-keygen), import (the
  fingerprint is what `ssh-keygen -E md5` prints), describe (wildcards, fingerprint, tags,
  paging, IncludePublicKey), delete.
- Real sandbox instances and the real `ssh` client: AttachKeyPair to a Linux and a Windows
  instance (per-instance results), the password still logs in until RebootInstance, then the
  key does and the password does not; DetachKeyPair + reboot brings the password back.
- Errors as the SDKs raise them: bad signature, reused nonce, over 50 ids, unknown key,
  Windows, STS token.
"""
import json
import subprocess

import pytest
import requests
from alibabacloud_ecs20140526 import models as tea_models

from ecs import (INSTANCE_TYPE, LINUX, REGION, WINDOWS, Core, describe, error_of, rpc_url,
                 ssh_target, tea, tea_call, wait_status)
from sandbox import PASSWORD, key_login, logged_in, password_login, start_sandbox_server


# ----------------------------------------------------------------------------- key pairs

def test_key_pair_family_through_both_sdks(server, account, keygen, tmp_path):
    core, t = Core(server, account), tea(server, account)
    made = core.call("CreateKeyPair", KeyPairName="made_by_core")
    assert made["KeyPairId"].startswith("kp-") and made["KeyPairName"] == "made_by_core"
    private = tmp_path / "made.pem"
    private.write_text(made["PrivateKeyBody"])
    private.chmod(0o600)
    assert made["PrivateKeyBody"].startswith("-----BEGIN PRIVATE KEY-----")
    derived = subprocess.run(["ssh-keygen", "-y", "-f", str(private)], capture_output=True, text=True,
                             check=True).stdout.split()[1]

    key_file, public = keygen.new()
    imported = tea_call(t, "ImportKeyPair", region_id=REGION, key_pair_name="laptop.key-1",
                        public_key_body=public,
                        tag=[tea_models.ImportKeyPairRequestTag(key="env", value="a b")])
    md5 = subprocess.run(["ssh-keygen", "-E", "md5", "-lf", f"{key_file}.pub"], capture_output=True,
                         text=True, check=True).stdout.split()[1]
    assert "MD5:" + imported.key_pair_finger_print == md5, "RFC 4716 MD5, lower-case, colon-separated"

    v2 = tea(server, account, v2=True)
    listed = tea_call(v2, "DescribeKeyPairs", region_id=REGION, key_pair_name="*key*",
                      include_public_key=True)
    assert listed.total_count == 1 and listed.key_pairs.key_pair[0].key_pair_name == "laptop.key-1"
    assert listed.key_pairs.key_pair[0].public_key.split()[1] == public.split()[1]
    assert listed.key_pairs.key_pair[0].tags.tag[0].tag_value == "a b"
    everything = core.call("DescribeKeyPairs", PageSize=1, PageNumber=2, IncludePublicKey=True)
    assert everything["TotalCount"] == 2 and len(everything["KeyPairs"]["KeyPair"]) == 1
    by_print = core.call("DescribeKeyPairs", KeyPairFingerPrint=made["KeyPairFingerPrint"],
                         IncludePublicKey=True)["KeyPairs"]["KeyPair"]
    assert [k["KeyPairName"] for k in by_print] == ["made_by_core"]
    assert by_print[0]["PublicKey"].split()[1] == derived, "the private key is the pair's"

    assert error_of(core.call, "ImportKeyPair", KeyPairName="laptop.key-1",
                    PublicKeyBody=keygen.new()[1]) == (400, "KeyPair.AlreadyExist")
    assert error_of(tea_call, t, "CreateKeyPair", region_id=REGION,
                    key_pair_name="9lives") == (400, "InvalidKeyPairName.Malformed")
    assert error_of(core.call, "DeleteKeyPairs", KeyPairNames='["ghost"]') == (404, "InvalidKeyPair.NotFound")
    core.call("DeleteKeyPairs", KeyPairNames=json.dumps(["made_by_core", "laptop.key-1"]))
    assert tea_call(t, "DescribeKeyPairs", region_id=REGION).total_count == 0


def test_protocol_errors_as_the_sdks_raise_them(server, account):
    core = Core(server, account)
    # aliyun-python-sdk-core recognises its own string to sign in the message and says so.
    assert error_of(Core(server, account, secret="wrong").call, "DescribeKeyPairs") == (
        400, "InvalidAccessKeySecret")
    bad_tea = tea(server, dict(account, access_key_secret="wrong"))
    assert error_of(tea_call, bad_tea, "DescribeKeyPairs", region_id=REGION) == (400, "SignatureDoesNotMatch")
    url = rpc_url(server, account, "DescribeKeyPairs", {"RegionId": REGION})
    first = requests.get(url, timeout=10)
    assert first.status_code == 200, first.text
    again = requests.get(url, timeout=10)
    assert (again.status_code, again.json()["Code"]) == (400, "SignatureNonceUsed")
    sts = tea(server, account, token="an-sts-token")
    assert error_of(tea_call, sts, "DescribeKeyPairs", region_id=REGION) == (
        400, "InvalidSecurityToken.MismatchWithAccessKey")
    assert error_of(core.call, "AttachKeyPair", KeyPairName="ghost",
                    InstanceIds='["i-00000000000000000000"]') == (404, "InvalidKeyPairName.NotFound")
    many = json.dumps([f"i-{n:020d}" for n in range(51)])
    assert error_of(core.call, "AttachKeyPair", KeyPairName="ghost", InstanceIds=many) == (
        400, "DependencyViolation.IoOptimize")
    xml = requests.get(rpc_url(server, account, "DescribeKeyPairs", {"Format": "XML"}), timeout=10)
    assert xml.status_code == 400 and xml.headers["Content-Type"] == "text/xml;charset=utf-8"
    assert "<Code>MissingParameter</Code>" in xml.text


# ----------------------------------------------------------------------------- sandboxes

@pytest.fixture(scope="module")
def sbx():
    srv = start_sandbox_server()
    yield srv
    assert srv.stop() == 0, srv.output()


def test_attach_takes_effect_at_reboot_and_detach_gives_the_password_back(sbx, keygen):
    creds = sbx.create_account()
    core, t = Core(sbx, creds), tea(sbx, creds)
    key_file, public = keygen.new()
    core.call("ImportKeyPair", KeyPairName="ops", PublicKeyBody=public)

    ids = tea_call(t, "RunInstances", region_id=REGION, image_id=LINUX, instance_type=INSTANCE_TYPE,
                   password=PASSWORD, instance_name="web", amount=1).instance_id_sets.instance_id_set
    (linux,) = ids
    windows = core.call("RunInstances", ImageId=WINDOWS, InstanceType=INSTANCE_TYPE,
                        Password="Kp-Passw0rd!Win", Amount=1)["InstanceIdSets"]["InstanceIdSet"][0]
    inst = wait_status(core, linux, "Running")
    wait_status(core, windows, "Running")
    assert inst["OSType"] == "linux" and inst["KeyPairName"] == ""
    target = ssh_target(sbx, inst)
    assert logged_in(password_login(target)), "the creation password logs in"

    r = tea_call(t, "AttachKeyPair", region_id=REGION, key_pair_name="ops",
                 instance_ids=json.dumps([linux, windows]))
    assert (r.total_count, r.fail_count, r.key_pair_name) == ("2", "1", "ops")
    by_id = {x.instance_id: x for x in r.results.result}
    assert (by_id[linux].code, by_id[linux].success, by_id[linux].message) == ("200", "true", "successful")
    assert (by_id[windows].code, by_id[windows].success) == ("DependencyViolation.WindowsInstance", "false")
    assert describe(core, linux)["KeyPairName"] == "ops"
    assert describe(core, windows)["KeyPairName"] == ""
    assert logged_in(password_login(target)), "an attached key takes effect only at the next reboot"
    assert not logged_in(key_login(target, key_file))

    core.call("RebootInstance", InstanceId=linux, ForceStop=True)
    wait_status(core, linux, "Running")
    assert logged_in(key_login(target, key_file)), "after the reboot the key logs in"
    assert not logged_in(password_login(target)), "and the password no longer does"

    assert error_of(core.call, "AttachKeyPair", KeyPairName="ops",
                    InstanceIds=json.dumps([windows])) == (403, "DependencyViolation.WindowsInstance")
    assert error_of(core.call, "DeleteKeyPairs", KeyPairNames='["ops"]') == (
        400, "InvalidParameter.KeypairAlreadyAttachedInstance")

    d = core.call("DetachKeyPair", KeyPairName="ops", InstanceIds=json.dumps([linux]))
    assert (d["TotalCount"], d["FailCount"]) == ("1", "0")
    assert describe(core, linux)["KeyPairName"] == ""
    assert logged_in(key_login(target, key_file)), "detaching also waits for the reboot"
    tea_call(t, "RebootInstance", instance_id=linux)
    wait_status(core, linux, "Running")
    assert logged_in(password_login(target)), "the password is back"
    assert not logged_in(key_login(target, key_file)), "the detached key is refused"


def test_create_start_stop_delete(sbx):
    creds = sbx.create_account()
    core, t = Core(sbx, creds), tea(sbx, creds)
    images = core.call("DescribeImages", OSType="linux")["Images"]["Image"]
    assert [i["ImageId"] for i in images] == [LINUX]
    iid = tea_call(t, "CreateInstance", region_id=REGION, image_id=LINUX, instance_type=INSTANCE_TYPE,
                   password=PASSWORD).instance_id
    inst = wait_status(core, iid, "Stopped")
    target = ssh_target(sbx, inst)
    assert not logged_in(password_login(target)), "CreateInstance leaves the instance stopped"
    assert error_of(core.call, "StopInstance", InstanceId=iid) == (403, "IncorrectInstanceStatus")
    core.call("StartInstance", InstanceId=iid)
    wait_status(core, iid, "Running")
    assert logged_in(password_login(target))
    assert error_of(core.call, "DeleteInstance", InstanceId=iid) == (403, "IncorrectInstanceStatus")
    tea_call(t, "StopInstance", instance_id=iid, force_stop=True)
    wait_status(core, iid, "Stopped")
    assert not logged_in(password_login(target)), "a stopped instance refuses connections"
    core.call("DeleteInstance", InstanceId=iid)
    found = core.call("DescribeInstances", InstanceIds=json.dumps([iid]))
    for _ in range(100):
        if found["TotalCount"] == 0:
            break
        found = core.call("DescribeInstances", InstanceIds=json.dumps([iid]))
    assert found["TotalCount"] == 0
    assert error_of(core.call, "StartInstance", InstanceId=iid) == (404, "InvalidInstanceId.NotFound")
