"""The house's rules, read from the source: what runs on a node imports nothing of the
operator tools or the lab, only `hakit.ocf` names Pacemaker/Corosync programs, and no
room is over 500 lines."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from hakit.tools.install_agents import LIBRARY, library_files

REPO = Path(__file__).resolve().parents[2]
#: What goes on a node (a closed set) and what does not.
NODE = ("ocf", "resource_agents")
PRODUCT = ("ocf", "resource_agents", "tools", "lab")
#: The one module that runs cluster programs.
RUNNER = REPO / "ocf" / "cluster.py"
PROGRAMS = {
    "attrd_updater",
    "cibadmin",
    "corosync",
    "corosync-cfgtool",
    "corosync-cmapctl",
    "corosync-keygen",
    "corosync-quorumtool",
    "crm",
    "crm_attribute",
    "crm_diff",
    "crm_failcount",
    "crm_master",
    "crm_mon",
    "crm_node",
    "crm_resource",
    "crm_shadow",
    "crm_simulate",
    "crm_standby",
    "crm_ticket",
    "crm_verify",
    "crmadmin",
    "pacemakerd",
    "pcs",
    "stonith_admin",
}
#: Third-party modules node code may import (lazily, where it needs them): Debian's
#: python3-pymysql for the OpenStack agents' depth-10 checks; and what `hakit agents
#: install` copies beside the agents: PyYAML (inventory, clouds.yaml), keystoneauth1
#: (OpenStack calls), prometheus_client (the publisher's metrics).
NODE_THIRD_PARTY = {"pymysql", "yaml", "keystoneauth1", "prometheus_client"}
MAX_LINES = 500


def sources(*folders: str) -> list[Path]:
    return sorted(p for folder in folders for p in (REPO / folder).rglob("*.py"))


def imported(path: Path) -> set[str]:
    """Every module the file imports, lazily or not (relative imports resolved)."""
    package = ".".join(("hakit", *path.relative_to(REPO).parent.parts))
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
            names.add(base)
    return names


def test_node_code_imports_no_operator_or_lab_code() -> None:
    import sys

    wrong = []
    for path in sources(*NODE):
        for name in imported(path):
            top = name.split(".")[0]
            if name.startswith("hakit."):
                if name.split(".")[1] not in NODE:
                    wrong.append(f"{path.relative_to(REPO)} imports {name}")
            elif top not in sys.stdlib_module_names and top not in NODE_THIRD_PARTY:
                wrong.append(f"{path.relative_to(REPO)} imports {name} (not standard library)")
    assert wrong == []


def test_agents_install_copies_only_node_code() -> None:
    assert LIBRARY == ("hakit.ocf", "hakit.resource_agents")
    folders = {path.parts[1] for path in library_files() if len(path.parts) > 2}
    assert folders == set(NODE)


def _literals(path: Path) -> list[tuple[int, str]]:
    """String constants that are not docstrings."""
    tree = ast.parse(path.read_text())
    docstrings = {
        id(body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and (body := node.body)
        and isinstance(body[0], ast.Expr)
        and isinstance(body[0].value, ast.Constant)
    }
    return [
        (node.lineno, node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
        if id(node) not in docstrings
    ]


def test_only_the_runner_names_cluster_programs() -> None:
    found = []
    for path in sources(*PRODUCT, "bench"):
        if path == RUNNER:
            continue
        found += [
            f"{path.relative_to(REPO)}:{line}: {text!r}"
            for line, text in _literals(path)
            if _runs_a_program(text)
        ]
    assert found == []


def _runs_a_program(text: str) -> bool:
    """`crm_mon`, `/usr/sbin/crm_mon` or `crm_mon --one-shot`: a command, not prose or a path
    such as /var/lib/corosync."""
    words = text.split()
    if not words or (words[0].startswith("/") and not re.match(r"/(usr/)?s?bin/", words[0])):
        return False
    return words[0].rsplit("/", 1)[-1] in PROGRAMS and (len(words) == 1 or words[1][0] == "-")


def test_the_program_check_sees_commands_not_prose() -> None:
    assert _runs_a_program("crm_mon") and _runs_a_program("/usr/sbin/cibadmin")
    assert _runs_a_program("crm_mon --output-as=xml")
    assert not _runs_a_program("corosync exited during start-up")
    assert not _runs_a_program("/var/lib/corosync") and not _runs_a_program("pcs rule syntax")


@pytest.mark.parametrize("folder", PRODUCT)
def test_no_room_over_500_lines(folder: str) -> None:
    big = {
        str(p.relative_to(REPO)): n
        for p in sources(folder)
        if (n := len(p.read_text().splitlines())) > MAX_LINES
    }
    assert big == {}
