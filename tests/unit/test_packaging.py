"""Packaging: the `hakit` wheel is the node runtime (hakit.ocf, hakit.resource_agents) and
the operator tools (hakit.tools), never the lab; the lab is a distribution of its own,
hakit-lab (lab/pyproject.toml), and every package is in exactly one of the two.

The wheel is built here from a copy of its sources (`python -m build --no-isolation`: no
network, and no stale build/lib of the checkout can slip in), then installed into a
fresh venv whose only hakit is the wheel's (its dependencies are seen from the dev venv,
so that this tier stays offline; tests/lab/test_install_path.py installs them for real).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import sysconfig
import tomllib
import zipfile
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
MAIN = tomllib.loads((REPO / "pyproject.toml").read_text())
LAB = tomllib.loads((REPO / "lab" / "pyproject.toml").read_text())
#: The wheel's packages and their folders (the lab's: lab/pyproject.toml).
WHEEL_FOLDERS = {
    "hakit.ocf": "ocf",
    "hakit.resource_agents": "resource_agents",
    "hakit.tools": "tools",
}
#: What the wheel is built from.
SOURCES = ("pyproject.toml", "README.md", *WHEEL_FOLDERS.values())
SYSTEM_PYTHON = "/usr/bin/python3"


def build_wheel(out: Path) -> Path:
    """The hakit wheel, built from a copy of its sources into `out`."""
    tree = out / "source"
    for name in SOURCES:
        if (REPO / name).is_dir():
            ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
            shutil.copytree(REPO / name, tree / name, ignore=ignore)
        else:
            tree.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, tree / name)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "build",
            "--wheel",
            "--no-isolation",
            "--outdir",
            str(out),
            str(tree),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    [wheel] = out.glob("hakit-*.whl")
    return wheel


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_wheel(tmp_path_factory.mktemp("wheel"))


def packages(project: dict[str, Any]) -> set[str]:
    return set(project["tool"]["setuptools"]["packages"])


def test_every_package_is_in_one_distribution() -> None:
    found = {
        ".".join(("hakit", *init.parent.relative_to(REPO).parts))
        for folder in ("ocf", "resource_agents", "tools", "lab")
        for init in (REPO / folder).rglob("__init__.py")
        if "build" not in init.relative_to(REPO).parts
    }
    main, lab = packages(MAIN), packages(LAB)
    assert main | lab == found
    assert {p for p in main if p.startswith("hakit.lab")} == set()
    assert lab == {p for p in found if p == "hakit.lab" or p.startswith("hakit.lab.")}


def test_the_two_distributions_map_the_folders_and_agree_on_the_version() -> None:
    assert MAIN["tool"]["setuptools"]["package-dir"] == WHEEL_FOLDERS
    assert LAB["tool"]["setuptools"]["package-dir"] == {"hakit.lab": "."}
    version = MAIN["project"]["version"]
    assert LAB["project"]["version"] == version
    assert LAB["project"]["dependencies"] == [f"hakit=={version}"]
    dev = MAIN["project"]["optional-dependencies"]["dev"]
    assert any(re.fullmatch(r"build==[\d.]+", d) for d in dev), "build is pinned for `make wheel`"
    assert "-e '.[dev]' -e ./lab" in (REPO / "Makefile").read_text()  # the dev venv has both


def test_the_wheel_is_the_node_runtime_and_the_tools_without_the_lab(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        info = next(n for n in names if n.endswith(".dist-info/METADATA")).rsplit("/", 1)[0]
        metadata = archive.read(f"{info}/METADATA").decode()
        entry_points = archive.read(f"{info}/entry_points.txt").decode()
    assert {n.split("/")[0] for n in names} == {"hakit", info}
    assert {n.split("/")[1] for n in names if n.startswith("hakit/")} == {
        "ocf",
        "resource_agents",
        "tools",
    }
    assert not [n for n in names if n.startswith("hakit/lab")]
    assert "hakit/__init__.py" not in names  # a namespace, shared with hakit-lab
    for folder in WHEEL_FOLDERS.values():
        assert f"hakit/{folder}/py.typed" in names
    for source in (REPO / "resource_agents").rglob("*.py"):
        assert f"hakit/{source.relative_to(REPO)}" in names
    assert "hakit = hakit.tools.cli:main" in entry_points
    required = re.findall(r"^Requires-Dist: ([^;\n]+)$", metadata, re.MULTILINE)
    assert required == MAIN["project"]["dependencies"]


def test_the_wheel_installs_and_runs_without_the_lab(wheel: Path, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([SYSTEM_PYTHON, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps",
         "--no-index", "--disable-pip-version-check", str(wheel)],
        check=True,
        capture_output=True,
    )  # fmt: skip
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    # the dependencies from the dev venv: a plain path, so its editable hakit stays out
    (Path(site) / "dev-dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")

    def hakit(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(venv / "bin" / "hakit"), *args],
            capture_output=True,
            text=True,
            check=False,
            cwd=tmp_path,
            timeout=120,
        )

    where = subprocess.run(
        [str(python), "-c", "import hakit.tools, hakit.ocf; print(hakit.tools.__file__)"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert where.stdout.startswith(site)
    no_lab = subprocess.run(
        [str(python), "-c", "import hakit.lab"], capture_output=True, text=True, check=False
    )
    assert "No module named 'hakit.lab'" in no_lab.stderr
    listed = hakit("agents", "list")
    assert listed.returncode == 0, listed.stderr
    assert "ocf:hakit:nova-scheduler" in listed.stdout
    example = str(REPO / "examples" / "openstack.yaml")
    valid = hakit("topology", "validate", "--no-agents", example)
    assert valid.returncode == 0, valid.stdout + valid.stderr
    root = tmp_path / "ocf"
    installed = hakit("agents", "install", "--ocf-root", str(root))
    assert installed.returncode == 0, installed.stderr
    agent = root / "resource.d" / "hakit" / "nova-scheduler"
    described = subprocess.run(
        [str(agent), "meta-data"], capture_output=True, text=True, check=False
    )
    assert '<resource-agent name="nova-scheduler"' in described.stdout
    absent = hakit("lab", "status")
    assert absent.returncode == 2 and "invalid choice: 'lab'" in absent.stderr
