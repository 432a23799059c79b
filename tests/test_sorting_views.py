"""Committee tables sort by their column headers, keep their filters, and say how they are
sorted (aria-sort); an unknown order falls back to the usual one."""

from __future__ import annotations

import re
from datetime import timedelta

from consult.ballots import service as ballots
from consult.ballots.models import BallotChannel
from consult.core.models import utcnow
from consult.extensions import db
from consult.registry.models import Household
from tests import factories

EN = {"Accept-Language": "en"}


def rooms(html: str) -> list[str]:
    """The rooms of the households table, top to bottom."""
    return re.findall(r'/registry/households/\d+">([^<]+)</a>', html)


def test_households_sort_by_area_both_ways_and_keep_the_search(client, login_as, compound):
    login_as("committee", compound=compound)
    url = f"/registry/compounds/{compound.id}"
    assert rooms(client.get(url).text) == ["101", "102", "201", "202"] * 2
    largest = client.get(f"{url}?sort=-area").text
    assert rooms(largest)[:2] == ["202", "202"]  # 63.00 m² in each building
    assert 'aria-sort="descending"' in largest and "?sort=area" in largest  # click: turn round
    smallest = client.get(f"{url}?sort=area&q=10").text
    assert rooms(smallest) == ["101", "101", "102", "102"]  # only rooms matching "10"
    assert '<input type="hidden" name="sort" value="area">' in smallest  # searching keeps it
    assert rooms(client.get(f"{url}?sort=phone").text) == rooms(client.get(url).text)


def test_ballot_list_sorts_by_when_ballots_were_recorded(client, login_as, compound):
    login_as("committee", compound=compound)
    c = factories.make_consultation(compound, items=1)
    factories.walk_to(c, "discussing")
    c.vote_deadline = utcnow() + timedelta(days=5)
    from consult.consultations.states import Action
    from consult.process import workflow

    now = utcnow()
    workflow.apply(c, Action.OPEN_VOTE, None, now=now)
    late, early = compound.buildings[1].households[3], compound.buildings[0].households[2]
    for minutes, household in ((5, early), (50, late)):
        ballots.cast(None, c, household, {c.items[0].id: "agree"}, BallotChannel.ONLINE,
                     now=now + timedelta(minutes=minutes))
    page = client.get(f"/consultations/{c.id}/ballots?sort=-cast", headers=EN).text
    rows = re.findall(r"<td>(?:<a [^>]*>)?(\d号楼)(?:</a>)?</td><td>1</td><td>(\d+)</td>", page)
    assert rows[:2] == [("2号楼", late.room), ("1号楼", early.room)]  # newest ballot first
    assert len(rows) == 8  # then the households still missing a ballot
    assert 'aria-sort="descending"' in page


def test_accounts_and_audit_trail_sort(client, login_as, compound):
    admin = login_as("admin")
    factories.make_user("committee", username="aaa-first")
    page = client.get("/admin/users?sort=username", headers=EN).text
    names = re.findall(r'/admin/users/\d+">([^<]+)</a>', page)
    assert names == sorted(names) and names[0] == "aaa-first"
    assert admin.username in names
    oldest = client.get("/audit/?sort=seq", headers=EN).text
    newest = client.get("/audit/", headers=EN).text
    seqs = [int(n) for n in re.findall(r'/audit/(\d+)"', oldest)]
    assert seqs == sorted(seqs)
    assert [int(n) for n in re.findall(r'/audit/(\d+)"', newest)] == sorted(seqs, reverse=True)


def test_opinions_can_be_read_newest_first(client, login_as, compound):
    from consult.consultations import opinions

    c = factories.make_consultation(compound, stage="soliciting")
    households = db.session.query(Household).limit(3).all()
    made = [opinions.submit(None, c, h, opinions.opinion_data(category="roads", text=f"意见{n}"))
            for n, h in enumerate(households)]
    opinions.support(None, made[0], households[1])
    login_as("committee", compound=compound)
    url = f"/consultations/{c.id}/opinions"
    texts = lambda html: re.findall(r"意见\d", html)  # noqa: E731
    assert texts(client.get(url).text)[0] == "意见0"  # the most supported first
    assert texts(client.get(f"{url}?order=newest").text) == ["意见2", "意见1", "意见0"]
    assert texts(client.get(f"{url}?order=nonsense").text)[0] == "意见0"


def test_query_arguments_named_like_path_arguments_or_url_options_leave_the_links(
        client, login_as, compound):
    login_as("committee", compound=compound)
    url = f"/registry/compounds/{compound.id}"
    response = client.get(f"{url}?compound_id=999&q=10")
    assert response.status_code == 200  # was a 500: url_for got compound_id twice
    links = re.findall(r'href="([^"]*sort=[^"]*)"', response.text)
    assert links and all(link.startswith(f"{url}?") and "q=10" in link for link in links)
    assert not any("compound_id" in link for link in links)
    # nor does one named like url_for's own options change the links
    response = client.get(f"{url}?_external=1&_anchor=x&q=10")
    links = re.findall(r'href="([^"]*sort=[^"]*)"', response.text)
    assert links and all(link.startswith(f"{url}?") and "#" not in link for link in links)
