"""requirements.lock stays in step with pyproject.toml (scripts/lock.py --check)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
import lock  # noqa: E402


def test_the_committed_lock_matches_pyproject():
    assert lock.problems() == []
    run = subprocess.run([sys.executable, str(ROOT / "scripts" / "lock.py"), "--check"],
                         capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stderr


@pytest.fixture
def project(tmp_path: Path) -> tuple[Path, Path]:
    pyproject, locked = tmp_path / "pyproject.toml", tmp_path / "requirements.lock"
    pyproject.write_text((ROOT / "pyproject.toml").read_text("utf-8"), "utf-8")
    locked.write_text((ROOT / "requirements.lock").read_text("utf-8"), "utf-8")
    return pyproject, locked


def test_a_changed_dependency_without_a_new_lock_fails(project):
    pyproject, locked = project
    text = pyproject.read_text("utf-8")
    pyproject.write_text(text.replace('"segno>=1.6,<2",', '"segno>=1.6,<2",\n    "six>=1.16",'),
                         "utf-8")
    found = lock.problems(pyproject, locked)
    assert "the dependencies in pyproject.toml changed since the lock was made" in found
    assert "six>=1.16 is not in the lock" in found
    # A narrowed version range is a change too, though the locked version may still fit.
    pyproject.write_text(text.replace('"segno>=1.6,<2"', '"segno>=1.6.1,<2"'), "utf-8")
    assert lock.problems(pyproject, locked) == [
        "the dependencies in pyproject.toml changed since the lock was made"]


def test_a_pin_without_a_hash_fails(project):
    pyproject, locked = project
    text = locked.read_text("utf-8")
    locked.write_text(text + "six==1.16.0\n", "utf-8")
    assert lock.problems(pyproject, locked) == ["six==1.16.0 has no hash"]


def test_every_package_of_the_lock_is_pinned_exactly_with_hashes():
    text = (ROOT / "requirements.lock").read_text("utf-8")
    pins = lock.pins(text)
    for name in ("flask", "sqlalchemy", "babel", "rq", "pip", "setuptools", "uv", "pytest"):
        assert name in pins
    assert text.count("--hash=sha256:") >= len(pins)
