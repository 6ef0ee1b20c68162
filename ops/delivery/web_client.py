"""Upload the static web client (clients/web) to its bucket with cache-busting names.

Every asset goes up under a name carrying its content hash (`app.3f2a9c1e.js`) and is cached for a
year; `index.html` is rewritten to reference those names and goes up last, revalidated on every
request, so a deploy switches viewers to the new assets at once and a page never references an
asset that is not there yet. Earlier assets stay: pages already loaded still find theirs.

`invoke deploy` calls `upload_web_client` after `up` (ops/delivery/deploy.py: publish_web_client).
"""

from __future__ import annotations

import hashlib
import mimetypes
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CLIENT_DIR = Path(__file__).resolve().parents[2] / "clients" / "web"
INDEX = "index.html"
IMMUTABLE = "public, max-age=31536000, immutable"
# The page itself: always revalidated, so a new deploy shows at once (CloudFront caches it 0 s).
REVALIDATE = "no-cache"
_REFERENCE = re.compile(r'(?P<attr>\b(?:src|href))="(?P<path>[^"]+)"')
_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8",
          ".html": "text/html; charset=utf-8", ".svg": "image/svg+xml", ".json": "application/json"}


class WebClientError(Exception):
    """The client directory cannot be uploaded as it is; nothing was uploaded."""


@dataclass
class Upload:
    bucket: str
    index_key: str = INDEX
    # Source name -> uploaded (hashed) key.
    assets: dict[str, str] = field(default_factory=dict)


def hashed_name(path: Path, data: bytes) -> str:
    digest = hashlib.sha256(data).hexdigest()[:8]
    return f"{path.stem}.{digest}{path.suffix}"


def content_type(name: str) -> str:
    suffix = Path(name).suffix.lower()
    return _TYPES.get(suffix) or mimetypes.guess_type(name)[0] or "application/octet-stream"


def plan(source: Path = CLIENT_DIR) -> tuple[bytes, dict[str, tuple[str, bytes]]]:
    """The rewritten index and each asset's (hashed key, bytes); raises WebClientError, uploads nothing."""
    if not source.is_dir():
        raise WebClientError(f"{source}: no web client directory")
    index = source / INDEX
    if not index.is_file():
        raise WebClientError(f"{index}: missing (the page CloudFront serves at /)")
    assets: dict[str, tuple[str, bytes]] = {}
    for path in sorted(p for p in source.rglob("*") if p.is_file() and p != index):
        relative = path.relative_to(source).as_posix()
        data = path.read_bytes()
        key = (path.parent.relative_to(source) / hashed_name(path, data)).as_posix()
        assets[relative] = (key, data)
    html = index.read_text(encoding="utf-8")
    missing: list[str] = []

    def rewrite(match: re.Match[str]) -> str:
        target = match["path"]
        if re.match(r"^(?:[a-z]+:|//|#|/)", target):  # absolute, external or in-page: left alone
            return match[0]
        local = target.removeprefix("./")
        if local not in assets:
            missing.append(target)
            return match[0]
        return f'{match["attr"]}="{assets[local][0]}"'

    rewritten = _REFERENCE.sub(rewrite, html)
    if missing:
        raise WebClientError(f"{index}: references {', '.join(sorted(set(missing)))}, not in {source}")
    return rewritten.encode("utf-8"), assets


def upload_web_client(s3: Any, bucket: str, source: Path = CLIENT_DIR) -> Upload:
    """Upload `source` to `bucket` (a boto3 S3 client): hashed assets first, index.html last."""
    index, assets = plan(source)
    result = Upload(bucket=bucket)
    for name, (key, data) in assets.items():
        s3.put_object(Bucket=bucket, Key=key, Body=data, ContentType=content_type(name), CacheControl=IMMUTABLE)
        result.assets[name] = key
    s3.put_object(Bucket=bucket, Key=INDEX, Body=index, ContentType=content_type(INDEX), CacheControl=REVALIDATE)
    return result
