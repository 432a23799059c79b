"""Every upload field of the app — found in the forms of its URL map, so a new one is covered
without editing this file — refuses files that are too large or are not what they claim to
be, stores nothing when it does, and keeps no metadata of the photos it accepts.

A refusal is a 413 page or the form again, with the reason in the user's language (here
Traditional Chinese), no new row in any table, no new audit event and no new file in the
upload folder. The same field accepts a real file, so that the refusals are the file's doing.
The limits are lowered for the test (256 KB per file, 1 MB per request); tests/test_uploads.py
checks the storage itself.
"""

from __future__ import annotations

import io
import itertools
import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from PIL import Image
from werkzeug.routing import Rule

from consult.ballots.models import Ballot, RollEntry
from consult.consultations.models import Consultation
from consult.extensions import db
from consult.registry.models import Household
from consult.uploads import service as uploads
from consult.uploads.models import Attachment
from tests.reliability import hostile as h

LIMIT = 256 * 1024          # UPLOAD_MAX_BYTES and IMPORT_MAX_BYTES in these tests
REQUEST_LIMIT = 1024 * 1024  # MAX_CONTENT_LENGTH in these tests
LOCALE = "zh_Hant"
# Upload fields the app has today: the discovery must find at least these.
KNOWN = {("consultations.opinion_new", "photo"), ("consultations.opinion_record", "photo"),
         ("consultations.meeting_new", "files"), ("consultations.meeting_edit", "files"),
         ("ballots.enter", "proxy_document"), ("implementation.progress_new", "photos"),
         ("implementation.inspection_new", "photo"), ("registry.import_households", "file"),
         ("ballots.import_file", "file"), ("ballots.authorise", "document"),
         ("registry.import_grids", "file")}
TABLE_UPLOADS = {"registry.import_households", "ballots.import_file", "registry.import_grids"}
# Table uploads answered with a preview: a good file is shown, and nothing is written yet.
PREVIEWED = {"ballots.import_file", "registry.import_grids"}
# What the rest of a form must say for its file to be used at all.
CONTEXT = {"ballots.enter": {"channel": ["proxy"], "proxy_name": ["李四"]}}
MARKER = b"PhoneMaker-4711"


@pytest.fixture(autouse=True)
def _isolation(request: pytest.FixtureRequest, app: Flask) -> Iterator[None]:
    """Each test in a rolled-back transaction, as in the rest of the suite."""
    yield from h.suite_isolation(request, app)


@pytest.fixture
def site(app: Flask, client: Any, monkeypatch: pytest.MonkeyPatch) -> h.Site:
    monkeypatch.setitem(app.config, "UPLOAD_MAX_BYTES", LIMIT)
    monkeypatch.setitem(app.config, "IMPORT_MAX_BYTES", LIMIT)
    monkeypatch.setitem(app.config, "MAX_CONTENT_LENGTH", REQUEST_LIMIT)
    return h.Site(app, client, h.build_world())


# --- files ------------------------------------------------------------------------------------


def _zip(files: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, content in files.items():
            archive.writestr(name, content)
    return buffer.getvalue()


def _image(fmt: str, **save: Any) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), "teal").save(buffer, format=fmt, **save)
    return buffer.getvalue()


def _exif() -> Image.Exif:
    exif = Image.Exif()
    exif[0x010F] = MARKER.decode()  # camera make
    exif[0x8825] = {1: "N", 2: (39.0, 54.0, 26.0), 3: "E", 4: (116.0, 23.0, 29.0)}  # GPS
    return exif


def pdf() -> bytes:
    from pypdf import PdfWriter

    buffer = io.BytesIO()
    writer = PdfWriter()
    writer.add_blank_page(width=595, height=842)
    writer.write(buffer)
    return buffer.getvalue()


def pixel_bomb() -> bytes:
    """90 million pixels in a few kilobytes: more than twice Pillow's limit as we set it."""
    buffer = io.BytesIO()
    Image.new("1", (10_000, 9_000)).save(buffer, format="PNG")
    return buffer.getvalue()


_colours = itertools.count(1)


def fresh_png() -> h.Upload:
    """A photo whose stored file is not in the upload folder yet."""
    return h.Upload(h.png_bytes(f"#{next(_colours):06x}"), "good.png", "image/png")


HTML = b"<!doctype html><html><script>alert(document.cookie)</script></html>"
EXE = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff" + bytes(500)
SVG = (b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)">'
       b"<script>alert(1)</script></svg>")
ZIP = _zip({"payload.exe": "MZ"})


def attachment_files() -> list[h.Upload]:
    """Files no photo or document field may keep."""
    return [
        h.Upload(b"\xff\xd8\xff\xe0" + bytes(LIMIT), "big.jpg", "image/jpeg"),
        h.Upload(b"", "empty.jpg", "image/jpeg"),
        h.Upload(HTML, "photo.jpg", "image/jpeg"),
        h.Upload(EXE, "photo.jpg", "image/jpeg"),
        h.Upload(b"GIF89a" + HTML, "photo.jpg", "image/jpeg"),
        h.Upload(SVG, "drawing.svg", "image/svg+xml"),
        h.Upload(SVG, "photo.png", "image/png"),
        h.Upload(ZIP, "minutes.pdf", "application/pdf"),
        h.Upload(b"%PDF-1.4\n" + ZIP, "minutes.pdf", "application/pdf"),
        h.Upload(b"%PDF-1.7\n" + HTML, "minutes.pdf", "application/pdf"),
        h.Upload(b"\xff\xd8\xff\xe0\x00\x10JFIF" + b"cut off" * 20, "photo.jpg", "image/jpeg"),
        h.Upload(pixel_bomb(), "photo.png", "image/png"),
    ]


def table_files() -> list[h.Upload]:
    """Files the households import must refuse."""
    header = "building,unit,floor,room,area_m2,owner_name,owner_key\n"
    return [
        h.Upload((header + "1号楼,1,1,101,80.00,王,k\n" * (LIMIT // 20)).encode(),
                 "households.csv", "text/csv"),
        h.Upload(b"", "households.csv", "text/csv"),
        h.Upload(EXE, "households.csv", "text/csv"),
        h.Upload(HTML, "households.xlsx", "application/vnd.ms-excel"),
        h.Upload(ZIP, "households.xlsx", "application/vnd.ms-excel"),
        h.Upload(_zip({"[Content_Types].xml": "<Types", "xl/workbook.xml": "<<<"}),
                 "households.xlsx", "application/vnd.ms-excel"),
        h.Upload(pdf(), "households.csv", "text/csv"),
        h.Upload(_image("PNG"), "households.csv", "text/csv"),
    ]


def good_files(field: UploadField) -> list[h.Upload]:
    """Files the field takes: a households table, a ballots table of the vote's roll, or a
    photo (and a PDF where documents go)."""
    if field.rule.endpoint == "ballots.import_file":
        consultation = db.session.get(Consultation, field.args["consultation_id"])
        entry = db.session.scalars(sa.select(RollEntry).where(
            RollEntry.consultation_id == consultation.id,
            RollEntry.round == consultation.round).order_by(RollEntry.id)).first()
        rows = "".join(f"{entry.building_name},{entry.unit},{entry.room},{item.number},同意,书面\n"
                       for item in consultation.items)
        return [h.Upload(("楼栋,单元,房号,议项,表决意见,方式\n" + rows).encode(), "ballots.csv",
                         "text/csv")]
    if field.rule.endpoint == "registry.import_grids":
        return [h.Upload(h.GRIDS_FILE, "grids.csv", "text/csv")]
    if field.kind == "table":
        return [h.Upload("building,unit,floor,room,area_m2,owner_name,owner_key\n"
                         "1号楼,9,9,909,80.00,王,k909\n".encode(), "households.csv",
                         "text/csv")]
    return [h.Upload(h.png_bytes(), "photo.png", "image/png")] + (
        [h.Upload(pdf(), "minutes.pdf", "application/pdf")] if field.kind == "document" else [])


# --- the fields -------------------------------------------------------------------------------


@dataclass
class UploadField:
    rule: Rule
    method: str
    role: str
    args: dict[str, Any]
    form: h.Form
    name: str

    @property
    def route(self) -> str:
        return f"{self.rule.endpoint}.{self.name}"

    @property
    def kind(self) -> str:
        """"table" (the households import), "photo" (pictures only) or "document" (pictures
        or PDF)."""
        if self.rule.endpoint in TABLE_UPLOADS:
            return "table"
        accept = self.form.fields[self.name].accept
        return "photo" if "image" in accept and "pdf" not in accept else "document"

    def pairs(self, files: list[h.Upload], empty_others: bool = False
              ) -> list[tuple[str, Any]]:
        """The form as a careful user fills it in (or with every other field left empty),
        with ``files`` in this field."""
        values = {n: [] if empty_others else v
                  for n, v in h.baselines(self.form, self.args, self.rule.endpoint).items()
                  if self.form.fields[n].kind != "file"}
        if not empty_others:
            values.update(CONTEXT.get(self.rule.endpoint, {}))
        values[self.name] = list(files)
        return [(n, v) for n, vs in values.items() for v in vs]


def upload_fields(site: h.Site) -> list[UploadField]:
    found = []
    for rule in h.view_rules(site.app):
        for method in h.unsafe_methods(rule):
            role = h.role_for(site.app, rule.endpoint)
            args = site.world.args(rule.endpoint)
            form = site.find_form(rule, method, role, args)
            for name, f in (form.fields.items() if form else ()):
                if f.kind == "file":
                    found.append(UploadField(rule, method, role, args, form, name))
    assert {(u.rule.endpoint, u.name) for u in found} >= KNOWN
    return found


# --- what was stored --------------------------------------------------------------------------


def stored_files() -> set[Path]:
    root = uploads.upload_root()
    return {p for p in root.rglob("*") if p.is_file() and "print" not in p.parts} \
        if root.exists() else set()


def state() -> tuple[dict[str, int], set[Path]]:
    """Rows per table (the audit trail included) and the files in the upload folder; not the
    session rows, which the test's own sign-in before each upload writes."""
    counts = {t.name: db.session.scalar(sa.select(sa.func.count()).select_from(t)) or 0
              for t in db.metadata.sorted_tables if t.name != "user_session"}
    return counts, stored_files()


def post(site: h.Site, field: UploadField, files: list[h.Upload],
         empty_others: bool = False) -> Any:
    site.browser(field.role, LOCALE)
    return site.send(h.build_url(field.rule, field.args), field.method,
                     field.pairs(files, empty_others), multipart=True)


_HAN = re.compile(r"[\u4e00-\u9fff]")


def told_why(response: Any) -> list[str]:
    """What is wrong with a refusal's page: it must be in the user's language and say why."""
    problems = h.check_response(response, LOCALE, "refusal")
    html = response.get_data(as_text=True)
    alerts = re.findall(r'role="alert"[^>]*>(.*?)</div>', html, re.S)
    if response.status_code != 413 and not any(_HAN.search(a) for a in alerts):
        problems.append("no reason in the user's language")
    return problems


# --- the tests --------------------------------------------------------------------------------


def test_files_too_large_or_not_what_they_claim_are_refused_and_nothing_is_stored(site):
    failures: list[str] = []
    tried = 0
    for field in upload_fields(site):
        bad = table_files() if field.kind == "table" else attachment_files()
        if field.kind == "photo":
            bad.append(h.Upload(pdf(), "scan.pdf", "application/pdf"))
        for upload in bad:
            with site.rolled_back():
                before = state()
                response = post(site, field, [upload])
                tried += 1
                what = f"{field.route} with {upload.filename} ({upload.data[:12]!r})"
                if response.status_code >= 500 or 300 <= response.status_code < 400:
                    failures.append(f"{what}: {response.status_code}")
                    continue
                failures += [f"{what}: {p}" for p in told_why(response)]
                if state() != before:
                    failures.append(f"{what}: something was stored")
        # A good file beside a bad one, or in a form refused for its other fields: all or
        # nothing, also on disk.
        if field.kind != "table":
            fresh = [fresh_png(), fresh_png()]
            with site.rolled_back():
                before = state()
                if field.form.fields[field.name].multiple:
                    post(site, field, [fresh[0], h.Upload(HTML, "bad.jpg", "image/jpeg")])
                    if state() != before:
                        failures.append(f"{field.route}: a good file was kept beside a bad one")
                response = post(site, field, [fresh[1]], empty_others=True)
                if response.status_code != 302 and state() != before:
                    failures.append(f"{field.route}: a refused form kept its file")
        # The same form with a real file is accepted: the refusals were the files' doing.
        for upload in good_files(field):
            with site.rolled_back():
                counts, _files = state()
                response = post(site, field, [upload])
                grown = [t for t, n in state()[0].items() if n > counts[t]]
                if field.rule.endpoint in PREVIEWED:
                    if response.status_code != 200 or grown:
                        failures.append(f"{field.route}: a real {upload.filename} was not "
                                        f"previewed ({response.status_code}, {grown})")
                    continue
                model = Household if field.kind == "table" else Attachment
                if response.status_code != 302 or model.__tablename__ not in grown:
                    failures.append(f"{field.route}: a real {upload.filename} was not "
                                    f"accepted ({response.status_code})")
    assert not failures, "\n".join(failures)
    assert tried > 80


def test_a_request_over_the_size_limit_gets_a_413_page_and_changes_nothing(site):
    failures = []
    for field in upload_fields(site):
        with site.rolled_back():
            before = state()
            response = post(site, field, [h.Upload(bytes(REQUEST_LIMIT), "big.png",
                                                   "image/png")])
            if response.status_code != 413:
                failures.append(f"{field.route}: {response.status_code}")
            failures += [f"{field.route}: {p}" for p in h.check_response(
                response, LOCALE, "413")]
            if state() != before:
                failures.append(f"{field.route}: something was stored")
    assert not failures, "\n".join(failures)


def _assert_clean(data: bytes, where: str) -> None:
    assert MARKER not in data and b"Exif" not in data and b"GPS" not in data, where
    with Image.open(io.BytesIO(data)) as image:
        assert not image.getexif(), where
        assert not image.info.get("exif") and "comment" not in image.info, where


def test_accepted_photos_keep_no_metadata(site, client):
    from PIL.PngImagePlugin import PngInfo

    text = PngInfo()
    text.add_text("Comment", f"{MARKER.decode()} GPS 39.9,116.4")
    photos = [h.Upload(_image("JPEG", exif=_exif()), "IMG_0001.JPG", "image/jpeg"),
              h.Upload(_image("PNG", exif=_exif(), pnginfo=text), "screen.png", "image/png"),
              h.Upload(_image("WEBP", exif=_exif()), "photo.webp", "image/webp")]
    for photo in photos:  # the files really carry what must go
        assert MARKER in photo.data
    checked = 0
    for field in upload_fields(site):
        if field.kind == "table":
            continue
        for photo in photos:
            with site.rolled_back():
                newest = db.session.scalar(sa.select(sa.func.max(Attachment.id))) or 0
                response = post(site, field, [photo])
                assert response.status_code == 302, (field.route, photo.filename)
                stored = db.session.scalars(sa.select(Attachment).where(
                    Attachment.id > newest)).all()
                assert [a.mimetype for a in stored] == ["image/jpeg"], field.route
                _assert_clean(uploads.read(stored[0]), f"{field.route}: {photo.filename}")
                site.browser("admin", LOCALE)
                served = client.get(f"/files/{stored[0].id}")
                assert served.status_code == 200 and served.mimetype == "image/jpeg"
                _assert_clean(served.get_data(), f"{field.route}: /files/{stored[0].id}")
                checked += 1
    assert checked >= 3 * (len(KNOWN) - len(TABLE_UPLOADS))


@pytest.mark.parametrize("command", ["ballots import", "registry import-households"])
def test_imports_from_the_command_line_refuse_files_that_are_not_tables(site, runner,
                                                                       tmp_path, command):
    voting = db.session.get(Consultation, site.world.stages["voting"]["consultation_id"])
    for upload in table_files()[1:]:  # a big file is the operator's own choice on the server
        path = tmp_path / upload.filename
        path.write_bytes(upload.data)
        args = [*command.split(), str(voting.id), str(path)] if command == "ballots import" else [
            *command.split(), str(path), "--compound", voting.compound.name]
        ballots = db.session.scalar(sa.select(sa.func.count()).select_from(Ballot))
        households = db.session.scalar(sa.select(sa.func.count()).select_from(Household))
        result = runner.invoke(args=args)
        assert result.exit_code == 1, (upload.filename, result.output, result.exception)
        assert result.exception is None or isinstance(result.exception, SystemExit), (
            upload.filename, result.exception)
        assert result.output.strip(), upload.filename
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Ballot)) == ballots
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Household)) == (
            households)
