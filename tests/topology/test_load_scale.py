"""The topology loader at scale and on YAML's corners: duplicate keys are located, merge
keys (`<<`) follow YAML 1.1, alias bombs are refused, and a large generated topology
keeps the line and column of every value; Pacemaker's RelaxNG checked in slices judges
as it does on the whole CIB. Behaviour only: speed is bench.topology's."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from lxml import etree

from bench.topology import generated
from hakit.tools.topology import load as load_module
from hakit.tools.topology import load_reader, rng
from hakit.tools.topology.layers import layer_texts
from hakit.tools.topology.load import load, load_text
from hakit.tools.topology.render import render
from hakit.tools.topology.validate import check_names
from hakit.tools.topology.verify import relaxng

BASE = "cluster: {name: t}\nnodes: [{name: n1}]\n"


def problems(text: str) -> list[str]:
    loaded = load_text(text, "t.yaml")
    if loaded.topology is not None:
        check_names(loaded, loaded.topology)
    return [str(p) for p in loaded.problems]


def place(text: str, needle: str, line_after: int = 0) -> tuple[int, int]:
    """The 1-based line and column of `needle`, on the first line holding it after line
    `line_after` (1-based)."""
    for number, line in enumerate(text.splitlines(), 1):
        if number > line_after and needle in line:
            return number, line.index(needle) + 1
    raise AssertionError(f"{needle!r} not in the text")


# --- duplicate keys ----------------------------------------------------------------------


def test_a_duplicate_key_is_located_at_the_second_naming_the_first() -> None:
    text = (
        BASE + "resources:\n"
        "  - name: a\n"
        "    agent: ocf:heartbeat:Dummy\n"
        "    meta: {priority: 1}\n"
        "    meta: {priority: 2}\n"
    )
    assert problems(text) == [
        "t.yaml:7:5: resources[0] \"a\".meta: duplicate key 'meta' (first at line 6) "
        "(hint: keep one)"
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            BASE + "cluster: {name: u}\n",
            "t.yaml:3:1: cluster: duplicate key 'cluster' (first at line 1)",
        ),
        (
            BASE + "resources:\n  - {name: a, agent: x, params: {ip: 1, port: 2, ip: 3}}\n",
            "t.yaml:4:50: resources[0] \"a\".params.ip: duplicate key 'ip' (first at line 4)",
        ),
        (
            BASE + "resources:\n  - {name: a, agent: x, bogus: {k: 1, k: 2}}\n",
            "t.yaml:4:39: resources[0] \"a\".bogus.k: duplicate key 'k' (first at line 4)",
        ),
    ],
)
def test_duplicate_keys_anywhere(text: str, expected: str) -> None:
    assert any(p.startswith(expected) for p in problems(text)), problems(text)


def test_the_first_of_duplicate_keys_is_kept() -> None:
    loaded = load_text(BASE + "resources:\n  - {name: a, agent: x, agent: y}\n", "t.yaml")
    assert loaded.topology is not None
    assert loaded.topology.resources[0].agent == "x"
    assert loaded.marks[("resources", 0, "agent")] == (4, 22)


def test_duplicate_keys_in_a_layer_name_the_layer() -> None:
    layer = "resources:\n  - name: r\n    agent: x\n    agent: y\n"
    loaded = layer_texts([("base.yaml", BASE), ("layer.yaml", layer)])
    assert [str(p) for p in loaded.problems] == [
        "layer.yaml:4:5: resources[0] \"r\".agent: duplicate key 'agent' (first at line 3) "
        "(hint: keep one)"
    ]


# --- merge keys --------------------------------------------------------------------------

MERGED = (
    BASE
    + """\
templates:
  base:
    agent: ocf:heartbeat:Dummy
    meta: &common {target-role: Started, priority: 1, is-managed: true}
resources:
  - name: a
    agent: ocf:heartbeat:Dummy
    meta:
      priority: 5
      <<: *common
      migration-threshold: 3
  - &web {name: web, agent: ocf:heartbeat:Dummy, params: {ip: 10.0.0.1, port: 80}}
  - <<: *web
    name: web2
  - name: c
    agent: ocf:heartbeat:Dummy
    meta:
      <<: [{priority: 7, a: from-first}, {priority: 8, a: from-second, b: only-second}]
      a: own
"""
)


def test_merge_keys_own_keys_win_then_earlier_sources() -> None:
    loaded = load_text(MERGED, "t.yaml")
    assert [str(p) for p in loaded.problems] == []
    assert loaded.topology is not None
    a, web, web2, c = loaded.topology.resources
    # own keys win wherever they are; merged keys take the place of their `<<`
    assert a.meta == {
        "priority": "5",
        "target-role": "Started",
        "is-managed": True,
        "migration-threshold": "3",
    }
    assert list(a.meta) == ["priority", "target-role", "is-managed", "migration-threshold"]
    assert (web2.name, web2.agent, web2.params) == ("web2", web.agent, web.params)
    assert web.name == "web"
    # `<<: [first, second]`: the first source wins over the second, own keys over both
    assert c.meta == {"priority": "7", "a": "own", "b": "only-second"}


def test_merged_values_are_located_at_the_anchor() -> None:
    loaded = load_text(MERGED, "t.yaml")
    assert loaded.marks[("resources", 0, "meta", "target-role")] == place(MERGED, "Started")
    assert loaded.marks[("resources", 0, "meta", "priority")] == place(MERGED, "5")
    assert loaded.marks[("resources", 2, "params", "ip")] == place(MERGED, "10.0.0.1")
    assert loaded.marks[("resources", 2, "name")] == place(MERGED, "web2")
    assert loaded.marks[("resources", 3, "meta", "b")] == place(MERGED, "only-second")


def test_a_problem_in_a_merged_value_is_reported_at_the_anchor() -> None:
    text = (
        BASE
        + "resources:\n"
        + "  - &r {name: a, agent: x, ops: [{name: monitor, check_level: hi}]}\n"
        + "  - {<<: *r, name: b}\n"
    )
    line, column = place(text, "hi")
    assert [p.split(": ", 1)[0] for p in problems(text)] == [f"t.yaml:{line}:{column}"] * 2


def test_a_merge_key_takes_mappings_only() -> None:
    assert problems(BASE + "resources:\n  - {name: a, agent: x, <<: 5}\n") == [
        't.yaml:4:29: resources[0] "a".<<: a merge key takes a mapping or a list of mappings '
        "(hint: e.g. `<<: *defaults` or `<<: [*a, *b]`)"
    ]


def test_a_quoted_merge_key_is_a_plain_key() -> None:
    assert problems(BASE + "resources:\n  - {name: a, agent: x, '<<': {}}\n")[0].startswith(
        "t.yaml:4:25: resources[0] \"a\".<<: unknown key '<<'"
    )


def test_merge_keys_in_layers() -> None:
    layer = (
        "templates:\n  t: {agent: ocf:heartbeat:Dummy}\n"
        "resources:\n  - &r {name: r, template: t, meta: {priority: 1}}\n"
        "  - {<<: *r, name: s}\n"
    )
    loaded = layer_texts([("base.yaml", BASE), ("layer.yaml", layer)])
    assert loaded.problems == []
    assert loaded.topology is not None
    assert [(r.name, r.template, r.meta) for r in loaded.topology.resources] == [
        ("r", "t", {"priority": "1"}),
        ("s", "t", {"priority": "1"}),
    ]


# --- anchors, aliases and other things that stop reading ----------------------------------


def billion_laughs(levels: int = 9) -> str:
    lines = ["cluster: {name: t}", "x0: &x0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for level in range(1, levels + 1):
        lines.append(f"x{level}: &x{level} [" + ", ".join([f"*x{level - 1}"] * 10) + "]")
    return "\n".join(lines) + "\n"


def test_an_alias_bomb_is_refused_where_it_explodes() -> None:
    text = billion_laughs()
    loaded = load_text(text, "t.yaml")
    assert loaded.topology is None
    [problem] = loaded.problems
    assert problem.where == "(YAML)"
    assert "aliases expand the document beyond" in problem.message
    assert "alias bomb" in problem.hint
    line = text.splitlines()[problem.line - 1]
    assert line[problem.column - 1 :].startswith("*x")


def test_an_alias_bomb_in_a_layer_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(load_reader, "MAX_EXPANSION", 1000)  # layers expand files first
    loaded = layer_texts([("base.yaml", BASE), ("bomb.yaml", billion_laughs(4))])
    assert loaded.topology is None
    assert [p.file for p in loaded.problems] == ["bomb.yaml"]
    assert "aliases expand the document" in loaded.problems[0].message


def test_reused_anchors_are_fine() -> None:
    ops = "ops: &ops [{name: monitor, interval: 10s}, {name: start, timeout: 30s}]"
    lines = [BASE + "resources:", f"  - {{name: r0, agent: ocf:heartbeat:Dummy, {ops}}}"]
    lines += [f"  - {{name: r{i}, agent: ocf:heartbeat:Dummy, ops: *ops}}" for i in range(1, 2000)]
    loaded = load_text("\n".join(lines) + "\n", "t.yaml")
    assert loaded.problems == []
    assert loaded.topology is not None
    assert {len(r.ops) for r in loaded.topology.resources} == {2}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("cluster: {name: *x}\n", "t.yaml:1:17: (YAML): no anchor &x before this alias"),
        ("cluster: &c {name: t, properties: *c}\n", "t.yaml:1:35: (YAML): *c is inside &c itself"),
        (
            "cluster: {name: &a t}\nnodes: [{name: &a n}]\n",
            "t.yaml:2:16: (YAML): a second anchor &a",
        ),
        (BASE + "---\n" + BASE, "t.yaml:3:1: (YAML): a second YAML document (after ---)"),
        ("cluster: " + "[" * 150 + "]" * 150 + "\n", "t.yaml:1:109: (YAML): nested too deeply"),
        ("cluster: {name: t\n", "t.yaml:2:1: (YAML): did not find expected ',' or '}'"),
    ],
)
def test_what_stops_reading_is_located(text: str, expected: str) -> None:
    loaded = load_text(text, "t.yaml")
    assert loaded.topology is None
    assert [str(p).split(" (hint")[0] for p in loaded.problems] == [expected]


def test_problems_found_before_a_syntax_error_are_dropped() -> None:
    loaded = load_text(BASE + "resources:\n  - {name: a, bogus: 1}\n  - {name: b\n", "t.yaml")
    assert [p.where for p in loaded.problems] == ["(YAML)"]


def test_a_yaml_11_integer_in_any_notation() -> None:
    text = BASE + "fencing:\n  levels: [{index: 0x10, devices: [f], target: n1}]\n"
    loaded = load_text(text, "t.yaml")
    assert loaded.topology is not None
    assert loaded.topology.fencing.levels[0].index == 16


# --- a large topology --------------------------------------------------------------------


@pytest.fixture(scope="module")
def large() -> tuple[str, load_module.Loaded]:
    text = generated(15_000)  # 2.4 MB: more than the old 2 MiB limit
    return text, load_text(text, "large.yaml")


def test_a_large_topology_loads_with_the_place_of_every_value(
    large: tuple[str, load_module.Loaded],
) -> None:
    text, loaded = large
    assert len(text) > 2 * 1024 * 1024
    assert loaded.problems == []
    assert loaded.topology is not None
    assert len(loaded.topology.resources) == 15_000
    last = text.index("  - name: rsc14999\n")
    after = text.count("\n", 0, last) + 1
    assert loaded.marks[("resources", 14999)] == place(text, "name: rsc14999", after - 1)
    fake = place(text, "'14999'", after)
    assert loaded.marks[("resources", 14999, "params", "fake")] == fake
    assert ("resources", 14999, "params", "fake") in loaded.quoted
    assert ("resources", 14999, "agent") not in loaded.quoted
    assert loaded.marks[("resources", 14999, "ops", 0, "interval")] == place(text, "10s", after)
    lines = text.splitlines()
    then = loaded.marks[("constraints", "orders", 749, "then")]
    assert lines[then[0] - 1][then[1] - 1 :] == "rsc14985"
    assert ("constraints", "orders", 750) not in loaded.marks


def test_a_problem_deep_in_a_large_topology_is_located(
    large: tuple[str, load_module.Loaded],
) -> None:
    text, _ = large
    broken = text.replace("      then: rsc14985\n", "      then: rsc99999\n")
    loaded = load_text(broken, "large.yaml")
    assert loaded.topology is not None
    check_names(loaded, loaded.topology)
    line, column = place(broken, "rsc99999")
    assert [(p.line, p.column, p.where) for p in loaded.problems] == [
        (line, column, "constraints.orders[749].then")
    ]


def test_the_size_limit_is_kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "big.yaml"
    path.write_text(generated(8_000))  # 1.3 MB
    assert load(path).topology is not None
    monkeypatch.setattr(load_module, "MAX_BYTES", 1024 * 1024)
    [problem] = load(path).problems
    assert (problem.where, problem.message) == ("(file)", "larger than 1 MiB")


def test_marks_hold_every_value_of_a_valid_file() -> None:
    loaded = load_text("cluster: {name: t}\nnodes:\n  - name: n1\n    attributes: {a: 'x'}\n")
    assert loaded.problems == []
    assert dict(loaded.marks) == {
        (): (1, 1),
        ("cluster",): (1, 10),
        ("cluster", "name"): (1, 17),
        ("nodes",): (3, 3),
        ("nodes", 0): (3, 5),
        ("nodes", 0, "name"): (3, 11),
        ("nodes", 0, "attributes"): (4, 17),
        ("nodes", 0, "attributes", "a"): (4, 21),
    }
    assert set(loaded.quoted) == {("nodes", 0, "attributes", "a")}


# --- RelaxNG in slices -------------------------------------------------------------------


@pytest.fixture
def small_slices(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rng, "SLICE", 25)


def rendered(mutate: Callable[[etree._Element], object] = lambda cib: None) -> bytes:
    loaded = load_text(generated(200, nodes=3), "g.yaml")
    assert loaded.topology is not None
    cib = render(loaded.topology)
    mutate(cib)
    return etree.tostring(cib, pretty_print=True)


def acl(reference: str) -> Callable[[etree._Element], object]:
    def add(cib: etree._Element) -> None:
        role = etree.SubElement(etree.SubElement(cib[0], "acls"), "acl_role", id="r")
        etree.SubElement(role, "acl_permission", id="r-p", kind="read", reference=reference)

    return add


@pytest.mark.usefixtures("small_slices")
@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda cib: None, True),
        (acl("rsc190"), True),  # named from outside the slices: copied into each
        (lambda cib: cib.find("configuration/resources")[150].set("class", "bogus"), False),
        (lambda cib: cib.find("configuration/constraints")[-1].set("then", "nothing"), False),
        (lambda cib: cib.find("configuration/constraints")[3].set("score", "lots"), False),
        (acl("nothing"), False),
    ],
)
def test_relaxng_in_slices_judges_as_the_whole_document(
    mutate: Callable[[etree._Element], object], expected: bool
) -> None:
    schema = relaxng()
    parser = etree.XMLParser(remove_blank_text=True)
    text = rendered(mutate)
    document = etree.fromstring(text, parser)
    assert len(document.find("configuration/resources")) > rng.SLICE  # type: ignore[arg-type]
    assert rng.valid(schema, document, lambda: etree.fromstring(text, parser)) is expected
    sliced = [e.message for e in schema.error_log]
    assert etree.tostring(document, pretty_print=True) == text  # every child back in place
    assert bool(schema.validate(etree.fromstring(text, parser))) is expected
    # the same errors (libxml2 lists the unknown references of a failed interleave in
    # hash order, which differs from one run to the next)
    assert sorted(sliced) == sorted(e.message for e in schema.error_log)
