"""The consultation list: search in titles and a filter by compound, with the stage filter and
across pages."""

import re

import pytest

from consult.accounts.models import UserScope
from consult.extensions import db
from tests import factories

EN = {"Accept-Language": "en"}


def titles(page: str) -> list[str]:
    """The consultation titles listed, in order."""
    return re.findall(r'<a class="h5 mb-0 me-auto" href="/consultations/\d+">([^<]+)</a>', page)


@pytest.fixture
def two(compound):
    """A member who runs the consultations of two compounds, each with some."""
    other = factories.make_compound("和平里")
    for title, stage in (("加装电梯", "discussing"), ("Roof REPAIR", "soliciting"),
                         ("路面硬化", "discussing")):
        factories.make_consultation(compound, title=title, stage=stage)
    factories.make_consultation(other, title="加装电梯（和平里）", stage="discussing")
    factories.make_consultation(other, title="和平里草稿")
    member = factories.make_user("committee", compound=compound)
    db.session.add(UserScope(user=member, compound=other))
    db.session.flush()
    return member, compound, other


def test_search_in_titles_chinese_and_any_case(client, two):
    member, _, _ = two
    factories.sign_in(client, member)
    assert sorted(titles(client.get("/consultations/?q=电梯", headers=EN).text)) == sorted([
        "加装电梯", "加装电梯（和平里）"])
    assert titles(client.get("/consultations/?q=roof", headers=EN).text) == ["Roof REPAIR"]
    assert titles(client.get("/consultations/?q=REPAIR", headers=EN).text) == ["Roof REPAIR"]
    # A % is searched for as typed, not as a wildcard.
    page = client.get("/consultations/?q=%25", headers=EN).text
    assert titles(page) == [] and "No consultation matches this search." in page
    page = client.get("/consultations/?q=电梯", headers=EN).text
    assert 'name="q" value="电梯"' in page and 'role="search"' in page and 'method="get"' in page


def test_compound_filter_of_the_members_compounds(client, two):
    member, compound, other = two
    factories.sign_in(client, member)
    page = client.get("/consultations/", headers=EN).text
    assert f'<option value="{compound.id}">' in page and f'<option value="{other.id}">' in page
    page = client.get(f"/consultations/?compound={other.id}", headers=EN).text
    assert sorted(titles(page)) == sorted(["和平里草稿", "加装电梯（和平里）"])
    # Combined with the search and the stage filter.
    page = client.get(f"/consultations/?compound={compound.id}&q=电梯", headers=EN).text
    assert titles(page) == ["加装电梯"]
    assert f'<option value="{compound.id}" selected>' in page
    page = client.get(f"/consultations/?compound={compound.id}&stage=discussing",
                      headers=EN).text
    assert sorted(titles(page)) == sorted(["加装电梯", "路面硬化"])
    # The stage chips keep the search and the compound.
    assert "stage=soliciting" in page and f"compound={compound.id}" in page
    page = client.get(f"/consultations/?compound={compound.id}&q=电梯", headers=EN).text
    chip = re.search(r'href="([^"]*stage=discussing[^"]*)"', page)
    assert chip is not None
    assert "q=%E7%94%B5%E6%A2%AF" in chip.group(1) and f"compound={compound.id}" in chip.group(1)


def test_no_compound_filter_with_a_single_compound(client, login_as, compound):
    factories.make_consultation(compound, title="加装电梯", stage="discussing")
    login_as("committee", compound=compound)
    page = client.get("/consultations/", headers=EN).text
    assert 'name="compound"' not in page and 'name="q"' in page


def test_a_compound_outside_the_scope_shows_nothing_of_it(client, login_as, compound):
    elsewhere = factories.make_compound("别人的小区")
    factories.make_consultation(elsewhere, title="别处的议题", stage="discussing")
    factories.make_consultation(compound, title="本小区的议题", stage="discussing")
    login_as("committee", compound=compound)
    page = client.get(f"/consultations/?compound={elsewhere.id}", headers=EN).text
    assert "别处的议题" not in page and "本小区的议题" not in page
    assert titles(page) == []
    # Without the filter the published consultation elsewhere is listed, as before.
    assert "别处的议题" in client.get("/consultations/", headers=EN).text


def test_pages_keep_the_filters(client, app, two, monkeypatch):
    member, compound, _ = two
    for n in range(5):
        factories.make_consultation(compound, title=f"电梯第{n}期", stage="discussing")
    db.session.commit()
    monkeypatch.setitem(app.config, "PAGE_SIZE", 3)
    factories.sign_in(client, member)
    url = f"/consultations/?q=电梯&compound={compound.id}&stage=discussing"
    first = client.get(url, headers=EN).text
    assert len(titles(first)) == 3
    link = re.search(r'href="([^"]+)" rel="next"', first)
    assert link is not None
    target = link.group(1).replace("&amp;", "&")
    assert f"compound={compound.id}" in target and "stage=discussing" in target
    assert "q=%E7%94%B5%E6%A2%AF" in target
    second = titles(client.get(target, headers=EN).text)
    assert len(second) == 3 and not set(second) & set(titles(first))
    assert all("电梯" in title for title in second)
    assert "加装电梯（和平里）" not in second
