"""Make, upgrade or check requirements.lock: every Python package consult installs, runtime
and development, with its exact version and the hashes of its files.

    python scripts/lock.py                        re-lock after pyproject.toml changed; every
                                                  version already locked is kept if it still fits
    python scripts/lock.py --upgrade              move every package to its newest fitting release
    python scripts/lock.py --upgrade-package X    move only X (and what it needs)
    python scripts/lock.py --check                exit 1 if the lock is out of step with
                                                  pyproject.toml (CI; the standard library only)

The lock is made by uv (pinned in the lock itself) for Python 3.11 on every platform, and its
first line records a digest of the dependency lists of pyproject.toml, so a change there without
a new lock is caught before anything is installed. ``make lock`` / ``make upgrade`` run this.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import shutil
import subprocess  # nosec B404
import sys
import tempfile
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = ROOT / "pyproject.toml"
LOCK = ROOT / "requirements.lock"
PYTHON = "3.11"
DIGEST_LINE = "# pyproject.toml dependencies sha256: "
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)")
_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def wanted(pyproject: Path = PYPROJECT) -> dict[str, object]:
    """What the lock must satisfy: the Python version and both dependency lists."""
    project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    return {"requires-python": project.get("requires-python", ""),
            "dependencies": sorted(project["dependencies"]),
            "dev": sorted(project.get("optional-dependencies", {}).get("dev", []))}


def digest(pyproject: Path = PYPROJECT) -> str:
    encoded = json.dumps(wanted(pyproject), sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(encoded.encode("utf-8")).hexdigest()


def pins(lock_text: str) -> dict[str, str]:
    """``{canonical name: version}`` of every package in a lock."""
    found = {}
    for line in lock_text.splitlines():
        match = _PIN.match(line)
        if match:
            found[canonical(match.group(1))] = match.group(2)
    return found


def problems(pyproject: Path = PYPROJECT, lock: Path = LOCK) -> list[str]:
    """Why the lock does not match pyproject.toml (empty: it does)."""
    if not lock.exists():
        return [f"{lock.name} is missing"]
    text = lock.read_text(encoding="utf-8")
    found: list[str] = []
    recorded = next((line[len(DIGEST_LINE):].strip() for line in text.splitlines()
                     if line.startswith(DIGEST_LINE)), None)
    if recorded != digest(pyproject):
        found.append("the dependencies in pyproject.toml changed since the lock was made")
    locked = pins(text)
    for requirement in wanted(pyproject)["dependencies"] + wanted(pyproject)["dev"]:  # type: ignore[operator]
        name = _NAME.match(requirement)
        if name and canonical(name.group(1).split("[")[0]) not in locked:
            found.append(f"{requirement} is not in the lock")
    unhashed = [line.split()[0] for line in text.splitlines()
                if _PIN.match(line) and not line.rstrip().endswith("\\")]
    found += [f"{name} has no hash" for name in unhashed]
    return found


def compile_lock(extra: list[str]) -> None:
    uv = shutil.which("uv", path=str(Path(sys.executable).parent)) or shutil.which("uv")
    if uv is None:
        sys.exit("uv is not installed: run scripts/setup.sh --test first.")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "requirements.lock"
        if LOCK.exists():  # uv keeps the versions of an existing output file where they fit
            out.write_text(LOCK.read_text(encoding="utf-8"), encoding="utf-8")
        subprocess.run(  # noqa: S603 # nosec B603 - uv from the venv, fixed arguments
            [uv, "pip", "compile", "pyproject.toml", "--extra", "dev", "--generate-hashes",
             "--universal", "--python-version", PYTHON, "--quiet",
             "--custom-compile-command", "make lock", "-o", str(out), *extra],
            cwd=ROOT, check=True)
        body = out.read_text(encoding="utf-8")
    LOCK.write_text(f"{DIGEST_LINE}{digest()}\n{body}", encoding="utf-8")
    print(f"Wrote {LOCK.name}: {len(pins(body))} packages.")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--check", action="store_true", help="only check the lock")
    group.add_argument("--upgrade", action="store_true", help="upgrade every package")
    group.add_argument("--upgrade-package", action="append", default=[], metavar="NAME",
                       help="upgrade this package")
    args = parser.parse_args()
    if args.check:
        found = problems()
        for problem in found:
            print(f"requirements.lock: {problem}", file=sys.stderr)
        if found:
            print("Run `make lock` and commit requirements.lock with pyproject.toml.",
                  file=sys.stderr)
            return 1
        print("requirements.lock is in step with pyproject.toml.")
        return 0
    extra = ["--upgrade"] if args.upgrade else []
    for name in args.upgrade_package:
        extra += ["--upgrade-package", name]
    compile_lock(extra)
    return 0


if __name__ == "__main__":
    sys.exit(main())
