#!/usr/bin/python
"""Ansible module: apply hakit's topology YAML to the live CIB through `hakit topology
diff` and `apply` (one cibadmin --patch of the objects that differ; nothing when none
does). Check mode compares only; diff mode shows each object that differs, live and
wanted. Standard library only: it runs on the node, under Ansible's interpreter."""

from __future__ import annotations

import copy
import json
import os
import re
import xml.etree.ElementTree as ET

from ansible.module_utils.basic import AnsibleModule

DOCUMENTATION = r"""
---
module: hakit_topology
short_description: Apply a hakit topology to a Pacemaker cluster, only what differs
description:
  - Runs C(hakit topology diff --json) on the node against the live CIB; when the cluster
    already matches the topology, reports no change and touches nothing.
  - When it differs, runs C(hakit topology apply --yes), which pushes one
    C(cibadmin --patch) of the objects that differ. Objects that do not differ are not
    rewritten, so their resources are not restarted.
  - In check mode nothing is applied; changed says whether apply would change the CIB.
  - In diff mode the result's diff lists the objects added, changed and removed (as
    C(hakit topology diff) prints them), what the cluster would start, stop or move, and
    each object as the live CIB has it and as the topology wants it. Values of
    parameters whose names say password, secret or token are hidden.
  - Errors (a topology that is not valid, a cluster that does not answer) fail with
    hakit's message, never a traceback.
version_added: "0.1.0"
author: hakit
options:
  src:
    description: The topology YAML on the node.
    type: path
    required: true
  content:
    description:
      - The topology's text, used instead of O(src) (written to a private temporary
        file). For check mode, before O(src) has been updated.
    type: str
  hakit:
    description: The C(hakit) command on the node.
    type: path
    default: /opt/hakit/venv/bin/hakit
  cib:
    description:
      - Compare with this CIB file instead of the live CIB. Only in check mode
        (C(hakit topology apply) changes the live CIB).
    type: path
  agents:
    description: Check the agents' metadata while validating (false passes C(--no-agents)).
    type: bool
    default: true
  replace_unexpressed:
    description:
      - Also rewrite or delete live objects a topology cannot express
        (C(--replace-unexpressed)); by default they are kept and listed in RV(kept).
    type: bool
    default: false
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
notes:
  - Run it on one node of the cluster (C(run_once)); the CIB is the cluster's.
  - Without hakit on the node, check mode reports a change (hakit would be installed and
    the topology applied) instead of failing; so does a cluster that does not answer yet.
"""

EXAMPLES = r"""
- name: Apply the topology to the cluster
  hakit_topology:
    src: /etc/hakit/topology.yaml
  run_once: true

- name: Compare a topology with a saved CIB
  hakit_topology:
    src: /etc/hakit/topology.yaml
    cib: /root/cib-before.xml
  check_mode: true
  diff: true
"""

RETURN = r"""
changes:
  description: The objects that differ (hakit topology diff --json's changes).
  returned: when hakit answered
  type: list
  elements: dict
  sample: [{"action": "change", "kind": "primitive", "id": "web"}]
transition:
  description: What the cluster would start, stop or move, one action a line (crm_simulate).
  returned: when hakit answered
  type: list
  elements: str
  sample: ["Move web ( node1 -> node2 )"]
kept:
  description: Live objects a topology cannot express, left as they are, with the reason.
  returned: when hakit answered
  type: list
  elements: dict
applied:
  description: What hakit topology apply printed.
  returned: when the topology was applied
  type: list
  elements: str
  sample: ["applied: 0 added, 1 changed, 0 removed", "  ~ primitive web"]
"""

#: nvpair names whose values are never shown
SECRET = re.compile(r"pass|secret|token", re.IGNORECASE)
SYMBOLS = {"add": "+", "change": "~", "remove": "-"}
HIDDEN = "********"


def run(module, argv, what):
    """Run a command; its code, stdout and stderr. A missing program fails the task."""
    try:
        return module.run_command(argv)
    except OSError as error:  # run_command reports most of these itself
        module.fail_json(msg=f"{what}: {error}")
        raise  # fail_json exits


def one_line(text):
    return " ".join((text or "").split())


def summary(document, applied):
    """The lines `hakit topology diff` prints, from its JSON."""
    changes = document.get("changes") or []
    counts = [sum(1 for c in changes if c.get("action") == a) for a in ("add", "change", "remove")]
    head = "applied" if applied else "would apply"
    lines = [f"{head}: {counts[0]} added, {counts[1]} changed, {counts[2]} removed"]
    lines += [
        f"  {SYMBOLS.get(c.get('action'), c.get('action'))} {c.get('kind')} {c.get('id')}"
        for c in changes
    ]
    lines += [f"  {'' if applied else 'would '}{line}" for line in document.get("transition") or []]
    return "\n".join(lines) + "\n"


def objects(cib):
    """Each top-level configuration object (and each cluster property) by `kind id`, as
    hakit's summary names them."""
    found = {}
    configuration = cib.find("configuration")
    for section in [] if configuration is None else list(configuration):
        if section.tag == "crm_config":
            for pair in section.iter("nvpair"):
                found[f"property {pair.get('name')}"] = pair
            continue
        for child in section:
            if isinstance(child.tag, str):
                found[f"{child.tag} {child.get('id') or child.get('uname')}"] = child
    return found


def shown(element):
    """An object as text: secrets hidden, attributes in a stable order, indented."""
    if element is None:
        return ""
    element = copy.deepcopy(element)
    for pair in element.iter("nvpair"):
        if SECRET.search(pair.get("name") or "") and "value" in pair.attrib:
            pair.set("value", HIDDEN)
    first = {"id": 0, "uname": 1, "name": 2}
    for node in element.iter():
        attributes = sorted(node.attrib.items(), key=lambda kv: (first.get(kv[0], 3), kv[0]))
        node.attrib.clear()
        node.attrib.update(attributes)
        node.tail = None
        if len(node):
            node.text = None
    ET.indent(element)
    return ET.tostring(element, encoding="unicode") + "\n"


def property_text(element):
    if element is None:
        return ""
    name = element.get("name") or ""
    value = HIDDEN if SECRET.search(name) else element.get("value", "")
    return f"{name}={value}\n"


class Topology:
    """hakit's topology verbs on this node, against one CIB snapshot."""

    def __init__(self, module, workdir):
        self.module = module
        self.workdir = workdir
        params = module.params
        self.hakit = params["hakit"]
        self.src = params["src"]
        self.file = params["src"]
        if params["content"] is not None:
            self.file = self.private("topology.yaml", params["content"])
        self.flags = [] if params["agents"] else ["--no-agents"]
        if params["replace_unexpressed"]:
            self.flags.append("--replace-unexpressed")

    def private(self, name, text):
        path = os.path.join(self.workdir, name)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(text)
        return path

    def message(self, text):
        """hakit's message, naming the node's topology file rather than a private copy."""
        text = (text or "").strip()
        if self.file != self.src:
            text = text.replace(self.file, f"{self.src} (the controller's version)")
        return text

    def snapshot(self):
        """The live CIB in a private file: diff and its patch compare the same one."""
        rc, out, err = run(self.module, ["cibadmin", "--query"], "cibadmin --query")
        if rc != 0:
            return None, one_line(err or out)
        return self.private("live.xml", out), ""

    def diff(self, cib):
        argv = [self.hakit, "topology", "diff", "--json", "--cib", cib, *self.flags, self.file]
        rc, out, err = run(self.module, argv, "hakit topology diff")
        try:
            document = json.loads(out) if rc in (0, 1) else None
        except ValueError:
            document = None
        if not isinstance(document, dict):
            self.module.fail_json(
                msg=f"hakit topology diff: {self.message(err or out) or f'exit {rc}'}", rc=rc
            )
        if not document.get("valid"):
            problems = []
            for problem in document.get("problems") or []:
                place = ":".join(str(problem[k]) for k in ("line", "column") if problem.get(k))
                where = f"{problem.get('file')}:{place}" if place else str(problem.get("file"))
                hint = f" (hint: {problem['hint']})" if problem.get("hint") else ""
                problems.append(f"{where}: {problem.get('object')}: {problem.get('message')}{hint}")
            self.module.fail_json(
                msg=self.message(f"the topology is not valid: {'; '.join(problems)}"),
                problems=[self.message(p) for p in problems],
                not_checked=document.get("not_checked") or [],
            )
        return document

    def object_diffs(self, cib, document):
        """Each differing object, live and wanted: the patch hakit would push, applied to
        the snapshot with crm_diff."""
        argv = [self.hakit, "topology", "diff", "--patch", "--cib", cib, *self.flags, self.file]
        rc, patch, err = run(self.module, argv, "hakit topology diff --patch")
        if rc != 1 or not patch.strip():
            return [{"prepared": f"(no patch: {self.message(err) or f'exit {rc}'})\n"}]
        # the digest is of hakit's own serialization of the CIB, not of this file
        patch_file = self.private("patch.xml", re.sub(r' digest="[0-9a-f]*"', "", patch, count=1))
        argv = ["crm_diff", "--original", cib, "--patch", patch_file]
        rc, wanted_text, err = run(self.module, argv, "crm_diff")
        try:
            with open(cib, encoding="utf-8") as handle:
                live = objects(ET.fromstring(handle.read()))  # noqa: S314 - the cluster's CIB
            wanted = objects(ET.fromstring(wanted_text)) if rc == 0 else None  # noqa: S314
        except ET.ParseError:
            wanted = None
        if wanted is None:
            return [{"prepared": f"(crm_diff could not apply the patch: {one_line(err)})\n"}]
        diffs = []
        for change in document.get("changes") or []:
            key = f"{change.get('kind')} {change.get('id')}"
            render = property_text if change.get("kind") == "property" else shown
            diffs.append(
                {
                    "before_header": f"{key} (live CIB)",
                    "after_header": f"{key} (topology)",
                    "before": render(live.get(key)),
                    "after": render(wanted.get(key)),
                }
            )
        return diffs

    def apply(self):
        argv = [self.hakit, "topology", "apply", "--yes", *self.flags, self.file]
        rc, out, err = run(self.module, argv, "hakit topology apply")
        if rc != 0:
            self.module.fail_json(
                msg=f"hakit topology apply: {self.message(err or out) or f'exit {rc}'}", rc=rc
            )
        return out.splitlines()


def main():
    module = AnsibleModule(
        argument_spec={
            "src": {"type": "path", "required": True},
            "content": {"type": "str"},
            "hakit": {"type": "path", "default": "/opt/hakit/venv/bin/hakit"},
            "cib": {"type": "path"},
            "agents": {"type": "bool", "default": True},
            "replace_unexpressed": {"type": "bool", "default": False},
        },
        supports_check_mode=True,
    )
    params = module.params
    if not os.access(params["hakit"], os.X_OK):
        if module.check_mode:
            module.exit_json(
                changed=True,
                msg=f"{params['hakit']} is not installed yet: the topology would be applied "
                "once it is",
            )
        module.fail_json(msg=f"{params['hakit']}: not installed (hakit's venv, its wheel)")
    if params["cib"] and not module.check_mode:
        module.fail_json(msg="cib: only in check mode (hakit topology apply changes the live CIB)")
    if params["content"] is None and not os.path.isfile(params["src"]):
        module.fail_json(msg=f"{params['src']}: no such file")

    topology = Topology(module, module.tmpdir)
    cib = params["cib"]
    if cib is None:
        cib, why = topology.snapshot()
        if cib is None:
            if module.check_mode:
                module.exit_json(
                    changed=True,
                    msg=f"the cluster does not answer ({why}): the topology would be applied "
                    "once it runs",
                )
            module.fail_json(msg=f"the cluster does not answer: cibadmin --query: {why}")
    document = topology.diff(cib)
    changed = bool(document.get("changed"))
    result = {
        "changed": changed,
        "changes": document.get("changes") or [],
        "transition": document.get("transition") or [],
        "kept": document.get("kept") or [],
    }
    if changed and module._diff:
        prepared = {"prepared": summary(document, applied=not module.check_mode)}
        result["diff"] = [prepared, *topology.object_diffs(cib, document)]
    if changed and not module.check_mode:
        result["applied"] = topology.apply()
    module.exit_json(**result)


if __name__ == "__main__":
    main()
