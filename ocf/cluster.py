"""The one module that runs Pacemaker and Corosync programs (as pcs keeps
`lib/pacemaker/live.py`): crm_node, attrd_updater, crm_attribute, crm_mon,
crm_resource, stonith_admin, cibadmin, crm_diff, crm_verify, crm_simulate,
corosync-cfgtool, and the daemons' own command lines. Every call has a timeout, XML
output is parsed into small objects (`hakit.ocf.status`), and every failure is a
ClusterCommandError with the command's own message. Nothing else in hakit names these
programs; a test keeps it so.

Where a command runs is a `Runner`: this node by default, a lab node (`nsenter`) or an
ssh target otherwise. `using(runner)` makes it the runner of every call in its block
(a context variable, so threads keep their own). Standard library only, and cheap to
import: agents call these on every monitor.
"""

from __future__ import annotations

import os
from contextvars import ContextVar
from itertools import takewhile

from ._typing import TYPE_CHECKING
from .status import ClusterStatus, FenceEvent

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from xml.etree.ElementTree import Element

DEFAULT_TIMEOUT = 10.0
#: The cluster daemons, as a node's init starts them in the foreground.
COROSYNC = ("corosync", "-f")
PACEMAKERD = ("pacemakerd", "-f")
DAEMONS = ("corosync", "pacemakerd")
#: A Pacemaker Remote node's one daemon (Debian's pacemaker-remote package ships it).
REMOTED = "pacemaker-remoted"
#: Programs a node must have (a lab preflight checks them).
PROGRAMS = ("corosync", "pacemakerd", "crm_mon", "cibadmin", "crm_resource", "stonith_admin")
#: pcs, the command an exported script calls (`topology export --pcs`).
PCS = "pcs"
CIBADMIN = "cibadmin"  # for scripts hakit writes (the pcs export), not run here
CRM_VERIFY = "crm_verify"  # also named by the topology benchmark, which times it alone


class ClusterCommandError(Exception):
    """A cluster command failed, timed out or is missing."""

    def __init__(self, command: Sequence[str], message: str, returncode: int | None = None):
        super().__init__(f"{' '.join(command)}: {message}")
        self.command = list(command)
        self.returncode = returncode


class Runner:
    """Runs a cluster program somewhere: here by default; `prefix` enters elsewhere (a lab
    node: `nsenter -t PID -n -m -u --`). `env` replaces the environment (LC_ALL=C always)."""

    def __init__(
        self, prefix: Sequence[str] = (), env: Mapping[str, str] | None = None, name: str = ""
    ) -> None:
        self.prefix = list(prefix)
        self.env = dict(env) if env is not None else None
        self.name = name or "local"

    def __repr__(self) -> str:
        return f"Runner({self.name!r})"

    def command(self, args: Sequence[str]) -> list[str]:
        """The command line that runs `args` through this runner."""
        return [*self.prefix, *args]

    def run(
        self,
        args: Sequence[str],
        *,
        timeout: float = DEFAULT_TIMEOUT,
        stdin: str | None = None,
        ok_codes: Sequence[int] = (0,),
        stderr: bool = False,
    ) -> tuple[int, str]:
        """Run `args`; return (exit code, stdout, with stderr before it if `stderr`).
        Raise on other codes or a timeout."""
        import subprocess

        env = dict(os.environ if self.env is None else self.env, LC_ALL="C")
        try:
            done = subprocess.run(
                self.command(args),
                input=stdin,
                capture_output=True,
                text=True,
                timeout=max(timeout, 0.1),
                env=env,
                check=False,
                stdin=None if stdin is not None else subprocess.DEVNULL,
            )
        except FileNotFoundError:
            raise ClusterCommandError(args, f"not installed on {self.where}") from None
        except subprocess.TimeoutExpired:
            raise ClusterCommandError(args, f"no answer within {timeout:g}s") from None
        if done.returncode not in ok_codes:
            message = (done.stderr or done.stdout).strip().splitlines()
            raise ClusterCommandError(
                args, message[-1] if message else f"exit code {done.returncode}", done.returncode
            )
        return done.returncode, (done.stderr + done.stdout) if stderr else done.stdout

    @property
    def where(self) -> str:
        return "this node" if not self.prefix else self.name


class SshRunner(Runner):
    """Runs cluster programs on another host over ssh (keys, no password prompt)."""

    def __init__(self, host: str, *, user: str = "root", options: Sequence[str] = ()) -> None:
        super().__init__(
            ["ssh", "-o", "BatchMode=yes", *options, f"{user}@{host}", "--"], name=host
        )

    def command(self, args: Sequence[str]) -> list[str]:
        import shlex

        return [*self.prefix, shlex.join(["env", "LC_ALL=C", *args])]


LOCAL = Runner()
_current: ContextVar[Runner] = ContextVar("hakit_cluster_runner", default=LOCAL)


def current_runner() -> Runner:
    """The runner calls use now (this node unless inside `using`)."""
    return _current.get()


class using:  # used as a function: `with cluster.using(runner):`
    """Run every cluster command of this block (this thread) through `runner`."""

    def __init__(self, runner: Runner) -> None:
        self.runner = runner

    def __enter__(self) -> Runner:
        self._token = _current.set(self.runner)
        return self.runner

    def __exit__(self, *_: object) -> None:
        _current.reset(self._token)


def run(
    args: Sequence[str],
    *,
    timeout: float = DEFAULT_TIMEOUT,
    stdin: str | None = None,
    ok_codes: Sequence[int] = (0,),
    stderr: bool = False,
) -> tuple[int, str]:
    """Run a cluster tool with the current runner; return (exit code, stdout)."""
    return _current.get().run(args, timeout=timeout, stdin=stdin, ok_codes=ok_codes, stderr=stderr)


def run_xml(args: Sequence[str], *, timeout: float = DEFAULT_TIMEOUT) -> Element:
    """Run a tool that prints XML and parse it."""
    from xml.etree import ElementTree

    _, output = run(args, timeout=timeout)
    try:
        return ElementTree.fromstring(output)  # noqa: S314 — output of local Pacemaker tools
    except ElementTree.ParseError as error:
        raise ClusterCommandError(args, f"unreadable XML output: {error}") from None


# --- the local node -----------------------------------------------------------------


def local_node_name(*, timeout: float = DEFAULT_TIMEOUT) -> str:
    """This node's name as the cluster knows it (`crm_node -n`)."""
    return run(["crm_node", "-n"], timeout=timeout)[1].strip()


def is_quorate(*, timeout: float = DEFAULT_TIMEOUT) -> bool:
    """Whether this node's partition has quorum (`crm_node -q`)."""
    return run(["crm_node", "-q"], timeout=timeout)[1].strip() == "1"


# --- node attributes ------------------------------------------------------------------


def set_transient_attribute(
    name: str,
    value: str,
    *,
    node: str | None = None,
    private: bool = False,
    timeout: float = DEFAULT_TIMEOUT,
) -> None:
    """Set a node attribute until the node leaves (attrd_updater -U; `private`: attrd keeps
    it in memory only, so no CIB write and no transition follows a change)."""
    flags = [*_node(node), *(["-p"] if private else [])]
    run(["attrd_updater", "-n", name, "-U", value, *flags], timeout=timeout)


def get_transient_attribute(
    name: str, *, node: str | None = None, timeout: float = DEFAULT_TIMEOUT
) -> str | None:
    """The value of a transient node attribute, None when it is not set."""
    # Pacemaker 2.1.5 answers a missing attribute with 78 ("attribute does not exist").
    code, output = run(
        ["attrd_updater", "-Q", "-n", name, *_node(node)], timeout=timeout, ok_codes=(0, 78, 105)
    )
    if code != 0:
        return None
    for word in output.split():
        if word.startswith('value="'):
            value = word[len('value="') : -1]
            return value or None
    return None


def transient_attribute_values(name: str, *, timeout: float = DEFAULT_TIMEOUT) -> dict[str, str]:
    """{node: value} of a transient attribute on every node that has it (attrd_updater -QA)."""
    code, output = run(
        ["attrd_updater", "-Q", "-A", "-n", name], timeout=timeout, ok_codes=(0, 78, 105)
    )
    values: dict[str, str] = {}
    if code != 0:
        return values
    for line in output.splitlines():
        fields = _quoted_fields(line)
        if fields.get("name", name) == name and "host" in fields and fields.get("value"):
            values[fields["host"]] = fields["value"]
    return values


def _quoted_fields(line: str) -> dict[str, str]:
    """`a="x" b="y z"` → {"a": "x", "b": "y z"}."""
    fields: dict[str, str] = {}
    rest = line.strip()
    while "=" in rest:
        key, _, rest = rest.partition("=")
        if not rest.startswith('"'):
            break
        value, _, rest = rest[1:].partition('"')
        fields[key.strip()] = value
        rest = rest.strip()
    return fields


def delete_transient_attribute(
    name: str, *, node: str | None = None, timeout: float = DEFAULT_TIMEOUT
) -> None:
    run(["attrd_updater", "-n", name, "-D", *_node(node)], timeout=timeout)


def set_node_attribute(
    name: str, value: str, *, node: str | None = None, timeout: float = DEFAULT_TIMEOUT
) -> None:
    """Set a permanent node attribute in the CIB (crm_attribute -l forever)."""
    args = ["crm_attribute", "-t", "nodes", "-l", "forever", "-n", name, "-v", value, *_node(node)]
    run(args, timeout=timeout)


def get_node_attribute(
    name: str, *, node: str | None = None, timeout: float = DEFAULT_TIMEOUT
) -> str | None:
    args = ["crm_attribute", "-t", "nodes", "-l", "forever", "-n", name, "-G", "-q", *_node(node)]
    code, output = run(args, timeout=timeout, ok_codes=(0, 105))
    return output.strip() if code == 0 else None


def delete_node_attribute(
    name: str, *, node: str | None = None, timeout: float = DEFAULT_TIMEOUT
) -> None:
    args = ["crm_attribute", "-t", "nodes", "-l", "forever", "-n", name, "-D", *_node(node)]
    run(args, timeout=timeout)


def forget_node(name: str, *, timeout: float = DEFAULT_TIMEOUT) -> None:
    """Purge a node gone for good from the CIB (a removed remote's node and status)."""
    run(["crm_node", "--force", "--remove", name], timeout=timeout)


def _node(node: str | None) -> list[str]:
    return ["-N", node] if node else []


# --- status ------------------------------------------------------------------------------


STATUS_XML = ["crm_mon", "--one-shot", "--inactive", "--output-as=xml", "--include=all"]


def cluster_status(*, timeout: float = DEFAULT_TIMEOUT) -> ClusterStatus:
    """Current status, including node history (fail counts) and failures."""
    return ClusterStatus(run_xml(STATUS_XML, timeout=timeout))


# --- fencing -----------------------------------------------------------------------------


def fencing_history(node: str = "*", *, timeout: float = DEFAULT_TIMEOUT) -> list[FenceEvent]:
    """Every fencing action against `node` ("*" = all) (no --verbose: one success in all)."""
    args = ["stonith_admin", "--history", node, "--output-as=xml", "--verbose"]
    root = run_xml(args, timeout=timeout)
    return [FenceEvent(e) for e in root.iter("fence_event")]


# --- the CIB -------------------------------------------------------------------------------


def cib_query(
    scope: str | None = None, *, xpath: str | None = None, timeout: float = DEFAULT_TIMEOUT
) -> Element:
    """The live CIB, or one section (`scope`: resources, constraints, nodes, ...)."""
    args = ["cibadmin", "--query"]
    if scope:
        args += ["--scope", scope]
    if xpath:
        args += ["--xpath", xpath]
    return run_xml(args, timeout=timeout)


def cib_text(*, timeout: float = DEFAULT_TIMEOUT) -> str:
    """The whole live CIB as XML text (status included)."""
    return run(["cibadmin", "--query"], timeout=timeout)[1]


def cib_create(scope: str, xml: str, *, timeout: float = DEFAULT_TIMEOUT) -> None:
    """Add an object to a CIB section."""
    run(["cibadmin", "--create", "--scope", scope, "--xml-pipe"], stdin=xml, timeout=timeout)


def cib_diff(original: str, new: str, *, timeout: float = DEFAULT_TIMEOUT) -> str | None:
    """crm_diff's patch turning the `original` CIB file into `new`; None if they match."""
    args = ["crm_diff", "--original", original, "--new", new, "--no-version"]
    code, output = run(args, timeout=timeout, ok_codes=(0, 1))
    return output if code == 1 and output.strip() else None


def cib_patch(patch_file: str, *, timeout: float = DEFAULT_TIMEOUT) -> None:
    """Apply a crm_diff patch to the live CIB in one transaction."""
    run(["cibadmin", "--patch", "--xml-file", patch_file], timeout=timeout)


def simulate_transition(
    cib_file: str, *extra: str, save: str | None = None, timeout: float = 60
) -> list[str]:
    """The "Transition Summary" crm_simulate predicts for a CIB file (with status), after
    the events in `extra` (--node-up/--node-fail/--op-inject ...); `save` keeps the result."""
    args = ["crm_simulate", "--xml-file", cib_file, "--simulate", *extra]
    args += ["--save-output", save] if save else []
    _, output = run(args, timeout=timeout)
    lines = output.splitlines()
    if "Transition Summary:" not in lines:
        return []
    summary = takewhile(str.strip, lines[lines.index("Transition Summary:") + 1 :])
    return [line.strip().lstrip("* ").strip() for line in summary]


def set_cluster_property(name: str, value: str, *, timeout: float = DEFAULT_TIMEOUT) -> None:
    run(["crm_attribute", "-t", "crm_config", "-n", name, "-v", value], timeout=timeout)


# --- resources ---------------------------------------------------------------------------


def restart_resource(resource: str, *, timeout: float = 300) -> None:
    """Restart a resource (all instances of a clone) and wait for it."""
    run(
        ["crm_resource", "--resource", resource, "--restart", "--timeout", f"{int(timeout)}s"],
        timeout=timeout + 30,
    )


def set_resource_meta(resource: str, name: str, value: str | None, *, timeout: float = 30) -> None:
    """Set (or with None delete) a resource's meta attribute."""
    change = ["--delete-parameter", name]
    change = change if value is None else ["--set-parameter", name, "--parameter-value", value]
    run(["crm_resource", "--resource", resource, "--meta", *change], timeout=timeout)


def cleanup(resource: str | None = None, *, node: str | None = None, timeout: float = 60) -> None:
    """Forget failures (of one resource, on one node) so Pacemaker re-probes."""
    args = ["crm_resource", "--cleanup"]
    args += ["--resource", resource] if resource else []
    args += ["--node", node] if node else []
    run(args, timeout=timeout)


def wait_for_idle(*, timeout: float = 300) -> bool:
    """Wait until the cluster has no pending actions; False if it did not settle in time."""
    return _succeeds(["crm_resource", "--wait", "--timeout", f"{int(timeout)}s"], timeout + 30)


def status_text(*, timeout: float = DEFAULT_TIMEOUT) -> str:
    """crm_mon's one-shot text, inactive resources included (for people)."""
    return run(["crm_mon", "--one-shot", "--inactive"], timeout=timeout, ok_codes=range(256))[1]


def status_xml(*, timeout: float = DEFAULT_TIMEOUT) -> Element:
    """crm_mon's whole XML answer (honours CIB_file); failures as Pacemaker words them."""
    return pacemaker_xml(STATUS_XML, timeout=timeout)


def watch_status_command(path: str) -> list[str]:
    """A live crm_mon rewriting `path` on CIB changes (at once if its last was 1 s ago)."""
    return _current.get().command(["crm_mon", "-i0", "--output-as=text", f"--output-to={path}"])


def watch_membership_command() -> list[str]:
    """A live corosync-quorumtool printing the members at start and on every change."""
    return _current.get().command(["stdbuf", "-oL", "corosync-quorumtool", "-m"])


def pacemaker_xml(args: Sequence[str], *, timeout: float = DEFAULT_TIMEOUT) -> Element:
    """`run_xml` for tools run with --output-as=xml: on failure they answer XML too, and the
    error is its <error> lines, not the last line of the document."""
    from xml.etree import ElementTree

    code, output = run(args, timeout=timeout, ok_codes=range(256))
    try:
        root = ElementTree.fromstring(output)  # noqa: S314 — output of local Pacemaker tools
    except ElementTree.ParseError:
        raise ClusterCommandError(args, f"exit code {code}, no XML answer", code) from None
    if code != 0:
        errors = [e.text.strip() for e in root.iter("error") if e.text and e.text.strip()]
        status = root.find("status")
        fallback = status.get("message", "") if status is not None else ""
        message = errors[-1].splitlines()[0] if errors else fallback
        raise ClusterCommandError(args, message or f"exit code {code}", code)
    return root


def fence_devices(target: str, *, timeout: float = DEFAULT_TIMEOUT) -> tuple[str, ...]:
    """Devices the fencer has registered that can fence `target` (empty when unknown)."""
    try:
        root = pacemaker_xml(
            ["stonith_admin", "--list", target, "--output-as=xml"], timeout=timeout
        )
    except ClusterCommandError:
        return ()
    return tuple(item.text.strip() for item in root.iter("item") if item.text)


def agent_metadata(agent: str, *, timeout: float = 30) -> str | None:
    """An agent's metadata XML (`stonith:x` or `class:provider:type`); None if unknown."""
    if agent.startswith("stonith:"):
        return _metadata(["stonith_admin", "--metadata", "--agent", agent[8:]], timeout)
    return _metadata(["crm_resource", "--show-metadata", agent], timeout)


def daemon_metadata(daemon: str, *, timeout: float = 30) -> str | None:
    """The options a Pacemaker daemon reads (`schedulerd`, `controld`, `based`, `fenced`),
    from /usr/lib/pacemaker (Debian) or /usr/libexec/pacemaker (Fedora, RHEL, SUSE)."""
    found = _metadata([f"/usr/lib/pacemaker/pacemaker-{daemon}", "metadata"], timeout)
    return found or _metadata([f"/usr/libexec/pacemaker/pacemaker-{daemon}", "metadata"], timeout)


def _metadata(args: list[str], timeout: float) -> str | None:
    try:
        code, output = run(args, timeout=timeout, ok_codes=range(256))
    except ClusterCommandError:
        return None
    return output if code == 0 and output.strip() else None


def verify_cib_file(path: str, *, timeout: float = 60) -> tuple[int, str]:
    """crm_verify on a CIB file: (exit code, its messages)."""
    args = [CRM_VERIFY, "--verbose", "--xml-file", path]
    return run(args, timeout=timeout, ok_codes=range(256), stderr=True)


def empty_cib(*, timeout: float = DEFAULT_TIMEOUT) -> str:
    """An empty CIB of the installed Pacemaker's newest schema (cibadmin --empty)."""
    return run(["cibadmin", "--empty"], timeout=timeout)[1]


# --- corosync ------------------------------------------------------------------------------


def corosync_reload(*, timeout: float = DEFAULT_TIMEOUT) -> bool:
    """Make corosync re-read corosync.conf; False if it could not."""
    return _succeeds(["corosync-cfgtool", "-R"], timeout)


def corosync_answers(*, timeout: float = DEFAULT_TIMEOUT) -> bool:
    """Whether corosync answers on this node (its rings' status)."""
    return _succeeds(["corosync-cfgtool", "-s"], timeout)


def _succeeds(args: list[str], timeout: float) -> bool:
    try:
        run(args, timeout=timeout)
    except ClusterCommandError:
        return False
    return True


def cib_modify(xml: str, *, timeout: float = DEFAULT_TIMEOUT) -> None:
    """Merge attributes into the CIB object the XML names (cibadmin --modify)."""
    run(["cibadmin", "--modify", "--xml-pipe"], stdin=xml, timeout=timeout)
