"""Helpers for the Alibaba Cloud ECS conformance tests: both official SDKs pointed at the
server (aliyun-python-sdk-ecs with the classic HMAC-SHA1 signature, alibabacloud-ecs20140526
with ACS3-HMAC-SHA256 or its RPC "v2" mode), an independent RPC signer for raw requests,
waiters, and an adapter so sandbox.py's ssh helpers work on ECS instances."""
from __future__ import annotations

import base64
import datetime
import hashlib
import hmac
import json
import time
import uuid
from types import SimpleNamespace
from urllib.parse import quote

from aliyunsdkcore.acs_exception.exceptions import ServerException
from aliyunsdkcore.client import AcsClient
from aliyunsdkecs.request.v20140526 import (AttachKeyPairRequest, CreateInstanceRequest,
                                            CreateKeyPairRequest, DeleteInstanceRequest,
                                            DeleteKeyPairsRequest, DescribeImagesRequest,
                                            DescribeInstancesRequest, DescribeKeyPairsRequest,
                                            DetachKeyPairRequest, ImportKeyPairRequest,
                                            ModifyInstanceAttributeRequest,
                                            RebootInstanceRequest, RunInstancesRequest,
                                            StartInstanceRequest, StopInstanceRequest)
from alibabacloud_ecs20140526 import models as tea_models
from alibabacloud_ecs20140526.client import Client as TeaClient
from alibabacloud_tea_openapi import utils_models as open_api_models

REGION = "cn-hangzhou"
LINUX = "debian_12_keyplane_sandbox_x64.vhd"
WINDOWS = "win2022_keyplane_record_x64.vhd"
INSTANCE_TYPE = "ecs.g7.large"

_CORE_MODULES = (AttachKeyPairRequest, CreateInstanceRequest, CreateKeyPairRequest,
                 DeleteInstanceRequest, DeleteKeyPairsRequest, DescribeImagesRequest,
                 DescribeInstancesRequest, DescribeKeyPairsRequest, DetachKeyPairRequest,
                 ImportKeyPairRequest, ModifyInstanceAttributeRequest, RebootInstanceRequest,
                 RunInstancesRequest, StartInstanceRequest, StopInstanceRequest)
#: action name -> the aliyun-python-sdk-ecs request class
_CORE_REQUESTS = {m.__name__.rsplit(".", 1)[1].removesuffix("Request"): getattr(m, m.__name__.rsplit(".", 1)[1])
                  for m in _CORE_MODULES}


class Core:
    """aliyun-python-sdk-core + aliyun-python-sdk-ecs: `core.call("AttachKeyPair", KeyPairName=...)`
    returns the parsed JSON body; errors raise aliyunsdkcore's ServerException."""

    def __init__(self, server, creds, secret=None):
        self.endpoint = server.endpoint
        self.client = AcsClient(creds["access_key_id"], secret or creds["access_key_secret"], REGION,
                                auto_retry=False)

    def call(self, action, **params):
        req = _CORE_REQUESTS[action]()
        req.set_endpoint(self.endpoint)
        for k, v in params.items():
            getattr(req, "set_" + k)(v)
        return json.loads(self.client.do_action_with_exception(req))


def tea(server, creds, v2=False, token=None):
    """alibabacloud-ecs20140526: ACS3-HMAC-SHA256 by default, RPC HMAC-SHA1 with v2=True."""
    cfg = open_api_models.Config(access_key_id=creds["access_key_id"],
                                 access_key_secret=creds["access_key_secret"],
                                 endpoint=server.endpoint, protocol="http", region_id=REGION)
    if v2:
        cfg.signature_algorithm = "v2"
    if token:
        cfg.security_token = token
    return TeaClient(cfg)


def tea_call(client, action, **params):
    """`tea_call(c, "AttachKeyPair", key_pair_name=...)` -> the response body model."""
    snake = "".join("_" + ch.lower() if ch.isupper() else ch for ch in action).lstrip("_")
    req = getattr(tea_models, action + "Request")(**params)
    return getattr(client, snake)(req).body


def error_of(fn, *args, **kwargs):
    """Call fn; it must raise. Returns (http status, code) from either SDK's exception."""
    try:
        result = fn(*args, **kwargs)
    except ServerException as e:
        return e.get_http_status(), e.get_error_code()
    except Exception as e:  # the Tea SDK's ClientException / ServerException / ThrottlingException
        if getattr(e, "code", None) is None:
            raise
        return e.status_code, e.code
    raise AssertionError(f"expected an error, the call returned {result!r}")


def pct(s: str) -> str:
    return quote(s, safe="-_.~")


def rpc_url(server, creds, action, params, nonce=None):
    """An HMAC-SHA1 signed URL built independently of the SDKs (for replays)."""
    p = dict(Action=action, Format="JSON", Version="2014-05-26",
             AccessKeyId=creds["access_key_id"], SignatureMethod="HMAC-SHA1",
             SignatureVersion="1.0", SignatureNonce=nonce or uuid.uuid4().hex,
             Timestamp=datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"))
    p.update(params)
    canonical = "&".join(f"{pct(k)}={pct(v)}" for k, v in sorted(p.items()))
    sts = "GET&%2F&" + pct(canonical)
    key = (creds["access_key_secret"] + "&").encode()
    p["Signature"] = base64.b64encode(hmac.new(key, sts.encode(), hashlib.sha1).digest()).decode()
    return f"{server.url}/?" + "&".join(f"{pct(k)}={pct(v)}" for k, v in p.items())


def describe(core: Core, iid: str) -> dict:
    found = core.call("DescribeInstances", InstanceIds=json.dumps([iid]))["Instances"]["Instance"]
    assert len(found) == 1, found
    return found[0]


def wait_status(core: Core, iid: str, status: str, timeout=60.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        inst = describe(core, iid)
        if inst["Status"] == status:
            return inst
        if time.monotonic() > deadline:
            raise AssertionError(f"{iid} is {inst['Status']}, not {status}, after {timeout}s")
        time.sleep(0.1)


def ssh_target(server, inst: dict):
    """What sandbox.key_login/password_login need: the private address and the SSH port."""
    args = server.extra_args
    port = int(args[args.index("--ssh-port") + 1]) if "--ssh-port" in args else 22
    ip = inst["VpcAttributes"]["PrivateIpAddress"]["IpAddress"][0]
    return SimpleNamespace(PrivateIpAddresses=[ip], DefaultLoginPort=port)
