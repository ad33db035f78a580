"""oslo.config files read without oslo: configparser, merged as oslo does."""

from __future__ import annotations

import os

from hakit.ocf import Context, OCFError, OCFExit, StringParam
from hakit.ocf._typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence
    from configparser import RawConfigParser

#: Where Debian's python3-* packages live (pymysql, yaml): agents run as `python3 -IS`,
#: so what they need from there is added to sys.path only when needed.
DEBIAN_DIST_PACKAGES = "/usr/lib/python3/dist-packages"


def read_config(files: Sequence[str]) -> RawConfigParser:
    """The files merged like oslo.config does (later wins); [DEFAULT] is an ordinary
    section (configparser would leak it into every other one)."""
    import configparser

    parser = configparser.RawConfigParser(
        default_section="\0none", strict=False, interpolation=None, allow_no_value=True
    )
    for path in files:
        try:
            with open(path, encoding="utf-8") as handle:
                parser.read_file(handle, source=path)
        except FileNotFoundError:
            raise OCFError(OCFExit.ERR_INSTALLED, f"config file {path} does not exist") from None
        except OSError as error:
            raise OCFError(OCFExit.ERR_INSTALLED, f"config file {path}: {error}") from None
        except (configparser.Error, UnicodeDecodeError) as error:
            raise OCFError(OCFExit.ERR_CONFIGURED, f"config file {path}: {_why(error)}") from None
    return parser


def _why(error: Exception) -> str:
    """What is wrong with a config file, without its content (a line may hold a password)."""
    import configparser

    if isinstance(error, UnicodeDecodeError):
        return f"not UTF-8 text (byte {error.start})"
    if isinstance(error, configparser.MissingSectionHeaderError):
        return f"line {error.lineno}: a setting before any [section] header"
    if isinstance(error, configparser.ParsingError):
        lines = ", ".join(str(number) for number, _ in error.errors)
        return f"line {lines}: not `name = value`"
    return f"does not parse ({type(error).__name__})"


def checked_config(ctx: Context, param: StringParam) -> str | None:
    """The file `param` names, when it is to be checked: not when empty, nor when it is
    the default and absent from this node; an explicit path that does not exist is
    OCF_ERR_INSTALLED."""
    path = ctx.params.get(param) or ""
    if not path or (not os.path.exists(path) and param.name not in ctx.params.raw):
        return None
    if not os.path.isfile(path):
        raise OCFError(OCFExit.ERR_INSTALLED, f"{param.name} {path} does not exist")
    return path


def option(config: RawConfigParser, section: str, name: str, default: str = "") -> str:
    if config.has_option(section, name):
        return (config.get(section, name) or "").strip()
    return default
