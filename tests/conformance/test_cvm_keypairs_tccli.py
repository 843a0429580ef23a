"""CVM key-pair actions through the `tccli` command line from the venv, against the real server.

tccli always signs TC3-HMAC-SHA256 over a POST JSON body, and reaches plain HTTP only with an
endpoint that carries the scheme, so every request here has `Host: http://127.0.0.1:PORT`.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from support import REGION, key_blob, public_key_of_private, unique_name

TCCLI = str(Path(sys.executable).with_name("tccli"))


class Tccli:
    """Runs tccli with an isolated HOME; credentials from the environment unless `env_creds`
    is False (then ~/.tccli from `tccli configure set` is what it uses)."""

    def __init__(self, server, creds, home: Path, env_creds=True):
        self.server = server
        self.home = home
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("TENCENTCLOUD_")}
        self.env["HOME"] = str(home)
        if env_creds:
            self.env.update(TENCENTCLOUD_SECRET_ID=creds["secret_id"],
                            TENCENTCLOUD_SECRET_KEY=creds["secret_key"],
                            TENCENTCLOUD_REGION=REGION)

    def run(self, *args, endpoint=True, check=True):
        cmd = [TCCLI, *args]
        if endpoint:
            cmd += ["--endpoint", self.server.url]
        proc = subprocess.run(cmd, capture_output=True, text=True, env=self.env, cwd=self.home,
                              stdin=subprocess.DEVNULL, timeout=120)
        if check:
            assert proc.returncode == 0, (f"{' '.join(args)} exited {proc.returncode}\n"
                                          f"stdout: {proc.stdout}\nstderr: {proc.stderr}")
        return proc

    def json(self, *args, **kw):
        proc = self.run(*args, **kw)
        try:
            return json.loads(proc.stdout)
        except ValueError:
            raise AssertionError(f"tccli {' '.join(args)} did not print JSON: {proc.stdout!r} {proc.stderr!r}")


@pytest.fixture
def tccli(server, account, tmp_path):
    assert os.access(TCCLI, os.X_OK), f"tccli not found next to {sys.executable}"
    home = tmp_path / "home"
    home.mkdir()
    return Tccli(server, account, home)


def test_create_prints_a_working_private_key(tccli, tmp_path):
    name = unique_name("cli")
    out = tccli.json("cvm", "CreateKeyPair", "--KeyName", name, "--ProjectId", "0")
    kp = out["KeyPair"]
    assert kp["KeyName"] == name and kp["KeyId"].startswith("skey-")
    assert out.get("RequestId")
    assert "PRIVATE KEY-----" in (kp.get("PrivateKey") or ""), "CreateKeyPair output must carry PrivateKey"
    derived = public_key_of_private(kp["PrivateKey"], tmp_path)
    assert key_blob(derived) == key_blob(kp["PublicKey"])

    described = tccli.json("cvm", "DescribeKeyPairs", "--KeyIds", json.dumps([kp["KeyId"]]))
    assert [k["KeyId"] for k in described["KeyPairSet"]] == [kp["KeyId"]]
    assert not described["KeyPairSet"][0].get("PrivateKey"), "DescribeKeyPairs must not return PrivateKey"


def test_import_describe_modify_delete(tccli, keygen):
    pubs = [keygen.new("ed25519")[1], keygen.new("ecdsa", 256)[1]]
    names = [unique_name("cli_a"), unique_name("cli_b")]
    ids = [tccli.json("cvm", "ImportKeyPair", "--KeyName", n, "--ProjectId", "3", "--PublicKey", p)["KeyId"]
           for n, p in zip(names, pubs)]

    # jsonargs form
    d = tccli.json("cvm", "DescribeKeyPairs", "--KeyIds", json.dumps(ids))
    assert d["TotalCount"] == 2
    assert {k["KeyId"]: key_blob(k["PublicKey"]) for k in d["KeyPairSet"]} == \
        {i: key_blob(p) for i, p in zip(ids, pubs)}
    assert all(k["ProjectId"] == 3 for k in d["KeyPairSet"])
    # --cli-unfold-argument form
    d = tccli.json("cvm", "DescribeKeyPairs", "--cli-unfold-argument", "--KeyIds", *ids)
    assert sorted(k["KeyId"] for k in d["KeyPairSet"]) == sorted(ids)
    d = tccli.json("cvm", "DescribeKeyPairs", "--cli-unfold-argument",
                   "--Filters.0.Name", "key-name", "--Filters.0.Values", names[1], "--Limit", "5")
    assert [k["KeyId"] for k in d["KeyPairSet"]] == [ids[1]]
    d = tccli.json("cvm", "DescribeKeyPairs", "--Filters", json.dumps([{"Name": "project-id", "Values": ["3"]}]),
                   "--Offset", "1", "--Limit", "1")
    assert d["TotalCount"] == 2 and len(d["KeyPairSet"]) == 1

    new_name = unique_name("cli_renamed")
    out = tccli.json("cvm", "ModifyKeyPairAttribute", "--KeyId", ids[0], "--KeyName", new_name,
                     "--Description", "set by tccli")
    assert out.get("RequestId")
    (kp,) = tccli.json("cvm", "DescribeKeyPairs", "--KeyIds", json.dumps([ids[0]]))["KeyPairSet"]
    assert (kp["KeyName"], kp["Description"]) == (new_name, "set by tccli")

    out = tccli.json("cvm", "DeleteKeyPairs", "--KeyIds", json.dumps(ids))
    assert out.get("RequestId")
    assert tccli.json("cvm", "DescribeKeyPairs")["TotalCount"] == 0


def test_error_exits_255_with_the_code(tccli):
    proc = tccli.run("cvm", "DeleteKeyPairs", "--KeyIds", '["skey-00000000"]', check=False)
    assert proc.returncode == 255, f"rc {proc.returncode}; stdout {proc.stdout!r}; stderr {proc.stderr!r}"
    assert "code:InvalidKeyPairId.NotFound" in proc.stderr, proc.stderr
    assert "requestId:" in proc.stderr and "requestId:None" not in proc.stderr, proc.stderr

    proc = tccli.run("cvm", "ImportKeyPair", "--KeyName", "bad key", "--ProjectId", "0",
                     "--PublicKey", "ssh-ed25519 AAAA", check=False)
    assert proc.returncode == 255 and "code:InvalidKeyPairNameIncludeIllegalChar" in proc.stderr, proc.stderr


def test_wrong_secret_key_exits_255(server, account, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    cli = Tccli(server, dict(account, secret_key="X" * len(account["secret_key"])), home)
    proc = cli.run("cvm", "DescribeKeyPairs", check=False)
    assert proc.returncode == 255 and "code:AuthFailure.SignatureFailure" in proc.stderr, proc.stderr


def test_configure_set_file_config(server, account, tmp_path, keygen):
    home = tmp_path / "home"
    home.mkdir()
    cli = Tccli(server, account, home, env_creds=False)
    cli.run("configure", "set", "secretId", account["secret_id"], "secretKey", account["secret_key"],
            "region", REGION, "cvm.endpoint", server.url, endpoint=False)
    conf = json.loads((home / ".tccli" / "default.configure").read_text())
    assert conf["cvm"]["endpoint"] == server.url, conf

    name = unique_name("cfg")
    key_id = cli.json("cvm", "ImportKeyPair", "--KeyName", name, "--ProjectId", "0",
                      "--PublicKey", keygen.new("ed25519")[1], endpoint=False)["KeyId"]
    d = cli.json("cvm", "DescribeKeyPairs", endpoint=False)
    assert [(k["KeyId"], k["KeyName"]) for k in d["KeyPairSet"]] == [(key_id, name)]
    proc = cli.run("cvm", "ModifyKeyPairAttribute", "--KeyId", "skey-00000000", "--Description", "x",
                   endpoint=False, check=False)
    assert proc.returncode == 255 and "code:InvalidKeyPairId.NotFound" in proc.stderr, proc.stderr
