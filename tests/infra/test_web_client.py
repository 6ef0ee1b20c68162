"""The web client's bucket on every shipped stack: private, encrypted, readable only through this OAC."""

from __future__ import annotations

import json

import pytest


@pytest.fixture(params=("dev", "staging", "prod"))
def s(request, synths):
    return synths[request.param]


def client_bucket(s) -> dict:
    return s.one("aws:s3/bucket:Bucket", "web-client-bucket")


def attached(s, typ: str) -> dict:
    bucket = client_bucket(s)
    (r,) = [r for r in s.of_type(typ) if r["inputs"]["bucket"] == bucket["id"]]
    return r["inputs"]


def test_bucket_is_private_owner_enforced_encrypted_and_versioned(s):
    block = attached(s, "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock")
    assert all(block[k] is True for k in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls",
                                          "restrictPublicBuckets"))
    owner = attached(s, "aws:s3/bucketOwnershipControls:BucketOwnershipControls")
    assert owner["rule"] == {"objectOwnership": "BucketOwnerEnforced"}
    sse = attached(s, "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration")
    assert sse["rules"][0]["applyServerSideEncryptionByDefault"]["sseAlgorithm"] == "AES256"
    assert attached(s, "aws:s3/bucketVersioning:BucketVersioning")["versioningConfiguration"] == {"status": "Enabled"}
    assert s.outputs["web_client_bucket"] == client_bucket(s)["inputs"]["bucket"]


def test_distribution_reads_it_through_oac_at_the_root(s):
    d = s.one("aws:cloudfront/distribution:Distribution")["inputs"]
    oac = s.one("aws:cloudfront/originAccessControl:OriginAccessControl")
    assert (oac["inputs"]["originAccessControlOriginType"], oac["inputs"]["signingBehavior"],
            oac["inputs"]["signingProtocol"]) == ("s3", "always", "sigv4")
    web = next(o for o in d["origins"] if o["originId"] == "web")
    assert web["originAccessControlId"] == oac["id"]
    assert web["domainName"] == f"{client_bucket(s)['inputs']['bucket']}.s3.us-east-1.amazonaws.com"
    assert d["defaultCacheBehavior"]["targetOriginId"] == "web" and d["defaultRootObject"] == "index.html"
    assert d["defaultCacheBehavior"]["allowedMethods"] == ["GET", "HEAD"], "the client bucket takes no writes"


def test_bucket_policy_admits_only_this_distribution_and_tls(s):
    distribution = s.one("aws:cloudfront/distribution:Distribution")
    bucket_arn = f"arn:aws:s3:::{client_bucket(s)['inputs']['bucket']}"
    statements = json.loads(attached(s, "aws:s3/bucketPolicy:BucketPolicy")["policy"])["Statement"]
    allow = [st for st in statements if st["Effect"] == "Allow"]
    assert allow == [{
        "Sid": "CloudFrontReadsThroughOac", "Effect": "Allow", "Principal": {"Service": "cloudfront.amazonaws.com"},
        "Action": "s3:GetObject", "Resource": f"{bucket_arn}/*",
        "Condition": {"StringEquals": {"AWS:SourceArn": distribution["arn"]}},
    }]
    deny = [st for st in statements if st["Effect"] == "Deny"]
    assert deny[0]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_a_stack_without_the_client_routes_everything_to_the_api(config_of):
    from infra.aws.edge import CACHING_DISABLED
    from ops.synth import run

    s = run(config_of("dev", edge={"web_client": False}), "dev")
    assert s.of_type("aws:cloudfront/originAccessControl:OriginAccessControl") == []
    d = s.one("aws:cloudfront/distribution:Distribution")["inputs"]
    assert [o["originId"] for o in d["origins"]] == ["api"]
    assert d["defaultCacheBehavior"]["cachePolicyId"] == CACHING_DISABLED
    assert s.outputs["web_client_bucket"] is None
