"""The ballot commands of DESIGN §7, as a shell would run them."""

import json
from datetime import timedelta

import pytest

from consult.ballots import service as ballots
from consult.ballots.models import BallotChannel
from consult.core.models import utcnow
from consult.extensions import db
from tests import factories

EN = {"CONSULT_LANG": "en"}



def test_tally_json_has_the_documented_shape(runner, compound):
    c = factories.make_consultation(compound, items=2)
    factories.walk_to(c, "resolution_public")
    result = runner.invoke(args=["ballots", "tally", str(c.id), "--json"], env=EN)
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert {"consultation_id", "stage", "rule", "roll", "participation", "items"} <= set(data)
    assert data["provisional"] is False and data["stage"] == "resolution_public"
    assert set(data["roll"]) == {"households", "owners", "area_m2"}
    # 8 households: 2 buildings × (60 + 61 + 62 + 63 m²)
    assert data["roll"]["households"] == 8 and data["roll"]["area_m2"] == "492.00"
    item = data["items"][0]
    assert {"number", "title", "counts", "owners", "area_m2", "percentages", "conditions",
            "passed"} <= set(item)
    assert sum(float(p) for p in item["percentages"].values()) == pytest.approx(100.0)
    assert set(item["conditions"][0]) >= {"text", "numerator", "denominator", "threshold", "met"}
    assert item["conditions"][0]["text"] == "同意户数：8/8 = 100.00% > 1/2 ✓"
    assert item["passed"] is True


def test_tally_while_voting_is_provisional(runner, voting):
    result = runner.invoke(args=["ballots", "tally", str(voting.id), "--json"], env=EN)
    assert json.loads(result.output)["provisional"] is True
    human = runner.invoke(args=["ballots", "tally", str(voting.id)], env=EN)
    assert "Provisional" in human.output and "1. 改造项目1" in human.output


def test_tally_of_unknown_or_unopened_consultations(runner, compound):
    assert runner.invoke(args=["ballots", "tally", "999999"], env=EN).exit_code == 1
    draft = factories.make_consultation(compound)
    result = runner.invoke(args=["ballots", "tally", str(draft.id)], env=EN)
    assert result.exit_code == 1 and "not started" in result.output


def test_import_ballots_command(runner, tmp_path, voting, compound):
    good = tmp_path / "ballots.csv"
    good.write_text("building,unit,room,item,choice,channel,serial\n"
                    "1号楼,1,101,1,agree,paper,X-1\n1号楼,1,101,2,反对,书面,X-1\n",
                    encoding="utf-8")
    result = runner.invoke(args=["ballots", "import", str(voting.id), str(good)], env=EN)
    assert result.exit_code == 0, result.output
    assert "1 households (1 new, 0 changed)" in result.output
    bad = tmp_path / "bad.csv"
    bad.write_text("building,unit,room,item,choice,channel\n1号楼,1,101,7,agree,paper\n",
                   encoding="utf-8")
    result = runner.invoke(args=["ballots", "import", str(voting.id), str(bad)], env=EN)
    assert result.exit_code == 1 and "Line 2, column D (item)" in result.output


def test_export_roll_command(runner, tmp_path, voting):
    out = tmp_path / "roll.xlsx"
    result = runner.invoke(args=["ballots", "export-roll", str(voting.id), str(out)], env=EN)
    assert result.exit_code == 0 and out.read_bytes()[:2] == b"PK"
    assert runner.invoke(args=["ballots", "export-roll", str(voting.id), str(tmp_path / "r.pdf")],
                         env=EN).exit_code == 1


def test_close_expired_command(runner, voting):
    voting.vote_deadline = utcnow() - timedelta(minutes=1)
    db.session.flush()
    result = runner.invoke(args=["consultations", "close-expired"], env=EN)
    assert result.exit_code == 0 and f"{voting.id}: close_vote" in result.output
    assert ballots.vote_result(voting) is not None
    again = runner.invoke(args=["consultations", "close-expired"], env=EN)
    assert "0 consultations updated." in again.output


@pytest.mark.parametrize(("lang", "labels"), [
    ("en", ["Agree", "Disagree", "Abstain", "No answer"]),
    ("zh_Hant", ["同意", "反對", "棄權", "未表態"]),
])
def test_tally_lists_the_answers_translated_in_a_fixed_order(runner, voting, lang, labels,
                                                             monkeypatch):
    # The order is the method's, whatever order the counts come in (from the database or from
    # a frozen JSON): here they come reversed.
    current_tally = ballots.current_tally

    def reversed_counts(consultation):
        data = current_tally(consultation)
        for item in data["items"]:
            item["counts"] = dict(reversed(list(item["counts"].items())))
        return data

    monkeypatch.setattr(ballots, "current_tally", reversed_counts)
    households = [h for b in voting.compound.buildings for h in b.households]
    for household, choice in zip(households, ["abstain", "disagree", "agree", "disagree"],
                                 strict=False):
        ballots.cast(None, voting, household, {item.id: choice for item in voting.items},
                     BallotChannel.ONLINE)
    db.session.commit()
    result = runner.invoke(args=["ballots", "tally", str(voting.id)],
                           env={"CONSULT_LANG": lang})
    assert result.exit_code == 0, result.output
    item = result.output.split("1. ", 1)[1].split("2. ", 1)[0].splitlines()
    shown = [line.strip().rsplit(None, 2)[0] for line in item[1:]
             if line.endswith("%") and "/" not in line]
    assert shown == labels
