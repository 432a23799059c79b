"""The demo's finished scoring round: among whatever compounds exist when it runs."""

from sqlalchemy import func, select

from consult.demo_scoring import seed_scoring
from consult.extensions import db
from consult.notices import service as notices
from consult.registry.models import Compound
from consult.scoring import service as scoring
from tests import factories


def test_with_two_compounds_a_third_is_added_and_the_round_is_published():
    for name in ("劳动局家属院", "纺织厂宿舍"):
        factories.make_compound(name)
    admin = factories.make_user("admin")
    round_ = seed_scoring(admin)
    assert db.session.scalar(select(func.count(Compound.id))) == 3
    assert not round_.is_open and len(round_.participants) == 3
    notice = scoring.ranking_notice(round_)
    assert notice is not None
    content = notices.content_of(notice)
    assert [r["rank"] for r in content["ranking"]] == sorted(r["rank"] for r in content["ranking"])
    assert sum(r["honour"] for r in content["ranking"]) >= 1
    assert scoring.progress(round_).missing == 0
    assert seed_scoring(admin).id == round_.id  # a second run finds it


def test_with_a_dozen_compounds_all_take_part_and_the_marked_down_one_is_flagged():
    compounds = [factories.make_compound(f"小区{n:02d}") for n in range(12)]
    round_ = seed_scoring(factories.make_user("admin"))
    assert {p.compound_id for p in round_.participants} == {c.id for c in compounds}
    content = notices.content_of(scoring.ranking_notice(round_))
    assert len(content["ranking"]) == 12
    assert {"compound": "小区00", "scorer": "小区01"}.items() <= content["outliers"][0].items()
