"""Where the shipped workflows (the repository's `mappings/` folder) are on this install."""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def shipped_mappings() -> Path:
    """The shipped mapping folder: `mappings/` of the clone this package runs from (an editable
    install), else `syncd/shipped_mappings`, the copy that setup.py puts in the wheel."""
    in_clone = _PACKAGE.parent / "mappings"
    if (_PACKAGE.parent / "pyproject.toml").is_file() and in_clone.is_dir():
        return in_clone
    return _PACKAGE / "shipped_mappings"
