"""Import is lossless or says what it lost: CIBs built by pcs (with the options the
linux-system-roles/ha_cluster role uses) and by crmsh, offline on a CIB file, come back
from import → render as the same objects, with pcs's own ids left to the defaults; what
a topology cannot say is listed, and diff/apply keep it instead of deleting it."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from lxml import etree

from hakit.ocf import exits
from hakit.tools.topology import apply, roundtrip
from hakit.tools.topology.importer import import_cib, to_yaml
from hakit.tools.topology.load import load_text
from hakit.tools.topology.render import render
from hakit.tools.topology.validate import check

NODES = ("node1", "node2", "node3")

#: pcs commands as the ha_cluster role issues them (ha_cluster's templates and tasks:
#: resource create with op/meta, clone/promotable with ids, groups, bundles, every
#: constraint form with options and ids, fencing levels, default sets, alerts, ACLs,
#: tags, node attributes and utilization, properties).
PCS_COMMANDS = """
property set stonith-enabled=true no-quorum-policy=freeze maintenance-mode=false
node attribute node1 rack=r1 role=controller
node attribute node2 rack=r2 role=controller
node utilization node3 cpu=8 memory=16384
stonith create fence-1 fence_ipmilan ip=10.0.0.1 username=admin pcmk_host_list=node1 --force
stonith create fence-2 fence_ipmilan ip=10.0.0.2 username=admin pcmk_host_list=node2 --force
resource create vip ocf:heartbeat:IPaddr2 ip=192.0.2.10 cidr_netmask=24 --no-default-ops op monitor interval=10s timeout=20s start-delay=5s op start interval=0s timeout=40s meta resource-stickiness=100
resource create web ocf:heartbeat:Dummy --no-default-ops op monitor interval=30s enabled=false record-pending=true description=slow
resource create db ocf:pacemaker:Stateful --no-default-ops op monitor interval=11s role=Promoted op monitor interval=12s role=Unpromoted
resource promotable db db-promotable promoted-max=1 notify=true
resource create ping ocf:heartbeat:Dummy --no-default-ops
resource clone ping ping-everywhere interleave=true
resource create app1 ocf:heartbeat:Dummy --no-default-ops
resource create app2 ocf:heartbeat:Dummy --no-default-ops
resource group add apps app1 app2
resource clone apps interleave=true
resource create lone ocf:heartbeat:Dummy --no-default-ops
resource utilization lone cpu=2
constraint location vip prefers node1=50
constraint location web avoids node3
constraint location add web-on-node2 web node2 20 resource-discovery=exclusive
constraint location regexp%app.* prefers node2=10
constraint location vip rule score=-INFINITY not_defined pingd or pingd lte 0
constraint location lone rule constraint-id=lone-by-ping score-attribute=pingd defined pingd
constraint colocation add web with vip INFINITY
constraint colocation add lone with web -100 node-attribute=rack id=lone-apart
constraint colocation add Started web with Promoted db-promotable 500
constraint order vip then web
constraint order start ping-everywhere then start web kind=Optional require-all=false
constraint order promote db-promotable then start apps-clone kind=Mandatory id=db-first
constraint order set vip web set lone sequential=false require-all=false
constraint colocation set web lone sequential=false set vip setoptions score=200
constraint order set web lone setoptions id=custom-order-set kind=Serialize
constraint ticket add T1 lone loss-policy=stop
constraint ticket set web vip setoptions ticket=T2 loss-policy=demote
stonith level add 1 node1 fence-1 --force
stonith level add 2 regexp%node.* fence-2 --force
stonith level add 1 attrib%rack=r2 fence-2 --force
resource defaults update resource-stickiness=10
resource defaults set create id=infinite-set score=INFINITY meta migration-threshold=3
resource defaults set create id=dummies score=5 meta failure-timeout=60s rule resource ::Dummy
resource op defaults update timeout=30s
resource op defaults set create id=monitors meta timeout=45s rule op monitor interval=10s
alert create id=mail path=/usr/share/pacemaker/alerts/alert_smtp.sh.sample description=alerts-by-mail options email_sender=ha@example.org meta timeout=20s
alert recipient add mail value=ops@example.org id=ops description=operators
alert recipient add mail value=dba@example.org
acl role create readers description=read-only read xpath /cib
acl role create writers write id vip
acl user create alice readers
acl group create admins writers
tag create frontends vip web
"""

#: crmsh commands (crm configure), as a crmsh user would build the same kind of cluster.
CRM_COMMANDS = """
property stonith-enabled=false
primitive p1 ocf:heartbeat:Dummy op monitor interval=10s timeout=20s meta target-role=Started
primitive p2 ocf:heartbeat:Dummy
clone p2-cl p2 meta interleave=true
primitive p3 ocf:heartbeat:Dummy
primitive p4 ocf:heartbeat:Dummy
group g1 p3 p4
location l1 p1 100: node1
location l2 p1 rule -inf: not_defined pingd or pingd lte 0
colocation c1 inf: p1 p2-cl
order o1 Mandatory: p2-cl p1
order o2 Optional: p1 g1
rsc_defaults resource-stickiness=100
op_defaults timeout=30s
tag t1 p1 g1
"""


def _create(cib: Path, scope: str, xml: str) -> None:
    """Add an element to a CIB file, as cibadmin does on a cluster."""
    subprocess.run(
        ["cibadmin", "--create", "--scope", scope, "--xml-text", xml],
        env={**os.environ, "CIB_file": str(cib)},
        check=True,
    )


def _empty_cib(path: Path) -> None:
    path.write_text(
        subprocess.run(["cibadmin", "--empty"], capture_output=True, text=True, check=True).stdout
    )
    _create(
        path,
        "crm_config",
        '<cluster_property_set id="cib-bootstrap-options"><nvpair '
        'id="cib-bootstrap-options-cluster-name" name="cluster-name" value="fidelity"/>'
        "</cluster_property_set>",
    )
    for number, name in enumerate(NODES, 1):
        _create(path, "nodes", f'<node id="{number}" uname="{name}"/>')


def _run_all(tool: list[str], commands: str, cib: Path) -> None:
    for line in commands.strip().splitlines():
        done = subprocess.run(
            [*tool, *shlex.split(line)],
            capture_output=True,
            text=True,
            env={**os.environ, "CIB_file": str(cib)},
            check=False,
        )
        assert done.returncode == 0, (line, done.stdout, done.stderr)


@pytest.fixture(scope="module")
def pcs_cib(tmp_path_factory: pytest.TempPathFactory) -> Path:
    cib = tmp_path_factory.mktemp("pcs") / "cib.xml"
    _empty_cib(cib)
    _run_all(["pcs", "-f", str(cib)], PCS_COMMANDS, cib)
    return cib


#: Sets crmsh writes and pcs cannot: several attribute and property sets with rules.
RULED_SETS = [
    (
        "resources",
        '<primitive id="sets" class="ocf" provider="heartbeat" type="Dummy">'
        '<instance_attributes id="sets-a"><nvpair id="sets-a-fake" name="fake" value="1"/>'
        "</instance_attributes>"
        '<instance_attributes id="sets-on-node1" score="10"><rule id="sets-on-node1-r">'
        '<expression id="sets-on-node1-e" attribute="#uname" operation="eq" value="node1"/>'
        '</rule><nvpair id="sets-on-node1-fake" name="fake" value="2"/></instance_attributes>'
        '<meta_attributes id="sets-m"><nvpair id="sets-m-t" name="target-role" '
        'value="Started"/></meta_attributes></primitive>',
    ),
    (
        "crm_config",
        '<cluster_property_set id="at-night" score="5"><rule id="at-night-r">'
        '<date_expression id="at-night-d" operation="date_spec"><date_spec id="at-night-s" '
        'hours="0-6"/></date_expression></rule><nvpair id="at-night-b" name="batch-limit" '
        'value="50"/></cluster_property_set>',
    ),
]


@pytest.fixture(scope="module")
def crm_cib(tmp_path_factory: pytest.TempPathFactory) -> Path:
    cib = tmp_path_factory.mktemp("crm") / "cib.xml"
    _empty_cib(cib)
    _run_all(["crm", "-F", "configure"], CRM_COMMANDS, cib)
    for scope, xml in RULED_SETS:
        _create(cib, scope, xml)
    return cib


def test_mixed_and_or_says_how_pcs_reads_it() -> None:
    text = (
        "cluster: {name: c}\nresources: [{name: a, agent: 'ocf:heartbeat:Dummy'}]\n"
        "constraints:\n  locations:\n  - {resource: a, rule: defined x and defined y or defined z}\n"
    )
    loaded = check(load_text(text, "mixed.yaml"), agents=False, pacemaker=False)
    [problem] = loaded.problems
    assert (problem.line, problem.column) == (5, 49)  # at the `or`
    assert "`(defined x and defined y) or defined z`" in problem.hint


def _round_trip(cib: Path) -> tuple[str, dict[str, bytes], dict[str, bytes]]:
    """The YAML import writes, and the CIB's objects before and after YAML → render."""
    imported = import_cib(cib.read_text())
    assert imported.skipped == []
    text = to_yaml(imported.topology)
    loaded = load_text(text, "imported.yaml")
    assert loaded.problems == [] and loaded.topology is not None
    original = etree.fromstring(cib.read_bytes())
    before = {k: etree.tostring(v, method="c14n") for k, v in roundtrip.objects(original).items()}
    rendered = roundtrip.objects(render(loaded.topology))
    after = {k: etree.tostring(v, method="c14n") for k, v in rendered.items()}
    return text, before, after


@pytest.mark.parametrize("built_by", ["pcs", "crmsh"])
def test_import_render_gives_the_same_objects(
    built_by: str, request: pytest.FixtureRequest
) -> None:
    cib = request.getfixturevalue("pcs_cib" if built_by == "pcs" else "crm_cib")
    _, before, after = _round_trip(cib)
    assert len(before) > 10
    assert after == before


def test_pcs_ids_are_left_to_the_defaults_custom_ids_are_kept(pcs_cib: Path) -> None:
    """hakit derives every id pcs derived, so the YAML names only the custom ones."""
    text, _, _ = _round_trip(pcs_cib)
    ids = sorted(line.split("id: ", 1)[1] for line in text.splitlines() if " id: " in line)
    assert ids == sorted(
        [
            "custom-order-set",  # constraint ids given with id= / constraint-id=
            "db-first",
            "lone-apart",
            "lone-by-ping",
            "web-on-node2",
            "db-promotable",  # clone ids given to `resource clone/promotable`
            "ping-everywhere",
            "ops",  # a recipient id given with id=
        ]
    )


@pytest.mark.parametrize("built_by", ["pcs", "crmsh"])
def test_diff_of_the_import_against_its_cib_changes_nothing(
    built_by: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    cib = request.getfixturevalue("pcs_cib" if built_by == "pcs" else "crm_cib")
    text, _, _ = _round_trip(cib)
    (tmp_path / "imported.yaml").write_text(text)
    done = _hakit(
        "topology", "diff", str(tmp_path / "imported.yaml"), "--cib", str(cib), "--no-agents"
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip() == "no change"


#: What the model cannot say: a rule with a score inside an attribute set (Pacemaker
#: ignores it; a topology has no place for it), a location with two rules.
UNEXPRESSED = [
    (
        "resources",
        '<primitive id="multi" class="ocf" provider="heartbeat" type="Dummy">'
        '<instance_attributes id="multi-a"><nvpair id="multi-a-fake" name="fake" value="1"/>'
        "</instance_attributes>"
        '<instance_attributes id="multi-b" score="10"><rule id="multi-b-r" score="0">'
        '<expression id="multi-b-e" attribute="#uname" operation="eq" value="node1"/></rule>'
        '<nvpair id="multi-b-fake" name="fake" value="2"/></instance_attributes></primitive>',
    ),
    (
        "constraints",
        '<rsc_location id="two-rules" rsc="lone"><rule id="two-rules-a" score="5">'
        '<expression id="two-rules-a-e" attribute="a" operation="defined"/></rule>'
        '<rule id="two-rules-b" score="7"><expression id="two-rules-b-e" attribute="b" '
        'operation="defined"/></rule></rsc_location>',
    ),
]


@pytest.fixture
def lossy_cib(pcs_cib: Path, tmp_path: Path) -> Path:
    cib = tmp_path / "lossy.xml"
    cib.write_bytes(pcs_cib.read_bytes())
    for scope, xml in UNEXPRESSED:
        _create(cib, scope, xml)
    return cib


def test_import_refuses_what_it_cannot_say(lossy_cib: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.yaml"
    done = _hakit("topology", "import", "--cib", str(lossy_cib), "-o", str(out))
    assert done.returncode == exits.NO and not out.exists()
    for key in ("primitive multi", "rsc_location two-rules"):
        assert f"not imported: {key}: " in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
    partial = _hakit("topology", "import", "--cib", str(lossy_cib), "-o", str(out), "--partial")
    assert partial.returncode == exits.NO and out.exists()


def test_diff_and_apply_keep_what_import_could_not_say(lossy_cib: Path, tmp_path: Path) -> None:
    """The partial import minus the object it mentions only in part: diff deletes
    nothing (the unexpressed objects are kept and listed); naming that object refuses."""
    partial = tmp_path / "partial.yaml"
    _hakit("topology", "import", "--cib", str(lossy_cib), "-o", str(partial), "--partial")
    imported = import_cib(lossy_cib.read_text())
    assert imported.topology is not None
    refused = _hakit("topology", "diff", str(partial), "--cib", str(lossy_cib), "--no-agents")
    assert refused.returncode == exits.USAGE, refused.stdout + refused.stderr
    assert "primitive multi" in refused.stderr and "--replace-unexpressed" in refused.stderr
    imported.topology.resources = [r for r in imported.topology.resources if r.name != "multi"]
    trimmed = tmp_path / "trimmed.yaml"
    trimmed.write_text(to_yaml(imported.topology))
    kept = _hakit("topology", "diff", str(trimmed), "--cib", str(lossy_cib), "--no-agents")
    assert kept.returncode == 0, kept.stdout + kept.stderr
    assert "no change" in kept.stdout and "= primitive multi" in kept.stdout
    assert "= rsc_location two-rules" in kept.stdout  # left out of the YAML, kept
    lost = _hakit(
        "topology",
        "diff",
        str(trimmed),
        "--cib",
        str(lossy_cib),
        "--no-agents",
        "--replace-unexpressed",
    )
    assert lost.returncode == 1 and "- primitive multi" in lost.stdout, lost.stdout
    assert "- rsc_location two-rules" in lost.stdout
    change = apply.compute(imported.topology, live_file=str(lossy_cib))
    assert not [line for line in change.summary if line.startswith("-")]


def _hakit(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hakit.tools.cli", *args],
        capture_output=True,
        text=True,
        check=False,
    )
