"""Competency frameworks: the platform default and an org's calibrated version."""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources
from typing import Annotated

from pydantic import Field, model_validator

from coaching.domain.common import ShortText, Slug, StrictModel


class Competency(StrictModel):
    id: Slug
    name: ShortText
    category: ShortText = "general"
    description: Annotated[str, Field(max_length=1000)] = ""
    # A calibrated competency that is not in the default framework says which default one it
    # refines, so coaches' specialties (expressed in the default vocabulary) still match.
    maps_to: Slug | None = None


class Framework(StrictModel):
    framework_id: Slug = "default"
    name: ShortText
    version: Annotated[int, Field(ge=1)] = 1
    competencies: Annotated[list[Competency], Field(min_length=3, max_length=60)]

    @model_validator(mode="after")
    def _ids_unique(self) -> Framework:
        ids = [c.id for c in self.competencies]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise ValueError(f"competency ids must be unique; repeated: {', '.join(duplicates)}")
        return self

    def ids(self) -> set[str]:
        return {c.id for c in self.competencies}


@lru_cache(maxsize=1)
def default_framework() -> Framework:
    text = resources.files("coaching.data").joinpath("default_framework.json").read_text("utf-8")
    return Framework.model_validate(json.loads(text))


def check_calibration(framework: Framework) -> list[tuple[str, str]]:
    """Return (field, problem) pairs where a calibrated framework loses the shared vocabulary."""
    base = default_framework().ids()
    problems: list[tuple[str, str]] = []
    for index, competency in enumerate(framework.competencies):
        anchor = competency.maps_to or competency.id
        if anchor not in base:
            field = f"competencies[{index}].maps_to"
            problems.append((field, f"'{competency.id}' must map to a default competency ({anchor!r} is not one)"))
    return problems
