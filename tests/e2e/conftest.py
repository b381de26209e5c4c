"""End-to-end fixtures: real HTTP against the local stack, with development tokens."""

import pytest

from .helpers import Api, Tenant, make_tenant


@pytest.fixture(scope="session")
def operator(local_stack) -> Api:
    return Api(local_stack.url, local_stack.token(["operator"], person_id="operator-e2e"))


@pytest.fixture(scope="session")
def tenant_a(local_stack, operator) -> Tenant:
    return make_tenant(local_stack, operator, "Org A")


@pytest.fixture(scope="session")
def tenant_b(local_stack, operator) -> Tenant:
    return make_tenant(local_stack, operator, "Org B")
