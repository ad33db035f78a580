"""Parameter parsing, one type at a time."""

from __future__ import annotations

import pytest

from hakit.ocf import (
    BooleanParam,
    EnumParam,
    IntegerParam,
    ListParam,
    OCFExit,
    ParameterError,
    PathParam,
    PortParam,
    StringParam,
)
from hakit.ocf.params import ParameterValues


@pytest.mark.parametrize("raw", ["1", "yes", "TRUE", "on", " y "])
def test_boolean_true(raw: str) -> None:
    assert BooleanParam("b", "b").parse(raw) is True


@pytest.mark.parametrize("raw", ["0", "no", "False", "off", "n"])
def test_boolean_false(raw: str) -> None:
    assert BooleanParam("b", "b").parse(raw) is False


def test_list_splits_on_spaces_and_commas() -> None:
    assert ListParam("l", "l").parse("a, b  c,,d") == ["a", "b", "c", "d"]


def test_integer_and_port_bounds() -> None:
    assert IntegerParam("i", "i").parse(" -5 ") == -5
    assert PortParam("p", "p").parse("65535") == 65535
    for raw in ("0", "65536", "80x"):
        with pytest.raises(ParameterError) as error:
            PortParam("p", "p").parse(raw)
        assert error.value.code == OCFExit.ERR_CONFIGURED


def test_enum_rejects_bad_declarations() -> None:
    with pytest.raises(ValueError, match="not a choice"):
        EnumParam("e", "e", choices=["a"], default="b")
    with pytest.raises(ValueError, match="needs choices"):
        EnumParam("e", "e", choices=[])


def test_program_lookup_in_path_and_installation_codes(tmp_path: object) -> None:
    program = PathParam("p", "p", executable=True)
    program.check_installed("sh")  # found in PATH
    for missing in ("no-such-program-xyz", "/nonexistent/x", "/etc"):
        with pytest.raises(ParameterError) as error:
            program.check_installed(missing)
        assert error.value.code == OCFExit.ERR_INSTALLED
    with pytest.raises(ParameterError):
        PathParam("p", "p").parse("relative/x")


def test_values_defaults_empty_and_unset() -> None:
    params = [
        StringParam("s", "s", default="d"),
        StringParam("e", "e", default=""),
        IntegerParam("i", "i", default="3"),
        IntegerParam("u", "u"),
        ListParam("l", "l", default=""),
    ]
    values = ParameterValues(params, {"OCF_RESKEY_i": ""})
    s, e, i, u, lst = params
    assert values[s] == "d" and values[e] == "" and values[i] == 3
    assert values.get(u) is None and values[lst] == []
    with pytest.raises(ParameterError, match="parameter u is not set"):
        values[u]
    assert values.first_problem() is None
