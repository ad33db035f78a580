"""The lab's fence agent, `fence_hakit_lab`, following the fence-agents protocol.

`hakit lab up` writes it to /usr/sbin (pacemaker-fenced only runs regular files
there) with the lab's paths filled in. pacemaker-fenced runs it inside a node; it
re-enters the host namespaces through the lab's anchor process and powers the
target off by killing every process in its namespace (`hakit lab cut`), and on by
booting it again (`hakit lab power-on`); a reboot returns once the power is off and the
node boots FENCED_BOOT_DELAY later.

Test hooks in the lab directory: `fence_fail` makes every action fail (a broken
fencing device); `fence_fail.NAME` makes the power actions of the device whose `device`
parameter is NAME fail (a first fencing level failing); `fence_no_poweron` makes reboot
power off only.
"""

from __future__ import annotations

#: Seconds between a reboot's power-off and the node's boot. A real host takes minutes to
#: come back, long after its fencing result is out; a lab node booting at once can rejoin
#: before that result reaches the cluster, and Pacemaker then stops it for good ("We were
#: allegedly just fenced").
FENCED_BOOT_DELAY = 3.0

TEMPLATE = r'''#!/usr/bin/python3 -I
"""fence_hakit_lab: fence agent of the hakit lab (written by `hakit lab up`)."""
import os
import subprocess
import sys

LAB_DIR = {lab_dir!r}
LAB_PYTHON = {python!r}
NODES = {nodes!r}
BOOT_DELAY = {boot_delay!r}
METADATA = """<?xml version="1.0" ?>
<resource-agent name="fence_hakit_lab" shortdesc="Fence agent for the hakit lab">
<longdesc>Powers a hakit lab node off by killing every process in its namespaces, and on by booting it again.</longdesc>
<vendor-url>https://github.com/</vendor-url>
<parameters>
<parameter name="action" unique="0" required="1"><getopt mixed="-o, --action=[action]" /><content type="string" default="reboot" /><shortdesc lang="en">Fencing action</shortdesc></parameter>
<parameter name="plug" unique="0" required="1"><getopt mixed="-n, --plug=[id]" /><content type="string" /><shortdesc lang="en">Lab node name</shortdesc></parameter>
<parameter name="port" unique="0" required="0"><getopt mixed="-n, --plug=[id]" /><content type="string" /><shortdesc lang="en">Alias of plug</shortdesc></parameter>
<parameter name="device" unique="0" required="0"><getopt mixed="--device=[name]" /><content type="string" /><shortdesc lang="en">This device's name in the lab: a file fence_fail.NAME in the lab directory makes it fail</shortdesc></parameter>
</parameters>
<actions>
<action name="on" automatic="0"/>
<action name="off" />
<action name="reboot" />
<action name="status" />
<action name="list" />
<action name="monitor" />
<action name="metadata" />
</actions>
</resource-agent>
"""


def options():
    opts = {{}}
    if not sys.stdin.isatty():
        for line in sys.stdin.read().splitlines():
            key, sep, value = line.strip().partition("=")
            if sep and not key.startswith("#"):
                opts[key.strip()] = value.strip()
    args = sys.argv[1:]
    for index, arg in enumerate(args):
        if arg.startswith("--") and "=" in arg:
            key, _, value = arg[2:].partition("=")
            opts[key] = value
        elif arg in ("-o", "-n") and index + 1 < len(args):
            opts["action" if arg == "-o" else "plug"] = args[index + 1]
    return opts


def lab(*args):
    """Run `hakit lab ...` in the host's namespaces."""
    with open(os.path.join(LAB_DIR, "anchor.pid"), encoding="ascii") as handle:
        anchor = handle.read().strip()
    return subprocess.run(
        ["nsenter", "-t", anchor, "-m", "-n", "-u", "--", LAB_PYTHON, "-I", "-m",
         "hakit.tools.cli", "lab", *args],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        timeout=60, check=False,
    ).returncode


def main():
    opts = options()
    action = opts.get("action", opts.get("option", "reboot"))
    plug = opts.get("plug") or opts.get("port") or opts.get("nodename", "")
    if action in ("metadata", "meta-data"):
        sys.stdout.write(METADATA)
        return 0
    device = opts.get("device", "")
    power = action in ("off", "on", "reboot")
    for flag in ("fence_fail", f"fence_fail.{{device}}" if device and power else ""):
        if flag and os.path.exists(os.path.join(LAB_DIR, flag)):
            sys.stderr.write(f"fence_hakit_lab: device failure injected ({{flag}})\n")
            return 1
    if action in ("monitor", "list"):
        if action == "list":
            sys.stdout.write("".join(f"{{n}},{{n}}\n" for n in NODES))
        return 0 if os.path.isdir(LAB_DIR) else 1
    if plug not in NODES:
        sys.stderr.write(f"fence_hakit_lab: unknown plug {{plug!r}}\n")
        return 1
    if action == "status":
        return 0 if lab("power-state", plug) == 0 else 2
    if action == "off":
        return lab("cut", "--yes", plug)
    if action == "on":
        return lab("power-on", plug)
    if action == "reboot":
        if lab("cut", "--yes", plug) != 0:
            return 1
        if os.path.exists(os.path.join(LAB_DIR, "fence_no_poweron")):
            return 0
        # the node boots a while after this returns, as a real host does: booted at once,
        # it could rejoin before the fencing result is out and be stopped for good
        return lab("power-on", "--after", str(BOOT_DELAY), plug)
    sys.stderr.write(f"fence_hakit_lab: unsupported action {{action}}\n")
    return 1


sys.exit(main())
'''


def render(lab_dir: str, python: str, nodes: list[str]) -> str:
    """The agent's source for this lab."""
    return TEMPLATE.format(
        lab_dir=lab_dir, python=python, nodes=nodes, boot_delay=FENCED_BOOT_DELAY
    )
