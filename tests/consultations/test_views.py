import html
import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from consult.consultations import service
from consult.consultations.models import Consultation
from consult.core.errors import ValidationFailed
from consult.core.models import utcnow
from consult.extensions import db
from tests import factories
from tests.conftest import audit_actions

EN = {"Accept-Language": "en"}


def test_committee_creates_a_consultation_and_adds_items(client, login_as, compound):
    login_as("committee", compound=compound)
    r = client.post("/consultations/new", data={
        "compound_id": compound.id, "title": "加装电梯", "summary": "**重要**",
        "rule_code": "civil_code_278_major", "secrecy": "open", "locale": "zh_Hans",
        "publicity_days": "7"})
    assert r.status_code == 302
    c = db.session.scalars(select(Consultation)).one()
    r = client.post(f"/consultations/{c.id}/items/new", data={
        "title": "3号楼2单元加装电梯", "description": "<script>x</script>", "cost": "650,000"})
    assert r.status_code == 302 and c.items[0].estimated_cost_fen == 65_000_000
    page = client.get(f"/consultations/{c.id}", headers=EN).text
    assert "<strong>重要</strong>" in page and "650,000.00" in page
    assert "Civil Code art. 278, major matters" in page
    assert "<script>x" not in page
    assert audit_actions() == ["consultation.created", "consultation.item_added"]


def test_local_rule_from_the_settings_form(client, login_as, compound):
    login_as("committee", compound=compound)
    data = {"compound_id": compound.id, "title": "楼道照明", "rule_code": "custom",
            "secrecy": "confidential", "locale": "zh_Hans", "publicity_days": "5",
            "conditions-0-count": "agreeing", "conditions-0-measure": "households",
            "conditions-0-comparison": "ge", "conditions-0-fraction": "3/5",
            "conditions-0-base": "roll"}
    for n in range(1, 4):
        data.update({f"conditions-{n}-count": "agreeing", f"conditions-{n}-measure": "area",
                     f"conditions-{n}-comparison": "gt", f"conditions-{n}-fraction": "",
                     f"conditions-{n}-base": "roll"})
    assert client.post("/consultations/new", data=data).status_code == 302
    c = db.session.scalars(select(Consultation)).one()
    assert c.rule_code == "custom" and '"fraction":"3/5"' in c.rule_json
    page = client.get(f"/consultations/{c.id}", headers=EN).text
    assert "Agreeing households: at least 3/5 of all households on the roll" in page


def test_drafts_are_hidden_from_residents_and_the_public(client, login_as, compound):
    c = factories.make_consultation(compound)
    assert client.get(f"/consultations/{c.id}").status_code == 404
    assert c.title not in client.get("/consultations/").text
    login_as("committee", compound=compound)
    assert client.get(f"/consultations/{c.id}").status_code == 200


def test_stage_buttons_say_what_happens_and_what_is_missing(client, login_as, compound):
    login_as("committee", compound=compound)
    c = factories.make_consultation(compound, items=0)
    factories.walk_to(c, "proposing")
    page = client.get(f"/consultations/{c.id}", headers=EN).text
    assert "Put the proposal up for discussion" in page
    assert "The proposal needs at least one item." in page
    r = client.post(f"/consultations/{c.id}/stage", data={"action": "start_discussion"},
                    headers=EN, follow_redirects=True)
    assert "The proposal needs at least one item." in r.text and c.stage == "proposing"
    r = client.post(f"/consultations/{c.id}/stage", data={"action": "withdraw",
                                                          "reason": "合并到其他议题"})
    assert r.status_code == 200 and c.stage == "proposing"  # asked again first
    r = client.post(f"/consultations/{c.id}/stage", data={
        "action": "withdraw", "reason": "合并到其他议题", "confirmed": "1"})
    assert r.status_code == 302 and c.stage == "withdrawn"
    assert client.post(f"/consultations/{c.id}/stage", data={"action": "bogus"}
                       ).status_code == 302


def test_a_passed_deadline_is_applied_when_someone_looks(client, compound):
    c = factories.make_consultation(compound)
    factories.walk_to(c, "voting")  # everyone voted; the vote is still open
    c.vote_deadline = utcnow() - timedelta(minutes=1)
    db.session.flush()
    client.get(f"/consultations/{c.id}")
    assert c.vote_closed_at is not None
    assert audit_actions()[-2:] == ["consultation.stage_changed", "audit.anchor"]


def test_history_names_the_step_taken_not_only_the_stage_reached(client, compound):
    c = factories.make_consultation(compound)
    factories.walk_to(c, "resolution_public")
    page = client.get(f"/consultations/{c.id}", headers=EN).text
    history = page[page.index('id="history-heading"'):]
    history = history[:history.index("</section>")]
    assert "Open the vote → Voting" in history
    assert "Close the vote and count → " in history
    assert "Publish the resolution notice → " in history
    zh = client.get(f"/consultations/{c.id}").text
    assert "开始表决 → " in zh and "结束表决并计票 → " in zh


def test_revisions_pages_show_the_diff(client, compound):
    from consult.consultations import service

    c = factories.make_consultation(compound, items=0, stage="discussing")
    service.add_item(None, c, service.item_data(title="路灯", description="甲", cost="10"))
    service.add_item(None, c, service.item_data(title="路面", description="乙", cost="20"))
    assert "路面" in client.get(f"/consultations/{c.id}/revisions/2").text
    assert 'class="added"' in client.get(f"/consultations/{c.id}/revisions/2").text
    assert client.get(f"/consultations/{c.id}/revisions/99").status_code == 404


def test_scope_page_limits_the_households(client, login_as, compound):
    login_as("committee", compound=compound)
    c = factories.make_consultation(compound)
    b = compound.buildings[1]
    r = client.post(f"/consultations/{c.id}/scope", data={"part": [f"unit:{b.id}:1"]})
    assert r.status_code == 302 and [(s.building_id, s.unit) for s in c.scopes] == [(b.id, "1")]


def test_a_refused_scope_comes_back_as_it_was_ticked(client, login_as, compound):
    login_as("committee", compound=compound)
    c = factories.make_consultation(compound)
    b = compound.buildings[1]
    elsewhere = factories.make_building(factories.make_compound("别的小区"))
    r = client.post(f"/consultations/{c.id}/scope",
                    data={"part": [f"unit:{b.id}:1", f"building:{elsewhere.id}"]})
    assert r.status_code == 400 and c.scopes == []
    assert re.search(rf'value="unit:{b.id}:1"[^>]*checked', r.text)

def test_list_filters_by_stage(client, compound):
    voting = factories.make_consultation(compound, title="投票中的议题")
    factories.walk_to(voting, "voting")
    other = factories.make_consultation(compound, title="征集中的议题", stage="soliciting")
    text = client.get("/consultations/?stage=voting").text
    assert voting.title in text and other.title not in text


def _settings_form(compound, **values):
    return {"compound_id": compound.id, "title": "加装电梯", "summary": "电梯方案",
            "rule_code": "civil_code_278_major", "secrecy": "open", "locale": "zh_Hans",
            "publicity_days": "7", **values}


def test_deadlines_outside_2000_to_2100_are_errors_at_their_fields(client, login_as, compound):
    login_as("committee", compound=compound)
    # 0001-01-01T07:59 in Beijing is still year 0 in UTC, which Python cannot hold.
    r = client.post("/consultations/new", data=_settings_form(
        compound, solicitation_deadline="0001-01-01T07:59",
        vote_deadline="9999-12-31T23:59"), headers=EN)
    assert r.status_code == 200
    for name in ("solicitation_deadline", "vote_deadline"):
        assert f'id="{name}-error"' in r.text
    assert r.text.count("Enter a date between the years 2000 and 2100.") == 2
    assert 'value="0001-01-01T07:59"' in r.text and "电梯方案" in r.text  # the input is kept
    assert db.session.scalars(select(Consultation)).first() is None
    c = factories.make_consultation(compound)
    r = client.post(f"/consultations/{c.id}/edit", data=_settings_form(
        compound, vote_deadline="0001-01-01T00:00"), headers={"Accept-Language": "zh-CN"})
    assert r.status_code == 200 and 'id="vote_deadline-error"' in r.text
    assert "请填写 2000 年至 2100 年之间的日期。" in r.text
    assert c.vote_deadline is None and audit_actions() == []


@pytest.mark.parametrize("fraction", ["3/0", "5/4", "abc", "-1/2", "0/0"])
def test_a_bad_fraction_of_a_local_rule_is_an_error_at_the_rule(client, login_as, compound,
                                                                   fraction):
    login_as("committee", compound=compound)
    rows = {"rule_code": "custom", "conditions-0-count": "agreeing",
            "conditions-0-measure": "households", "conditions-0-comparison": "ge",
            "conditions-0-fraction": fraction, "conditions-0-base": "roll"}
    r = client.post("/consultations/new", data=_settings_form(compound, **rows), headers=EN)
    assert r.status_code == 200
    assert (f"“{fraction}” is not a fraction from 0 to 1: write it like 2/3 or 0.5, with a "
            "denominator that is not 0.") in html.unescape(r.text)
    assert "could not be read" not in r.text
    assert db.session.scalars(select(Consultation)).first() is None
    c = factories.make_consultation(compound)
    r = client.post(f"/consultations/{c.id}/edit", data=_settings_form(compound, **rows),
                    headers=EN)
    assert r.status_code == 200 and "is not a fraction from 0 to 1" in html.unescape(r.text)
    assert c.rule_code != "custom" and audit_actions() == []


def test_the_settings_service_refuses_deadlines_outside_the_range():
    values = {"title": "t", "summary": "", "rule_code": "civil_code_278_major",
              "secrecy": "open", "locale": "zh_Hans", "publicity_days": 7, "proxy_cap": None}
    with pytest.raises(ValidationFailed) as exc:  # 23:59 on 31 December 1999 in Beijing
        service.settings(**values,
                         solicitation_deadline=datetime(1999, 12, 31, 15, 59, tzinfo=UTC),
                         vote_deadline=datetime(2101, 1, 1, tzinfo=UTC))
    assert set(exc.value.errors) == {"solicitation_deadline", "vote_deadline"}
