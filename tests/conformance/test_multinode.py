"""Several `keyplane serve` nodes on one PostgreSQL database: the same accounts and key pairs
on every node, nonces shared (a signed request is served once, whichever node it reaches),
every operation carried out by exactly one node, the admin account made once.

Runs against the PostgreSQL whose URL KEYPLANE_TEST_POSTGRES holds (`scripts/postgres-up`
prints one; scripts/test starts one when it is unset) with `psql` installed; each module run
uses a schema of its own, dropped afterwards. Skipped only with KEYPLANE_TEST_POSTGRES=skip. Every node and admin command is given the same master key file
(`--master-key-file`), as nodes sharing a database must be.
"""
import base64
import contextlib
import json
import os
import random
import re
import shutil
import subprocess
import tempfile
import threading
import time
import uuid
from urllib.parse import urlsplit

import pytest
import requests
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException

import support
from sandbox import call, wait_settled
from support import (
    REGION,
    KeyplaneServer,
    RawResponse,
    check_credentials,
    check_error_envelope,
    check_success_envelope,
    create_key,
    cvm,
    delete_keys,
    describe,
    expect_error,
    import_key,
    unique_name,
    v1_query,
)

PG = os.environ.get("KEYPLANE_TEST_POSTGRES", "")
if PG == "skip":
    pytestmark = pytest.mark.skip(reason="KEYPLANE_TEST_POSTGRES=skip")
elif not PG:
    pytest.fail("KEYPLANE_TEST_POSTGRES is not set: give it a PostgreSQL URL (scripts/postgres-up "
                "prints one), or `skip` to skip the multi-node tests", pytrace=False)
elif shutil.which("psql") is None:
    pytest.fail("psql is missing: install postgresql-client (the multi-node tests use it)", pytrace=False)

FINISHED_RE = re.compile(r"operation finished.* operation=(\d+)")


def psql(url, sql) -> list[list[str]]:
    out = subprocess.run(["psql", url, "-v", "ON_ERROR_STOP=1", "-qAt", "-F", "\t", "-c", sql],
                         capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert out.returncode == 0, f"psql failed: {out.stderr}"
    return [line.split("\t") for line in out.stdout.splitlines() if line]


#: The master key file every node on the test database shares (written by `database`).
KEY_FILE = os.path.join(tempfile.mkdtemp(prefix="kp-mn-key-"), "master.key")


def on_db(database) -> list[str]:
    """The flags that put a node or an admin command on the shared database."""
    return ["--database", database, "--master-key-file", KEY_FILE]


@pytest.fixture(scope="module")
def database():
    """A URL whose connections use a fresh schema (dropped at the end), and the master key file
    the nodes on it share."""
    fd = os.open(KEY_FILE, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.write(fd, base64.b64encode(os.urandom(32)) + b"\n")
    os.close(fd)
    with fresh_schema() as url:
        yield url
    os.unlink(KEY_FILE)


@pytest.fixture
def own_database(database):
    """A database of the test's own (a fresh schema, dropped at the end; the module's master
    key file): no node of another test, such as the module's `nodes`, works on it."""
    with fresh_schema() as url:
        yield url


@contextlib.contextmanager
def fresh_schema():
    """A URL whose connections use a fresh schema, dropped when the block ends."""
    schema = f"kp_conf_{uuid.uuid4().hex[:12]}"
    psql(PG, f"CREATE SCHEMA {schema}")
    sep = "&" if "?" in PG else "?"
    try:
        yield f"{PG}{sep}options=-c%20search_path%3D{schema}"
    finally:
        psql(PG, f"DROP SCHEMA {schema} CASCADE")


def start_together(servers):
    """Start the servers at the same moment (migrations and the admin account race)."""
    errors = []

    def start(srv):
        try:
            srv.start()
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=start, args=(s,)) for s in servers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    return servers


@pytest.fixture(scope="module")
def nodes(keyplane_bin, database, tmp_path_factory):
    a, b = start_together([
        KeyplaneServer(tmp_path_factory.mktemp("node-a") / "data", ["--rate-limit", "0", *on_db(database)]),
        KeyplaneServer(tmp_path_factory.mktemp("node-b") / "data", ["--rate-limit", "0", *on_db(database)]),
    ])
    yield a, b
    for srv in (a, b):
        rc = srv.stop()
        assert rc == 0, f"keyplane exited with rc {rc} on SIGTERM:\n{srv.output()}"


def account_create(database, name=None) -> dict:
    """`keyplane account create NAME --database URL`: no server and no data directory needed."""
    name = name or f"mn_{uuid.uuid4().hex[:10]}"
    out = subprocess.run([support.keyplane_bin(), "account", "create", name, *on_db(database)],
                         capture_output=True, text=True, env=support._server_env(), timeout=60)
    assert out.returncode == 0, f"account create failed: {out.stderr}"
    return json.loads(out.stdout)


def test_nodes_start_together_and_make_one_admin(nodes, database):
    a, b = nodes
    holders = [n for n in nodes if (n.data_dir / "admin-credentials.json").exists()]
    assert len(holders) == 1, "exactly one node creates the admin account and keeps its file"
    admin = holders[0].admin_credentials()
    for node in nodes:
        assert describe(cvm(node, admin)).TotalCount == 0, "the admin account works on every node"
    versions = [int(r[0]) for r in psql(database, "SELECT version FROM schema_migrations ORDER BY 1")]
    assert versions == list(range(1, len(versions) + 1)) and len(versions) >= 4, versions
    password = urlsplit(PG).password
    for node in nodes:
        said = [line for line in node.log if not line.startswith("$ ")]  # not our command line
        shown = [line for line in said if line.startswith("keyplane: database postgres")]
        assert len(shown) == 1, node.output()
        if password:
            assert ":***@" in shown[0], shown[0]
            assert not [line for line in said if f":{password}@" in line], "the password was logged"


def test_accounts_and_key_pairs_are_the_same_on_every_node(nodes, database, keygen):
    a, b = nodes
    creds = account_create(database)
    ca, cb = cvm(a, creds), cvm(b, creds)

    made = create_key(ca, unique_name("ab"), tags={"env": "ci"}).KeyPair
    seen = describe(cb, key_ids=[made.KeyId]).KeyPairSet
    assert [(k.KeyId, k.KeyName, k.PublicKey) for k in seen] == [(made.KeyId, made.KeyName, made.PublicKey)]
    expect_error(cb, "InvalidKeyPairName.Duplicate", create_key, cb, made.KeyName)

    _, pub = keygen.new("ed25519")
    imported = import_key(cb, unique_name("ba"), pub)
    expect_error(ca, "InvalidPublicKey.Duplicate", import_key, ca, unique_name("again"), pub)
    assert describe(ca).TotalCount == 2
    delete_keys(ca, [imported])
    expect_error(cb, "InvalidKeyPairId.NotFound", delete_keys, cb, [imported])
    assert [k.KeyId for k in describe(cb).KeyPairSet] == [made.KeyId]

    # an account made on node B's side is isolated on node A too
    other = cvm(a, account_create(database))
    assert describe(other).TotalCount == 0
    expect_error(other, "InvalidKeyPairId.NotFound", delete_keys, other, [made.KeyId])


def test_a_signed_request_is_served_once_whichever_node_it_reaches(nodes, database):
    a, b = nodes
    creds = account_create(database)
    params = {"Action": "DescribeKeyPairs", "Version": "2017-03-12", "Region": REGION,
              "Timestamp": int(time.time()), "Nonce": random.randint(1, 2**31),
              "SecretId": creds["secret_id"]}
    first = v1_query(a.endpoint, params, creds["secret_key"])
    check_success_envelope(RawResponse.of(requests.get(f"{a.url}/?{first}", timeout=30)))
    # The signature covers the Host, so sign the same Timestamp and Nonce for node B: the
    # signature is right, and the pair is refused because node A already saw it.
    replay = v1_query(b.endpoint, params, creds["secret_key"])
    check_error_envelope(RawResponse.of(requests.get(f"{b.url}/?{replay}", timeout=30)),
                         "AuthFailure.SignatureFailure")
    fresh = dict(params, Nonce=params["Nonce"] + 1)
    query = v1_query(b.endpoint, fresh, creds["secret_key"])
    check_success_envelope(RawResponse.of(requests.get(f"{b.url}/?{query}", timeout=30)))


def test_a_rotated_credential_stops_working_on_every_node_at_once(nodes, database):
    """`keyplane account rotate` on the shared database while both nodes hold the credentials
    in memory: when it returns, both refuse the old ones and take the new ones."""
    old = account_create(database)
    for node in nodes:
        check_credentials(node, old, works=True)
    new = support.account_command(["rotate", old["account"], *on_db(database)])
    assert new["account_id"] == old["account_id"] and new["secret_id"] != old["secret_id"]
    for node in nodes:
        check_credentials(node, old, works=False)
        check_credentials(node, new, works=True)


def test_every_operation_is_carried_out_by_exactly_one_node(nodes, database):
    a, b = nodes
    creds = account_create(database)
    clients = [cvm(a, creds), cvm(b, creds)]
    ids = []
    for i, c in enumerate(clients * 2):  # Windows images are records: no sandbox needed
        r = call(c, "RunInstances", ImageId="img-kpwin22x", Placement={"Zone": "ap-guangzhou-3"},
                 InstanceCount=5, InstanceName=f"mn{i}", LoginSettings={"Password": "Kp-Passw0rd!"})
        ids.extend(r.InstanceIdSet)
    settled = wait_settled(clients[0], ids)
    assert {i.LatestOperationState for i in settled.values()} == {"SUCCESS"}
    for round_ in range(3):
        for n, iid in enumerate(ids):
            c = clients[(n + round_) % 2]
            call(c, "StopInstances", InstanceIds=[iid], StopType="HARD")
        wait_settled(clients[1], ids)
        for n, iid in enumerate(ids):
            call(clients[(n + round_ + 1) % 2], "StartInstances", InstanceIds=[iid])
        settled = wait_settled(clients[0], ids)
        assert {i.InstanceState for i in settled.values()} == {"RUNNING"}

    rows = psql(database, f"SELECT id, state FROM operations WHERE account_id = '{creds['account_id']}'")
    assert len(rows) == len(ids) * 7
    assert {state for _, state in rows} == {"SUCCESS"}
    ours = {int(op_id) for op_id, _ in rows}
    done_by = {}
    for node in nodes:
        for line in node.log:
            m = FINISHED_RE.search(line)
            if m and int(m.group(1)) in ours:
                done_by.setdefault(int(m.group(1)), []).append(node.url)
    assert set(done_by) == ours, "every operation was carried out"
    twice = {op: by for op, by in done_by.items() if len(by) > 1}
    assert not twice, f"operations carried out more than once: {twice}"
    # each node's worker is woken by the calls it serves, so both take their share
    for node in nodes:
        assert any(by == [node.url] for by in done_by.values()), f"{node.url} carried out nothing"
    for node in nodes:
        assert not [line for line in node.log if "cannot claim" in line or "lost the claim" in line]


def test_each_node_enforces_the_rate_limit_on_its_own(database, start_server):
    """The limiter is in memory, per node (see the README): a burst that node A refuses is
    still served by node B."""
    a = start_server("--rate-limit", "5", *on_db(database))
    b = start_server("--rate-limit", "5", *on_db(database))
    creds = account_create(database)
    ca, cb = cvm(a, creds), cvm(b, creds)
    refused = 0
    for _ in range(20):
        try:
            describe(ca)
        except TencentCloudSDKException as e:
            assert e.code == "RequestLimitExceeded", e
            refused += 1
    assert refused >= 1, "node A limits a burst"
    assert describe(cb).TotalCount == 0, "node B has its own budget"


def register_host(node, database, account_name, n) -> tuple[str, str]:
    token = subprocess.run([support.keyplane_bin(), "agent-token", "create", "--account", account_name,
                            *on_db(database)], capture_output=True, text=True, timeout=60,
                           env=support._server_env())
    assert token.returncode == 0, token.stderr
    r = requests.post(f"{node.url}/keyplane/agent/v1/register", timeout=30, json={
        "token": token.stdout.strip(), "hostname": f"killhost{n}", "address": f"127.4.{n // 250}.{n % 250 + 1}"})
    assert r.status_code == 200, r.text
    return r.json()["instance_id"], r.json()["agent_token"]


def test_a_killed_node_loses_no_operation_and_applies_none_twice(database, tmp_path_factory):
    """Bind operations wait for the hosts' agents; the node that claimed them is killed mid-way;
    the other node finishes every one of them, and each host's keys changed exactly once."""
    a = KeyplaneServer(tmp_path_factory.mktemp("kill-a") / "data", ["--rate-limit", "0", *on_db(database)])
    b = KeyplaneServer(tmp_path_factory.mktemp("kill-b") / "data", ["--rate-limit", "0", *on_db(database)])
    start_together([a, b])
    try:
        creds = account_create(database)
        hosts = [register_host(a, database, creds["account"], n) for n in range(6)]
        key_id = create_key(cvm(a, creds), unique_name("kill")).KeyPair.KeyId
        release = threading.Event()
        reported = {}

        def simulated_agent(iid, token):
            """Polls the surviving node; reports a change only once released."""
            after = 0
            while after < 1:
                r = requests.get(f"{b.url}/keyplane/agent/v1/instances/{iid}/ssh-state",
                                 params={"after": after, "wait": 2}, timeout=30,
                                 headers={"Authorization": f"Bearer {token}"})
                generation = r.json()["generation"]
                if generation > after:
                    release.wait(60)
                    requests.post(f"{b.url}/keyplane/agent/v1/instances/{iid}/report", timeout=30,
                                  headers={"Authorization": f"Bearer {token}"},
                                  json={"generation": generation, "ok": True, "message": ""})
                    reported[iid] = generation
                    after = generation

        agents = [threading.Thread(target=simulated_agent, args=h, daemon=True) for h in hosts]
        for t in agents:
            t.start()
        ids = [iid for iid, _ in hosts]
        call(cvm(a, creds), "AssociateInstancesKeyPairs", InstanceIds=ids, KeyIds=[key_id])
        # Wait until every operation has recorded its bindings (step 3) under a claim.
        deadline = time.monotonic() + 30
        while True:
            rows = psql(database, "SELECT count(*) FROM operations WHERE action = 'AssociateInstancesKeyPairs' "
                                  f"AND account_id = '{creds['account_id']}' AND step >= 3")
            if int(rows[0][0]) == len(ids):
                break
            assert time.monotonic() < deadline, "operations did not start"
            time.sleep(0.05)
        by_a = psql(database, "SELECT count(*) FROM operations WHERE action = 'AssociateInstancesKeyPairs' "
                              f"AND account_id = '{creds['account_id']}' AND claimed_by LIKE 'worker-{a.proc.pid}-%'")
        assert int(by_a[0][0]) > 0, "node A, which serves the call, claimed some of the operations"
        a.kill()
        release.set()
        settled = wait_settled(cvm(b, creds), ids, timeout=60)
        for iid, inst in settled.items():
            assert inst.LatestOperationState == "SUCCESS", (iid, inst.LatestOperationErrorMsg)
            assert inst.LoginSettings.KeyIds == [key_id]
        rows = psql(database, "SELECT desired_generation, applied_generation FROM instances "
                              f"WHERE account_id = '{creds['account_id']}'")
        assert rows and all(r == ["1", "1"] for r in rows), f"each host's keys changed exactly once: {rows}"
        ops = psql(database, "SELECT state FROM operations WHERE action = 'AssociateInstancesKeyPairs' "
                             f"AND account_id = '{creds['account_id']}'")
        assert [s for (s,) in ops] == ["SUCCESS"] * len(ids)
        assert reported == {iid: 1 for iid in ids}
    finally:
        for srv in (a, b):
            if srv.running:
                srv.stop()


def test_sandbox_instances_are_operated_by_the_node_that_holds_them(own_database):
    """Two nodes, each with its own sandbox: whichever node a call reaches, an instance's
    operations are carried out by the node its sandbox lives on. The two are alone on their
    database: the module's other nodes (as root, each with a sandbox of its own) would take
    some of the launches otherwise."""
    database = own_database
    from sandbox import logged_in, password_login, require_sandbox, run_instances, sandbox_args, sandbox_data_dir
    require_sandbox()
    a = KeyplaneServer(sandbox_data_dir(), sandbox_args(*on_db(database)))
    b = KeyplaneServer(sandbox_data_dir(), sandbox_args(*on_db(database)))
    start_together([a, b])
    try:
        creds = account_create(database)
        ids = run_instances(cvm(a, creds), count=4) + run_instances(cvm(b, creds), count=4)
        for round_, (stopper, starter) in enumerate([(a, b), (b, a)]):
            call(cvm(stopper, creds), "StopInstances", InstanceIds=ids)
            settled = wait_settled(cvm(starter, creds), ids)
            assert {i.LatestOperationState for i in settled.values()} == {"SUCCESS"}, settled
            assert {i.InstanceState for i in settled.values()} == {"STOPPED"}
            for inst in settled.values():
                assert not logged_in(password_login(inst)), f"round {round_}: really stopped"
            call(cvm(starter, creds), "StartInstances", InstanceIds=ids)
            settled = wait_settled(cvm(stopper, creds), ids)
            assert {i.LatestOperationState for i in settled.values()} == {"SUCCESS"}, settled
            for inst in settled.values():
                assert logged_in(password_login(inst)), f"round {round_}: {inst.InstanceId} is back"
        owners = psql(database, f"SELECT DISTINCT sandbox_owner FROM instances WHERE account_id = '{creds['account_id']}'")
        assert all(o for (o,) in owners) and 1 <= len(owners) <= 2, owners
    finally:
        for srv in (a, b):
            if srv.running:
                srv.stop()
