"""What pcs and crmsh users expect of a command line: --version, bash completion (run in a
real bash), --json on the list and verify verbs, defaults in --help, a man page, and a
`hakit` without the lab package."""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from lxml import etree

from hakit.ocf import exits
from hakit.tools import cli, cli_format, manpage
from hakit.tools.cli_format import DefaultsFormatter, shows_default, walk

needs_bash = pytest.mark.skipif(shutil.which("bash") is None, reason="no bash here")
needs_pacemaker = pytest.mark.skipif(
    shutil.which("crm_verify") is None or shutil.which("crm_diff") is None,
    reason="Pacemaker's programs are not installed here",
)


def hakit(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hakit.tools.cli", *args],
        capture_output=True,
        text=True,
        check=False,
        env=env,
    )


def as_json(done: subprocess.CompletedProcess[str]) -> dict[str, object]:
    """The one JSON document on stdout (json.loads fails on anything around it)."""
    document = json.loads(done.stdout)
    assert isinstance(document, dict)
    assert "Traceback" not in done.stderr
    return document


# --- --version -------------------------------------------------------------------------


def test_version_prints_the_distributions_version() -> None:
    from importlib import metadata

    done = hakit("--version")
    assert (done.returncode, done.stdout) == (0, f"hakit {metadata.version('hakit')}\n")


def test_version_falls_back_to_the_checkout_then_to_unknown(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import tomllib
    from importlib import metadata

    def missing(name: str) -> str:
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(metadata, "version", missing)
    pyproject = Path(__file__).resolve().parents[2] / "pyproject.toml"
    expected = tomllib.loads(pyproject.read_text())["project"]["version"]
    assert cli_format.version() == expected

    def unreadable(text: str) -> dict[str, object]:
        raise tomllib.TOMLDecodeError("no")

    monkeypatch.setattr(tomllib, "loads", unreadable)
    assert cli_format.version() == "unknown"


# --- bash completion ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def script(tmp_path_factory: pytest.TempPathFactory) -> Path:
    done = hakit("completion", "bash")
    assert done.returncode == 0, done.stderr
    path = tmp_path_factory.mktemp("completion") / "hakit.bash"
    path.write_text(done.stdout)
    return path


#: Sources the script, sets COMP_WORDS and COMP_CWORD as bash does, calls the function
#: the script registered for `hakit` (as `complete -p` says) and prints COMPREPLY; with
#: `set -u`, as some users' shells have it.
DRIVER = r"""
source "$1" || exit 9
shift
set -u
function=$(complete -p hakit | sed -E 's/.*-F ([^ ]+) .*/\1/')
COMP_WORDS=("$@")
COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
COMP_LINE="${COMP_WORDS[*]}"
COMP_POINT=${#COMP_LINE}
"$function" hakit "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD - 1]}"
printf '%s\n' "${COMPREPLY[@]}"
"""


def complete(script: Path, *words: str, cwd: Path | None = None) -> list[str]:
    """COMPREPLY for the command line `words` (the last one being completed)."""
    done = subprocess.run(
        ["bash", "--norc", "--noprofile", "-c", DRIVER, "complete", str(script), *words],
        capture_output=True,
        text=True,
        check=False,
        cwd=cwd,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C"},
    )
    assert done.returncode == 0 and done.stderr == "", done.stderr
    return [line for line in done.stdout.splitlines() if line]


@needs_bash
def test_the_completion_script_is_bash_and_registers_hakit(script: Path) -> None:
    done = subprocess.run(
        ["bash", "--norc", "--noprofile", "-c", 'source "$1" && complete -p hakit', "_", script],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "complete -F _hakit hakit"


@needs_bash
@pytest.mark.parametrize(
    ("words", "expected"),
    [
        (["hakit", "top"], ["topology"]),
        (["hakit", "topology", "va"], ["validate"]),
        (["hakit", "topology", "validate", "--"], ["--help", "--no-agents", "--json"]),
        (["hakit", "--v"], ["--version"]),
        (["hakit", "lab", "st"], ["status"]),
        (["hakit", "lab", "up", "--profile", ""], ["default", "fast"]),
        (["hakit", "drill", "run", "--profile", "=", "f"], ["fast"]),  # --profile=f, split
        (["hakit", "drill", "run", "--profile=f"], ["--profile=fast"]),  # not split
        (["hakit", "drill", "run", "--profile", "fast", "process-k"], ["process-kill"]),
        (["hakit", "health", "tokens", "list", "--"], ["--help", "--json"]),
        (["hakit", "health", "--json", "sub"], ["subscriptions"]),
        (["hakit", "lab", "openstack", ""], ["up", "status", "down"]),
        (["hakit", "lab", "exec", "node1", "--", "l"], []),  # another command's words
        (["hakit", "completion", ""], ["bash"]),
        (["hakit", "lab", "cut", ""], ["-h", "--help", "--yes"]),  # a node: nothing to say
    ],
)
def test_completion_in_bash(script: Path, words: list[str], expected: list[str]) -> None:
    assert complete(script, *words) == expected


@needs_bash
def test_file_arguments_complete_files(script: Path, tmp_path: Path) -> None:
    (tmp_path / "cluster.yaml").write_text("")
    (tmp_path / "cib.xml").write_text("")
    (tmp_path / "reports").mkdir()
    assert complete(script, "hakit", "topology", "validate", "clu", cwd=tmp_path) == [
        "cluster.yaml"
    ]
    diff = ["hakit", "topology", "diff", "cluster.yaml", "--cib", "ci"]
    assert complete(script, *diff, cwd=tmp_path) == ["cib.xml"]
    out = ["hakit", "drill", "run", "power-cut", "--out", ""]
    assert complete(script, *out, cwd=tmp_path) == ["reports"]  # a directory: only those


@needs_bash
def test_every_command_completes_its_verbs_and_options(script: Path) -> None:
    for words, parser, _ in walk(cli.build_parser()):
        verbs = [name for name, _, _ in cli_format.subcommands(parser)]
        options = [o for a in parser._actions for o in a.option_strings if o.startswith("--")]
        if verbs:
            assert complete(script, "hakit", *words, "") == verbs, words
        assert complete(script, "hakit", *words, "--") == options, words


# --- --json ------------------------------------------------------------------------------


def test_agents_list_json_says_what_the_text_says() -> None:
    text = hakit("agents", "list")
    document = as_json(hakit("agents", "list", "--json"))
    agents = document["agents"]
    assert isinstance(agents, list)
    assert [a["name"] for a in agents] == [line.split()[0] for line in text.stdout.splitlines()]
    assert {"name", "type", "shortdesc"} == set(agents[0])


def test_drill_list_json_says_what_the_text_says() -> None:
    text = hakit("drill", "list")
    scenarios = as_json(hakit("drill", "list", "--json"))["scenarios"]
    assert isinstance(scenarios, list)
    lines = text.stdout.splitlines()
    assert [s["name"] for s in scenarios] == [line.split()[0] for line in lines]
    for scenario, line in zip(scenarios, lines, strict=True):
        assert set(scenario) == {"name", "summary", "kind", "needs"}
        assert scenario["kind"] in ("fault", "cloud") and scenario["summary"] in line
        needs = f"[needs `{scenario['needs']}`]"
        assert line.endswith(needs) if scenario["needs"] else "[needs" not in line


@pytest.mark.skipif(os.geteuid() != 0, reason="hakit lab needs root")
def test_lab_status_json_without_a_lab(tmp_path: Path) -> None:
    """No lab here (an empty lab directory): every node off, no DC; nothing is created."""
    env = {**os.environ, "HAKIT_LAB_DIR": str(tmp_path)}
    done = hakit("lab", "status", "--json", env=env)
    assert done.returncode == 0, done.stderr
    document = as_json(done)
    assert set(document) == {"profile", "dc", "quorate", "nodes"}
    assert document["dc"] is None and document["quorate"] is False
    nodes = document["nodes"]
    assert isinstance(nodes, list) and [n["name"] for n in nodes] == ["node1", "node2", "node3"]
    assert all(n["power"] == "off" and n["online"] is False for n in nodes)
    assert all(set(n) == {"name", "address", "power", "online", "remote"} for n in nodes)
    assert not any(n["remote"] for n in nodes)
    assert list(tmp_path.iterdir()) == []


def test_health_lists_in_json_never_show_a_secret(tmp_path: Path) -> None:
    store = ["--subscriptions", str(tmp_path / "store.db")]
    added = hakit("health", "tokens", *store, "add", "operator")
    assert added.returncode == 0, added.stderr
    token = added.stdout.strip()
    subscribed = hakit(
        "health", "subscriptions", *store, "add", "https://example.com/alarms", "--no-test"
    )
    assert subscribed.returncode == 0, subscribed.stderr
    secret = subscribed.stdout.split("secret (shown once): ")[1].strip()
    assert token and secret

    tokens = hakit("health", "tokens", *store, "list", "--json")
    assert as_json(tokens) == {"tokens": [{"name": "operator"}]}
    assert as_json(hakit("health", "--json", "tokens", *store, "list")) == as_json(tokens)
    subscriptions = hakit("health", "subscriptions", *store, "list", "--json")
    listed = as_json(subscriptions)["subscriptions"]
    assert isinstance(listed, list) and len(listed) == 1
    assert set(listed[0]) == {"id", "callbackUri", "filter"}
    assert listed[0]["callbackUri"] == "https://example.com/alarms"
    assert listed[0]["id"] in hakit("health", "subscriptions", *store, "list").stdout
    for done in (tokens, subscriptions):
        assert token not in done.stdout + done.stderr
        assert secret not in done.stdout + done.stderr


TOPOLOGY = """cluster: {name: t, properties: {stonith-enabled: false}}
nodes: [{name: n1}, {name: n2}]
resources:
  - {name: a, agent: ocf:pacemaker:Dummy, params: {fake: one}}
  - {name: b, agent: ocf:pacemaker:Dummy}
"""
BROKEN = """cluster: {name: t, properties: {stonith-enabled: maybe}}
resources:
  - {name: a, agent: ocf:pacemaker:Dummy, parms: {fake: one}}
"""
PROBLEM_KEYS = {"file", "line", "column", "object", "message", "hint", "severity"}


@needs_pacemaker
def test_validate_json(tmp_path: Path) -> None:
    good, bad = tmp_path / "good.yaml", tmp_path / "bad.yaml"
    good.write_text(TOPOLOGY)
    bad.write_text(BROKEN)
    done = hakit("topology", "validate", "--no-agents", str(good), "--json")
    assert done.returncode == exits.OK, done.stderr
    skipped = ["agents and their parameters: --no-agents"]
    assert as_json(done) == {
        "file": str(good),
        "valid": True,
        "problems": [],
        "not_checked": skipped,
    }

    done = hakit("topology", "validate", "--no-agents", str(bad), "--json")
    assert done.returncode == exits.NO and done.stderr == ""
    document = as_json(done)
    assert document["valid"] is False and document["not_checked"]
    problems = document["problems"]
    assert isinstance(problems, list) and len(problems) == 2
    assert all(set(p) == PROBLEM_KEYS and p["severity"] == "error" for p in problems)
    unknown = next(p for p in problems if p["message"] == "unknown key 'parms'")
    assert (unknown["line"], unknown["hint"]) == (3, "did you mean 'params'?")
    assert unknown["object"] == 'resources[0] "a".parms'
    text = hakit("topology", "validate", "--no-agents", str(bad))
    for p in problems:  # what the text says, located the same
        assert f"{bad}:{p['line']}:{p['column']}: {p['object']}: {p['message']}" in text.stderr

    missing = hakit("topology", "validate", str(tmp_path / "none.yaml"), "--json")
    assert missing.returncode == exits.NO and as_json(missing)["valid"] is False


@needs_pacemaker
def test_diff_json(tmp_path: Path) -> None:
    from hakit.tools.topology.load import load
    from hakit.tools.topology.render import render, to_text

    path = tmp_path / "t.yaml"
    path.write_text(TOPOLOGY)
    loaded = load(path)
    assert loaded.topology is not None
    same = tmp_path / "same.xml"
    same.write_text(to_text(render(loaded.topology)))
    flags = ["--no-agents", "--json"]
    done = hakit("topology", "diff", str(path), "--cib", str(same), *flags)
    assert done.returncode == 0, done.stderr
    document = as_json(done)
    assert (document["valid"], document["changed"], document["changes"]) == (True, False, [])

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
    done = hakit("topology", "diff", str(path), "--cib", str(changed), *flags)
    assert done.returncode == exits.NO, done.stderr
    document = as_json(done)
    assert set(document) == {
        "file",
        "valid",
        "problems",
        "not_checked",
        "changed",
        "changes",
        "transition",
        "kept",
    }
    assert document["changed"] is True
    changes = document["changes"]
    assert isinstance(changes, list)
    assert sorted((c["action"], c["kind"], c["id"]) for c in changes) == [
        ("add", "primitive", "b"),
        ("change", "primitive", "a"),
        ("remove", "primitive", "c"),
    ]
    text = hakit("topology", "diff", str(path), "--cib", str(changed), "--no-agents")
    symbols = {"add": "+", "change": "~", "remove": "-"}
    for c in changes:  # the same lines as the text
        assert f"  {symbols[c['action']]} {c['kind']} {c['id']}" in text.stdout.splitlines()
    transition = document["transition"]
    assert isinstance(transition, list)
    assert all(f"  would {line}" in text.stdout for line in transition)

    both = hakit("topology", "diff", str(path), "--cib", str(changed), "--patch", "--json")
    assert both.returncode == exits.USAGE and "not allowed with" in both.stderr


@needs_pacemaker
def test_diff_json_of_an_invalid_topology(tmp_path: Path) -> None:
    bad, cib = tmp_path / "bad.yaml", tmp_path / "cib.xml"
    bad.write_text(BROKEN)
    cib.write_text("<cib><configuration/></cib>")
    done = hakit("topology", "diff", "--no-agents", str(bad), "--cib", str(cib), "--json")
    assert done.returncode == exits.NO
    document = as_json(done)
    assert document["valid"] is False and document["changed"] is None
    assert document["changes"] == [] and len(document["problems"]) == 2  # type: ignore[arg-type]


# --- defaults in --help -------------------------------------------------------------------


def test_every_parser_shows_its_defaults() -> None:
    for words, parser, _ in walk(cli.build_parser()):
        assert parser.formatter_class is DefaultsFormatter, words
        text = parser.format_help()
        assert "(default: None)" not in text and "(default: False)" not in text, words
        for action in parser._actions:
            if shows_default(action):
                assert "default" in cli_format.help_text(parser, action), (words, action.dest)
    serve = hakit("health", "serve", "--help").stdout
    assert "(default: 8797)" in " ".join(serve.split())
    run = " ".join(hakit("drill", "run", "--help").stdout.split())
    assert "(default: fast)" in run and "(default: web)" in run
    install = hakit("agents", "install", "--help").stdout
    assert " ".join(install.split()).count("(default: /usr/bin/python3)") == 1  # said once


def test_the_formatter_says_nothing_of_flags_and_empty_defaults() -> None:
    parser = argparse.ArgumentParser(formatter_class=DefaultsFormatter)
    parser.add_argument("--flag", action="store_true", help="a flag")
    parser.add_argument("--many", action="append", default=[], help="repeatable")
    parser.add_argument("--port", type=int, default=80)
    parser.add_argument("--mode", default="a", help="the mode (default: a)")
    text = " ".join(parser.format_help().split())
    assert "--port PORT (default: 80)" in text
    assert text.count("(default: a)") == 1
    assert "a flag (default" not in text and "repeatable (default" not in text


# --- the man page ----------------------------------------------------------------------------


def render_man(page: Path) -> tuple[str, str]:
    """(text, warnings) of the page, through man -l, else groff."""
    env = {**os.environ, "MANWIDTH": "200", "MANPAGER": "cat", "PAGER": "cat"}
    env["LC_ALL"] = "C.UTF-8"
    if shutil.which("man"):
        command = ["man", "-l", str(page)]
    elif shutil.which("groff"):
        command = ["groff", "-man", "-Tutf8", "-ww", str(page)]
    else:
        pytest.skip("neither man nor groff here")
    done = subprocess.run(command, capture_output=True, text=True, check=False, env=env)
    assert done.returncode == 0, done.stderr
    return re.sub(".\b", "", done.stdout), done.stderr  # no overstrike (bold)


def test_the_man_page_renders_every_verb_and_exit_code(tmp_path: Path) -> None:
    done = hakit("man")
    assert done.returncode == 0, done.stderr
    roff = done.stdout
    assert roff.startswith(".TH HAKIT 1 ") and roff.isascii()
    for section in ("NAME", "SYNOPSIS", "DESCRIPTION", "COMMANDS", "EXIT STATUS", "SEE ALSO"):
        assert f"\n.SH {section}\n" in roff, section
    page = tmp_path / "hakit.1"
    page.write_text(roff)
    text, warnings = render_man(page)
    assert warnings == ""
    flat = " ".join(text.split())
    headings = {line.strip() for line in text.splitlines()}
    for words, parser, _ in walk(cli.build_parser()):
        assert " ".join(("hakit", *words)) in headings or not words, words
        for action in parser._actions:
            for option in action.option_strings:
                assert option in flat, (words, option)
    status = text.split("EXIT STATUS")[1].split("SEE ALSO")[0]
    for code in (exits.OK, exits.NO, exits.USAGE, exits.ENVIRONMENT, exits.SOFTWARE, 130):
        assert re.search(rf"^\s+{code}\s", status, re.M), code


def test_the_exit_status_is_the_exits_modules_table() -> None:
    codes = dict(manpage.exit_codes())
    assert set(codes) == {0, 1, 2, 3, 70, 130}
    assert codes[exits.USAGE].startswith("bad arguments or input")
    assert codes[exits.INTERRUPTED] == "interrupted"  # no comment there: its name


# --- without the lab package ---------------------------------------------------------------


def test_without_the_lab_package_lab_and_drill_are_not_commands(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in list(sys.modules):
        if name == "hakit.lab" or name.startswith("hakit.lab."):
            monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "hakit.lab", None)  # import hakit.lab: ModuleNotFoundError
    parser = cli.build_parser()
    commands = [name for name, _, _ in cli_format.subcommands(parser)]
    assert "lab" not in commands and "drill" not in commands
    assert {"agents", "topology", "health", "completion", "man"} <= set(commands)
    diff = parser.parse_args(["topology", "diff", "f.yaml"])
    assert not hasattr(diff, "lab")  # no --lab NODE either
    from hakit.tools import completion

    assert "lab" not in completion.bash(parser).split("sub[hakit]=")[1].splitlines()[0]
    assert '.SS "hakit lab' not in manpage.page(parser)


def test_without_the_lab_package_the_command_still_answers() -> None:
    program = (
        "import sys; sys.modules['hakit.lab'] = None\n"
        "from hakit.tools.cli import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    run = [sys.executable, "-c", program]
    done = subprocess.run([*run, "lab", "status"], capture_output=True, text=True, check=False)
    assert done.returncode == exits.USAGE and "invalid choice: 'lab'" in done.stderr
    done = subprocess.run([*run, "agents", "list"], capture_output=True, text=True, check=False)
    assert done.returncode == 0 and "ocf:hakit:service" in done.stdout


def test_a_parser_that_cannot_be_built_is_a_message_not_a_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def broken() -> argparse.ArgumentParser:
        raise ModuleNotFoundError("No module named 'yaml'", name="yaml")

    monkeypatch.setattr(cli, "build_parser", broken)
    assert cli.main(["agents", "list"]) == exits.SOFTWARE
    error = capsys.readouterr().err
    assert "internal error: ModuleNotFoundError" in error and "Traceback" not in error
    Path(error.split("details: ")[1].split(";")[0]).unlink()
