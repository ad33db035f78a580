"""The `doc` metadata of every model field (`model` and `model_remotes` share it)."""

from __future__ import annotations


def doc(text: str) -> dict[str, str]:
    """Field metadata: the sentence shown in hints and generated docs."""
    return {"doc": text}
