"""The dedicated cores a server's embedded flavor guarantees (the compute API's server
details, microversion 2.47 and later), as the evacuation's QoS alarm reads them."""

from __future__ import annotations

import pytest

from hakit.resource_agents.health.nova import dedicated_cpus


@pytest.mark.parametrize(
    ("flavor", "cores"),
    [
        ({"vcpus": 4, "extra_specs": {"hw:cpu_policy": "dedicated"}}, 4),
        ({"vcpus": 4, "extra_specs": {"resources:PCPU": "2"}}, 2),
        ({"vcpus": 4, "extra_specs": {"hw:cpu_policy": "shared"}}, 0),
        ({"vcpus": 4, "extra_specs": {}}, 0),
        ({"vcpus": 4}, 0),
        ({}, 0),
        # what a broken or foreign answer may hold: no cores, never an exception
        ({"vcpus": "many", "extra_specs": {"hw:cpu_policy": "dedicated"}}, 0),
        ({"vcpus": 4, "extra_specs": {"resources:PCPU": "two"}}, 0),
        ({"vcpus": 4, "extra_specs": ["hw:cpu_policy"]}, 0),
        ({"vcpus": None, "extra_specs": {"hw:cpu_policy": "dedicated"}}, 0),
        ({"vcpus": 4, "extra_specs": {"resources:PCPU": "-2"}}, 0),
    ],
)
def test_dedicated_cpus(flavor: dict[str, object], cores: int) -> None:
    assert dedicated_cpus(flavor) == cores
