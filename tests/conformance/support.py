"""Shared helpers of the conformance suite: the real server as a subprocess, official-SDK
clients pointed at it, exact-error assertions, OpenSSH key generation and an independent
Tencent v1 signer.

Imported by conftest.py and the test modules (pytest puts this directory on sys.path).
"""
from __future__ import annotations

import base64
import collections
import hashlib
import hmac
import itertools
import json
import os
import queue
import re
import signal
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

# The clients must talk to 127.0.0.1 directly: the Tencent SDK honours HTTP_PROXY for http
# endpoints unless the host is in NO_PROXY, and tccli (a subprocess) inherits this environment.
for _var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
    os.environ.pop(_var, None)
os.environ["NO_PROXY"] = os.environ["no_proxy"] = "127.0.0.1,localhost"

import pytest  # noqa: E402
from tencentcloud.common import credential  # noqa: E402
from tencentcloud.common.common_client import CommonClient  # noqa: E402
from tencentcloud.common.exception.tencent_cloud_sdk_exception import (  # noqa: E402
    TencentCloudSDKException,
)
from tencentcloud.common.profile.client_profile import ClientProfile  # noqa: E402
from tencentcloud.common.profile.http_profile import HttpProfile  # noqa: E402
from tencentcloud.cvm.v20170312 import cvm_client, models  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
REGION = "ap-guangzhou"
CVM_VERSION = "2017-03-12"

#: (signature method, HTTP method) pairs the Tencent Python SDK can send.
SIGN_VARIANTS = [
    pytest.param(("TC3-HMAC-SHA256", "POST"), id="TC3-POST"),
    pytest.param(("TC3-HMAC-SHA256", "GET"), id="TC3-GET"),
    pytest.param(("HmacSHA256", "GET"), id="HmacSHA256-GET"),
    pytest.param(("HmacSHA256", "POST"), id="HmacSHA256-POST"),
    pytest.param(("HmacSHA1", "GET"), id="HmacSHA1-GET"),
    pytest.param(("HmacSHA1", "POST"), id="HmacSHA1-POST"),
]


def keyplane_bin() -> str:
    """The server binary under test: $KEYPLANE_BIN, else target/debug/keyplane."""
    path = os.environ.get("KEYPLANE_BIN") or str(REPO / "target" / "debug" / "keyplane")
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        raise RuntimeError(
            f"keyplane binary not found or not executable: {path!r}; build it with "
            "`cargo build --bins` and set KEYPLANE_BIN"
        )
    return path


def _server_env() -> dict:
    # Flags are the only configuration of a test server: drop KEYPLANE_* from the caller.
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEYPLANE_")}
    env["NO_COLOR"] = "1"  # plain log lines in failure reports
    return env


# ----------------------------------------------------------------------------- the server

LISTEN_RE = re.compile(r"keyplane: listening on http://([0-9.]+):(\d+) \(data directory (.+)\)")
LISTEN_TLS_RE = re.compile(r"keyplane: listening on https://([0-9.]+):(\d+) ")

#: Every server started and not yet stopped; conftest attaches their logs to failed tests.
RUNNING: list["KeyplaneServer"] = []
_names = itertools.count(1)


class KeyplaneServer:
    """`keyplane serve --listen 127.0.0.1:0 --data-dir DIR [extra args]` as a subprocess.

    Its output is drained by a thread for the whole run (the server logs every request to
    stderr; an unread pipe would block it) and kept in `log`.
    """

    def __init__(self, data_dir: Path, extra_args=(), host="127.0.0.1"):
        self.data_dir = Path(data_dir)
        self.extra_args = [str(a) for a in extra_args]
        self.proc: subprocess.Popen | None = None
        self.host = host
        #: Set to keep the same port across restarts (agents hold the server's URL).
        self.fixed_port: int | None = None
        self.port: int | None = None
        #: The HTTPS port (each server listens for TLS on a port of its own, `--listen-tls HOST:0`).
        self.tls_port: int | None = None
        self.log: collections.deque[str] = collections.deque(maxlen=4000)

    # -- lifecycle
    def start(self, timeout: float = 30.0) -> "KeyplaneServer":
        assert self.proc is None or self.proc.poll() is not None, "already running"
        self.port = None
        self.tls_port = None
        tls = [] if "--listen-tls" in self.extra_args else ["--listen-tls", f"{self.host}:0"]
        cmd = [keyplane_bin(), "serve", "--listen", f"{self.host}:{self.fixed_port or 0}",
               "--data-dir", str(self.data_dir), *tls, *self.extra_args]
        self.log.append("$ " + " ".join(cmd))
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, env=_server_env(), text=True,
                                errors="replace", bufsize=1)
        self.proc = proc
        lines: queue.Queue = queue.Queue()
        handshake = threading.Event()  # set once the listening line is seen

        def pump():
            for line in proc.stdout:
                line = line.rstrip("\n")
                self.log.append(line)
                if not handshake.is_set():
                    lines.put(line)
            lines.put(None)

        threading.Thread(target=pump, name=f"keyplane-{proc.pid}-output", daemon=True).start()
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self.kill()
                raise RuntimeError(f"keyplane printed no 'listening on' line within {timeout}s:\n"
                                   + self.output())
            try:
                line = lines.get(timeout=remaining)
            except queue.Empty:
                continue
            if line is None:
                rc = proc.wait()
                raise RuntimeError(f"keyplane exited (rc {rc}) before listening:\n" + self.output())
            m = LISTEN_TLS_RE.search(line)
            if m:
                self.tls_port = int(m.group(2))
            m = LISTEN_RE.search(line)
            if m:
                handshake.set()
                self.port = int(m.group(2))
                assert Path(m.group(3)) == self.data_dir, line
                break
        RUNNING.append(self)
        return self

    def _forget(self):
        if self in RUNNING:
            RUNNING.remove(self)

    def stop(self, timeout: float = 15.0) -> int:
        """SIGTERM and wait for a clean exit; SIGKILL if it does not come. Returns the rc."""
        if self.proc is None or self.proc.poll() is not None:
            self._forget()
            return None if self.proc is None else self.proc.returncode
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            self._forget()
            raise AssertionError(f"keyplane did not stop within {timeout}s of SIGTERM:\n" + self.output())
        self._forget()
        return rc

    def kill(self) -> int:
        """SIGKILL (kill -9) without warning; returns the rc (-9)."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        rc = self.proc.wait() if self.proc is not None else None
        self._forget()
        return rc

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    # -- addresses
    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def endpoint(self) -> str:
        """The bare host:port the SDK wants."""
        return f"{self.host}:{self.port}"

    @property
    def tls_endpoint(self) -> str:
        """The bare host:port of the HTTPS listener."""
        assert self.tls_port is not None, "this server does not listen for HTTPS"
        return f"{self.host}:{self.tls_port}"

    @property
    def ca_path(self) -> Path:
        """The CA certificate the server created (trust it for HTTPS)."""
        return self.data_dir / "tls" / "ca.pem"

    # -- accounts
    def admin_credentials(self) -> dict:
        return json.loads((self.data_dir / "admin-credentials.json").read_text())

    def create_account(self, name: str | None = None) -> dict:
        """`keyplane account create NAME --data-dir DIR` (works while the server runs)."""
        name = name or f"acct{next(_names)}_{uuid.uuid4().hex[:8]}"
        out = subprocess.run([keyplane_bin(), "account", "create", name, "--data-dir", str(self.data_dir)],
                             capture_output=True, text=True, env=_server_env(), timeout=60)
        assert out.returncode == 0, f"account create {name} failed (rc {out.returncode}): {out.stderr}"
        creds = json.loads(out.stdout)
        for field in ("account", "account_id", "admin", "secret_id", "secret_key",
                      "access_key_id", "access_key_secret"):
            assert field in creds, f"`account create` output lacks {field}: {out.stdout}"
        assert creds["account"] == name
        return creds

    def rotate_credentials(self, name: str) -> dict:
        """`keyplane account rotate NAME --data-dir DIR` (works while the server runs)."""
        return account_command(["rotate", name, "--data-dir", str(self.data_dir)])

    def output(self, last: int = 80) -> str:
        return "\n".join(list(self.log)[-last:])


def account_command(args: list[str]) -> dict:
    """`keyplane account ARGS...`, which prints one account's credentials as JSON."""
    out = subprocess.run([keyplane_bin(), "account", *args], capture_output=True, text=True,
                         env=_server_env(), timeout=60)
    assert out.returncode == 0, f"account {args} failed (rc {out.returncode}): {out.stderr}"
    return json.loads(out.stdout)


def check_credentials(server: "KeyplaneServer", creds: dict, works: bool):
    """Sign with `creds` every way the official SDKs do (TC3, HmacSHA256 and HmacSHA1 with
    the Tencent SDK, RPC HMAC-SHA1 with aliyun-python-sdk-core, ACS3 with the Tea SDK): each
    call is served when `works`, else refused as an unknown SecretId or AccessKeyId."""
    import ecs  # noqa: PLC0415 - ecs imports this module

    for sign_method, req_method in (("TC3-HMAC-SHA256", "POST"), ("HmacSHA256", "GET"),
                                    ("HmacSHA1", "POST")):
        client = cvm(server, creds, sign_method, req_method)
        if works:
            assert describe(client).TotalCount >= 0
        else:
            expect_error(client, "AuthFailure.SecretIdNotFound", describe, client)
    calls = [lambda: ecs.Core(server, creds).call("DescribeKeyPairs"),
             lambda: ecs.tea_call(ecs.tea(server, creds), "DescribeKeyPairs", region_id=ecs.REGION)]
    for call in calls:
        if works:
            call()
        else:
            assert ecs.error_of(call) == (404, "InvalidAccessKeyId.NotFound")


# ----------------------------------------------------------------------------- SDK clients

@dataclass
class RawResponse:
    status: int
    headers: dict
    body: bytes

    def json(self):
        return json.loads(self.body)

    @classmethod
    def of(cls, resp) -> "RawResponse":
        """From a `requests` response."""
        return cls(resp.status_code, resp.headers, resp.content)


def _record_responses(client):
    """Keep every raw HTTP answer the SDK client receives in `client.raw_responses`."""
    client.raw_responses = []

    def hook(resp, *args, **kwargs):
        client.raw_responses.append(RawResponse(resp.status_code, resp.headers, resp.content))

    client.request.conn._session.hooks["response"].append(hook)
    return client


def profile(server: KeyplaneServer, sign_method="TC3-HMAC-SHA256", req_method="POST",
            language="en-US") -> ClientProfile:
    """Plain http to the bare host:port; language None keeps the SDK default (zh-CN)."""
    hp = HttpProfile(protocol="http", endpoint=server.endpoint, reqMethod=req_method, reqTimeout=30)
    if language is None:
        return ClientProfile(signMethod=sign_method, httpProfile=hp)
    return ClientProfile(signMethod=sign_method, httpProfile=hp, language=language)


def cvm(server, creds, sign_method="TC3-HMAC-SHA256", req_method="POST", *, token=None,
        secret_id=None, secret_key=None, region=REGION, language="en-US") -> cvm_client.CvmClient:
    """An official CvmClient for `creds` (a dict from `account create`) against `server`."""
    cred = credential.Credential(secret_id or creds["secret_id"], secret_key or creds["secret_key"], token)
    return _record_responses(cvm_client.CvmClient(cred, region, profile(server, sign_method, req_method, language)))


def common(server, creds, service="cvm", version=CVM_VERSION, sign_method="TC3-HMAC-SHA256",
           req_method="POST", region=REGION) -> CommonClient:
    """The generic client tccli is built on: `.call_json(action, params)`."""
    cred = credential.Credential(creds["secret_id"], creds["secret_key"])
    return _record_responses(CommonClient(service, version, cred, region,
                                          profile(server, sign_method, req_method)))


def check_error_envelope(resp: RawResponse, code: str, request_id=None):
    """A Tencent error: HTTP 200, Content-Type exactly application/json, Error.Code, RequestId."""
    assert resp.status == 200, f"API errors must be HTTP 200, got {resp.status}: {resp.body!r}"
    ct = resp.headers.get("Content-Type")
    assert ct == "application/json", (
        f"Content-Type must be exactly application/json (the SDK ignores errors otherwise), got {ct!r}")
    body = resp.json()
    assert set(body) == {"Response"}, f"the envelope is {{'Response': ...}} only: {body}"
    r = body["Response"]
    assert r.get("Error", {}).get("Code") == code, f"expected code {code}: {body}"
    assert isinstance(r["Error"].get("Message"), str) and r["Error"]["Message"], f"no Message: {body}"
    assert isinstance(r.get("RequestId"), str) and r["RequestId"], f"no RequestId: {body}"
    if request_id is not None:
        assert r["RequestId"] == request_id
    return r


def check_success_envelope(resp: RawResponse) -> dict:
    assert resp.status == 200, f"HTTP {resp.status}: {resp.body!r}"
    assert resp.headers.get("Content-Type") == "application/json", resp.headers.get("Content-Type")
    r = resp.json()["Response"]
    assert "Error" not in r, f"unexpected error: {r}"
    assert isinstance(r.get("RequestId"), str) and r["RequestId"], f"no RequestId: {r}"
    return r


def expect_error(client, code: str, fn, *args, **kwargs) -> TencentCloudSDKException:
    """Call `fn`; it must raise TencentCloudSDKException with exactly `code`, and the raw
    answer must be a well-formed Tencent error envelope."""
    seen = len(client.raw_responses)
    try:
        result = fn(*args, **kwargs)
    except TencentCloudSDKException as e:
        assert e.code == code, f"expected error code {code!r}, got {e.code!r}: {e.message}"
        assert len(client.raw_responses) == seen + 1, "expected exactly one HTTP exchange"
        check_error_envelope(client.raw_responses[-1], code, e.requestId)
        return e
    last = client.raw_responses[-1] if len(client.raw_responses) > seen else None
    raise AssertionError(f"expected error {code!r} but the call succeeded: {result!r}; raw answer: {last}")


# ----------------------------------------------------------------------------- CVM calls

def tag_specification(tags: dict) -> list:
    spec = models.TagSpecification()
    spec.ResourceType = "keypair"
    spec.Tags = []
    for k, v in tags.items():
        t = models.Tag()
        t.Key, t.Value = k, v
        spec.Tags.append(t)
    return [spec]


def create_key(client, name, project_id=0, tags=None):
    req = models.CreateKeyPairRequest()
    req.KeyName = name
    req.ProjectId = project_id
    if tags:
        req.TagSpecification = tag_specification(tags)
    return client.CreateKeyPair(req)


def import_key(client, name, public_key, project_id=0, tags=None) -> str:
    req = models.ImportKeyPairRequest()
    req.KeyName = name
    req.ProjectId = project_id
    req.PublicKey = public_key
    if tags:
        req.TagSpecification = tag_specification(tags)
    return client.ImportKeyPair(req).KeyId


def make_filter(name, values) -> models.Filter:
    f = models.Filter()
    f.Name, f.Values = name, list(values)
    return f


def describe(client, key_ids=None, filters=None, offset=None, limit=None):
    req = models.DescribeKeyPairsRequest()
    if key_ids is not None:
        req.KeyIds = list(key_ids)
    if filters is not None:
        req.Filters = [make_filter(n, v) for n, v in filters]
    if offset is not None:
        req.Offset = offset
    if limit is not None:
        req.Limit = limit
    return client.DescribeKeyPairs(req)


def describe_all(client, page=100) -> list:
    """Every key pair of the account, paging with Offset/Limit; checks TotalCount on the way."""
    out, offset, total = [], 0, None
    while True:
        resp = describe(client, offset=offset, limit=page)
        if total is None:
            total = resp.TotalCount
        assert resp.TotalCount == total, "TotalCount changed while paging"
        out.extend(resp.KeyPairSet)
        offset += page
        if offset >= total:
            break
    assert len(out) == total, f"paged {len(out)} key pairs, TotalCount says {total}"
    return out


def delete_keys(client, key_ids):
    req = models.DeleteKeyPairsRequest()
    req.KeyIds = list(key_ids)
    return client.DeleteKeyPairs(req)


def modify_key(client, key_id, name=None, description=None):
    req = models.ModifyKeyPairAttributeRequest()
    req.KeyId = key_id
    if name is not None:
        req.KeyName = name
    if description is not None:
        req.Description = description
    return client.ModifyKeyPairAttribute(req)


def unique_name(prefix="k") -> str:
    """A fresh valid CVM key name (letters, digits, underscore; at most 25 characters)."""
    return f"{prefix}_{uuid.uuid4().hex[:12]}"[:25]


# ----------------------------------------------------------------------------- OpenSSH keys

class KeyGen:
    """Fresh OpenSSH key pairs made by ssh-keygen in a private directory."""

    def __init__(self, directory: Path):
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self._n = itertools.count(1)
        self._lock = threading.Lock()

    def new(self, kind="ed25519", bits=None, comment=None) -> tuple[Path, str]:
        """(private key file, public key line)."""
        with self._lock:
            n = next(self._n)
        path = self.dir / f"{kind}-{bits or 'default'}-{n}"
        cmd = ["ssh-keygen", "-q", "-t", kind, "-N", "", "-C", comment or f"test{n}@keyplane", "-f", str(path)]
        if bits:
            cmd[4:4] = ["-b", str(bits)]
        subprocess.run(cmd, check=True, capture_output=True, stdin=subprocess.DEVNULL, timeout=60)
        return path, (path.with_name(path.name + ".pub")).read_text().strip()

    def public_keys(self, count, kind="ed25519") -> list[str]:
        from concurrent.futures import ThreadPoolExecutor
        with ThreadPoolExecutor(max_workers=4) as pool:
            return [pub for _, pub in pool.map(lambda _: self.new(kind), range(count))]


def key_blob(public_line: str) -> str:
    """The base64 part of an OpenSSH public key line."""
    parts = public_line.split()
    assert len(parts) >= 2, f"not an OpenSSH public key line: {public_line!r}"
    return parts[1]


def public_key_of_private(private_pem: str, directory: Path) -> str:
    """`ssh-keygen -y -f` on a private key: the public key line it derives."""
    path = Path(directory) / f"priv-{uuid.uuid4().hex}"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(private_pem if private_pem.endswith("\n") else private_pem + "\n")
    out = subprocess.run(["ssh-keygen", "-y", "-f", str(path)], capture_output=True, text=True,
                         stdin=subprocess.DEVNULL, timeout=60)
    assert out.returncode == 0, f"ssh-keygen cannot load the private key: {out.stderr}"
    return out.stdout.strip()


# ----------------------------------------------------------------------------- v1 signing

def v1_signed_params(host: str, params: dict, secret_key: str, method="GET", path="/",
                     sign_method="HmacSHA256") -> dict:
    """Tencent v1 signature, written from the algorithm (not SDK code): sort the parameters by
    key, join `k=v` with raw values, prefix METHOD+Host+Path+'?', HMAC, base64."""
    params = {k: str(v) for k, v in params.items()}
    params["SignatureMethod"] = sign_method
    plaintext = "%s%s%s?%s" % (method, host, path, "&".join(f"{k}={params[k]}" for k in sorted(params)))
    digest = hashlib.sha256 if sign_method == "HmacSHA256" else hashlib.sha1
    params["Signature"] = base64.b64encode(
        hmac.new(secret_key.encode(), plaintext.encode(), digest).digest()).decode()
    return params


def v1_query(host, params, secret_key, **kw) -> str:
    return urlencode(v1_signed_params(host, params, secret_key, **kw))
