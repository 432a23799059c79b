"""The proposal's papers (plans, drawings, quotes) on the proposal and on its items, and a
household's share of a cost split by floor area."""

import io
import re

import pytest
from sqlalchemy import func, select
from werkzeug.datastructures import FileStorage

from consult.ballots import shares
from consult.consultations import papers, service
from consult.consultations.models import consultation_attachment, item_attachment
from consult.core.errors import Conflict, ValidationFailed
from consult.extensions import db
from consult.uploads.models import Attachment
from tests import factories
from tests.access.uploads import png_upload
from tests.conftest import audit_actions
from tests.consultations.test_meetings import _pdf

EN = {"Accept-Language": "en"}
SHARE = "Your household's share by floor area: about ¥"


def _count(table) -> int:
    return db.session.scalar(select(func.count()).select_from(table)) or 0


@pytest.fixture
def proposing(compound):
    return factories.make_consultation(compound, stage="proposing")


def _upload(client, consultation, **data):
    return client.post(f"/consultations/{consultation.id}/attachments", data=data,
                       content_type="multipart/form-data", headers=EN)


def test_committee_attaches_papers_to_the_proposal_and_everyone_reads_them(
        client, login_as, proposing, compound):
    login_as("committee", compound=compound)
    assert client.get(f"/consultations/{proposing.id}/attachments").status_code == 200
    r = _upload(client, proposing, files=[_pdf("改造方案.pdf"), png_upload("效果图.png")])
    assert r.status_code == 302, r.text
    assert sorted(a.filename for a in proposing.attachments) == ["改造方案.pdf", "效果图.jpg"]
    pdf = next(a for a in proposing.attachments if a.mimetype == "application/pdf")
    assert audit_actions() == ["consultation.attachment_added"] * 2
    client.post("/logout")
    login_as("resident", household=compound.buildings[0].households[0])
    page = client.get(f"/consultations/{proposing.id}", headers=EN).text
    assert "改造方案.pdf" in page and f"/files/{pdf.id}" in page
    assert f"PDF · {pdf.size_label}" in page and "KB" in pdf.size_label
    download = client.get(f"/files/{pdf.id}")
    assert download.status_code == 200 and download.data.startswith(b"%PDF-")
    assert download.headers["Content-Disposition"].startswith("attachment;")


def test_files_of_an_item_come_with_its_form_and_show_on_its_page_and_ballot(
        client, login_as, proposing, compound):
    item = proposing.items[0]
    login_as("committee", compound=compound)
    url = f"/consultations/{proposing.id}/items/{item.id}/edit"
    r = client.post(url, data={"title": item.title, "description": item.description,
                               "cost": "1000", "files": [_pdf("报价单.pdf")]},
                    content_type="multipart/form-data")
    assert r.status_code == 302, r.text
    [quote] = item.attachments
    assert audit_actions() == ["consultation.attachment_added"]
    page = client.get(f"/consultations/{proposing.id}/items/{item.id}", headers=EN).text
    assert "报价单.pdf" in page and f"/files/{quote.id}" in page
    assert "1 attachment" in client.get(f"/consultations/{proposing.id}", headers=EN).text
    # A new item takes its files at once.
    r = client.post(f"/consultations/{proposing.id}/items/new",
                    data={"title": "围墙", "cost": "500", "files": [png_upload()]},
                    content_type="multipart/form-data")
    assert r.status_code == 302 and len(proposing.items[-1].attachments) == 1
    factories.walk_to(proposing, "voting")
    client.post("/logout")
    login_as("resident", household=compound.buildings[0].households[0])
    vote = client.get(f"/consultations/{proposing.id}/vote", headers=EN).text
    assert f"/items/{item.id}#item-attachments-heading" in vote and "1 attachment" in vote


def test_removing_a_file_takes_it_off_and_is_audited(client, login_as, proposing, compound):
    kept, gone = (papers.change(None, proposing, [_pdf("方案.pdf"), _pdf("旧图纸.pdf")]))
    login_as("committee", compound=compound)
    form = client.get(f"/consultations/{proposing.id}/attachments").text
    assert f'name="remove" value="{gone.id}"' in form
    assert _upload(client, proposing, remove=[str(gone.id)]).status_code == 302
    assert proposing.attachments == [kept]
    assert audit_actions()[-1] == "consultation.attachment_removed"
    assert "旧图纸.pdf" not in client.get(f"/consultations/{proposing.id}").text
    item = proposing.items[0]
    [photo] = papers.change(None, item, [png_upload()])
    papers.change(None, item, remove_ids=[photo.id])
    assert item.attachments == [] and _count(item_attachment) == 0
    with pytest.raises(ValidationFailed) as exc:  # not one of this item's files
        papers.change(None, item, remove_ids=[kept.id])
    assert "remove" in exc.value.errors


def test_a_bad_type_or_an_oversized_file_stores_nothing(app, client, login_as, proposing,
                                                        compound):
    login_as("committee", compound=compound)
    r = _upload(client, proposing,
                files=[_pdf(), FileStorage(io.BytesIO(b"PK\x03\x04zip"), "报价.docx")])
    assert r.status_code == 400 and "报价.docx" in r.text
    limit = app.config["UPLOAD_MAX_BYTES"]
    app.config["UPLOAD_MAX_BYTES"] = 100
    try:
        r = _upload(client, proposing, files=[_pdf("大图纸.pdf")])
    finally:
        app.config["UPLOAD_MAX_BYTES"] = limit
    assert r.status_code == 400 and "大图纸.pdf" in r.text and "larger than" in r.text
    assert _count(Attachment) == 0 and _count(consultation_attachment) == 0
    assert audit_actions() == []


def test_papers_are_fixed_once_the_vote_opens(client, login_as, proposing, compound):
    [plan] = papers.change(None, proposing, [_pdf()])
    factories.walk_to(proposing, "voting")
    login_as("committee", compound=compound)
    assert client.get(f"/consultations/{proposing.id}/attachments").status_code == 409
    assert _upload(client, proposing, files=[png_upload()]).status_code == 409
    assert _upload(client, proposing, remove=[str(plan.id)]).status_code == 409
    with pytest.raises(Conflict):
        papers.change(None, proposing.items[0], [png_upload()])
    assert proposing.attachments == [plan]
    show = client.get(f"/consultations/{proposing.id}", headers=EN).text
    assert f"/files/{plan.id}" in show and "Add or remove attachments" not in show


def test_residents_neither_upload_nor_see_a_drafts_papers(client, login_as, compound):
    draft = factories.make_consultation(compound, stage="draft")
    [plan] = papers.change(None, draft, [_pdf()])
    [photo] = papers.change(None, draft.items[0], [png_upload()])
    login_as("resident", household=compound.buildings[0].households[0])
    assert _upload(client, draft, files=[png_upload()]).status_code == 403
    r = client.post(f"/consultations/{draft.id}/items/{draft.items[0].id}/edit",
                    data={"title": "x", "files": [png_upload()]},
                    content_type="multipart/form-data")
    assert r.status_code == 403
    assert client.get(f"/files/{plan.id}").status_code == 404
    assert client.get(f"/files/{photo.id}").status_code == 404
    assert _count(Attachment) == 2


def test_the_cost_split_by_area_is_set_on_the_item_form_and_kept_in_the_revision(
        client, login_as, proposing, compound):
    login_as("committee", compound=compound)
    r = client.post(f"/consultations/{proposing.id}/items/new", data={
        "title": "屋面防水", "cost": "12,345.67", "cost_split_by_area": "y"})
    assert r.status_code == 302
    item = proposing.items[-1]
    assert item.cost_split_by_area and item.estimated_cost_fen == 1_234_567
    lines = service.revision_lines(service.latest_revision(proposing))
    assert ("The cost is shared by the households in proportion to their floor area."
            in lines)
    form = client.get(f"/consultations/{proposing.id}/items/{item.id}/edit").text
    [box] = re.findall(r'<input[^>]*id="cost_split_by_area"[^>]*>', form)
    assert "checked" in box


def _split(consultation, cost_fen=1_234_567):
    item = consultation.items[0]
    service.update_item(None, item, service.item_data(
        title=item.title, description=item.description,
        cost=service.format_money(cost_fen), split_by_area=True))
    return item


def test_a_household_sees_its_share_and_another_compounds_does_not(client, login_as,
                                                                 proposing, compound):
    item = _split(proposing)
    # 8 households of 60 to 63 m², 492 m² in all; this one has 60 m².
    mine = compound.buildings[0].households[0]
    assert mine.area_dm2 == 6000
    assert shares.household_shares(proposing, mine) == {item.id: 150_557}
    login_as("resident", household=mine)
    page = client.get(f"/consultations/{proposing.id}/items/{item.id}", headers=EN).text
    assert SHARE + "1,505.57" in page
    other = proposing.items[1]
    assert SHARE not in client.get(f"/consultations/{proposing.id}/items/{other.id}",
                                   headers=EN).text  # not split
    client.post("/logout")
    elsewhere = factories.make_compound_with_households(per_building=1)
    login_as("resident", household=elsewhere.buildings[0].households[0])
    page = client.get(f"/consultations/{proposing.id}/items/{item.id}", headers=EN).text
    assert r"Shared by the households in proportion" in page and SHARE not in page
    assert shares.household_shares(proposing, elsewhere.buildings[0].households[0]) == {}
    client.post("/logout")
    login_as("committee", compound=compound)
    assert SHARE not in client.get(f"/consultations/{proposing.id}/items/{item.id}",
                                   headers=EN).text


def test_the_share_follows_the_scope_then_the_roll(client, login_as, proposing, compound):
    item = _split(proposing)
    first, second = compound.buildings
    service.set_scope(None, proposing, [(first.id, None)])  # 4 households, 246 m²
    mine, outside = first.households[0], second.households[0]
    assert shares.household_shares(proposing, mine) == {item.id: 301_114}
    assert shares.household_shares(proposing, outside) == {}
    factories.walk_to(proposing, "voting")
    mine.area_dm2 = 12_000  # the registry changes; the frozen roll does not
    db.session.flush()
    assert shares.household_shares(proposing, mine) == {item.id: 301_114}
    login_as("resident", household=mine)
    vote = client.get(f"/consultations/{proposing.id}/vote", headers=EN).text
    assert SHARE + "3,011.14" in vote
