"""A bare lab's hosts (`hakit lab up --bare`): nodes that a deployer such as Ansible
configures over ssh as if they were separate machines, and the controller it runs on.

Each node gets empty directories of its own bound over the paths a deployer writes
(`DEPLOY_DIRS`: directories, since a bound file breaks Ansible's atomic rename), sshd on
its address alone with a host key of its own (a service of its init), and its cluster
daemons on request: `hakit-lab-node start|stop|status` (lab/node_ctl.py) where a
production node has systemd. The controller is the namespace hakit-ctl at 10.77.0.9;
under `<lab dir>/ansible/` are its key, `authorized_keys`, `known_hosts` (every node's
host key: no trust on first use), `ssh_config` and `ansible.cfg` (nothing is written
under /root)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING

from hakit.lab.errors import LabError
from hakit.lab.namespaces import (
    CONTROLLER_ADDRESS,
    CONTROLLER_LINK,
    CONTROLLER_NETNS,
    PATH,
    ensure_port,
    netns_id,
    pids_in_netns,
    sh,
)
from hakit.ocf import proc

if TYPE_CHECKING:
    from hakit.lab.lab import Lab

SSHD = "/usr/sbin/sshd"
NODE_COMMAND = Path("/usr/sbin/hakit-lab-node")
NODE_CTL = Path(__file__).with_name("node_ctl.py")
#: The flag that makes a node's init start the cluster at boot (`systemctl enable`).
ENABLED_FILE = "/var/lib/hakit-lab-node/enabled"
#: (directory under the node's, where the node sees it, mode as on a Debian host)
DEPLOY_DIRS = [
    ("etc-corosync", "/etc/corosync", 0o755),
    ("etc-pacemaker", "/etc/pacemaker", 0o755),  # Pacemaker's authkey, for remote nodes
    ("etc-hakit", "/etc/hakit", 0o755),
    ("opt-hakit", "/opt/hakit", 0o755),
    ("ocf-resource-hakit", "/usr/lib/ocf/resource.d/hakit", 0o755),
    ("ocf-lib-hakit", "/usr/lib/ocf/lib/hakit", 0o755),
    ("lab-node", os.path.dirname(ENABLED_FILE), 0o755),
]
REMOTE_TMP = "/tmp/.ansible-hakit"  # noqa: S108 — Ansible's, on the nodes
SSH_PORT = 22
#: Mount points the lab made on this host (removed by `down` when empty).
MOUNT_POINTS = "mount-points.json"
NODE_COMMAND_TEXT = f"""#!/bin/sh
# hakit-lab-node: a bare hakit lab node's cluster daemons (written by `hakit lab up --bare`)
exec /usr/bin/python3 -I -S {NODE_CTL} "$@"
"""


def ansible_dir(lab: Lab) -> Path:
    return lab.dir / "ansible"


def ssh_dir(lab: Lab, node: str) -> Path:
    return lab.node_dir(node) / "ssh"


def binds(lab: Lab, node: str) -> list[tuple[str, str]]:
    """The node's deploy directories, as (source, target) bind mounts."""
    return [(str(lab.node_dir(node) / sub), target) for sub, target, _ in DEPLOY_DIRS]


def init_settings(lab: Lab, node: str) -> dict[str, object]:
    """The bare node's init config keys (node_init.py's contract)."""
    sshd = [SSHD, "-D", "-e", "-f", str(ssh_dir(lab, node) / "sshd_config")]
    return {"services": [sshd], "cluster": "on-request", "enabled_file": ENABLED_FILE}


# --- files ------------------------------------------------------------------------------


def prepare(lab: Lab) -> None:
    """Deploy directories, host keys and sshd configs, the controller's files, the node
    command and the mount points; existing keys are kept."""
    keys = ansible_dir(lab)
    keys.mkdir(mode=0o700, exist_ok=True)
    keys.chmod(0o700)
    for sub in ("home", "tmp", "cp", "cm"):
        (keys / sub).mkdir(mode=0o700, exist_ok=True)
    _check_strict_modes(keys)
    _keygen(keys / "id_ed25519", "hakit-lab-controller")
    (keys / "authorized_keys").write_text((keys / "id_ed25519.pub").read_text())
    (keys / "authorized_keys").chmod(0o600)
    known = []
    for node in lab.nodes + lab.remotes:
        base = lab.node_dir(node)
        for sub, _, mode in DEPLOY_DIRS:
            (base / sub).mkdir(exist_ok=True)
            (base / sub).chmod(mode)
        (base / "etc-corosync" / "uidgid.d").mkdir(mode=0o755, exist_ok=True)  # as packaged
        ssh = ssh_dir(lab, node)
        ssh.mkdir(mode=0o700, exist_ok=True)
        _keygen(ssh / "ssh_host_ed25519_key", f"root@{node}")
        (ssh / "sshd_config").write_text(sshd_config(lab, node))
        host_key = (ssh / "ssh_host_ed25519_key.pub").read_text().split()[:2]
        known.append(f"{node},{lab.address(node)} {' '.join(host_key)}\n")
    (keys / "known_hosts").write_text("".join(known))
    (keys / "ssh_config").write_text(ssh_config(lab))
    (keys / "ansible.cfg").write_text(ansible_cfg(lab))
    if not NODE_COMMAND.exists() or NODE_COMMAND.read_text() != NODE_COMMAND_TEXT:
        NODE_COMMAND.write_text(NODE_COMMAND_TEXT)
    NODE_COMMAND.chmod(0o755)
    _make_mount_points(lab)


def _keygen(path: Path, comment: str) -> None:
    if not path.exists():
        sh("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path))


def _check_strict_modes(keys: Path) -> None:
    """sshd ignores an authorized_keys file under a group- or world-writable directory."""
    for directory in [keys, *keys.parents]:
        info = directory.stat()
        if info.st_uid != 0 or info.st_mode & 0o022:
            raise LabError(
                f"{directory} is writable by others than root: sshd would refuse the "
                f"controller's key there (chmod go-w {directory}, or another HAKIT_LAB_DIR)"
            )


def sshd_config(lab: Lab, node: str) -> str:
    ssh = ssh_dir(lab, node)
    return f"""# {node}'s sshd (written by hakit lab up --bare; its init runs sshd -D -e -f this)
ListenAddress {lab.address(node)}:{SSH_PORT}
HostKey {ssh / "ssh_host_ed25519_key"}
PidFile none
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
AuthorizedKeysFile {ansible_dir(lab) / "authorized_keys"}
UsePAM no
UseDNS no
PrintMotd no
PrintLastLog no
X11Forwarding no
Subsystem sftp /usr/lib/openssh/sftp-server
"""


def ssh_config(lab: Lab) -> str:
    keys = ansible_dir(lab)
    every = lab.nodes + lab.remotes
    hosts = "".join(f"Host {n}\n    HostName {lab.address(n)}\n" for n in every)
    return f"""# The lab's nodes, from the controller (written by hakit lab up --bare):
#   ip netns exec {CONTROLLER_NETNS} ssh -F {keys / "ssh_config"} node1
{hosts}
Host node* remote* {lab.address("node1").rsplit(".", 2)[0]}.*
    User root
    IdentityFile {keys / "id_ed25519"}
    IdentitiesOnly yes
    UserKnownHostsFile {keys / "known_hosts"}
    GlobalKnownHostsFile /dev/null
    StrictHostKeyChecking yes
    CheckHostIP no
    BatchMode yes
    ConnectTimeout 10
    ServerAliveInterval 5
    ControlMaster auto
    ControlPath {keys / "cm" / "%C"}
    ControlPersist 60s
"""


def ansible_cfg(lab: Lab) -> str:
    keys = ansible_dir(lab)
    return f"""# Ansible on the lab's controller (written by hakit lab up --bare); run it with
# ANSIBLE_CONFIG={keys / "ansible.cfg"} ip netns exec {CONTROLLER_NETNS} ansible-playbook ...
[defaults]
home = {keys / "home"}
local_tmp = {keys / "tmp"}
remote_tmp = {REMOTE_TMP}
interpreter_python = /usr/bin/python3
host_key_checking = True
forks = 10
retry_files_enabled = False

[ssh_connection]
ssh_args = -F {keys / "ssh_config"}
control_path_dir = {keys / "cp"}
pipelining = True
"""


def _make_mount_points(lab: Lab) -> None:
    """Create the deploy directories' mount points missing on this host (recorded)."""
    record = lab.dir / MOUNT_POINTS
    made: list[str] = json.loads(record.read_text()) if record.exists() else []
    for _, target, _ in DEPLOY_DIRS:
        missing = [p for p in [Path(target), *Path(target).parents] if not p.exists()]
        for path in reversed(missing):
            path.mkdir(mode=0o755)
            made.append(str(path))
    record.write_text(json.dumps(made) + "\n")


# --- running ------------------------------------------------------------------------------


def controller_network(lab: Lab) -> None:
    ensure_port(CONTROLLER_NETNS, CONTROLLER_LINK, CONTROLLER_ADDRESS)


def sshd_listening(lab: Lab, node: str) -> bool:
    for pid in pids_in_netns(lab.netns(node)):
        info = proc.stat(pid)
        if info and info.comm == "sshd" and proc.listening_on(pid, SSH_PORT):
            return True
    return False


def wait_for_sshd(lab: Lab, nodes: list[str] | None = None, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    for node in lab.nodes + lab.remotes if nodes is None else nodes:
        while not sshd_listening(lab, node):
            if time.monotonic() > deadline:
                console = lab.node_dir(node) / "console.log"
                raise LabError(f"{node}: sshd does not listen after {timeout:g}s; see {console}")
            time.sleep(0.05)


def controller_env(lab: Lab) -> dict[str, str]:
    """This process's environment with Ansible pointed at the lab's ansible.cfg (its home
    and local temp under the lab directory), the lab's Python's bin first on PATH."""
    keys = ansible_dir(lab)
    path = os.environ.get("PATH", PATH)
    return {
        **os.environ,
        "ANSIBLE_CONFIG": str(keys / "ansible.cfg"),
        "ANSIBLE_HOME": str(keys / "home"),
        "ANSIBLE_LOCAL_TEMP": str(keys / "tmp"),
        "PATH": f"{Path(lab.state.python).parent}:{path}",
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
    }


def controller_run(
    lab: Lab, argv: list[str], timeout: float = 600, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run `argv` in the controller's namespace, output captured; a nonzero exit is the
    caller's to judge. After `timeout` its process group is killed: exit code 124."""
    if netns_id(CONTROLLER_NETNS) is None:
        raise LabError(f"no controller namespace {CONTROLLER_NETNS}: hakit lab up --bare")
    command = ["ip", "netns", "exec", CONTROLLER_NETNS, *argv]
    with subprocess.Popen(
        command,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=controller_env(lab) if env is None else env,
        start_new_session=True,
    ) as child:
        try:
            out, err = child.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGKILL)
            out, err = child.communicate()
            err += f"\nhakit lab: {argv[0]}: killed after {timeout:g}s\n"
            return subprocess.CompletedProcess(command, 124, out, err)
    return subprocess.CompletedProcess(command, child.returncode, out, err)


def ansible_host_vars(lab: Lab, node: str) -> dict[str, str]:
    lab.check_node(node)
    return {
        "ansible_host": lab.address(node),
        "ansible_user": "root",
        "ansible_ssh_private_key_file": str(ansible_dir(lab) / "id_ed25519"),
    }


def how_to_reach(lab: Lab) -> str:
    """What `up --bare` prints: ssh and Ansible from the controller."""
    keys = ansible_dir(lab)
    return (
        f"controller {CONTROLLER_NETNS} ({CONTROLLER_ADDRESS}); try:\n"
        f"  ip netns exec {CONTROLLER_NETNS} ssh -F {keys / 'ssh_config'} node1\n"
        f"  ANSIBLE_CONFIG={keys / 'ansible.cfg'} ip netns exec {CONTROLLER_NETNS} "
        f"ansible -i node1,node2 all -m ping\n"
        f"on a node, its cluster daemons: hakit-lab-node start|stop|status"
    )


def clean(lab: Lab) -> None:
    """After the namespaces are gone: the node command, control sockets, Ansible's remote
    temp directory (in the /tmp every node shares), mount points."""
    if NODE_COMMAND.exists() and "hakit lab up --bare" in NODE_COMMAND.read_text():
        NODE_COMMAND.unlink()
    shutil.rmtree(REMOTE_TMP, ignore_errors=True)
    for socket in (ansible_dir(lab) / "cm").glob("*"):
        socket.unlink(missing_ok=True)
    record = lab.dir / MOUNT_POINTS
    if record.exists():
        for path in reversed(json.loads(record.read_text())):
            try:
                os.rmdir(path)
            except OSError:
                pass  # not empty (something else put files there), or gone
        record.unlink()
