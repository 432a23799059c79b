"""The resolution notice carries the root of the tree of the counted ballots, next to its
verification code, on the web and on paper, with the address where households check their
ballot."""

from __future__ import annotations

import re
from datetime import timedelta

from consult.ballots import service as ballots
from consult.notices import service as notices
from consult.notices.models import NoticeKind
from consult.process import printing
from tests import factories
from tests.notices.test_pdf import text_of


def test_the_printed_resolution_notice_shows_the_root(app, compound):
    c = factories.make_consultation(compound, items=2, secrecy="confidential")
    factories.walk_to(c, "resolution_public")
    notice = notices.current_notice(c, NoticeKind.RESOLUTION)
    root = ballots.vote_result(c).tree_root
    text = text_of(printing.notice_pdf(notice))
    flat = re.sub(r"\s", "", text)  # a hash may wrap anywhere on paper
    assert root in flat and notice.verify_code in flat and notice.content_sha256 in flat
    assert "8张已计入表决票的哈希树根" in flat  # the tree's size, in the notice's language
    # Where each household checks its own ballot: printed here by a command, with no
    # PUBLIC_URL set, so on the command line's address (tests/notices/test_public_url.py).
    assert f"{printing.COMMAND_LINE_URL}/consultations/{c.id}/proof" in flat
    # The root is in the frozen content, whose SHA-256 the notice carries: printing again
    # gives the same root.
    assert notices.content_of(notice)["proof"]["root"] == root


def test_a_notice_of_a_round_counted_before_trees_existed_prints_without_a_root(compound):
    c = factories.make_consultation(compound, items=1)
    now = factories.walk_to(c, "discussing")
    c.vote_deadline = now + timedelta(days=3)
    from consult.consultations.states import Action
    from consult.process import workflow

    workflow.apply(c, Action.OPEN_VOTE, None, now=now)
    workflow.apply(c, Action.CLOSE_VOTE, None, now=c.vote_deadline)
    result = ballots.vote_result(c)
    result.tree_root = result.tree_size = None  # as a round counted before the upgrade
    workflow.apply(c, Action.PUBLISH_RESOLUTION, None, now=c.vote_deadline)
    notice = notices.current_notice(c, NoticeKind.RESOLUTION)
    assert notices.content_of(notice)["proof"] is None
    text = re.sub(r"\s", "", text_of(printing.notice_pdf(notice)))
    assert notice.verify_code in text and "/proof" not in text
