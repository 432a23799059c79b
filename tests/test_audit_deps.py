"""scripts/audit_deps.py says what it knows: vulnerabilities fail, the unauditable is reported."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
import audit_deps  # noqa: E402
from audit_deps import Newest  # noqa: E402


def _skipped(name: str, version: str) -> dict:
    return {"name": name, "skip_reason": "Dependency not found on PyPI and could not be "
                                         f"audited: {name} ({version})"}


REPORT = {"dependencies": [
    {"name": "flask", "version": "3.1.3", "vulns": []},
    _skipped("filelock", "4.3.1"), _skipped("babel", "2.19.0"), _skipped("gone", "1.0")]}


def test_a_release_behind_is_reported_but_does_not_fail():
    found = audit_deps.classify(REPORT, {
        "filelock": Newest("4.3.2"), "babel": Newest("2.19.0"),
        "gone": Newest(None, error="HTTP Error 404")})
    assert (found.audited, found.by_page, found.total) == (1, 1, 4)
    assert found.vulnerable == []
    assert [line.split(":")[0] for line in found.unaudited] == ["filelock==4.3.1", "gone==1.0"]
    assert "newest release, 4.3.2" in found.unaudited[0]
    assert "HTTP Error 404" in found.unaudited[1]
    assert not found.failed() and found.failed(strict=True)


def test_every_known_vulnerability_fails():
    report = {"dependencies": [
        {"name": "jinja2", "version": "3.1.2", "vulns": [
            {"id": "GHSA-h5c8-rqwp-cp95", "fix_versions": ["3.1.3"]}]},
        _skipped("babel", "2.19.0")]}
    found = audit_deps.classify(report, {"babel": Newest("2.19.0", ("PYSEC-2099-1",))})
    assert found.vulnerable == ["jinja2 3.1.2: GHSA-h5c8-rqwp-cp95 (fixed in 3.1.3)",
                                "babel 2.19.0: PYSEC-2099-1"]
    assert found.failed()
