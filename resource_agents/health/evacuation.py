"""nova's side of a fenced host: force its nova-compute down once fencing is confirmed
(HOST_DOWN_FENCED) and back up once the host is OK, and evacuate its servers — each once,
again when an evacuation left it in ERROR there, up to a number of attempts; several
requests at a time, none while too many nodes are lost at once (the mass-failure guard,
one alarm), and an alarm for a server still on its host past the deadline (a QoS alarm
at once for one whose dedicated cores no host has). State lives in tables beside the
outbox, so a restarted publisher goes on where it stopped."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol

from hakit.resource_agents.health import sol003
from hakit.resource_agents.health.model import Health, HealthReport
from hakit.resource_agents.health.nova import ComputeAPI, NovaError, Server
from hakit.resource_agents.health.outbox import Outbox

FORCED_DOWN_TABLE = "CREATE TABLE IF NOT EXISTS forced_down (host TEXT PRIMARY KEY)"
#: the mass-failure guard's alarm while it holds evacuations (one row at most), and when
#: it last counted too many nodes lost
MASS_FAILURE_TABLE = (
    "CREATE TABLE IF NOT EXISTS mass_failure (alarm_id TEXT PRIMARY KEY, raised REAL NOT NULL)"
)
MASS_FAILURE_COLUMNS = {
    "last_tripped": "REAL NOT NULL DEFAULT 0",
    "tripped_lost": "INTEGER NOT NULL DEFAULT 0",  # how many were lost then
}
MASS_FAILURE = "MASS_HOST_FAILURE"  # the guard alarm's faultType and managed object
EVACUATIONS_TABLE = (
    "CREATE TABLE IF NOT EXISTS evacuations (server TEXT, host TEXT, "
    "attempts INTEGER NOT NULL DEFAULT 1, requested REAL NOT NULL DEFAULT 0, "
    "gave_up INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (server, host))"
)
#: columns added since the table's first version (an older outbox gets them on open)
EVACUATION_COLUMNS = {
    "attempts": "INTEGER NOT NULL DEFAULT 1",
    "requested": "REAL NOT NULL DEFAULT 0",
    "gave_up": "INTEGER NOT NULL DEFAULT 0",
    "overdue_alarm": "TEXT NOT NULL DEFAULT ''",  # its EVACUATION_OVERDUE alarm while open
    "qos_alarm": "TEXT NOT NULL DEFAULT ''",  # its GUARANTEED_CPU_UNAVAILABLE alarm while open
}
OVERDUE = "EVACUATION_OVERDUE"  # faultType of a server's late evacuation
#: faultType of a server whose guaranteed CPU no host has: its evacuation found no valid host
CPU_UNAVAILABLE = "GUARANTEED_CPU_UNAVAILABLE"
NO_VALID_HOST = "No valid host"  # how nova's fault message for it starts


class RecoveryConfig(Protocol):
    """The publisher's settings this reads (on every cycle, so changes apply at once)."""

    evacuate: bool
    evacuate_retry: float
    evacuate_attempts: int
    evacuate_workers: int
    evacuate_guard: float
    evacuate_guard_hold: float
    evacuate_deadline: float
    context: sol003.Context


class ComputeRecovery:
    """Forces fenced hosts' nova-compute down and evacuates their servers."""

    def __init__(
        self,
        outbox: Outbox,
        config: RecoveryConfig,
        log: Callable[[str], None],
        notify: Callable[[sol003.Outgoing], None] = lambda _: None,
    ) -> None:
        self.outbox = outbox
        self.config = config
        self.log = log
        self.notify = notify  # stores an alarm notification (inside this transaction)
        self._tables()

    def reconcile(self, api: ComputeAPI, report: HealthReport) -> None:
        """nova-compute forced down exactly on the hosts fenced (HOST_DOWN_FENCED), and
        back once the host is OK; other states change nothing. A fenced host's flag is
        checked in nova on every cycle, not taken from this outbox's record (another
        leader may have cleared it since, or nova lost it). With `evacuate`, a forced
        down host's servers are evacuated (`_evacuate`). Failed API calls retry next cycle."""
        forced = {row[0] for row in self.outbox.db.execute("SELECT host FROM forced_down")}
        evacuating: list[str] = []
        for node in report.nodes:
            down = node.health is Health.HOST_DOWN_FENCED
            if not down and (node.node not in forced or node.health is not Health.OK):
                continue
            try:
                changed = api.set_forced_down(node.node, down)
            except NovaError as error:
                self.log(f"nova-compute on {node.node}: forced_down={down} failed: {error}")
                continue
            if down != (node.node in forced) or changed:
                if not down:  # the host is back: its servers' alarms end
                    self._clear_alarms(node.node)
                with self.outbox.transaction() as db:
                    if down:
                        db.execute(
                            "INSERT OR IGNORE INTO forced_down (host) VALUES (?)", (node.node,)
                        )
                    else:
                        db.execute("DELETE FROM forced_down WHERE host = ?", (node.node,))
                        db.execute("DELETE FROM evacuations WHERE host = ?", (node.node,))
                self.log(
                    f"nova-compute on {node.node}: forced_down={down} "
                    f"({len(changed)} service(s) changed; {'; '.join(node.reasons)})"
                )
            if down and self.config.evacuate:
                evacuating.append(node.node)
        if self.config.evacuate and not self._guard(report) and evacuating:
            self._evacuate(api, evacuating)

    def _guard(self, report: HealthReport) -> bool:
        """The mass-failure guard: more than `evacuate_guard` of the nodes lost at once
        (at least two) holds every evacuation, so that a rack or a network fault does not
        set off an evacuation storm onto what is left. Once some are back it holds on while
        any is lost, for `evacuate_guard_hold` s after the count last was too high: hosts of
        one event that are back quickly must not release it for the others, still being
        fenced or rebooting (a guard raised by the operator with as many lost releases it).
        One alarm while it holds (root cause of the lost hosts' alarms), cleared when it
        ends; each logged once."""
        lost = sorted(n.node for n in report.nodes if n.health.host_down and not n.idle_remote)
        now = time.time()
        counted = len(lost) >= 2 and len(lost) > self.config.evacuate_guard * len(report.nodes)
        row = self.outbox.db.execute(
            "SELECT alarm_id, last_tripped, tripped_lost FROM mass_failure"
        ).fetchone()
        if counted and row is not None:
            with self.outbox.transaction() as db:
                db.execute(
                    "UPDATE mass_failure SET last_tripped = ?, tripped_lost = ?", (now, len(lost))
                )
        held = (
            row is not None
            and 0 < len(lost) < row[2]
            and now - row[1] < self.config.evacuate_guard_hold
        )
        tripped = counted or held
        if tripped == (row is not None):
            return tripped
        share = f"{len(lost)} of {len(report.nodes)} nodes lost ({', '.join(lost) or '-'})"
        if tripped:
            self.log(
                f"mass failure: {share}, more than {self.config.evacuate_guard:.0%}: "
                "evacuations held (nova-compute is still forced down on fenced hosts)"
            )
            alarm = sol003.alarm_id(MASS_FAILURE, now)
            raised = self._mass_alarm(alarm, now, lost, share)
            with self.outbox.transaction() as db:  # the alarm and its notification at once
                db.execute(
                    "INSERT INTO mass_failure (alarm_id, raised, last_tripped, tripped_lost) "
                    "VALUES (?, ?, ?, ?)",
                    (alarm, now, now, len(lost)),
                )
                self.notify(raised)
        else:
            self.log(f"mass failure over: {share}; evacuations resume")
            context = self.config.context
            cleared = sol003.cleared_notification(
                MASS_FAILURE, row[0], "CRITICAL", now, now, context
            )
            with self.outbox.transaction() as db:
                db.execute("DELETE FROM mass_failure")
                self.notify(cleared)
        return tripped

    def _mass_alarm(self, alarm: str, now: float, lost: list[str], share: str) -> sol003.Outgoing:
        """The guard's alarm: root cause of the lost hosts' open alarms."""
        hosts = dict(self.outbox.db.execute("SELECT host, state FROM alarms"))
        correlated = [json.loads(hosts[h])["alarm_id"] for h in lost if h in hosts]
        guard = f"more than {self.config.evacuate_guard:.0%} of the nodes"
        body = sol003.alarm_body(
            alarm,
            MASS_FAILURE,
            sol003.FaultyResource(",".join(lost), "hosts", "COMPUTE"),
            raised=now,
            changed=now,
            severity="CRITICAL",
            event_type="EQUIPMENT_ALARM",
            fault_type=MASS_FAILURE,
            probable_cause=f"Mass host failure: {share}; evacuations held ({guard})",
            root=True,
            correlated=correlated,
            details=[f"lost {host}" for host in lost],
            event_time=now,
            context=self.config.context,
        )
        return sol003.raised_notification(body, MASS_FAILURE, now, now, now)

    def _tables(self) -> None:
        """Its tables, an older outbox's evacuations given the columns added since."""
        db = self.outbox.db
        db.execute(FORCED_DOWN_TABLE)
        db.execute(EVACUATIONS_TABLE)
        db.execute(MASS_FAILURE_TABLE)
        for table, columns in (
            ("evacuations", EVACUATION_COLUMNS),
            ("mass_failure", MASS_FAILURE_COLUMNS),
        ):
            have = {row[1] for row in db.execute(f"PRAGMA table_info({table})")}
            for column, declaration in columns.items():
                if column not in have:
                    db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {declaration}")

    def _evacuate(self, api: ComputeAPI, hosts: list[str]) -> None:
        """Evacuate each server nova still places on the fenced `hosts`: once, and again
        (`evacuate_retry`, `evacuate_attempts`) when an evacuation left it in ERROR there.
        The requests run `evacuate_workers` at a time; the outbox is written here."""
        due = [
            (host, server, attempts) for host in hosts for server, attempts in self._due(api, host)
        ]
        if not due:
            return

        def request(server: Server) -> NovaError | None:
            try:
                api.evacuate(server.id)
            except NovaError as error:
                return error
            return None

        workers = max(1, min(self.config.evacuate_workers, len(due)))
        with ThreadPoolExecutor(workers, thread_name_prefix="evacuate") as pool:
            errors = list(pool.map(request, [server for _, server, _ in due]))
        now = time.time()
        for (host, server, attempts), error in zip(due, errors, strict=True):
            if error is not None:
                self.log(f"server {server.id} on {host}: evacuation failed: {error}")
                continue
            with self.outbox.transaction() as db:
                db.execute(
                    "INSERT INTO evacuations (server, host, attempts, requested) "
                    "VALUES (?, ?, ?, ?) ON CONFLICT (server, host) DO UPDATE SET "
                    "attempts = excluded.attempts, requested = excluded.requested",
                    (server.id, host, attempts + 1, now),
                )
            attempt = f", attempt {attempts + 1} of {self.config.evacuate_attempts}"
            self.log(
                f"server {server.id} on {host}: evacuation requested (was {server.status}"
                f"{attempt if attempts else ''})"
            )

    def _due(self, api: ComputeAPI, host: str) -> list[tuple[Server, int]]:
        """(server, evacuations so far) for each server on `host` to evacuate now; the
        listing also raises and clears the host's overdue alarms (`_overdue`)."""
        rows = self.outbox.db.execute(
            "SELECT server, attempts, requested, gave_up FROM evacuations WHERE host = ?", (host,)
        )
        requested = {server: (attempts, when, gave_up) for server, attempts, when, gave_up in rows}
        try:
            servers = [s for s in api.servers(host) if s.host == host]
        except NovaError as error:
            self.log(f"servers on {host}: listing failed: {error}")
            return []
        self._overdue(host, {server.id for server in servers})
        self._cpu_unavailable(host, servers)
        now = time.time()
        due = []
        for server in servers:
            attempts, last, gave_up = requested.get(server.id, (0, 0.0, False))
            if gave_up or (attempts and not self._evacuation_due(server, attempts, now - last)):
                continue
            due.append((server, attempts))
        return due

    def _overdue(self, host: str, on_host: set[str]) -> None:
        """An EVACUATION_OVERDUE alarm for each server still on `host` more than
        `evacuate_deadline` s after its evacuation was requested (its last attempt);
        cleared once nova places it elsewhere."""
        now = time.time()
        rows = self.outbox.db.execute(
            "SELECT server, requested, overdue_alarm FROM evacuations WHERE host = ?", (host,)
        ).fetchall()
        for server, requested, open_alarm in rows:
            if open_alarm and server not in on_host:
                self._clear_alarms(host, server)
            elif not open_alarm and server in on_host:
                late = now - requested
                if late <= self.config.evacuate_deadline:
                    continue
                alarm = sol003.instance_alarm_id(sol003.alarm_id(OVERDUE, requested), server)
                deadline = self.config.evacuate_deadline
                raised = self._server_alarm(
                    alarm,
                    server,
                    host,
                    now,
                    (OVERDUE, "PROCESSING_ERROR_ALARM"),
                    f"Evacuation from fenced host {host} not done within {deadline:g} s "
                    f"of its request ({late:.0f} s)",
                    f"instance {server} still on host {host}",
                )
                with self.outbox.transaction() as db:
                    db.execute(
                        "UPDATE evacuations SET overdue_alarm = ? WHERE server = ? AND host = ?",
                        (alarm, server, host),
                    )
                    self.notify(raised)
                self.log(f"server {server} on {host}: evacuation overdue ({late:.0f} s)")

    def _cpu_unavailable(self, host: str, servers: list[Server]) -> None:
        """A GUARANTEED_CPU_UNAVAILABLE QoS alarm for each server on `host` whose flavor
        guarantees dedicated cores and whose evacuation found no valid host: the failover
        left no room for its guarantee (the scheduler asks placement for PCPU). Once per
        server; cleared, like the overdue alarm, once it runs elsewhere or the host is back."""
        rows = self.outbox.db.execute(
            "SELECT server, qos_alarm FROM evacuations WHERE host = ?", (host,)
        )
        evacuated = dict(rows.fetchall())
        on_host = {server.id for server in servers}
        for listed, open_alarm in evacuated.items():
            if open_alarm and listed not in on_host:
                self._clear_alarms(host, listed)
        for server in servers:
            if (
                server.id not in evacuated
                or evacuated[server.id]
                or not server.dedicated_cpus
                or (server.status, server.task_state) != ("ERROR", None)
                or not server.fault.startswith(NO_VALID_HOST)
            ):
                continue
            now = time.time()
            alarm = sol003.instance_alarm_id(sol003.alarm_id(CPU_UNAVAILABLE, now), server.id)
            cores = f"{server.dedicated_cpus} dedicated core(s) (PCPU)"
            raised = self._server_alarm(
                alarm,
                server.id,
                host,
                now,
                (CPU_UNAVAILABLE, "QOS_ALARM"),
                f"No host has the {cores} that flavor {server.flavor or '?'} guarantees: "
                f"the evacuation from fenced host {host} found no valid host",
                f"instance {server.id} ERROR on host {host}: {server.fault}",
            )
            with self.outbox.transaction() as db:
                db.execute(
                    "UPDATE evacuations SET qos_alarm = ? WHERE server = ? AND host = ?",
                    (alarm, server.id, host),
                )
                self.notify(raised)
            self.log(f"server {server.id} on {host}: no host for its {cores}")

    def _clear_alarms(self, host: str, server: str | None = None) -> None:
        """Clear the open per-server alarms (overdue, guaranteed CPU) on `host` (of
        `server` only)."""
        rows = self.outbox.db.execute(
            "SELECT server, overdue_alarm, qos_alarm FROM evacuations "
            "WHERE host = ? AND (overdue_alarm != '' OR qos_alarm != '')",
            (host,),
        ).fetchall()
        rows = [row for row in rows if server is None or row[0] == server]
        if not rows:
            return
        now = time.time()
        with self.outbox.transaction() as db:
            for listed, overdue, qos in rows:
                db.execute(
                    "UPDATE evacuations SET overdue_alarm = '', qos_alarm = '' "
                    "WHERE server = ? AND host = ?",
                    (listed, host),
                )
                for alarm in (overdue, qos):
                    if alarm:
                        cleared = sol003.cleared_notification(
                            host, alarm, "MAJOR", now, now, self.config.context
                        )
                        self.notify(cleared)

    def _server_alarm(
        self,
        alarm: str,
        server: str,
        host: str,
        now: float,
        kind: tuple[str, str],
        cause: str,
        detail: str,
    ) -> sol003.Outgoing:
        """A server's MAJOR alarm of `kind` (faultType, eventType), correlated with its
        host's alarm (the root cause)."""
        state = self.outbox.db.execute("SELECT state FROM alarms WHERE host = ?", (host,))
        row = state.fetchone()
        fault_type, event_type = kind
        body = sol003.alarm_body(
            alarm,
            server,
            sol003.FaultyResource(host, "host", "COMPUTE"),
            raised=now,
            changed=now,
            severity="MAJOR",
            event_type=event_type,
            fault_type=fault_type,
            probable_cause=cause,
            root=False,
            correlated=[json.loads(row[0])["alarm_id"]] if row else [],
            details=[detail],
            event_time=now,
            context=self.config.context,
        )
        return sol003.raised_notification(body, host, now, now, now)

    def _evacuation_due(self, server: Server, attempts: int, since: float) -> bool:
        """Whether a server evacuated `attempts` times, `since` seconds ago, is evacuated
        again: it is in ERROR on the fenced host with no task (the evacuation failed). When
        its attempts are used up, giving up is logged and recorded (so said once)."""
        failed = server.status == "ERROR" and server.task_state is None
        if not failed or since < self.config.evacuate_retry * attempts:
            return False
        if attempts >= self.config.evacuate_attempts:
            self.log(
                f"server {server.id} on {server.host}: still ERROR after {attempts} "
                "evacuation(s); not requested again (its alarm stays open)"
            )
            with self.outbox.transaction() as db:
                db.execute(
                    "UPDATE evacuations SET gave_up = 1 WHERE server = ? AND host = ?",
                    (server.id, server.host),
                )
            return False
        return True
