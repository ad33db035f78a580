"""Exit codes: every OCF 1.1 code exists, with its value and name."""

from hakit.ocf import OCFExit, exit_name

SPEC = {
    "SUCCESS": 0,
    "ERR_GENERIC": 1,
    "ERR_ARGS": 2,
    "ERR_UNIMPLEMENTED": 3,
    "ERR_PERM": 4,
    "ERR_INSTALLED": 5,
    "ERR_CONFIGURED": 6,
    "NOT_RUNNING": 7,
    "RUNNING_PROMOTED": 8,
    "FAILED_PROMOTED": 9,
    "DEGRADED": 190,
    "DEGRADED_PROMOTED": 191,
}


def test_every_spec_code_has_its_value_and_name() -> None:
    for name, value in SPEC.items():
        assert getattr(OCFExit, name) == value
        assert exit_name(value) == "OCF_" + name


def test_unknown_code_is_named_as_unknown() -> None:
    assert exit_name(42) == "unknown(42)"
