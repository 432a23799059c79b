import json
import re

import pytest
from sqlalchemy import func, select

from consult.accounts.models import AccessCode, User
from consult.extensions import db
from consult.registry.models import Building, Compound, Household


def test_seed_demo_builds_the_compound_and_accounts_and_is_idempotent(runner):
    first = runner.invoke(args=["demo", "seed"], env={"CONSULT_LANG": "en"})
    assert first.exit_code == 0, first.output
    assert "admin" in first.output and "demo-admin-2026" in first.output
    assert "Household access code" in first.output
    compound = db.session.scalars(select(Compound).where(Compound.name == "劳动局家属院")).one()
    households = db.session.scalar(select(func.count(Household.id)).join(Household.building)
                                   .where(Building.compound_id == compound.id))
    assert households == 216 and len(compound.buildings) == 6
    areas = db.session.scalars(select(Household.area_dm2).join(Household.building)
                               .where(Building.compound_id == compound.id)).all()
    assert min(areas) >= 4500 and max(areas) <= 12000
    multi = db.session.execute(select(Household.owner_key, func.count()).group_by(
        Household.owner_key).having(func.count() > 1)).all()
    assert multi, "a few owners hold two flats"
    roles = set(db.session.scalars(select(User.role)))
    assert roles == {"admin", "committee", "supervisor", "resident", "grid_worker"}
    from consult.audit import service as audit
    from consult.consultations.models import Consultation
    from consult.consultations.states import Stage

    stages = set(db.session.scalars(select(Consultation.stage)))
    assert stages == {s.value for s in Stage}  # one consultation in every stage
    # What accompanies the opinions and follows the works: a questionnaire with answers (not
    # the demo resident's, who still has it to do), and defect reports in three states.
    from consult.consultations.questionnaire_models import Questionnaire, QuestionnaireResponse
    from consult.feedback.models import DefectReport

    questionnaire = db.session.scalars(select(Questionnaire)).one()
    assert questionnaire.published_at is not None and len(questionnaire.questions) == 4
    answered = set(db.session.scalars(select(QuestionnaireResponse.household_id)))
    resident = db.session.scalars(select(User).where(User.role == "resident")).one()
    assert len(answered) > 20 and resident.household_id not in answered
    assert sorted(db.session.scalars(select(DefectReport.state))) == [
        "assigned", "fixed", "open"]
    assert audit.verify().ok

    second = runner.invoke(args=["demo", "seed"], env={"CONSULT_LANG": "en"})
    assert second.exit_code == 0
    # 216 + 20 in the two demo compounds, 120 in the street office's ten small ones.
    assert db.session.scalar(select(func.count(Household.id))) == 356
    assert db.session.scalar(select(func.count(User.id))) == 5
    assert db.session.scalar(select(func.count(Consultation.id))) == 12 + 6
    open_codes = db.session.scalar(select(func.count(AccessCode.id)).where(
        AccessCode.used_at.is_(None), AccessCode.revoked_at.is_(None)))
    assert open_codes == 1


def test_demo_committee_member_works_in_the_demo_compound(runner, client):
    runner.invoke(args=["demo", "seed"])
    r = client.post("/login", data={"username": "committee", "password": "demo-committee-2026"})
    assert r.status_code == 302
    assert "劳动局家属院" in client.get("/registry/").text
    assert "纺织厂宿舍" not in client.get("/registry/").text


def test_seed_demo_under_the_c_locale_speaks_and_freezes_chinese(runner):
    """Debian's default LANG=C.UTF-8 names no language: the demo is Simplified Chinese."""
    from consult.notices.models import Notice

    result = runner.invoke(args=["demo", "seed"], env={
        "CONSULT_LANG": "", "LC_ALL": "", "LC_MESSAGES": "", "LANG": "C.UTF-8"})
    assert result.exit_code == 0, result.output
    assert "演示数据已就绪" in result.output and "Demo data" not in result.output
    labels = [json.loads(text)["rule"]["label"] for text in db.session.scalars(
        select(Notice.content_json).where(Notice.kind == "vote"))]
    assert labels and all(re.search("[\u4e00-\u9fff]", label) for label in labels)


def test_the_demo_report_names_every_account_and_the_code():
    from consult.demo import DemoResult, report

    result = DemoResult(accounts=[("admin", "admin", "demo-admin-2026", "")], households=236,
                        consultations=10, access_code="1234 5678 9012",
                        access_code_household="1号楼 1单元 102")
    assert report(result) == [
        "Demo data ready: 236 households and 10 consultations, one in every stage.",
        "Demo accounts (username / password):",
        "  admin       admin       demo-admin-2026",
        "Household access code for 1号楼 1单元 102: 1234 5678 9012"]
    assert len(report(DemoResult())) == 2  # no accounts listed, no code issued


@pytest.mark.parametrize(("lang", "committee_name"), [
    ("zh_Hans", "居委会 李红梅"), ("zh_Hant", "居委會 李紅梅"),
    ("en", "Residents' committee Li Hongmei")])
def test_demo_accounts_are_named_in_the_demo_language(runner, lang, committee_name):
    assert runner.invoke(args=["demo", "seed"], env={"CONSULT_LANG": lang}).exit_code == 0
    names = dict(db.session.execute(select(User.username, User.display_name)).all())
    assert names["committee"] == committee_name
    scripts = {"zh_Hans": "[\u4e00-\u9fff]", "zh_Hant": "[\u4e00-\u9fff]", "en": "^[A-Za-z' ]+$"}
    assert all(re.search(scripts[lang], names[u]) for u in ("admin", "committee", "supervisor"))


def test_the_demo_street_office_has_two_communities_four_grids_and_a_grid_worker(runner,
                                                                                 client):
    from consult.consultations.models import Consultation
    from consult.registry.models import Community, Grid, StreetOffice

    assert runner.invoke(args=["demo", "seed"], env={"CONSULT_LANG": "en"}).exit_code == 0
    office = db.session.scalars(select(StreetOffice)).one()
    assert office.name == "解放街道"
    assert sorted(c.name for c in office.communities) == ["光明社区", "建设路社区"]
    grids = db.session.scalars(select(Grid).order_by(Grid.name)).all()
    assert [g.name for g in grids] == ["第一网格", "第三网格", "第二网格", "第四网格"]
    compounds = db.session.scalars(select(Compound)).all()
    assert len(compounds) == 12 and all(c.grid_id is not None for c in compounds)
    # Every grid is in its compounds' community.
    assert all(c.grid.community_id == c.community_id for c in compounds)
    stages = db.session.execute(select(Compound.name, Consultation.stage).join(
        Consultation, Consultation.compound_id == Compound.id).where(
        Compound.name != "劳动局家属院")).all()
    assert sorted(stage for _n, stage in stages) == [
        "closed", "implementing", "soliciting", "soliciting", "soliciting", "voting"]
    assert db.session.scalar(select(func.count(Community.id))) == 2

    r = client.post("/login", data={"username": "grid", "password": "demo-grid-2026"})
    assert r.status_code == 302
    registry_page = client.get("/registry/").text
    # 第一网格: 劳动局家属院, 粮食局宿舍, 邮电小区; nothing of another grid.
    for name in ("劳动局家属院", "粮食局宿舍", "邮电小区"):
        assert name in registry_page
    for name in ("纺织厂宿舍", "税务局小区", "交通局小区"):
        assert name not in registry_page
