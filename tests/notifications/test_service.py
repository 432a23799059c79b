"""Notifications: who is notified of what, once; preferences; quiet hours; the outbox rows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from consult.ballots import entries
from consult.ballots import service as ballots
from consult.ballots.models import BallotChannel
from consult.consultations.states import Action
from consult.core.errors import NotFound, ValidationFailed
from consult.core.models import utcnow
from consult.extensions import db
from consult.notices import service as notices
from consult.notices.models import NoticeKind
from consult.notifications import events
from consult.notifications import service as notifications
from consult.notifications.commands import send_pending
from consult.notifications.models import Notification, OutboxMessage
from consult.process import notify_events, workflow
from tests import factories
from tests.access.uploads import png_upload
from tests.conftest import audit_actions
from tests.notifications.conftest import households_with_accounts


def notes_of(user, event=None):
    stmt = select(Notification).where(Notification.user_id == user.id)
    if event:
        stmt = stmt.where(Notification.event == event)
    return list(db.session.scalars(stmt.order_by(Notification.id)))


def outbox_of(user, channel="email"):
    return list(db.session.scalars(select(OutboxMessage).where(
        OutboxMessage.user_id == user.id, OutboxMessage.channel == channel)))


def test_opening_solicitation_notifies_every_household_of_the_scope_once(compound, smtp):
    users = households_with_accounts(compound)
    staff = factories.make_user("committee", compound=compound)
    elsewhere = factories.make_user("resident", compound=factories.make_compound("别处"))
    c = factories.make_consultation(compound)
    workflow.apply(c, Action.START_SOLICITING, staff)
    for user in users:
        [note] = notes_of(user)
        assert note.event == events.STAGE_OPENED and note.read_at is None
        assert note.link == f"/consultations/{c.id}"
        assert len(outbox_of(user)) == 1
    assert notes_of(staff) == [] and notes_of(elsewhere) == []
    # The same event again (a retried call) notifies nobody twice.
    assert notify_events.stage_opened(c, c.stage_enum, utcnow()) == 0
    assert db.session.scalar(select(func.count(Notification.id))) == len(users)
    assert db.session.scalar(select(func.count(OutboxMessage.id))) == len(users)


def test_the_vote_opening_notifies_the_roll_and_a_rollback_notifies_nobody(compound):
    users = households_with_accounts(compound, emails=False)
    c = factories.make_consultation(compound)
    factories.walk_to(c, "discussing")
    c.vote_deadline = utcnow() + timedelta(days=7)
    savepoint = db.session.begin_nested()
    workflow.apply(c, Action.OPEN_VOTE, None)
    assert all(notes_of(u, events.STAGE_OPENED)[-1].params_json.count('"voting"') for u in users)
    savepoint.rollback()
    # The stage change and its notifications share one transaction.
    assert all(not any('"voting"' in n.params_json for n in notes_of(u)) for u in users)
    # Without an email address no outbox row is written at all.
    assert db.session.scalar(select(func.count(OutboxMessage.id))) == 0


def test_a_switched_off_event_writes_no_row_for_that_channel(compound, smtp):
    first, second, *_ = households_with_accounts(compound)
    notifications.save_preferences(first, "first@example.org",
                                   {"email": [events.STAGE_OPENED]}, "", "")
    assert audit_actions()[-1] == "notifications.preferences_changed"
    c = factories.make_consultation(compound)
    workflow.apply(c, Action.START_SOLICITING, None)
    # In-app always; email only where the event is on.
    assert len(notes_of(first)) == len(notes_of(second)) == 1
    assert outbox_of(first) == [] and len(outbox_of(second)) == 1


def test_quiet_hours_hold_outbound_messages_until_they_end(compound, smtp):
    [user, *_] = households_with_accounts(compound)
    notifications.save_preferences(user, "q@example.org", {}, "22:00", "07:00")
    # 23:00 in Beijing (15:00 UTC): within the quiet hours.
    late = datetime(2026, 12, 4, 15, 0, tzinfo=UTC)
    notifications.notify(events.BALLOT_CORRECTED, [user], {"consultation": "电梯"}, "/",
                         "quiet-test", now=late)
    [note] = notes_of(user)
    assert note.created_at == late  # in-app at once
    [row] = outbox_of(user)
    assert row.next_attempt_at == datetime(2026, 12, 4, 23, 0, tzinfo=UTC)  # 07:00 Beijing
    assert send_pending(late + timedelta(hours=7)).sent == 0
    assert smtp.messages == []
    assert send_pending(datetime(2026, 12, 4, 23, 1, tzinfo=UTC)).sent == 1
    assert [m["To"] for m in smtp.messages] == ["q@example.org"]


def test_quiet_hours_chosen_after_queueing_still_hold_the_message(compound, smtp):
    [user, *_] = households_with_accounts(compound)
    early = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)  # 20:00 in Beijing
    notifications.notify(events.BALLOT_CORRECTED, [user], {"consultation": "电梯"}, "/",
                         "quiet-later", now=early)
    notifications.save_preferences(user, "q@example.org", {}, "19:30", "06:00")
    counts = send_pending(early)
    assert (counts.sent, counts.deferred) == (0, 1)
    [row] = outbox_of(user)
    assert row.next_attempt_at == datetime(2026, 12, 4, 22, 0, tzinfo=UTC)


def test_quiet_hours_within_one_day_and_none():
    prefs = notifications.Preferences(quiet_start=13 * 60, quiet_end=14 * 60)
    noon_thirty = datetime(2026, 12, 4, 5, 30, tzinfo=UTC)  # 13:30 Beijing
    assert prefs.quiet_until(noon_thirty) == datetime(2026, 12, 4, 6, 0, tzinfo=UTC)
    assert prefs.quiet_until(noon_thirty + timedelta(hours=1)) is None
    assert notifications.Preferences().quiet_until(noon_thirty) is None


def test_preferences_refuse_bad_input_and_keep_to_the_persons_events(compound):
    user = factories.make_user("resident", household=compound.buildings[0].households[0])
    with pytest.raises(ValidationFailed) as refused:
        notifications.save_preferences(user, "not an address", {}, "25:00", "")
    assert set(refused.value.errors) == {"email", "quiet_start"}
    with pytest.raises(ValidationFailed) as refused:
        notifications.save_preferences(user, "", {}, "22:00", "")
    assert set(refused.value.errors) == {"quiet_end"}
    notifications.save_preferences(user, "", {"email": ["staff_todo", "vote_closing"]}, "", "")
    assert notifications.preferences_of(user).off["email"] == {"vote_closing"}


def test_the_48_hour_reminder_goes_once_and_not_to_a_household_that_voted(compound, smtp):
    users = households_with_accounts(compound)
    voted, waiting = users[0], users[1:]
    c = factories.make_consultation(compound)
    factories.walk_to(c, "discussing")
    now = utcnow()
    c.vote_deadline = now + timedelta(hours=60)
    workflow.apply(c, Action.OPEN_VOTE, None, now=now)
    ballots.cast(None, c, voted.household, {i.id: "agree" for i in c.items},
                 BallotChannel.ONLINE, now=now)
    # 60 hours ahead: not yet.
    assert notify_events.vote_reminders(now) == 0
    later = now + timedelta(hours=13)
    assert notify_events.vote_reminders(later) == len(waiting)
    assert notify_events.vote_reminders(later + timedelta(hours=1)) == 0
    assert notes_of(voted, events.VOTE_CLOSING) == []
    for user in waiting:
        assert len(notes_of(user, events.VOTE_CLOSING)) == 1
        assert len([r for r in outbox_of(user) if r.event == events.VOTE_CLOSING]) == 1
    # Past the deadline nobody is reminded.
    assert notify_events.vote_reminders(now + timedelta(hours=61)) == 0


def test_a_committee_correction_tells_the_household(compound):
    users = households_with_accounts(compound, emails=False)
    c = factories.make_consultation(compound)
    factories.walk_to(c, "discussing")
    c.vote_deadline = utcnow() + timedelta(days=7)
    workflow.apply(c, Action.OPEN_VOTE, None)
    member = factories.make_user("committee", compound=compound)
    household = users[0].household
    ballots.cast(None, c, household, {i.id: "agree" for i in c.items}, BallotChannel.ONLINE)
    assert notes_of(users[0], events.BALLOT_CORRECTED) == []
    entries.enter(member, c, household, entries.Paper(
        BallotChannel.PAPER, {i.id: "disagree" for i in c.items}, serial="P-1"),
        reason="交回纸质票", evidence=png_upload("scan.png"))
    [note] = notes_of(users[0], events.BALLOT_CORRECTED)
    assert note.link == f"/consultations/{c.id}"
    assert all(notes_of(u, events.BALLOT_CORRECTED) == [] for u in users[1:])


def test_an_answered_objection_tells_the_household_that_objected(compound):
    users = households_with_accounts(compound, emails=False)
    c = factories.make_consultation(compound)
    factories.walk_to(c, "resolution_public")
    notice = notices.current_notice(c, NoticeKind.RESOLUTION)
    objection = notices.file_objection(users[0], notice, users[0].household, "面积算错了")
    member = factories.make_user("committee", compound=compound)
    notices.answer_objection(member, objection, "已核对，面积无误。")
    [note] = notes_of(users[0], events.OBJECTION_ANSWERED)
    assert note.link == f"/notices/{notice.id}"
    assert all(notes_of(u, events.OBJECTION_ANSWERED) == [] for u in users[1:])


def test_staff_get_one_notification_per_new_to_do_item(compound):
    member = factories.make_user("committee", compound=compound)
    resident = factories.make_user("resident", household=compound.buildings[0].households[0])
    c = factories.make_consultation(compound)
    factories.walk_to(c, "resolution_public")
    notice = notices.current_notice(c, NoticeKind.RESOLUTION)
    notices.file_objection(resident, notice, resident.household, "有异议")
    assert notify_events.staff_todos(utcnow()) >= 1
    [note] = notes_of(member, events.STAFF_TODO)
    assert '"objections"' in note.params_json
    assert notify_events.staff_todos(utcnow()) == 0  # not again
    assert notes_of(resident, events.STAFF_TODO) == []


def test_marking_read_is_for_ones_own_notifications_only(compound):
    mine, neighbour = households_with_accounts(compound, emails=False)[:2]
    for key in ("a", "b"):
        notifications.notify(events.BALLOT_CORRECTED, [mine, neighbour], {"consultation": "x"},
                             "/", key)
    assert notifications.unread_count(mine.id) == 2
    theirs = notes_of(neighbour)[0]
    with pytest.raises(NotFound):
        notifications.mark_read(mine, theirs.id)
    notifications.mark_read(mine, notes_of(mine)[0].id)
    assert notifications.unread_count(mine.id) == 1
    assert notifications.mark_all_read(mine) == 1
    assert notifications.unread_count(mine.id) == 0
    assert notifications.unread_count(neighbour.id) == 2


def test_notify_refuses_an_unknown_event_and_skips_inactive_accounts(compound):
    user = factories.make_user("resident", household=compound.buildings[0].households[0],
                              active=False)
    with pytest.raises(ValueError):
        notifications.notify("no_such_event", [user], {}, "/", "k")
    assert notifications.notify(events.BALLOT_CORRECTED, [user], {}, "/", "k") == 0


def test_outbound_messages_are_in_the_recipients_language_or_the_consultations(compound,
                                                                              smtp):
    from consult.notifications.channels import compose

    english, chinese = households_with_accounts(compound)[:2]
    english.locale = "en"
    db.session.flush()
    notifications.notify(events.VOTE_CLOSING, [english, chinese],
                         {"consultation": "电梯", "deadline": "2026-12-06T10:00:00+00:00",
                          "locale": "zh_Hant"}, "/consultations/3", "lang")
    [to_english], [to_chinese] = outbox_of(english), outbox_of(chinese)
    subject, text = compose(to_english)
    assert subject == "电梯: the vote closes soon"
    assert "has not voted yet" in text and "https://yishi.example.org/consultations/3" in text
    subject, text = compose(to_chinese)
    assert to_chinese.locale == "zh_Hant" and "表決即將截止" in subject
    assert "2026/12/6" in text and "6:00" in text  # Beijing time (10:00 UTC)
