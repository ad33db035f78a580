"""`hakit man`: the hakit(1) man page in roff, generated from the `hakit` parser (every
command, verb and option, with the defaults `--help` shows) and from the exit codes of
`hakit.ocf.exits`.

    hakit man > /usr/local/share/man/man1/hakit.1    # then: man hakit
    hakit man | man -l -                              # read it now
"""

from __future__ import annotations

import argparse
import inspect
import re

from hakit.ocf import exits
from hakit.tools.cli_format import arguments, help_text, metavar, usage, version, walk

NAME = "hakit \\- high availability for the OpenStack control plane on Pacemaker/Corosync"

DESCRIPTION = (
    "hakit checks a YAML topology and applies it to a Pacemaker cluster as one CIB patch "
    "(validate, render, diff, apply, simulate, export, import), installs its OCF resource "
    "agents (ocf:hakit:*), shows node health (host down told from service down) and "
    "publishes it as SOL 003 alarms, and runs a lab: a real multi-node cluster on one "
    "machine, with fencing and a mini cloud, for demos, tests and failover drills.",
    "Every command prints errors as one line on standard error, never a traceback, and "
    "ends with one of the exit codes below. The list verbs and the verify verbs take "
    "--json: one JSON document on standard output, nothing else (warnings go to standard "
    "error). hakit completion bash prints a bash completion script.",
)

SEE_ALSO = "pcs(8), crm(8), crm_mon(8), cibadmin(8), crm_simulate(8), corosync(8)"
DOCS = (
    "README.md and docs/ in hakit's source: docs/topology-reference.md (hakit topology "
    "reference prints it), docs/lab.md, docs/development.md."
)


#: Characters beyond ASCII that the help texts use, as glyphs every terminal can show
#: (another one is written by its code point: fine in a UTF-8 locale).
GLYPHS = {
    "\u2192": "\\(->",  # →
    "\u2026": "...",
    "\u00d7": "\\(mu",  # multiplication sign
    "\u2013": "\\(en",
    "\u2014": "\\(em",
}


def escape(text: str) -> str:
    """Text as roff reads it: backslashes and hyphens escaped, characters beyond ASCII by
    their code point, no line starting a request."""
    text = text.replace("\\", "\\e").replace("-", "\\-")
    text = "".join(c if c.isascii() else GLYPHS.get(c, f"\\[u{ord(c):04X}]") for c in text)
    lines = [("\\&" + line) if line[:1] in (".", "'") else line for line in text.splitlines()]
    return "\n".join(lines)


def exit_codes() -> list[tuple[int, str]]:
    """(code, meaning) of each exit code `hakit.ocf.exits` defines, from its table: the
    constants and the comment on each (the name, where there is none)."""
    try:
        source = inspect.getsource(exits)
    except (OSError, TypeError):  # no source installed: the names say it
        source = ""
    said = {
        name: meaning
        for name, meaning in re.findall(r"^([A-Z][A-Z_]*) = \d+ *(?:# *(.*))?$", source, re.M)
    }
    codes = {
        name: value
        for name, value in vars(exits).items()
        if name.isupper() and isinstance(value, int) and not isinstance(value, bool)
    }
    return sorted(
        (value, said.get(name) or name.lower().replace("_", " ")) for name, value in codes.items()
    )


def _breakable(text: str) -> str:
    """Escaped, and breakable after each comma (a long {choice,choice,...})."""
    return escape(text).replace(",", ",\\:")


def _option(parser: argparse.ArgumentParser, action: argparse.Action) -> list[str]:
    value = _breakable(metavar(parser, action))
    if action.option_strings:
        names = ", ".join(f"\\fB{escape(o)}\\fR" for o in action.option_strings)
        head = f"{names} \\fI{value}\\fR" if value else names
    else:
        head = f"\\fI{value}\\fR"
    return [".TP", head, escape(help_text(parser, action) or "")]


def _command(words: tuple[str, ...], parser: argparse.ArgumentParser, text: str) -> list[str]:
    title = " ".join(("hakit", *words))
    lines = [f'.SS "{escape(title)}"']
    for paragraph in (text, parser.description if words else ""):
        if paragraph:
            lines += [".PP", escape(paragraph)]
    lines += [".PP", f"\\fB{_breakable(usage(parser))}\\fR"]
    for action in arguments(parser):
        if not isinstance(action, argparse._HelpAction):  # said once, under OPTIONS
            lines += _option(parser, action)
    return lines


def page(parser: argparse.ArgumentParser) -> str:
    """hakit(1) in roff (man macros)."""
    lines = [
        f'.TH HAKIT 1 "" "hakit {escape(version())}" "hakit manual"',
        ".ad l",  # ragged right, and no hyphenation inside option names
        ".nh",
        ".SH NAME",
        NAME,
        ".SH SYNOPSIS",
        f"\\fB{escape(usage(parser))}\\fR",
        ".PP",
        "\\fBhakit\\fR \\fICOMMAND\\fR [\\fIVERB\\fR] [\\fIOPTIONS\\fR] [\\fB\\-\\-help\\fR]",
        ".SH DESCRIPTION",
    ]
    for paragraph in DESCRIPTION:
        lines += [".PP", escape(paragraph)]
    lines.append(".SH OPTIONS")
    for action in arguments(parser):
        lines += _option(parser, action)
    lines.append(".SH COMMANDS")
    for words, command, text in walk(parser):
        if words:
            lines += _command(words, command, text)
    lines.append(".SH EXIT STATUS")
    for code, meaning in exit_codes():
        lines += [".TP", f"\\fB{code}\\fR", escape(meaning)]
    lines += [".SH SEE ALSO", escape(SEE_ALSO), ".PP", escape(DOCS)]
    return "\n".join(lines) + "\n"
