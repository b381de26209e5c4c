"""The layer rules of docs/architecture.md, checked on the source so that they stay true."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "layers" / "domain" / "python" / "coaching"
IO_LIBRARIES = ("boto3", "botocore", "pynamodb")


def _modules(layer: str) -> list[Path]:
    return sorted((PACKAGE / layer).glob("*.py"))


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def _offending(path: Path, forbidden: tuple[str, ...]) -> list[str]:
    return sorted(name for name in _imports(path) if name.startswith(forbidden))


@pytest.mark.parametrize("path", _modules("domain"), ids=lambda p: p.name)
def test_the_domain_imports_no_service_adapter_or_io_library(path: Path) -> None:
    forbidden = ("coaching.services", "coaching.adapters", "coaching.api", "coaching.config", *IO_LIBRARIES)
    assert _offending(path, forbidden) == []


@pytest.mark.parametrize("path", _modules("services"), ids=lambda p: p.name)
def test_services_reach_storage_only_through_their_ports(path: Path) -> None:
    assert _offending(path, ("coaching.adapters", "coaching.api", *IO_LIBRARIES)) == []


@pytest.mark.parametrize("path", _modules("services"), ids=lambda p: p.name)
def test_services_change_entities_only_through_their_methods(path: Path) -> None:
    assert "model_copy(update=" not in path.read_text()


def _bases(node: ast.ClassDef) -> set[str]:
    return {base.id if isinstance(base, ast.Name) else ast.unparse(base) for base in node.bases}


@pytest.mark.parametrize("path", _modules("adapters"), ids=lambda p: p.name)
def test_adapters_define_no_entity_status_or_domain_error(path: Path) -> None:
    domain_bases = {"DeferredModel", "StrictModel", "BaseModel", "StrEnum", "Enum", "Exception", "DomainError",
                    "Conflict", "InvalidInput", "NotFound", "Forbidden", "Unauthorized"}  # fmt: skip
    offenders = [
        node.name
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.ClassDef) and _bases(node) & domain_bases
    ]
    assert offenders == []


def test_the_layer_rules_cover_every_module() -> None:
    assert _modules("domain")
    assert _modules("services")
    assert _modules("adapters")
