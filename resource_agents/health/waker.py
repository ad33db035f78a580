"""Wakes the publisher's loop at once instead of at its next poll: a datagram on an
abstract UNIX socket named after the outbox file (per network namespace, so per node in
the lab). The alert agent sends one after it stored an event (`outbox.nudge`), the API
after it stored reports (`Waker.set`). Anyone on the node may send one: it only makes
the publisher look now. Without the socket (the name is taken) it polls, as before."""

from __future__ import annotations

import socket
import threading

from hakit.resource_agents.health.outbox import wake_address


class Waker:
    """`wait(timeout)` returns at the first nudge or after `timeout`; `set()` nudges."""

    def __init__(self, outbox_path: str) -> None:
        self.address = wake_address(outbox_path)
        self.event = threading.Event()
        self.sock: socket.socket | None = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            self.sock.bind(self.address)
        except OSError:  # another publisher of this outbox here: poll only
            self.sock.close()
            self.sock = None

    def set(self) -> None:
        self.event.set()
        if self.sock is not None:
            try:
                self.sock.sendto(b"!", self.address)
            except OSError:
                pass

    def wait(self, timeout: float) -> None:
        if self.sock is None:
            self.event.wait(timeout)
        else:
            self.sock.settimeout(timeout)
            try:
                self.sock.recv(16)
                self.sock.setblocking(False)
                while True:  # a burst of nudges is one wake-up
                    self.sock.recv(16)
            except OSError:  # the timeout, or nothing more queued
                pass
        self.event.clear()

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None
