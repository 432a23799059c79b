"""The resident's vote page on a phone: a missing answer is marked at its item, reading an
item's details keeps the answers not yet sent, and the text-size switch says how to go back."""

import re

from sqlalchemy import func, select

from consult.ballots.models import Ballot
from consult.extensions import db

EN = {"Accept-Language": "en"}


def fields(c, *values):
    return {f"item_{item.id}": v for item, v in zip(c.items, values, strict=True)}


def _fieldset(html: str, item_id: int) -> str:
    start = html.index(f'id="item_{item_id}-group"')
    return html[html.rindex("<fieldset", 0, start):html.index("</fieldset>", start)]


def test_the_missing_item_is_marked_and_takes_the_focus(client, login_as, voting, compound):
    login_as("resident", household=compound.buildings[0].households[0])
    first, second = voting.items
    r = client.post(f"/consultations/{voting.id}/vote", data=fields(voting, "agree", ""),
                    headers=EN)
    assert r.status_code == 400
    missing, answered = _fieldset(r.text, second.id), _fieldset(r.text, first.id)
    assert 'class="choice-group is-invalid"' in missing
    assert f'aria-describedby="item_{second.id}-error"' in missing
    assert f'id="item_{second.id}-error"' in missing and "Choose an answer for item 2" in missing
    # The first radio of the missing item is focused when the page loads: no script needed.
    assert re.search(rf'name="item_{second.id}" value="agree"[^>]*autofocus', missing)
    assert "is-invalid" not in answered and "autofocus" not in answered
    assert 'value="agree" checked' in answered  # the answer given is kept
    # The summary at the top links to the item.
    assert f'href="#item_{second.id}-group"' in r.text
    assert r.text.count("autofocus") == 1


def test_only_the_first_of_several_missing_items_takes_the_focus(client, login_as, voting,
                                                                  compound):
    login_as("resident", household=compound.buildings[0].households[0])
    r = client.post(f"/consultations/{voting.id}/vote", data=fields(voting, "", ""), headers=EN)
    assert r.text.count("is-invalid") == 2 and r.text.count("autofocus") == 1
    assert re.search(rf'name="item_{voting.items[0].id}" value="agree"[^>]*autofocus', r.text)


def test_reading_the_details_keeps_the_unsent_choices(client, login_as, voting, compound):
    household = compound.buildings[0].households[0]
    login_as("resident", household=household)
    first, second = voting.items
    page = client.get(f"/consultations/{voting.id}/vote", headers=EN)
    # "Read the details" is a button of the vote form, so the choices go with it.
    assert f'name="details" value="{second.id}"' in page.text
    r = client.post(f"/consultations/{voting.id}/vote",
                    data={**fields(voting, "disagree", ""), "details": str(second.id)})
    assert r.status_code == 302
    assert r.headers["Location"].endswith(f"/consultations/{voting.id}/items/{second.id}"
                                          "?ballot=1")
    assert db.session.scalar(select(func.count(Ballot.id))) == 0  # nothing was sent
    item_page = client.get(r.headers["Location"], headers=EN)
    assert "Back to my ballot" in item_page.text
    assert f'href="/consultations/{voting.id}/vote"' in item_page.text
    back = client.get(f"/consultations/{voting.id}/vote", headers=EN)
    assert 'value="disagree" checked' in _fieldset(back.text, first.id)
    assert "checked" not in _fieldset(back.text, second.id)
    # Once the vote is sent, the draft is gone: the ballot itself is shown from then on.
    client.post(f"/consultations/{voting.id}/vote/confirm",
                data={**fields(voting, "agree", "agree"), "submission": "t-1"})
    again = client.get(f"/consultations/{voting.id}/vote", headers=EN)
    assert 'value="agree" checked' in _fieldset(again.text, first.id)


def test_the_details_of_another_consultations_item_are_refused(client, login_as, voting,
                                                               compound):
    login_as("resident", household=compound.buildings[0].households[0])
    r = client.post(f"/consultations/{voting.id}/vote",
                    data={**fields(voting, "agree", ""), "details": "999999"})
    assert r.status_code == 404
    r = client.post(f"/consultations/{voting.id}/vote",
                    data={**fields(voting, "agree", ""), "details": "²"})
    assert r.status_code == 404


def test_a_draft_is_only_for_its_own_household(client, login_as, voting, compound):
    first_home, second_home = compound.buildings[0].households[:2]
    login_as("resident", household=first_home)
    client.post(f"/consultations/{voting.id}/vote",
                data={**fields(voting, "disagree", ""), "details": str(voting.items[0].id)})
    login_as("resident", household=second_home)
    page = client.get(f"/consultations/{voting.id}/vote", headers=EN)
    assert "checked" not in page.text


def test_the_item_page_leads_back_only_from_an_open_ballot(client, voting):
    # An anonymous reader with ?ballot=1 sees the ordinary page.
    page = client.get(f"/consultations/{voting.id}/items/{voting.items[0].id}?ballot=1",
                      headers=EN)
    assert page.status_code == 200 and "Back to my ballot" not in page.text


def test_larger_text_says_how_to_switch_back(client):
    normal = client.get("/", headers=EN)
    assert "Larger text" in normal.text and "Standard text size" not in normal.text
    assert 'name="size" value="large"' in normal.text
    client.post("/text-size", data={"size": "large", "next": "/"})
    large = client.get("/", headers=EN)
    assert 'class="text-large"' in large.text
    assert "Larger text is on." in large.text
    button = re.search(r'<button[^>]*name="size" value="normal"[^>]*>(.*?)</button>',
                       large.text, re.S)
    assert button and "Standard text size" in button.group(1)
    assert 'aria-describedby="text-size-hint"' in button.group(0)
    client.post("/text-size", data={"size": "normal", "next": "/"})
    assert "Larger text is on." not in client.get("/", headers=EN).text
