"""ocf:hakit:service — run any long-lived daemon, started only when it is ready.

Depth 0 checks the process tree (a SIGSTOPped main process is a failure, 1), depth 10
the readiness check (a TCP port listened on by the tree, a command, or a file). Running
but not ready is a failure (1), never "not running" (7). The base for hakit's OpenStack
agents, which reuse its state files, `spawn`, `wait_until_ready`, `monitored_pid` and
`stop`.
"""

from __future__ import annotations

import os
import time

from hakit.ocf import (
    Action,
    Agent,
    Context,
    OCFError,
    OCFExit,
    PathParam,
    PortParam,
    StringParam,
    proc,
)
from hakit.ocf._typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    ReadyCheck = Callable[[Context, int], str | None]

VERSION = "1.0.0"
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#: Without a readiness check, start waits this long and needs the process still alive.
SETTLE_SECONDS = 1.0

BINARY = PathParam(
    "binary",
    "Program to run",
    "The daemon's executable: an absolute path or a name in PATH. "
    "It must stay in the foreground, unless pidfile is set.",
    required=True,
    executable=True,
)
ARGUMENTS = StringParam(
    "arguments",
    "Arguments",
    "Command-line arguments, split like a shell would (no shell "
    "runs). Never put a password here: it would show in ps; use environment_file.",
    default="",
)
USER = StringParam(
    "user", "Run as this user", "User to run the daemon as; empty = root.", default=""
)
PIDFILE = PathParam(
    "pidfile",
    "PID file of a forking daemon",
    "Only for daemons that fork into the "
    "background: the PID file they write. Foreground daemons are tracked without one.",
)
ENVIRONMENT_FILE = PathParam(
    "environment_file",
    "Environment file",
    "KEY=VALUE lines (# comments) added to the " "daemon's environment; the place for credentials.",
    must_exist=True,
)
WORKDIR = PathParam("workdir", "Working directory", default="/", must_exist=True)
LOG_FILE = PathParam(
    "log_file",
    "Daemon output",
    "Where the daemon's stdout and stderr go; " "default /var/log/hakit/<resource>.log.",
)
READY_PORT = PortParam(
    "ready_port",
    "Ready when listening on this TCP port",
    "Ready when a process of the daemon's tree listens on this TCP port.",
)
READY_COMMAND = StringParam(
    "ready_command",
    "Ready when this command succeeds",
    "Ready when this command exits 0 (split like a shell would; no shell runs).",
)
READY_FILE = PathParam("ready_file", "Ready when this file exists")


def run_dir(ctx: Context) -> str:
    """Where state files live; HAKIT_RUN_DIR moves it (tests)."""
    return ctx.environ.get("HAKIT_RUN_DIR", "/run/hakit") + "/service"


def state_path(ctx: Context) -> str:
    return f"{run_dir(ctx)}/{ctx.state_name}.state"


def daemon_log(ctx: Context) -> str:
    """Where the daemon's output goes."""
    return ctx.params.get(LOG_FILE) or f"/var/log/hakit/{ctx.state_name}.log"


def read_state(ctx: Context) -> tuple[int, int] | None:
    """(pid, start time) of the tracked main process, if a state file exists."""
    try:
        with open(state_path(ctx), encoding="ascii") as handle:
            fields = dict(line.split("=", 1) for line in handle.read().split())
        return int(fields["pid"]), int(fields["start_time"])
    except (OSError, ValueError, KeyError):
        return None


def write_state(ctx: Context, pid: int) -> None:
    os.makedirs(run_dir(ctx), mode=0o755, exist_ok=True)
    path = state_path(ctx)
    with open(path + ".new", "w", encoding="ascii") as handle:
        handle.write(f"pid={pid}\nstart_time={proc.start_time(pid)}\n")
    os.replace(path + ".new", path)


def running_pid(ctx: Context) -> int | None:
    state = read_state(ctx)
    if state and proc.is_alive(*state):
        return state[0]
    return None


def not_ready_because(ctx: Context, pid: int) -> str | None:
    """Why the daemon is not ready, or None when it is (or no check is configured)."""
    params = ctx.params
    port = params.get(READY_PORT)
    if port is not None and not proc.listening_on(pid, port):
        return f"nothing in the process tree of pid {pid} listens on TCP port {port}"
    ready_file = params.get(READY_FILE)
    if ready_file and not os.path.exists(ready_file):
        return f"ready file {ready_file} does not exist"
    command = params.get(READY_COMMAND)
    if command:
        import shlex
        import subprocess

        try:
            done = subprocess.run(
                shlex.split(command),
                capture_output=True,
                timeout=max(ctx.remaining(1), 1),
                check=False,
                stdin=subprocess.DEVNULL,
            )
        except (OSError, subprocess.TimeoutExpired, ValueError) as error:
            return f"ready_command failed: {error}"
        if done.returncode != 0:
            return f"ready_command exited {done.returncode}"
    return None


def has_readiness_check(ctx: Context) -> bool:
    port, path, command = (
        ctx.params.get(READY_PORT),
        ctx.params.get(READY_FILE),
        ctx.params.get(READY_COMMAND),
    )
    return port is not None or bool(path) or bool(command)


def start(ctx: Context) -> int:
    pid = running_pid(ctx) or spawn(ctx)
    return wait_until_ready(ctx, pid, not_ready_because, settle=not has_readiness_check(ctx))


def wait_until_ready(
    ctx: Context, pid: int, not_ready: ReadyCheck, *, settle: bool, poll: float = 0.1
) -> int:
    """Return SUCCESS once `not_ready(ctx, pid)` is None (and, with `settle`, the daemon
    survived SETTLE_SECONDS more); raise if the daemon dies or the deadline comes first."""
    settled = not settle
    while True:
        if not proc.is_alive(pid):
            raise OCFError(OCFExit.ERR_GENERIC, f"daemon exited during start; {log_tail(ctx)}")
        reason = not_ready(ctx, pid)
        if reason is None and settled:
            ctx.log.info(f"started, pid {pid}, ready after {ctx.timeout - ctx.remaining():.2f}s")
            return OCFExit.SUCCESS
        if reason is None:
            time.sleep(min(SETTLE_SECONDS, ctx.remaining(0.5)))
            settled = True
            continue
        if ctx.remaining() < 1:
            raise OCFError(OCFExit.ERR_GENERIC, f"not ready within the start timeout: {reason}")
        time.sleep(min(poll, max(ctx.remaining(1), 0.05)))


def spawn(ctx: Context, argv: Sequence[str] | None = None) -> int:
    """Start the daemon detached (own session, no inherited descriptors); return its PID.
    `argv` defaults to binary + arguments."""
    import subprocess

    params = ctx.params
    if argv is None:
        argv = [params[BINARY], *split_arguments(ctx)]
    env, account = daemon_environment(ctx)
    log_path = daemon_log(ctx)
    os.makedirs(os.path.dirname(log_path), mode=0o750, exist_ok=True)
    pidfile = params.get(PIDFILE)
    if pidfile:
        try:
            os.unlink(pidfile)
        except FileNotFoundError:
            pass
    with open(log_path, "ab") as output:
        try:
            child = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=output,
                env=env,
                cwd=params.get(WORKDIR) or "/",
                start_new_session=True,
                close_fds=True,
                user=account.uid,
                group=account.gid,
                extra_groups=account.groups,
            )
        except PermissionError as error:
            raise OCFError(OCFExit.ERR_PERM, f"cannot run {argv[0]}: {error}") from None
        except OSError as error:
            raise OCFError(OCFExit.ERR_INSTALLED, f"cannot run {argv[0]}: {error}") from None
    pid = child.pid
    if pidfile:
        pid = wait_for_pidfile(ctx, pidfile)
    write_state(ctx, pid)
    ctx.log.info(f"spawned {argv[0]} as pid {pid}, output in {log_path}")
    return pid


def wait_for_pidfile(ctx: Context, pidfile: str) -> int:
    while ctx.remaining(1) > 0:
        try:
            with open(pidfile, encoding="ascii") as handle:
                pid = int(handle.read().split()[0])
            if proc.is_alive(pid):
                return pid
        except (OSError, ValueError, IndexError):
            pass
        time.sleep(0.05)
    raise OCFError(OCFExit.ERR_GENERIC, f"pidfile {pidfile} did not name a live process")


class Account:
    """Who the daemon runs as; all None = the agent's own identity (root)."""

    def __init__(self, user: str) -> None:
        self.uid: int | None = None
        self.gid: int | None = None
        self.groups: list[int] | None = None
        self.home = "/root"
        if user:
            import pwd

            try:
                entry = pwd.getpwnam(user)
            except KeyError:
                raise OCFError(OCFExit.ERR_INSTALLED, f"user {user} does not exist here") from None
            self.uid, self.gid, self.home = entry.pw_uid, entry.pw_gid, entry.pw_dir
            self.groups = os.getgrouplist(user, entry.pw_gid)


def daemon_environment(ctx: Context) -> tuple[dict[str, str], Account]:
    """A clean environment (no OCF_RESKEY_*: they may hold secrets) and the account."""
    user = ctx.params.get(USER) or ""
    account = Account(user)
    home = account.home
    env = {
        "PATH": DEFAULT_PATH,
        "LANG": "C.UTF-8",
        "HOME": home,
        "USER": user or "root",
        "LOGNAME": user or "root",
        "HAKIT_RESOURCE": ctx.instance,
    }
    env_file = ctx.params.get(ENVIRONMENT_FILE)
    if env_file:
        env.update(read_environment_file(env_file))
    return env, account


def read_environment_file(path: str) -> dict[str, str]:
    values = {}
    try:
        with open(path, encoding="utf-8") as handle:
            lines = handle.read().splitlines()
    except OSError as error:
        raise OCFError(OCFExit.ERR_INSTALLED, f"environment_file: {error}") from None
    except UnicodeDecodeError as error:
        raise OCFError(
            OCFExit.ERR_CONFIGURED,
            f"environment_file {path}: not UTF-8 text (byte {error.start})",
        ) from None
    for number, line in enumerate(lines, 1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        key, sep, value = text.removeprefix("export ").partition("=")
        if not sep or not key.strip().isidentifier():
            raise OCFError(
                OCFExit.ERR_CONFIGURED, f"environment_file {path}:{number}: expected KEY=VALUE"
            )
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key.strip()] = value
    return values


def log_tail(ctx: Context) -> str:
    """The daemon's last meaningful line of output (skipping blank lines and log lines
    that are only a prefix, like the "... 1234 ERROR nova " that ends an oslo traceback)."""
    path = daemon_log(ctx)
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            handle.seek(max(handle.tell() - 2000, 0))
            lines = handle.read().decode(errors="replace").strip().splitlines()
    except OSError:
        lines = []
    meaningful = [ln.strip() for ln in lines if ln.strip() and not _bare_log_prefix(ln)]
    return f"last output: {meaningful[-1]}" if meaningful else f"no output in {path}"


def _bare_log_prefix(line: str) -> bool:
    """`date time pid LEVEL logger` with no message (oslo.log's default format)."""
    fields = line.split()
    return len(fields) == 5 and fields[2].isdigit() and fields[3] in _LEVELS


_LEVELS = frozenset({"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL", "TRACE"})


def split_arguments(ctx: Context) -> list[str]:
    """The `arguments` parameter split like a shell would; 6 if it cannot be."""
    import shlex

    try:
        return shlex.split(ctx.params.get(ARGUMENTS) or "")
    except ValueError as error:
        raise OCFError(OCFExit.ERR_CONFIGURED, f"arguments cannot be split: {error}") from None


def validate(ctx: Context) -> int:
    """Checks beyond the parameter types: the user, the arguments, the environment file."""
    split_arguments(ctx)
    daemon_environment(ctx)
    return OCFExit.SUCCESS


def stop(ctx: Context) -> int:
    state = read_state(ctx)
    if state is None:
        return OCFExit.SUCCESS
    pid, started = state
    margin = min(10.0, max(1.0, ctx.timeout / 4))
    if proc.is_alive(pid, started):
        left = proc.terminate_tree(pid, ctx.deadline - 0.2, kill_margin=margin)
    else:  # the main process died; its workers may not have
        leftovers = proc.orphans(pid, started)
        if leftovers:
            ctx.log.info(f"main pid {pid} is gone; stopping what it left: {leftovers}")
        left = proc.terminate(leftovers, ctx.deadline - 0.2, kill_margin=margin)
    if left:
        raise OCFError(OCFExit.ERR_GENERIC, f"processes {left} survived SIGKILL")
    clear_state(ctx)
    ctx.log.info(f"stopped pid {pid}")
    return OCFExit.SUCCESS


def clear_state(ctx: Context) -> None:
    try:
        os.unlink(state_path(ctx))
    except FileNotFoundError:
        pass


def monitored_pid(ctx: Context) -> int | None:
    """The tracked main PID if it is alive; None when it was never started here (or on a
    probe); raises NOT_RUNNING with a reason when it died."""
    state = read_state(ctx)
    if state is None:
        return None
    pid, started = state
    if proc.is_alive(pid, started):
        return pid
    if ctx.is_probe:
        return None
    raise OCFError(OCFExit.NOT_RUNNING, f"daemon pid {pid} is gone; {log_tail(ctx)}")


def monitor(ctx: Context) -> int:
    pid = monitored_pid(ctx)
    if pid is None:
        return OCFExit.NOT_RUNNING
    info = proc.stat(pid)
    if info is not None and info.state in ("T", "t"):
        raise OCFError(
            OCFExit.ERR_GENERIC,
            f"daemon pid {pid} is stopped (SIGSTOP or a " "tracer): it serves nothing",
        )
    if ctx.check_level >= 10:
        reason = not_ready_because(ctx, pid)
        if reason is not None:
            raise OCFError(OCFExit.ERR_GENERIC, f"running but not ready: {reason}")
    return OCFExit.SUCCESS


AGENT = Agent(
    name="service",
    version=VERSION,
    shortdesc="Any long-lived daemon, ready-checked",
    longdesc=__doc__ or "",
    parameters=[
        BINARY,
        ARGUMENTS,
        USER,
        PIDFILE,
        ENVIRONMENT_FILE,
        WORKDIR,
        LOG_FILE,
        READY_PORT,
        READY_COMMAND,
        READY_FILE,
    ],
    actions=[
        Action("start", start, timeout=60),
        Action("stop", stop, timeout=60),
        Action("monitor", monitor, timeout=20, interval=10),
        Action("monitor", monitor, timeout=30, interval=30, depth=10),
    ],
    validate=validate,
)

if __name__ == "__main__":
    AGENT.main()
