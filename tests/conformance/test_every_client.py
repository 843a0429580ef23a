"""Every official client, unchanged, over plain HTTP and over HTTPS with the server's own CA,
each given only an endpoint in a form users type (bare IP:PORT, localhost:PORT,
cvm.localhost:PORT, lighthouse.localhost:PORT, ecs.cn-hangzhou.localhost:PORT) and a CA:
create and import key pairs, describe them, an error with its exact code; then (as root, with
sandbox instances) run an instance, bind a key and log in over real ssh with it while the
password is refused.

Python: tencentcloud-sdk-python (CVM, Lighthouse), tccli, aliyun-python-sdk-ecs,
alibabacloud-ecs20140526. Node.js: tencentcloud-sdk-nodejs-cvm, tencentcloud-sdk-nodejs-common
(Lighthouse), @alicloud/ecs20140526 with @alicloud/openapi-client (tests/conformance/node).
"""
import json
import time
import uuid
from types import SimpleNamespace

import pytest
from tencentcloud.common import credential
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile
from tencentcloud.cvm.v20170312 import cvm_client
from tencentcloud.cvm.v20170312 import models as cvm_models

import ecs
from clients import (AliyunCore, AliyunTea, ApiError, NodeClient, TencentPython, Tccli,
                     certifi_trusting, error_of, localhost_names, node_available)
from sandbox import PASSWORD, key_login, logged_in, password_login, save_private_key, start_sandbox_server
from support import key_blob, public_key_of_private, unique_name

PROTOCOLS = ["http", "https"]
#: client kind -> (product, endpoint host over HTTP, endpoint host over HTTPS)
TENCENT = {
    "python-cvm": ("cvm", None, "cvm.localhost"),
    "python-lighthouse": ("lighthouse", None, "lighthouse.localhost"),
    "tccli-cvm": ("cvm", None, "localhost"),
    "tccli-lighthouse": ("lighthouse", None, "localhost"),
    # The Node.js SDK signs the endpoint's first label as the service: `127` for 127.0.0.1.
    "node-cvm": ("cvm", None, "cvm.localhost"),
    "node-lighthouse": ("lighthouse", None, "localhost"),
}
ECS = {
    "python-aliyun-core": (None, "ecs.cn-hangzhou.localhost"),
    "python-alibabacloud": ("localhost", "localhost"),
    "node-alicloud": (None, "ecs.cn-hangzhou.localhost"),
}
LH_LINUX, LH_BUNDLE = "lhbp-kpdeb12x", "bundle_kp_gen_02"


@pytest.fixture
def open_client(tmp_path):
    """open_client(kind, server, creds, https) -> a client with `.call`; closed at teardown."""
    opened, stack = [], []

    def open_(kind, server, creds, https):
        if kind.startswith("node-") and (why := node_available()):
            pytest.skip(why)
        if kind in TENCENT:
            product, http_host, https_host = TENCENT[kind]
            host = https_host if https else http_host
            if kind.startswith("python-"):
                return TencentPython(product, server, creds, https, host)
            if kind.startswith("tccli-"):
                if https:
                    trust = certifi_trusting(server.ca_path)
                    trust.__enter__()
                    stack.append(trust)
                home = tmp_path / f"home-{uuid.uuid4().hex[:6]}"
                home.mkdir()
                return Tccli(product, server, creds, home, https)
            c = NodeClient(product, server, creds, https, host)
        else:
            http_host, https_host = ECS[kind]
            host = https_host if https else http_host
            if kind == "python-aliyun-core":
                return AliyunCore(server, creds, https, host)
            if kind == "python-alibabacloud":
                return AliyunTea(server, creds, https, host)
            c = NodeClient("ecs", server, creds, https, host)
        opened.append(c)
        return c

    with localhost_names():
        yield open_
    for c in opened:
        c.close()
    for trust in reversed(stack):
        trust.__exit__(None, None, None)


# ----------------------------------------------------------------------------- key pairs

@pytest.mark.parametrize("proto", PROTOCOLS)
@pytest.mark.parametrize("kind", list(TENCENT))
def test_tencent_key_pairs(kind, proto, server, account, keygen, tmp_path, open_client):
    product = TENCENT[kind][0]
    c = open_client(kind, server, account, proto == "https")
    project = {"ProjectId": 0} if product == "cvm" else {}
    created = c.call("CreateKeyPair", KeyName=unique_name("c"), **project)["KeyPair"]
    assert created["KeyId"].startswith("skey-" if product == "cvm" else "lhkp-"), created
    derived = public_key_of_private(created["PrivateKey"], tmp_path)
    assert key_blob(derived) == key_blob(created["PublicKey"]), "the private key matches"
    _, pub = keygen.new("ed25519")
    imported = c.call("ImportKeyPair", KeyName=unique_name("i"), PublicKey=pub, **project)["KeyId"]
    d = c.call("DescribeKeyPairs", KeyIds=[created["KeyId"], imported])
    assert d["TotalCount"] == 2, d
    assert sorted(k["KeyId"] for k in d["KeyPairSet"]) == sorted([created["KeyId"], imported])
    ghost, code = (("skey-00000000", "InvalidKeyPairId.NotFound") if product == "cvm"
                   else ("lhkp-zzzzzzzz", "ResourceNotFound.KeyIdNotFound"))
    assert error_of(c.call, "DeleteKeyPairs", KeyIds=[ghost]).code == code
    c.call("DeleteKeyPairs", KeyIds=[created["KeyId"], imported])
    assert c.call("DescribeKeyPairs", KeyIds=[imported])["TotalCount"] == 0


@pytest.mark.parametrize("proto", PROTOCOLS)
@pytest.mark.parametrize("kind", list(ECS))
def test_ecs_key_pairs(kind, proto, server, account, keygen, tmp_path, open_client):
    c = open_client(kind, server, account, proto == "https")
    made, brought = f"made{uuid.uuid4().hex[:8]}", f"brought{uuid.uuid4().hex[:8]}"
    created = c.call("CreateKeyPair", RegionId=ecs.REGION, KeyPairName=made)
    assert created["KeyPairName"] == made, created
    assert created["PrivateKeyBody"].startswith("-----BEGIN"), "the private key, once"
    public_key_of_private(created["PrivateKeyBody"], tmp_path)
    _, pub = keygen.new("ed25519")
    c.call("ImportKeyPair", RegionId=ecs.REGION, KeyPairName=brought, PublicKeyBody=pub)
    d = c.call("DescribeKeyPairs", RegionId=ecs.REGION, KeyPairName=made)
    assert int(d["TotalCount"]) == 1, d
    assert d["KeyPairs"]["KeyPair"][0]["KeyPairFingerPrint"] == created["KeyPairFingerPrint"]
    e = error_of(c.call, "DeleteKeyPairs", RegionId=ecs.REGION, KeyPairNames='["ghost"]')
    assert (e.status, e.code) == (404, "InvalidKeyPair.NotFound"), e
    c.call("DeleteKeyPairs", RegionId=ecs.REGION, KeyPairNames=json.dumps([made, brought]))
    assert int(c.call("DescribeKeyPairs", RegionId=ecs.REGION)["TotalCount"]) == 0


def test_https_is_verified_clients_without_the_ca_refuse_the_server(server, account):
    """The HTTPS runs above trust the server because they are given its CA, not because
    verification is off: without it each client refuses the certificate."""
    hp = HttpProfile(protocol="https", endpoint=f"localhost:{server.tls_port}", reqTimeout=30)
    cred = credential.Credential(account["secret_id"], account["secret_key"])
    python = cvm_client.CvmClient(cred, "ap-guangzhou", ClientProfile(httpProfile=hp))
    with pytest.raises(TencentCloudSDKException) as e:
        python.DescribeKeyPairs(cvm_models.DescribeKeyPairsRequest())
    assert "CERTIFICATE_VERIFY_FAILED" in str(e.value.message), e.value
    if node_available():
        pytest.skip(node_available())
    node = NodeClient("cvm", server, account, https=True, host="localhost", trust_ca=False)
    try:
        e = error_of(node.call, "DescribeKeyPairs")
        assert "certificate" in str(e).lower(), e
    finally:
        node.close()


# ----------------------------------------------------------------------------- real instances

@pytest.fixture(scope="module")
def sbx():
    srv = start_sandbox_server()
    yield srv
    assert srv.stop() == 0, srv.output()


def settled(c, product, iid, timeout=120.0):
    """Poll DescribeInstances until the instance's latest operation is no longer OPERATING."""
    deadline = time.monotonic() + timeout
    while True:
        (inst,) = c.call("DescribeInstances", InstanceIds=[iid])["InstanceSet"]
        if inst.get("LatestOperationState") not in ("OPERATING", None):
            return inst
        assert time.monotonic() < deadline, f"{iid} still OPERATING after {timeout}s: {inst}"
        time.sleep(0.1)


def ssh_target(srv, inst, product):
    port = int(srv.extra_args[srv.extra_args.index("--ssh-port") + 1])
    addresses = inst["PrivateIpAddresses"] if product == "cvm" else inst["PrivateAddresses"]
    return SimpleNamespace(PrivateIpAddresses=addresses, DefaultLoginPort=port)


def launch(c, product):
    if product == "cvm":
        r = c.call("RunInstances", ImageId="img-kpdeb12x", Placement={"Zone": "ap-guangzhou-3"},
                   InstanceCount=1, InstanceName="web", LoginSettings={"Password": PASSWORD})
    else:
        r = c.call("CreateInstances", BundleId=LH_BUNDLE, BlueprintId=LH_LINUX, InstanceName="web",
                   InstanceChargePrepaid={"Period": 1}, Zones=["ap-guangzhou-3"],
                   LoginConfiguration={"AutoGeneratePassword": "NO", "Password": PASSWORD})
    (iid,) = r["InstanceIdSet"]
    inst = settled(c, product, iid)
    assert (inst["InstanceState"], inst["LatestOperationState"]) == ("RUNNING", "SUCCESS"), inst
    return iid


@pytest.mark.parametrize("proto", PROTOCOLS)
@pytest.mark.parametrize("kind", list(TENCENT))
def test_tencent_bind_and_ssh(kind, proto, sbx, tmp_path, open_client):
    product = TENCENT[kind][0]
    c = open_client(kind, sbx, sbx.create_account(), proto == "https")
    iid = launch(c, product)
    project = {"ProjectId": 0} if product == "cvm" else {}
    kp = c.call("CreateKeyPair", KeyName=unique_name("e2e"), **project)["KeyPair"]
    key_file = save_private_key(kp["PrivateKey"], tmp_path)
    force = {"ForceStop": True} if product == "cvm" else {}
    c.call("AssociateInstancesKeyPairs", InstanceIds=[iid], KeyIds=[kp["KeyId"]], **force)
    inst = settled(c, product, iid)
    assert inst["LatestOperationState"] == "SUCCESS", inst
    if product == "lighthouse":
        assert inst["InstanceState"] == "STOPPED", "Lighthouse binds a stopped instance"
        c.call("StartInstances", InstanceIds=[iid])
        inst = settled(c, product, iid)
    assert (inst["InstanceState"], inst["LatestOperationState"]) == ("RUNNING", "SUCCESS"), inst
    target = ssh_target(sbx, inst, product)
    assert logged_in(key_login(target, key_file)), "the bound key logs in over ssh"
    assert not logged_in(password_login(target)), "password login is off while a key is bound"


def ecs_status(c, iid, status, timeout=120.0):
    deadline = time.monotonic() + timeout
    while True:
        (inst,) = c.call("DescribeInstances", RegionId=ecs.REGION,
                         InstanceIds=json.dumps([iid]))["Instances"]["Instance"]
        if inst["Status"] == status:
            return inst
        assert time.monotonic() < deadline, f"{iid} is {inst['Status']}, not {status}, after {timeout}s"
        time.sleep(0.1)


@pytest.mark.parametrize("proto", PROTOCOLS)
@pytest.mark.parametrize("kind", list(ECS))
def test_ecs_attach_and_ssh(kind, proto, sbx, keygen, open_client):
    c = open_client(kind, sbx, sbx.create_account(), proto == "https")
    key_file, pub = keygen.new("ed25519")
    c.call("ImportKeyPair", RegionId=ecs.REGION, KeyPairName="ops", PublicKeyBody=pub)
    r = c.call("RunInstances", RegionId=ecs.REGION, ImageId=ecs.LINUX, InstanceType=ecs.INSTANCE_TYPE,
               Password=PASSWORD, Amount=1)
    (iid,) = r["InstanceIdSets"]["InstanceIdSet"]
    inst = ecs_status(c, iid, "Running")
    target = ecs.ssh_target(sbx, inst)
    assert logged_in(password_login(target)), "the creation password logs in"
    r = c.call("AttachKeyPair", RegionId=ecs.REGION, KeyPairName="ops", InstanceIds=json.dumps([iid]))
    assert (str(r["TotalCount"]), str(r["FailCount"])) == ("1", "0"), r
    c.call("RebootInstance", InstanceId=iid, ForceStop=True)
    ecs_status(c, iid, "Running")
    assert logged_in(key_login(target, key_file)), "after the reboot the key logs in"
    assert not logged_in(password_login(target)), "and the password no longer does"
    with pytest.raises(ApiError):
        c.call("DeleteKeyPairs", RegionId=ecs.REGION, KeyPairNames='["ops"]')
