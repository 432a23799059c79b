"""The committee's entries of paper ballots: channel precedence, corrections, double entry,
written authorisations, and what they do to closing and counting the vote."""

import json
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from consult.audit import service as audit
from consult.audit.models import AuditEvent
from consult.ballots import entries
from consult.ballots import service as ballots
from consult.ballots.models import Ballot, BallotChannel, BallotEntry, EntryState
from consult.consultations.states import Action, Stage
from consult.core.errors import Conflict, PermissionDenied, ValidationFailed
from consult.extensions import db
from consult.process import workflow
from tests import factories
from tests.access.uploads import png_upload
from tests.conftest import audit_actions


def answers(c, *values):
    return {item.id: value for item, value in zip(c.items, values, strict=True)}


def paper(c, *values, channel=BallotChannel.PAPER, **kwargs):
    return entries.Paper(channel, answers(c, *values), **kwargs)


def household(compound, b=0, n=0):
    return compound.buildings[b].households[n]


def choices(c, h):
    ballot = ballots.ballot_of(c, h.id)
    return [choice for _item, choice in ballots.answers_of(c, ballot)]


@pytest.fixture
def members(compound):
    return [factories.make_user("committee", compound=compound) for _ in range(3)]


@pytest.fixture
def doubled(voting):
    """The open vote, its paper ballots entered twice."""
    voting.double_entry = True
    db.session.flush()
    return voting


# --- channel precedence -------------------------------------------------------------------


def test_a_household_with_no_ballot_gets_the_paper_ballot_at_once(voting, compound, members):
    lead = entries.enter(members[0], voting, household(compound),
                         paper(voting, "agree", "disagree", serial="P-1"))
    assert lead.state == EntryState.COUNTED and not lead.is_correction
    ballot = ballots.ballot_of(voting, household(compound).id)
    assert (ballot.channel, ballot.serial, ballot.entered_by_id) == ("paper", "P-1",
                                                                     members[0].id)
    assert audit_actions()[-2:] == ["ballot.entry_recorded", "ballot.cast"]


def test_an_entry_over_an_online_ballot_needs_a_reason_and_evidence(voting, compound,
                                                                    members):
    h = household(compound)
    ballots.cast(None, voting, h, answers(voting, "agree", "agree"), BallotChannel.ONLINE)
    before = audit_actions()
    for reason, evidence in (("", None), ("住户改投书面票", None), ("", png_upload())):
        with pytest.raises(ValidationFailed) as refused:
            entries.enter(members[0], voting, h, paper(voting, "disagree", "disagree"),
                          reason=reason, evidence=evidence)
        assert set(refused.value.errors) <= {"reason", "evidence"} and refused.value.errors
    assert audit_actions() == before
    assert choices(voting, h) == ["agree", "agree"]
    assert ballots.ballot_of(voting, h.id).channel == "online"


def test_not_reached_and_undecided_never_replace_a_ballot(voting, compound, members):
    h = household(compound)
    ballots.cast(None, voting, h, answers(voting, "agree", "disagree"), BallotChannel.ONLINE)
    with pytest.raises(ValidationFailed, match="door-to-door visit cannot replace"):
        entries.enter(members[0], voting, h, paper(
            voting, "not_reached", "not_reached", channel=BallotChannel.DOOR_TO_DOOR),
            reason="入户未见到", evidence=png_upload())
    with pytest.raises(ValidationFailed, match="door-to-door visit cannot replace"):
        entries.enter(members[0], voting, h, paper(
            voting, "agree", "agree", channel=BallotChannel.DOOR_TO_DOOR),
            reason="入户", evidence=png_upload())
    survey = factories.make_consultation(compound, items=1, rule="survey")
    factories.walk_to(survey, "voting")  # every household answered "agree" on paper
    with pytest.raises(ValidationFailed, match="never replace"):
        entries.enter(members[0], survey, h, paper(survey, "undecided"), reason="改为观望",
                      evidence=png_upload())
    assert choices(voting, h) == ["agree", "disagree"] and choices(survey, h) == ["agree"]
    assert db.session.scalar(select(func.count(BallotEntry.id))) == 0


def test_a_not_reached_visit_is_no_ballot_of_the_household(voting, compound, members):
    """Nobody was home: a later paper ballot replaces that note without a correction."""
    h = household(compound)
    entries.enter(members[0], voting, h, paper(voting, "not_reached", "not_reached",
                                               channel=BallotChannel.DOOR_TO_DOOR))
    lead = entries.enter(members[1], voting, h, paper(voting, "agree", "agree"))
    assert lead.state == EntryState.COUNTED and not lead.is_correction
    assert choices(voting, h) == ["agree", "agree"]


def test_a_correction_replaces_the_households_ballot_and_says_so(voting, compound, members):
    h = household(compound)
    ballots.cast(None, voting, h, answers(voting, "agree", "agree"), BallotChannel.ONLINE)
    lead = entries.enter(members[0], voting, h, paper(voting, "disagree", "agree",
                                                      serial="P-9"),
                         reason="住户交回签名的书面表决票", evidence=png_upload("scan.png"))
    assert lead.state == EntryState.COUNTED and lead.is_correction
    ballot = ballots.ballot_of(voting, h.id)
    assert (ballot.version, ballot.channel) == (2, "paper")
    assert choices(voting, h) == ["disagree", "agree"]
    assert json.loads(lead.replaced_json)["choices"] == {"1": "agree", "2": "agree"}
    assert audit_actions()[-3:] == ["ballot.entry_recorded", "ballot.changed",
                                    "ballot.corrected"]
    event = db.session.scalars(select(AuditEvent).where(
        AuditEvent.action == "ballot.corrected")).one()
    payload = json.loads(event.payload)
    assert payload["reason"] == "住户交回签名的书面表决票"
    assert payload["evidence"] == {"attachment_id": lead.evidence.id,
                                   "sha256": lead.evidence.sha256}
    assert (payload["version_before"], payload["version"]) == (1, 2)
    assert payload["choices_before"] == {"1": "agree", "2": "agree"}
    assert event.actor_id == members[0].id
    assert lead.evidence.visibility == "staff"
    # What the household is told: when and why, not who.
    told = entries.corrections_of(voting, h.id)
    assert [(c.reason, c.version) for c in told] == [("住户交回签名的书面表决票", 2)]
    assert audit.verify().ok


def test_a_later_online_vote_by_the_household_counts_again(voting, compound, members):
    h = household(compound)
    ballots.cast(None, voting, h, answers(voting, "agree", "agree"), BallotChannel.ONLINE)
    entries.enter(members[0], voting, h, paper(voting, "disagree", "disagree"),
                  reason="纸质票", evidence=png_upload())
    ballots.cast(None, voting, h, answers(voting, "agree", "abstain"), BallotChannel.ONLINE)
    ballot = ballots.ballot_of(voting, h.id)
    assert (ballot.channel, ballot.version) == ("online", 3)
    assert choices(voting, h) == ["agree", "abstain"]
    assert ballots.compute(voting).items[0].counts.get("agree") == 1
    # The correction stays on record, and the household is told it voted again since.
    assert entries.corrections_of(voting, h.id)[0].version == 2


def test_confidential_corrections_keep_answers_and_household_out_of_the_trail(compound,
                                                                             members):
    c = factories.make_consultation(compound, items=1, secrecy="confidential")
    factories.walk_to(c, "voting")
    h = household(compound)
    entries.enter(members[0], c, h, paper(c, "disagree"), reason="更正",
                  evidence=png_upload())
    payload = json.loads(db.session.scalars(select(AuditEvent.payload).where(
        AuditEvent.action == "ballot.corrected")).one())
    assert payload["household_id"] is None and "choices" not in payload
    assert "choices_before" not in payload
    rows = entries.corrections(c)
    assert len(rows) == 1 and rows[0].before is None and rows[0].after is None


# --- double entry -------------------------------------------------------------------------


def test_double_entry_follows_the_rule_unless_the_settings_say_otherwise(compound):
    civil = factories.make_consultation(compound, rule="civil_code_278_major")
    majority = factories.make_consultation(compound, rule="household_majority")
    assert ballots.double_entry_on(civil) and not ballots.double_entry_on(majority)
    civil.double_entry, majority.double_entry = False, True
    assert not ballots.double_entry_on(civil) and ballots.double_entry_on(majority)


def test_matching_entries_by_two_members_count(doubled, compound, members):
    h = household(compound)
    lead = entries.enter(members[0], doubled, h, paper(doubled, "agree", "disagree",
                                                       serial="P-1"))
    assert lead.state == EntryState.AWAITING_SECOND
    assert ballots.ballot_of(doubled, h.id) is None
    assert entries.pending(doubled).awaiting_second == 1
    assert ballots.compute(doubled).participation.households == 0
    lead = entries.enter(members[1], doubled, h, paper(doubled, "agree", "disagree",
                                                       serial="P-1"))
    assert lead.state == EntryState.COUNTED
    ballot = ballots.ballot_of(doubled, h.id)
    assert choices(doubled, h) == ["agree", "disagree"] and ballot.serial == "P-1"
    assert ballot.cast_at == lead.entered_at  # the time the paper was first entered
    assert entries.pending(doubled).total == 0
    assert audit_actions()[-3:] == ["ballot.entry_recorded", "ballot.entry_recorded",
                                    "ballot.cast"]
    assert audit.verify().ok


def test_entries_that_differ_do_not_count_until_a_third_member_decides(doubled, compound,
                                                                       members):
    h = household(compound)
    lead = entries.enter(members[0], doubled, h, paper(doubled, "agree", "disagree"))
    entries.enter(members[1], doubled, h, paper(doubled, "agree", "agree"))
    assert lead.state == EntryState.DIFFERS and ballots.ballot_of(doubled, h.id) is None
    assert entries.pending(doubled).differs == 1
    # Neither enterer decides, and no further entry is taken meanwhile.
    for member in members[:2]:
        with pytest.raises(PermissionDenied):
            entries.decide(member, doubled, lead, str(lead.id))
    with pytest.raises(Conflict, match="differ"):
        entries.enter(members[2], doubled, h, paper(doubled, "agree", "agree"))
    # The third reads the paper: neither entry is right.
    entries.decide(members[2], doubled, lead, "paper", paper(doubled, "abstain", "disagree"),
                   note="核对原件")
    assert lead.state == EntryState.COUNTED and lead.settled_by_id == members[2].id
    assert choices(doubled, h) == ["abstain", "disagree"]
    assert ballots.ballot_of(doubled, h.id).entered_by_id == members[2].id
    assert "ballot.entries_decided" in audit_actions()


def test_a_decision_may_choose_one_of_the_entries(doubled, compound, members):
    h = household(compound)
    lead = entries.enter(members[0], doubled, h, paper(doubled, "agree", "disagree"))
    second = entries.case_entries(entries.enter(
        members[1], doubled, h, paper(doubled, "agree", "agree")))[1]
    entries.decide(members[2], doubled, lead, str(second.id))
    assert choices(doubled, h) == ["agree", "agree"] and lead.counted_id == second.id
    with pytest.raises(Conflict, match="does not wait"):
        entries.decide(members[2], doubled, lead, str(lead.id))


def test_one_member_cannot_make_both_entries(doubled, compound, members):
    """Two tabs of the same form, or the same paper typed twice: the second is refused."""
    h = household(compound)
    entries.enter(members[0], doubled, h, paper(doubled, "agree", "agree"))
    with pytest.raises(PermissionDenied, match="another member"):
        entries.enter(members[0], doubled, h, paper(doubled, "agree", "agree"))
    assert ballots.ballot_of(doubled, h.id) is None
    assert db.session.scalar(select(func.count(BallotEntry.id))) == 1
    # Two runs of the command line are one person too.
    other = household(compound, 0, 1)
    entries.enter(None, doubled, other, paper(doubled, "agree", "agree"))
    with pytest.raises(PermissionDenied):
        entries.enter(None, doubled, other, paper(doubled, "agree", "agree"))


def test_a_correction_under_double_entry_needs_its_second_entry_too(doubled, compound,
                                                                    members):
    h = household(compound)
    ballots.cast(None, doubled, h, answers(doubled, "agree", "agree"), BallotChannel.ONLINE)
    lead = entries.enter(members[0], doubled, h, paper(doubled, "disagree", "disagree"),
                         reason="签名纸质票", evidence=png_upload())
    assert lead.state == EntryState.AWAITING_SECOND
    assert choices(doubled, h) == ["agree", "agree"]  # the household's ballot stands
    # The second member enters the paper without giving the reason again.
    entries.enter(members[1], doubled, h, paper(doubled, "disagree", "disagree"))
    assert lead.state == EntryState.COUNTED and choices(doubled, h) == ["disagree",
                                                                        "disagree"]
    assert audit_actions()[-1] == "ballot.corrected"


def test_the_households_own_vote_sets_aside_what_waits_for_it(doubled, compound, members):
    h = household(compound)
    lead = entries.enter(members[0], doubled, h, paper(doubled, "disagree", "disagree"))
    ballots.cast(None, doubled, h, answers(doubled, "agree", "agree"), BallotChannel.ONLINE)
    db.session.refresh(lead)
    assert lead.state == EntryState.SET_ASIDE and lead.note == ballots.SET_ASIDE_OWN_VOTE
    assert entries.pending(doubled).total == 0
    # A second entry of that paper now is a first entry over the household's own ballot:
    # only a correction can replace it.
    with pytest.raises(ValidationFailed, match="reason and its evidence"):
        entries.enter(members[1], doubled, h, paper(doubled, "disagree", "disagree"))
    event = db.session.scalars(select(AuditEvent).where(
        AuditEvent.action == "ballot.entry_set_aside")).one()
    assert event.actor_label == audit.HOUSEHOLD_ACTOR


def test_the_second_entry_cannot_read_the_first_in_the_audit_trail(doubled, compound,
                                                                   members):
    entries.enter(members[0], doubled, household(compound),
                  paper(doubled, "agree", "disagree", serial="P-77"))
    payload = db.session.scalars(select(AuditEvent.payload).where(
        AuditEvent.action == "ballot.entry_recorded")).one()
    assert "choices" not in json.loads(payload) and "P-77" not in payload


# --- closing and counting -----------------------------------------------------------------


def test_the_vote_cannot_close_early_while_papers_wait(doubled, compound, members):
    for h in (household(compound, b, n) for b in range(2) for n in range(4)):
        ballots.cast(None, doubled, h, answers(doubled, "agree", "agree"),
                     BallotChannel.ONLINE)
    # Every household voted, so the vote could close early; but a correction waits.
    entries.enter(members[0], doubled, household(compound),
                  paper(doubled, "disagree", "agree"), reason="签名纸质票",
                  evidence=png_upload())
    option = next(o for o in workflow.options(doubled) if o.action is Action.CLOSE_VOTE)
    assert option.missing == ["1 paper ballot awaits its second entry or a decision."]
    with pytest.raises(Conflict, match="1 paper ballot awaits its second entry"):
        workflow.apply(doubled, Action.CLOSE_VOTE, members[2])
    assert doubled.vote_closed_at is None
    entries.enter(members[1], doubled, household(compound),
                  paper(doubled, "disagree", "agree"))
    workflow.apply(doubled, Action.CLOSE_VOTE, members[2])
    assert doubled.vote_counted_at is not None and ballots.vote_result(doubled) is not None
    assert doubled.stage == Stage.VOTE_COUNTED  # nothing waited: counted as it closed


def test_at_the_deadline_the_vote_closes_and_is_counted_once_the_papers_are_settled(
        doubled, compound, members):
    first, second = household(compound), household(compound, 0, 1)
    entries.enter(members[0], doubled, first, paper(doubled, "agree", "agree"))
    entries.enter(members[0], doubled, second, paper(doubled, "agree", "agree"))
    entries.enter(members[1], doubled, second, paper(doubled, "disagree", "agree"))
    after = doubled.vote_deadline + timedelta(minutes=5)
    workflow.catch_up(doubled, after)
    # Closed at the deadline: no more ballots, no new paper; but not counted.
    assert doubled.stage == Stage.VOTE_CLOSED and not doubled.vote_is_open(after)
    assert doubled.vote_closed_at == doubled.vote_deadline
    assert doubled.vote_counted_at is None and ballots.vote_result(doubled) is None
    assert "ballot.count_waiting" in audit_actions()
    with pytest.raises(Conflict):
        ballots.cast(None, doubled, household(compound, 1, 0), answers(doubled, "agree",
                                                                       "agree"),
                     BallotChannel.ONLINE, now=after)
    with pytest.raises(Conflict):
        entries.enter(members[1], doubled, household(compound, 1, 0),
                      paper(doubled, "agree", "agree"), now=after)
    # The resolution waits for the count: no such step from a vote not counted yet.
    assert Action.PUBLISH_RESOLUTION not in {o.action for o in workflow.options(doubled, after)}
    with pytest.raises(Conflict, match="not possible at the current stage"):
        workflow.apply(doubled, Action.PUBLISH_RESOLUTION, members[2], now=after)
    count = next(o for o in workflow.options(doubled, after) if o.action is Action.COUNT_VOTE)
    assert count.missing == ["2 paper ballots await their second entry or a decision."]
    assert workflow.due_action(doubled, after) is None  # two papers are still unsettled
    # The papers entered before the deadline are settled after it.
    entries.enter(members[1], doubled, first, paper(doubled, "agree", "agree"), now=after)
    assert ballots.ballot_of(doubled, first.id).cast_at < doubled.vote_closed_at
    assert workflow.due_action(doubled, after) is None
    lead = entries.open_case(doubled, second.id)
    entries.decide(members[2], doubled, lead, str(lead.id), now=after)
    assert workflow.due_action(doubled, after) is Action.COUNT_VOTE
    assert workflow.catch_up(doubled, after) is Action.COUNT_VOTE
    assert ballots.vote_result(doubled) is not None and doubled.vote_counted_at is not None
    assert doubled.stage == Stage.VOTE_COUNTED
    assert ballots.frozen_tally(doubled)["participation"]["households"] == 2
    workflow.apply(doubled, Action.PUBLISH_RESOLUTION, members[2], now=after)
    # Nothing can be recorded for the counted round any more.
    with pytest.raises(Conflict):
        ballots.check_can_settle(doubled, doubled.vote_opened_at)
    assert audit.verify().ok


def test_close_expired_counts_a_vote_whose_papers_were_settled(doubled, compound, members):
    h = household(compound)
    entries.enter(members[0], doubled, h, paper(doubled, "agree", "agree"))
    after = doubled.vote_deadline + timedelta(minutes=1)
    assert workflow.close_expired(after) == [(doubled.id, Action.CLOSE_VOTE)]
    assert workflow.close_expired(after) == []
    entries.enter(members[1], doubled, h, paper(doubled, "agree", "agree"), now=after)
    assert workflow.close_expired(after) == [(doubled.id, Action.COUNT_VOTE)]


# --- written authorisations ---------------------------------------------------------------


def test_a_proxy_ballot_without_its_required_authorisation_does_not_count(voting, compound,
                                                                          members):
    voting.proxy_document_required = True
    h = household(compound)
    lead = entries.enter(members[0], voting, h, paper(
        voting, "agree", "agree", channel=BallotChannel.PROXY, proxy_name="李四"))
    assert lead.state == EntryState.AWAITING_AUTHORISATION
    assert ballots.ballot_of(voting, h.id) is None
    assert ballots.compute(voting).participation.households == 0
    assert entries.pending(voting).awaiting_authorisation == 1
    # It does not hold up the close, and is set aside when the vote is counted ...
    assert entries.unsettled(voting) == 0
    # ... unless the authorisation is attached first: then it counts.
    assert entries.attach_authorisation(members[1], voting, h, png_upload("委托书.png")) == (
        "counted")
    ballot = ballots.ballot_of(voting, h.id)
    assert ballot.proxy_name == "李四" and ballot.proxy_document.visibility == "staff"
    assert audit_actions()[-2:] == ["ballot.cast", "ballot.authorisation_attached"]


def test_proxy_ballots_waiting_for_their_authorisation_never_count_once_counted(
        voting, compound, members):
    voting.proxy_document_required = True
    h = household(compound)
    lead = entries.enter(members[0], voting, h, paper(
        voting, "agree", "agree", channel=BallotChannel.PROXY, proxy_name="李四"))
    workflow.catch_up(voting, voting.vote_deadline + timedelta(seconds=1))
    assert ballots.vote_result(voting) is not None
    assert lead.state == EntryState.SET_ASIDE
    assert ballots.frozen_tally(voting)["participation"]["households"] == 0


def test_an_authorisation_can_be_attached_to_a_counted_proxy_ballot_later(voting, compound,
                                                                          members):
    h = household(compound)
    entries.enter(members[0], voting, h, paper(voting, "agree", "agree",
                                               channel=BallotChannel.PROXY,
                                               proxy_name="李四"))
    assert ballots.ballot_of(voting, h.id).proxy_document_id is None
    assert entries.attach_authorisation(members[0], voting, h, png_upload()) == "attached"
    assert ballots.ballot_of(voting, h.id).proxy_document_id is not None
    with pytest.raises(Conflict, match="no proxy ballot"):
        entries.attach_authorisation(members[0], voting, household(compound, 1, 0),
                                     png_upload())
    assert audit.verify().ok  # attaching the document changes nothing a ballot event says


def test_an_authorisation_that_is_no_document_is_refused(voting, compound, members):
    import io

    from werkzeug.datastructures import FileStorage

    voting.proxy_document_required = True
    h = household(compound)
    entries.enter(members[0], voting, h, paper(voting, "agree", "agree",
                                               channel=BallotChannel.PROXY, proxy_name="李四"))
    fake = FileStorage(io.BytesIO(b"<html>not a scan</html>"), filename="委托书.jpg")
    with pytest.raises(ValidationFailed) as refused:
        entries.attach_authorisation(members[0], voting, h, fake)
    assert "document" in refused.value.errors
    assert ballots.ballot_of(voting, h.id) is None


def test_settings_for_entering_are_fixed_once_the_vote_opens(voting, compound):
    from consult.consultations import service

    values = service.settings(
        title=voting.title, summary=voting.summary, rule_code=voting.rule_code,
        secrecy=voting.secrecy, locale="zh_Hans", solicitation_deadline=None,
        vote_deadline=voting.vote_deadline, publicity_days=7, proxy_cap=None,
        double_entry=True)
    with pytest.raises(Conflict, match="fixed once voting has started"):
        service.update(None, voting, values)
    draft = factories.make_consultation(compound)
    service.update(None, draft, service.settings(
        title=draft.title, summary=draft.summary, rule_code="household_majority",
        secrecy="open", locale="zh_Hans", solicitation_deadline=None, vote_deadline=None,
        publicity_days=7, proxy_cap=None, double_entry=True, proxy_document_required=True))
    assert draft.double_entry is True and draft.proxy_document_required is True
    assert db.session.scalar(select(func.count(Ballot.id))) == 0


def test_two_first_entries_at_once_give_one_case(doubled, compound, members, monkeypatch):
    """On PostgreSQL two members can start the same household's entry at the same moment, each
    seeing none; the unique index on a household's waiting entry keeps the second one out."""
    h = household(compound)
    entries.enter(members[0], doubled, h, paper(doubled, "agree", "agree"))
    monkeypatch.setattr(entries, "open_case", lambda consultation, household_id: None)
    with pytest.raises(Conflict, match="at the same moment"):
        entries.enter(members[1], doubled, h, paper(doubled, "disagree", "agree"))
    monkeypatch.undo()
    assert db.session.scalar(select(func.count(BallotEntry.id))) == 1
    assert entries.open_case(doubled, h.id).entered_by_id == members[0].id


def test_a_proxys_correction_takes_its_authorisation_as_evidence(voting, compound, members):
    h = household(compound)
    ballots.cast(None, voting, h, answers(voting, "agree", "agree"), BallotChannel.ONLINE)
    lead = entries.enter(members[0], voting, h, paper(
        voting, "disagree", "agree", channel=BallotChannel.PROXY, proxy_name="李四"),
        reason="住户委托李四投票", proxy_document=png_upload("委托书.png"))
    assert lead.state == EntryState.COUNTED and lead.evidence_id == lead.proxy_document_id
    assert ballots.ballot_of(voting, h.id).proxy_document_id == lead.evidence_id
