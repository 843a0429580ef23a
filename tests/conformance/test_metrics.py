"""Prometheus metrics (`GET /metrics`): after a bind through the official CVM SDK a scrape shows
the request and operation series, the instance counts and the histograms, and never an id, a
secret, a key or a password; the metrics can move to an address of their own or be turned off."""
import re
import urllib.error
import urllib.request

from sandbox import PASSWORD, call, run_instances, save_private_key, start_sandbox_server, wait_settled
from support import KeyplaneServer, cvm


def scrape(url: str) -> str:
    with urllib.request.urlopen(url + "/metrics", timeout=10) as r:
        assert r.status == 200
        assert r.headers["Content-Type"].startswith("application/openmetrics-text")
        return r.read().decode()


def value(text: str, series: str) -> float:
    m = re.search(r"^" + re.escape(series) + r" (\S+)$", text, re.M)
    assert m, f"{series} not in the scrape:\n{text}"
    return float(m.group(1))


def test_a_scrape_after_a_bind_shows_its_series_and_no_secret(tmp_path):
    srv = start_sandbox_server()
    try:
        creds = srv.create_account()
        client = cvm(srv, creds)
        (iid,) = run_instances(client)
        kp = call(client, "CreateKeyPair", KeyName="metrics_key", ProjectId=0).KeyPair
        save_private_key(kp.PrivateKey, tmp_path)
        call(client, "AssociateInstancesKeyPairs", InstanceIds=[iid], KeyIds=[kp.KeyId], ForceStop=True)
        assert wait_settled(client, [iid])[iid].LatestOperationState == "SUCCESS"
        text = scrape(srv.url)

        ok = 'dialect="cvm",action="AssociateInstancesKeyPairs",code="ok"'
        assert value(text, f"keyplane_requests_total{{{ok}}}") == 1
        assert value(text, 'keyplane_requests_total{dialect="cvm",action="CreateKeyPair",code="ok"}') == 1
        assert value(text, 'keyplane_operations_total{kind="bind",state="SUCCESS"}') == 1
        assert value(text, 'keyplane_operations_total{kind="create",state="SUCCESS"}') == 1
        assert value(text, 'keyplane_instances{namespace="cvm",state="RUNNING"}') == 1
        assert value(text, 'keyplane_operation_duration_seconds_count{kind="bind"}') == 1
        assert value(text, 'keyplane_request_duration_seconds_count'
                           '{dialect="cvm",action="AssociateInstancesKeyPairs"}') == 1
        assert "keyplane_agents_connected" in text
        # The store's calls are timed: the bind and launch wrote, the describes read.
        assert value(text, 'keyplane_store_duration_seconds_count{backend="sqlite",kind="write"}') > 0
        assert value(text, 'keyplane_store_duration_seconds_count{backend="sqlite",kind="read"}') > 0

        # An action the dialect does not serve is counted under `other`, never by its name.
        from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
        try:
            client.call_json("NoSuchActionForMetrics", {})
        except TencentCloudSDKException as e:
            assert e.code == "InvalidAction", e
        text = scrape(srv.url)
        assert "NoSuchActionForMetrics" not in text
        assert value(text, 'keyplane_requests_total{dialect="cvm",action="other",code="InvalidAction"}') == 1

        for secret in (creds["secret_id"], creds["secret_key"], creds["access_key_id"],
                       creds["access_key_secret"], PASSWORD, iid, kp.KeyId, kp.PublicKey.split()[1],
                       kp.PrivateKey.splitlines()[1]):
            assert secret not in text, "a scrape holds no id and no secret"
    finally:
        assert srv.stop() == 0, srv.output()


def test_metrics_move_to_their_own_address_or_turn_off(tmp_path):
    srv = KeyplaneServer(tmp_path / "own", ["--listen-metrics", "127.0.0.1:0"])
    srv.start()
    try:
        m = re.search(r"metrics on (http://[0-9.:]+)/metrics", srv.output())
        assert m, srv.output()
        assert "keyplane_requests_total" in scrape(m.group(1)) or "# EOF" in scrape(m.group(1))
        with urllib.request.urlopen(srv.url + "/metrics", timeout=10) as r:
            assert b"keyplane_" not in r.read(), "not on the API's listener then"
    finally:
        srv.stop()
    off = KeyplaneServer(tmp_path / "off", ["--listen-metrics", "off"])
    off.start()
    try:
        assert "metrics on" not in off.output()
        try:
            with urllib.request.urlopen(off.url + "/metrics", timeout=10) as r:
                body = r.read()
        except urllib.error.HTTPError as e:
            body = e.read()
        assert b"keyplane_" not in body
    finally:
        off.stop()
