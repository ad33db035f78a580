"""Pacemaker's own checks on the rendered CIB: its RelaxNG schema and crm_verify
(whatever it rejects, by its exit code), each message traced to the YAML object."""

from __future__ import annotations

import os
import re
import tempfile
from functools import cache
from pathlib import Path

from lxml import etree

from hakit.ocf import cluster
from hakit.tools.topology import model, rng
from hakit.tools.topology.ids import NOT_IDS, check_rendered_ids, locate
from hakit.tools.topology.load import Loaded
from hakit.tools.topology.render import VALIDATE_WITH, render, to_text

RNG_DIR = Path("/usr/share/pacemaker")


@cache
def relaxng() -> etree.RelaxNG:
    return etree.RelaxNG(etree.parse(str(RNG_DIR / f"{VALIDATE_WITH}.rng")))  # noqa: S320


def check_pacemaker(loaded: Loaded, topology: model.Topology) -> None:
    """The rendered CIB's ids, its RelaxNG, then crm_verify (which also checks IDREFs):
    whatever crm_verify rejects (its exit code) is a problem; each is located at the
    YAML object the rendered element or the message comes from."""
    cib = render(topology)
    if not check_rendered_ids(loaded, topology, cib):
        loaded.skipped.append(
            f"Pacemaker's {VALIDATE_WITH}.rng and crm_verify: they check a CIB whose ids are right"
        )
        return
    text = to_text(cib)
    del cib  # one document at a time (50,000 resources: 250 MB each)
    with tempfile.NamedTemporaryFile("w", suffix=".xml", delete=False) as handle:
        handle.write(text)  # for crm_verify; written before the document is parsed back
    parser = etree.XMLParser(
        resolve_entities=False, no_network=True, huge_tree=True, remove_blank_text=True
    )
    document = etree.fromstring(text, parser)  # noqa: S320 — rendered here; lines for errors
    schema = relaxng()
    if not rng.valid(schema, document, lambda: etree.fromstring(text, parser)):  # noqa: S320
        lines: dict[int, etree._Element] = {}
        for element in document.iter():
            lines.setdefault(getattr(element, "sourceline", 0) or 0, element)
        found = [
            (locate(lines[error.line], topology) if error.line in lines else (), error)
            for error in schema.error_log
        ]
        located = [(path, error) for path, error in found if path]
        for path, error in located or found:  # the unlocated follow from the located
            loaded.problem(
                path,
                f"the rendered CIB breaks {VALIDATE_WITH}.rng: {error.message}",
                f"line {error.line} of `hakit topology render`" if error.line else "",
            )
        loaded.skipped.append(f"crm_verify: it needs a CIB that {VALIDATE_WITH}.rng accepts")
        os.unlink(handle.name)
        return
    try:
        # its scheduler takes about a minute for 50,000 resources
        code, messages = cluster.verify_cib_file(handle.name, timeout=60 + len(text) / 200_000)
    except cluster.ClusterCommandError as error:
        loaded.problem(
            (), f"crm_verify could not run: {error}", "is pacemaker-cli-utils installed?"
        )
        return
    finally:
        os.unlink(handle.name)
    errors = _crm_verify_errors(messages)
    if code != 0 and not errors and "Warnings found" not in messages:  # warnings: exit 1
        errors = [" ".join(messages.split()) or f"exit code {code}"]
    by_id: dict[str, etree._Element] = {}
    for message in errors:
        if not by_id:
            by_id = {str(e.get("id")): e for e in document.iter() if e.tag not in NOT_IDS}
        path, hint = _locate(message, topology, by_id)
        loaded.problem(path, f"crm_verify: {message}", hint)


def _crm_verify_errors(messages: str) -> list[str]:
    """crm_verify's errors, the lines of one message (same function) joined."""
    errors: list[tuple[str, str]] = []
    for line in messages.splitlines():
        match = re.match(r"\s*(\(\w+\))?\s*error:\s*(.*)", line, re.IGNORECASE)
        if not match:
            continue
        where, text = match.group(1) or "", match.group(2).strip()
        if any(text in seen for _, seen in errors):
            continue  # crm_verify says some things twice
        if errors and where and errors[-1][0] == where:
            errors[-1] = (where, f"{errors[-1][1]} {text}")
        else:
            errors.append((where, text))
    return [text for _, text in errors]


def _locate(
    error: str, topology: model.Topology, by_id: dict[str, etree._Element]
) -> tuple[tuple[str | int, ...], str]:
    """The object a crm_verify message is about (the first CIB id it names), and what
    to do."""
    if "STONITH" in error:
        where: tuple[str | int, ...] = ("cluster", "properties", "stonith-enabled")
        return where, (
            "add a device under fencing.devices, or set stonith-enabled: false "
            "(only where the cluster shares no data)"
        )
    if "loss-policy" in error:
        return ("constraints", "tickets"), "loss_policy: fence needs stonith-enabled: true"
    quoted = re.findall(r"'([^']+)'", error)
    for word in quoted:  # an id, else a value: the element that holds it
        if word in by_id:
            return locate(by_id[word], topology), ""
    for word in quoted:
        holder = next((e for e in by_id.values() if word in e.attrib.values()), None)
        if holder is not None:
            return locate(holder, topology), ""
    for word in re.findall(r"[A-Za-z_](?:[\w.-]*[\w-])?", error):  # unquoted, not English
        if word in by_id and word.lower() not in _WORDS:
            return locate(by_id[word], topology), ""
    return (), ""


#: Words of crm_verify's messages that are also short resource names.
_WORDS = frozenset("a i an as at be by do if in is it no of on or so to up".split())
