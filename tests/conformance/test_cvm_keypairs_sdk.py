"""CVM 2017-03-12 key-pair actions through the official tencentcloud-sdk-python, against the real
server: every action under every signature method, paging, filters, private-key handling,
imports of ssh-keygen keys, and each error with its exact code and a well-formed envelope."""
import random
import re
import threading
import time
import types

import pytest
import requests
import tencentcloud.common.abstract_client as abstract_client
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException

from support import (
    CVM_VERSION,
    REGION,
    RawResponse,
    SIGN_VARIANTS,
    check_error_envelope,
    check_success_envelope,
    common,
    create_key,
    cvm,
    delete_keys,
    describe,
    describe_all,
    expect_error,
    import_key,
    key_blob,
    modify_key,
    public_key_of_private,
    unique_name,
    v1_query,
)

KEY_ID_RE = re.compile(r"skey-[a-z0-9]{8}")
ISO8601_UTC_RE = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z")
WELL_FORMED_UNKNOWN_ID = "skey-00000000"


def ids_of(key_pairs):
    return [k.KeyId for k in key_pairs]


def tags_of(key_pair):
    return {t.Key: t.Value for t in (key_pair.Tags or [])}


@pytest.fixture
def client(server, account):
    """A TC3-HMAC-SHA256 POST client (the SDK default) on a fresh account."""
    return cvm(server, account)


# ----------------------------------------------------------------------------- every action, every signature

@pytest.mark.parametrize("variant", SIGN_VARIANTS)
def test_every_action_with_each_signature_method(server, account, keygen, variant):
    sign_method, req_method = variant
    c = cvm(server, account, sign_method, req_method)

    # CreateKeyPair, with tags (flattened TagSpecification.0.Tags.N.* on GET and v1)
    name = unique_name("created")
    kp = create_key(c, name, project_id=0, tags={"env": "dev", "team": "a b*"}).KeyPair
    check_success_envelope(c.raw_responses[-1])
    assert KEY_ID_RE.fullmatch(kp.KeyId), kp.KeyId
    assert kp.KeyName == name
    assert kp.ProjectId == 0
    assert kp.PublicKey.startswith("ssh-rsa "), kp.PublicKey
    assert kp.PrivateKey and "PRIVATE KEY-----" in kp.PrivateKey, "CreateKeyPair must return the private key"
    assert ISO8601_UTC_RE.fullmatch(kp.CreatedTime), kp.CreatedTime
    assert tags_of(kp) == {"env": "dev", "team": "a b*"}
    assert kp.AssociatedInstanceIds == []

    # ImportKeyPair; the comment puts '+', '/', '=', '&' and a space into the signed value
    _, public_line = keygen.new("ed25519", comment="a+b/c=d&e f@keyplane")
    imported_name = unique_name("imported")
    imported_id = import_key(c, imported_name, public_line, project_id=7, tags={"env": "prod"})
    check_success_envelope(c.raw_responses[-1])
    assert KEY_ID_RE.fullmatch(imported_id), imported_id

    # DescribeKeyPairs by KeyIds (KeyIds.N on GET and v1)
    d = describe(c, key_ids=[kp.KeyId, imported_id])
    assert d.TotalCount == 2
    by_id = {k.KeyId: k for k in d.KeyPairSet}
    assert set(by_id) == {kp.KeyId, imported_id}
    assert by_id[kp.KeyId].PublicKey == kp.PublicKey
    assert by_id[kp.KeyId].KeyName == name
    imported = by_id[imported_id]
    assert imported.KeyName == imported_name
    assert imported.ProjectId == 7
    assert imported.PublicKey.split()[0] == "ssh-ed25519"
    assert key_blob(imported.PublicKey) == key_blob(public_line)
    assert tags_of(imported) == {"env": "prod"}
    assert all(k.PrivateKey is None for k in d.KeyPairSet), "DescribeKeyPairs must never return a private key"
    assert b"PRIVATE KEY" not in c.raw_responses[-1].body

    # DescribeKeyPairs by Filters (Filters.N.Name / Filters.N.Values.M on GET and v1)
    d = describe(c, filters=[("tag:team", ["a b*"])])
    assert ids_of(d.KeyPairSet) == [kp.KeyId] and d.TotalCount == 1
    d = describe(c, filters=[("project-id", ["7"])])
    assert ids_of(d.KeyPairSet) == [imported_id]

    # ModifyKeyPairAttribute
    # (the description carries characters that need care in v1 plaintexts and TC3 GET queries)
    new_name = unique_name("renamed")
    description = f"{sign_method} \u5bc6\u94a5 a+b&c=d%20~*"
    modify_key(c, imported_id, name=new_name, description=description)
    check_success_envelope(c.raw_responses[-1])
    (after,) = describe(c, key_ids=[imported_id]).KeyPairSet
    assert after.KeyName == new_name
    assert after.Description == description
    modify_key(c, kp.KeyId, description="only the description")
    (after,) = describe(c, key_ids=[kp.KeyId]).KeyPairSet
    assert (after.KeyName, after.Description) == (name, "only the description")

    # DeleteKeyPairs
    delete_keys(c, [kp.KeyId, imported_id])
    check_success_envelope(c.raw_responses[-1])
    d = describe(c)
    assert d.TotalCount == 0 and d.KeyPairSet == [], "deleted key pairs must be gone"


@pytest.mark.parametrize("variant", [SIGN_VARIANTS[0], SIGN_VARIANTS[2]])
def test_sdk_default_language_zh_cn(server, account, variant):
    c = cvm(server, account, *variant, language=None)
    assert describe(c).TotalCount == 0
    expect_error(c, "InvalidKeyPairId.NotFound", delete_keys, c, [WELL_FORMED_UNKNOWN_ID])


def test_tc3_unsigned_payload(server, account):
    """ClientProfile(unsignedPayload=True): X-TC-Content-SHA256: UNSIGNED-PAYLOAD is signed instead
    of the body hash."""
    c = cvm(server, account)
    c.profile.unsignedPayload = True
    assert describe(c).TotalCount == 0
    expect_error(c, "InvalidKeyPairId.NotFound", delete_keys, c, [WELL_FORMED_UNKNOWN_ID])


# ----------------------------------------------------------------------------- private keys and imports

def test_created_private_key_is_valid_and_returned_only_once(client, tmp_path):
    kp = create_key(client, unique_name("pk")).KeyPair
    derived = public_key_of_private(kp.PrivateKey, tmp_path)
    assert derived.split()[0] == "ssh-rsa"
    assert key_blob(derived) == key_blob(kp.PublicKey), "PrivateKey does not belong to PublicKey"

    for d in (describe(client, key_ids=[kp.KeyId]), describe(client),
              describe(client, filters=[("key-name", [kp.KeyName])])):
        assert ids_of(d.KeyPairSet) == [kp.KeyId]
        assert d.KeyPairSet[0].PrivateKey is None
        assert b"PRIVATE KEY" not in client.raw_responses[-1].body, "the private key leaked"


@pytest.mark.parametrize("kind,bits", [
    ("rsa", 2048), ("rsa", 3072), ("ed25519", None), ("ecdsa", 256), ("ecdsa", 384), ("ecdsa", 521),
], ids=["rsa-2048", "rsa-3072", "ed25519", "ecdsa-256", "ecdsa-384", "ecdsa-521"])
def test_import_ssh_keygen_keys(client, keygen, kind, bits):
    _, public_line = keygen.new(kind, bits)
    key_id = import_key(client, unique_name(kind), public_line)
    (kp,) = describe(client, key_ids=[key_id]).KeyPairSet
    assert kp.PublicKey.split()[0] == public_line.split()[0], "key type changed"
    assert key_blob(kp.PublicKey) == key_blob(public_line), "key material changed"
    assert kp.PrivateKey is None


def test_import_same_public_key_twice_is_refused(client, server, keygen):
    _, public_line = keygen.new("ed25519")
    import_key(client, unique_name("first"), public_line)
    expect_error(client, "InvalidPublicKey.Duplicate", import_key, client, unique_name("second"), public_line)
    # other accounts are isolated: the same public key is theirs to import
    other = cvm(server, server.create_account())
    assert KEY_ID_RE.fullmatch(import_key(other, unique_name("other"), public_line))


@pytest.mark.parametrize("public_key", [
    "not a key",
    "ssh-rsa AAAA",
    "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQC+x/y=z+==",
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJ",
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\nssh-ed25519 AAAA",
    "-----BEGIN OPENSSH PRIVATE KEY-----",
], ids=["garbage", "empty-blob", "bad-base64", "truncated-ed25519", "two-lines", "private-key-header"])
def test_import_malformed_public_key(client, public_key):
    expect_error(client, "InvalidPublicKey.Malformed", import_key, client, unique_name("bad"), public_key)
    assert describe(client).TotalCount == 0, "a refused import must not leave a key pair"


# ----------------------------------------------------------------------------- paging and filters

def test_paging_with_offset_limit_and_total_count(client, keygen):
    keys = keygen.public_keys(25)
    created = [import_key(client, f"page_{i:02d}", pub) for i, pub in enumerate(keys)]

    default = describe(client)
    assert default.TotalCount == 25
    assert len(default.KeyPairSet) == 20, "the default Limit is 20"

    pages = [describe(client, offset=o, limit=10) for o in (0, 10, 20)]
    assert [p.TotalCount for p in pages] == [25, 25, 25], "TotalCount counts every match, not the page"
    assert [len(p.KeyPairSet) for p in pages] == [10, 10, 5]
    paged = [k for p in pages for k in ids_of(p.KeyPairSet)]
    assert len(set(paged)) == 25 and set(paged) == set(created), "pages must be disjoint and cover all"

    everything = describe(client, limit=100)
    assert ids_of(everything.KeyPairSet) == paged, "paging must follow one stable order"
    assert ids_of(default.KeyPairSet) == paged[:20]
    assert ids_of(describe(client, offset=3, limit=4).KeyPairSet) == paged[3:7]

    for offset in (25, 1000):
        beyond = describe(client, offset=offset, limit=10)
        assert beyond.KeyPairSet == [] and beyond.TotalCount == 25

    # paging applies after filtering
    f = describe(client, filters=[("key-name", ["page_01", "page_02", "page_03"])], offset=1, limit=1)
    assert f.TotalCount == 3 and len(f.KeyPairSet) == 1

    for bad in ({"limit": 0}, {"limit": 101}, {"offset": -1}):
        expect_error(client, "InvalidParameterValue", describe, client, **bad)


def test_filters(client, keygen):
    pubs = keygen.public_keys(3)
    a = import_key(client, "filter_a", pubs[0], project_id=0, tags={"env": "prod", "team": "red"})
    b = import_key(client, "filter_b", pubs[1], project_id=5, tags={"env": "dev"})
    c = import_key(client, "filter_c", pubs[2], project_id=5)

    def found(*filters):
        d = describe(client, filters=list(filters), limit=100)
        assert d.TotalCount == len(d.KeyPairSet)
        return set(ids_of(d.KeyPairSet))

    assert found(("key-name", ["filter_a"])) == {a}
    assert found(("key-name", ["filter_a", "filter_c"])) == {a, c}, "values of one filter are alternatives"
    assert found(("key-name", ["filter"])) == set(), "key-name matches whole names"
    assert found(("project-id", ["5"])) == {b, c}
    assert found(("project-id", ["0"])) == {a}
    assert found(("tag-key", ["env"])) == {a, b}
    assert found(("tag-key", ["team"])) == {a}
    assert found(("tag-value", ["dev"])) == {b}
    assert found(("tag:env", ["prod", "dev"])) == {a, b}
    assert found(("tag:env", ["staging"])) == set()
    assert found(("tag:team", ["prod"])) == set(), "tag:K matches the value of that key only"
    assert found(("project-id", ["5"]), ("tag-key", ["env"])) == {b}, "filters combine with AND"
    assert found() == {a, b, c}

    expect_error(client, "InvalidFilter", describe, client, filters=[("no-such-filter", ["x"])])
    expect_error(client, "InvalidFilterValue.LimitExceeded", describe, client,
                 filters=[("key-name", [f"n{i}" for i in range(6)])])
    expect_error(client, "InvalidParameterConflict", describe, client, key_ids=[a], filters=[("key-name", ["filter_a"])])


# ----------------------------------------------------------------------------- key ids

@pytest.mark.parametrize("bad_id", ["skey-1234567", "skey-123456789", "key-12345678", "skey-ABCDEFGH",
                                    "lhkp-12345678", "skey_12345678"])
def test_malformed_key_id(client, bad_id):
    expect_error(client, "InvalidKeyPairId.Malformed", describe, client, key_ids=[bad_id])
    expect_error(client, "InvalidKeyPairId.Malformed", delete_keys, client, [bad_id])
    expect_error(client, "InvalidKeyPairId.Malformed", modify_key, client, bad_id, description="x")


def test_unknown_key_id(client):
    d = describe(client, key_ids=[WELL_FORMED_UNKNOWN_ID])
    assert d.TotalCount == 0 and d.KeyPairSet == []
    expect_error(client, "InvalidKeyPairId.NotFound", delete_keys, client, [WELL_FORMED_UNKNOWN_ID])
    expect_error(client, "InvalidKeyPairId.NotFound", modify_key, client, WELL_FORMED_UNKNOWN_ID, description="x")


def test_other_accounts_key_is_invisible(server, client, keygen):
    _, pub = keygen.new("ed25519")
    name = unique_name("owned")
    key_id = import_key(client, name, pub)
    modify_key(client, key_id, description="the owner's")
    before = describe(client, key_ids=[key_id]).KeyPairSet[0]._serialize()
    other = cvm(server, server.create_account())

    d = describe(other, key_ids=[key_id])
    assert d.TotalCount == 0 and d.KeyPairSet == [], "another account's key pair must not be described"
    assert key_id not in ids_of(describe_all(other))
    assert describe(other, filters=[("key-name", [name])]).TotalCount == 0
    expect_error(other, "InvalidKeyPairId.NotFound", delete_keys, other, [key_id])
    expect_error(other, "InvalidKeyPairId.NotFound", modify_key, other, key_id, name="stolen")

    (mine,) = describe(client, key_ids=[key_id]).KeyPairSet
    assert mine._serialize() == before, "the owner's key pair must be untouched"
    # names are per account: the other account may use the same name
    assert KEY_ID_RE.fullmatch(import_key(other, name, keygen.new("ed25519")[1]))


def test_delete_is_all_or_nothing(client, keygen):
    pubs = keygen.public_keys(2)
    a = import_key(client, unique_name("a"), pubs[0])
    b = import_key(client, unique_name("b"), pubs[1])
    expect_error(client, "InvalidKeyPairId.NotFound", delete_keys, client, [a, WELL_FORMED_UNKNOWN_ID, b])
    assert set(ids_of(describe(client).KeyPairSet)) == {a, b}, "a failed batch delete must delete nothing"
    delete_keys(client, [a, b])
    assert describe(client).TotalCount == 0


def test_batch_limit_of_100_key_ids(client, keygen):
    key_id = import_key(client, unique_name("batch"), keygen.new("ed25519")[1])
    hundred = [key_id] + [f"skey-{i:08d}" for i in range(99)]
    assert ids_of(describe(client, key_ids=hundred).KeyPairSet) == [key_id], "100 ids are allowed"
    over = hundred + ["skey-zzzzzzzz"]
    expect_error(client, "InvalidParameterValue.LimitExceeded", describe, client, key_ids=over)
    expect_error(client, "InvalidParameterValue.LimitExceeded", delete_keys, client, over)
    assert describe(client).TotalCount == 1, "a refused batch deletes nothing"


def test_duplicate_key_ids(client, keygen):
    key_id = import_key(client, unique_name("dup"), keygen.new("ed25519")[1])
    expect_error(client, "InvalidParameterValue.Duplicate", describe, client, key_ids=[key_id, key_id])
    expect_error(client, "InvalidParameterValue.Duplicate", delete_keys, client, [key_id, key_id])
    assert describe(client).TotalCount == 1


# ----------------------------------------------------------------------------- names and attributes

def test_duplicate_name(client, keygen):
    pubs = keygen.public_keys(3)
    name = unique_name("taken")
    import_key(client, name, pubs[0])
    expect_error(client, "InvalidKeyPairName.Duplicate", create_key, client, name)
    expect_error(client, "InvalidKeyPairName.Duplicate", import_key, client, name, pubs[1])
    other = import_key(client, unique_name("other"), pubs[2])
    expect_error(client, "InvalidKeyPairName.Duplicate", modify_key, client, other, name=name)
    assert describe(client).TotalCount == 2


@pytest.mark.parametrize("name,code", [
    ("", "InvalidKeyPairNameEmpty"),
    ("a" * 26, "InvalidKeyPairNameTooLong"),
    ("my key", "InvalidKeyPairNameIncludeIllegalChar"),
    ("my-key", "InvalidKeyPairNameIncludeIllegalChar"),
    ("key.1", "InvalidKeyPairNameIncludeIllegalChar"),
    ("\u5bc6\u94a5", "InvalidKeyPairNameIncludeIllegalChar"),
], ids=["empty", "26-chars", "space", "hyphen", "dot", "non-ascii"])
def test_invalid_key_names(client, keygen, name, code):
    _, pub = keygen.new("ed25519")
    expect_error(client, code, create_key, client, name)
    expect_error(client, code, import_key, client, name, pub)
    key_id = import_key(client, unique_name("valid"), pub)
    expect_error(client, code, modify_key, client, key_id, name=name)
    assert describe(client).TotalCount == 1


def test_longest_valid_name_and_description(client, keygen):
    name = "A_1" + "b" * 22
    assert len(name) == 25
    key_id = import_key(client, name, keygen.new("ed25519")[1])
    modify_key(client, key_id, description="d" * 60)
    (kp,) = describe(client, key_ids=[key_id]).KeyPairSet
    assert (kp.KeyName, kp.Description) == (name, "d" * 60)
    expect_error(client, "InvalidParameterValue", modify_key, client, key_id, description="d" * 61)
    expect_error(client, "MissingParameter.AtLeastOne", modify_key, client, key_id)


# ----------------------------------------------------------------------------- protocol errors

@pytest.mark.parametrize("variant", SIGN_VARIANTS)
def test_wrong_secret_key(server, account, variant):
    c = cvm(server, account, *variant, secret_key="X" * len(account["secret_key"]))
    expect_error(c, "AuthFailure.SignatureFailure", describe, c)


@pytest.mark.parametrize("variant", [SIGN_VARIANTS[0], SIGN_VARIANTS[2]])
@pytest.mark.parametrize("skew", [-1000, 1000], ids=["past", "future"])
def test_expired_timestamp(server, account, monkeypatch, variant, skew):
    real_time = time.time
    monkeypatch.setattr(abstract_client, "time", types.SimpleNamespace(time=lambda: real_time() + skew))
    c = cvm(server, account, *variant)
    expect_error(c, "AuthFailure.SignatureExpire", describe, c)


@pytest.mark.parametrize("variant", [SIGN_VARIANTS[0], SIGN_VARIANTS[2]])
def test_unknown_secret_id(server, account, variant):
    c = cvm(server, account, *variant, secret_id="AKID" + "0" * 32)
    expect_error(c, "AuthFailure.SecretIdNotFound", describe, c)


@pytest.mark.parametrize("variant", [SIGN_VARIANTS[0], SIGN_VARIANTS[2]])
def test_session_token_is_refused(server, account, variant):
    c = cvm(server, account, *variant, token="some-temporary-session-token")
    expect_error(c, "AuthFailure.TokenFailure", describe, c)


@pytest.mark.parametrize("variant", [SIGN_VARIANTS[0], SIGN_VARIANTS[2]])
def test_unknown_action(server, account, variant):
    c = common(server, account, sign_method=variant[0], req_method=variant[1])
    expect_error(c, "InvalidAction", c.call_json, "NoSuchAction", {})


@pytest.mark.parametrize("variant", [SIGN_VARIANTS[0], SIGN_VARIANTS[1], SIGN_VARIANTS[2]])
def test_unknown_parameter(server, account, variant):
    c = common(server, account, sign_method=variant[0], req_method=variant[1])
    expect_error(c, "UnknownParameter", c.call_json, "DescribeKeyPairs", {"NoSuchParameter": "1"})
    expect_error(c, "UnknownParameter", c.call_json, "DeleteKeyPairs",
                 {"KeyIds": [WELL_FORMED_UNKNOWN_ID], "Force": "1"})


@pytest.mark.parametrize("action,params", [
    ("CreateKeyPair", {"KeyName": "no_project"}),
    ("CreateKeyPair", {"ProjectId": 0}),
    ("ImportKeyPair", {"KeyName": "no_public_key", "ProjectId": 0}),
    ("ImportKeyPair", {"PublicKey": "ssh-ed25519 AAAA", "ProjectId": 0}),
    ("DeleteKeyPairs", {}),
    ("ModifyKeyPairAttribute", {"KeyName": "no_key_id"}),
], ids=["create-no-ProjectId", "create-no-KeyName", "import-no-PublicKey", "import-no-KeyName",
        "delete-no-KeyIds", "modify-no-KeyId"])
def test_missing_parameter(server, account, action, params):
    c = common(server, account)
    expect_error(c, "MissingParameter", c.call_json, action, params)


def test_missing_parameter_with_sdk_model(client):
    # the SDK leaves unset fields out of the request
    from tencentcloud.cvm.v20170312 import models
    req = models.CreateKeyPairRequest()
    req.KeyName = unique_name("m")
    expect_error(client, "MissingParameter", client.CreateKeyPair, req)


def test_unsupported_region(server, account):
    c = cvm(server, account, region="xx-nowhere-1")
    expect_error(c, "UnsupportedRegion", describe, c)


def test_no_such_version(server, account):
    c = common(server, account, version="2099-01-01")
    expect_error(c, "NoSuchVersion", c.call_json, "DescribeKeyPairs", {})


def test_no_such_product(server, account):
    # CBS's own version, signed for CBS: neither names a product served here.
    c = common(server, account, service="cbs", version="2017-03-17")
    expect_error(c, "NoSuchProduct", c.call_json, "DescribeKeyPairs", {})


def test_scope_naming_one_product_with_another_products_version_is_refused(server, account):
    c = common(server, account, service="cvm", version="2020-03-24")
    expect_error(c, "AuthFailure.SignatureFailure", c.call_json, "DescribeKeyPairs", {})


def test_scope_naming_no_product_routes_by_version(server, account):
    # The label the Node.js SDK signs for the endpoint 127.0.0.1:PORT.
    c = common(server, account, service="127", version=CVM_VERSION)
    assert c.call_json("DescribeKeyPairs", {})["Response"]["KeyPairSet"] is not None


@pytest.mark.parametrize("req_method", ["GET", "POST"])
def test_reused_v1_nonce_is_refused(server, account, req_method):
    params = {"Action": "DescribeKeyPairs", "Version": "2017-03-12", "Region": REGION,
              "Timestamp": int(time.time()), "Nonce": random.randint(1, 2**31),
              "SecretId": account["secret_id"], "Limit": 5}
    query = v1_query(server.endpoint, params, account["secret_key"], method=req_method)

    def send():
        if req_method == "GET":
            return requests.get(f"{server.url}/?{query}", timeout=30)
        return requests.post(f"{server.url}/", data=query, timeout=30,
                             headers={"Content-Type": "application/x-www-form-urlencoded"})

    first = RawResponse.of(send())
    r = check_success_envelope(first)
    assert r["TotalCount"] == 0 and r["KeyPairSet"] == []
    second = RawResponse.of(send())
    check_error_envelope(second, "AuthFailure.SignatureFailure")

    params["Nonce"] += 1
    fresh = requests.get(f"{server.url}/?{v1_query(server.endpoint, params, account['secret_key'])}", timeout=30)
    check_success_envelope(RawResponse.of(fresh))


@pytest.mark.parametrize("how", ["bare-get", "bare-post-json", "garbage-authorization", "v1-unsigned"])
def test_unauthenticated_requests_get_an_error_envelope(server, how):
    if how == "bare-get":
        resp, code = requests.get(server.url + "/", timeout=30), "MissingParameter"
    elif how == "bare-post-json":
        resp = requests.post(server.url + "/", data=b"{}", timeout=30,
                             headers={"Content-Type": "application/json", "X-TC-Action": "DescribeKeyPairs"})
        code = "MissingParameter"
    elif how == "garbage-authorization":
        resp = requests.post(server.url + "/", data=b"{}", timeout=30,
                             headers={"Content-Type": "application/json", "Authorization": "TC3-HMAC-SHA256 nonsense",
                                      "X-TC-Action": "DescribeKeyPairs", "X-TC-Version": "2017-03-12",
                                      "X-TC-Timestamp": str(int(time.time())), "X-TC-Region": REGION})
        code = "AuthFailure.SignatureFailure"
    else:
        resp = requests.get(server.url + "/", timeout=30, params={
            "Action": "DescribeKeyPairs", "Version": "2017-03-12", "Region": REGION, "SecretId": "AKIDx",
            "Timestamp": int(time.time()), "Nonce": 1})
        code = "AuthFailure.SignatureFailure"
    check_error_envelope(RawResponse.of(resp), code)


# ----------------------------------------------------------------------------- rate limit

def test_rate_limit_per_account_and_action(start_server):
    srv = start_server("--rate-limit", "10")
    creds = srv.create_account()
    c = cvm(srv, creds)
    outcomes = []
    for _ in range(30):
        try:
            describe(c)
            outcomes.append("ok")
        except TencentCloudSDKException as e:
            assert e.code == "RequestLimitExceeded", f"unexpected {e.code}: {e.message}"
            check_error_envelope(c.raw_responses[-1], "RequestLimitExceeded", e.requestId)
            outcomes.append(e.code)
    assert outcomes[:10] == ["ok"] * 10, f"a burst of 10 must pass: {outcomes}"
    assert outcomes.count("RequestLimitExceeded") >= 1, f"30 back-to-back calls must be limited: {outcomes}"
    assert outcomes.count("ok") >= 10, outcomes

    # the bucket is per account and per action
    other = cvm(srv, srv.create_account())
    assert describe(other).TotalCount == 0, "another account has its own budget"
    expect_error(c, "InvalidKeyPairId.NotFound", delete_keys, c, [WELL_FORMED_UNKNOWN_ID])

    # The budget refills (10 a second): calls succeed again, five in a row.
    deadline, in_a_row = time.monotonic() + 10, 0
    while in_a_row < 5:
        try:
            assert describe(c).TotalCount == 0
            in_a_row += 1
        except TencentCloudSDKException as e:
            assert e.code == "RequestLimitExceeded", f"unexpected {e.code}: {e.message}"
            assert time.monotonic() < deadline, "calls never succeeded again"
            in_a_row = 0
            time.sleep(0.5)  # half a second refills five


# ----------------------------------------------------------------------------- concurrency

def _race(n, fn):
    """Run fn(i) for i in range(n) in n threads released together; return the outcomes
    (the return value, or the SDK error code)."""
    barrier = threading.Barrier(n)
    out = [None] * n

    def run(i):
        barrier.wait()
        try:
            out[i] = fn(i)
        except TencentCloudSDKException as e:
            out[i] = e.code

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return out


def test_concurrent_imports_with_one_name_admit_exactly_one(server, keygen):
    for _ in range(5):
        creds = server.create_account()
        clients = [cvm(server, creds) for _ in range(8)]
        pubs = keygen.public_keys(8)
        outcomes = _race(8, lambda i: import_key(clients[i], "same_name", pubs[i]))
        winners = [o for o in outcomes if KEY_ID_RE.fullmatch(o or "")]
        assert len(winners) == 1, f"exactly one import may take the name: {outcomes}"
        assert sorted(set(outcomes) - set(winners)) == ["InvalidKeyPairName.Duplicate"], outcomes
        assert ids_of(describe(clients[0]).KeyPairSet) == winners


def test_concurrent_imports_of_one_public_key_admit_exactly_one(server, keygen):
    for _ in range(20):  # before the uniqueness rule, about half of the rounds lost the race
        creds = server.create_account()
        clients = [cvm(server, creds) for _ in range(8)]
        _, pub = keygen.new("ed25519")
        outcomes = _race(8, lambda i: import_key(clients[i], f"name_{i}", pub))
        winners = [o for o in outcomes if KEY_ID_RE.fullmatch(o or "")]
        assert len(winners) == 1, f"exactly one import of a public key may succeed: {outcomes}"
        assert sorted(set(outcomes) - set(winners)) == ["InvalidPublicKey.Duplicate"], outcomes
        assert describe(clients[0]).TotalCount == 1


def test_concurrent_replays_of_one_v1_request_admit_exactly_one(server, account):
    for _ in range(5):
        params = {"Action": "DescribeKeyPairs", "Version": "2017-03-12", "Region": REGION,
                  "Timestamp": int(time.time()), "Nonce": random.randint(1, 2**31),
                  "SecretId": account["secret_id"]}
        url = f"{server.url}/?{v1_query(server.endpoint, params, account['secret_key'])}"
        answers = _race(8, lambda i: RawResponse.of(requests.get(url, timeout=30)))
        accepted = [a for a in answers if "Error" not in a.json()["Response"]]
        assert len(accepted) == 1, f"one signed v1 request must be served once: {[a.body for a in answers]}"
        for a in answers:
            if a not in accepted:
                check_error_envelope(a, "AuthFailure.SignatureFailure")
