"""The Pacemaker alert agent: one event from the CRM_alert_* environment into the outbox.

Installed as /usr/libexec/hakit/alert (run by `/usr/bin/python3 -IS`). Pacemaker runs it
on node, fencing, resource and attribute events, once per recipient, as hacluster. It
stores the event and returns: no cluster command, no network, no heavy import.

Instance attribute `hakit_outbox` (passed as an environment variable) is the outbox
file; default /var/lib/hakit/health/outbox.db. The event id is built from the sending
node, Pacemaker's microsecond timestamp and its per-node alert sequence number, so the
runs for several recipients of one alert store the event once.
"""

from __future__ import annotations

import os
import sys
import time

from hakit.resource_agents.health.outbox import DEFAULT_PATH, EVENTS, Outbox, nudge

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

PREFIX = "CRM_alert_"
OUTBOX_VARIABLE = "hakit_outbox"


class AlertEvent:
    """What one alert says: kind, node, when (Pacemaker's time) and every CRM_alert_* field."""

    __slots__ = ("event_id", "fields", "kind", "node", "occurred")

    def __init__(self, environ: Mapping[str, str], local_node: str) -> None:
        self.fields = {k[len(PREFIX) :]: v for k, v in environ.items() if k.startswith(PREFIX)}
        self.kind = self.fields.get("kind", "")
        self.node = self.fields.get("node", "")
        epoch, usec = self.fields.get("timestamp_epoch", ""), self.fields.get("timestamp_usec", "")
        if epoch.isdigit():
            micro = int(usec) if usec.isdigit() else 0
            self.occurred = int(epoch) + micro / 1e6
            stamp = f"{epoch}.{micro:06d}"
        else:  # older Pacemaker: no machine-readable time, so no de-duplication either
            self.occurred = time.time()
            stamp = f"{time.time_ns()}-{os.getpid()}"
        sequence = self.fields.get("node_sequence", "")
        self.event_id = f"{local_node}:{stamp}:{sequence}:{self.kind}"

    def body(self) -> str:
        return json_object(self.fields)


def json_object(values: Mapping[str, str]) -> str:
    """A flat {str: str} mapping as JSON, without importing `json` (it imports `re`)."""
    return "{" + ",".join(f"{_json_string(k)}:{_json_string(v)}" for k, v in values.items()) + "}"


def _json_string(text: str) -> str:
    out = []
    for char in text:
        if char in '"\\':
            out.append("\\" + char)
        elif char < " " or char in "\u2028\u2029" or "\ud800" <= char <= "\udfff":
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def record(environ: Mapping[str, str]) -> tuple[AlertEvent, bool]:
    """Store the alert in `environ`; (the event, whether it was new)."""
    event = AlertEvent(environ, os.uname().nodename)
    path = environ.get(OUTBOX_VARIABLE) or DEFAULT_PATH
    with Outbox(path) as outbox:
        seq = outbox.append(
            event.event_id,
            event.body(),
            stream=EVENTS,
            kind=event.kind,
            node=event.node,
            occurred=event.occurred,
        )
    if seq is not None:
        nudge(path)  # the publisher looks now, not at its next poll
    return event, seq is not None


def main(environ: Mapping[str, str] | None = None) -> int:
    """Exit 0 when stored (or already stored); 1 with one line on stderr otherwise."""
    environ = os.environ if environ is None else environ
    if not environ.get(PREFIX + "kind"):
        sys.stderr.write("hakit alert: no CRM_alert_kind; Pacemaker runs this as an alert agent\n")
        return 1
    try:
        record(environ)
    except Exception as error:  # never a traceback in the cluster log
        outbox = environ.get(OUTBOX_VARIABLE) or DEFAULT_PATH
        sys.stderr.write(f"hakit alert: event not stored in {outbox}: {error}\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
