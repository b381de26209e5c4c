"""The shared vocabulary that matching compares: levels, functions, industries, programs."""

from __future__ import annotations

from enum import StrEnum


class Level(StrEnum):
    INDIVIDUAL_CONTRIBUTOR = "individual_contributor"
    FIRST_TIME_MANAGER = "first_time_manager"
    MANAGER = "manager"
    SENIOR_LEADER = "senior_leader"
    EXECUTIVE = "executive"


class JobFunction(StrEnum):
    ENGINEERING = "engineering"
    PRODUCT = "product"
    SALES = "sales"
    MARKETING = "marketing"
    FINANCE = "finance"
    OPERATIONS = "operations"
    PEOPLE = "people"
    CUSTOMER_SUCCESS = "customer_success"


class Industry(StrEnum):
    TECHNOLOGY = "technology"
    FINANCIAL_SERVICES = "financial_services"
    HEALTHCARE = "healthcare"
    RETAIL = "retail"
    MANUFACTURING = "manufacturing"
    ENERGY = "energy"
    PUBLIC_SECTOR = "public_sector"
    PROFESSIONAL_SERVICES = "professional_services"
    MEDIA = "media"
    TELECOMMUNICATIONS = "telecommunications"
    EDUCATION = "education"
    LOGISTICS = "logistics"


class Program(StrEnum):
    SCALE = "SCALE"  # on-demand 1:1
    GROW = "GROW"  # cohorts for transitions
    EXEC = "EXEC"  # executive coaching
    TOGETHER = "TOGETHER"  # team workshops


class Transition(StrEnum):
    """A promotion across a threshold the policy acts on; also the wait-list's name in paths and keys."""

    NEW_MANAGER = "new_manager"  # individual contributor → first-time manager (or manager)
    SENIOR_LEADER = "senior_leader"  # manager → senior leader or executive
