"""The local stand-in for the report bucket: a folder, and signed expiring links the local stack serves.

report_generation writes artefacts through `coaching.adapters.artefact_store.LocalArtefacts` when
`REPORT_ARTEFACTS_DIR` is set (this module sets it, with `REPORT_LINK_BASE` and a per-run `REPORT_LINK_KEY`).
`GET /_local/artefacts/<bucket>/<org>/<yyyy-mm>/<file>?expires=<unix>&signature=<hmac>` answers the file
while the link is unexpired and its HMAC-SHA256 over path and expiry verifies, like an S3 presigned GET:
403 otherwise (404 when the file does not exist). Nothing else of the folder is reachable.
"""

from __future__ import annotations

import hmac
import secrets
import time
from pathlib import Path

from coaching.adapters.artefact_store import LOCAL_ROUTE, content_type, local_signature
from werkzeug.wrappers import Response

from coaching_local.server import LocalRequest, json_response, response

PREFIX = LOCAL_ROUTE + "/"


class LocalArtefactServer:
    def __init__(self, folder: Path, key: bytes | None = None) -> None:
        self.folder = folder
        self.key = key or secrets.token_bytes(32)

    def environment(self, base_url: str) -> dict[str, str]:
        return {
            "REPORT_ARTEFACTS_DIR": str(self.folder),
            "REPORT_LINK_BASE": base_url,
            "REPORT_LINK_KEY": self.key.hex(),  # the functions sign with the hex text as the HMAC key
        }

    def handles(self, path: str) -> bool:
        return path.startswith(PREFIX)

    def serve(self, request: LocalRequest) -> Response:
        path = request.raw_path
        if request.method != "GET":
            return json_response(405, {"message": "artefact links are GET only"})
        try:
            expires = int(request.args.get("expires", ""))
        except ValueError:
            return json_response(403, {"message": "the link has no valid expiry"})
        signature = request.args.get("signature", "")
        expected = local_signature(self.key.hex().encode(), path, expires)
        if not hmac.compare_digest(signature, expected):
            return json_response(403, {"message": "the link's signature does not verify"})
        if expires < time.time():
            return json_response(403, {"message": "the link has expired"})
        relative = path.removeprefix(PREFIX)
        parts = relative.split("/")
        if len(parts) != 4 or any(p in {"", ".", ".."} for p in parts):
            return json_response(404, {"message": "no such artefact"})
        target = self.folder.joinpath(*parts)
        if not target.is_file():
            return json_response(404, {"message": "no such artefact"})
        return response(200, target.read_bytes(), [("Content-Type", content_type(parts[-1])),
                                                   ("Cache-Control", "private, no-store")])  # fmt: skip
