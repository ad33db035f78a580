"""Logging that follows Pacemaker's agent conventions, without the `logging` module.

Destinations, as ocf-shellfuncs' `ha_log` chooses them:

- `HA_LOGFACILITY` (e.g. `daemon`; `none` or empty = off): syslog, tagged `HA_LOGTAG`
  or `<agent>(<instance>)`;
- `HA_LOGFILE`: appended with a timestamp; `HA_DEBUGLOG` receives debug lines;
- standard error when it is a terminal, or when no other destination is set (then
  pacemaker-execd records it in the cluster log).

Debug lines appear when `HA_debug` is "1" (or true/yes/on); "0" means off. When
`PCMK_debug` is set, pacemaker-execd passes no `HA_debug` but `HA_DEBUGLOG`; then
`PCMK_debug` (yes, or a list of daemon names) decides.
Every message is masked: the value of a secret parameter is never written.
"""

from __future__ import annotations

import os
import sys
import time

from ._typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

DEBUG, INFO, WARNING, ERROR = "DEBUG", "INFO", "WARNING", "ERROR"
_SYSLOG_PRIORITY = {DEBUG: 7, INFO: 6, WARNING: 4, ERROR: 3}
_FACILITIES = {
    "kern": 0,
    "user": 1,
    "mail": 2,
    "daemon": 3,
    "auth": 4,
    "syslog": 5,
    "lpr": 6,
    "news": 7,
    "uucp": 8,
    "cron": 9,
    "authpriv": 10,
    "ftp": 11,
    **{f"local{n}": 16 + n for n in range(8)},
}
MASK = "******"


def mask_urls(text: str) -> str:
    """`scheme://user:password@host` (and each `,user:password@host` of a multi-host URL)
    with the user-info masked: it holds credentials."""
    if "@" not in text:
        return text
    import re

    text = re.sub(r"(?<=://)[^\s/@]+@", f"{MASK}@", text)
    return re.sub(r"(?<=,)[^\s/@,:]*:[^\s/@,]*@", f"{MASK}@", text)


def is_true(value: str | None) -> bool:
    """Pacemaker's notion of a true string: 1, yes, true, on (any case)."""
    return (value or "").strip().lower() in {"1", "yes", "true", "on", "y"}


class Logger:
    """Writes agent messages to the destinations Pacemaker configured."""

    def __init__(self, tag: str, environ: Mapping[str, str], stream: object = None) -> None:
        self.tag = environ.get("HA_LOGTAG") or tag
        ha_debug = environ.get("HA_debug")
        pcmk_debug = (environ.get("PCMK_debug") or "").strip().lower()
        self.debug_enabled = (
            is_true(ha_debug)
            if ha_debug is not None
            else (pcmk_debug not in ("", "0", "no", "false", "off", "n"))
        )
        facility = environ.get("HA_LOGFACILITY") or environ.get("HA_logfacility") or ""
        facility = facility.strip().lower()
        self.facility = _FACILITIES.get(facility) if facility not in ("", "none") else None
        self.logfile = environ.get("HA_LOGFILE") or None
        self.debuglog = environ.get("HA_DEBUGLOG") or None
        self.stream = stream if stream is not None else sys.stderr
        isatty = getattr(self.stream, "isatty", None)
        interactive = bool(isatty and isatty())
        self.to_stream = interactive or (self.facility is None and self.logfile is None)
        self._secrets: list[str] = []
        self._syslog_open = False

    def add_secrets(self, values: Iterable[str]) -> None:
        """Mask these values in every later message (longest first)."""
        self._secrets = sorted({*self._secrets, *(v for v in values if v)}, key=len, reverse=True)

    def mask(self, text: str) -> str:
        """The text with every known secret and every URL's user-info masked."""
        for secret in self._secrets:
            text = text.replace(secret, MASK)
        return mask_urls(text)

    def debug(self, message: str) -> None:
        if self.debug_enabled:
            self.log(DEBUG, message)

    def info(self, message: str) -> None:
        self.log(INFO, message)

    def warning(self, message: str) -> None:
        self.log(WARNING, message)

    def error(self, message: str) -> None:
        self.log(ERROR, message)

    def log(self, level: str, message: str) -> None:
        text = self.mask(message)
        lines = text.splitlines() or [""]
        if self.facility is not None:
            self._syslog(level, lines)
        if self.logfile or (level == DEBUG and self.debuglog):
            stamp = time.strftime("%b %d %H:%M:%S")
            record = "".join(f"{stamp} {self.tag}[{os.getpid()}]: {level}: {ln}\n" for ln in lines)
            for path in {self.logfile, self.debuglog if level == DEBUG else None} - {None}:
                _append(str(path), record)
        if self.to_stream:
            write = getattr(self.stream, "write", None)
            if write is not None:
                try:
                    write("".join(f"{level}: {ln}\n" for ln in lines))
                except (OSError, ValueError):
                    pass

    def _syslog(self, level: str, lines: list[str]) -> None:
        try:
            import syslog

            if not self._syslog_open:
                syslog.openlog(self.tag, syslog.LOG_PID, (self.facility or 0) << 3)
                self._syslog_open = True
            for line in lines:
                syslog.syslog(_SYSLOG_PRIORITY[level], f"{level}: {line}")
        except OSError:
            pass


def _append(path: str, record: str) -> None:
    try:
        with open(path, "a", encoding="utf-8", errors="replace") as handle:
            handle.write(record)
    except OSError:
        pass
