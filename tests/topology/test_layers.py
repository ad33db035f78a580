"""Topology layers (hakit.tools.topology.layers): later layers add objects, a name given
twice is an error located in the second file, settings are overridden."""

from __future__ import annotations

from pathlib import Path

from hakit.tools.topology.layers import layer_texts, load_layers

BASE = """\
cluster:
  name: c
  properties: {stonith-enabled: true, cluster-recheck-interval: 15min}
fencing:
  devices:
    - {name: f, agent: fence_x}
"""
LAYER = """\
cluster:
  properties: {cluster-recheck-interval: 1min}
templates:
  t: {agent: "ocf:heartbeat:Dummy"}
resources:
  - {name: r, template: t}
fencing:
  devices:
    - {name: g, agent: fence_y}
"""


def test_layers_add_objects_and_override_settings() -> None:
    loaded = layer_texts([("base.yaml", BASE), ("layer.yaml", LAYER)])
    assert loaded.problems == []
    assert loaded.topology is not None
    assert loaded.topology.cluster.name == "c"
    assert loaded.topology.cluster.properties == {
        "stonith-enabled": True,
        "cluster-recheck-interval": "1min",
    }
    assert [d.name for d in loaded.topology.fencing.devices] == ["f", "g"]
    assert [r.name for r in loaded.topology.resources] == ["r"]
    assert set(loaded.topology.templates) == {"t"}


def test_a_name_given_twice_is_located_in_the_second_layer() -> None:
    again = "fencing:\n  devices:\n    - {name: f, agent: fence_z}\ntemplates:\n  t: {}\n"
    loaded = layer_texts([("base.yaml", BASE), ("layer.yaml", LAYER), ("again.yaml", again)])
    assert [str(p) for p in loaded.problems] == [
        "again.yaml:3:7: fencing.devices \"f\": 'f' is defined by two layers (hint: first "
        "defined at base.yaml:6:7; give it another name or drop one of them)",
        "again.yaml:5:3: templates.t: template 't' is defined by two layers (hint: first "
        "defined at layer.yaml:4:3; a layer adds objects, it does not replace them)",
    ]
    assert loaded.topology is None


def test_the_cluster_name_cannot_change_and_problems_name_their_file(tmp_path: Path) -> None:
    (tmp_path / "base.yaml").write_text(BASE)
    (tmp_path / "layer.yaml").write_text("cluster: {name: d}\nresources:\n  - {name: r, x: 1}\n")
    loaded = load_layers([tmp_path / "base.yaml", tmp_path / "layer.yaml"])
    assert [(Path(p.file).name, p.line, p.column) for p in loaded.problems] == [
        ("layer.yaml", 1, 17)
    ]
    assert "cannot change it" in loaded.problems[0].message
    (tmp_path / "layer.yaml").write_text("resources:\n  - {name: r, x: 1}\n")
    loaded = load_layers([tmp_path / "base.yaml", tmp_path / "layer.yaml"])
    [problem] = loaded.problems
    assert (Path(problem.file).name, problem.line, problem.message) == (
        "layer.yaml",
        2,
        "unknown key 'x'",
    )


def test_the_labs_layers_merge_cleanly() -> None:
    repo = Path(__file__).resolve().parents[2] / "lab"
    values = {"host_list": "node1 node2 node3", "conf": "/c", "venv": "/v", "stubs": "/s.py"}
    import string

    texts = [
        (name, string.Template((repo / name).read_text()).substitute(values))
        for name in ("base.yaml", "cloud.yaml", "compute.yaml")
    ]
    loaded = layer_texts(texts)
    assert loaded.problems == []
    assert loaded.topology is not None
    assert [d.name for d in loaded.topology.fencing.devices] == ["hakit-fence"]
    from hakit.tools.topology.correlation import attribute

    rules = attribute(loaded.topology.correlation)  # what every publisher gets
    assert rules is not None and '"min_vnfs":3' in rules and '"window_s":120' in rules


def test_the_labs_remote_computes_merge_over_its_remotes() -> None:
    """remote-computes.yaml over the compute layer and the remotes' section (what
    hakit.lab.remotes.layer writes): nova-compute and the relay on the remotes only."""
    import string

    repo = Path(__file__).resolve().parents[2] / "lab"
    values = {
        "host_list": "node1 node2 remote1",
        "conf": "/c",
        "venv": "/v",
        "stubs": "/s.py",
        "relay": "/r.py",
        "controllers": "10.77.0.11,10.77.0.12",
    }
    remotes = (
        "remotes:\n  nodes:\n    - {name: remote1, address: 10.77.0.101, fence: [hakit-fence]}\n"
    )
    texts = [
        (name, string.Template((repo / name).read_text()).substitute(values))
        for name in ("base.yaml", "cloud.yaml", "compute.yaml")
    ]
    texts.append(("<remotes>", remotes))
    texts.append(
        (
            "remote-computes.yaml",
            string.Template((repo / "remote-computes.yaml").read_text()).substitute(values),
        )
    )
    loaded = layer_texts(texts)
    assert loaded.problems == []
    assert loaded.topology is not None and loaded.topology.remotes is not None
    assert loaded.topology.remotes.resources == ["api-relay", "nova-compute-remote"]
    assert [n.name for n in loaded.topology.remotes.nodes] == ["remote1"]


def test_an_object_tagged_replace_takes_the_place_of_the_earlier_one() -> None:
    """Whole: the earlier object's parameters do not survive; the others stay in place."""
    swap = (
        "fencing:\n  devices:\n"
        "    - !replace {name: f, agent: fence_z, params: {pcmk_host_list: n1}}\n"
    )
    loaded = layer_texts(
        [("base.yaml", BASE + "    - {name: h, agent: fence_x}\n"), ("swap.yaml", swap)]
    )
    assert loaded.problems == []
    assert loaded.topology is not None
    devices = [(d.name, d.agent, d.params) for d in loaded.topology.fencing.devices]
    assert devices == [("f", "fence_z", {"pcmk_host_list": "n1"}), ("h", "fence_x", {})]


def test_replace_with_nothing_to_replace_is_located() -> None:
    layer = "resources:\n  - !replace {name: q, agent: x}\nfencing:\n  devices:\n    - !replace\n      agent: y\n"
    loaded = layer_texts([("base.yaml", BASE), ("layer.yaml", layer)])
    assert [(p.file, p.line, p.column, p.message) for p in loaded.problems] == [
        ("layer.yaml", 2, 5, "!replace: no earlier layer defines 'q'"),
        ("layer.yaml", 5, 7, "!replace: an object without a name"),
    ]
    assert loaded.topology is None
    alone = layer_texts([("base.yaml", BASE.replace("- {name: f", "- !replace {name: f"))])
    assert [p.message for p in alone.problems] == ["!replace: no earlier layer defines 'f'"]
