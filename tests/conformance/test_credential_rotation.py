"""`keyplane account rotate` while the server runs (SQLite; the admin command is a process of its
own): as soon as the command returns, the old credentials are refused by every signature the
official SDKs make, the new ones work, and the account keeps what it holds. The same on two
nodes over PostgreSQL is in test_multinode.py."""
import os
import subprocess

import support
from support import check_credentials, create_key, cvm, describe, unique_name


def test_rotated_credentials_are_refused_at_once(server):
    old = server.create_account()
    key_id = create_key(cvm(server, old), unique_name("rot")).KeyPair.KeyId
    check_credentials(server, old, works=True)  # the server now holds them in memory
    new = server.rotate_credentials(old["account"])
    assert (new["account"], new["account_id"], new["admin"]) == \
        (old["account"], old["account_id"], old["admin"])
    for field in ("secret_id", "secret_key", "access_key_id", "access_key_secret"):
        assert new[field] != old[field], field
    check_credentials(server, old, works=False)
    check_credentials(server, new, works=True)
    assert [k.KeyId for k in describe(cvm(server, new)).KeyPairSet] == [key_id]
    shown = support.account_command(["credentials", old["account"], "--data-dir", str(server.data_dir)])
    assert shown == new

    # Twice in a row: the first new credentials go too.
    newer = server.rotate_credentials(old["account"])
    check_credentials(server, new, works=False)
    check_credentials(server, newer, works=True)


def test_rotating_an_unknown_account_fails_and_changes_nothing(server):
    creds = server.create_account()
    out = subprocess.run([support.keyplane_bin(), "account", "rotate", "no-such-account",
                          "--data-dir", str(server.data_dir)],
                         capture_output=True, text=True, env=support._server_env(), timeout=60)
    assert out.returncode != 0
    assert "no account named `no-such-account`" in out.stderr, out.stderr
    check_credentials(server, creds, works=True)


def test_rotating_the_admin_updates_its_credentials_file(server):
    before = server.admin_credentials()
    check_credentials(server, before, works=True)
    new = server.rotate_credentials("admin")
    assert server.admin_credentials() == new
    assert os.stat(server.data_dir / "admin-credentials.json").st_mode & 0o777 == 0o600
    check_credentials(server, before, works=False)
    check_credentials(server, new, works=True)
