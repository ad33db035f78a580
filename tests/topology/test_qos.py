"""The `qos` section and capacity: every tier a back-end cannot enforce is refused at its
line in one pass; the tiers become nova, cinder and neutron settings in each service's
own units; and `simulate` (real crm_simulate) shows a node loss moving resources only
where capacity remains, what stays stopped, and the overload without a placement
strategy (which `validate` warns about)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hakit.tools.topology import qos
from hakit.tools.topology.load import load_text
from hakit.tools.topology.validate import check

REPO = Path(__file__).parents[2]
EXAMPLE = REPO / "examples" / "qos.yaml"

HEAD = """\
cluster: {name: q, properties: {stonith-enabled: false}}
nodes: [{name: n1}]
"""

REFUSED = (
    HEAD
    + """\
qos:
  tiers:
    - name: gold
      compute: {guaranteed_percent: 50, maximum_percent: 100}
      disk: {guaranteed_iops: 100, maximum_iops: 50, maximum_bandwidth: 12 furlongs}
      network: {guaranteed_bandwidth: 2Gbit/s, maximum_bandwidth: 1Gbit/s}
    - name: gold
      compute: {guaranteed_percent: 100, maximum_percent: 0}
      network: {maximum_bandwidth: 100bit/s}
      flavors: [m1.small, m1.small]
    - name: silver
      flavors: [m1.small, ""]
"""
)


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hakit.tools.cli", "topology", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_every_refusal_is_located_in_one_pass(tmp_path: Path) -> None:
    loaded = check(load_text(REFUSED, "refused.yaml"), agents=False, pacemaker=False)
    found = {(p.line, p.where.rsplit(".", 1)[-1], p.message.split(":")[0]) for p in loaded.problems}
    assert (6, "guaranteed_percent", "50%") in found  # a share is a weight, not a guarantee
    messages = "\n".join(p.message for p in loaded.problems)
    for reason in (
        "nova guarantees CPU only as a dedicated core",
        "above the cap (50 IOPS)",
        "front-end QoS (libvirt on the compute) only caps",
        "'12 furlongs' is not a rate",
        "above the cap (1Gbit/s)",
        "neutron's minimum-bandwidth rules are not enforced here",
        "a second tier named 'gold'",
        "the computes have no dedicated CPUs",
        "0% is not a cap",
        "'100bit/s' is not a whole number of 1kB/s (nova)",
        "flavor 'm1.small' is in tier gold already",  # twice in gold, then in silver
        "an empty flavor name",
    ):
        assert reason in messages, reason
    assert all(p.line > 0 and p.column > 0 and p.hint for p in loaded.problems)
    twice = [p for p in loaded.problems if "is in tier gold already" in p.message]
    assert [p.line for p in twice] == [12, 14]
    path = tmp_path / "refused.yaml"
    path.write_text(REFUSED)
    done = cli("qos", str(path))
    assert done.returncode == 1 and f"{path}:6:" in done.stderr + done.stdout


def test_the_example_becomes_each_services_units() -> None:
    done = cli("qos", str(EXAMPLE), "--json")
    assert done.returncode == 0, done.stderr
    tiers = {t["tier"]: t for t in json.loads(done.stdout)["tiers"]}
    gold, bronze = tiers["gold"], tiers["bronze"]
    assert gold["nova"]["flavor_extra_specs"] == {
        "hw:cpu_policy": "dedicated",
        "quota:disk_total_iops_sec": "5000",
        "quota:disk_total_bytes_sec": "400000000",  # 400MB/s in bytes/s
        "quota:vif_inbound_average": "1250000",  # 10Gbit/s in kilobytes/s
        "quota:vif_outbound_average": "1250000",
    }
    assert gold["cinder"] == {
        "name": "hakit-gold",
        "consumer": "back-end",
        "specs": {"total_iops_sec": "5000", "total_bytes_sec": "400000000", "minIOPS": "1000"},
        "volume_type": "hakit-gold",
    }
    rules = gold["neutron"]["rules"]
    assert {"type": "minimum_bandwidth", "direction": "egress", "min_kbps": 1_000_000} in rules
    limits = [r for r in rules if r["type"] == "bandwidth_limit"]
    assert {r["direction"] for r in limits} == {"egress", "ingress"}
    assert all(r["max_kbps"] == 10_000_000 and r["max_burst_kbps"] == 8_000_000 for r in limits)
    assert bronze["nova"]["flavor_extra_specs"]["quota:cpu_quota"] == "50000"  # of 100000
    text = cli("qos", str(EXAMPLE)).stdout
    assert "cinder qos-specs hakit-silver (back-end): total_iops_sec=2000" in text


@given(st.integers(min_value=1, max_value=10**6), st.sampled_from(sorted(qos.UNITS)))
def test_rates_convert_exactly(number: int, unit: str) -> None:
    assert qos.bits_per_second(f"{number}{unit}") == number * qos.UNITS[unit]
    assert qos.bits_per_second(f"{number} {unit}") == number * qos.UNITS[unit]


@pytest.mark.parametrize(
    "text", ["", "10", "10 mbit/s", "-1Mbit/s", "1.5bit/s", "1e3bit/s", "Mbit/s"]
)
def test_what_is_not_a_rate(text: str) -> None:
    assert qos.bits_per_second(text) is None


def test_a_node_loss_moves_only_where_capacity_remains() -> None:
    done = cli("simulate", str(EXAMPLE), "--fail-node", "ctl1", "--json")
    assert done.returncode == 0, done.stderr
    capacity = json.loads(done.stdout)["capacity"]
    assert all(not node["over"] for node in capacity["nodes"])
    for node in capacity["nodes"]:
        assert all(used <= node["capacity"][k] for k, used in node["used"].items())
    survivors = {n["node"] for n in capacity["nodes"]}
    assert survivors == {"ctl2", "ctl3"}
    # the database (priority 10) takes the room; the batch job gives way and says why
    assert capacity["left_stopped"] == [{"resource": "batch", "needs": {"cpu": 6, "memory": 2048}}]
    text = cli("simulate", str(EXAMPLE), "--fail-node", "ctl1").stdout
    assert "left stopped: batch (needs cpu 6 memory 2048" in text


def test_without_a_strategy_a_failover_overloads_and_validate_says_so(tmp_path: Path) -> None:
    path = tmp_path / "default.yaml"
    path.write_text(EXAMPLE.read_text().replace("placement-strategy: balanced", ""))
    done = cli("simulate", str(path), "--fail-node", "ctl1", "--json")
    assert "placement-strategy is default: Pacemaker ignores utilization" in done.stderr
    nodes = json.loads(done.stdout)["capacity"]["nodes"]
    assert any(node["over"] for node in nodes), nodes


def test_a_node_without_a_used_capacity_is_warned(tmp_path: Path) -> None:
    text = EXAMPLE.read_text().replace(
        "{name: ctl3, utilization: {cpu: 8, memory: 16384}}", "{name: ctl3, utilization: {cpu: 8}}"
    )
    loaded = check(load_text(text, "q.yaml"), agents=False, pacemaker=False)
    assert not loaded.problems
    (warning,) = loaded.warnings
    assert warning.line == 15 and "no capacity for memory" in warning.message


def test_applying_needs_a_cloud_and_a_bad_cloud_is_said_without_a_traceback(
    tmp_path: Path,
) -> None:
    """The apply path itself runs against the mini cloud's real nova and cinder
    (tests/lab/test_minicloud.py); here its refusals."""
    done = cli("qos", str(EXAMPLE), "--apply")
    assert done.returncode == 2 and "--apply needs --cloud" in done.stderr
    clouds = tmp_path / "clouds.yaml"
    clouds.write_text("clouds: {}\n")
    done = cli("qos", str(EXAMPLE), "--cloud", "nowhere", "--clouds-yaml", str(clouds))
    assert done.returncode == 1 and "Traceback" not in done.stderr + done.stdout
    assert "nowhere" in done.stderr
