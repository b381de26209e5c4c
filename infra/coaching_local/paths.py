"""Where the repository and its git-ignored local state live."""

from __future__ import annotations

import os
from pathlib import Path


def repo_root() -> Path:
    """The repository root: `COACHING_REPO_ROOT`, else the folder holding template.yaml above this file."""
    override = os.environ.get("COACHING_REPO_ROOT")
    if override:
        return Path(override).resolve()
    here = Path(__file__).resolve()
    for parent in here.parents:
        if (parent / "template.yaml").is_file() and (parent / "pyproject.toml").is_file():
            return parent
    # The package is installed editable from infra/coaching_local, so two levels up is the repo.
    return here.parents[2]


def local_dir() -> Path:
    """`.local/` under the repo root: git-ignored state (DynamoDB files, signing key, seed marker)."""
    return repo_root() / ".local"


def default_template() -> Path:
    return repo_root() / "template.yaml"
