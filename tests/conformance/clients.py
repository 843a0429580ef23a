"""Every official client behind one small interface, `client.call(Action, **wire_params) ->
dict` raising `ApiError(code, status)`, so one scenario per dialect runs through each of them,
over plain HTTP and over HTTPS with the server's own CA. Each client is used unchanged: it is
given an endpoint, and for HTTPS the CA in the way its users would give it.

- Tencent: tencentcloud-sdk-python (CvmClient, LighthouseClient; `HttpProfile(certification=CA)`),
  tccli (`--endpoint https://...`; it verifies against certifi's bundle only, see `certifi_trusting`),
  tencentcloud-sdk-nodejs-cvm and tencentcloud-sdk-nodejs-common (`NODE_EXTRA_CA_CERTS`).
- Alibaba: aliyun-python-sdk-ecs (`AcsClient(verify=CA)`), alibabacloud-ecs20140526
  (`Config(ca=CA)`), @alicloud/ecs20140526 (`NODE_EXTRA_CA_CERTS`).
"""
from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

from aliyunsdkcore.acs_exception.exceptions import ServerException
from aliyunsdkcore.client import AcsClient
from tencentcloud.common import credential
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile
from tencentcloud.cvm.v20170312 import cvm_client
from tencentcloud.cvm.v20170312 import models as cvm_models
from tencentcloud.lighthouse.v20200324 import lighthouse_client
from tencentcloud.lighthouse.v20200324 import models as lh_models

import ecs
from support import REGION

NODE_DIR = Path(__file__).resolve().parent / "node"
TCCLI = str(Path(sys.executable).with_name("tccli"))


class ApiError(Exception):
    def __init__(self, code, status=None, message=""):
        super().__init__(f"{code} (HTTP {status}): {message}")
        self.code, self.status = code, status


def endpoint_of(server, https: bool, host: str | None = None) -> str:
    """host:port of the server's HTTP or HTTPS listener; `host` replaces 127.0.0.1."""
    port = server.tls_port if https else server.port
    return f"{host or server.host}:{port}"


# ----------------------------------------------------------------------------- name resolution

@contextlib.contextmanager
def localhost_names():
    """Resolve every `*.localhost` name to loopback in this process, as RFC 6761 resolvers
    (systemd-resolved, curl, browsers) do; glibc with a plain /etc/hosts does not. The
    clients are unchanged: only the name lookup beneath them is."""
    original = socket.getaddrinfo

    def getaddrinfo(host, *args, **kwargs):
        if isinstance(host, str) and host.endswith(".localhost"):
            host = "127.0.0.1"
        return original(host, *args, **kwargs)

    socket.getaddrinfo = getaddrinfo
    try:
        yield
    finally:
        socket.getaddrinfo = original


@contextlib.contextmanager
def certifi_trusting(ca: Path):
    """tccli builds its HttpProfile without `certification`, so the SDK verifies against
    certifi's bundle and ignores REQUESTS_CA_BUNDLE: trusting a CA means adding it there.
    Added for the duration, and the bundle restored byte for byte afterwards."""
    import certifi
    bundle = Path(certifi.where())
    saved = bundle.read_bytes()
    backup = bundle.with_name(bundle.name + ".keyplane-test")
    shutil.copyfile(bundle, backup)
    bundle.write_bytes(saved + b"\n" + ca.read_bytes())
    try:
        yield
    finally:
        bundle.write_bytes(saved)
        backup.unlink()


# ----------------------------------------------------------------------------- Tencent, Python

class TencentPython:
    """tencentcloud-sdk-python's CvmClient or LighthouseClient, typed models."""

    def __init__(self, product, server, creds, https=False, host=None):
        client_cls, self.models = {
            "cvm": (cvm_client.CvmClient, cvm_models),
            "lighthouse": (lighthouse_client.LighthouseClient, lh_models),
        }[product]
        hp = HttpProfile(protocol="https" if https else "http", endpoint=endpoint_of(server, https, host),
                         reqTimeout=60, certification=str(server.ca_path) if https else None)
        cred = credential.Credential(creds["secret_id"], creds["secret_key"])
        self.client = client_cls(cred, REGION, ClientProfile(httpProfile=hp, language="en-US"))

    def call(self, action, **params):
        req = getattr(self.models, action + "Request")()
        req._deserialize(params)
        try:
            resp = getattr(self.client, action)(req)
        except TencentCloudSDKException as e:
            raise ApiError(e.code, None, e.message) from None
        return json.loads(resp.to_json_string())


class Tccli:
    """`tccli <product> <Action> --Param value ... --endpoint <scheme>://host:port`."""

    def __init__(self, product, server, creds, home: Path, https=False):
        self.product = product
        scheme = "https" if https else "http"
        self.endpoint = f"{scheme}://{endpoint_of(server, https, 'localhost' if https else None)}"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("TENCENTCLOUD_")}
        self.env.update(HOME=str(home), TENCENTCLOUD_SECRET_ID=creds["secret_id"],
                        TENCENTCLOUD_SECRET_KEY=creds["secret_key"], TENCENTCLOUD_REGION=REGION)
        self.home = home

    def call(self, action, **params):
        args = []
        for k, v in params.items():
            args += [f"--{k}", v if isinstance(v, str) else json.dumps(v)]
        cmd = [TCCLI, self.product, action, *args, "--endpoint", self.endpoint]
        proc = subprocess.run(cmd, capture_output=True, text=True, env=self.env, cwd=self.home,
                              stdin=subprocess.DEVNULL, timeout=120)
        if proc.returncode != 0:
            m = re.search(r"code:(\S+)", proc.stdout + proc.stderr)
            if not m:
                raise AssertionError(f"tccli {action} failed without a code: {proc.stdout} {proc.stderr}")
            raise ApiError(m.group(1), None, proc.stdout + proc.stderr)
        return json.loads(proc.stdout)


# ----------------------------------------------------------------------------- Alibaba, Python

class AliyunCore:
    """aliyun-python-sdk-core with aliyun-python-sdk-ecs's request classes."""

    def __init__(self, server, creds, https=False, host=None):
        self.endpoint = endpoint_of(server, https, host)
        self.https = https
        self.client = AcsClient(creds["access_key_id"], creds["access_key_secret"], ecs.REGION,
                                auto_retry=False, verify=str(server.ca_path) if https else None)

    def call(self, action, **params):
        params.pop("RegionId", None)  # the client's region
        req = ecs._CORE_REQUESTS[action]()
        req.set_endpoint(self.endpoint)
        req.set_protocol_type("https" if self.https else "http")
        for k, v in params.items():
            getattr(req, "set_" + k)(v)
        try:
            return json.loads(self.client.do_action_with_exception(req))
        except ServerException as e:
            raise ApiError(e.get_error_code(), e.get_http_status(), e.get_error_msg()) from None


class AliyunTea:
    """alibabacloud-ecs20140526 (ACS3-HMAC-SHA256), typed models."""

    def __init__(self, server, creds, https=False, host=None):
        from alibabacloud_ecs20140526.client import Client
        from alibabacloud_tea_openapi import utils_models as om
        cfg = om.Config(access_key_id=creds["access_key_id"], access_key_secret=creds["access_key_secret"],
                        endpoint=endpoint_of(server, https, host), protocol="https" if https else "http",
                        region_id=ecs.REGION, ca=str(server.ca_path) if https else None)
        self.client = Client(cfg)

    def call(self, action, **params):
        snake = {re.sub(r"(?<!^)(?=[A-Z])", "_", k).lower(): v for k, v in params.items()}
        try:
            return ecs.tea_call(self.client, action, **snake).to_map()
        except Exception as e:
            if getattr(e, "code", None) is None:
                raise
            raise ApiError(e.code, e.status_code, getattr(e, "message", "")) from None


# ----------------------------------------------------------------------------- Node.js

def node_available() -> str | None:
    """Why the Node clients cannot run here, or None."""
    if shutil.which("node") is None:
        return "node is not installed"
    if not (NODE_DIR / "node_modules").is_dir():
        return "tests/conformance/node/node_modules is missing (run `npm ci` there; .ci/run does)"
    return None


class NodeClient:
    """tests/conformance/node/driver.mjs: one official Node.js client in a process of its own,
    one JSON line per call. `*.localhost` names resolve to loopback through
    localhost-resolver.mjs (as RFC 6761 resolvers do); the SDK itself is untouched."""

    def __init__(self, kind, server, creds, https=False, host=None, trust_ca=True):
        tencent = kind in ("cvm", "lighthouse")
        env = {k: v for k, v in os.environ.items() if not k.startswith("KP_")}
        env.update(KP_CLIENT=kind, KP_ENDPOINT=endpoint_of(server, https, host),
                   KP_PROTOCOL="https" if https else "http", KP_REGION=REGION if tencent else ecs.REGION,
                   KP_KEY_ID=creds["secret_id" if tencent else "access_key_id"],
                   KP_KEY_SECRET=creds["secret_key" if tencent else "access_key_secret"])
        env.pop("NODE_EXTRA_CA_CERTS", None)
        if https and trust_ca:
            env["NODE_EXTRA_CA_CERTS"] = str(server.ca_path)
        self.proc = subprocess.Popen(["node", "--import", "./localhost-resolver.mjs", "driver.mjs"],
                                     cwd=NODE_DIR, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, bufsize=1)

    def call(self, action, **params):
        self.proc.stdin.write(json.dumps({"action": action, "params": params}) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            self.proc.wait(timeout=10)
            raise AssertionError(f"the node driver exited ({self.proc.returncode}): {self.proc.stderr.read()}")
        answer = json.loads(line)
        if "error" in answer:
            e = answer["error"]
            raise ApiError(e["code"], e["status"], e["message"])
        return answer["ok"]

    def close(self):
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def error_of(fn, *args, **kwargs) -> ApiError:
    try:
        result = fn(*args, **kwargs)
    except ApiError as e:
        return e
    raise AssertionError(f"expected an error, the call returned {result!r}")
