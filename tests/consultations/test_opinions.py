"""一征: submitting, recording, supporting, sorting, merging and linking opinions."""

import io
import re

import pytest
from sqlalchemy import func, select
from werkzeug.datastructures import FileStorage

from consult.consultations import opinions
from consult.consultations.models import Opinion, OpinionSupport
from consult.core.errors import Conflict, PermissionDenied, ValidationFailed
from consult.extensions import db
from consult.uploads.models import Attachment
from tests import factories
from tests.access.uploads import png_upload
from tests.conftest import audit_actions

EN = {"Accept-Language": "en"}


def _count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model)) or 0


@pytest.fixture
def soliciting(compound):
    return factories.make_consultation(compound, stage="soliciting")


def _households(compound):
    return [h for b in compound.buildings for h in b.households]


def _opinion(consultation, household, text="水管老化，经常漏水", category="pipes"):
    return opinions.submit(None, consultation, household,
                           opinions.opinion_data(category=category, text=text))


def _support_count(opinion) -> int:
    return opinions.support_counts([opinion.id]).get(opinion.id, 0)


# --- service ----------------------------------------------------------------------------------


def test_opinion_data_checks_category_and_length():
    with pytest.raises(ValidationFailed) as exc:
        opinions.opinion_data(category="nonsense", text="  ")
    assert set(exc.value.errors) == {"category", "text"}
    with pytest.raises(ValidationFailed) as exc:
        opinions.opinion_data(category="roads", text="x" * 2001)
    assert "2000" in exc.value.errors["text"][0]
    data = opinions.opinion_data(category="roads", text="  路面坑洼\r\n下雨积水  ")
    assert data.text == "路面坑洼\n下雨积水"


def test_submit_records_an_online_opinion_without_personal_data(soliciting, compound):
    household = compound.buildings[0].households[0]
    opinion = _opinion(soliciting, household)
    assert (opinion.channel, opinion.household_id, opinion.category) == (
        "online", household.id, "pipes")
    assert audit_actions() == ["opinion.submitted"]
    from consult.audit.models import AuditEvent

    payload = db.session.scalars(select(AuditEvent.payload)).one()
    assert household.owner_name not in payload and "13812345678" not in payload
    assert "水管" not in payload  # the text is kept as a digest only


@pytest.mark.parametrize("stage", ["draft", "proposing", "discussing", "voting", "closed"])
def test_opinions_are_taken_only_while_soliciting(compound, stage):
    consultation = factories.make_consultation(compound, stage=stage)
    with pytest.raises(Conflict):
        _opinion(consultation, compound.buildings[0].households[0])
    assert _count(Opinion) == 0 and audit_actions() == []


def test_household_outside_the_scope_cannot_submit(soliciting, compound):
    from consult.consultations import service

    service.set_scope(None, soliciting, [(compound.buildings[0].id, None)])
    outsider = compound.buildings[1].households[0]
    with pytest.raises(PermissionDenied):
        _opinion(soliciting, outsider)


def test_support_counts_once_and_never_for_oneself(soliciting, compound):
    author, fan = _households(compound)[:2]
    opinion = _opinion(soliciting, author)
    assert opinions.support(None, opinion, fan) is True
    assert opinions.support(None, opinion, fan) is False  # already counted, nothing written
    assert _support_count(opinion) == 1
    with pytest.raises(Conflict):
        opinions.support(None, opinion, author)
    assert audit_actions() == ["opinion.submitted", "opinion.supported"]


def test_the_database_refuses_a_second_support():
    from sqlalchemy.exc import IntegrityError

    compound = factories.make_compound_with_households()
    consultation = factories.make_consultation(compound, stage="soliciting")
    author, fan = _households(compound)[:2]
    opinion = _opinion(consultation, author)
    db.session.add(OpinionSupport(opinion_id=opinion.id, household_id=fan.id))
    db.session.flush()
    with pytest.raises(IntegrityError), db.session.begin_nested():
        db.session.add(OpinionSupport(opinion_id=opinion.id, household_id=fan.id))


def test_support_is_closed_after_soliciting(soliciting, compound):
    author, fan = _households(compound)[:2]
    opinion = _opinion(soliciting, author)
    soliciting.stage = "proposing"
    with pytest.raises(Conflict):
        opinions.support(None, opinion, fan)


def test_merge_moves_supports_without_counting_a_household_twice(soliciting, compound):
    a, b, c, d, e = _households(compound)[:5]
    target = _opinion(soliciting, a, "小区没有充电桩")
    duplicate = _opinion(soliciting, b, "希望装电动车充电桩")
    earlier = _opinion(soliciting, e, "充电桩")
    for household in (c, d):
        opinions.support(None, duplicate, household)
    opinions.support(None, target, c)           # c supports both: counted once
    opinions.support(None, duplicate, a)        # the target's own author: not a support
    opinions.merge(None, earlier, duplicate.id)  # a duplicate of the duplicate
    item = soliciting.items[0]
    opinions.set_item_opinions(None, item, [duplicate.id])
    opinions.merge(None, duplicate, target.id)
    households = set(db.session.scalars(select(OpinionSupport.household_id).where(
        OpinionSupport.opinion_id == target.id)))
    assert households == {c.id, d.id, b.id, e.id}  # the duplicates' writers count too
    assert _support_count(duplicate) == 0 and duplicate.merged_into_id == target.id
    assert earlier.merged_into_id == target.id
    db.session.expire_all()
    assert [o.id for o in item.opinions] == [target.id]
    assert audit_actions().count("opinion.merged") == 2
    with pytest.raises(Conflict):
        opinions.merge(None, duplicate, target.id)
    with pytest.raises(ValidationFailed):
        opinions.merge(None, target, target.id)
    with pytest.raises(ValidationFailed):
        opinions.merge(None, target, earlier.id)  # merged itself: point at its target


def test_merge_refuses_an_opinion_of_another_consultation(soliciting, compound):
    other = factories.make_consultation(compound, stage="soliciting")
    mine = _opinion(soliciting, compound.buildings[0].households[0])
    theirs = _opinion(other, compound.buildings[0].households[1])
    with pytest.raises(ValidationFailed):
        opinions.merge(None, mine, theirs.id)
    assert mine.merged_into_id is None


def test_categorise_records_the_change_once(soliciting, compound):
    opinion = _opinion(soliciting, compound.buildings[0].households[0])
    opinions.categorise(None, opinion, "roads")
    opinions.categorise(None, opinion, "roads")
    assert opinion.category == "roads"
    assert audit_actions() == ["opinion.submitted", "opinion.categorised"]
    with pytest.raises(ValidationFailed):
        opinions.categorise(None, opinion, "<script>")


def test_offline_data_finds_the_household_by_address(soliciting, compound):
    building = compound.buildings[1]
    household = building.households[0]
    values = opinions.offline_data(soliciting, category="lighting", text="路灯坏了",
                                   channel="door_to_door", building_id=building.id,
                                   unit="1单元", room=f"{household.room}室")
    assert values.household == household
    anonymous = opinions.offline_data(soliciting, category="security", text="门卫不在岗",
                                      channel="hotline", building_id=None, unit="", room="")
    assert anonymous.household is None
    with pytest.raises(ValidationFailed) as exc:
        opinions.offline_data(soliciting, category="", text="", channel="online",
                              building_id=building.id, unit="1", room="999")
    assert set(exc.value.errors) == {"category", "text", "channel", "room"}
    elsewhere = factories.make_compound_with_households()
    with pytest.raises(ValidationFailed) as exc:
        opinions.offline_data(soliciting, category="roads", text="x", channel="hotline",
                              building_id=elsewhere.buildings[0].id, unit="1", room="101")
    assert "building_id" in exc.value.errors


def test_summary_counts_by_category_and_building(soliciting, compound):
    h = _households(compound)
    first = _opinion(soliciting, h[0], category="pipes")
    dup = _opinion(soliciting, h[4], category="pipes")
    _opinion(soliciting, h[1], category="roads")
    opinions.record_offline(None, soliciting, opinions.offline_data(
        soliciting, category="roads", text="电话反映", channel="hotline", building_id=None,
        unit="", room=""))
    opinions.support(None, first, h[2])
    opinions.merge(None, dup, first.id)
    result = opinions.summary(soliciting)
    assert [(r.category, r.opinions, r.supports) for r in result.by_category] == [
        ("roads", 2, 0), ("pipes", 1, 2)]
    assert [(r.building, r.opinions, r.households) for r in result.by_building] == [
        ("1号楼", 2, 2), ("2号楼", 1, 1), ("", 1, 0)]
    assert (result.received, result.merged, result.supports, result.households) == (4, 1, 2, 3)


def test_linking_opinions_to_an_item(soliciting, compound):
    item = soliciting.items[0]
    a = _opinion(soliciting, compound.buildings[0].households[0])
    b = _opinion(soliciting, compound.buildings[0].households[1])
    opinions.set_item_opinions(None, item, [a.id, b.id])
    opinions.set_item_opinions(None, item, [b.id, a.id])  # the same set: nothing written
    assert {o.id for o in item.opinions} == {a.id, b.id}
    assert audit_actions()[-1] == "consultation.item_opinions_set"
    assert audit_actions().count("consultation.item_opinions_set") == 1
    foreign = _opinion(factories.make_consultation(compound, stage="soliciting"),
                       compound.buildings[1].households[0])
    with pytest.raises(ValidationFailed):
        opinions.set_item_opinions(None, item, [a.id, foreign.id])
    soliciting.stage = "voting"
    with pytest.raises(Conflict):
        opinions.set_item_opinions(None, item, [a.id])


# --- views ------------------------------------------------------------------------------------


def test_resident_submits_an_opinion_with_a_photo(client, login_as, soliciting, compound):
    household = compound.buildings[0].households[0]
    login_as("resident", household=household)
    form = client.get(f"/consultations/{soliciting.id}/opinions/new")
    assert form.status_code == 200 and household.owner_name not in form.text
    r = client.post(f"/consultations/{soliciting.id}/opinions/new", data={
        "category": "pipes", "text": "<b>漏水</b> 严重", "photo": png_upload()},
        content_type="multipart/form-data")
    assert r.status_code == 302
    opinion = db.session.scalars(select(Opinion)).one()
    assert opinion.photo is not None and opinion.photo.mimetype == "image/jpeg"
    assert audit_actions() == ["opinion.submitted"]
    page = client.get(f"/consultations/{soliciting.id}/opinions", headers=EN).text
    assert "&lt;b&gt;漏水&lt;/b&gt; 严重" in page and "<b>漏水</b>" not in page
    assert household.label in page and household.owner_name not in page
    assert "13812345678" not in page


@pytest.mark.parametrize("upload", [
    FileStorage(io.BytesIO(b"%PDF-1.4 not a photo"), "scan.pdf", content_type="application/pdf"),
    FileStorage(io.BytesIO(b"MZ\x90\x00 executable"), "photo.jpg", content_type="image/jpeg"),
])
def test_a_non_image_is_refused_and_nothing_is_stored(client, login_as, soliciting, compound,
                                                     upload):
    login_as("resident", household=compound.buildings[0].households[0])
    r = client.post(f"/consultations/{soliciting.id}/opinions/new", data={
        "category": "pipes", "text": "看照片", "photo": upload},
        content_type="multipart/form-data", headers=EN)
    assert r.status_code == 400 and "Upload a photo (JPEG, PNG or WebP)." in r.text
    assert _count(Opinion) == 0 and _count(Attachment) == 0 and audit_actions() == []


def test_an_oversized_photo_is_refused(client, login_as, app, soliciting, compound):
    login_as("resident", household=compound.buildings[0].households[0])
    limit = app.config["UPLOAD_MAX_BYTES"]
    app.config["UPLOAD_MAX_BYTES"] = 10
    try:
        r = client.post(f"/consultations/{soliciting.id}/opinions/new", data={
            "category": "pipes", "text": "看照片", "photo": png_upload()},
            content_type="multipart/form-data", headers=EN)
    finally:
        app.config["UPLOAD_MAX_BYTES"] = limit
    assert r.status_code == 400 and "larger than" in r.text
    assert _count(Opinion) == 0 and _count(Attachment) == 0


def test_an_invalid_text_stores_no_photo(client, login_as, soliciting, compound):
    login_as("resident", household=compound.buildings[0].households[0])
    r = client.post(f"/consultations/{soliciting.id}/opinions/new", data={
        "category": "pipes", "text": "   ", "photo": png_upload()},
        content_type="multipart/form-data", headers=EN)
    assert r.status_code == 400 and "This field is required." in r.text
    assert _count(Attachment) == 0


def test_opinion_form_refuses_outside_soliciting(client, login_as, compound):
    consultation = factories.make_consultation(compound, stage="proposing")
    login_as("resident", household=compound.buildings[0].households[0])
    r = client.post(f"/consultations/{consultation.id}/opinions/new",
                    data={"category": "pipes", "text": "晚了"}, headers=EN)
    assert r.status_code == 409 and "only while" in r.text
    assert _count(Opinion) == 0 and audit_actions() == []


def test_household_out_of_scope_is_refused(client, login_as, soliciting, compound):
    from consult.consultations import service

    service.set_scope(None, soliciting, [(compound.buildings[0].id, None)])
    login_as("resident", household=compound.buildings[1].households[0])
    r = client.post(f"/consultations/{soliciting.id}/opinions/new",
                    data={"category": "pipes", "text": "我也想说"})
    assert r.status_code == 403 and _count(Opinion) == 0


def test_support_once_then_told_it_was_counted(client, login_as, soliciting, compound):
    opinion = _opinion(soliciting, compound.buildings[0].households[0])
    login_as("resident", household=compound.buildings[0].households[1])
    url = f"/consultations/{soliciting.id}/opinions/{opinion.id}/support"
    first = client.post(url, headers=EN, follow_redirects=True)
    assert "is counted" in first.text
    second = client.post(url, headers=EN, follow_redirects=True)
    assert "already counted" in second.text
    assert _support_count(opinion) == 1
    assert audit_actions() == ["opinion.submitted", "opinion.supported"]


def test_own_opinion_cannot_be_supported(client, login_as, soliciting, compound):
    household = compound.buildings[0].households[0]
    opinion = _opinion(soliciting, household)
    login_as("resident", household=household)
    page = client.get(f"/consultations/{soliciting.id}/opinions", headers=EN).text
    assert "Your household's opinion" in page and "I support this" not in page
    r = client.post(f"/consultations/{soliciting.id}/opinions/{opinion.id}/support")
    assert r.status_code == 409 and _support_count(opinion) == 0


def test_support_of_another_consultations_opinion_is_refused(client, login_as, soliciting,
                                                            compound):
    other = factories.make_consultation(compound, stage="soliciting")
    opinion = _opinion(other, compound.buildings[0].households[0])
    login_as("resident", household=compound.buildings[0].households[1])
    r = client.post(f"/consultations/{soliciting.id}/opinions/{opinion.id}/support")
    assert r.status_code == 404 and _support_count(opinion) == 0


def test_list_sorts_by_support_and_filters_by_category(client, login_as, soliciting, compound):
    h = _households(compound)
    quiet = _opinion(soliciting, h[0], "路灯不亮", "lighting")
    loud = _opinion(soliciting, h[1], "水管爆裂", "pipes")
    for household in h[2:5]:
        opinions.support(None, loud, household)
    text = client.get(f"/consultations/{soliciting.id}/opinions").text
    assert text.index(f'id="opinion-{loud.id}"') < text.index(f'id="opinion-{quiet.id}"')
    only = client.get(f"/consultations/{soliciting.id}/opinions?category=lighting").text
    assert f'id="opinion-{quiet.id}"' in only and f'id="opinion-{loud.id}"' not in only


def test_staff_see_channel_and_author_residents_do_not(client, login_as, soliciting, compound):
    clerk = factories.make_user("committee", compound=compound)
    clerk.display_name = "李红梅"
    opinions.record_offline(clerk, soliciting, opinions.offline_data(
        soliciting, category="roads", text="坑洼", channel="questionnaire", building_id=None,
        unit="", room=""))
    login_as("supervisor", compound=compound)
    staff_view = client.get(f"/consultations/{soliciting.id}/opinions", headers=EN).text
    assert "Questionnaire" in staff_view and "李红梅" in staff_view
    client.post("/logout")
    public = client.get(f"/consultations/{soliciting.id}/opinions", headers=EN).text
    assert "Questionnaire" not in public and "李红梅" not in public


def test_draft_opinions_are_hidden_from_the_public(client, compound):
    draft = factories.make_consultation(compound)
    assert client.get(f"/consultations/{draft.id}/opinions").status_code == 404


def test_committee_records_an_offline_opinion(client, login_as, soliciting, compound):
    login_as("committee", compound=compound)
    building = compound.buildings[0]
    household = building.households[0]
    r = client.post(f"/consultations/{soliciting.id}/opinions/record", data={
        "channel": "meeting", "building_id": building.id, "unit": "1", "room": household.room,
        "category": "greenery", "text": "绿化带被占用"})
    assert r.status_code == 302, r.text
    opinion = db.session.scalars(select(Opinion)).one()
    assert (opinion.channel, opinion.household_id) == ("meeting", household.id)
    assert audit_actions() == ["opinion.recorded"]
    r = client.post(f"/consultations/{soliciting.id}/opinions/record", data={
        "channel": "hotline", "building_id": 0, "unit": "", "room": "",
        "category": "security", "text": "匿名来电"})
    assert r.status_code == 302
    assert db.session.scalars(select(Opinion).where(Opinion.channel == "hotline")).one(
        ).household_id is None


def test_recording_another_keeps_the_channel_and_building(client, login_as, soliciting,
                                                         compound):
    login_as("committee", compound=compound)
    building = compound.buildings[1]
    household = building.households[0]
    r = client.post(f"/consultations/{soliciting.id}/opinions/record", data={
        "channel": "door_to_door", "building_id": building.id, "unit": household.unit,
        "room": household.room, "category": "greenery", "text": "绿化带被占用",
        "again": "1"})
    assert r.status_code == 302, r.text
    r = client.get(r.headers["Location"])
    assert _selected(r.text, "channel") == "door_to_door"
    assert _selected(r.text, "building_id") == str(building.id)
    # The next household's unit and room are typed anew.
    assert re.search(r'<input[^>]*id="room"[^>]*value="[^"]', r.text) is None
    # A channel the offline form does not offer is not preselected.
    r = client.get(f"/consultations/{soliciting.id}/opinions/record?channel=online")
    assert _selected(r.text, "channel") == ""


def _selected(html: str, select_id: str) -> str:
    """The value of the selected option of a <select> (WTForms marks it ``selected``)."""
    block = re.search(rf'<select[^>]*id="{select_id}"[^>]*>(.*?)</select>', html, re.S)
    assert block is not None
    found = re.search(r'<option[^>]*selected[^>]*value="([^"]*)"', block.group(1))
    return found.group(1) if found else ""


def test_offline_form_shows_errors_next_to_fields(client, login_as, soliciting, compound):
    login_as("committee", compound=compound)
    r = client.post(f"/consultations/{soliciting.id}/opinions/record", data={
        "channel": "hotline", "building_id": compound.buildings[0].id, "unit": "1",
        "room": "999", "category": "roads", "text": "x"}, headers=EN)
    assert r.status_code == 400 and 'id="room-error"' in r.text and "no room 999" in r.text
    assert _count(Opinion) == 0


def test_committee_elsewhere_cannot_record(client, login_as, soliciting):
    login_as("committee", compound=factories.make_compound("别处"))
    r = client.post(f"/consultations/{soliciting.id}/opinions/record", data={
        "channel": "hotline", "category": "roads", "text": "x", "building_id": 0})
    assert r.status_code == 403 and _count(Opinion) == 0


def test_committee_categorises_and_merges(client, login_as, soliciting, compound):
    a = _opinion(soliciting, compound.buildings[0].households[0])
    b = _opinion(soliciting, compound.buildings[0].households[1])
    login_as("committee", compound=compound)
    base = f"/consultations/{soliciting.id}/opinions"
    assert client.post(f"{base}/{a.id}/category", data={"category": "roads"}).status_code == 302
    assert a.category == "roads"
    bad = client.post(f"{base}/{b.id}/merge", data={"target": 999999}, headers=EN)
    assert bad.status_code == 400 and "no opinion #999999" in bad.text
    r = client.post(f"{base}/{b.id}/merge", data={"target": a.id})
    assert r.status_code == 302 and b.merged_into_id == a.id
    text = client.get(base, headers=EN).text
    assert f'href="/consultations/{soliciting.id}/opinions/{a.id}">#{a.id}</a>' in text
    assert "Merged into" in text
    assert audit_actions()[-2:] == ["opinion.categorised", "opinion.merged"]


def test_resident_cannot_merge(client, login_as, soliciting, compound):
    a = _opinion(soliciting, compound.buildings[0].households[0])
    b = _opinion(soliciting, compound.buildings[0].households[1])
    login_as("resident", household=compound.buildings[0].households[0])
    r = client.post(f"/consultations/{soliciting.id}/opinions/{b.id}/merge",
                    data={"target": a.id})
    assert r.status_code == 403 and b.merged_into_id is None


def test_summary_page_renders_tables(client, soliciting, compound):
    _opinion(soliciting, compound.buildings[0].households[0])
    text = client.get(f"/consultations/{soliciting.id}/opinions/summary", headers=EN).text
    assert "By category" in text and "1号楼" in text


def test_item_opinions_page_links_and_refuses_tampered_ids(client, login_as, soliciting,
                                                          compound):
    item = soliciting.items[0]
    a = _opinion(soliciting, compound.buildings[0].households[0])
    other = _opinion(factories.make_consultation(compound, stage="soliciting"),
                     compound.buildings[0].households[1])
    login_as("committee", compound=compound)
    url = f"/consultations/{soliciting.id}/items/{item.id}/opinions"
    assert a.text in client.get(url).text
    bad = client.post(url, data={"opinion_ids": [a.id, other.id]})
    assert bad.status_code == 400 and item.opinions == []
    r = client.post(url, data={"opinion_ids": [a.id]})
    assert r.status_code == 302 and [o.id for o in item.opinions] == [a.id]
    assert audit_actions()[-1] == "consultation.item_opinions_set"
    shown = client.get(f"/consultations/{soliciting.id}/items/{item.id}", headers=EN).text
    assert "from 1 opinion<" in shown
    listed = client.get(f"/consultations/{soliciting.id}/opinions?item={item.id}").text
    assert f'id="opinion-{a.id}"' in listed


def test_item_opinions_refused_once_voting(client, login_as, compound):
    consultation = factories.make_consultation(compound, stage="voting")
    item = consultation.items[0]
    login_as("committee", compound=compound)
    r = client.post(f"/consultations/{consultation.id}/items/{item.id}/opinions",
                    data={"opinion_ids": []})
    assert r.status_code == 409 and audit_actions() == []


def _pages(client, consultation, opinion, item, notice, headers):
    """Every public page showing who wrote something: the opinions, one opinion, an item's
    discussion, a notice's objections."""
    return {url: client.get(url, headers=headers).text for url in (
        f"/consultations/{consultation.id}/opinions",
        f"/consultations/{consultation.id}/opinions/{opinion.id}",
        f"/consultations/{consultation.id}/items/{item.id}",
        f"/notices/{notice.id}")}


def test_a_curious_neighbour_sees_the_building_of_an_opinion_never_its_unit_or_room(
        client, login_as, compound):
    """Visitors, other households and committee members of other compounds see which building
    an opinion, comment or objection came from, never the flat; the committee and supervisors
    of the compound (and the household itself) see it in full."""
    from consult.consultations.models import Comment
    from consult.notices import service as notices
    from consult.notices.models import NoticeKind, Objection

    author = compound.buildings[1].households[1]  # 2号楼, unit 1, room 102
    published = factories.make_consultation(compound, items=1)
    factories.walk_to(published, "resolution_public")
    notice = notices.current_notice(published, NoticeKind.RESOLUTION)
    db.session.add(Objection(notice=notice, household_id=author.id, text="不同意分摊方式"))
    opinion = Opinion(consultation_id=published.id, household_id=author.id, category="pipes",
                      text="楼道水管漏水")
    db.session.add(opinion)
    item = published.items[0]
    db.session.add(Comment(item_id=item.id, household_id=author.id, text="同意加装电梯"))
    db.session.flush()
    full, building = "2号楼, unit 1, room 102", "a household of 2号楼"

    def seen(**login) -> dict[str, str]:
        with client.session_transaction() as sess:
            sess.clear()
        if login:
            login_as(**login)
        return _pages(client, published, opinion, item, notice, EN)

    visitor = seen()  # not signed in: what curl gets
    neighbour = seen(role="resident", household=compound.buildings[0].households[0])
    elsewhere = seen(role="committee", compound=factories.make_compound("别的小区"))
    for who, pages in (("visitor", visitor), ("neighbour", neighbour),
                       ("committee elsewhere", elsewhere)):
        for url, html in pages.items():
            assert building in html, (who, url)
            assert full not in html and "room 102" not in html, (who, url)
    for login in ({"role": "committee", "compound": compound},
                  {"role": "supervisor", "compound": compound},
                  {"role": "resident", "household": author}):
        for url, html in seen(**login).items():
            assert full in html, (login["role"], url)
    # And in Chinese, the building alone, without the flat.
    with client.session_transaction() as sess:
        sess.clear()
    chinese = client.get(f"/consultations/{published.id}/opinions/{opinion.id}",
                         headers={"Accept-Language": "zh-CN"}).text
    assert "2号楼住户" in chinese and "102室" not in chinese
