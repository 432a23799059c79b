"""Keeping the translation catalogs in step with the code (``flask translate …``)."""

from __future__ import annotations

import re
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po, write_po

from config import BASE_DIR
from consult.core.i18n import SUPPORTED_LOCALES

TRANSLATIONS = BASE_DIR / "translations"
KEYWORDS = ("-k", "_l", "-k", "_n:1,2", "-k", "lazy_gettext", "-k", "lazy_pgettext:1c,2")
# The msgids are English, so the English catalog is the msgids themselves.
SOURCE_LOCALE = "en"
_PLACEHOLDER = re.compile(r"%\([a-z_]+\)[sd]")


def _pybabel(*args: str) -> None:
    from babel.messages.frontend import CommandLineInterface

    CommandLineInterface().run(["pybabel", "-q", *args])


def extract(pot: Path) -> Catalog:
    """Extract every message of the code and templates into ``pot``."""
    _pybabel("extract", "-F", str(BASE_DIR / "babel.cfg"), *KEYWORDS, "--sort-by-file",
             "-o", str(pot), str(BASE_DIR / "consult"), str(BASE_DIR / "templates"))
    with pot.open("rb") as handle:
        return read_po(handle)


def _po_path(locale: str) -> Path:
    return TRANSLATIONS / locale / "LC_MESSAGES" / "messages.po"


def update() -> None:
    """Merge new messages into every catalog; fill the English one from the msgids."""
    with tempfile.TemporaryDirectory() as tmp:
        pot = Path(tmp) / "messages.pot"
        extract(pot)
        for locale in SUPPORTED_LOCALES:
            command = "update" if _po_path(locale).exists() else "init"
            _pybabel(command, "-i", str(pot), "-d", str(TRANSLATIONS), "-l", locale,
                     *(["--no-fuzzy-matching"] if command == "update" else []))
    for locale in SUPPORTED_LOCALES:
        _tidy(locale)


def _tidy(locale: str) -> None:
    """Rewrite one catalog in the repository's layout: paths relative to the project (the
    same wherever it is checked out), lines of 100, no obsolete entries. The English
    catalog is its own msgids."""
    path = _po_path(locale)
    with path.open("rb") as handle:
        catalog = read_po(handle, locale=locale)
    for message in catalog:
        message.locations = [(_relative(file), line) for file, line in message.locations]
        if locale == SOURCE_LOCALE:
            if message.id and not _complete(message.string):
                message.string = message.id
            message.flags.discard("fuzzy")
    catalog.obsolete.clear()
    with path.open("wb") as handle:
        write_po(handle, catalog, width=100)


def _relative(file: str) -> str:
    prefix = f"{BASE_DIR}/"
    return file[len(prefix):] if file.startswith(prefix) else file


def compile_all() -> None:
    _pybabel("compile", "-d", str(TRANSLATIONS))


@dataclass(frozen=True)
class Problem:
    locale: str
    msgid: str
    reason: str  # "missing", "fuzzy", "placeholders"


def _complete(string: str | Sequence[str] | None) -> bool:
    return bool(string) if string is None or isinstance(string, str) else all(string)


def check() -> list[Problem]:
    """Every message of the code, in every catalog: translated, not fuzzy, same placeholders."""
    problems: list[Problem] = []
    with tempfile.TemporaryDirectory() as tmp:
        template = extract(Path(tmp) / "messages.pot")
    for locale in SUPPORTED_LOCALES:
        path = _po_path(locale)
        if not path.exists():
            problems.append(Problem(locale, "", "missing catalog"))
            continue
        with path.open("rb") as handle:
            catalog = read_po(handle)
        for wanted in template:
            if not wanted.id:
                continue
            found = catalog.get(wanted.id, context=wanted.context)
            msgid = wanted.id if isinstance(wanted.id, str) else wanted.id[0]
            if found is None or not _complete(found.string):
                problems.append(Problem(locale, msgid, "missing"))
            elif found.fuzzy:
                problems.append(Problem(locale, msgid, "fuzzy"))
            else:
                strings = ((found.string,) if isinstance(found.string, str)
                           else tuple(found.string or ()))
                expected = sorted(_PLACEHOLDER.findall(msgid))
                if any(sorted(_PLACEHOLDER.findall(s)) != expected for s in strings):
                    problems.append(Problem(locale, msgid, "placeholders"))
    return problems


class CatalogsUnavailable(RuntimeError):
    """The compiled catalogs are missing or out of date and cannot be compiled here."""


def ensure_compiled(directory: Path | str = TRANSLATIONS) -> list[str]:
    """Compile every catalog whose ``.mo`` file is missing or older than its ``.po`` file;
    returns the locales compiled.

    Without its ``.mo`` file Flask-Babel silently shows the English msgids, and a notice or a
    tally frozen then stays English for good, so the app compiles at start-up (each file is
    written aside and renamed into place, so workers starting together never read half a
    file) or refuses to start with the reason.
    """
    compiled = []
    for locale in SUPPORTED_LOCALES:
        folder = Path(directory) / locale / "LC_MESSAGES"
        po, mo = folder / "messages.po", folder / "messages.mo"
        if not po.exists():
            raise CatalogsUnavailable(f"The translation catalog {po} is missing.")
        if mo.exists() and mo.stat().st_size and mo.stat().st_mtime >= po.stat().st_mtime:
            continue
        temporary: Path | None = None
        try:
            with po.open("rb") as handle:
                catalog = read_po(handle, locale=locale)
            with tempfile.NamedTemporaryFile(dir=folder, prefix=".messages-", suffix=".mo",
                                             delete=False) as out:
                temporary = Path(out.name)
                write_mo(out, catalog)
            temporary.replace(mo)
            temporary = None
        except OSError as exc:
            if temporary is not None:
                temporary.unlink(missing_ok=True)
            raise CatalogsUnavailable(
                f"The translation catalog {mo} is missing or older than {po.name} and cannot "
                f"be compiled here ({exc}). Run `flask --app wsgi translate compile` (or "
                "scripts/setup.sh) as a user who may write there, then start again.") from exc
        compiled.append(locale)
    return compiled
