"""Audit the installed Python packages for known vulnerabilities (CI, after the linters).

Runs pip-audit on .venv. pip-audit asks PyPI's per-release JSON API
(``/pypi/NAME/VERSION/json``) for the advisories of each installed version; where that API
cannot be reached (some networks let only the index and the project pages through), this falls
back to the project page (``/pypi/NAME/json``), whose advisories are those of the newest
release: exactly what pip-audit would have used when the installed version is the newest.

Fails (exit 1) on any known vulnerability, and on any package that could be audited neither
way, unless it is named with ``--may-skip NAME==VERSION`` (a reviewed exception, printed every
time).

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
from pathlib import Path

PROJECT_URL = "https://pypi.org/pypi/{name}/json"


def pip_audit(report: Path) -> dict:
    subprocess.run(  # noqa: S603 # nosec B603
        [sys.executable, "-m", "pip_audit", "--progress-spinner", "off", "--format", "json",
         "--output", str(report)], check=False, capture_output=True, text=True)
    if not report.exists():
        sys.exit("pip-audit did not run; is it installed (scripts/setup.sh --test)?")
    return json.loads(report.read_text())


def project_advisories(name: str, version: str) -> list[str] | None:
    """Advisory ids for ``name`` ``version`` from the project page, or None when the page
    cannot tell (another release is the newest, or PyPI cannot be reached)."""
    url = PROJECT_URL.format(name=name)  # always https://pypi.org (no file:// or other scheme)
    try:
        with urllib.request.urlopen(url, timeout=30) as response:  # noqa: S310 # nosec B310
            project = json.load(response)
    except OSError:
        return None
    if project["info"]["version"] != version:
        return None
    return [v["id"] for v in project.get("vulnerabilities") or []]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--may-skip", action="append", default=[], metavar="NAME==VERSION",
                        help="a package allowed to stay unaudited (reviewed exception)")
    args = parser.parse_args()
    allowed = {spec.lower() for spec in args.may_skip}
    with tempfile.TemporaryDirectory() as tmp:
        report = pip_audit(Path(tmp) / "audit.json")
    vulnerable, unaudited, by_project_page, audited = [], [], 0, 0
    for dep in report["dependencies"]:
        name = dep["name"]
        if "skip_reason" not in dep:
            audited += 1
            vulnerable += [f"{name} {dep['version']}: {v['id']} (fixed in "
                           f"{', '.join(v.get('fix_versions') or ['-'])})"
                           for v in dep.get("vulns", [])]
            continue
        found = re.search(r"\(([^()]*)\)\s*$", dep["skip_reason"])
        version = found.group(1) if found else "?"
        advisories = project_advisories(name, version) if found else None
        if advisories is None:
            unaudited.append((f"{name}=={version}", dep["skip_reason"]))
            continue
        by_project_page += 1
        vulnerable += [f"{name} {version}: {advisory}" for advisory in advisories]
    print(f"pip-audit: {audited} packages audited by pip-audit, {by_project_page} from PyPI's "
          f"project pages (installed = newest release), {len(unaudited)} not audited.")
    for line in vulnerable:
        print(f"VULNERABLE {line}")
    failed = bool(vulnerable)
    for spec, reason in unaudited:
        if spec.lower() in allowed:
            print(f"not audited (allowed by --may-skip): {spec}: {reason}")
        else:
            print(f"NOT AUDITED {spec}: {reason}")
            failed = True
    if not failed:
        print("No known vulnerabilities found.")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
