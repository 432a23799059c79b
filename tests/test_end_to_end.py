"""One consultation through every stage of 一征三议两公开, over HTTP, as the real roles.

The committee runs it, residents sign in with access codes from their letters and take part,
a supervisor inspects, and time passes where the method waits (deadlines, publicity periods).
Every page on the way is opened and checked, and so are the tally, the notices and the audit
trail.
"""

from __future__ import annotations

import html
import json
import re
from datetime import timedelta
from typing import Any

from sqlalchemy import select

from consult.audit import service as audit
from consult.audit.models import AuditEvent
from consult.consultations.models import Consultation
from consult.core.models import utcnow
from consult.core.times import utc_to_local
from consult.extensions import db
from consult.notices.models import Notice
from consult.registry.models import Household
from tests import factories
from tests.access.uploads import png_upload

EN = {"Accept-Language": "en"}


def ok(response: Any, *texts: str) -> str:
    """The page loaded and shows every text."""
    assert response.status_code == 200, (response.status_code, response.request.path)
    page = html.unescape(response.get_data(as_text=True))
    for text in texts:
        assert text in page, (text, response.request.path)
    return page


def step(committee: Any, consultation_id: int, action: str, reason: str = "") -> None:
    r = committee.post(f"/consultations/{consultation_id}/stage",
                       data={"action": action, "reason": reason, "confirmed": "1"}, headers=EN,
                       follow_redirects=True)
    page = ok(r)
    assert "Done:" in page, (action, re.findall(r'role="alert">(.*?)<', page))


def pass_time(consultation: Consultation, **delta: float) -> None:
    """Move the consultation's clock: deadlines and notices move back by ``delta``."""
    shift = timedelta(**delta)
    for name in ("vote_deadline", "vote_opened_at", "solicitation_deadline"):
        if getattr(consultation, name) is not None:
            setattr(consultation, name, getattr(consultation, name) - shift)
    for notice in db.session.scalars(select(Notice).where(
            Notice.consultation_id == consultation.id)):
        notice.published_at -= shift
        notice.period_ends_at -= shift
    db.session.flush()


def resident_signs_in(app: Any, committee: Any, household: Any) -> Any:
    """The committee prints the household's letter; the resident signs in with its code."""
    letter = ok(committee.post(f"/registry/households/{household.id}/access-code"))
    code = re.search(r'class="code-display"[^>]*>([\d ]+)<', letter).group(1)
    resident = app.test_client()
    assert resident.post("/code", data={"code": code}).status_code == 302
    return resident


def vote(resident: Any, consultation: Consultation, choices: list[str]) -> str:
    fields = {f"item_{item.id}": choice for item, choice in zip(consultation.items, choices,
                                                                  strict=True)}
    review = ok(resident.post(f"/consultations/{consultation.id}/vote", data=fields,
                              headers=EN), "Check your answers")
    token = re.search(r'name="submission" type="hidden" value="([^"]+)"', review).group(1)
    r = resident.post(f"/consultations/{consultation.id}/vote/confirm",
                      data={**fields, "submission": token}, headers=EN, follow_redirects=True)
    page = ok(r, "Your household’s vote is recorded")
    return re.search(r'class="receipt-code"[^>]*>([A-Z0-9-]+)<', page).group(1)


def test_a_consultation_from_draft_to_archive(app, client, compound):
    committee = client
    factories.make_user("committee", compound=compound, username="liu")
    assert committee.post("/login", data={"username": "liu", "password": factories.PASSWORD}
                          ).status_code == 302
    supervisor = app.test_client()
    factories.make_user("supervisor", compound=compound, username="wang")
    supervisor.post("/login", data={"username": "wang", "password": factories.PASSWORD})
    homes = [b.households[n] for b in compound.buildings for n in range(4)]
    residents = [resident_signs_in(app, committee, home) for home in homes[:3]]
    anonymous = app.test_client()

    # --- draft -------------------------------------------------------------------------------
    r = committee.post("/consultations/new", data={
        "compound_id": compound.id, "title": "小区综合改造", "summary": "请大家提意见。",
        "rule_code": "household_majority", "secrecy": "open", "locale": "zh_Hans",
        "publicity_days": "7"})
    c = db.session.scalars(select(Consultation)).one()
    assert r.status_code == 302 and c.stage == "draft"
    assert anonymous.get(f"/consultations/{c.id}").status_code == 404

    # --- 一征: collect opinions --------------------------------------------------------------
    step(committee, c.id, "start_soliciting")
    ok(residents[0].get(f"/consultations/{c.id}", headers=EN), "Give your opinion")
    r = residents[0].post(f"/consultations/{c.id}/opinions/new", data={
        "category": "pipes", "text": "水管老化漏水。", "photo": png_upload("leak.png")},
        content_type="multipart/form-data")
    assert r.status_code == 302
    opinion_page = ok(residents[1].get(f"/consultations/{c.id}/opinions"), "水管老化漏水。")
    opinion_id = int(re.search(r"/opinions/(\d+)/support", opinion_page).group(1))
    assert residents[1].post(f"/consultations/{c.id}/opinions/{opinion_id}/support"
                             ).status_code == 302
    r = committee.post(f"/consultations/{c.id}/opinions/record", data={
        "category": "roads", "text": "入口路面坑洼。", "channel": "door_to_door",
        "building_id": compound.buildings[1].id, "unit": "1", "room": "101"})
    assert r.status_code == 302
    ok(anonymous.get(f"/consultations/{c.id}/opinions/summary"))

    # --- 一议: propose -----------------------------------------------------------------------
    step(committee, c.id, "start_proposing")
    for title, cost in (("更换供水管", "120000"), ("路面硬化", "80000")):
        assert committee.post(f"/consultations/{c.id}/items/new", data={
            "title": title, "description": "详见方案", "cost": cost}).status_code == 302
    db.session.refresh(c)
    first, second = c.items
    assert committee.post(f"/consultations/{c.id}/items/{first.id}/opinions",
                          data={"opinion_ids": [str(opinion_id)]}).status_code == 302
    ok(anonymous.get(f"/consultations/{c.id}/items/{first.id}", headers=EN), "from 1 opinion")

    # --- 二议: discuss -----------------------------------------------------------------------
    step(committee, c.id, "start_discussion")
    assert residents[2].post(f"/consultations/{c.id}/items/{second.id}/comments",
                             data={"text": "路面能不能用透水砖？"}).status_code == 302
    assert committee.post(f"/consultations/{c.id}/items/{second.id}/comments/committee",
                          data={"text": "可以，方案已修改。"}).status_code == 302
    assert committee.post(f"/consultations/{c.id}/items/{second.id}/edit", data={
        "title": "路面硬化（透水砖）", "description": "详见方案", "cost": "95000",
        "note": "采纳居民意见"}).status_code == 302
    held = utc_to_local(utcnow() - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    assert committee.post(f"/consultations/{c.id}/meetings/new", data={
        "held_at": held, "place": "社区会议室", "community": "李书记", "committee": "",
        "representatives": "居民代表 8 人", "contractors": "", "others": "",
        "minutes": "讨论两项改造。", "decisions": "同意提交表决。"}).status_code == 302
    ok(anonymous.get(f"/consultations/{c.id}/meetings"), "社区会议室")
    revisions = ok(anonymous.get(f"/consultations/{c.id}/revisions/4"), "路面硬化（透水砖）")
    assert 'class="added"' in revisions and 'class="removed"' in revisions

    # --- 三议: decide ------------------------------------------------------------------------
    deadline = utc_to_local(utcnow() + timedelta(days=3)).strftime("%Y-%m-%dT%H:%M")
    assert committee.post(f"/consultations/{c.id}/edit", data={
        "title": c.title, "summary": c.summary, "rule_code": "household_majority",
        "secrecy": "open", "locale": "zh_Hans", "publicity_days": "7",
        "vote_deadline": deadline}).status_code == 302
    step(committee, c.id, "open_vote")
    db.session.refresh(c)
    receipts = [vote(residents[0], c, ["agree", "agree"]),
                vote(residents[1], c, ["agree", "disagree"]),
                vote(residents[2], c, ["disagree", "agree"])]
    changed = vote(residents[2], c, ["agree", "agree"])  # changes its mind before the deadline
    assert changed != receipts[2]
    paper, proxy = homes[3], homes[4]
    assert committee.post(f"/consultations/{c.id}/ballots/{paper.id}/enter", data={
        "channel": "paper", "serial": "A-001", f"item_{first.id}": "agree",
        f"item_{second.id}": "agree"}).status_code == 302
    assert committee.post(f"/consultations/{c.id}/ballots/{proxy.id}/enter", data={
        "channel": "proxy", "proxy_name": "赵六", "proxy_document": png_upload("委托书.png"),
        f"item_{first.id}": "disagree", f"item_{second.id}": "abstain"},
        content_type="multipart/form-data").status_code == 302
    ok(committee.get(f"/consultations/{c.id}", headers=EN), "5 of 8 households have a ballot")
    ok(supervisor.get(f"/consultations/{c.id}/tally", headers=EN), "Provisional")
    assert anonymous.get(f"/consultations/{c.id}/tally").status_code == 302  # staff only
    roll = committee.post(f"/consultations/{c.id}/roll/export", data={"fmt": "csv"})
    assert roll.status_code == 200 and len(roll.data.decode("utf-8-sig").splitlines()) == 9

    pass_time(c, days=4)  # the deadline passes; the first page view closes the vote
    ok(anonymous.get(f"/consultations/{c.id}", headers=EN), "Voting has closed")
    db.session.refresh(c)
    assert c.vote_closed_at is not None
    tally = ok(anonymous.get(f"/consultations/{c.id}/tally", headers=EN), "Passed")
    # Item 1: 4 agree of 5 taking part; item 2: 3 agree, 1 abstain, 1 disagree.
    assert "Agreeing households 4/5 = 80.00% > 1/2 ✓" in tally  # in the reader's language
    assert "Agreeing households 3/5 = 60.00% > 1/2 ✓" in tally

    # --- 一公开: publish the resolution ------------------------------------------------------
    step(committee, c.id, "publish_resolution")
    notice = db.session.scalars(select(Notice)).one()
    page = ok(anonymous.get(f"/notices/{notice.id}", headers=EN), "决议公示",
              notice.verify_code, "各户表决情况")
    for household in db.session.scalars(select(Household)):  # by address only
        assert household.owner_name not in page
    ok(anonymous.get(f"/verify/{notice.verify_code}", headers=EN), "genuine and current")
    assert residents[1].post(f"/notices/{notice.id}/objections",
                             data={"text": "路面预算偏高。"}).status_code == 302
    r = committee.post(f"/consultations/{c.id}/stage",
                       data={"action": "start_implementation"}, headers=EN,
                       follow_redirects=True)
    assert "publicity period has not ended" in html.unescape(r.get_data(as_text=True))
    objection = notice.objections[0]
    assert committee.post(f"/objections/{objection.id}/answer",
                          data={"text": "预算经第三方审核。"}).status_code == 302
    pass_time(c, days=8)
    assert residents[0].post(f"/notices/{notice.id}/objections",
                             data={"text": "太晚了"}).status_code == 409

    # --- 实施: works -------------------------------------------------------------------------
    step(committee, c.id, "start_implementation")
    assert committee.post(f"/consultations/{c.id}/works/progress", data={
        "item_id": "0", "percent": "50", "spend": "60000", "note": "施工过半",
        "photos": [png_upload("site.png")]}, content_type="multipart/form-data"
    ).status_code == 302
    assert supervisor.post(f"/consultations/{c.id}/works/inspections", data={
        "item_id": "0", "text": "现场文明施工。"}).status_code == 302
    for item, cost in ((first, "118000"), (second, "93500")):
        assert committee.post(f"/consultations/{c.id}/works/items/{item.id}/complete", data={
            "final_cost": cost, "note": "验收合格"}).status_code == 302
    assert committee.post(f"/consultations/{c.id}/works/progress", data={
        "item_id": "0", "percent": "100", "spend": "151500", "note": "全部完工",
        "is_final": "y"}).status_code == 302
    ok(anonymous.get(f"/consultations/{c.id}/works"), "全部完工", "现场文明施工。")

    # --- 二公开: publish the result, households evaluate ------------------------------------
    step(committee, c.id, "publish_result")
    result = db.session.scalars(select(Notice).where(Notice.kind == "result")).one()
    ok(anonymous.get(f"/notices/{result.id}", headers=EN), "211,500.00", "现场文明施工。")
    for resident, rating in zip(residents, ("satisfied", "satisfied", "dissatisfied"),
                                strict=True):
        assert resident.post(f"/consultations/{c.id}/evaluation",
                             data={"rating": rating}).status_code == 302
    ok(anonymous.get(f"/notices/{result.id}", headers=EN), "8 户中已有 3 户评价了工程")
    pass_time(c, days=8)
    step(committee, c.id, "close")
    ok(anonymous.get(f"/consultations/{c.id}", headers=EN), "closed and archived")

    # --- the record -------------------------------------------------------------------------
    actions = list(db.session.scalars(select(AuditEvent.action).order_by(AuditEvent.seq)))
    moves = [json.loads(p) for p in db.session.scalars(select(AuditEvent.payload).where(
        AuditEvent.action == "consultation.stage_changed").order_by(AuditEvent.seq))]
    assert [m["action"] for m in moves] == [
        "start_soliciting", "start_proposing", "start_discussion", "open_vote", "close_vote",
        "publish_resolution", "start_implementation", "publish_result", "close"]
    assert [m["by_deadline"] for m in moves].count(True) == 1  # the vote closed by itself
    for expected in ("opinion.submitted", "opinion.supported", "opinion.recorded",
                     "consultation.item_opinions_set", "comment.posted", "meeting.recorded",
                     "ballot.cast", "ballot.changed", "ballot.result_frozen", "notice.published",
                     "notice.objection_filed", "notice.objection_answered",
                     "implementation.progress_added", "implementation.inspection_added",
                     "implementation.item_completed", "implementation.evaluated"):
        assert expected in actions, expected
    assert audit.verify().ok
