"""What a household's online ballot does once it holds the consultation (``lock_row``: SQLite's
write lock, PostgreSQL's shared row lock) until it commits: only its writes and the reads that
must be current (the consultation's state, the chain head). Everything else (the signed-in
account, the roll, the items, the answers) is read and checked before, so ballots queue for as
short a time as the writes take (docs/benchmarks.md)."""

import re

import pytest
from sqlalchemy import event

from consult.ballots import service as ballots
from consult.core.database import lock_row as real_lock_row
from consult.extensions import db

EN = {"Accept-Language": "en"}


LOCKED = "-- lock_row"


def _statements_while_locked(statements: list[str]) -> list[str]:
    start = statements.index(LOCKED)
    end = next(i for i in range(start, len(statements))
               if statements[i].startswith(("COMMIT", "RELEASE SAVEPOINT")))
    return statements[start + 1:end]


def _read_tables(statement: str) -> set[str]:
    return set(re.findall(r"\bFROM (\w+)", statement)) | set(re.findall(r"\bJOIN (\w+)",
                                                                         statement))


@pytest.mark.parametrize("first", [True, False], ids=["first ballot", "changed ballot"])
def test_only_writes_and_current_state_inside_the_serialised_section(
        client, login_as, voting, compound, first, monkeypatch):
    login_as("resident", household=compound.buildings[0].households[0])
    fields = {f"item_{item.id}": "agree" for item in voting.items}
    path = f"/consultations/{voting.id}/vote"
    if not first:
        review = client.post(path, data=fields, headers=EN).text
        token = re.search(r'name="submission" type="hidden" value="([^"]+)"', review).group(1)
        assert client.post(f"{path}/confirm", data={**fields, "submission": token}
                           ).status_code == 302
    review = client.post(path, data=fields, headers=EN).text
    token = re.search(r'name="submission" type="hidden" value="([^"]+)"', review).group(1)
    statements: list[str] = []

    def seen(_conn, _cursor, statement, *_args):
        statements.append(" ".join(statement.split()))

    def lock_row(obj, **kwargs):
        statements.append(LOCKED)
        real_lock_row(obj, **kwargs)

    monkeypatch.setattr(ballots, "lock_row", lock_row)
    event.listen(db.engine, "before_cursor_execute", seen)
    try:
        answer = client.post(f"{path}/confirm", data={**fields, "submission": token})
    finally:
        event.remove(db.engine, "before_cursor_execute", seen)
    assert answer.status_code == 302
    locked = _statements_while_locked(statements)
    reads = set().union(*(_read_tables(s) for s in locked if s.startswith("SELECT")))
    # The consultation's state (a close may have committed since the checks) and the head of
    # the audit chain; a changed ballot also reads its own row and answers to replace them.
    allowed = {"consultation", "audit_head"} | (set() if first else {"ballot", "ballot_choice"})
    assert reads <= allowed, locked
    writes = [s.split()[0] + " " + s.split()[2] for s in locked if not s.startswith("SELECT")]
    assert all(w.split()[0] in {"INSERT", "UPDATE", "DELETE"} for w in writes), locked
    # The checks before the lock: the account, the roll and the items were read there.
    before = statements[:statements.index(LOCKED)]
    assert any("FROM roll_entry" in s for s in before)
    assert any("FROM user_account" in s for s in before)
    assert len(locked) <= (8 if first else 11), locked
    # The items' attachments are not what a ballot needs: they are not loaded at all.
    assert not any("attachment" in s for s in statements), statements
