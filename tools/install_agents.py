"""Install hakit's agents as real OCF agents under OCF_ROOT (default /usr/lib/ocf).

- The agent code (`hakit.ocf`, `hakit.resource_agents`, standard library only) is copied
  to `<OCF_ROOT>/lib/hakit/` and byte-compiled, so agents start fast and run as any user.
- One entry script per agent in `<OCF_ROOT>/resource.d/hakit/<type>`, run by the system
  interpreter with `-I -S`: no pyenv shim, no site-packages, no environment influence.
- The health alert agent (`hakit.tools.health.alert_agent` and the outbox, standard
  library only) as `/usr/libexec/hakit/alert`, an entry script of the same kind, and
  its outbox directory `/var/lib/hakit/health` (group haclient, setgid, 2770: Pacemaker
  runs alert agents as hacluster). With a scratch OCF root the entry script goes to
  `<root>/libexec/hakit/alert` and no state directory is made unless one is named.

Idempotent: files are rewritten only when their content changes; stale agents are removed.
"""

from __future__ import annotations

import grp
import importlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import hakit.ocf
import hakit.resource_agents
from hakit.resource_agents import AGENTS
from hakit.tools.health import constants

PROVIDER = "hakit"
MANIFEST = "INSTALLED"
LIBEXEC = Path("/usr/libexec") / PROVIDER
STATE_DIR = Path(constants.STATE_DIR)
STATE_GROUP = "haclient"
ALERT = "alert"
ALERT_MODULES = ("hakit.tools", "hakit.tools.health", "hakit.tools.health.constants",
                 "hakit.tools.health.outbox", "hakit.tools.health.alert_agent")  # fmt: skip
ALERT_ENTRY = """#!{python} -IS
# hakit's Pacemaker alert agent — installed by `hakit agents install`; rewritten on every install.
import sys
sys.path.insert(0, {lib!r})
from hakit.tools.health.alert_agent import main
sys.exit(main())
"""
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


def libexec_dir(root: Path | None) -> Path:
    """/usr/libexec/hakit, or <root>/libexec/hakit for a scratch OCF root."""
    return LIBEXEC if root is None else root / "libexec" / PROVIDER


def install(
    python: str = "/usr/bin/python3",
    root: Path | None = None,
    libexec: Path | None = None,
    state_dir: Path | None = None,
) -> InstallReport:
    """Copy the code, write entry scripts, byte-compile; return what changed."""
    libexec = libexec or libexec_dir(root)
    state_dir = state_dir or (STATE_DIR if root is None else None)
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
    for source, relative in _module_files(ALERT_MODULES):
        wanted.add(lib / relative)
        _write(lib / relative, source.read_bytes(), 0o644, report)
    alert = libexec / ALERT
    wanted.add(alert)
    _write(alert, ALERT_ENTRY.format(python=python, lib=str(lib)).encode(), 0o755, report)
    if state_dir is not None:
        _state_dir(state_dir, report)
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


def uninstall(root: Path | None = None, libexec: Path | None = None) -> InstallReport:
    """Remove everything `install` put in place (the outbox's data stays)."""
    libexec = libexec or libexec_dir(root)
    root = root or ocf_root()
    report = InstallReport()
    for path in (root / "lib" / PROVIDER, root / "resource.d" / PROVIDER):
        if path.exists():
            shutil.rmtree(path)
            report.removed.append(path)
    alert = libexec / ALERT
    if alert.exists():
        alert.unlink()
        report.removed.append(alert)
    if libexec.is_dir() and not any(libexec.iterdir()):
        libexec.rmdir()
    return report


def _module_files(names: tuple[str, ...]) -> Iterator[tuple[Path, Path]]:
    """(source file, path under the library) of each named module or package."""
    for name in names:
        source = Path(str(importlib.import_module(name).__file__))
        parts = name.split(".")
        if source.name == "__init__.py":
            yield source, Path(*parts, "__init__.py")
        else:
            yield source, Path(*parts[:-1], f"{parts[-1]}.py")


def _state_dir(path: Path, report: InstallReport) -> None:
    """The outbox directory: group haclient, setgid, 2770 (hacluster writes, root reads)."""
    if not path.is_dir():
        path.mkdir(parents=True)
        report.written.append(path)
    try:
        gid = grp.getgrnam(STATE_GROUP).gr_gid
    except KeyError:
        gid = -1
    if gid >= 0 and os.geteuid() == 0 and path.stat().st_gid != gid:
        os.chown(path, 0, gid)
    if path.stat().st_mode & 0o7777 != 0o2770:
        path.chmod(0o2770)


def _write(dest: Path, content: bytes, mode: int, report: InstallReport) -> None:
    if dest.exists() and dest.read_bytes() == content and (dest.stat().st_mode & 0o777) == mode:
        report.unchanged += 1
        return
    dest.parent.mkdir(parents=True, exist_ok=True)
    for parent in (dest.parent, *dest.parent.parents):
        if parent.stat().st_mode & 0o755 != 0o755 and parent != Path("/"):
            parent.chmod(parent.stat().st_mode | 0o755)
        if parent.name in ("lib", "resource.d", "libexec"):
            break
    tmp = dest.with_name(dest.name + ".tmp")
    tmp.write_bytes(content)
    tmp.chmod(mode)
    tmp.replace(dest)
    report.written.append(dest)
