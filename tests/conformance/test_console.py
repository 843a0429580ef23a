"""The web console in a real browser, and the read commands for people, against a real sandbox
instance with a key bound through the official CVM SDK.

Headless Chromium opens a one-time login URL from `keyplane console login-url`: the console
shows the instance, its bound key and its latest operation, and the built-in script has
brought the tables up to date from the live endpoint. The same link a second time, and the
console without one, show nothing of the account. Screenshots are kept under
target/console-screenshots/ (their paths are printed). `keyplane instances`, `keyplane keys`
and `keyplane ops wait` read the same state from the database.
"""
import json
import os
import re
import shutil
import subprocess
import uuid

import pytest

from sandbox import REPO, call, run_instances, start_sandbox_server, wait_settled
from support import _server_env, cvm, keyplane_bin

SHOTS = REPO / "target" / "console-screenshots"


def chromium() -> str:
    path = shutil.which("chromium")
    if not path:
        pytest.skip("chromium is missing (.ci/run installs Debian's chromium package)")
    return path


@pytest.fixture(scope="module")
def world():
    """A sandbox server, an account, a running instance with a key bound (SUCCESS)."""
    srv = start_sandbox_server()
    creds = srv.create_account()
    client = cvm(srv, creds)
    (iid,) = run_instances(client, name="console-web")
    kp = call(client, "CreateKeyPair", KeyName="console_key", ProjectId=0).KeyPair
    bind = call(client, "AssociateInstancesKeyPairs", InstanceIds=[iid], KeyIds=[kp.KeyId],
                ForceStop=True)
    yield {"srv": srv, "creds": creds, "client": client, "iid": iid, "key": kp, "bind": bind}
    assert srv.stop() == 0, srv.output()


def keyplane(world, *args, check=True, timeout=120) -> subprocess.CompletedProcess:
    cmd = [keyplane_bin(), *args, "--data-dir", str(world["srv"].data_dir)]
    out = subprocess.run(cmd, capture_output=True, text=True, env=_server_env(), timeout=timeout)
    if check:
        assert out.returncode == 0, f"{cmd} failed (rc {out.returncode}):\n{out.stdout}\n{out.stderr}"
    return out


def login_url(world) -> str:
    out = keyplane(world, "console", "login-url", "--account", world["creds"]["account"],
                   "--url", world["srv"].url)
    url = out.stdout.strip()
    assert re.fullmatch(re.escape(world["srv"].url) + r"/console/login\?token=[A-Za-z0-9]{48}", url), url
    return url


def browse(url: str, tmp_path, *, screenshot: str | None = None) -> str:
    """Open `url` in a fresh headless Chromium profile; the DOM after the scripts ran (with
    virtual time, so the page's polls complete), or with `screenshot`, the PNG's path."""
    profile = tmp_path / f"profile-{uuid.uuid4().hex[:8]}"
    cmd = [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
           "--no-first-run", "--disable-extensions", f"--user-data-dir={profile}",
           "--virtual-time-budget=5000"]
    if screenshot:
        SHOTS.mkdir(parents=True, exist_ok=True)
        path = SHOTS / screenshot
        if path.exists():
            path.unlink()
        cmd += ["--window-size=1600,1000", f"--screenshot={path}"]
    else:
        cmd += ["--dump-dom"]
    out = subprocess.run([*cmd, url], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, f"chromium failed (rc {out.returncode}): {out.stderr[-2000:]}"
    if screenshot:
        assert path.exists() and path.stat().st_size > 0, out.stderr[-2000:]
        print(f"console screenshot: {path}")
        return str(path)
    return out.stdout


def rows_of(dom: str, table_id: str) -> list[str]:
    m = re.search(rf'<table id="{table_id}">.*?<tbody[^>]*>(.*?)</tbody>', dom, re.S)
    assert m, f"no table {table_id} in:\n{dom[:3000]}"
    return re.findall(r"<tr[^>]*>(.*?)</tr>", m.group(1), re.S)


def cells(row: str) -> list[str]:
    return [re.sub(r"<[^>]+>", "", c) for c in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]


def test_the_console_shows_the_instance_its_key_and_latest_operation(world, tmp_path):
    iid, kp = world["iid"], world["key"]
    settled = wait_settled(world["client"], [iid])[iid]
    assert settled.LatestOperationState == "SUCCESS", settled.LatestOperationErrorMsg
    url = login_url(world)
    dom = browse(url, tmp_path)
    assert 'data-live="1"' in dom, "the built-in script updated the page:\n" + dom[:3000]
    assert world["creds"]["account"] in dom
    (row,) = [cells(r) for r in rows_of(dom, "instances-table") if iid in r]
    assert row[0] == iid and row[1] == "console-web"
    assert row[3] == "RUNNING"
    assert f"console_key ({kp.KeyId})" in row[5], row
    assert row[6] == "AssociateInstancesKeyPairs"
    assert row[7] == "SUCCESS"
    assert row[8] == world["bind"].RequestId
    (key_row,) = [cells(r) for r in rows_of(dom, "key-pairs-table") if kp.KeyId in r]
    assert key_row[1] == "console_key" and key_row[5] == iid
    assert key_row[3].startswith("SHA256:"), key_row
    # The sandbox's guest agent has asked for its SSH state.
    (agent,) = [cells(r) for r in rows_of(dom, "agents-table") if iid in r]
    assert agent[2] == "sandbox instance" and agent[6] != "never", agent
    # The audit trail names the bind: the instance, the key, its request id and outcome.
    (event,) = [cells(r) for r in rows_of(dom, "audit-table") if world["bind"].RequestId in r]
    assert event[1] == "AssociateInstancesKeyPairs" and event[2] == "cvm", event
    assert event[3] == "SUCCESS", event
    assert iid in event[4] and kp.KeyId in event[4], event
    assert event[5] == world["creds"]["secret_id"] and event[6].startswith("127."), event
    for secret in (world["creds"]["secret_key"], world["creds"]["access_key_secret"],
                   "PRIVATE KEY", url.split("token=")[1]):
        assert secret not in dom

    # The link was used: a second time it signs nobody in.
    again = browse(url, tmp_path)
    assert "This login link does not work" in again
    assert iid not in again and kp.KeyId not in again

    browse(login_url(world), tmp_path, screenshot="console-signed-in.png")
    assert url.split("token=")[1] not in world["srv"].output(4000), "a login token was logged"


def test_without_a_login_the_console_shows_nothing(world, tmp_path):
    base = world["srv"].url
    for url in (f"{base}/console/", f"{base}/console/login?token=nothing"):
        dom = browse(url, tmp_path)
        assert world["iid"] not in dom and world["key"].KeyId not in dom
        assert world["creds"]["account"] not in dom
        assert "Not signed in" in dom or "This login link does not work" in dom, dom[:2000]
    api = browse(f"{base}/console/api/overview", tmp_path)
    assert "not signed in" in api and world["iid"] not in api
    browse(f"{base}/console/", tmp_path, screenshot="console-signed-out.png")


def test_the_read_commands(world):
    iid, kp, name = world["iid"], world["key"], world["creds"]["account"]
    client = world["client"]
    # `ops wait` on the instance ids a call named, while the operation is in progress.
    r = call(client, "StopInstances", InstanceIds=[iid])
    out = keyplane(world, "ops", "wait", iid, "--account", name, "--timeout", "120")
    assert iid in out.stdout and "StopInstances" in out.stdout and "SUCCESS" in out.stdout, out.stdout
    inst = call(client, "DescribeInstances", InstanceIds=[iid]).InstanceSet[0]
    assert inst.InstanceState == "STOPPED" and inst.LatestOperationState == "SUCCESS"
    assert inst.LatestOperationRequestId == r.RequestId

    table = keyplane(world, "instances", "--account", name).stdout
    assert table.splitlines()[0].split()[:4] == ["ID", "NAME", "NS", "STATE"], table
    (line,) = [l for l in table.splitlines() if l.startswith(iid)]
    assert "STOPPED" in line and kp.KeyId in line and "SUCCESS" in line, line

    listed = json.loads(keyplane(world, "instances", "--account", name, "--output", "json").stdout)
    (mine,) = [i for i in listed if i["id"] == iid]
    assert mine["key_ids"] == [kp.KeyId] and mine["state"] == "STOPPED"
    assert mine["latest_operation"] == "StopInstances"
    assert "password_hash" not in json.dumps(listed)

    keys = json.loads(keyplane(world, "keys", "--account", name, "--output", "json").stdout)
    (key,) = [k for k in keys if k["id"] == kp.KeyId]
    assert key["instance_ids"] == [iid] and key["fingerprint_sha256"].startswith("SHA256:")
    assert kp.KeyId in keyplane(world, "keys", "--account", name).stdout

    # Another account sees none of it; an instance that is not the account's is refused.
    other = world["srv"].create_account()["account"]
    assert json.loads(keyplane(world, "instances", "--account", other, "--output", "json").stdout) == []
    refused = keyplane(world, "ops", "wait", iid, "--account", other, check=False)
    assert refused.returncode != 0 and f"has no instance `{iid}`" in refused.stderr, refused.stderr
    call(client, "StartInstances", InstanceIds=[iid])
    keyplane(world, "ops", "wait", iid, "--account", name)

    # `keyplane events`: the account's trail, newest first, as a table and as JSON.
    events = json.loads(keyplane(world, "events", "--account", name, "--output", "json").stdout)
    assert [e["action"] for e in events[:2]] == ["StartInstances", "StopInstances"], events[:3]
    (bind,) = [e for e in events if e["request_id"] == world["bind"].RequestId]
    assert bind["outcome"] == "SUCCESS" and bind["credential_id"] == world["creds"]["secret_id"]
    assert {r["id"] for r in bind["resources"]} == {iid, kp.KeyId}
    assert bind["source_ip"].startswith("127.") and bind["dialect"] == "cvm"
    table = keyplane(world, "events", "--account", name, "--resource", kp.KeyId).stdout
    assert table.splitlines()[0].split()[:3] == ["TIME", "DIALECT", "ACTION"], table
    assert world["bind"].RequestId in table and "StopInstances" not in table, table
    assert "CreateKeyPair" in table, table
    assert json.loads(keyplane(world, "events", "--account", other, "--output", "json").stdout) == []
    refused = keyplane(world, "events", "--refused", "--limit", "500", "--output", "json").stdout
    assert all(e["outcome"] not in ("SUCCESS", "OPERATING", "FAILED") for e in json.loads(refused))
    for secret in (world["creds"]["secret_key"], world["creds"]["access_key_secret"]):
        assert secret not in refused and secret not in json.dumps(events)
