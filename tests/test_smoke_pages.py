from tests.conftest import audit_actions


def test_home_renders(client):
    r = client.get("/")
    assert r.status_code == 200


def test_registry_pages_render_for_committee(client, login_as, compound):
    login_as("committee", compound=compound)
    assert client.get("/registry/").status_code == 200
    r = client.get(f"/registry/compounds/{compound.id}")
    assert r.status_code == 200, r.text
    h = compound.buildings[0].households[0]
    assert client.get(f"/registry/households/{h.id}").status_code == 200
    assert client.get(f"/registry/households/{h.id}/edit").status_code == 200
    assert client.get(f"/registry/compounds/{compound.id}/import").status_code == 200
    assert audit_actions() == []
