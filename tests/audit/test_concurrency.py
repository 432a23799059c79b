"""Concurrent writers queue on a chain's head instead of forking the chain; writers of
different chains do not queue at all (on PostgreSQL).

These tests commit for real from several threads (on whichever database the suite runs on:
SQLite by default, PostgreSQL in the CI's second run), then empty the tables again.
"""

import os
import threading
import time

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from consult.audit import service as audit
from consult.audit.models import AuditEvent
from consult.extensions import db
from tests import factories

THREADS = 8
EVENTS_EACH = 15


@pytest.mark.committing
def test_threads_appending_at_once_keep_one_unbroken_chain(app):
    compound = factories.make_compound_with_households(per_building=1)
    db.session.commit()
    compound_id = compound.id
    db.session.remove()

    barrier = threading.Barrier(THREADS)
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        with app.app_context():
            try:
                barrier.wait()
                for i in range(EVENTS_EACH):
                    audit.record(None, "registry.household.updated",
                                 ("household", n, compound_id), {"thread": n, "i": i})
                    db.session.commit()
            except BaseException as exc:  # collected and asserted below
                errors.append(exc)
                db.session.rollback()
            finally:
                db.session.remove()

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    total = db.session.scalar(select(func.count(AuditEvent.seq)))
    assert total == THREADS * EVENTS_EACH
    # One chain (the global one), gapless: nobody forked it.
    assert db.session.scalar(select(func.max(AuditEvent.chain_seq))) == total
    assert db.session.scalar(select(func.count(AuditEvent.chain_id.distinct()))) == 1
    result = audit.verify()
    assert result.ok and result.checked == total


@pytest.mark.committing
def test_a_rolled_back_change_leaves_no_event_and_no_gap(app):
    compound = factories.make_compound_with_households(per_building=1)
    db.session.commit()
    audit.record(None, "registry.household.updated", compound.buildings[0].households[0], {})
    db.session.rollback()
    event = audit.record(None, "registry.household.updated",
                         compound.buildings[0].households[0], {})
    db.session.commit()
    # The event number may skip the rolled-back one; the chain does not.
    assert (event.chain_id, event.chain_seq) == (0, 1) and audit.verify().ok


ON_POSTGRESQL = (os.environ.get("TEST_DATABASE_URL") or os.environ.get("DATABASE_URL")
                 or "").startswith("postgresql")


@pytest.mark.committing
@pytest.mark.skipif(not ON_POSTGRESQL, reason="row locks of PostgreSQL (SQLite has one "
                                              "write lock for the whole database)")
def test_appends_to_different_chains_do_not_wait_for_each_other(app):
    """One transaction appends to chain 1 and stays open, holding that chain's head. Another
    appends to chain 2 at once (within its lock timeout), but waits for chain 1's head."""
    for chain in (1, 2):  # both heads exist, committed
        audit.record(None, "test.event", None, {}, chain=chain)
    db.session.commit()
    holding, other = Session(db.engine), Session(db.engine)
    try:
        audit.record(None, "test.event", None, {"who": "holding"}, session=holding, chain=1)
        other.execute(text("SET LOCAL lock_timeout = '2s'"))
        started = time.perf_counter()
        appended = audit.record(None, "test.event", None, {"who": "other"}, session=other,
                                chain=2)
        assert (appended.chain_id, appended.chain_seq) == (2, 2)
        assert time.perf_counter() - started < 1.5
        other.commit()
        other.execute(text("SET LOCAL lock_timeout = '300ms'"))
        with pytest.raises(OperationalError, match="lock timeout"):
            audit.record(None, "test.event", None, {"who": "other"}, session=other, chain=1)
        other.rollback()
        # So does the global chain's head: a stage change's anchor waits for no ballot.
        other.execute(text("SET LOCAL lock_timeout = '2s'"))
        audit.anchor(2, session=other)
        other.commit()
        holding.commit()
    finally:
        holding.close()
        other.close()
    assert audit.chain_head(chain=1)[0] == 2 and audit.verify().ok
