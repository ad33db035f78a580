"""Logging follows Pacemaker's conventions and never writes a secret."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from hakit.ocf.log import Logger
from tests.conftest import run_in_process
from tests.support.example_agent import AGENT


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_info_is_logged_when_ha_debug_is_unset(tmp_path: Path) -> None:
    log = tmp_path / "l"
    logger = Logger("tag", {"HA_LOGFILE": str(log)})
    logger.info("hello")
    logger.debug("hidden")
    text = log.read_text()
    assert " tag[" in text and "INFO: hello" in text and "hidden" not in text


@pytest.mark.parametrize(
    ("value", "enabled"), [("0", False), ("1", True), ("", False), ("yes", True), ("false", False)]
)
def test_ha_debug_zero_means_off(tmp_path: Path, value: str, enabled: bool) -> None:
    log = tmp_path / "l"
    logger = Logger("t", {"HA_LOGFILE": str(log), "HA_debug": value})
    logger.debug("dbg")
    logger.info("inf")
    assert ("DEBUG: dbg" in log.read_text()) is enabled


@pytest.mark.parametrize(
    ("pcmk_debug", "enabled"),
    [("yes", True), ("pacemaker-execd", True), ("no", False), ("", False)],
)
def test_pcmk_debug_decides_when_ha_debug_is_absent(
    tmp_path: Path, pcmk_debug: str, enabled: bool
) -> None:
    """With PCMK_debug set, pacemaker-execd passes HA_DEBUGLOG but no HA_debug."""
    log = tmp_path / "l"
    env = {"HA_LOGFILE": str(log), "HA_DEBUGLOG": str(log), "PCMK_debug": pcmk_debug}
    logger = Logger("t", env)
    logger.debug("dbg")
    logger.info("inf")
    assert ("DEBUG: dbg" in log.read_text()) is enabled


def test_debug_goes_to_ha_debuglog(tmp_path: Path) -> None:
    env = {"HA_LOGFILE": str(tmp_path / "l"), "HA_DEBUGLOG": str(tmp_path / "d"), "HA_debug": "1"}
    logger = Logger("t", env)
    logger.debug("dbg")
    logger.info("inf")
    assert "dbg" in (tmp_path / "d").read_text() and "inf" not in (tmp_path / "d").read_text()


def test_stderr_when_interactive_even_with_a_logfile(tmp_path: Path) -> None:
    tty = Tty()
    Logger("t", {"HA_LOGFILE": str(tmp_path / "l")}, tty).info("x")
    assert tty.getvalue() == "INFO: x\n"
    quiet = io.StringIO()
    Logger("t", {"HA_LOGFILE": str(tmp_path / "l")}, quiet).info("x")
    assert quiet.getvalue() == ""


def test_ha_logtag_names_the_lines(tmp_path: Path) -> None:
    Logger("t", {"HA_LOGFILE": str(tmp_path / "l"), "HA_LOGTAG": "mytag"}).info("x")
    assert " mytag[" in (tmp_path / "l").read_text()


def test_secrets_are_masked_in_log_stderr_and_exit_reason(tmp_path: Path) -> None:
    log = tmp_path / "l"
    env = {
        "OCF_RESKEY_state": str(tmp_path / "s"),
        "OCF_RESKEY_password": "pa$$w0rd",
        "HA_LOGFILE": str(log),
        "HA_debug": "1",
    }
    for behaviour, action in (("log-secret", "monitor"), ("fail:1", "start"), ("crash", "start")):
        result = run_in_process(AGENT, action, {**env, "OCF_RESKEY_behaviour": behaviour})
        assert "pa$$w0rd" not in result.stderr + result.stdout
    text = log.read_text()
    assert "pa$$w0rd" not in text
    assert "the password is ******" in text


def test_secret_in_a_bad_value_message_is_hidden(tmp_path: Path) -> None:
    from hakit.ocf import SecretParam

    error = SecretParam("password", "p").bad("hunter2")
    assert "hunter2" not in error.reason and "(hidden)" in error.reason


def test_unwritable_logfile_does_not_break_the_agent(tmp_path: Path) -> None:
    env = {
        "OCF_RESKEY_state": str(tmp_path / "s"),
        "HA_LOGFILE": "/proc/nonexistent/x",
        "HA_LOGFACILITY": "daemon",
    }
    assert run_in_process(AGENT, "start", env).code == 0
