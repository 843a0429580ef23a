"""Durability of the real server: every write it acknowledged survives `kill -9` and a restart
on the same data directory, a clean SIGTERM restart keeps everything, and the database stays
consistent."""
import random
import sqlite3
import threading
import time

import requests
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException

from support import (
    REGION,
    RawResponse,
    check_error_envelope,
    check_success_envelope,
    create_key,
    cvm,
    delete_keys,
    describe,
    describe_all,
    import_key,
    key_blob,
    modify_key,
    unique_name,
    v1_query,
)

KEYS_PER_WRITER = 150
KILL_AFTER_ACKS = 40


def snapshot(key_pairs):
    """The stored fields of key pairs, comparable across restarts."""
    return {k.KeyId: (k.KeyName, k.Description, k.ProjectId, k.PublicKey, k.CreatedTime,
                      sorted((t.Key, t.Value) for t in (k.Tags or [])))
            for k in key_pairs}


def integrity_check(data_dir):
    db = data_dir / "keyplane.db"
    assert db.is_file(), f"no database at {db}"
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    finally:
        conn.close()


class Writer(threading.Thread):
    """Imports key pairs one after another; records each KeyId the server acknowledged."""

    def __init__(self, server, creds, public_keys):
        super().__init__(daemon=True)
        self.client = cvm(server, creds)
        self.public_keys = public_keys
        self.sent = {}  # KeyName -> public key line
        self.acked = {}  # KeyId -> (KeyName, public key line)
        self.network_error = None
        self.api_errors = []

    def run(self):
        for i, pub in enumerate(self.public_keys):
            name = f"dur_{i:03d}"
            self.sent[name] = pub
            try:
                key_id = import_key(self.client, name, pub)
            except TencentCloudSDKException as e:
                if e.code == "ClientNetworkError":  # the server is gone
                    self.network_error = e
                else:
                    self.api_errors.append(f"{e.code}: {e.message}")
                return
            self.acked[key_id] = (name, pub)


def test_kill_9_while_writing_keeps_every_acknowledged_key(start_server, keygen):
    srv = start_server("--rate-limit", "0")
    accounts = [srv.create_account() for _ in range(2)]
    writers = [Writer(srv, creds, keygen.public_keys(KEYS_PER_WRITER)) for creds in accounts]
    for w in writers:
        w.start()

    deadline = time.monotonic() + 60
    while sum(len(w.acked) for w in writers) < KILL_AFTER_ACKS:
        assert time.monotonic() < deadline, "the writers made no progress"
        assert all(w.is_alive() for w in writers), [w.api_errors for w in writers]
        time.sleep(0.002)
    rc = srv.kill()
    assert rc == -9, f"the server must have died of SIGKILL, rc {rc}"
    for w in writers:
        w.join(60)
        assert not w.is_alive(), "a writer hung after the server died"
        assert w.api_errors == [], f"unexpected API errors before the kill: {w.api_errors}"
        assert w.network_error is not None and len(w.acked) < KEYS_PER_WRITER, \
            "the kill must land while the writer is still writing"

    restarted = start_server("--rate-limit", "0", data_dir=srv.data_dir)
    for creds, w in zip(accounts, writers):
        c = cvm(restarted, creds)
        present = {k.KeyId: k for k in describe_all(c)}
        lost = sorted(set(w.acked) - set(present))
        assert lost == [], f"acknowledged key pairs lost after kill -9: {lost}"
        for key_id, (name, pub) in w.acked.items():
            assert present[key_id].KeyName == name
            assert key_blob(present[key_id].PublicKey) == key_blob(pub)
        unacked = set(present) - set(w.acked)
        # one writer has at most one call in flight when the server dies
        assert len(unacked) <= 1, f"key pairs nobody wrote: {unacked}"
        for key_id in unacked:
            assert w.sent.get(present[key_id].KeyName) is not None
        # the store still takes writes, and refuses a name the survivors hold
        import_key(c, unique_name("after"), keygen.new("ed25519")[1])
    rc = restarted.stop()
    assert rc == 0, f"the restarted server exited {rc} on SIGTERM"
    integrity_check(srv.data_dir)


def test_sigterm_restart_keeps_everything(start_server, keygen):
    srv = start_server("--rate-limit", "0")
    admin_before = srv.admin_credentials()
    creds = srv.create_account()
    c = cvm(srv, creds)
    created = create_key(c, unique_name("created"), project_id=2, tags={"env": "prod"}).KeyPair
    imported = import_key(c, unique_name("imported"), keygen.new("ed25519")[1], tags={"team": "x"})
    doomed = import_key(c, unique_name("doomed"), keygen.new("ecdsa", 256)[1])
    modify_key(c, imported, description="kept across restarts")
    delete_keys(c, [doomed])
    before = snapshot(describe_all(c))
    assert set(before) == {created.KeyId, imported}

    # a v1 request signed and served before the restart
    params = {"Action": "DescribeKeyPairs", "Version": "2017-03-12", "Region": REGION,
              "Timestamp": int(time.time()), "Nonce": random.randint(1, 2**31),
              "SecretId": creds["secret_id"]}
    query = v1_query(srv.endpoint, params, creds["secret_key"])
    check_success_envelope(RawResponse.of(requests.get(f"{srv.url}/?{query}", timeout=30)))

    rc = srv.stop()
    assert rc == 0, f"keyplane exited {rc} on SIGTERM:\n{srv.output()}"
    integrity_check(srv.data_dir)

    restarted = start_server("--rate-limit", "0", data_dir=srv.data_dir)
    assert restarted.admin_credentials() == admin_before, "a restart must not recreate the admin account"
    c = cvm(restarted, creds)
    assert snapshot(describe_all(c)) == before, "key pairs changed across a clean restart"
    admin = cvm(restarted, admin_before)
    assert describe(admin).TotalCount == 0, "the admin account must still authenticate"

    # the nonce is remembered across the restart (the port changed, so re-sign for the new Host
    # with the same Timestamp and Nonce; the server refuses the pair, not the signature)
    replay = v1_query(restarted.endpoint, params, creds["secret_key"])
    check_error_envelope(RawResponse.of(requests.get(f"{restarted.url}/?{replay}", timeout=30)),
                         "AuthFailure.SignatureFailure")
