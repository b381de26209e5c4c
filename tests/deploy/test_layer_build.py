"""`sam build` produces a layer Lambda can use on arm64: right layout, aarch64 binaries."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.deploy

ROOT = Path(__file__).parents[2]
SAM = ROOT / ".venv-sam" / "bin" / "sam"
ELF_MAGIC = b"\x7fELF"
EM_AARCH64 = 183


@pytest.fixture(scope="module")
def layer(tmp_path_factory) -> Path:
    if not SAM.exists():
        pytest.fail("the SAM CLI is missing: run `bash infra/bootstrap.sh --sam`")
    build_dir = tmp_path_factory.mktemp("sam-build")
    # sam's Python builder looks for python3.12 on PATH; the project venv provides it.
    env = {"PATH": f"{ROOT / '.venv' / 'bin'}:/usr/bin:/bin", "SAM_CLI_TELEMETRY": "0", "HOME": str(Path.home())}
    result = subprocess.run(
        [
            str(SAM),
            "build",
            "DomainLayer",
            "--build-dir",
            str(build_dir),
            "--template-file",
            str(ROOT / "template.yaml"),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return build_dir / "DomainLayer"


def test_package_lands_where_lambda_looks(layer, tmp_path):
    assert (layer / "python" / "coaching" / "__init__.py").is_file()
    assert not (layer / "python" / "python").exists()
    # Lay the layer out as Lambda does (/opt/python) and import from it in an isolated
    # interpreter: only the layer is on the path. The pure-stdlib module proves the layout.
    opt = tmp_path / "opt"
    shutil.copytree(layer, opt)
    probe = (
        "import sys; sys.path[:0] = [sys.argv[1]]; import coaching, coaching.domain.taxonomy as t; "
        "print(coaching.__file__); print(len(list(t.Program)))"
    )
    result = subprocess.run(
        [sys.executable, "-I", "-c", probe, str(opt / "python")], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    origin, programs = result.stdout.split()
    assert origin == str(opt / "python" / "coaching" / "__init__.py")
    assert programs == "4"


def test_every_compiled_file_is_aarch64(layer):
    compiled = []
    for path in layer.rglob("*"):
        if not path.is_file() or path.is_symlink():
            continue
        with path.open("rb") as handle:
            header = handle.read(20)
        if header[:4] == ELF_MAGIC:
            machine = int.from_bytes(header[18:20], "little")
            compiled.append((path.relative_to(layer), machine))
    assert compiled, "expected compiled extensions (pydantic-core) in the layer"
    wrong = [str(p) for p, machine in compiled if machine != EM_AARCH64]
    assert not wrong, f"not aarch64: {wrong}"
    assert any("pydantic_core" in str(p) for p, _ in compiled)


def test_layer_and_each_function_fit_lambda_limits(layer):
    """Lambda allows 250 MB unzipped for a function with its layers; the solver is pure Python."""
    layer_bytes = sum(p.stat().st_size for p in layer.rglob("*") if p.is_file())
    assert (layer / "python" / "coaching" / "domain" / "cohort.py").is_file()
    for function in sorted((ROOT / "functions").iterdir()):
        code = sum(p.stat().st_size for p in function.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
        total = layer_bytes + code
        assert total < 250 * 1024 * 1024, f"{function.name}: {total / 2**20:.0f} MiB with the layer"
    # Leave most of the budget for growth: flag the layer early if it doubles.
    assert layer_bytes < 120 * 1024 * 1024, f"layer is {layer_bytes / 2**20:.0f} MiB"


def test_every_module_ships_as_bytecode_lambda_loads_without_compiling(layer, tmp_path):
    """/opt is read-only: a module without bytecode would be compiled again at every cold start."""
    import importlib.util

    site = layer / "python"
    sources = [p for p in site.rglob("*.py") if "__pycache__" not in p.parts]
    missing = [
        str(p.relative_to(site)) for p in sources if not Path(importlib.util.cache_from_source(str(p))).is_file()
    ]
    assert not missing, f"no bytecode for {len(missing)} modules, e.g. {missing[:5]}"
    # unchecked-hash bytecode (PEP 552 flags = 0b01): loaded without comparing it to its source.
    cached = Path(importlib.util.cache_from_source(str(site / "coaching" / "domain" / "booking.py")))
    flags = int.from_bytes(cached.read_bytes()[4:8], "little")
    assert flags == 0b01, f"bytecode flags {flags:#b}"
    # The import runs the bytecode, not the source: a copy whose source is changed still
    # imports the shipped module.
    opt = tmp_path / "opt"
    shutil.copytree(site / "coaching", opt / "python" / "coaching")
    (opt / "python" / "coaching" / "domain" / "booking.py").write_text("raise SystemExit('source was compiled')\n")
    probe = "import sys; sys.path[:0] = [sys.argv[1]]; import coaching.domain.booking as b; print(b.Booking.__name__)"
    result = subprocess.run(
        [sys.executable, "-I", "-B", "-c", probe, str(opt / "python")], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "Booking"
