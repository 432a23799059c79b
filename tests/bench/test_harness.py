"""The scale benchmark's harness: the generated district is what the app itself would have
written (the audit chain and the ballot cross-check hold, a generated resident can vote through
the real views), the hand-written aggregate counts what the tally counts, and the baseline
blueprint never reaches production."""

from __future__ import annotations

import json
from pathlib import Path

import sqlalchemy as sa

from bench import baseline, data, load, scale
from config import TestingConfig
from consult import create_app
from consult.audit import service as audit
from consult.audit.models import AuditEvent
from consult.ballots import service as ballots
from consult.ballots.models import Ballot, RollEntry
from consult.consultations.models import Consultation
from consult.consultations.states import Stage
from consult.extensions import db
from consult.registry.models import Household
from tests import factories

ROOT = Path(__file__).resolve().parents[2]


def _count(model: type) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(model)) or 0


def test_generated_district_is_consistent_and_its_chain_verifies() -> None:
    before = _count(AuditEvent)
    generated = data.generate(300, 3, name="测")

    assert generated.households == 300 and generated.compounds == 3
    assert _count(Household) >= 300
    consultations = [db.session.get(Consultation, c) for c in generated.consultations]
    assert all(c.stage == Stage.VOTING.value and len(c.items) == data.ITEMS
               for c in consultations)
    assert sum(ballots.roll_totals(c).households for c in consultations) == 300
    # Some owners hold several households: fewer owner heads than households on the rolls.
    assert sum(ballots.roll_totals(c).owners for c in consultations) < 300
    assert 0 < generated.ballots < 300
    assert generated.choices == generated.ballots * data.ITEMS
    assert _count(AuditEvent) > before + generated.ballots  # ballots and the services' own
    # Each consultation's events, its ballots included, are in its own chain; the global chain
    # holds the anchors of the stage changes.
    for consultation in consultations:
        head = audit.chain_head(chain=consultation.id)
        assert head[0] > 0 and head[0] == db.session.scalar(
            sa.select(sa.func.count()).where(AuditEvent.chain_id == consultation.id))
    result = audit.verify()
    assert result.ok, (result.problem, result.checks["ballots"].problems[:3])
    assert result.checks["ballots"].checked == generated.ballots


def test_a_changed_generated_ballot_is_caught() -> None:
    """The cross-check really reads the generated ballots: one changed behind the chain's back
    is named (so the passing verify above means something)."""
    data.generate(60, 1, name="改")
    ballot = db.session.scalars(sa.select(Ballot).order_by(Ballot.id.desc())).first()
    ballot.choices[0].choice = "disagree" if ballot.choices[0].choice != "disagree" else "agree"
    db.session.flush()
    result = audit.verify()
    assert not result.ok
    assert [p.ballot_id for p in result.checks["ballots"].problems] == [str(ballot.id)]


def test_padding_keeps_the_chain_valid() -> None:
    data.generate(30, 1, name="补")
    events = _count(AuditEvent)
    target = audit.chain_head()[0] + 500  # the padding goes into the global chain
    assert data.pad_audit(target) == 500
    result = audit.verify()
    assert result.ok and result.checked == events + 500
    assert audit.chain_head()[0] == target


def test_a_generated_resident_votes_through_the_real_views(client) -> None:
    generated = data.generate(160, 2, name="投")
    copied = generated.consultations[1]  # made in bulk from the first, not by the services
    username, consultation_id, items, fresh = next(
        v for v in data.voters(200) if v[1] == copied)
    assert fresh
    from consult.accounts.models import User

    user = db.session.scalar(sa.select(User).where(User.username == username))
    factories.sign_in(client, user)
    assert client.get(f"/consultations/{consultation_id}").status_code == 200
    path = f"/consultations/{consultation_id}/vote"
    assert client.get(path).status_code == 200
    choices = {f"item_{item}": "agree" for item in items}
    review = client.post(path, data=choices)
    assert review.status_code == 200
    submission = load.SUBMISSION.search(review.get_data(as_text=True)).group(1)
    response = client.post(f"{path}/confirm", data={**choices, "submission": submission})
    assert response.status_code == 302
    assert db.session.scalar(sa.select(Ballot).where(
        Ballot.consultation_id == consultation_id, Ballot.household_id == user.household_id))
    assert audit.verify().ok
    # The copy's trail tells the same story as the services' own for the first consultation.
    template = generated.consultations[0]
    def story(consultation_id: int) -> list[tuple[str, list[str], str]]:
        return [(e.action, sorted(json.loads(e.payload)), json.loads(e.payload).get("to", ""))
                for e in audit_events_of(consultation_id)]

    assert story(template) == story(copied)
    assert len(story(copied)) == 6  # created, 3 stage changes, roll frozen, vote opened


def test_a_generated_resident_votes_through_the_api_as_the_bench_does(client) -> None:
    """The requests of ``bench.api_vote``: a password sign-in through the API, the ballot's
    state, the answers with an Idempotency-Key; the ballot is the household's."""
    generated = data.generate(80, 1, name="接")
    username, consultation_id, items, fresh = next(
        v for v in data.voters(100) if v[1] == generated.consultations[0])
    assert fresh
    signed = client.post("/api/v1/auth/password",
                         json={"username": username, "password": data.PASSWORD})
    assert signed.status_code == 200, signed.json
    headers = {"Authorization": f"Bearer {signed.json['access_token']}"}
    path = f"/api/v1/consultations/{consultation_id}/ballot"
    state = client.get(path, headers=headers)
    assert state.status_code == 200 and state.json["vote_open"] and state.json["ballot"] is None
    cast = client.put(path, headers={**headers, "Idempotency-Key": "bench-0000-0001"},
                      json={"choices": [{"item_id": i, "choice": "agree"} for i in items]})
    assert cast.status_code == 200, cast.json
    assert cast.json["ballot"] is not None
    from consult.accounts.models import User

    user = db.session.scalar(sa.select(User).where(User.username == username))
    assert db.session.scalar(sa.select(Ballot).where(
        Ballot.consultation_id == consultation_id, Ballot.household_id == user.household_id))
    assert audit.verify().ok


def audit_events_of(consultation_id: int) -> list:
    from consult.audit.models import AuditEvent

    return list(db.session.scalars(sa.select(AuditEvent).where(
        AuditEvent.object_type == "consultation",
        AuditEvent.object_id == str(consultation_id)).order_by(AuditEvent.seq)))


def test_the_aggregate_counts_what_the_tally_counts() -> None:
    generated = data.generate(120, 1, name="计")
    consultation = db.session.get(Consultation, generated.consultations[0])
    rows = scale.aggregate(consultation)
    result = ballots.compute(consultation)
    for item in result.items:
        by_choice = {row[1]: (row[2], row[3]) for row in rows if row[0] == item.number}
        assert {k: v[0] for k, v in by_choice.items()} == {
            k: n for k, n in item.counts.items() if k in by_choice}
        assert {k: v[1] for k, v in by_choice.items()} == {
            k: a for k, a in item.area_dm2.items() if k in by_choice}
    roll = rows[0]
    assert (roll[5], roll[6], roll[7]) == (
        result.roll.households, result.roll.area_dm2, result.roll.owners)
    assert _count(RollEntry) >= 120


def test_the_baseline_is_never_registered_in_production(app) -> None:
    def bench_rules(application: object) -> list[str]:
        return [rule.rule for rule in application.url_map.iter_rules()
                if rule.rule.startswith(baseline.URL_PREFIX)
                or rule.endpoint.startswith("bench_")]

    assert bench_rules(app) == []
    assert bench_rules(create_app(TestingConfig)) == []
    # The check sees the routes where the bench does register them.
    bench_app = create_app(TestingConfig)
    baseline.register(bench_app)
    assert len(bench_rules(bench_app)) == 3
    # Nothing in the app or its entry point imports the bench.
    sources = [ROOT / "wsgi.py", *sorted((ROOT / "consult").rglob("*.py"))]
    assert not [path for path in sources
                if any(f"{word} bench" in path.read_text(encoding="utf-8")
                       for word in ("import", "from"))]


def test_percentiles_are_nearest_rank() -> None:
    values = [i / 1000 for i in range(1, 101)]  # 1 … 100 ms
    assert load.percentile(values, 0.50) == 0.050
    assert load.percentile(values, 0.99) == 0.099
    assert load.percentile([0.2], 0.99) == 0.2


def test_the_floor_probe_writes_the_vote_s_set_in_the_vote_s_shape(tmp_path, monkeypatch
                                                                      ) -> None:
    """The floor probe does what the bench says it does: three requests, then one ballot with
    its choices and one chained audit event per vote; a changed vote raises the version."""
    import hashlib

    from bench import floor

    path = tmp_path / "floor.sqlite"
    monkeypatch.setenv("FLOOR_DB", str(path))
    monkeypatch.setenv("FLOOR_SECRET", "s" * 32)
    floor._secret.cache_clear()
    floor._local.__dict__.clear()
    floor.setup(str(path), {7: [70, 71]})
    client = floor.app.test_client()
    assert client.post("/floor/7/vote").status_code == 403  # not signed in
    client.get("/floor/login/h001")
    for answer in ("agree", "disagree"):
        form = client.get("/floor/7/vote").get_data(as_text=True)
        csrf = load.CSRF.search(form).group(1)
        choices = {"item_70": answer, "item_71": "abstain"}
        review = client.post("/floor/7/vote", data={"csrf_token": csrf, **choices})
        text = review.get_data(as_text=True)
        submission = load.SUBMISSION.search(text).group(1)
        assert client.post("/floor/7/vote/confirm", data={
            "csrf_token": csrf, "submission": "x.y", **choices}).status_code == 400
        done = client.post("/floor/7/vote/confirm", data={
            "csrf_token": csrf, "submission": submission, **choices})
        assert done.status_code == 302
    assert client.post("/floor/7/vote", data={"csrf_token": csrf, "item_70": "maybe",
                                              "item_71": "agree"}).status_code == 400
    assert floor.counts(path) == (1, 2)
    import sqlite3

    with sqlite3.connect(path) as connection:
        version = connection.execute("SELECT version FROM ballot").fetchone()[0]
        choices = dict(connection.execute("SELECT item_id, choice FROM ballot_choice"))
        events = connection.execute(
            "SELECT seq, created_at, actor, action, object_id, payload, prev_hash, hash "
            "FROM audit_event ORDER BY seq").fetchall()
    assert version == 2 and choices == {70: "disagree", 71: "abstain"}
    previous = "0" * 64
    for seq, created, actor, action, object_id, payload, prev, digest in events:
        fields = json.dumps([seq, created, actor, action, object_id, payload, prev],
                            separators=(",", ":"), ensure_ascii=False)
        assert prev == previous and digest == hashlib.sha256(fields.encode()).hexdigest()
        previous = digest


def test_the_profile_puts_each_function_in_its_layer() -> None:
    from bench.profile import layer_of

    site = "/x/.venv/lib/python3.11/site-packages"
    assert layer_of(f"{site}/sqlalchemy/orm/session.py", "execute") == "SQLAlchemy"
    assert layer_of("/work/templates/base.html", "root") == "Jinja templates"
    assert layer_of(f"{site}/flask_babel/__init__.py", "gettext") == "Babel and translations"
    assert layer_of(f"{site}/flask_login/utils.py", "_get_user") == (
        "Flask, Werkzeug and extensions")
    assert layer_of("/work/consult/ballots/service.py", "cast") == "consult"
    assert layer_of("~", "<method 'execute' of 'sqlite3.Cursor' objects>") == "database driver"
    assert layer_of("~", "<built-in method _hashlib.openssl_sha256>") == "hashing"
    assert layer_of("~", "<built-in method builtins.isinstance>") == "Python built-ins"
