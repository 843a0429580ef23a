"""Lighthouse 2020-03-24 with the official SDK (tencentcloud-sdk-python-lighthouse) and
`tccli lighthouse`, against the real server.

Key pairs over every signing variant the SDK has (no sandbox needed). Then real sandbox
instances: create one with a password and log in with it; create a key pair and bind it while
the instance is RUNNING; LatestOperationState goes OPERATING -> SUCCESS and the instance is left
STOPPED (Lighthouse force-stops and does not start it again); start it and log in over real
SSH with the private key while the password is refused; unbind, start, and the password works
again while the key is refused. The same flow through tccli.
"""
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

import support
from sandbox import key_login, logged_in, password_login, save_private_key, start_sandbox_server
from support import REGION, SIGN_VARIANTS, expect_error, key_blob, profile, public_key_of_private
from tencentcloud.common import credential
from tencentcloud.lighthouse.v20200324 import lighthouse_client, models

LINUX = "lhbp-kpdeb12x"
WINDOWS = "lhbp-kpwin22x"
BUNDLE = "bundle_kp_gen_02"
PASSWORD = "Kp-Passw0rd!"
TCCLI = str(Path(sys.executable).with_name("tccli"))


def lighthouse(server, creds, sign_method="TC3-HMAC-SHA256", req_method="POST"):
    """An official LighthouseClient for `creds` against `server`, recording raw answers."""
    cred = credential.Credential(creds["secret_id"], creds["secret_key"])
    client = lighthouse_client.LighthouseClient(cred, REGION, profile(server, sign_method, req_method))
    return support._record_responses(client)


def call(client, action, **params):
    req = getattr(models, action + "Request")()
    req._deserialize(params)
    return getattr(client, action)(req)


def describe(client, iid):
    return call(client, "DescribeInstances", InstanceIds=[iid]).InstanceSet[0]


def wait_settled(client, iid, timeout=90.0):
    """Poll DescribeInstances until the latest operation is no longer OPERATING."""
    deadline = time.monotonic() + timeout
    while True:
        inst = describe(client, iid)
        if inst.LatestOperationState != "OPERATING":
            return inst
        assert time.monotonic() < deadline, f"{iid} still OPERATING after {timeout}s"
        time.sleep(0.05)


def ssh_target(srv, addresses):
    """What sandbox.key_login/password_login need: the instance's address (Lighthouse's
    PrivateAddresses) and the SSH port the sandbox server was started with."""
    port = srv.extra_args[srv.extra_args.index("--ssh-port") + 1]
    return SimpleNamespace(PrivateIpAddresses=list(addresses), DefaultLoginPort=int(port))


def at(srv, inst):
    """The SSH target of an SDK Instance or a tccli instance dict."""
    addresses = inst["PrivateAddresses"] if isinstance(inst, dict) else inst.PrivateAddresses
    return ssh_target(srv, addresses)


def create_instance(client, name="lh-web", password=PASSWORD):
    login = {"AutoGeneratePassword": "NO", "Password": password}
    r = call(client, "CreateInstances", BundleId=BUNDLE, BlueprintId=LINUX, InstanceName=name,
             InstanceChargePrepaid={"Period": 1}, Zones=["ap-guangzhou-3"], LoginConfiguration=login)
    (iid,) = r.InstanceIdSet
    assert iid.startswith("lhins-")
    inst = wait_settled(client, iid)
    assert inst.LatestOperation == "CreateInstances"
    assert inst.LatestOperationState == "SUCCESS", inst.LatestOperationState
    assert inst.InstanceState == "RUNNING"
    return iid


# ----------------------------------------------------------------------------- key pairs

@pytest.mark.parametrize("variant", SIGN_VARIANTS)
def test_keypair_family_over_every_signature(server, account, keygen, variant, tmp_path):
    client = lighthouse(server, account, *variant)
    tag = f"{variant[0]}_{variant[1]}".replace("-", "_")[:12]
    created = call(client, "CreateKeyPair", KeyName=f"c_{tag}").KeyPair
    assert created.KeyId.startswith("lhkp-")
    derived = public_key_of_private(created.PrivateKey, tmp_path)
    assert key_blob(derived) == key_blob(created.PublicKey), "the private key matches"
    _, pub = keygen.new("ed25519")
    imported = call(client, "ImportKeyPair", KeyName=f"i_{tag}", PublicKey=pub,
                    Tags=[{"Key": "env", "Value": "ci"}]).KeyId
    d = call(client, "DescribeKeyPairs", KeyIds=[created.KeyId, imported])
    assert d.TotalCount == 2
    assert all(k.PrivateKey is None for k in d.KeyPairSet), "never stored"
    d = call(client, "DescribeKeyPairs", Filters=[{"Name": "key-name", "Values": [tag]}])
    assert sorted(k.KeyId for k in d.KeyPairSet) == sorted([created.KeyId, imported]), "fuzzy name match"
    d = call(client, "DescribeKeyPairs", Filters=[{"Name": "tag:env", "Values": ["ci"]}])
    assert [k.KeyId for k in d.KeyPairSet] == [imported]
    expect_error(client, "InvalidParameterValue.KeyPairPublicKeyDuplicated",
                 call, client, "ImportKeyPair", KeyName=f"d_{tag}", PublicKey=pub)
    expect_error(client, "InvalidParameterValue.KeyPairIdMalformed",
                 call, client, "DeleteKeyPairs", KeyIds=["skey-12345678"])
    expect_error(client, "ResourceNotFound.KeyIdNotFound",
                 call, client, "DeleteKeyPairs", KeyIds=["lhkp-zzzzzzzz"])
    call(client, "DeleteKeyPairs", KeyIds=[created.KeyId, imported])
    assert call(client, "DescribeKeyPairs").TotalCount == 0


def test_catalog_and_binding_refusals_without_sandbox(server, account):
    client = lighthouse(server, account)
    blueprints = call(client, "DescribeBlueprints").BlueprintSet
    assert {b.BlueprintId: b.PlatformType for b in blueprints} == {LINUX: "LINUX_UNIX", WINDOWS: "WINDOWS"}
    bundles = call(client, "DescribeBundles", BlueprintId=WINDOWS).BundleSet
    assert BUNDLE in [b.BundleId for b in bundles] and all(b.SupportWindowsPlatform for b in bundles)
    r = call(client, "CreateInstances", BundleId=BUNDLE, BlueprintId=LINUX, DryRun=True,
             InstanceChargePrepaid={"Period": 1})
    assert r.RequestId and not r.InstanceIdSet, "DryRun answers only a RequestId"
    kid = call(client, "CreateKeyPair", KeyName="refusals").KeyPair.KeyId
    for ids, keys, code in [
        (["lhins-1122"], [kid], "InvalidParameterValue.InstanceIdMalformed"),
        (["lhins-zzzzzzzz"], ["lhkp-1122"], "InvalidParameterValue.KeyPairIdMalformed"),
        (["lhins-zzzzzzzz", "lhins-zzzzzzzz"], [kid], "InvalidParameterValue.Duplicated"),
        ([f"lhins-{i:08}" for i in range(101)], [kid], "InvalidParameterValue.LimitExceeded"),
        (["lhins-zzzzzzzz"], [kid], "ResourceNotFound.InstanceIdNotFound"),
    ]:
        expect_error(client, code, call, client, "AssociateInstancesKeyPairs", InstanceIds=ids, KeyIds=keys)


# ----------------------------------------------------------------------------- real sandboxes

@pytest.fixture(scope="module")
def sbx():
    srv = start_sandbox_server()
    yield srv
    assert srv.stop() == 0, srv.output()


def test_password_key_and_back_with_the_sdk(sbx, tmp_path):
    client = lighthouse(sbx, sbx.create_account())
    iid = create_instance(client)
    inst = describe(client, iid)
    assert inst.LoginSettings.KeyIds in (None, [])
    assert inst.PlatformType == "LINUX_UNIX" and inst.BlueprintId == LINUX and inst.BundleId == BUNDLE
    assert logged_in(password_login(at(sbx, inst), PASSWORD)), "the creation password logs in"

    kp = call(client, "CreateKeyPair", KeyName="lh_e2e").KeyPair
    key_file = save_private_key(kp.PrivateKey, tmp_path)
    assert not logged_in(key_login(at(sbx, inst), key_file)), "an unbound key is refused"

    # Bind while RUNNING: an asynchronous operation on the instance.
    r = call(client, "AssociateInstancesKeyPairs", InstanceIds=[iid], KeyIds=[kp.KeyId])
    op = describe(client, iid)
    assert op.LatestOperation == "AssociateInstancesKeyPairs"
    assert op.LatestOperationRequestId == r.RequestId
    inst = wait_settled(client, iid)
    assert inst.LatestOperationState == "SUCCESS"
    assert inst.InstanceState == "STOPPED", "RUNNING instances are forcibly shut down, then bound"
    assert inst.LoginSettings.KeyIds == [kp.KeyId]
    (bound,) = call(client, "DescribeKeyPairs", KeyIds=[kp.KeyId]).KeyPairSet
    assert bound.AssociatedInstanceIds == [iid]
    assert [(a.InstanceId, a.Username) for a in bound.AssociatedInstanceSet] == [(iid, "root")]
    expect_error(client, "UnsupportedOperation.KeyPairBindDuplicate",
                 call, client, "AssociateInstancesKeyPairs", InstanceIds=[iid], KeyIds=[kp.KeyId])
    expect_error(client, "ResourceInUse.KeyPairInUse", call, client, "DeleteKeyPairs", KeyIds=[kp.KeyId])

    call(client, "StartInstances", InstanceIds=[iid])
    inst = wait_settled(client, iid)
    assert (inst.InstanceState, inst.LatestOperationState) == ("RUNNING", "SUCCESS")
    assert logged_in(key_login(at(sbx, inst), key_file)), "the bound key logs in over ssh"
    assert not logged_in(password_login(at(sbx, inst), PASSWORD)), "password login is off"

    call(client, "DisassociateInstancesKeyPairs", InstanceIds=[iid], KeyIds=[kp.KeyId])
    inst = wait_settled(client, iid)
    assert inst.LatestOperationState == "SUCCESS"
    assert inst.InstanceState == "STOPPED"
    assert inst.LoginSettings.KeyIds in (None, [])
    expect_error(client, "UnsupportedOperation.KeyPairNotBoundToInstance",
                 call, client, "DisassociateInstancesKeyPairs", InstanceIds=[iid], KeyIds=[kp.KeyId])
    call(client, "StartInstances", InstanceIds=[iid])
    inst = wait_settled(client, iid)
    assert inst.InstanceState == "RUNNING"
    assert logged_in(password_login(at(sbx, inst), PASSWORD)), "password login is back"
    assert not logged_in(key_login(at(sbx, inst), key_file)), "the unbound key is refused"
    call(client, "DeleteKeyPairs", KeyIds=[kp.KeyId])


def test_online_binding_keeps_the_instance_running(sbx, tmp_path):
    client = lighthouse(sbx, sbx.create_account())
    iid = create_instance(client, name="lh-online")
    kp = call(client, "CreateKeyPair", KeyName="lh_online").KeyPair
    key_file = save_private_key(kp.PrivateKey, tmp_path)
    call(client, "AssociateInstancesKeyPairs", InstanceIds=[iid], KeyIds=[kp.KeyId],
         AssociateType="ONLINE", Username="root")
    inst = wait_settled(client, iid)
    assert (inst.InstanceState, inst.LatestOperationState) == ("RUNNING", "SUCCESS")
    assert logged_in(key_login(at(sbx, inst), key_file))
    assert not logged_in(password_login(at(sbx, inst), PASSWORD))


def test_windows_refusal_stop_and_terminate(sbx):
    client = lighthouse(sbx, sbx.create_account())
    kid = call(client, "CreateKeyPair", KeyName="lh_rules").KeyPair.KeyId
    iid = create_instance(client, name="lh-stop")
    call(client, "StopInstances", InstanceIds=[iid], StopType="HARD")
    inst = wait_settled(client, iid)
    assert (inst.InstanceState, inst.LatestOperation) == ("STOPPED", "StopInstances")
    assert not logged_in(password_login(at(sbx, inst), PASSWORD)), "really stopped"
    expect_error(client, "UnsupportedOperation.InvalidInstanceState",
                 call, client, "StopInstances", InstanceIds=[iid])
    win = call(client, "CreateInstances", BundleId=BUNDLE, BlueprintId=WINDOWS, InstanceChargePrepaid={"Period": 1},
               LoginConfiguration={"Password": "Kp-Passw0rd!x"}).InstanceIdSet[0]
    assert wait_settled(client, win).InstanceState == "RUNNING"
    expect_error(client, "UnsupportedOperation.WindowsNotAllowToAssociateKeyPair",
                 call, client, "AssociateInstancesKeyPairs", InstanceIds=[win], KeyIds=[kid])
    call(client, "TerminateInstances", InstanceIds=[iid, win])
    deadline = time.monotonic() + 30
    while call(client, "DescribeInstances", InstanceIds=[iid, win]).TotalCount:
        assert time.monotonic() < deadline, "terminated instances still listed"
        time.sleep(0.1)


# ----------------------------------------------------------------------------- tccli

class Tccli:
    def __init__(self, server, creds, home: Path):
        self.server = server
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("TENCENTCLOUD_")}
        self.env.update(HOME=str(home), TENCENTCLOUD_SECRET_ID=creds["secret_id"],
                        TENCENTCLOUD_SECRET_KEY=creds["secret_key"], TENCENTCLOUD_REGION=REGION)
        self.home = home

    def run(self, action, *args, check=True):
        cmd = [TCCLI, "lighthouse", action, *args, "--endpoint", self.server.url]
        proc = subprocess.run(cmd, capture_output=True, text=True, env=self.env, cwd=self.home,
                              stdin=subprocess.DEVNULL, timeout=120)
        if check:
            assert proc.returncode == 0, f"{action} exited {proc.returncode}: {proc.stdout} {proc.stderr}"
        return proc

    def json(self, action, *args):
        return json.loads(self.run(action, *args).stdout)

    def settled(self, iid, timeout=90.0):
        deadline = time.monotonic() + timeout
        while True:
            (inst,) = self.json("DescribeInstances", "--InstanceIds", json.dumps([iid]))["InstanceSet"]
            if inst["LatestOperationState"] != "OPERATING":
                return inst
            assert time.monotonic() < deadline, f"{iid} still OPERATING"
            time.sleep(0.1)


def test_tccli_lighthouse_bind_and_unbind(sbx, keygen, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    cli = Tccli(sbx, sbx.create_account(), home)
    r = cli.json("CreateInstances", "--BundleId", BUNDLE, "--BlueprintId", LINUX,
                 "--InstanceChargePrepaid", json.dumps({"Period": 1}),
                 "--LoginConfiguration", json.dumps({"AutoGeneratePassword": "NO", "Password": PASSWORD}))
    (iid,) = r["InstanceIdSet"]
    inst = cli.settled(iid)
    assert (inst["InstanceState"], inst["LatestOperationState"]) == ("RUNNING", "SUCCESS")
    key_file, pub = keygen.new("ed25519")
    kid = cli.json("ImportKeyPair", "--KeyName", "cli_key", "--PublicKey", pub)["KeyId"]

    out = cli.json("AssociateInstancesKeyPairs", "--InstanceIds", json.dumps([iid]), "--KeyIds", json.dumps([kid]))
    assert out["RequestId"]
    inst = cli.settled(iid)
    assert (inst["InstanceState"], inst["LatestOperationState"]) == ("STOPPED", "SUCCESS")
    assert inst["LoginSettings"]["KeyIds"] == [kid]
    proc = cli.run("AssociateInstancesKeyPairs", "--InstanceIds", json.dumps([iid]), "--KeyIds", json.dumps([kid]),
                   check=False)
    assert proc.returncode == 255 and "code:UnsupportedOperation.KeyPairBindDuplicate" in proc.stderr, proc.stderr
    cli.json("StartInstances", "--cli-unfold-argument", "--InstanceIds", iid)
    inst = cli.settled(iid)
    assert inst["InstanceState"] == "RUNNING"
    assert logged_in(key_login(at(sbx, inst), key_file))
    assert not logged_in(password_login(at(sbx, inst), PASSWORD))

    cli.json("DisassociateInstancesKeyPairs", "--InstanceIds", json.dumps([iid]), "--KeyIds", json.dumps([kid]))
    assert cli.settled(iid)["InstanceState"] == "STOPPED"
    cli.json("StartInstances", "--InstanceIds", json.dumps([iid]))
    inst = cli.settled(iid)
    assert inst["LoginSettings"]["KeyIds"] == []
    assert logged_in(password_login(at(sbx, inst), PASSWORD))
    assert not logged_in(key_login(at(sbx, inst), key_file))
    d = cli.json("DescribeKeyPairs", "--KeyIds", json.dumps([kid]))
    assert d["KeyPairSet"][0]["AssociatedInstanceIds"] == []
