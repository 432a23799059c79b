import html

from consult.audit import service as audit
from tests import factories


def test_supervisor_sees_only_events_of_their_compounds(client, login_as, compound):
    other = factories.make_compound("别处")
    mine = audit.record(None, "registry.compound.created", compound, {"name": "mine"})
    theirs = audit.record(None, "registry.compound.created", other, {"name": "theirs"})
    unscoped = audit.record(None, "accounts.user.created", ("user_account", 1), {})
    login_as("supervisor", compound=compound)
    text = client.get("/audit/").text
    assert f'/audit/{mine.seq}"' in text
    assert f'/audit/{theirs.seq}"' not in text and f'/audit/{unscoped.seq}"' not in text
    assert client.get(f"/audit/{mine.seq}").status_code == 200
    assert client.get(f"/audit/{theirs.seq}").status_code == 403
    assert client.get("/audit/999999").status_code == 404


def test_admin_sees_everything_and_filters_by_object(client, login_as, compound):
    household = compound.buildings[0].households[0]
    first = audit.record(None, "registry.household.updated", household, {"x": 1})
    audit.record(None, "registry.compound.created", compound, {})
    login_as("admin")
    text = client.get(f"/audit/?object_type=household&object_id={household.id}",
                      headers={"Accept-Language": "en"}).text
    # Named by its address, not by the table's name and its id.
    assert f"room {household.room}</a>" in text and f"household #{household.id}" not in text
    assert f"{compound.name}</td>" not in text
    detail = client.get(f"/audit/{first.seq}")
    assert detail.status_code == 200, detail.text
    assert "0" * 64 in detail.text and '"x": 1' in html.unescape(detail.text)


def test_audit_pages_page_without_counting(client, login_as, compound):
    events = [audit.record(None, "registry.household.updated", compound, {"n": n})
              for n in range(60)]
    login_as("admin")
    first = client.get("/audit/").text
    assert 'rel="next"' in first and f"/audit/{events[59].seq}" in first
    second = client.get("/audit/?page=2").text
    assert f"/audit/{events[9].seq}\"" in second and 'rel="prev"' in second
    assert 'rel="next"' not in second
