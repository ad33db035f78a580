"""What a drill watches while the fault runs: client probes, on-node samplers, and the
cluster's own log lines as a millisecond timeline."""

from __future__ import annotations

import http.client
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hakit.lab.drill.environment import Environment
from hakit.lab.timeline import matching_lines
from hakit.resource_agents.clouds import CloudError

Check = Callable[[], bool]


@dataclass
class Probe:
    """A client-side check run every `interval` seconds from the client's vantage point."""

    name: str
    check: Check
    interval: float = 0.1
    samples: list[tuple[float, bool]] = field(default_factory=list)
    #: a check served after this many seconds was not served in time: the client waited
    #: through an outage (a cinder round trip in flight while the broker was stopped
    #: ends well after it); it counts as down from its start until it was served
    patience: float | None = None

    def downtime(self, since: float) -> tuple[float, float | None]:
        """(seconds failing after `since`, when it answered again after its last failure)."""
        down, back, previous = 0.0, None, None
        for at, ok in self.samples:
            if at < since:
                previous = (at, ok)
                continue
            if previous is not None and not previous[1]:
                down += at - max(previous[0], since)
            if ok and previous is not None and not previous[1]:
                back = at
            previous = (at, ok)
        return down, back

    def as_dict(self, since: float) -> dict[str, object]:
        down, _ = self.downtime(since)
        failures = sum(not ok for _, ok in self.samples)
        return {
            "name": self.name,
            "samples": [[at, ok] for at, ok in self.samples],
            "downtime_s": round(down, 3),
            "failures": failures,
        }


def http_any(addresses: list[str], port: int, path: str = "/", timeout: float = 0.3) -> Check:
    """Any of `addresses` answers HTTP (a client with a list of endpoints)."""

    def check() -> bool:
        for address in addresses:
            connection = http.client.HTTPConnection(address, port, timeout=timeout)
            try:
                connection.request("GET", path)
                if connection.getresponse().status < 500:
                    return True
            except (OSError, http.client.HTTPException):
                continue
            finally:
                connection.close()
        return False

    return check


def tcp_any(addresses: list[str], port: int, timeout: float = 0.3) -> Check:
    def check() -> bool:
        for address in addresses:
            try:
                socket.create_connection((address, port), timeout=timeout).close()
                return True
            except OSError:
                continue
        return False

    return check


def cinder_round_trip(
    addresses: list[str], port: int, token: Callable[[], str], timeout: float = 15.0
) -> Check:
    """A volume created, available and deleted through any cinder-api, with a Keystone
    `token` (asked for each round trip: kept and renewed by its session): the API, Keystone,
    the scheduler, a volume service and the database.
    After a failed round trip, the probe's leftovers (a volume stuck in "creating" cannot
    be deleted plainly) are force-deleted before the next one, so they never use up the
    project's quota."""
    import json

    headers = {"Content-Type": "application/json", "OpenStack-API-Version": "volume 3.24"}
    name = "drill-probe"
    dirty = [True]  # leftovers of an earlier drill may exist

    def call(address: str, method: str, path: str, body: object = None) -> Any:
        connection = http.client.HTTPConnection(address, port, timeout=5)
        try:
            data = json.dumps(body) if body else None
            connection.request(method, f"/v3{path}", data, {**headers, "X-Auth-Token": token()})
            answer = connection.getresponse()
            text = answer.read()
            if answer.status >= 400:
                raise OSError(f"{method} {path}: {answer.status}")
            return json.loads(text) if text else None
        finally:
            connection.close()

    def sweep(address: str) -> None:
        for volume in call(address, "GET", f"/volumes?name={name}")["volumes"]:
            call(address, "POST", f"/volumes/{volume['id']}/action", {"os-force_delete": {}})

    def round_trip(address: str) -> bool:
        if dirty[0]:
            sweep(address)
        dirty[0] = True  # until this round trip's volume is deleted
        volume = call(address, "POST", "/volumes", {"volume": {"size": 1, "name": name}})
        volume_id = volume["volume"]["id"]
        status, deadline = "creating", time.monotonic() + timeout
        while status not in ("available", "error") and time.monotonic() < deadline:
            time.sleep(0.2)
            status = call(address, "GET", f"/volumes/{volume_id}")["volume"]["status"]
        try:
            call(address, "DELETE", f"/volumes/{volume_id}")
            dirty[0] = False
        except (OSError, http.client.HTTPException, ValueError):
            pass  # swept before the next round trip
        return status == "available"

    def check() -> bool:
        for address in addresses:
            try:
                return round_trip(address)
            except (OSError, http.client.HTTPException, ValueError, KeyError, TypeError):
                continue
            except CloudError:  # no Keystone answers: no volume can be made either
                return False
        return False

    return check


class Watch:
    """Runs probes (in the client's namespace) and samplers (on the nodes) until stopped."""

    def __init__(
        self,
        env: Environment,
        probes: list[Probe],
        samplers: list[Callable[[], None]],
        sample_interval: float = 0.05,
    ) -> None:
        self.env = env
        self.probes = probes
        self.samplers = samplers
        self.sample_interval = sample_interval
        self.stopping = threading.Event()
        self.threads: list[threading.Thread] = []

    def __enter__(self) -> Watch:
        for probe in self.probes:
            thread = threading.Thread(target=self._probe_as_client, args=(probe,), daemon=True)
            thread.start()
            self.threads.append(thread)
        if self.samplers:
            self._start(self._sample)
        return self

    def __exit__(self, *_: object) -> None:
        self.stopping.set()
        for thread in self.threads:
            thread.join(timeout=10)

    def _start(self, body: Callable[[], None]) -> None:
        thread = threading.Thread(target=body, daemon=True)
        thread.start()
        self.threads.append(thread)

    def _probe_as_client(self, probe: Probe) -> None:
        self.env.in_client(lambda: self._probe(probe))

    def _probe(self, probe: Probe) -> None:
        while not self.stopping.is_set():
            began = time.time()
            try:
                ok = probe.check()
            except Exception:  # a probe that breaks is a failing probe
                ok = False
            # a failure counts from the request that was not served, a success once served
            ended = time.time()
            if ok and probe.patience is not None and ended - began > probe.patience:
                probe.samples.append((began, False))
            probe.samples.append((ended if ok else began, ok))
            self.stopping.wait(probe.interval)

    def _sample(self) -> None:
        while not self.stopping.is_set():
            for sampler in self.samplers:
                sampler()
            self.stopping.wait(self.sample_interval)


@dataclass(frozen=True)
class LogEvent:
    at: float
    node: str  # whose log
    kind: str  # detected, fenced, fence-failed, recovery, started, member, note
    what: str


def log_events(
    logs: dict[str, Path], since: float, target: str | None, resource: str | None
) -> list[LogEvent]:
    """The failover steps in the cluster's logs after `since`, each once (earliest), in order."""
    patterns = _patterns(target, resource)

    def found(line: str) -> Iterator[tuple[str, str]]:
        for regex, kind, label in patterns:
            match = regex.search(line)
            if match is not None:
                yield kind, label.format(**match.groupdict())

    first: dict[str, LogEvent] = {}
    for at, node, (kind, what) in matching_lines(logs, since, found):
        if what not in first or at < first[what].at:
            first[what] = LogEvent(at, node, kind, what)
    return sorted(first.values(), key=lambda e: e.at)


def _patterns(target: str | None, resource: str | None) -> list[tuple[re.Pattern[str], str, str]]:
    found: list[tuple[str, str, str]] = []
    if target:
        t = re.escape(target)
        found += [
            (
                rf"Node {t} state is now lost|{t}\b.*state is now lost",
                "detected",
                f"{target} lost from the membership",
            ),
            (
                rf"Requesting fencing \((?P<action>\w+)\) of node {t}",
                "note",
                f"fencing of {target} requested",
            ),
            (
                rf"Operation '\w+' \[\d+\] targeting {t} using (?P<device>\S+) returned [1-9]",
                "fence-failed",
                "fence device {device} failed for " + target,
            ),
            (
                rf"Operation '\w+' targeting {t} by (?P<by>\S+) for .*: OK",
                "fenced",
                f"{target} fenced",
            ),
            (
                rf"Node {t} state is now member|{t}\b.*state is now member",
                "member",
                f"{target} back in the membership",
            ),
        ]
    if resource:
        r = re.escape(resource)
        found += [
            (
                rf"Result of monitor operation for {r} on (?P<node>\S+): (?!ok|Cancelled)",
                "detected",
                f"{resource} monitor failed on " + "{node}",
            ),
            (
                rf"Initiating (?:stop|start) operation {r}_(?:stop|start)_0",
                "recovery",
                f"recovery of {resource} started",
            ),
            (
                rf"Result of start operation for {r} on (?P<node>\S+): ok",
                "started",
                f"{resource} started on " + "{node}",
            ),
        ]
    return [(re.compile(regex), kind, label) for regex, kind, label in found]
