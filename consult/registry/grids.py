"""Grids (网格) from a spreadsheet: which grid of which community each compound belongs to,
and which street office (街道) each community is under.

One row per compound: street office (optional), community, grid, compound. Communities and
compounds must already be registered; street offices and grids named for the first time are
created. The file is checked whole before anything is written: a bad file gets every problem
with its line and column, and nothing changes (all or nothing).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from consult.audit import service as audit
from consult.audit.actions import describe, describe_objects
from consult.audit.presenting import Field, describe_fields, name_objects
from consult.core.errors import CellError, ImportRejected
from consult.core.tabular import Column, Table, read_table
from consult.core.validation import clean_text
from consult.extensions import db
from consult.registry.models import Community, Compound, Grid, StreetOffice

# Headers in English, Simplified or Traditional Chinese.
GRID_COLUMNS = (
    Column("street_office", ("street_office", "街道", "街道办事处", "街道辦事處"),
           required=False),
    Column("community", ("community", "社区", "社區")),
    Column("grid", ("grid", "网格", "網格")),
    Column("compound", ("compound", "小区", "楼院", "小區", "樓院")),
)
MAX_NAME = 100

describe({
    "registry.street_office.created": _l("Street office created"),
    "registry.community.office_set": _l("Community put under a street office"),
    "registry.grid.created": _l("Grid created"),
    "registry.compound.grid_set": _l("Compound put in a grid"),
    "registry.grids.imported": _l("Grids imported"),
}, kind="registry")
describe_objects({"street_office": _l("Street office"), "grid": _l("Grid")})
describe_fields({"grid_id": Field(_l("Grid"), refers_to="grid")})
describe_fields({"street_office": Field(_l("Street office"))},
                actions=["registry.community.office_set"])
describe_fields({
    "street_offices_created": Field(_l("Street offices created")),
    "grids_created": Field(_l("Grids created")),
    "assigned": Field(_l("Compounds put in a grid")),
    "moved": Field(_l("Compounds moved to another grid")),
    "rows": Field(_l("Lines")),
}, actions=["registry.grids.imported"])
describe_fields({"from": Field(_l("Grid before")), "to": Field(_l("Grid after"))},
                actions=["registry.compound.grid_set"])


def _grid_names(ids: Collection[str]) -> dict[str, str]:
    found = db.session.execute(select(Grid.id, Grid.name).where(
        Grid.id.in_([int(one) for one in ids if one.isdigit()])))
    return {str(one): name for one, name in found}


name_objects("grid", _grid_names)


@dataclass(frozen=True)
class GridRow:
    """A checked row: the compound, the grid it goes to (an id, or None for a grid the import
    creates) and the grid it was in before."""

    line: int
    community_id: int
    community: str
    grid: str
    grid_id: int | None
    compound_id: int
    compound: str
    previous_grid: str | None

    @property
    def change(self) -> str:
        """``assigned`` (had no grid), ``moved`` (another grid) or ``unchanged``."""
        if self.previous_grid is None:
            return "assigned"
        return "unchanged" if self.previous_grid == self.grid else "moved"


@dataclass
class GridPlan:
    """What a grid file would do, once checked: nothing is written until ``apply_grids``."""

    filename: str
    rows: list[GridRow] = field(default_factory=list)
    errors: list[CellError] = field(default_factory=list)
    # Street offices to create, and community id → street office name to attach it to.
    offices_created: list[str] = field(default_factory=list)
    offices_attached: dict[int, str] = field(default_factory=dict)
    # (community id, grid name) of the grids to create, in file order.
    grids_created: list[tuple[int, str]] = field(default_factory=list)

    def count(self, change: str) -> int:
        return sum(1 for row in self.rows if row.change == change)

    @property
    def assigned(self) -> int:
        return self.count("assigned")

    @property
    def moved(self) -> int:
        return self.count("moved")

    @property
    def unchanged(self) -> int:
        return self.count("unchanged")


def _cell(table: Table, line: int, cells: dict[str, str], key: str, what: str,
          errors: list[CellError], required: bool = True) -> str:
    """A cell's text, cleaned; its problem added to ``errors`` (and "" returned)."""
    try:
        return clean_text(cells.get(key, ""), max_length=MAX_NAME, required=required,
                          what=what)
    except ValueError as exc:
        errors.append(CellError(line, table.where(key), str(exc)))
        return ""


def check_grids(data: bytes, filename: str) -> GridPlan:
    """Read and check a grid file against the registry; returns the plan with every problem
    found (``errors``), writing nothing. Raises ImportRejected when the file is no grid
    table at all (unreadable, a required column missing, no rows)."""
    table = read_table(data, filename, GRID_COLUMNS)
    plan = GridPlan(filename=filename)
    communities = {c.name: c for c in db.session.scalars(select(Community))}
    offices = {o.id: o.name for o in db.session.scalars(select(StreetOffice))}
    grids = {(g.community_id, g.name): g for g in db.session.scalars(select(Grid))}
    grid_names = {g.id: g.name for g in grids.values()}
    compounds = {(c.community_id, c.name): c for c in db.session.scalars(select(Compound))}
    office_of_community: dict[int, tuple[str, int]] = {}  # community → (office, first line)
    grid_of_compound: dict[int, tuple[str, int]] = {}  # compound → (grid, first line)
    errors = plan.errors
    for line, cells in table.rows:
        office = _cell(table, line, cells, "street_office", _("Street office"), errors,
                       required=False)
        community_name = _cell(table, line, cells, "community", _("Community"), errors)
        grid_name = _cell(table, line, cells, "grid", _("Grid"), errors)
        compound_name = _cell(table, line, cells, "compound", _("Compound"), errors)
        community = communities.get(community_name) if community_name else None
        if community_name and community is None:
            errors.append(CellError(line, table.where("community"), _(
                "There is no community named “%(name)s”; register it first.",
                name=community_name)))
        if community is None:
            continue
        if office:
            current = offices.get(community.street_office_id or 0)
            seen = office_of_community.get(community.id)
            if current is not None and current != office:
                errors.append(CellError(line, table.where("street_office"), _(
                    "Community “%(community)s” is under street office “%(office)s”.",
                    community=community.name, office=current)))
            elif seen is not None and seen[0] != office:
                errors.append(CellError(line, table.where("street_office"), _(
                    "Line %(line)s puts community “%(community)s” under “%(office)s”.",
                    line=seen[1], community=community.name, office=seen[0])))
            elif seen is None:
                office_of_community[community.id] = (office, line)
                if current is None:
                    plan.offices_attached[community.id] = office
                    if (office not in offices.values()
                            and office not in plan.offices_created):
                        plan.offices_created.append(office)
        compound = compounds.get((community.id, compound_name)) if compound_name else None
        if compound_name and compound is None:
            errors.append(CellError(line, table.where("compound"), _(
                "Community “%(community)s” has no compound named “%(name)s”.",
                community=community.name, name=compound_name)))
        if compound is None or not grid_name:
            continue
        seen_grid = grid_of_compound.get(compound.id)
        if seen_grid is not None:
            if seen_grid[0] != grid_name:
                errors.append(CellError(line, table.where("grid"), _(
                    "A compound belongs to one grid: line %(line)s puts “%(compound)s” in "
                    "“%(grid)s”.", line=seen_grid[1], compound=compound.name,
                    grid=seen_grid[0])))
            continue  # the same compound twice in the same grid: once is enough
        grid_of_compound[compound.id] = (grid_name, line)
        grid = grids.get((community.id, grid_name))
        if grid is None and (community.id, grid_name) not in plan.grids_created:
            plan.grids_created.append((community.id, grid_name))
        plan.rows.append(GridRow(
            line=line, community_id=community.id, community=community.name, grid=grid_name,
            grid_id=grid.id if grid is not None else None, compound_id=compound.id,
            compound=compound.name,
            previous_grid=grid_names.get(compound.grid_id) if compound.grid_id else None))
    return plan


def apply_grids(actor: Any, plan: GridPlan) -> GridPlan:
    """Write a checked plan without problems: create its street offices and grids, attach
    communities to their office, put each compound in its grid; one audit event per change
    and one for the import. Flushes; the caller commits. Raises ImportRejected when the plan
    has problems (nothing is written)."""
    if plan.errors:
        raise ImportRejected(_("The file has problems; nothing was imported."), plan.errors)
    offices = {o.name: o for o in db.session.scalars(select(StreetOffice))}
    for name in plan.offices_created:
        office = StreetOffice(name=name)
        db.session.add(office)
        db.session.flush()
        offices[name] = office
        audit.record(actor, "registry.street_office.created", ("street_office", office.id),
                     {"name": name})
    for community_id, name in plan.offices_attached.items():
        community = db.session.get(Community, community_id)
        assert community is not None
        community.street_office = offices[name]
        community.street = name
        audit.record(actor, "registry.community.office_set", community,
                     {"street_office": name})
    new_grids: dict[tuple[int, str], Grid] = {}
    for community_id, name in plan.grids_created:
        grid = Grid(community_id=community_id, name=name)
        db.session.add(grid)
        db.session.flush()
        new_grids[(community_id, name)] = grid
        audit.record(actor, "registry.grid.created", ("grid", grid.id),
                     {"name": name, "community_id": community_id})
    for row in plan.rows:
        if row.change == "unchanged":
            continue
        compound = db.session.get(Compound, row.compound_id)
        assert compound is not None
        # The relationship, not the id: a loaded ``compound.grid`` would otherwise go stale.
        compound.grid = (db.session.get(Grid, row.grid_id) if row.grid_id is not None
                         else new_grids[(row.community_id, row.grid)])
        audit.record(actor, "registry.compound.grid_set", compound,
                     {"from": row.previous_grid, "to": row.grid})
    db.session.flush()
    audit.record(actor, "registry.grids.imported", None, {
        "file": plan.filename, "rows": len(plan.rows),
        "street_offices_created": len(plan.offices_created),
        "grids_created": len(plan.grids_created), "assigned": plan.assigned,
        "moved": plan.moved, "unchanged": plan.unchanged})
    return plan


def import_grids(actor: Any, data: bytes, filename: str) -> GridPlan:
    """Check a grid file and, when it has no problem, apply it (``check_grids``,
    ``apply_grids``); raises ImportRejected with every problem otherwise."""
    return apply_grids(actor, check_grids(data, filename))


def grid_report(plan: GridPlan, done: bool = True) -> list[str]:
    """What an import did (``done``) or would do, in lines for the reader."""
    numbers = {"grids": len(plan.grids_created), "offices": len(plan.offices_created),
               "assigned": plan.assigned, "moved": plan.moved, "unchanged": plan.unchanged}
    if done:
        return [_("Grids imported: %(grids)s grids and %(offices)s street offices created; "
                  "%(assigned)s compounds put in a grid, %(moved)s moved to another grid, "
                  "%(unchanged)s unchanged.", **numbers)]
    return [_("The file is fine. Importing it will create %(grids)s grids and %(offices)s "
              "street offices, put %(assigned)s compounds in a grid, move %(moved)s to "
              "another grid and leave %(unchanged)s unchanged.", **numbers)]


def community_grids(community: Community, scope: frozenset[int] | None
                    ) -> list[tuple[Grid | None, list[Compound]]]:
    """A community's grids, each with its compounds in ``scope`` (None: all), and last the
    compounds in no grid (under None); grids without a compound in scope are left out unless
    the scope is everything."""
    compounds = [c for c in community.compounds if scope is None or c.id in scope]
    by_grid: dict[int | None, list[Compound]] = {}
    for compound in compounds:
        by_grid.setdefault(compound.grid_id, []).append(compound)
    result: list[tuple[Grid | None, list[Compound]]] = [
        (grid, by_grid.get(grid.id, [])) for grid in community.grids
        if scope is None or grid.id in by_grid]
    if by_grid.get(None):
        result.append((None, by_grid[None]))
    return result
