from pathlib import Path

import pytest
from coaching.auth import (
    CLIENT_IDS_ENV,
    STAFF_CLIENT_IDS_ENV,
    STAFF_ROLES,
    Role,
    principal_from_claims,
    principal_from_event,
)
from coaching.domain.errors import Forbidden, Unauthorized

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    "groups",
    ["org_admin,leader", "[org_admin leader]", '["org_admin","leader"]', ["org_admin", "leader"], "org_admin leader"],
)
def test_groups_claim_is_parsed_in_every_shape_api_gateway_produces(groups):
    principal = principal_from_claims({"sub": "p1", "custom:org_id": "o1", "cognito:groups": groups})
    assert principal.roles == frozenset({Role.ORG_ADMIN, Role.LEADER})
    assert principal.org_id == "o1"
    assert principal.person_id == "p1"


def test_person_claim_wins_over_sub():
    principal = principal_from_claims({"sub": "cognito-sub", "custom:person_id": "p9", "cognito:groups": "employee"})
    assert principal.person_id == "p9"


def test_unknown_roles_are_ignored_and_no_role_is_forbidden():
    with pytest.raises(Forbidden):
        principal_from_claims({"sub": "p1", "cognito:groups": "admin,superuser"})


@pytest.mark.parametrize("event", [{}, {"requestContext": {}}, {"requestContext": {"authorizer": {"claims": {}}}}])
def test_missing_claims_are_unauthorized(event):
    with pytest.raises(Unauthorized):
        principal_from_event(event)


def test_object_check_refuses_another_tenant():
    principal = principal_from_claims({"sub": "p1", "custom:org_id": "org-b", "cognito:groups": "org_admin"})
    principal.require_same_org("org-b", Role.ORG_ADMIN)
    with pytest.raises(Forbidden):
        principal.require_same_org("org-a", Role.ORG_ADMIN)
    with pytest.raises(Forbidden):
        principal.require_same_org("org-b", Role.FINANCE)


# ------------------------------------------------------------------ app client and token type
# The Cognito authorizer checks signature, expiry and pool; coaching.auth checks the rest.

WORKFORCE, STAFF = "workforce-client", "staff-client"


@pytest.fixture(autouse=True)
def _no_deployment(monkeypatch):
    """Every test starts outside a deployment; the ones that need one configure it."""
    for variable in (CLIENT_IDS_ENV, STAFF_CLIENT_IDS_ENV, "AWS_LAMBDA_FUNCTION_NAME"):
        monkeypatch.delenv(variable, raising=False)


@pytest.fixture
def deployed(monkeypatch):
    monkeypatch.setenv(CLIENT_IDS_ENV, f"{WORKFORCE},{STAFF}")
    monkeypatch.setenv(STAFF_CLIENT_IDS_ENV, STAFF)
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "coaching-admin")


def _claims(groups, *, aud=WORKFORCE, use="id", **extra):
    claims = {"sub": "s1", "custom:person_id": "p1", "custom:org_id": "o1", "cognito:groups": groups}
    if aud is not None:
        claims["aud"] = aud
    if use is not None:
        claims["token_use"] = use
    return {**claims, **extra}


@pytest.mark.usefixtures("deployed")
def test_an_id_token_of_a_platform_client_is_accepted():
    assert principal_from_claims(_claims("employee")).roles == frozenset({Role.EMPLOYEE})
    assert principal_from_claims(_claims("operator", aud=STAFF)).roles == frozenset({Role.OPERATOR})


@pytest.mark.usefixtures("deployed")
@pytest.mark.parametrize(
    ("aud", "token_use", "why"),
    [
        ("another-client", "id", "another application"),
        (None, "id", "another application"),
        ("", "id", "another application"),
        (f"{WORKFORCE},{STAFF}", "id", "another application"),  # a list is not a client id
        (WORKFORCE, "access", "ID token"),
        (WORKFORCE, None, "ID token"),
        (WORKFORCE, "ID", "ID token"),
    ],
)
def test_a_token_of_another_client_or_not_an_id_token_is_unauthorized(aud, token_use, why):
    with pytest.raises(Unauthorized, match=why):
        principal_from_claims(_claims("employee", aud=aud, use=token_use))


@pytest.mark.usefixtures("deployed")
def test_an_access_token_is_refused_even_with_the_client_id_claim():
    # Cognito access tokens name their client in client_id, not aud; neither makes them ID tokens.
    claims = _claims("employee", aud=None, use="access", client_id=WORKFORCE)
    with pytest.raises(Unauthorized):
        principal_from_claims(claims)


@pytest.mark.usefixtures("deployed")
@pytest.mark.parametrize("staff_role", sorted(STAFF_ROLES))
def test_staff_roles_count_only_in_tokens_of_the_staff_pool(staff_role):
    # A staff group created in the workforce pool (no MFA) by mistake grants nothing.
    with pytest.raises(Forbidden, match="no platform role"):
        principal_from_claims(_claims(staff_role.value))
    mixed = principal_from_claims(_claims(f"employee,{staff_role.value}"))
    assert mixed.roles == frozenset({Role.EMPLOYEE})
    assert principal_from_claims(_claims(staff_role.value, aud=STAFF)).roles == frozenset({staff_role})


def test_staff_roles_are_the_ones_that_change_money_or_other_peoples_records():
    assert frozenset({Role.ORG_ADMIN, Role.FINANCE, Role.OPERATOR}) == STAFF_ROLES


def test_a_lambda_function_without_the_client_list_accepts_nobody(monkeypatch):
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "coaching-admin")
    with pytest.raises(Unauthorized, match=CLIENT_IDS_ENV):
        principal_from_claims(_claims("employee"))


def test_an_empty_client_list_accepts_nobody(monkeypatch):
    monkeypatch.setenv(CLIENT_IDS_ENV, " , ")
    with pytest.raises(Unauthorized, match="another application"):
        principal_from_claims(_claims("employee"))


def test_without_a_deployment_claims_parse_as_before():
    # Unit tests and tools: no client list, not in Lambda; the claims parse without aud or token_use.
    principal = principal_from_claims(_claims("operator", aud=None, use=None))
    assert principal.roles == frozenset({Role.OPERATOR})


def test_local_development_tokens_pass_the_checks_the_local_stack_configures(monkeypatch):
    from coaching_local.apigateway import claims_as_strings
    from coaching_local.template import function_specs, load_template
    from coaching_local.tokens import dev_token, verify

    environment = function_specs(load_template(ROOT / "template.yaml"))[0].environment
    monkeypatch.setenv(CLIENT_IDS_ENV, environment[CLIENT_IDS_ENV])
    monkeypatch.setenv(STAFF_CLIENT_IDS_ENV, environment[STAFF_CLIENT_IDS_ENV])
    key = b"k" * 32
    for role in Role:
        token = dev_token(role.value, "o1", "p1", key)
        claims = claims_as_strings(verify(token, key))
        assert principal_from_claims(claims).roles == frozenset({role})
