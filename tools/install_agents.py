"""Install hakit's agents as real OCF agents under OCF_ROOT (default /usr/lib/ocf).

- The agent code (`hakit.ocf`, `hakit.resource_agents`, standard library only) is copied
  to `<OCF_ROOT>/lib/hakit/` and byte-compiled, so agents start fast and run as any user.
- One entry script per agent in `<OCF_ROOT>/resource.d/hakit/<type>`, run by the system
  interpreter with `-I -S`: no pyenv shim, no site-packages, no environment influence.

Idempotent: files are rewritten only when their content changes; stale agents are removed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import hakit.ocf
import hakit.resource_agents
from hakit.resource_agents import AGENTS

PROVIDER = "hakit"
MANIFEST = "INSTALLED"
ENTRY = """#!{python} -IS
# ocf:{provider}:{type} — installed by `hakit agents install`; rewritten on every install.
import sys
sys.path.insert(0, {lib!r})
from {module} import AGENT
AGENT.main()
"""


@dataclass
class InstallReport:
    """What an install changed."""

    written: list[Path] = field(default_factory=list)
    removed: list[Path] = field(default_factory=list)
    unchanged: int = 0


def ocf_root() -> Path:
    return Path(os.environ.get("OCF_ROOT") or "/usr/lib/ocf")


def install(python: str = "/usr/bin/python3", root: Path | None = None) -> InstallReport:
    """Copy the code, write entry scripts, byte-compile; return what changed."""
    root = root or ocf_root()
    lib = root / "lib" / PROVIDER
    agents_dir = root / "resource.d" / PROVIDER
    report = InstallReport()
    wanted: set[Path] = set()
    for package in (hakit.ocf, hakit.resource_agents):
        source = Path(package.__path__[0])
        target = lib / Path(*package.__name__.split("."))
        for path in sorted(source.rglob("*.py")):
            dest = target / path.relative_to(source)
            wanted.add(dest)
            _write(dest, path.read_bytes(), 0o644, report)
    for agent_type, module in sorted(AGENTS.items()):
        script = ENTRY.format(
            python=python, provider=PROVIDER, type=agent_type, lib=str(lib), module=module
        )
        dest = agents_dir / agent_type
        wanted.add(dest)
        _write(dest, script.encode(), 0o755, report)
    manifest = lib / MANIFEST
    previous = set(manifest.read_text().split()) if manifest.exists() else set()
    for stale in sorted(previous - {str(p) for p in wanted}):
        Path(stale).unlink(missing_ok=True)
        report.removed.append(Path(stale))
    _write(manifest, "".join(f"{p}\n" for p in sorted(map(str, wanted))).encode(), 0o644, report)
    if report.written or report.removed:
        subprocess.run(
            [python, "-I", "-m", "compileall", "-q", "-j", "0", str(lib / "hakit")],
            check=True, stdout=subprocess.DEVNULL,
        )  # fmt: skip
    return report


def uninstall(root: Path | None = None) -> InstallReport:
    """Remove everything `install` put in place."""
    root = root or ocf_root()
    report = InstallReport()
    for path in (root / "lib" / PROVIDER, root / "resource.d" / PROVIDER):
        if path.exists():
            shutil.rmtree(path)
            report.removed.append(path)
    return report


def _write(dest: Path, content: bytes, mode: int, report: InstallReport) -> None:
    if dest.exists() and dest.read_bytes() == content and (dest.stat().st_mode & 0o777) == mode:
        report.unchanged += 1
        return
    dest.parent.mkdir(parents=True, exist_ok=True)
    for parent in (dest.parent, *dest.parent.parents):
        if parent.stat().st_mode & 0o755 != 0o755 and parent != Path("/"):
            parent.chmod(parent.stat().st_mode | 0o755)
        if parent.name in ("lib", "resource.d"):
            break
    tmp = dest.with_name(dest.name + ".tmp")
    tmp.write_bytes(content)
    tmp.chmod(mode)
    tmp.replace(dest)
    report.written.append(dest)
