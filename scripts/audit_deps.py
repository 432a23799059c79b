"""Audit the locked Python packages (requirements.lock) for known vulnerabilities.

pip-audit checks each locked version against PyPI's advisories for that release
(``/pypi/NAME/VERSION/json``). Some networks let only the package index and the project pages
through; there pip-audit can audit nothing, and this falls back to each project's page
(``/pypi/NAME/json``), whose advisories are those of the newest release: exactly what pip-audit
would have found when the locked version is the newest.

- Every known vulnerability found either way fails the audit (exit 1), as does pip-audit not
  running at all.
- A locked version that could be audited neither way (not the newest release, and its own
  advisories out of reach) is reported with the reason, and does not fail the audit unless
  ``--strict`` is given: the report always says how many were audited and how.

(bandit: subprocess runs this interpreter's pip-audit with an argument list, no shell; urlopen
only ever opens https://pypi.org.)
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess  # nosec B404
import sys
import tempfile
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROJECT_URL = "https://pypi.org/pypi/{name}/json"


def pip_audit(lock: Path, report: Path) -> dict:
    """pip-audit's JSON report on the lock's exact pins (nothing is installed for it)."""
    run = subprocess.run(  # noqa: S603 # nosec B603
        [sys.executable, "-m", "pip_audit", "--progress-spinner", "off", "--format", "json",
         "--disable-pip", "--requirement", str(lock), "--output", str(report)],
        check=False, capture_output=True, text=True)
    if not report.exists():
        sys.exit(f"pip-audit did not run; is it installed (scripts/setup.sh --test)?\n"
                 f"{run.stderr[-2000:]}")
    return json.loads(report.read_text())


@dataclass(frozen=True)
class Newest:
    """What a project page says: its newest release and that release's advisories."""

    version: str | None  # None: the page could not be read
    advisories: tuple[str, ...] = ()
    error: str = ""


def newest_release(name: str) -> Newest:
    url = PROJECT_URL.format(name=name)  # always https://pypi.org (no file:// or other scheme)
    try:
        with urllib.request.urlopen(url, timeout=30) as response:  # noqa: S310 # nosec B310
            project = json.load(response)
    except OSError as exc:
        return Newest(None, error=str(exc))
    return Newest(project["info"]["version"],
                  tuple(v["id"] for v in project.get("vulnerabilities") or []))


@dataclass
class Findings:
    """What an audit found: vulnerabilities, and what could and could not be audited."""

    vulnerable: list[str]
    audited: int
    by_page: int
    unaudited: list[str]

    @property
    def total(self) -> int:
        return self.audited + self.by_page + len(self.unaudited)

    def failed(self, strict: bool = False) -> bool:
        return bool(self.vulnerable) or (strict and bool(self.unaudited))


def skipped_versions(report: dict) -> dict[str, tuple[str, str]]:
    """``{name: (version, pip-audit's reason)}`` of the packages pip-audit could not audit."""
    skipped = {}
    for dep in report["dependencies"]:
        if "skip_reason" in dep:
            found = re.search(r"\(([^()]*)\)\s*$", dep["skip_reason"])
            skipped[dep["name"]] = (found.group(1) if found else "?", dep["skip_reason"])
    return skipped


def classify(report: dict, pages: dict[str, Newest]) -> Findings:
    """Combine pip-audit's report with the project pages of the packages it skipped."""
    findings = Findings([], 0, 0, [])
    for dep in report["dependencies"]:
        if "skip_reason" not in dep:
            findings.audited += 1
            findings.vulnerable += [f"{dep['name']} {dep['version']}: {v['id']} (fixed in "
                                    f"{', '.join(v.get('fix_versions') or ['-'])})"
                                    for v in dep.get("vulns", [])]
    for name, (version, reason) in sorted(skipped_versions(report).items()):
        page = pages.get(name, Newest(None, error="not asked"))
        if page.version == version:
            findings.by_page += 1
            findings.vulnerable += [f"{name} {version}: {advisory}"
                                    for advisory in page.advisories]
        elif page.version is None:
            findings.unaudited.append(f"{name}=={version}: {reason}; its project page could "
                                      f"not be read either ({page.error})")
        else:
            findings.unaudited.append(f"{name}=={version}: {reason}; the project page only "
                                      f"tells the advisories of the newest release, "
                                      f"{page.version}")
    return findings


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lock", type=Path, default=ROOT / "requirements.lock",
                        help="the lock file to audit (default: requirements.lock)")
    parser.add_argument("--strict", action="store_true",
                        help="also fail when a locked version could not be audited")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        report = pip_audit(args.lock, Path(tmp) / "audit.json")
    skipped = skipped_versions(report)
    with ThreadPoolExecutor(max_workers=8) as pool:
        pages = dict(zip(skipped, pool.map(newest_release, skipped), strict=True))
    found = classify(report, pages)
    print(f"pip-audit: {found.total} locked packages: {found.audited} audited by pip-audit, "
          f"{found.by_page} from PyPI's project pages (locked = newest release), "
          f"{len(found.unaudited)} not audited.")
    for line in found.vulnerable:
        print(f"VULNERABLE {line}")
    for line in found.unaudited:
        print(f"NOT AUDITED {line}")
    if found.unaudited:
        print(f"{len(found.unaudited)} of {found.total} locked versions could not be checked "
              "against known vulnerabilities here; audit them where PyPI's release data can be "
              "reached (scripts/audit_deps.py --strict), or upgrade them (make upgrade).")
    if found.vulnerable:
        print(f"{len(found.vulnerable)} known vulnerabilities: upgrade the packages named above.")
    elif not found.failed(args.strict):
        print("No known vulnerabilities found in what could be audited.")
    return 1 if found.failed(args.strict) else 0


if __name__ == "__main__":
    sys.exit(main())
