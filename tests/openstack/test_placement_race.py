"""Placement over-allocates under concurrent claims with its default retry, and does not
with hakit's setting: placement 16.0.0's own code (its WSGI app, in one process of the
pinned venv) on the session's MariaDB at its default REPEATABLE-READ isolation.

The interleaving is forced, not hoped for: claim A pauses once inside its transaction
until claim B has committed (hakit.lab.placement_race). The burst is the realistic
shape: many claims at once, none paused.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from hakit.lab import openstack, placement_race
from hakit.ocf import OCFExit
from tests.openstack.conftest import Cloud, Resource


@pytest.fixture(scope="module")
def placement_dirs(cloud: Cloud, module_tmp: Path) -> dict[str, Path]:
    """Config directories: placement's default claim retry, and hakit's placement.conf."""
    openstack.create_databases(cloud.venv, cloud.mariadb.url + "/", ["placement_race"])
    dirs = {}
    for name, safe in (("default", False), ("hakit", True)):
        config = openstack.placement_config(
            database_url=cloud.db_url("placement_race"), safe_claims=safe
        )
        dirs[name] = module_tmp / f"placement-{name}"
        openstack.write_config(dirs[name] / "placement.conf", config)
    openstack.placement_db_sync(cloud.venv, [dirs["hakit"] / "placement.conf"])
    return dirs


def reproduce(cloud: Cloud, config_dir: Path, *args: str) -> dict[str, Any]:
    env = openstack.service_env(cloud.venv, OS_PLACEMENT_CONFIG_DIR=str(config_dir))
    done = subprocess.run(
        [cloud.bin("python"), placement_race.__file__, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    return result


@pytest.mark.parametrize("when", ["early", "late"])
def test_default_retry_over_allocates(
    cloud: Cloud, placement_dirs: dict[str, Path], when: str
) -> None:
    result = reproduce(cloud, placement_dirs["default"], "race", when)
    assert result["statuses"] == {"A": 204, "B": 204}
    assert result["usage"] == result["capacity"] + 1  # 11 VCPU used of 10


@pytest.mark.parametrize("when", ["early", "late"])
def test_hakit_setting_refuses_the_stale_claim(
    cloud: Cloud, placement_dirs: dict[str, Path], when: str
) -> None:
    result = reproduce(cloud, placement_dirs["hakit"], "race", when)
    # the claim that lost the race gets 409 (nova sends it again as a new request): A,
    # or B when B waited on A's row locks until A's pause ran out and A committed first
    assert sorted(result["statuses"].values()) == [204, 409], result
    assert result["usage"] == result["capacity"]


def test_hakit_setting_holds_under_a_burst(cloud: Cloud, placement_dirs: dict[str, Path]) -> None:
    result = reproduce(cloud, placement_dirs["hakit"], "burst", "90", "8")
    assert result["over"] == 0, result
    assert all(used <= result["capacity"] for used in result["usages"]), result
    assert result["statuses"].get("204") == sum(result["usages"]), result  # none lost


def test_scheduler_agent_refuses_placements_default_retry(
    cloud: Cloud, placement_dirs: dict[str, Path], module_tmp: Path
) -> None:
    """validate-all (and so start) of the nova-scheduler agent enforces hakit's setting."""
    scheduler = Resource(
        "nova-scheduler",
        module_tmp,
        "ns-validate:0",
        binary=cloud.bin("nova-scheduler"),
        config=str(cloud.nova_conf),
    )

    def validate(placement_config: Path) -> Any:
        return scheduler("validate-all", OCF_RESKEY_placement_config=str(placement_config))

    refused = validate(placement_dirs["default"] / "placement.conf")
    assert refused.code == OCFExit.ERR_CONFIGURED
    assert refused.exit_reason and "allocation_conflict_retry_count = 10" in refused.exit_reason
    assert "Traceback" not in refused.stderr
    assert validate(placement_dirs["hakit"] / "placement.conf").code == OCFExit.SUCCESS
    assert validate(module_tmp / "absent.conf").code == OCFExit.ERR_INSTALLED
    started = scheduler(
        "start", OCF_RESKEY_placement_config=str(placement_dirs["default"] / "placement.conf")
    )
    assert started.code == OCFExit.ERR_CONFIGURED  # start validates first: nothing runs
