"""hakit.ocf.cluster against a live Pacemaker: every call runs inside the test node."""

from __future__ import annotations

import json
import sys

import pytest

from tests.support.single_node import NODE_NAME, SingleNodeCluster

pytestmark = pytest.mark.cluster


def in_node(cluster: SingleNodeCluster, body: str) -> object:
    """Run `body` (which sets `result`) with hakit.ocf.cluster as `c`, inside the node."""
    code = f"import json\nfrom hakit.ocf import cluster as c\n{body}\nprint(json.dumps(result))"
    done = cluster.run([sys.executable, "-I", "-c", code], timeout=60)
    return json.loads(done.stdout)


def test_node_identity_and_quorum(pcmk_cluster: SingleNodeCluster) -> None:
    result = in_node(pcmk_cluster, "result = [c.local_node_name(), c.is_quorate()]")
    assert result == [NODE_NAME, True]


def test_transient_attribute_round_trip(pcmk_cluster: SingleNodeCluster) -> None:
    body = """
import time
before = c.get_transient_attribute("hakit-test-attr")
c.set_transient_attribute("hakit-test-attr", "up")
for _ in range(50):
    seen = c.get_transient_attribute("hakit-test-attr")
    if seen == "up":
        break
    time.sleep(0.1)
c.delete_transient_attribute("hakit-test-attr")
for _ in range(50):
    gone = c.get_transient_attribute("hakit-test-attr")
    if gone is None:
        break
    time.sleep(0.1)
result = [before, seen, gone]
"""
    assert in_node(pcmk_cluster, body) == [None, "up", None]


def test_permanent_node_attribute_round_trip(pcmk_cluster: SingleNodeCluster) -> None:
    body = """
c.set_node_attribute("hakit-role", "controller")
seen = c.get_node_attribute("hakit-role")
c.delete_node_attribute("hakit-role")
result = [seen, c.get_node_attribute("hakit-role")]
"""
    assert in_node(pcmk_cluster, body) == ["controller", None]


def test_cluster_status_is_parsed(pcmk_cluster: SingleNodeCluster) -> None:
    pcmk_cluster.run(
        [
            "cibadmin",
            "--create",
            "--scope",
            "resources",
            "--xml-text",
            '<primitive id="hakit-status-dummy" class="ocf" provider="heartbeat" ' 'type="Dummy"/>',
        ]
    )
    pcmk_cluster.wait_for(
        lambda: pcmk_cluster.resource_state("hakit-status-dummy")["active"],
        timeout=30,
        description="dummy started",
    )
    body = """
s = c.cluster_status()
node = s.node(s.dc)
result = {"dc": s.dc, "quorate": s.quorate, "online": node.online, "unclean": node.unclean,
          "is_dc": node.is_dc, "running_on": s.running_on("hakit-status-dummy"),
          "agent": s.instances("hakit-status-dummy")[0].agent}
"""
    assert in_node(pcmk_cluster, body) == {
        "dc": NODE_NAME,
        "quorate": True,
        "online": True,
        "unclean": False,
        "is_dc": True,
        "running_on": [NODE_NAME],
        "agent": "ocf:heartbeat:Dummy",
    }
    pcmk_cluster.run(["cibadmin", "--delete", "--xml-text", '<primitive id="hakit-status-dummy"/>'])


def test_fencing_history_and_cib_query(pcmk_cluster: SingleNodeCluster) -> None:
    body = """
resources = c.cib_query("resources")
result = [len(c.fencing_history()), resources.tag,
          c.cib_query(xpath="//cluster_property_set//nvpair[@name='stonith-enabled']").get("value")]
"""
    assert in_node(pcmk_cluster, body) == [0, "resources", "false"]


def test_failures_carry_the_tools_own_message(pcmk_cluster: SingleNodeCluster) -> None:
    body = """
try:
    c.cib_query(xpath="//no-such-element")
    result = None
except c.ClusterCommandError as error:
    result = [str(error).startswith("cibadmin --query --xpath //no-such-element: "),
              error.returncode]
try:
    c.run(["no-such-cluster-tool"])
except c.ClusterCommandError as error:
    result.append(str(error))
try:
    c.run(["sleep", "5"], timeout=0.2)
except c.ClusterCommandError as error:
    result.append(str(error))
"""
    result = in_node(pcmk_cluster, body)
    assert isinstance(result, list)
    assert result[0] is True and result[1] != 0
    assert result[2:] == [
        "no-such-cluster-tool: not installed on this node",
        "sleep 5: no answer within 0.2s",
    ]
