from typing import Any

from tests.access import (
    ADMIN,
    EDITORS,
    EVERYONE,
    EXPECTED,
    READERS,
    SIGNED_IN,
    STAFF_ROLE,
    WORLD_BUILDERS,
)

EXPECTED.update({
    "main.index": ("GET", EVERYONE),
    "main.healthz": ("GET", EVERYONE),
    "main.set_language": ("POST", EVERYONE),
    "main.set_text_size": ("POST", EVERYONE),
    "accounts.login": ("GET", EVERYONE),
    "accounts.code_login": ("GET", EVERYONE),
    "accounts.logout": ("POST", SIGNED_IN),
    "accounts.activate": ("GET", SIGNED_IN),
    "accounts.profile": ("GET", SIGNED_IN),
    "accounts.sign_out_everywhere": ("POST", SIGNED_IN),
    "accounts.users": ("GET", ADMIN),
    "accounts.user_new": ("GET", ADMIN),
    "accounts.user_edit": ("GET", ADMIN),
    "accounts.user_password": ("POST", ADMIN),
    "accounts.scope_add": ("POST", ADMIN),
    "accounts.scope_remove": ("POST", ADMIN),
    # The world's user_id is a staff account: only an administrator unlocks those (committee
    # members unlock their households' accounts: tests/reliability/test_access.py).
    "accounts.unlock": ("POST", ADMIN),
    "accounts.code_resume": ("POST", EDITORS),
    "registry.index": ("GET", STAFF_ROLE),
    "registry.community_new": ("GET", ADMIN),
    "registry.compound_new": ("GET", ADMIN),
    "registry.compound": ("GET", READERS),
    # Refused to staff with no compound of the community in their scope.
    "registry.community": ("GET", READERS),
    "registry.import_grids": ("GET", ADMIN),
    "registry.import_grids_confirm": ("POST", ADMIN),
    "registry.building_new": ("GET", EDITORS),
    "registry.building_edit": ("GET", EDITORS),
    "registry.household_new": ("GET", EDITORS),
    "registry.household": ("GET", READERS),
    "registry.household_edit": ("GET", EDITORS),
    "registry.resident_new": ("GET", EDITORS),
    "registry.resident_edit": ("GET", EDITORS),
    "registry.resident_delete": ("POST", EDITORS),
    "registry.access_code_issue": ("POST", EDITORS),
    "registry.access_code_revoke": ("POST", EDITORS),
    "registry.import_households": ("GET", EDITORS),
    "registry.import_job": ("GET", EDITORS),
    "registry.export_households": ("POST", READERS),
    "audit.index": ("GET", STAFF_ROLE),
    "audit.event": ("GET", READERS),
})


def build(world: dict[str, Any]) -> None:
    """A finished import of households into the test compound."""
    from consult.extensions import db
    from consult.registry.models import ImportJob

    job = ImportJob(compound_id=world["compound_id"], filename="households.csv", status="done",
                    summary='{"rows": 1, "created": 1}')
    db.session.add(job)
    db.session.flush()
    world["import_id"] = job.id
    world["community_id"] = world["compound"].community_id


WORLD_BUILDERS.append(build)
