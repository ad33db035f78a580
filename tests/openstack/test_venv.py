"""The cached OpenStack venv and the config writer (hakit.lab.openstack)."""

from __future__ import annotations

import time
from pathlib import Path

from hakit.lab import openstack
from tests.openstack.conftest import Cloud


def test_a_built_venv_is_reused_in_well_under_a_second(cloud: Cloud) -> None:
    began = time.monotonic()
    assert openstack.ensure_venv() == cloud.venv
    assert time.monotonic() - began < 1.0
    assert openstack.venv_is_current(cloud.venv)
    stamp = (cloud.venv / openstack.STAMP).read_text().strip()
    assert stamp == openstack.venv_key()
    assert openstack.CONSTRAINTS.read_text().count("cinder==29.0.0") == 1


def test_venv_key_follows_the_constraints_and_the_interpreter(tmp_path: Path) -> None:
    assert openstack.venv_key() == openstack.venv_key("/usr/bin/python3")
    assert openstack.venv_key() != openstack.venv_key("/bin/sh")
    assert not openstack.venv_is_current(tmp_path / "nothing-here")


def test_render_config(tmp_path: Path) -> None:
    sections = {
        "DEFAULT": {
            "debug": False,
            "host": None,
            "enabled_backends": ["a", "b"],
            "state_path": tmp_path,
        },
        "x": {},
    }
    assert openstack.render_config(sections) == (
        f"[DEFAULT]\ndebug = false\nenabled_backends = a,b\nstate_path = {tmp_path}\n\n[x]\n"
    )
    path = openstack.write_config(tmp_path / "etc" / "a.conf", sections)
    assert path.stat().st_mode & 0o777 == 0o640
