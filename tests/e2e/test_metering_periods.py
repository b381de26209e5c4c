"""Every period metering takes, in a path or a query, is validated by its type at the API.

Regression for the hardening finding `POST /orgs/{org_id}/invoices/0000-01/run` -> 502 ("year 0 is
out of range"): a month the platform does not bill (2000-01 to 2999-12) is a 422 naming the
`period` field, before any code runs, on every route; never a 5xx.
"""

from datetime import UTC, datetime, timedelta

import pytest

from .helpers import Api, Tenant, make_tenant

pytestmark = pytest.mark.e2e

BAD_PERIODS = [
    "0000-01",  # the finding: year 0 made the month arithmetic fail
    "0001-01",
    "1999-12",
    "3000-01",
    "9999-12",  # its next month would be year 10000
    "2025-13",
    "2025-00",
    "2025-3",
    "25-03",
    "2025-03-01",
    "abcd-ef",
    "2025-03 ",
    "२०२५-०३",  # digits of another script: `\d` would match them, the type takes ASCII only
    "2\u0966\u0968\u096b-03",
]

# (method, route) of every metering route with a period in its path.
PATH_ROUTES = [
    ("GET", "/orgs/{org_id}/invoices/{period}"),
    ("GET", "/orgs/{org_id}/invoices/{period}/invoice.csv"),
    ("POST", "/orgs/{org_id}/invoices/{period}/finalise"),
    ("POST", "/orgs/{org_id}/invoices/{period}/run"),
]


@pytest.fixture(scope="module")
def billed(local_stack, operator: Api) -> Tenant:
    """A tenant of its own (with a price book), so its invoice runs touch no other test's months."""
    return make_tenant(local_stack, operator, "Metering periods")


def _refused_on_period(response) -> None:
    assert response.status_code == 422, (response.status_code, response.text)
    error = response.json()["error"]
    assert error["code"] == "validation_failed"
    assert [field["field"] for field in error["fields"]] == ["period"]


@pytest.mark.parametrize(("method", "route"), PATH_ROUTES)
@pytest.mark.parametrize("period", BAD_PERIODS)
def test_a_bad_period_in_the_path_is_a_422_naming_it(operator: Api, billed: Tenant, method, route, period) -> None:
    _refused_on_period(operator.call(method, route.format(org_id=billed.org_id, period=period)))


@pytest.mark.parametrize("period", BAD_PERIODS)
def test_a_bad_period_in_the_reconcile_query_is_a_422_naming_it(operator: Api, billed: Tenant, period) -> None:
    _refused_on_period(operator.call("POST", f"/orgs/{billed.org_id}/billing/reconcile", params={"period": period}))


def test_a_missing_reconcile_period_is_a_422_naming_it(operator: Api, billed: Tenant) -> None:
    _refused_on_period(operator.call("POST", f"/orgs/{billed.org_id}/billing/reconcile"))


def test_the_first_and_last_billable_months_pass_the_type(operator: Api, billed: Tenant) -> None:
    base = f"/orgs/{billed.org_id}"
    for period in ("2000-01", "2999-12"):
        assert operator.call("GET", f"{base}/invoices/{period}").status_code == 404  # valid, just not drawn
        report = operator.call("POST", f"{base}/billing/reconcile", params={"period": period})
        assert report.status_code == 200, report.text
        assert report.json()["period"] == period
    # A month that has not ended is refused by the rule, also naming the period.
    future = operator.call("POST", f"{base}/invoices/2999-12/run")
    assert future.status_code == 422, future.text
    assert [field["field"] for field in future.json()["error"]["fields"]] == ["period"]
    assert "has not ended" in future.json()["error"]["message"]


def test_last_month_is_invoiced_then_the_bad_periods_still_refused(operator: Api, billed: Tenant) -> None:
    last_month = (datetime.now(UTC).replace(day=1) - timedelta(days=1)).strftime("%Y-%m")
    run = operator.call("POST", f"/orgs/{billed.org_id}/invoices/{last_month}/run")
    assert run.status_code == 200, run.text
    assert run.json()["period"] == last_month
    _refused_on_period(operator.call("POST", f"/orgs/{billed.org_id}/invoices/0000-01/run"))
    assert operator.call("GET", f"/orgs/{billed.org_id}/invoices/{last_month}").json() == run.json()
