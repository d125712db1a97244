"""The wheel's package list is explicit (the converters folder installs as `edgeaffect_converters`):
a new sub-package folder that is not listed would be silently missing from a non-editable install."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

REPO = Path(__file__).resolve().parents[1]


def _declared() -> tuple[set[str], dict[str, str]]:
    cfg = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    return set(cfg["packages"]), cfg["package-dir"]


def test_every_package_folder_is_listed():
    listed, mapping = _declared()
    found = set()
    for name, folder in mapping.items():
        root = REPO / folder
        for init in root.rglob("__init__.py"):
            rel = init.parent.relative_to(root)
            found.add(".".join([name, *rel.parts]))
    assert found - listed == set(), f"add to [tool.setuptools] packages in pyproject.toml: {sorted(found - listed)}"
    assert listed - found == set(), f"listed but no such folder: {sorted(listed - found)}"


def test_no_generic_top_level_name():
    listed, _ = _declared()
    assert {p.split(".")[0] for p in listed} == {"edgeaffect", "edgeaffect_converters"}


def test_what_the_two_readme_commands_create_is_ignored():
    """`.venv/` and the demo's output folder (README's first command, run in the repo) are git-ignored."""
    import shutil
    import subprocess

    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("not a git checkout")
    for path in (".venv/bin/python", "edgeaffect-demo/results.jsonl", "edgeaffect-out/results.jsonl"):
        r = subprocess.run(["git", "-C", str(REPO), "check-ignore", "-q", "--no-index", path], capture_output=True)
        assert r.returncode == 0, f"{path} is not git-ignored"
