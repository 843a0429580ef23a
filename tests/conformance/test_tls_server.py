"""`keyplane serve` over HTTPS: the CA made once in the data directory and kept across
restarts, private keys 0600, `keyplane tls ca-path`, HTTPS turned off, and an operator's own
certificate and key instead of the server's CA."""
import stat
import subprocess

import pytest
from tencentcloud.common import credential
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile
from tencentcloud.cvm.v20170312 import cvm_client, models

import support


def describe_over_https(srv, creds, ca):
    hp = HttpProfile(protocol="https", endpoint=f"localhost:{srv.tls_port}", reqTimeout=30,
                     certification=str(ca))
    client = cvm_client.CvmClient(credential.Credential(creds["secret_id"], creds["secret_key"]),
                                  support.REGION, ClientProfile(httpProfile=hp))
    return client.DescribeKeyPairs(models.DescribeKeyPairsRequest()).TotalCount


def mode(path):
    return stat.S_IMODE(path.stat().st_mode)


def test_the_ca_is_made_once_and_printed_by_ca_path(start_server):
    srv = start_server("--rate-limit", "0")
    tls = srv.data_dir / "tls"
    assert srv.tls_port is not None
    assert f"listening on https://127.0.0.1:{srv.tls_port} (CA {tls / 'ca.pem'})" in srv.output()
    out = subprocess.run([support.keyplane_bin(), "tls", "ca-path", "--data-dir", str(srv.data_dir)],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == str(srv.ca_path)
    assert mode(tls / "ca-key.pem") == 0o600 and mode(tls / "server-key.pem") == 0o600
    ca = srv.ca_path.read_bytes()
    creds = srv.create_account()
    assert describe_over_https(srv, creds, srv.ca_path) == 0
    assert srv.stop() == 0
    srv.start()
    assert srv.ca_path.read_bytes() == ca, "the CA survives a restart"
    assert describe_over_https(srv, creds, srv.ca_path) == 0, "clients keep trusting it"


def test_https_can_be_turned_off(start_server):
    srv = start_server("--listen-tls", "off")
    assert srv.tls_port is None
    assert "HTTPS is off" in srv.output()
    assert not (srv.data_dir / "tls").exists()


def test_an_operators_certificate_and_key(start_server):
    # Any PEM chain and key will do; the first server's are as good as an operator's.
    first = start_server()
    tls = first.data_dir / "tls"
    srv = start_server("--tls-cert", str(tls / "server.pem"), "--tls-key", str(tls / "server-key.pem"))
    assert f"(certificate {tls / 'server.pem'})" in srv.output()
    assert not (srv.data_dir / "tls").exists(), "no CA of its own"
    assert describe_over_https(srv, srv.create_account(), first.ca_path) == 0
    other = start_server()
    with pytest.raises(Exception, match="CERTIFICATE_VERIFY_FAILED"):
        describe_over_https(srv, srv.create_account(), other.ca_path)
