"""What a step freezes (the tally counted at the close of the vote) is written in the
consultation's language, whoever or whatever takes the step: a member reading English or the
other Chinese script, or ``flask close-expired`` run from cron under ``CONSULT_LANG=en``."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from consult.ballots import service as ballots
from consult.ballots.models import BallotChannel, VoteResult
from consult.consultations.states import Action
from consult.core.models import utcnow
from consult.extensions import db
from consult.notices import service as notices
from consult.notices.models import NoticeKind
from consult.process import workflow
from consult.registry.models import Household
from tests import factories
from tests.notices.test_document_language import english_words, other_script


def voting(compound: Any, locale: str) -> Any:
    """A consultation in ``locale`` whose vote is open, with half of its roll voted."""
    c = factories.make_consultation(compound, items=1)
    factories.walk_to(c, "discussing")
    c.locale = locale
    c.vote_deadline = utcnow() + timedelta(days=10)
    workflow.apply(c, Action.OPEN_VOTE, None)
    entries = list(db.session.scalars(ballots.roll_entries(c)))
    for entry in entries[: len(entries) // 2]:
        household = db.session.get(Household, entry.household_id)
        ballots.cast(None, c, household, {item.id: "agree" for item in c.items},
                     BallotChannel.PAPER)
    db.session.flush()
    return c


def frozen_words(c: Any) -> str:
    """Every sentence of the frozen tally: the rule, its conditions, each item's conditions."""
    result = db.session.scalars(select(VoteResult).where(
        VoteResult.consultation_id == c.id)).one()
    tally = json.loads(result.tally_json)
    texts = [tally["rule"]["label"], *(cond["text"] for cond in tally["rule"]["conditions"])]
    texts += [cond["text"] for item in tally["items"] for cond in item["conditions"]]
    assert all(texts), tally
    return "\n".join(texts)


@pytest.mark.parametrize("locale, reader", [("zh_Hans", "en"), ("zh_Hans", "zh_Hant"),
                                            ("zh_Hant", "en"), ("zh_Hant", "zh_Hans")])
def test_a_member_reading_another_language_closes_the_vote(client, compound, locale, reader):
    c = voting(compound, locale)
    c.vote_deadline = utcnow() - timedelta(minutes=1)  # half the roll voted: closed by time
    db.session.flush()
    member = factories.make_user("committee", compound=compound, locale=reader)
    factories.sign_in(client, member)
    r = client.post(f"/consultations/{c.id}/stage",
                    data={"action": "close_vote", "confirmed": "1"},
                    headers={"Accept-Language": reader.replace("_", "-")})
    assert r.status_code == 302, r.text
    assert c.stage == "vote_counted"
    words = frozen_words(c)
    assert english_words(words) == [], words
    assert other_script(words, locale) == [], words


# Cron's environment: one that asks for English, and Debian's default, which names none.
ENVIRONMENTS = {"en": {"CONSULT_LANG": "en"},
                "C": {"CONSULT_LANG": None, "LC_ALL": None, "LC_MESSAGES": None,
                      "LANG": "C.UTF-8"}}


@pytest.mark.parametrize("environment", sorted(ENVIRONMENTS))
@pytest.mark.parametrize("locale", ["zh_Hans", "zh_Hant"])
def test_close_expired_under_cron_environments(app, compound, locale, environment):
    c = voting(compound, locale)
    c.vote_deadline = utcnow() - timedelta(minutes=1)
    db.session.flush()
    result = app.test_cli_runner().invoke(args=["close-expired"],
                                          env=ENVIRONMENTS[environment])
    assert result.exit_code == 0, result.output
    db.session.refresh(c)
    assert c.stage == "vote_counted", result.output
    words = frozen_words(c)
    assert english_words(words) == [], words
    assert other_script(words, locale) == [], words


@pytest.mark.parametrize("locale, reader", [("zh_Hans", "en"), ("zh_Hant", "zh_Hans")])
def test_a_member_reading_another_language_publishes_the_resolution(client, compound, locale,
                                                                   reader):
    c = voting(compound, locale)
    c.vote_deadline = utcnow() - timedelta(minutes=1)
    db.session.flush()
    workflow.apply(c, Action.CLOSE_VOTE, None)
    assert c.stage == "vote_counted"
    member = factories.make_user("committee", compound=compound, locale=reader)
    factories.sign_in(client, member)
    r = client.post(f"/consultations/{c.id}/stage",
                    data={"action": "publish_resolution", "confirmed": "1"},
                    headers={"Accept-Language": reader.replace("_", "-")})
    assert r.status_code == 302, r.text
    notice = notices.current_notice(c, NoticeKind.RESOLUTION)
    assert notice is not None and notice.locale == locale
    content = json.loads(notice.content_json)
    words = "\n".join([content["rule"]["label"], *content["rule"]["sentences"],
                       *(cond["text"] for item in content["tally"]["items"]
                         for cond in item["conditions"])])
    assert english_words(words) == [], words
    assert other_script(words, locale) == [], words
