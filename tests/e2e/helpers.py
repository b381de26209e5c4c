"""Helpers for end-to-end tests: an HTTP client with a token, and valid payloads."""

import uuid
from dataclasses import dataclass
from typing import Any

import requests


@dataclass
class Api:
    url: str
    token: str | None

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        raw: str | None = None,
        content_type: str = "application/json",
        params: dict | None = None,
    ) -> requests.Response:
        headers = {"Content-Type": content_type}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        if body is not None:
            import json

            raw = json.dumps(body)
        return requests.request(
            method,
            self.url + path,
            data=raw.encode() if raw is not None else None,
            headers=headers,
            params=params,
            timeout=120,
        )


@dataclass
class Tenant:
    org_id: str
    admin: Api
    admin_person_id: str


def person_row(hr_id: str, **overrides: Any) -> dict[str, Any]:
    row = {
        "external_hr_id": hr_id,
        "name": f"Person {hr_id}",
        "email": f"{hr_id.lower()}@example.com",
        "level": "first_time_manager",
        "function": "engineering",
        "department": "Platform",
        "location": "Berlin",
        "languages": ["de", "en"],
        "time_zone": "Europe/Berlin",
    }
    return row | overrides


def coach_profile(**overrides: Any) -> dict[str, Any]:
    profile = {
        "name": "Grace Coach",
        "email": f"grace-{uuid.uuid4().hex[:8]}@coaches.example",
        "languages": ["en", "es"],
        "time_zone": "Europe/Madrid",
        "industries": ["technology"],
        "functions": ["engineering"],
        "roles_held": [{"level": "manager", "function": "engineering", "industry": "technology", "years": 6}],
        "specialties": ["delegation", "giving-feedback"],
        "certifications": ["ICF PCC"],
        "operating_experience_years": 15,
        "paid_coaching_hours": 800,
        "programs": ["SCALE", "GROW"],
        "capacity": 8,
        "weekly_availability": [{"weekday": 1, "start": "09:00", "end": "12:00"}],
    }
    return profile | overrides


def make_tenant(local_stack, operator: Api, name: str) -> Tenant:
    created = operator.call(
        "POST", "/orgs", {"name": name, "time_zone": "Europe/Berlin", "currency": "EUR", "industry": "technology"}
    )
    assert created.status_code == 201, created.text
    org_id = created.json()["org_id"]
    # Sessions are only booked where they can be billed: every test tenant gets a price book.
    # Imported here: the adapters read their table names once, after pytest_configure set them.
    from coaching_local.seed import give_price_book

    give_price_book(org_id, "EUR")
    admin_person = str(uuid.uuid4())
    admin = Api(local_stack.url, local_stack.token(["org_admin"], org_id=org_id, person_id=admin_person))
    return Tenant(org_id=org_id, admin=admin, admin_person_id=admin_person)
