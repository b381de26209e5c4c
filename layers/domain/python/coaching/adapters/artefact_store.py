"""Where report artefacts live, and the short-lived links that download them.

Deployed: the template's private, encrypted report bucket (`REPORT_BUCKET`), objects under
`<org>/<yyyy-mm>/<file>`, and an S3 presigned GET (`generate_presigned_url`) valid for minutes.
Locally (`REPORT_ARTEFACTS_DIR` set by the local stack): the same layout in a folder, and a link to the
local stack's `/_local/artefacts/...` route signed with HMAC-SHA256 over the path and expiry
(`REPORT_LINK_KEY`), which the local stack checks before serving the file.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

CONTENT_TYPES = {"html": "text/html; charset=utf-8", "csv": "text/csv; charset=utf-8"}
LOCAL_ROUTE = "/_local/artefacts"


def object_key(org_id: str, period: str, name: str) -> str:
    return f"{org_id}/{period}/{name}"


def content_type(name: str) -> str:
    return CONTENT_TYPES.get(name.rsplit(".", 1)[-1], "application/octet-stream")


def local_signature(key: bytes, path: str, expires: int) -> str:
    return hmac.new(key, f"{path}\n{expires}".encode(), hashlib.sha256).hexdigest()


def s3_client(**overrides: Any) -> Any:
    """An S3 client that signs links with SigV4 (required for presigned GETs in every current region)."""
    import boto3
    from botocore.config import Config

    return boto3.client("s3", config=Config(signature_version="s3v4"), **overrides)


class S3Artefacts:
    def __init__(self, bucket: str, client: Any = None) -> None:
        self.bucket = bucket
        self._client: Any = client

    def _s3(self) -> Any:
        if self._client is None:
            self._client = s3_client()
        return self._client

    def store(self, org_id: str, period: str, files: Mapping[str, bytes]) -> None:
        for name, body in sorted(files.items()):
            # Encrypted by the bucket's default (SSE-S3): no key grant beyond the bucket's objects.
            self._s3().put_object(Bucket=self.bucket, Key=object_key(org_id, period, name), Body=body,
                                  ContentType=content_type(name))  # fmt: skip

    def link(self, org_id: str, period: str, name: str, expires_at: datetime) -> str:
        seconds = max(1, int((expires_at - datetime.now(expires_at.tzinfo)).total_seconds()))
        url: str = self._s3().generate_presigned_url(
            "get_object",
            Params={"Bucket": self.bucket, "Key": object_key(org_id, period, name)},
            ExpiresIn=seconds,
        )
        return url


class LocalArtefacts:
    def __init__(self, folder: Path, bucket: str, base_url: str, key: bytes) -> None:
        self.folder, self.bucket, self.base_url, self.key = folder, bucket, base_url.rstrip("/"), key

    def path(self, org_id: str, period: str, name: str) -> Path:
        return self.folder / self.bucket / object_key(org_id, period, name)

    def store(self, org_id: str, period: str, files: Mapping[str, bytes]) -> None:
        for name, body in sorted(files.items()):
            target = self.path(org_id, period, name)
            target.parent.mkdir(parents=True, exist_ok=True)
            temporary = target.with_suffix(target.suffix + ".tmp")
            temporary.write_bytes(body)
            temporary.replace(target)  # a reader never sees half a file

    def link(self, org_id: str, period: str, name: str, expires_at: datetime) -> str:
        path = f"{LOCAL_ROUTE}/{quote(self.bucket)}/{quote(object_key(org_id, period, name))}"
        expires = int(expires_at.timestamp())
        return f"{self.base_url}{path}?expires={expires}&signature={local_signature(self.key, path, expires)}"


def artefacts_from_environment(environ: Mapping[str, str] | None = None) -> S3Artefacts | LocalArtefacts:
    env = os.environ if environ is None else environ
    bucket = env.get("REPORT_BUCKET", "")
    folder = env.get("REPORT_ARTEFACTS_DIR")
    if folder:
        return LocalArtefacts(Path(folder), bucket or "reports", env["REPORT_LINK_BASE"],
                              env["REPORT_LINK_KEY"].encode())  # fmt: skip
    if not bucket:
        raise RuntimeError("REPORT_BUCKET is not set: report artefacts have nowhere to go")
    return S3Artefacts(bucket)
