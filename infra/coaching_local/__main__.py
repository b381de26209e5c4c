"""`python -m coaching_local <command>`: run the local stack, fire schedules, mint tokens, build OpenAPI."""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from coaching_local import tokens
from coaching_local.dynamodb_local import (
    DynamoDBLocal,
    DynamoDBLocalError,
    ensure_tables,
    existing_tables,
    is_answering,
)
from coaching_local.gateway import LocalGateway, LocalStackError, build_openapi, dump_openapi
from coaching_local.paths import default_template, repo_root
from coaching_local.template import TemplateError, load_template

log = logging.getLogger("coaching_local")

UP_PREFIX = "local"
SEED_MARKER = "seeded.json"
# The demo's sizes: (people per org, coaches, demo-month participants per org). `small` is for tests and CI.
SCALES: dict[str, tuple[int, int, int]] = {"full": (500, 300, 30), "small": (120, 60, 17)}


def _wait_for_signal() -> None:
    """Block until Ctrl-C or SIGTERM; the caller then stops everything in order."""
    stop = threading.Event()

    def handler(signum: int, frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)
    while not stop.wait(0.5):
        pass


def _repo_path(value: str) -> Path:
    path = Path(value)
    return path if path.is_absolute() else repo_root() / path


def _print_tokens(summary: dict[str, Any] | None, key: bytes) -> None:
    subjects: dict[str, Any] = (summary or {}).get("token_subjects") or {}
    print("\nDevelopment tokens (Authorization: Bearer <token>):")
    for role in tokens.ROLES:
        subject = subjects.get(role) or {}
        org_id, person_id = subject.get("org_id"), subject.get("person_id")
        if role not in tokens.PLATFORM_ROLES and not org_id:
            print(f"  {role:<10} (no seeded subject; mint one: python -m coaching_local token --role {role} --org ORG)")
            continue
        token = tokens.dev_token(role, org_id, person_id, key, email=subject.get("email"))
        print(f"  {role:<10} org={org_id or '-'} person={person_id or '-'}\n    {token}")


def _seed(url: str, key: bytes, table_names: dict[str, str], args: argparse.Namespace) -> dict[str, Any]:
    """The base roster (domain services), then a month of activity over HTTP (coaching_local.demo_month).

    The stack's clock is moved to the first morning of last month before the roster is seeded (the people
    must have joined before the month they are reported in), and always returned to real time after.
    """
    from coaching_local.demo_month import DemoMonth, move_clock  # a broken seed must fail loudly
    from coaching_local.seed import DEMO_ORGS, seed_demo, seeded_rows

    people, coaches, participants = SCALES[args.scale]
    started = time.monotonic()
    demo = None if args.no_demo_month else DemoMonth(url, key, participants_per_org=participants, progress=_progress)
    try:
        if demo is not None:
            demo.begin()
        _progress(f"[seed] {len(DEMO_ORGS)} orgs of {people} people and {coaches} coaches, through the domain services")
        summary = seed_demo(table_names, people_per_org=people, coaches=coaches)
        _progress(f"[seed] base roster seeded in {time.monotonic() - started:.0f} s")
        if demo is not None:
            orgs = [org | {"currency": spec["currency"]} for org, spec in zip(summary["orgs"], DEMO_ORGS, strict=True)]
            month_started = time.monotonic()
            summary["demo_month"] = demo.run(orgs, seeded_rows(summary)).as_dict()
            _progress(f"[demo month] done in {time.monotonic() - month_started:.0f} s")
    finally:
        if demo is not None:
            move_clock(url, None)  # never leave the stack in the past
    summary["seed_seconds"] = round(time.monotonic() - started, 1)
    summary["scale"] = args.scale
    return summary


def _progress(message: str) -> None:
    print(message, flush=True)


def _print_demo_report(url: str, summary: dict[str, Any] | None, key: bytes) -> None:
    """Where the demo month's report is: its API path and a fresh short-lived link to the HTML, per org."""
    month = (summary or {}).get("demo_month")
    if not month:
        return
    from coaching_local.demo_month import DemoHttpError, report_link

    leader = ((summary or {}).get("token_subjects") or {}).get("leader") or {}
    released = month["capture"].get("assessments_released", 0)
    print(f"\nThe demo month {month['period']}: {month['participants']} people, {month['sessions_completed']} sessions "
          f"completed, {month['no_shows']} no-shows, {released} 360s released")  # fmt: skip
    for org_id, path in month["reports"].items():
        hint = "the leader token above" if org_id == leader.get("org_id") else (
            f"a leader token: python -m coaching_local token --role leader --org {org_id}")  # fmt: skip
        print(f"  Report        GET {url}{path}  (with {hint})")
        try:
            print(f"  HTML report   {report_link(url, key, org_id, month['period'])}  (valid for 5 minutes; "
                  f"a fresh one: GET {url}{path}/download)")  # fmt: skip
        except DemoHttpError as exc:
            print(f"  HTML report   not available: {exc}")


def cmd_up(args: argparse.Namespace) -> int:
    template_path = Path(args.template) if args.template else default_template()
    template = load_template(template_path)
    data_dir = _repo_path(args.data_dir)
    endpoint = f"http://127.0.0.1:{args.dynamodb_port}"
    db: DynamoDBLocal | None = None
    if is_answering(endpoint):
        print(f"Reusing the DynamoDB already answering on {endpoint}")
    else:
        db = DynamoDBLocal(args.dynamodb_port, data_dir=data_dir)
        db.start()
    gateway: LocalGateway | None = None
    try:
        before = existing_tables(endpoint)
        table_names = ensure_tables(endpoint, template, args.table_prefix)
        fresh = any(name not in before for name in table_names.values())
        gateway = LocalGateway(template_path, port=args.port, prefix=args.table_prefix, dynamodb_endpoint=endpoint)
        # The gateway first: it sets the environment the seed's domain code reads, and receives its events.
        gateway.start()
        marker = data_dir / SEED_MARKER
        summary: dict[str, Any] | None = None
        if not args.no_seed and (fresh or not marker.is_file()):
            summary = _seed(gateway.url, gateway.signing_key, table_names, args)
            data_dir.mkdir(parents=True, exist_ok=True)
            marker.write_text(json.dumps(summary, indent=2, default=str) + "\n", encoding="utf-8")
            shown = {k: v for k, v in summary.items() if k not in {"token_subjects", "demo_month"}}
            print(f"Seeded the demo data: {json.dumps(shown, default=str)}")
        elif marker.is_file():
            summary = json.loads(marker.read_text(encoding="utf-8"))
            print(f"Keeping existing data (seeded earlier; delete {marker} to seed again)")
        url = gateway.url
        print(
            f"\ncoaching-platform local stack is up\n"
            f"  API           {url}\n"
            f"  Swagger UI    {url}/docs\n"
            f"  OpenAPI       {url}/openapi.json\n"
            f"  DynamoDB      {endpoint} (tables: {', '.join(table_names.values())})\n"
            f"  Schedules     {url}/_local/schedules  (fire: python -m coaching_local fire NAME)\n"
            f"  Deliveries    {url}/_local/deliveries   Dead letters {url}/_local/dead-letters\n"
            f"  Streams       {url}/_local/streams  (pause, resume, drain: POST {url}/_local/streams/NAME/pause)"
        )
        _print_tokens(summary, gateway.signing_key)
        _print_demo_report(url, summary, gateway.signing_key)
        print("\nCtrl-C stops everything.", flush=True)
        _wait_for_signal()
    finally:
        if gateway is not None:
            gateway.stop()
        if db is not None:
            db.stop()
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    template_path = Path(args.template) if args.template else default_template()
    ensure_tables(args.dynamodb_endpoint, load_template(template_path), args.table_prefix)
    gateway = LocalGateway(
        template_path,
        host=args.host,
        port=args.port,
        prefix=args.table_prefix,
        dynamodb_endpoint=args.dynamodb_endpoint,
        run_scheduler=not args.no_scheduler,
        streams_paused=args.streams_paused,
    )
    gateway.start()
    try:
        print(f"READY {gateway.url}", flush=True)
        _wait_for_signal()
    finally:
        gateway.stop()
    return 0


def cmd_fire(args: argparse.Namespace) -> int:
    name = urllib.parse.quote(args.name, safe="")
    if not args.url.startswith(("http://", "https://")):
        print(f"error: --url must be an http(s) URL, got {args.url}", file=sys.stderr)
        return 2
    url = f"{args.url.rstrip('/')}/_local/schedules/{name}/fire"
    request = urllib.request.Request(url, data=b"", method="POST")  # noqa: S310 - scheme checked above
    try:
        with urllib.request.urlopen(request, timeout=args.timeout) as response:  # noqa: S310 - local URL
            payload = json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as exc:
        body = exc.read()
        try:
            payload = json.loads(body)
        except json.JSONDecodeError:
            payload = {"status": "failed", "error": f"HTTP {exc.code}: {body[:500]!r}"}
    except urllib.error.URLError as exc:
        print(f"error: cannot reach the local stack at {args.url}: {exc.reason}", file=sys.stderr)
        return 2
    print(json.dumps(payload, indent=2, default=str))
    return 0 if payload.get("status") == "succeeded" else 1


def cmd_token(args: argparse.Namespace) -> int:
    roles = [role for value in args.role for role in value.split(",") if role]
    if not args.org and any(role not in tokens.PLATFORM_ROLES for role in roles):
        print("warning: no --org; the token carries no custom:org_id claim", file=sys.stderr)
    try:
        token = tokens.dev_token(
            roles, args.org, args.person, tokens.signing_key(), email=args.email, ttl_seconds=args.ttl
        )
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(token)
    return 0


def cmd_tables(args: argparse.Namespace) -> int:
    template_path = Path(args.template) if args.template else default_template()
    print(json.dumps(ensure_tables(args.endpoint, load_template(template_path), args.prefix), indent=2))
    return 0


def cmd_openapi(args: argparse.Namespace) -> int:
    text = dump_openapi(build_openapi(args.template))
    target = _repo_path(args.write) if args.write else _repo_path("docs/openapi.json")
    if args.check:
        current = target.read_text(encoding="utf-8") if target.is_file() else None
        if current != text:
            print(
                f"{target} is out of date; regenerate it with: python -m coaching_local openapi --write "
                f"{args.write or 'docs/openapi.json'}",
                file=sys.stderr,
            )
            return 1
        print(f"{target} is up to date")
        return 0
    if args.write:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
        print(f"wrote {target}")
        return 0
    sys.stdout.write(text)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m coaching_local", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)

    up = sub.add_parser("up", help="DynamoDB Local + tables + demo seed + gateway, until Ctrl-C")
    up.add_argument("--port", type=int, default=3000)
    up.add_argument("--dynamodb-port", type=int, default=8000)
    up.add_argument("--data-dir", default=".local/dynamodb", help="DynamoDB Local files (relative to the repo)")
    up.add_argument("--no-seed", action="store_true")
    up.add_argument("--no-demo-month", action="store_true", help="seed the roster only, without last month's activity")
    up.add_argument("--scale", choices=sorted(SCALES), default="full", help="the demo's size (small: for tests)")
    up.add_argument("--table-prefix", default=UP_PREFIX, help="table name prefix (and artefact folder)")
    up.add_argument("--template", default=None)
    up.set_defaults(func=cmd_up)

    serve = sub.add_parser("serve", help="the gateway only, against an existing DynamoDB")
    serve.add_argument("--port", type=int, default=3000)
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--dynamodb-endpoint", required=True)
    serve.add_argument("--table-prefix", default=UP_PREFIX)
    serve.add_argument("--template", default=None)
    serve.add_argument("--no-scheduler", action="store_true", help="only fire schedules on request")
    serve.add_argument(
        "--streams-paused", action="store_true", help="start stream pollers paused (POST /_local/streams/NAME/resume)"
    )
    serve.set_defaults(func=cmd_serve)

    fire = sub.add_parser("fire", help="fire a schedule now on the running stack")
    fire.add_argument("name")
    fire.add_argument("--url", default="http://127.0.0.1:3000")
    fire.add_argument("--timeout", type=float, default=60.0)
    fire.set_defaults(func=cmd_fire)

    token = sub.add_parser("token", help="print a development token")
    token.add_argument("--role", action="append", required=True, help=f"one of {', '.join(tokens.ROLES)}; repeatable")
    token.add_argument("--org", default=None)
    token.add_argument("--person", default=None)
    token.add_argument("--email", default=None)
    token.add_argument("--ttl", type=int, default=tokens.DEFAULT_TTL_SECONDS)
    token.set_defaults(func=cmd_token)

    tables = sub.add_parser("tables", help="create the template's tables")
    tables.add_argument("--endpoint", required=True)
    tables.add_argument("--prefix", default=UP_PREFIX)
    tables.add_argument("--template", default=None)
    tables.set_defaults(func=cmd_tables)

    openapi = sub.add_parser("openapi", help="print, write or check the merged OpenAPI document")
    openapi.add_argument("--write", nargs="?", const="docs/openapi.json", default=None)
    openapi.add_argument("--check", action="store_true", help="exit 1 when the file differs from a fresh build")
    openapi.add_argument("--template", default=None)
    openapi.set_defaults(func=cmd_openapi)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(args.func(args))
    except (DynamoDBLocalError, LocalStackError, TemplateError, tokens.SigningKeyError) as exc:
        # Known, explained failures: the message says what to do, a traceback would only hide it.
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
