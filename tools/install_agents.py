"""Install hakit's agents as real OCF agents under OCF_ROOT (default /usr/lib/ocf).

- The node's library — `hakit.ocf` and `hakit.resource_agents` (the agents and the
  node-side health code), the closed set that runs on a node (standard library only;
  a test keeps it from importing operator or lab code) — is copied to
  `<OCF_ROOT>/lib/hakit/` and byte-compiled, so agents start fast and run as any user.
- The node's third-party share — keystoneauth1 (OpenStack calls), PyYAML (clouds.yaml),
  prometheus_client (the publisher's metrics) and what they require — copied from this
  environment to `<OCF_ROOT>/lib/hakit/site-packages/`, last on the agents' sys.path and
  imported only by the code paths that need them (a monitor never does).
- One entry script per agent in `<OCF_ROOT>/resource.d/hakit/<type>`, run by the system
  interpreter with `-I -S`: no pyenv shim, no site-packages, no environment influence.
- Two entry scripts of the same kind in `/usr/libexec/hakit/`: `alert`, the Pacemaker
  alert agent, and `health`, the `hakit health` verbs (table, publish, serve,
  subscriptions, tokens) that `ocf:hakit:publisher` runs. Also the outbox directory
  `/var/lib/hakit/health` (group haclient, setgid, 2770: Pacemaker runs alert agents as
  hacluster). With a scratch OCF root the entry scripts go to `<root>/libexec/hakit/`
  and no state directory is made unless one is named.

Idempotent: files are rewritten only when their content changes; stale files are removed.
"""

from __future__ import annotations

import ast
import grp
import importlib.util
import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from importlib import metadata
from importlib.machinery import ModuleSpec
from pathlib import Path

from hakit.resource_agents import AGENTS
from hakit.resource_agents.health import constants

PROVIDER = "hakit"
MANIFEST = "INSTALLED"
LIBEXEC = Path("/usr/libexec") / PROVIDER
STATE_DIR = Path(constants.STATE_DIR)
STATE_GROUP = "haclient"
#: Packages copied whole; the hakit modules they import come along.
LIBRARY = ("hakit.ocf", "hakit.resource_agents")
#: Distributions the node's library imports lazily, copied with what they require...
NODE_DISTRIBUTIONS = ("keystoneauth1", "PyYAML", "prometheus_client")
#: ...except build-time requirements (pbr declares setuptools; nothing imports it at run time)
NOT_AT_RUN_TIME = frozenset({"setuptools", "pip", "wheel"})
SITE = "site-packages"
#: Entry scripts in LIBEXEC: name → (what it is, the module whose main() it runs).
COMMANDS = {
    "alert": ("hakit's Pacemaker alert agent", "hakit.resource_agents.health.alert_agent"),
    "health": ("`hakit health`", "hakit.resource_agents.health.cli"),
}
COMMAND_ENTRY = """#!{python} -IS
# {what} — installed by `hakit agents install`; rewritten on every install.
import sys
sys.path.insert(0, {lib!r})
sys.path.append({site!r})
from {module} import main
sys.exit(main())
"""
ENTRY = """#!{python} -IS
# ocf:{provider}:{type} — installed by `hakit agents install`; rewritten on every install.
import sys
sys.path.insert(0, {lib!r})
sys.path.append({site!r})
from {module} import AGENT
AGENT.main()
"""


@dataclass
class InstallReport:
    """What an install changed."""

    written: list[Path] = field(default_factory=list)
    removed: list[Path] = field(default_factory=list)
    unchanged: int = 0
    warnings: list[str] = field(default_factory=list)
    dry_run: bool = False  # counted, nothing written or removed


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
    *,
    dry_run: bool = False,
) -> InstallReport:
    """Copy the code, write entry scripts, byte-compile; return what changed (with
    `dry_run`, what would change: nothing is written)."""
    libexec = libexec or libexec_dir(root)
    state_dir = state_dir or (STATE_DIR if root is None else None)
    root = root or ocf_root()
    lib = root / "lib" / PROVIDER
    agents_dir = root / "resource.d" / PROVIDER
    report = InstallReport(dry_run=dry_run)
    wanted: set[Path] = set()
    site = lib / SITE
    mismatch = _version_mismatch(python)
    if mismatch:
        report.warnings.append(mismatch)
    copies = {lib / k: v for k, v in library_files().items()}
    copies |= {site / k: v for k, v in distribution_files().items()}
    for dest, source in sorted(copies.items()):
        wanted.add(dest)
        _write(dest, source.read_bytes(), 0o644, report)
    for agent_type, module in sorted(AGENTS.items()):
        script = ENTRY.format(
            python=python,
            provider=PROVIDER,
            type=agent_type,
            lib=str(lib),
            site=str(site),
            module=module,
        )
        dest = agents_dir / agent_type
        wanted.add(dest)
        _write(dest, script.encode(), 0o755, report)
    for command, (what, module) in sorted(COMMANDS.items()):
        script = COMMAND_ENTRY.format(
            python=python, what=what, lib=str(lib), site=str(site), module=module
        )
        wanted.add(libexec / command)
        _write(libexec / command, script.encode(), 0o755, report)
    if state_dir is not None:
        _state_dir(state_dir, report)
    manifest = lib / MANIFEST
    previous = set(manifest.read_text().split()) if manifest.exists() else set()
    for stale in sorted(previous - {str(p) for p in wanted}):
        if not dry_run:
            Path(stale).unlink(missing_ok=True)
        report.removed.append(Path(stale))
    _write(manifest, "".join(f"{p}\n" for p in sorted(map(str, wanted))).encode(), 0o644, report)
    if (report.written or report.removed) and not dry_run:
        subprocess.run(
            [python, "-I", "-m", "compileall", "-q", "-j", "0", str(lib / "hakit"), str(site)],
            check=True,
            stdout=subprocess.DEVNULL,
        )
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
    for command in sorted(COMMANDS):
        if (libexec / command).exists():
            (libexec / command).unlink()
            report.removed.append(libexec / command)
    if libexec.is_dir() and not any(libexec.iterdir()):
        libexec.rmdir()
    return report


def library_files(packages: tuple[str, ...] = LIBRARY) -> dict[Path, Path]:
    """{path under the library: source file} of `packages` (whole), their parent packages
    and, transitively, every hakit module they import outside `if TYPE_CHECKING:`."""
    files: dict[Path, Path] = {}
    pending = list(packages)
    seen: set[str] = set()
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        seen.add(name)
        spec = _find_spec(name)
        if spec is None or spec.origin is None:  # not a module, or the `hakit` namespace
            continue
        parts = name.split(".")
        pending.extend(".".join(parts[:i]) for i in range(2, len(parts)))  # parent packages
        origin = Path(spec.origin)
        is_package = spec.submodule_search_locations is not None
        relative = Path(*parts, "__init__.py") if is_package else Path(*parts[:-1], origin.name)
        files[relative] = origin
        if is_package and name in packages:
            for path in origin.parent.rglob("*.py"):
                inner = path.relative_to(origin.parent).with_suffix("").parts
                pending.append(".".join((*parts, *inner)).removesuffix(".__init__"))
        pending.extend(_hakit_imports(origin, name if is_package else name.rpartition(".")[0]))
    return files


def distribution_files(names: tuple[str, ...] = NODE_DISTRIBUTIONS) -> dict[Path, Path]:
    """{path under site-packages: installed file} of `names` and, transitively, the
    distributions they require (extras and build-time ones left out; one under an
    environment marker when it is installed), with their dist-info (keystoneauth1 finds
    its plugins through entry points)."""
    files: dict[Path, Path] = {}
    pending, seen = [(name, True) for name in names], set()
    while pending:
        name, needed = pending.pop()
        key = re.sub(r"[-_.]+", "-", name).lower()
        if key in seen or key in NOT_AT_RUN_TIME:
            continue
        try:
            distribution = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            if not needed:
                continue
            raise InstallError(f"{name} is not installed here (pip install hakit)") from None
        seen.add(key)
        for item in distribution.files or ():
            relative = Path(str(item))
            if relative.parts[0] != ".." and relative.suffix != ".pyc":
                files[relative] = Path(str(distribution.locate_file(item)))
        for requirement in distribution.requires or ():
            project, _, marker = requirement.partition(";")
            if "extra" not in marker:
                match = re.match(r"\s*([A-Za-z0-9_.\-]+)", project)
                if match:
                    pending.append((match[1], not marker.strip()))
    return files


def _version_mismatch(python: str) -> str | None:
    """Why the copied dependencies may not all load under `python` (another version:
    compiled parts such as libyaml's bindings then fall back or fail), or None."""
    import sys

    try:
        done = subprocess.run(
            [python, "-I", "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
    except (OSError, subprocess.SubprocessError) as error:
        raise InstallError(f"{python} cannot run: {error}") from None
    here = f"{sys.version_info[0]}.{sys.version_info[1]}"
    there = done.stdout.strip()
    if there == here:
        return None
    return (
        f"{python} is Python {there}, this environment {here}: the dependencies copied "
        f"beside the agents were installed for {here} (install hakit with {python})"
    )


class InstallError(Exception):
    """The environment lacks something the node's library needs."""


def _find_spec(name: str) -> ModuleSpec | None:
    try:
        return importlib.util.find_spec(name)
    except ImportError:  # a name imported from a module (its parent is no package)
        return None


def _hakit_imports(source: Path, package: str) -> list[str]:
    """Modules named by `source`'s hakit imports (`from a import b`: a, and a.b in case it
    is a module), relative ones resolved against `package`; TYPE_CHECKING blocks skipped."""
    names: list[str] = []
    nodes: list[ast.AST] = [ast.parse(source.read_bytes(), str(source))]
    while nodes:
        node = nodes.pop()
        if isinstance(node, ast.If) and getattr(node.test, "id", "") == "TYPE_CHECKING":
            nodes.extend(node.orelse)
            continue
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            names.append(base)
            names.extend(f"{base}.{alias.name}" for alias in node.names)
        nodes.extend(ast.iter_child_nodes(node))
    return [name for name in names if name.startswith("hakit.")]


def _state_dir(path: Path, report: InstallReport) -> None:
    """The outbox directory: group haclient, setgid, 2770 (hacluster writes, root reads)."""
    if not path.is_dir():
        report.written.append(path)
        if report.dry_run:
            return
        path.mkdir(parents=True)
    elif report.dry_run:
        return
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
    report.written.append(dest)
    if report.dry_run:
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
