"""Concurrent writers queue on the chain head instead of forking the chain.

These tests commit for real from several threads (on whichever database the suite runs on:
SQLite by default, PostgreSQL in the CI's second run), then empty the tables again.
"""

import threading

import pytest
from sqlalchemy import func, select

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
