"""The web client upload against a real moto S3: hashed names, cache headers, index last, clean refusals."""

from __future__ import annotations

import re

import pytest

from ops.delivery.web_client import CLIENT_DIR, IMMUTABLE, REVALIDATE, WebClientError, upload_web_client

BUCKET = "refarch-dev-web-123456789012-us-east-1"


@pytest.fixture
def s3(clients):
    clients.s3.create_bucket(Bucket=BUCKET)
    return clients.s3


def keys(s3) -> list[str]:
    return sorted(o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET).get("Contents", []))


def test_shipped_client_uploads_with_hashed_assets_and_a_revalidated_index(s3):
    result = upload_web_client(s3, BUCKET)
    assert set(result.assets) == {"app.js", "style.css"}
    assert all(re.fullmatch(r"(app|style)\.[0-9a-f]{8}\.(js|css)", key) for key in result.assets.values())
    assert keys(s3) == sorted([*result.assets.values(), "index.html"])
    index = s3.get_object(Bucket=BUCKET, Key="index.html")
    html = index["Body"].read().decode()
    assert index["CacheControl"] == REVALIDATE and index["ContentType"].startswith("text/html")
    for name, key in result.assets.items():
        assert f'"{key}"' in html and f'"{name}"' not in html
        obj = s3.get_object(Bucket=BUCKET, Key=key)
        assert obj["CacheControl"] == IMMUTABLE
        assert obj["Body"].read() == (CLIENT_DIR / name).read_bytes()
    assert s3.head_object(Bucket=BUCKET, Key=result.assets["app.js"])["ContentType"].startswith("text/javascript")


def test_a_changed_asset_gets_a_new_name_and_the_old_one_stays(s3, tmp_path):
    for name in ("index.html", "app.js", "style.css"):
        (tmp_path / name).write_bytes((CLIENT_DIR / name).read_bytes())
    first = upload_web_client(s3, BUCKET, tmp_path)
    (tmp_path / "app.js").write_text("console.log('v2');\n")
    second = upload_web_client(s3, BUCKET, tmp_path)
    assert second.assets["app.js"] != first.assets["app.js"]
    assert second.assets["style.css"] == first.assets["style.css"], "unchanged content keeps its name"
    assert first.assets["app.js"] in keys(s3), "pages already loaded still find their script"
    html = s3.get_object(Bucket=BUCKET, Key="index.html")["Body"].read().decode()
    assert second.assets["app.js"] in html and first.assets["app.js"] not in html


def test_a_page_referencing_a_missing_file_uploads_nothing(s3, tmp_path):
    (tmp_path / "index.html").write_text('<script src="missing.js"></script><a href="https://example.com">x</a>')
    (tmp_path / "app.js").write_text("1;")
    with pytest.raises(WebClientError, match=r"references missing\.js, not in"):
        upload_web_client(s3, BUCKET, tmp_path)
    assert keys(s3) == []


def test_a_directory_without_index_is_refused_by_name(s3, tmp_path):
    with pytest.raises(WebClientError, match=r"index\.html: missing"):
        upload_web_client(s3, BUCKET, tmp_path)
    with pytest.raises(WebClientError, match="no web client directory"):
        upload_web_client(s3, BUCKET, tmp_path / "nope")
