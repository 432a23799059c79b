"""The follow-up pages: the split shown before it is saved, a visit recorded from its page,
the sheets downloaded."""

from datetime import timedelta

from sqlalchemy import func, select

from consult.ballots import service as ballots
from consult.ballots.models import Visit, VisitList
from consult.consultations.states import Action
from consult.core.models import utcnow
from consult.extensions import db
from consult.process import workflow
from tests import factories


def open_vote(compound):
    c = factories.make_consultation(compound, items=2)
    factories.walk_to(c, "discussing")
    c.vote_deadline = utcnow() + timedelta(days=7)
    workflow.apply(c, Action.OPEN_VOTE, None)
    return c


def count(model):
    return db.session.scalar(select(func.count()).select_from(model))


def test_preview_then_save_then_record(client, login_as, compound):
    c = open_vote(compound)
    login_as("committee", compound=compound)
    url = f"/consultations/{c.id}/visits/new"
    form = {"reasons": ["not_voted"], "building": "", "teams": "一组: 张三\n二组: 李四",
            "mode": "building"}
    preview = client.post(url, data=form)
    page = preview.get_data(as_text=True)
    assert preview.status_code == 200 and "分配预览" in page and count(VisitList) == 0
    assert "要走访 8 户" in page and page.count("4 户") >= 2  # one building per team
    saved = client.post(url, data={**form, "confirmed": "1"})
    assert saved.status_code == 302 and count(VisitList) == 1 and count(Visit) == 8
    shown = client.get(saved.headers["Location"]).get_data(as_text=True)
    assert "0 / 4" in shown and "一组" in shown and "还差" in shown
    visit = db.session.scalars(select(Visit).order_by(Visit.position)).first()
    item_ids = [i.id for i in c.items]
    recorded = client.post(f"/consultations/{c.id}/visits/{visit.visit_list_id}/{visit.id}",
                           data={"outcome": "answered", "note": "",
                                 f"item_{item_ids[0]}": "agree",
                                 f"item_{item_ids[1]}": "disagree"})
    assert recorded.status_code == 302
    ballot = ballots.ballot_of(c, visit.household_id)
    assert ballot is not None and ballot.channel == "door_to_door"
    shown = client.get(recorded.headers["Location"]).get_data(as_text=True)
    assert "1 / 4" in shown


def test_bad_input_comes_back_on_the_form(client, login_as, compound):
    c = open_vote(compound)
    login_as("committee", compound=compound)
    response = client.post(f"/consultations/{c.id}/visits/new",
                           data={"reasons": ["not_voted"], "building": "", "teams": "一组\n一组",
                                 "mode": "count", "confirmed": "1"})
    page = response.get_data(as_text=True)
    assert response.status_code == 400 and count(VisitList) == 0
    assert "第 2 行：已有名为 一组 的小组" in page
    assert "一组" in page  # what was typed is kept


def test_sheets_download(client, login_as, compound):
    c = open_vote(compound)
    login_as("committee", compound=compound)
    client.post(f"/consultations/{c.id}/visits/new",
                data={"reasons": ["not_voted"], "building": "", "teams": "一组\n二组",
                      "mode": "count", "confirmed": "1"})
    visit_list = db.session.scalars(select(VisitList)).one()
    response = client.get(f"/consultations/{c.id}/visits/{visit_list.id}/sheets.pdf"
                          f"?team={visit_list.teams[0].id}")
    assert response.status_code == 200 and response.data.startswith(b"%PDF")
    assert response.headers["Cache-Control"].startswith("no-store") or \
        "no-store" in response.headers["Cache-Control"]


def test_a_grid_worker_records_visits_in_its_grid_and_nowhere_else(client, compound):
    c = open_vote(compound)
    committee = factories.make_user("committee", compound=compound)
    factories.sign_in(client, committee)
    saved = client.post(f"/consultations/{c.id}/visits/new", data={
        "reasons": ["not_voted"], "building": "", "teams": "一组: 张三", "mode": "count",
        "confirmed": "1"})
    assert saved.status_code == 302
    visit = db.session.scalars(select(Visit).order_by(Visit.position)).first()
    url = f"/consultations/{c.id}/visits/{visit.visit_list_id}/{visit.id}"
    answer = {"outcome": "answered", "note": "", **{f"item_{i.id}": "agree" for i in c.items}}

    # A grid worker of another grid of the same community: refused, nothing recorded.
    elsewhere = factories.make_user("grid_worker",
                                     grid=factories.make_grid(compound.community))
    factories.sign_in(client, elsewhere)
    assert client.get(url).status_code == 403
    assert client.post(url, data=answer).status_code == 403
    assert ballots.ballot_of(c, visit.household_id) is None

    # The compound's own grid worker reads the list and records the answer at the door …
    worker = factories.make_user("grid_worker", grid=factories.grid_of(compound))
    factories.sign_in(client, worker)
    assert client.get(f"/consultations/{c.id}/visits/{visit.visit_list_id}").status_code == 200
    assert client.post(url, data=answer).status_code == 302
    ballot = ballots.ballot_of(c, visit.household_id)
    assert ballot is not None and ballot.channel == "door_to_door"
    # … but makes no list of its own.
    assert client.get(f"/consultations/{c.id}/visits/new").status_code == 403
