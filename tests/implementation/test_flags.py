"""The works page flags spending over the estimate and final costs that differ from it, shows
the checklist's own progress, and says where the completion (final) report is recorded."""

import re
from decimal import Decimal

import pytest

from consult.consultations.states import Action
from consult.core.errors import Conflict
from consult.extensions import db
from consult.implementation import service
from consult.process import workflow

EN = {"Accept-Language": "en"}


def progress(c, now, *, percent=50, spend="", item=None, final=False):
    service.add_progress(None, c, service.progress_data(
        item_id=item.id if item else None, percent=percent, spend=spend, note="",
        is_final=final), now=now)


def test_difference_in_yuan_and_percent():
    assert service.difference(100, 100) is None
    over = service.difference(120_000, 100_000)
    assert over is not None and over.over and over.amount_fen == 20_000
    assert over.percent == Decimal("20.0")
    under = service.difference(90_000, 300_000)
    assert under is not None and not under.over and under.amount_fen == 210_000
    assert under.abs_percent == Decimal("70.0")
    assert service.difference(350_000, 300_000).percent == Decimal("16.7")  # type: ignore[union-attr]
    free = service.difference(5_000, 0)
    assert free is not None and free.percent is None and free.over


def test_spending_over_the_estimate_is_flagged_in_words(client, works):
    c = works.consultation  # items of ¥1,000.00 and ¥2,000.00
    progress(c, works.now, spend="2500")
    db.session.commit()
    page = client.get(f"/consultations/{c.id}/works", headers=EN).text
    assert "Spending is over budget." not in page and "Over budget:" not in page
    progress(c, works.now, spend="1000")
    db.session.commit()
    page = client.get(f"/consultations/{c.id}/works", headers=EN).text
    assert "Spending is over budget." in page
    assert "¥3,500.00 spent of ¥3,000.00 estimated:" in page
    assert "Over budget: ¥500.00 (16.7 %) over the estimate" in page


def test_spending_on_one_item_over_its_estimate(client, works):
    c = works.consultation
    first = c.items[0]
    progress(c, works.now, spend="1100", item=first)
    db.session.commit()
    page = client.get(f"/consultations/{c.id}/works", headers=EN).text
    assert "Spent ¥1,100.00 on this item: ¥100.00 (10.0 %) over the estimate" in page
    assert "Spending is over budget." not in page  # ¥1,100 of ¥3,000 for the whole works


def test_final_costs_that_differ_from_the_estimate(client, login_as, works, compound):
    c = works.consultation
    first, second = c.items
    service.complete_item(None, first, 120_000, now=works.now)
    db.session.commit()
    page = client.get(f"/consultations/{c.id}/works", headers=EN).text
    assert "The final cost differs from the estimate: ¥200.00 (20.0 %) over the estimate" in page
    assert "Final costs differ from the estimate: ¥200.00 (20.0 %) over the estimate" in page
    service.complete_item(None, second, 150_000, now=works.now)
    db.session.commit()
    page = client.get(f"/consultations/{c.id}/works", headers=EN).text
    assert "¥500.00 (25.0 %) under the estimate" in page
    # Over all: ¥2,700 for ¥3,000 estimated.
    assert "Final costs differ from the estimate: ¥300.00 (10.0 %) under the estimate" in page
    # A final cost as estimated is not flagged.
    login_as("committee", compound=compound)
    client.post(f"/consultations/{c.id}/works/items/{first.id}/complete",
                data={"final_cost": "1000", "note": ""})
    page = client.get(f"/consultations/{c.id}/works", headers=EN).text
    assert page.count("The final cost differs from the estimate") == 1


def test_the_checklist_shows_items_done_of_all(client, works):
    c = works.consultation
    progress(c, works.now, percent=80)
    db.session.commit()
    page = client.get(f"/consultations/{c.id}/works", headers=EN).text
    assert "0 of 2 items done" in page and "80 %" in page
    service.complete_item(None, c.items[0], 100_000, now=works.now)
    db.session.commit()
    page = client.get(f"/consultations/{c.id}/works", headers=EN).text
    assert "1 of 2 items done" in page
    assert '<progress class="checklist-progress" max="2" value="1"' in page
    assert "checklist: 1 of 2 items done" in page  # next to the typed percentage


def test_only_items_to_implement_count(client, works_with_failed_item):
    c = works_with_failed_item.consultation
    service.complete_item(None, c.items[0], 100_000, now=works_with_failed_item.now)
    db.session.commit()
    page = client.get(f"/consultations/{c.id}/works", headers=EN).text
    assert "1 of 1 items done" in page


def test_completion_report_first_says_where(client, login_as, works, compound):
    c = works.consultation
    for item in c.items:
        service.complete_item(None, item, item.estimated_cost_fen, now=works.now)
    with pytest.raises(Conflict, match="on the works page"):
        workflow.apply(c, Action.PUBLISH_RESULT, None, now=works.now)
    db.session.commit()
    login_as("committee", compound=compound)
    show = client.get(f"/consultations/{c.id}", headers=EN).text
    assert "Record the final report first: on the works page" in show
    assert f'href="/consultations/{c.id}/works/progress?final=1"' in show
    works_page = client.get(f"/consultations/{c.id}/works", headers=EN).text
    assert "No completion report yet." in works_page
    assert "choose “Record progress”, enter 100 % and tick “This is the final report”" \
        in works_page
    assert f'href="/consultations/{c.id}/works/progress?final=1"' in works_page
    form = client.get(f"/consultations/{c.id}/works/progress?final=1", headers=EN).text
    assert 'name="percent"' in form and 'value="100"' in form
    checkbox = re.search(r'<input[^>]*name="is_final"[^>]*>', form)
    assert checkbox is not None and "checked" in checkbox.group(0)
    progress(c, works.now, percent=100, final=True)
    db.session.commit()
    assert "No completion report yet." not in client.get(
        f"/consultations/{c.id}/works", headers=EN).text
