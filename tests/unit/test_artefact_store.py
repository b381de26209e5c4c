"""Report artefact links: an S3 presigned GET deployed, an HMAC-signed expiring link locally."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from coaching.adapters.artefact_store import LocalArtefacts, S3Artefacts, artefacts_from_environment, s3_client
from coaching_local.artefacts import LocalArtefactServer
from coaching_local.server import LocalRequest
from werkzeug.test import EnvironBuilder


def test_the_deployed_link_is_a_presigned_get_of_the_object_for_minutes() -> None:
    client = s3_client(region_name="eu-west-1", aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key="secret")
    store = S3Artefacts("reports-bucket", client)
    url = store.link("org-1", "2026-05", "report.html", datetime.now(UTC) + timedelta(minutes=5))
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    assert "reports-bucket" in parts.netloc + parts.path
    assert parts.path.endswith("/org-1/2026-05/report.html")
    assert query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]
    assert 290 <= int(query["X-Amz-Expires"][0]) <= 300


def _serve(server: LocalArtefactServer, url: str) -> int:
    parts = urlsplit(url)
    environ = EnvironBuilder(path=parts.path, query_string=parts.query, method="GET").get_environ()
    return server.serve(LocalRequest(environ)).status_code


def test_a_local_link_serves_the_file_until_it_expires_and_never_when_tampered(tmp_path: Path) -> None:
    server = LocalArtefactServer(tmp_path, key=b"k" * 32)
    env = server.environment("http://127.0.0.1:3000") | {"REPORT_BUCKET": "local-reportbucket"}
    store = artefacts_from_environment(env)
    assert isinstance(store, LocalArtefacts)
    store.store("org-1", "2026-05", {"report.html": b"<html>ok</html>"})
    good = store.link("org-1", "2026-05", "report.html", datetime.now(UTC) + timedelta(minutes=5))
    assert _serve(server, good) == 200
    assert _serve(server, good.replace("org-1", "org-2")) == 403  # another org's path: the signature fails
    assert _serve(server, good.replace("signature=", "signature=00")) == 403
    expired = store.link("org-1", "2026-05", "report.html", datetime.fromtimestamp(time.time() - 1, UTC))
    assert _serve(server, expired) == 403
    missing = store.link("org-1", "2026-05", "figures.csv", datetime.now(UTC) + timedelta(minutes=5))
    assert _serve(server, missing) == 404
