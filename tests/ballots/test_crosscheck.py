"""The comparison of a stored ballot with its latest audit event (pure parts), and the
cross-check as a check of the audit chain."""

from datetime import UTC, datetime

from consult.audit import checks
from consult.audit.service import canonical_json, format_time
from consult.ballots import records
from consult.ballots.crosscheck import (
    BallotCheck,
    BallotOutcome,
    BallotProblem,
    StoredBallot,
    _event_time,
    compare,
    describe,
)

RECEIPT = "ABCD-EFGH-JKLM-NPQR"
BALLOT = StoredBallot(
    id=7, consultation_id=3, round=1, household_id=41, channel="paper", version=2,
    receipt=RECEIPT, serial="P-7", proxy=False, cast_at="2026-03-01T02:03:04.000005Z",
    area_dm2=8532, owner="0123456789abcdef0123456789abcdef",
    choices={"1": "agree", "2": "abstain"}, receipt_hash=records.receipt_hash(3, 1, RECEIPT),
    legacy_owner="fedcba9876543210")


def event(**changes):
    payload = {
        "consultation_id": 3, "round": 1, "household_id": 41,
        "owner": "0123456789abcdef0123456789abcdef", "area_dm2": 8532, "channel": "paper",
        "version": 2, "serial": "P-7", "proxy": False,
        "receipt_hash": records.receipt_hash(3, 1, RECEIPT),
        "cast_at": "2026-03-01T02:03:04.000005Z", "choices": {"1": "agree", "2": "abstain"}}
    payload.update(changes)
    return canonical_json({k: v for k, v in payload.items() if v is not ...})


def legacy_event(**changes):
    """An event as ballots recorded them before: the receipt itself, an unkeyed owner token."""
    return event(receipt_hash=..., receipt=RECEIPT, owner="fedcba9876543210", **changes)


def test_a_ballot_as_recorded_has_no_problem():
    assert compare(BALLOT, 9, event()) == []
    # Confidential ballots do not record the household; older events lack the time cast.
    assert compare(BALLOT, 9, event(household_id=None, cast_at=...)) == []
    # Events written before: the receipt itself and the unkeyed owner token.
    assert compare(BALLOT, 9, legacy_event()) == []


def test_a_changed_receipt_or_owner_is_named_in_either_format():
    other = BALLOT._replace(receipt="ZZZZ-ZZZZ-ZZZZ-ZZZZ",
                            receipt_hash=records.receipt_hash(3, 1, "ZZZZ-ZZZZ-ZZZZ-ZZZZ"),
                            owner="1" * 32, legacy_owner="2" * 16)
    assert [p.name for p in compare(other, 9, event())] == ["owner", "receipt_hash"]
    assert [p.name for p in compare(other, 9, legacy_event())] == ["owner", "receipt"]


def test_every_difference_is_named(app):
    problems = compare(BALLOT, 9, event(version=3, household_id=40,
                                        choices={"1": "disagree", "3": "agree"}))
    assert [(p.kind, p.name, p.expected, p.found) for p in problems] == [
        ("field", "household_id", 40, 41), ("field", "version", 3, 2),
        ("choice", "1", "disagree", "agree"), ("choice", "2", None, "abstain"),
        ("choice", "3", "agree", None)]
    with app.test_request_context(headers={"Accept-Language": "en"}):
        assert describe(problems[1]) == (
            "ballot #7: the version is “2” in the database but “3” in audit event #9")
        assert describe(problems[3]) == ("ballot #7: the answer on item 2 is “Abstain” in the "
                                         "database but nothing in audit event #9")


def test_an_unreadable_event_is_a_problem():
    assert [p.kind for p in compare(BALLOT, 9, "{not json")] == ["unreadable"]
    assert [p.kind for p in compare(BALLOT, 9, '{"choices": 5}')] == ["unreadable"]


def test_stored_times_are_written_as_the_events_write_them():
    for moment in (datetime(2026, 3, 1, 2, 3, 4, 5, tzinfo=UTC),
                   datetime(2026, 12, 31, 23, 59, 59, tzinfo=UTC)):
        assert _event_time(moment.replace(tzinfo=None)) == format_time(moment)


def test_the_app_cross_checks_the_ballots_when_it_verifies_the_chain(app):
    assert checks.registered(app)["ballots"] is BallotCheck
    assert BallotCheck().actions == {"ballot.cast", "ballot.changed"}


def test_the_outcome_names_twenty_problems_then_counts_the_rest(app):
    with app.test_request_context(headers={"Accept-Language": "en"}):
        assert BallotOutcome(1, ()).lines() == ["1 stored ballot matches the audit trail."]
        problems = tuple(BallotProblem(str(n), "unrecorded") for n in range(22))
        lines = BallotOutcome(30, problems).lines()
    assert lines[0] == "The stored ballots disagree with the audit trail (22 problems):"
    assert lines[1].startswith("- ballot #0 is in the database but no audit event records it")
    assert lines[20].startswith("- ballot #19 ")
    assert lines[21:] == ["… and 2 more."]


def test_the_report_of_a_sound_trail(compound):
    from consult.audit import service as audit
    from consult.audit.report import verify_report

    audit.record(None, "registry.household.updated", compound.buildings[0].households[0], {})
    report = verify_report()
    assert report.problem is None
    assert report.lines[0].startswith("The audit chain holds: ")
    assert report.lines[1] == "0 stored ballots match the audit trail."
