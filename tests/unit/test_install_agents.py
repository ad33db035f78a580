"""`hakit agents install` into a scratch OCF root: idempotent, fast entry scripts, clean removal."""

from __future__ import annotations

import subprocess
from pathlib import Path

from hakit.tools.install_agents import install, uninstall


def test_install_is_idempotent_and_the_entry_script_runs(tmp_path: Path) -> None:
    first = install(root=tmp_path)
    script = tmp_path / "resource.d" / "hakit" / "service"
    assert script in first.written and script.stat().st_mode & 0o777 == 0o755
    assert script.read_text().startswith("#!/usr/bin/python3 -IS\n")
    second = install(root=tmp_path)
    assert second.written == [] and second.removed == []
    compiled = list((tmp_path / "lib" / "hakit").rglob("*.pyc"))
    assert compiled, "the agent code is byte-compiled at install time"
    done = subprocess.run([str(script), "meta-data"], capture_output=True, text=True, check=False)
    assert done.returncode == 0 and '<resource-agent name="service"' in done.stdout


def test_stale_files_are_removed_and_uninstall_leaves_nothing(tmp_path: Path) -> None:
    install(root=tmp_path)
    stale = tmp_path / "resource.d" / "hakit" / "retired-agent"
    manifest = tmp_path / "lib" / "hakit" / "INSTALLED"
    manifest.write_text(manifest.read_text() + f"{stale}\n")
    stale.write_text("#!/bin/sh\n")
    report = install(root=tmp_path)
    assert stale in report.removed and not stale.exists()
    uninstall(root=tmp_path)
    assert not (tmp_path / "lib" / "hakit").exists()
    assert not (tmp_path / "resource.d" / "hakit").exists()


def test_the_monitor_path_imports_nothing_heavy(tmp_path: Path) -> None:
    """The installed agent must not import lxml, typing, enum, re or subprocess on monitor."""
    install(root=tmp_path)
    script = tmp_path / "resource.d" / "hakit" / "service"
    done = subprocess.run(
        ["/usr/bin/python3", "-IS", "-X", "importtime", str(script), "monitor"],
        env={
            "OCF_RESOURCE_INSTANCE": "x",
            "HAKIT_RUN_DIR": str(tmp_path / "run"),
            "OCF_RESKEY_binary": "sh",
            "OCF_RESKEY_CRM_meta_interval": "10000",
        },
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 7
    imported = {line.split("|")[-1].strip() for line in done.stderr.splitlines() if "|" in line}
    assert imported.isdisjoint({"lxml", "typing", "enum", "re", "subprocess", "logging"})
    assert "hakit.resource_agents.service" in imported


def test_the_installed_tree_is_self_sufficient(tmp_path: Path) -> None:
    """Every installed module imports under `python3 -IS` with only the OCF library (and its
    site-packages, as the entry scripts do) added: hakit.resource_agents.health and what it
    imports came along, and nothing from elsewhere."""
    install(root=tmp_path)
    lib = tmp_path / "lib" / "hakit"
    modules = sorted(
        ".".join(p.relative_to(lib).with_suffix("").parts).removesuffix(".__init__")
        for p in (lib / "hakit").rglob("*.py")
    )
    assert {
        "hakit.resource_agents.health.publisher",
        "hakit.resource_agents.health.api",
        "hakit.resource_agents.health.cli",
        "hakit.resource_agents.publisher",
        "hakit.ocf.cluster",
    } <= set(modules)
    assert not any(m.startswith(("hakit.tools.topology", "hakit.lab")) for m in modules)
    code = (
        f"import importlib, sys; sys.path.insert(0, {str(lib)!r}); "
        f"sys.path.append({str(lib / 'site-packages')!r}); "
        "[importlib.import_module(m) for m in sys.argv[1:]]; "
        "print('\\n'.join(f'{n} {getattr(m, \"__file__\", None)}' for n, m in "
        "sys.modules.items() if n.startswith('hakit')))"
    )
    done = subprocess.run(
        ["/usr/bin/python3", "-IS", "-c", code, *modules],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    files = dict(line.split(" ", 1) for line in done.stdout.splitlines())
    assert all(f == "None" or f.startswith(f"{lib}/") for f in files.values()), files


def test_the_health_command_is_installed_and_removed(tmp_path: Path) -> None:
    first = install(root=tmp_path)
    health = tmp_path / "libexec" / "hakit" / "health"
    assert health in first.written and health.stat().st_mode & 0o777 == 0o755
    assert health.read_text().startswith(
        f"#!/usr/bin/python3 -IS\n# `hakit health` — installed by `hakit agents install`; "
        f"rewritten on every install.\nimport sys\nsys.path.insert(0, '{tmp_path}/lib/hakit')\n"
    )
    store = ["--subscriptions", str(tmp_path / "subscriptions.db")]
    added = subprocess.run(
        [str(health), "tokens", *store, "add", "mano"],
        capture_output=True,
        text=True,
        check=False,
        env={},
    )
    assert added.returncode == 0 and added.stdout.startswith("hakit_"), added.stderr
    listed = subprocess.run(
        [str(health), "tokens", *store, "list"], capture_output=True, text=True, check=False, env={}
    )
    assert (listed.returncode, listed.stdout) == (0, "mano\n")
    usage = subprocess.run(
        [str(health), "publish", "--help"], capture_output=True, text=True, check=False, env={}
    )
    assert usage.returncode == 0 and usage.stdout.startswith("usage: hakit health publish ")
    removed = uninstall(root=tmp_path).removed
    assert health in removed and not health.parent.exists()


def test_the_node_dependencies_are_copied_beside_the_agents(tmp_path: Path) -> None:
    """keystoneauth1, PyYAML and prometheus_client (and what they require, not setuptools)
    import under the agents' `python3 -IS` from the installed site-packages alone, and
    keystoneauth1 finds its plugins (entry points in the copied dist-info)."""
    install(root=tmp_path)
    site = tmp_path / "lib" / "hakit" / "site-packages"
    assert {"keystoneauth1", "yaml", "prometheus_client", "requests", "urllib3"} <= {
        p.name for p in site.iterdir()
    }
    assert not (site / "setuptools").exists()
    code = (
        f"import sys; sys.path.append({str(site)!r}); "
        "import keystoneauth1.session, keystoneauth1.loading as l, yaml, prometheus_client; "
        "assert l.get_plugin_loader('v3applicationcredential'); "
        "print('\\n'.join(m.__file__ for m in (keystoneauth1, yaml, prometheus_client)))"
    )
    done = subprocess.run(
        ["/usr/bin/python3", "-IS", "-c", code], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert all(line.startswith(f"{site}/") for line in done.stdout.split()), done.stdout
    script = (tmp_path / "resource.d" / "hakit" / "cinder-volume").read_text()
    assert f"sys.path.append('{site}')" in script  # last: the standard library wins


def test_a_dry_run_counts_what_an_install_would_change_and_writes_nothing(
    tmp_path: Path,
) -> None:
    """What Ansible's check mode reports for the agents task."""
    planned = install(root=tmp_path, dry_run=True)
    assert planned.written and not any(tmp_path.iterdir())
    done = install(root=tmp_path)
    assert sorted(planned.written) == sorted(done.written)
    script = tmp_path / "resource.d" / "hakit" / "service"
    script.write_text("#!/bin/sh\n# edited by hand\n")
    drift = install(root=tmp_path, dry_run=True)
    assert drift.written == [script] and drift.unchanged == len(done.written) - 1
    assert script.read_text().endswith("# edited by hand\n")
    assert install(root=tmp_path).written == [script]
    assert install(root=tmp_path, dry_run=True).written == []
