"""Fixtures: the real `keyplane` binary started on 127.0.0.1:0 in a temporary data directory.

- `server` (module scope): a server with rate limiting off (`--rate-limit 0`) so functional
  tests can issue bursts; the rate limit has its own test with its own server.
- `start_server(*flags, data_dir=None)`: start more servers (other flags, or a restart on an
  existing data directory); every one still running is stopped at teardown.
- `account`: fresh credentials on `server` (`keyplane account create`).
- `keygen`: fresh OpenSSH keys from ssh-keygen.

Set KEYPLANE_BIN to the binary (scripts/test does); the default is target/debug/keyplane.
"""
import pytest

import support  # also clears HTTP(S)_PROXY for the clients
from support import KeyGen, KeyplaneServer


@pytest.fixture(scope="session")
def keyplane_bin():
    try:
        return support.keyplane_bin()
    except RuntimeError as e:
        pytest.exit(str(e), returncode=2)


@pytest.fixture(scope="module")
def server(keyplane_bin, tmp_path_factory):
    srv = KeyplaneServer(tmp_path_factory.mktemp("keyplane") / "data", ["--rate-limit", "0"]).start()
    yield srv
    rc = srv.stop()
    assert rc == 0, f"keyplane exited with rc {rc} on SIGTERM:\n{srv.output()}"


@pytest.fixture
def start_server(keyplane_bin, tmp_path_factory):
    """Factory: start_server("--rate-limit", "10", data_dir=None) -> a running KeyplaneServer."""
    started = []

    def start(*extra_args, data_dir=None):
        if data_dir is None:
            data_dir = tmp_path_factory.mktemp("keyplane") / "data"
        srv = KeyplaneServer(data_dir, extra_args).start()
        started.append(srv)
        return srv

    yield start
    for srv in started:
        if srv.running:
            srv.stop()


@pytest.fixture
def account(server):
    return server.create_account()


@pytest.fixture(scope="session")
def keygen(tmp_path_factory):
    return KeyGen(tmp_path_factory.mktemp("sshkeys"))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Attach the tail of every running server's output to a failed test's report."""
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        for srv in list(support.RUNNING):
            report.sections.append((f"keyplane {srv.url} output (last lines)", srv.output(60)))
