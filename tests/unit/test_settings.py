"""Settings refuse to start without their table names, and name what is wrong."""

from __future__ import annotations

import pytest
from coaching.config import SettingsError, settings_from

COMPLETE = {
    "MAIN_TABLE_NAME": "coaching-main-dev",
    "CONFIDENTIAL_TABLE_NAME": "coaching-confidential-dev",
    "EVENT_BUS_NAME": "coaching-platform-dev",
    "AWS_REGION": "eu-west-1",
}


def test_a_complete_environment_gives_settings_with_the_platform_defaults() -> None:
    config = settings_from(COMPLETE)
    assert config.main_table == "coaching-main-dev"
    assert config.dynamodb_endpoint is None
    assert config.vetting_min_operating_years == 10
    assert config.roster_cache_ttl_seconds == 30.0


@pytest.mark.parametrize("missing", ["MAIN_TABLE_NAME", "CONFIDENTIAL_TABLE_NAME", "EVENT_BUS_NAME", "AWS_REGION"])
def test_a_missing_name_refuses_to_start_and_names_the_variable(missing: str) -> None:
    environ = {name: value for name, value in COMPLETE.items() if name != missing}
    with pytest.raises(SettingsError, match=f"{missing}: not set"):
        settings_from(environ)


def test_an_empty_value_counts_as_missing() -> None:
    with pytest.raises(SettingsError, match="MAIN_TABLE_NAME: not set"):
        settings_from({**COMPLETE, "MAIN_TABLE_NAME": ""})


def test_the_default_region_variable_stands_in_for_aws_region() -> None:
    environ = {name: value for name, value in COMPLETE.items() if name != "AWS_REGION"}
    assert settings_from({**environ, "AWS_DEFAULT_REGION": "us-east-1"}).region == "us-east-1"


def test_a_bad_number_is_named() -> None:
    with pytest.raises(SettingsError, match="VETTING_MIN_OPERATING_YEARS"):
        settings_from({**COMPLETE, "VETTING_MIN_OPERATING_YEARS": "ten"})
    with pytest.raises(SettingsError, match="ROSTER_CACHE_TTL_SECONDS"):
        settings_from({**COMPLETE, "ROSTER_CACHE_TTL_SECONDS": "-1"})
