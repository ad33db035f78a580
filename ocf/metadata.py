"""OCF 1.1 metadata XML for a declared agent, escaped properly.

Built by string formatting on purpose (no XML library on the agent's path), with
every text and attribute escaped. Secret parameters never show a default.
"""

from __future__ import annotations

from ._typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .agent import Agent

_ESCAPES = {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&apos;"}


def escape(text: str) -> str:
    """Escape XML specials; drop characters XML 1.0 cannot carry at all."""
    out = []
    for char in text:
        if char in _ESCAPES:
            out.append(_ESCAPES[char])
        elif (char < " " and char not in "\t\n\r") or char in "\ufffe\uffff":
            continue
        elif "\ud800" <= char <= "\udfff":
            out.append("\ufffd")
        else:
            out.append(char)
    return "".join(out)


def _flag(value: bool) -> str:
    return "1" if value else "0"


def render(agent: Agent) -> str:
    """The agent's metadata document."""
    lines = [
        '<?xml version="1.0"?>',
        '<!DOCTYPE resource-agent SYSTEM "ra-api-1.dtd">',
        f'<resource-agent name="{escape(agent.name)}" version="{escape(agent.version)}">',
        "<version>1.1</version>",
        f'<longdesc lang="en">{escape(agent.longdesc)}</longdesc>',
        f'<shortdesc lang="en">{escape(agent.shortdesc)}</shortdesc>',
        "<parameters>",
    ]
    for param in agent.parameters:
        attrs = f'name="{escape(param.name)}"'
        if param.reloadable:
            attrs += ' reloadable="1"'
        attrs += f' unique="{_flag(param.unique)}" required="{_flag(param.required)}"'
        default = ""
        if param.default is not None and not param.secret:
            default = f' default="{escape(param.default)}"'
        lines += [
            f"<parameter {attrs}>",
            f'<longdesc lang="en">{escape(param.longdesc)}</longdesc>',
            f'<shortdesc lang="en">{escape(param.shortdesc)}</shortdesc>',
        ]
        options = param.select_options()
        if options:
            lines.append(f'<content type="select"{default}>')
            lines += [f'<option value="{escape(option)}" />' for option in options]
            lines.append("</content>")
        else:
            lines.append(f'<content type="{param.content_type}"{default} />')
        lines.append("</parameter>")
    lines += ["</parameters>", "<actions>"]
    for action in agent.actions:
        attrs = f'name="{escape(action.name)}" timeout="{_seconds(action.timeout)}"'
        if action.interval is not None:
            attrs += f' interval="{_seconds(action.interval)}"'
        if action.depth:
            attrs += f' depth="{action.depth}"'
        if action.role:
            attrs += f' role="{escape(action.role)}"'
        lines.append(f"<action {attrs} />")
    lines += ["</actions>", "</resource-agent>", ""]
    return "\n".join(lines)


def _seconds(value: float) -> str:
    return f"{value:g}s"
