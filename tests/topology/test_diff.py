"""`topology diff` against a CIB file (real crm_diff and crm_simulate, no cluster): crm_diff's
exit codes (0 same, 1 different) and a summary of what is added, changed and removed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from lxml import etree

from hakit.ocf import cluster
from hakit.tools.topology.load import load
from hakit.tools.topology.render import render, to_text

TOPOLOGY = """cluster: {name: t, properties: {stonith-enabled: false}}
nodes: [{name: n1}, {name: n2}]
resources:
  - {name: a, agent: ocf:pacemaker:Dummy, params: {fake: one}}
  - {name: b, agent: ocf:pacemaker:Dummy}
"""


def diff(path: Path, cib: Path, *flags: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "hakit.tools.cli",
            "topology",
            "diff",
            str(path),
            "--cib",
            str(cib),
            *flags,
        ],
        capture_output=True,
        text=True,
        check=False,
    )


def test_diff_exit_codes_and_summary(tmp_path: Path) -> None:
    path = tmp_path / "t.yaml"
    path.write_text(TOPOLOGY)
    loaded = load(path)
    assert loaded.topology is not None
    same = tmp_path / "same.xml"
    same.write_text(to_text(render(loaded.topology)))
    done = diff(path, same)
    assert (done.returncode, done.stdout.strip()) == (0, "no change"), done.stderr

    live = render(loaded.topology)  # the cluster has a changed `a`, no `b` and an extra `c`
    resources = live.find("configuration/resources")
    assert resources is not None
    for primitive in resources.findall("primitive"):
        if primitive.get("id") == "b":
            resources.remove(primitive)
    pair = live.find(".//primitive[@id='a']//nvpair[@name='fake']")
    assert pair is not None
    pair.set("value", "two")
    extra = etree.SubElement(resources, "primitive", id="c", type="Dummy")
    extra.set("class", "ocf")
    extra.set("provider", "pacemaker")
    changed = tmp_path / "changed.xml"
    changed.write_text(etree.tostring(live, encoding="unicode"))
    done = diff(path, changed)
    assert done.returncode == 1, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "would apply: 1 added, 1 changed, 1 removed"
    assert {"  + primitive b", "  ~ primitive a", "  - primitive c"} <= set(lines)
    patch = diff(path, changed, "--patch")
    assert patch.returncode == 1 and patch.stdout.lstrip().startswith("<diff")


def test_diff_creates_no_file(tmp_path: Path) -> None:
    """A read-only verb: its scratch files are gone when it returns."""
    path = tmp_path / "t.yaml"
    path.write_text(TOPOLOGY)
    empty = tmp_path / "empty.xml"
    empty.write_text(cluster.empty_cib())
    before = set(Path("/tmp").glob("hakit-*"))
    assert diff(path, empty).returncode == 1
    assert set(Path("/tmp").glob("hakit-*")) <= before
