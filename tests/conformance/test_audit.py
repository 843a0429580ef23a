"""The audit trail through the providers' own audit APIs, with their official SDKs.

- Tencent CloudAudit 2019-03-19 `LookUpEvents` (tencentcloud-sdk-python-cloudaudit): a key
  bound through CVM on a real sandbox instance is found by EventName and by ResourceId, naming
  the instance and the key, with the caller's SecretId and a 127.x source address, and SUCCESS
  once the operation settles; another account finds none of it.
- Alibaba ActionTrail 2020-07-06 `LookupEvents` (alibabacloud-actiontrail20200706, ACS3 and RPC
  signatures): the same for an ECS AttachKeyPair.
- Refused requests (a bad signature, a broken rule) are found with their codes; a password sent
  in a refused request appears in no event; NextToken paging walks every event exactly once;
  every parameter rule answers its documented error through the SDK (and tccli cloudaudit).
"""
import calendar
import json
import re
import time

import pytest
from alibabacloud_actiontrail20200706 import models as at_models
from alibabacloud_actiontrail20200706.client import Client as ActionTrailClient
from alibabacloud_tea_openapi import utils_models as open_api_models
from tencentcloud.cloudaudit.v20190319 import cloudaudit_client
from tencentcloud.cloudaudit.v20190319 import models as ca_models
from tencentcloud.common import credential
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
from tencentcloud.cvm.v20170312 import models as cvm_models

import ecs
import support
from clients import ApiError, Tccli, error_of
from sandbox import call, run_instances, start_sandbox_server, wait_settled
from support import REGION, cvm, expect_error

SECRET_PASSWORD = "Audit-Pw0rd!Zq7"


# ----------------------------------------------------------------------------- clients

def cloudaudit(server, creds, sign_method="TC3-HMAC-SHA256", req_method="POST"):
    """The official CloudauditClient for `creds`, keeping its raw answers."""
    cred = credential.Credential(creds["secret_id"], creds["secret_key"])
    client = cloudaudit_client.CloudauditClient(
        cred, REGION, support.profile(server, sign_method, req_method))
    return support._record_responses(client)


def look_up(client, attrs=(), window=3600, **params):
    """LookUpEvents over the last `window` seconds (and a minute ahead) by default."""
    now = int(time.time())
    params.setdefault("StartTime", now - window)
    params.setdefault("EndTime", now + 60)
    if attrs:
        params["LookupAttributes"] = [{"AttributeKey": k, "AttributeValue": v} for k, v in attrs]
    req = ca_models.LookUpEventsRequest()
    req._deserialize(params)
    return client.LookUpEvents(req)


def details(event) -> dict:
    return json.loads(event.CloudAuditEvent)


def actiontrail(server, creds, v2=False):
    """The official ActionTrail client: ACS3-HMAC-SHA256, or the RPC signature with v2=True."""
    cfg = open_api_models.Config(access_key_id=creds["access_key_id"],
                                 access_key_secret=creds["access_key_secret"],
                                 endpoint=server.endpoint, protocol="http", region_id=ecs.REGION)
    if v2:
        cfg.signature_algorithm = "v2"
    return ActionTrailClient(cfg)


def lookup(client, attrs=(), **params):
    """LookupEvents -> the response body (`events` are dicts in ActionTrail's event shape)."""
    req = at_models.LookupEventsRequest(
        lookup_attribute=[at_models.LookupEventsRequestLookupAttribute(key=k, value=v)
                          for k, v in attrs], **params)
    return client.lookup_events(req).body


def iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def seconds(text: str) -> int:
    return calendar.timegm(time.strptime(text, "%Y-%m-%dT%H:%M:%SZ"))


def raised(fn, *args, **kwargs) -> Exception:
    try:
        result = fn(*args, **kwargs)
    except Exception as e:  # the SDK's own exception types
        return e
    raise AssertionError(f"expected an error, the call returned {result!r}")


def all_tencent_events(client, window=3600):
    out, token = [], None
    now = int(time.time())  # one window for every page: a token continues only its query
    times = {"StartTime": now - window, "EndTime": now + 60}
    while True:
        extra = {"NextToken": token} if token else {}
        page = look_up(client, MaxResults=50, **times, **extra)
        out += page.Events
        if page.ListOver:
            return out
        token = page.NextToken


def all_alibaba_events(client):
    out, token = [], None
    while True:
        page = lookup(client, max_results="50", next_token=token)
        out += page.events
        if not page.next_token:
            return out
        token = page.next_token


# ----------------------------------------------------------------------------- binds on real instances

@pytest.fixture(scope="module")
def sbx():
    srv = start_sandbox_server()
    yield srv
    assert srv.stop() == 0, srv.output()


def test_cvm_bind_is_found_through_cloudaudit(sbx):
    creds = sbx.create_account()
    client = cvm(sbx, creds)
    (iid,) = run_instances(client)
    kp = call(client, "CreateKeyPair", KeyName="audited_key", ProjectId=0).KeyPair
    r = call(client, "AssociateInstancesKeyPairs", InstanceIds=[iid], KeyIds=[kp.KeyId], ForceStop=True)
    audit = cloudaudit(sbx, creds)

    (event,) = look_up(audit, [("EventName", "AssociateInstancesKeyPairs")]).Events
    assert event.RequestID == r.RequestId
    assert details(event)["outcome"] in ("OPERATING", "SUCCESS")
    assert wait_settled(client, [iid])[iid].LatestOperationState == "SUCCESS"

    found = look_up(audit, [("EventName", "AssociateInstancesKeyPairs")])
    assert (found.TotalCount, found.ListOver) == (1, True)
    (event,) = found.Events
    assert event.EventName == "AssociateInstancesKeyPairs" and event.RequestID == r.RequestId
    assert event.SecretId == creds["secret_id"]
    assert event.SourceIPAddress.startswith("127."), event.SourceIPAddress
    assert set(event.Resources.ResourceName.split(",")) == {iid, "audited_key"}
    assert set(event.Resources.ResourceType.split(",")) == {"instance", "keypair"}
    assert event.ErrorCode == 0 and event.EventSource == "cvm.tencentcloudapi.com"
    assert event.AccountID == int(creds["account_id"]) and event.Username == creds["account"]
    assert event.EventRegion == REGION and event.ResourceRegion == REGION
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", event.EventTime), event.EventTime
    d = details(event)
    assert d["outcome"] == "SUCCESS", d
    assert d["operations"] == {"total": 1, "pending": 0, "failed": 0, "error": None}
    assert d["userIdentity"]["secretId"] == creds["secret_id"]
    assert d["eventName"] == "AssociateInstancesKeyPairs" and d["actionType"] == "Write"
    assert {(x["resourceType"], x["resourceId"]) for x in d["resources"]} == {
        ("instance", iid), ("keypair", kp.KeyId)}
    assert {"resourceType": "keypair", "resourceId": kp.KeyId, "resourceName": "audited_key"} in d["resources"]

    by_instance = look_up(audit, [("ResourceId", iid)]).Events
    assert {e.EventName for e in by_instance} == {"RunInstances", "AssociateInstancesKeyPairs"}
    by_key = look_up(audit, [("ResourceId", kp.KeyId), ("ActionType", "Write")]).Events
    assert [e.EventName for e in by_key] == ["AssociateInstancesKeyPairs", "CreateKeyPair"], "newest first"
    assert [e.EventName for e in look_up(audit, [("ResourceName", "audited_key")]).Events] == [
        "AssociateInstancesKeyPairs", "CreateKeyPair"]

    # Another account finds none of it, by any attribute or none.
    theirs = cloudaudit(sbx, sbx.create_account())
    for attrs in ([("ResourceId", iid)], [("RequestId", r.RequestId)],
                  [("AccessKeyId", creds["secret_id"])], []):
        found = look_up(theirs, attrs)
        assert (found.TotalCount, found.Events) == (0, []), attrs
    # And ActionTrail, which shows the Alibaba APIs' events, does not show this one.
    assert lookup(actiontrail(sbx, creds), [("EventName", "AssociateInstancesKeyPairs")]).events == []


def test_ecs_attach_is_found_through_actiontrail(sbx, keygen):
    creds = sbx.create_account()
    core, t = ecs.Core(sbx, creds), ecs.tea(sbx, creds)
    _, public = keygen.new()
    core.call("ImportKeyPair", KeyPairName="ops", PublicKeyBody=public)
    (linux,) = ecs.tea_call(t, "RunInstances", region_id=ecs.REGION, image_id=ecs.LINUX,
                            instance_type=ecs.INSTANCE_TYPE, password=SECRET_PASSWORD,
                            amount=1).instance_id_sets.instance_id_set
    ecs.wait_status(core, linux, "Running")
    r = ecs.tea_call(t, "AttachKeyPair", region_id=ecs.REGION, key_pair_name="ops",
                     instance_ids=json.dumps([linux]))
    assert (r.total_count, r.fail_count) == ("1", "0")

    for trail in (actiontrail(sbx, creds), actiontrail(sbx, creds, v2=True)):
        found = lookup(trail, [("EventName", "AttachKeyPair")])
        assert found.next_token is None
        (event,) = found.events
        assert event["requestId"] == r.request_id
        assert event["eventName"] == "AttachKeyPair" and event["eventRW"] == "Write"
        assert event["userIdentity"]["accessKeyId"] == creds["access_key_id"]
        assert event["sourceIpAddress"].startswith("127."), event["sourceIpAddress"]
        assert set(event["resourceName"].split(";")) == {linux, "ops"}
        assert event["referencedResources"] == {"ACS::ECS::Instance": [linux], "ACS::ECS::KeyPair": ["ops"]}
        assert event["additionalEventData"]["outcome"] == "SUCCESS", event
        assert (event["eventSource"], event["serviceName"]) == ("ecs.aliyuncs.com", "Ecs")
        assert event["acsRegion"] == ecs.REGION and "errorCode" not in event
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", event["eventTime"])
        by_instance = lookup(trail, [("ResourceName", linux)]).events
        assert [e["eventName"] for e in by_instance] == ["AttachKeyPair", "RunInstances"]
        keyed = lookup(trail, [("ResourceType", "ACS::ECS::KeyPair"), ("EventRW", "Write")]).events
        assert [e["eventName"] for e in keyed] == ["AttachKeyPair", "ImportKeyPair"]
        assert lookup(trail, [("ServiceName", "Ecs"), ("EventName", "AttachKeyPair")]).events == [event]
    # No password reaches the trail, not even the one the launch was given.
    assert SECRET_PASSWORD not in json.dumps(all_alibaba_events(actiontrail(sbx, creds)))

    other = sbx.create_account()
    for trail in (actiontrail(sbx, other), actiontrail(sbx, other, v2=True)):
        assert lookup(trail, [("ResourceName", linux)]).events == []
        assert lookup(trail, [("EventAccessKeyId", creds["access_key_id"])]).events == []
        assert lookup(trail).events == []
    assert look_up(cloudaudit(sbx, creds), [("EventName", "AttachKeyPair")]).Events == []


# ----------------------------------------------------------------------------- refusals

def test_refusals_are_found_with_their_codes_and_no_password(server):
    creds = server.create_account()
    audit = cloudaudit(server, creds)
    wrong = cvm(server, creds, secret_key="x" * 32)
    launch = dict(ImageId="img-kpdeb12x", Placement={"Zone": "ap-guangzhou-3"},
                  LoginSettings={"Password": SECRET_PASSWORD})
    expect_error(wrong, "AuthFailure.SignatureFailure", call, wrong, "RunInstances", **launch)
    client = cvm(server, creds)
    bad_zone = dict(launch, Placement={"Zone": "ap-beijing-1"})
    expect_error(client, "InvalidZone.MismatchRegion", call, client, "RunInstances", **bad_zone)
    expect_error(client, "InvalidKeyPairNameIncludeIllegalChar", call, client, "CreateKeyPair",
                 KeyName="no spaces!", ProjectId=0)
    expect_error(client, "InvalidInstanceId.NotFound", call, client, "ResetInstancesPassword",
                 InstanceIds=["ins-0000aaaa"], Password=SECRET_PASSWORD, ForceStop=True)

    (sig,) = look_up(audit, [("ApiErrorCode", "AuthFailure.SignatureFailure")]).Events
    assert (sig.EventName, sig.SecretId, sig.ErrorCode) == ("RunInstances", creds["secret_id"], 4100)
    assert details(sig)["apiErrorCode"] == "AuthFailure.SignatureFailure"
    (zone,) = look_up(audit, [("ApiErrorCode", "InvalidZone.MismatchRegion")]).Events
    assert zone.EventName == "RunInstances" and zone.ErrorCode == 4000
    assert details(zone)["outcome"] == "InvalidZone.MismatchRegion"
    (name,) = look_up(audit, [("EventName", "CreateKeyPair")]).Events
    assert details(name)["apiErrorCode"] == "InvalidKeyPairNameIncludeIllegalChar"
    (reset,) = look_up(audit, [("EventName", "ResetInstancesPassword")]).Events
    assert reset.Resources.ResourceName == "ins-0000aaaa"

    events = all_tencent_events(audit)
    assert len(events) == 4
    assert SECRET_PASSWORD not in json.dumps([json.loads(e.to_json_string()) for e in events])

    # The same through the Alibaba APIs.
    core = ecs.Core(server, creds)
    bad = ecs.tea(server, dict(creds, access_key_secret="wrong"))
    assert ecs.error_of(ecs.tea_call, bad, "ModifyInstanceAttribute", instance_id="i-00000000000000000000",
                        password=SECRET_PASSWORD) == (400, "SignatureDoesNotMatch")
    assert ecs.error_of(core.call, "RunInstances", ImageId=ecs.LINUX, InstanceType="bogus",
                        Password=SECRET_PASSWORD) == (400, "InvalidInstanceType.ValueNotSupported")
    trail = actiontrail(server, creds)
    refused = {e["errorCode"]: e for e in lookup(trail).events}
    assert set(refused) == {"SignatureDoesNotMatch", "InvalidInstanceType.ValueNotSupported"}
    sig = refused["SignatureDoesNotMatch"]
    assert (sig["eventName"], sig["userIdentity"]["accessKeyId"]) == (
        "ModifyInstanceAttribute", creds["access_key_id"])
    assert sig["resourceName"] == "i-00000000000000000000"
    assert SECRET_PASSWORD not in json.dumps(all_alibaba_events(trail))


def test_a_refused_lookup_is_itself_found(server):
    creds = server.create_account()
    audit = cloudaudit(server, creds)
    bad = cloudaudit(server, dict(creds, secret_key="y" * 32))
    expect_error(bad, "AuthFailure.SignatureFailure", look_up, bad)
    expect_error(audit, "InvalidParameterValue.MaxResult", look_up, audit, MaxResults=99)
    (event,) = look_up(audit, [("ApiErrorCode", "AuthFailure.SignatureFailure")]).Events
    assert (event.EventName, event.EventSource) == ("LookUpEvents", "cloudaudit.tencentcloudapi.com")
    assert details(event)["actionType"] == "Read"
    found = look_up(audit, [("ResourceType", "cloudaudit"), ("ReadOnly", "true")])
    assert {details(e)["apiErrorCode"] for e in found.Events} == {
        "AuthFailure.SignatureFailure", "InvalidParameterValue.MaxResult"}


# ----------------------------------------------------------------------------- paging

def test_next_token_walks_every_event_exactly_once(server):
    creds = server.create_account()
    client = cvm(server, creds)
    made = [support.create_key(client, support.unique_name("pg")).RequestId for _ in range(23)]
    audit = cloudaudit(server, creds)
    seen, token, pages = [], None, 0
    # One window for every page: a token continues only the query it was issued for.
    now = int(time.time())
    window = {"StartTime": now - 3600, "EndTime": now + 60}
    while True:
        extra = {"NextToken": token} if token else {}
        page = look_up(audit, [("EventName", "CreateKeyPair")], MaxResults=5, **window, **extra)
        assert page.TotalCount == 23
        assert len(page.Events) <= 5
        seen += [e.RequestID for e in page.Events]
        pages += 1
        if page.ListOver:
            assert page.NextToken is None
            break
        assert page.NextToken
        token = page.NextToken
    assert pages == 5
    assert seen == list(reversed(made)), "each event once, newest first"
    # A token belongs to its query.
    first = look_up(audit, [("EventName", "CreateKeyPair")], MaxResults=5, **window)
    expect_error(audit, "InvalidParameter", look_up, audit, [("EventName", "ImportKeyPair")],
                 NextToken=first.NextToken, **window)
    expect_error(audit, "InvalidParameter", look_up, audit, NextToken="bm90LWEtdG9rZW4")
    default = look_up(audit, [("EventName", "CreateKeyPair")])
    assert len(default.Events) == 10 and not default.ListOver

    core = ecs.Core(server, creds)
    names = [f"page{n}" for n in range(7)]
    ids = [core.call("CreateKeyPair", KeyPairName=n)["RequestId"] for n in names]
    for trail in (actiontrail(server, creds), actiontrail(server, creds, v2=True)):
        walked, token = [], None
        while True:
            page = lookup(trail, [("EventName", "CreateKeyPair")], max_results="3",
                          direction="FORWARD", next_token=token)
            assert len(page.events) <= 3
            walked += [e["requestId"] for e in page.events]
            if not page.next_token:
                break
            token = page.next_token
        assert walked == ids, "each event once, oldest first"
        backwards = lookup(trail, [("EventName", "CreateKeyPair")], max_results="50").events
        assert [e["requestId"] for e in backwards] == list(reversed(ids))


# ----------------------------------------------------------------------------- parameter rules

def test_cloudaudit_parameter_rules(server, tmp_path):
    creds = server.create_account()
    audit = cloudaudit(server, creds)
    now = int(time.time())

    def raw(**params):
        req = ca_models.LookUpEventsRequest()
        req._deserialize(params)
        return audit.LookUpEvents(req)

    expect_error(audit, "InvalidParameter.Time", raw, EndTime=now)
    expect_error(audit, "InvalidParameter.Time", raw, StartTime=now)
    expect_error(audit, "InvalidParameter.Time", raw, StartTime="yesterday", EndTime=now)
    expect_error(audit, "InvalidParameterValue.Time", raw, StartTime=now, EndTime=now - 1)
    expect_error(audit, "LimitExceeded.OverTime", raw, StartTime=now - 8 * 86400, EndTime=now)
    raw(StartTime=now - 7 * 86400, EndTime=now)
    for bad in (0, 51):
        expect_error(audit, "InvalidParameterValue.MaxResult", raw, StartTime=now, EndTime=now,
                     MaxResults=bad)
    expect_error(audit, "InvalidParameterValue.attributeKey", look_up, audit, [("Colour", "red")])
    expect_error(audit, "InvalidParameterValue", look_up, audit, [("ActionType", "Both")])
    expect_error(audit, "InvalidParameterValue", look_up, audit, Mode="turbo")
    expect_error(audit, "InvalidParameter", look_up, audit, NextToken="not a token")
    # Each refusal above is an event of its own (a read of CloudAudit's).
    refusals = look_up(audit, Mode="quick", MaxResults=50)
    assert refusals.TotalCount == 11 and refusals.ListOver
    assert {e.EventName for e in refusals.Events} == {"LookUpEvents"}
    for attrs, count in (([("Username", creds["account"])], 11), ([("Username", "someone")], 0),
                         ([("PrincipalId", creds["account_id"])], 11), ([("ResourceType", "cvm")], 0),
                         ([("ResourceType", "cloudaudit")], 11), ([("SensitiveAction", "0")], 11),
                         ([("SensitiveAction", "1")], 0), ([("ReadOnly", "false")], 0)):
        assert look_up(audit, attrs).TotalCount == count, attrs

    # The v1 signatures the Tencent SDK can send are served too.
    support.create_key(cvm(server, creds), "v1_audited")
    for method, verb in (("HmacSHA256", "GET"), ("HmacSHA1", "POST")):
        (e,) = look_up(cloudaudit(server, creds, method, verb), [("ResourceName", "v1_audited")]).Events
        assert e.EventName == "CreateKeyPair"
    # And tccli's cloudaudit commands.
    cli = Tccli("cloudaudit", server, creds, tmp_path)
    now = int(time.time())
    found = cli.call("LookUpEvents", StartTime=str(now - 600), EndTime=str(now + 60),
                     LookupAttributes=[{"AttributeKey": "ResourceName", "AttributeValue": "v1_audited"}])
    assert [e["EventName"] for e in found["Events"]] == ["CreateKeyPair"]
    e = error_of(cli.call, "LookUpEvents", StartTime=str(now - 8 * 86400), EndTime=str(now))
    assert isinstance(e, ApiError) and e.code == "LimitExceeded.OverTime"


def test_actiontrail_parameter_rules(server):
    creds = server.create_account()
    now = time.time()
    for trail in (actiontrail(server, creds), actiontrail(server, creds, v2=True)):
        def err(**params):
            return ecs.error_of(lookup, trail, **params)

        assert err(start_time="2020-10-08") == (400, "InvalidParameterStartTime")
        assert err(start_time=iso(now), end_time="yesterday") == (400, "InvalidParameterEndTime")
        assert err(start_time=iso(now), end_time=iso(now - 60)) == (400, "InvalidParameterCombination")
        assert err(end_time=iso(now - 8 * 86400)) == (400, "InvalidParameterCombination"), \
            "StartTime defaults to 7 days before now"
        for bad in ("51", "-1", "many"):
            assert err(max_results=bad) == (400, "InvalidQueryParameter"), bad
        assert err(direction="SIDEWAYS") == (400, "InvalidQueryParameter")
        assert err(next_token="not-a-token") == (400, "InvalidQueryParameter")
        assert ecs.error_of(lookup, trail, [("Colour", "red")]) == (400, "InvalidQueryParameter")
        e = raised(lookup, trail, [("EventRW", "Sometimes")])
        assert e.data["HostId"] == "actiontrail.aliyuncs.com", e.data
        assert "LookupAttribute.1.Value" in e.data["Message"]
        # Only the first two conditions are looked at; of a repeated key, the second.
        assert lookup(trail, [("EventRW", "All"), ("EventName", "X"), ("Colour", "red")]).events == []
        reads = lookup(trail, [("EventRW", "Write"), ("EventRW", "Read")], max_results="50").events
        assert reads and {e["eventRW"] for e in reads} == {"Read"}
        body = lookup(trail, [("EventRW", "Write")], max_results="0")
        assert body.events == [] and body.next_token is None
        start, end = body.start_time, body.end_time
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", start)
        span = seconds(end) - seconds(start)
        assert span == 7 * 86400, (start, end)
        assert abs(seconds(end) - time.time()) < 60
    # Every refusal above is an event of its own (a read of ActionTrail's), for both clients.
    refusals = all_alibaba_events(actiontrail(server, creds))
    assert len(refusals) == 2 * 11, [e["errorCode"] for e in refusals]
    assert {(e["eventName"], e["serviceName"], e["eventRW"]) for e in refusals} == {
        ("LookupEvents", "Actiontrail", "Read")}
    assert {e["errorCode"] for e in refusals} == {
        "InvalidParameterStartTime", "InvalidParameterEndTime", "InvalidParameterCombination",
        "InvalidQueryParameter"}
