"""Registry pages for committee members, supervisors and administrators."""

from __future__ import annotations

import base64
import binascii

from flask import (
    Blueprint,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_login import current_user
from werkzeug.wrappers import Response

from consult.accounts import service as accounts
from consult.core import jobs, sorting
from consult.core.database import starts_reading
from consult.core.errors import ImportRejected, NotFound, PermissionDenied
from consult.core.forms import (
    id_arg,
    options,
    page_number,
    page_size,
    save_form,
    text_arg,
    uploaded_table,
)
from consult.core.pagination import window_of
from consult.core.policy import compound_scope, denial_message, load, require
from consult.extensions import db
from consult.registry import grids
from consult.registry import service as registry
from consult.registry.forms import (
    BuildingForm,
    CommunityForm,
    CompoundForm,
    ConfirmForm,
    ExportForm,
    GridConfirmForm,
    GridImportForm,
    HouseholdEditForm,
    HouseholdForm,
    ImportForm,
    ResidentForm,
)
from consult.registry.models import Building, Community, Compound, Household, ImportJob, Resident

bp = Blueprint("registry", __name__, url_prefix="/registry")


@bp.get("/")
@require("registry.view")
def index() -> str:
    number, size = page_number(), page_size()
    # One row more than a page tells whether there is a next page, without counting them all.
    rows = registry.compounds_in_scope(compound_scope(current_user, "registry.view"),
                                       offset=(number - 1) * size, limit=size + 1)
    page = window_of(rows, number, size)
    counts = registry.household_counts([c.id for c in page.items])
    return render_template("registry/index.html", compounds=page.items, page=page,
                           counts=counts)


@bp.route("/communities/new", methods=["GET", "POST"])
@require("registry.structure")
def community_new() -> Response | str:
    form = CommunityForm()
    if save_form(form, lambda: registry.create_community(
            current_user, form.name.data, form.street.data), _("Community created.")):
        return redirect(url_for("registry.index"))
    return render_template("registry/community_form.html", form=form)


@bp.route("/compounds/new", methods=["GET", "POST"])
@require("registry.structure")
def compound_new() -> Response | str:
    form = CompoundForm()
    form.community_id.choices = options((c.id, c.name) for c in registry.communities())
    if not form.community_id.choices:
        flash(_("Create a community first."), "info")
        return redirect(url_for("registry.community_new"))
    saved = save_form(form, lambda: registry.create_compound(
        current_user, registry.get_or_404(Community, form.community_id.data), form.name.data,
        form.address.data), _("Compound created. Add its buildings next."))
    if saved:
        return redirect(url_for("registry.compound", compound_id=saved.value.id))
    return render_template("registry/compound_form.html", form=form)


@bp.get("/communities/<int:community_id>")
@require("registry.view")
def community(community_id: int) -> str:
    """A community's grids and their compounds: those in the reader's scope."""
    community = registry.get_or_404(Community, community_id)
    scope = compound_scope(current_user, "registry.view")
    listing = grids.community_grids(community, scope)
    if scope is not None and not listing:
        raise PermissionDenied(denial_message(current_user, "registry.view", community))
    counts = registry.household_counts([c.id for _g, cs in listing for c in cs])
    return render_template("registry/community.html", community=community, listing=listing,
                           counts=counts)


# A grids file goes back and forth in the confirmation form: one line per compound, so
# a district's file is well under this.
GRID_FILE_MAX = 512 * 1024


def _grid_form_page(form: GridImportForm, problems: ImportRejected | None = None,
                    status: int = 200) -> tuple[str, int]:
    return render_template("registry/grids_import.html", form=form, problems=problems), status


@bp.route("/grids/import", methods=["GET", "POST"])
@require("registry.structure")
def import_grids() -> Response | str | tuple[str, int]:
    """Upload a grids file: it is checked whole and what it would do is shown; nothing is
    written until the administrator confirms."""
    form = GridImportForm()
    if not form.validate_on_submit():
        return _grid_form_page(form, status=400 if form.errors else 200)
    filename = (form.file.data.filename or "grids.csv")[:200]
    data = uploaded_table(form.file, filename)
    if data is not None and len(data) > GRID_FILE_MAX:
        form.file.errors = [_("The file is larger than %(kb)s KB.", kb=GRID_FILE_MAX // 1024)]
        data = None
    if data is None:
        return _grid_form_page(form, status=400)
    try:
        plan = grids.check_grids(data, filename)
    except ImportRejected as exc:  # not a grids table at all
        return _grid_form_page(form, exc, 400)
    if plan.errors:
        return _grid_form_page(form, ImportRejected(
            _("The file has problems; nothing was imported."), plan.errors), 400)
    confirm = GridConfirmForm(content=base64.b64encode(data).decode(), filename=filename)
    communities = {c.id: c.name for c in registry.communities()}
    return render_template("registry/grids_preview.html", plan=plan, form=confirm,
                           new_grids=[f"{communities.get(cid, '')} / {name}"
                                      for cid, name in plan.grids_created])


@bp.post("/grids/import/confirm")
@require("registry.structure")
def import_grids_confirm() -> Response | tuple[str, int]:
    """Write the grids file just previewed, checked once more against the registry now."""
    form = GridConfirmForm()
    try:
        data = base64.b64decode(form.content.data or "", validate=True) \
            if form.validate_on_submit() else b""
    except (ValueError, binascii.Error):
        data = b""
    if not data or len(data) > GRID_FILE_MAX:
        flash(_("That file is no longer waiting to be imported; upload it again."), "warning")
        return redirect(url_for("registry.import_grids"))
    filename = (form.filename.data or "grids.csv")[:200]
    try:
        plan = grids.import_grids(current_user, data, filename)
    except ImportRejected as exc:
        db.session.rollback()
        # The registry changed since the preview: the problems as they are now.
        return _grid_form_page(GridImportForm(), exc, 400)
    db.session.commit()
    flash(" ".join(grids.grid_report(plan)), "success")
    return redirect(url_for("registry.index"))


@bp.get("/compounds/<int:compound_id>")
@require("registry.view")
def compound(compound_id: int) -> str:
    compound = load(Compound, compound_id)
    q = text_arg("q", 100)
    building_id = id_arg("building")
    sort = sorting.parse(request.args.get("sort"), list(registry.HOUSEHOLD_SORTS), "address")
    page = db.paginate(registry.household_search(compound, q, building_id, sort),
                       page=page_number(), per_page=page_size(), error_out=False)
    totals = registry.household_counts([compound.id]).get(compound.id, (0, 0))
    with_codes = accounts.household_ids_with_codes(page.items)
    return render_template("registry/compound.html", compound=compound, page=page, q=q,
                           building_id=building_id, totals=totals, with_codes=with_codes,
                           export_form=ExportForm(), sort=sort)


@bp.route("/compounds/<int:compound_id>/buildings/new", methods=["GET", "POST"])
@require("registry.edit")
def building_new(compound_id: int) -> Response | str:
    compound = load(Compound, compound_id)
    form = BuildingForm()
    if save_form(form, lambda: registry.create_building(current_user, compound, form.name.data),
                 _("Building added.")):
        return redirect(url_for("registry.compound", compound_id=compound.id))
    return render_template("registry/building_form.html", form=form, compound=compound,
                           building=None)


@bp.route("/buildings/<int:building_id>/edit", methods=["GET", "POST"])
@require("registry.edit")
def building_edit(building_id: int) -> Response | str:
    building = load(Building, building_id)
    form = BuildingForm(obj=building)
    if save_form(form, lambda: registry.rename_building(current_user, building, form.name.data),
                 _("Saved.")):
        return redirect(url_for("registry.compound", compound_id=building.compound_id))
    return render_template("registry/building_form.html", form=form,
                           compound=building.compound, building=building)


def _household_data(form: HouseholdForm, phone: str | None) -> registry.HouseholdData:
    return registry.household_data(
        unit=form.unit.data, floor=form.floor.data, room=form.room.data, area=form.area.data,
        owner_name=form.owner_name.data, owner_key=form.owner_key.data, phone=phone)


@bp.route("/compounds/<int:compound_id>/households/new", methods=["GET", "POST"])
@require("registry.edit")
def household_new(compound_id: int) -> Response | str:
    compound = load(Compound, compound_id)
    form = HouseholdForm()
    form.building_id.choices = options((b.id, b.name) for b in compound.buildings)
    if not form.building_id.choices:
        flash(_("Add a building first."), "info")
        return redirect(url_for("registry.building_new", compound_id=compound.id))
    saved = save_form(form, lambda: registry.create_household(
        current_user, registry.building_of(compound, form.building_id.data),
        _household_data(form, form.phone.data)), _("Household added."))
    if saved:
        return redirect(url_for("registry.household", household_id=saved.value.id))
    return render_template("registry/household_form.html", form=form, compound=compound,
                           household=None)


@bp.get("/households/<int:household_id>")
@require("registry.view")
def household(household_id: int) -> str:
    household = load(Household, household_id)
    return render_template(
        "registry/household.html", household=household,
        account=accounts.resident_account_for(household),
        open_code=accounts.open_access_code(household), confirm_form=ConfirmForm())


@bp.route("/households/<int:household_id>/edit", methods=["GET", "POST"])
@require("registry.edit")
def household_edit(household_id: int) -> Response | str:
    household = load(Household, household_id)
    form = HouseholdEditForm(obj=household)
    form.building_id.choices = options([(household.building.id, household.building.name)])
    if request.method == "GET":
        form.area.data = registry.format_area(household.area_dm2)
        form.phone.data = ""
    phone = None if form.clear_phone.data else (form.phone.data or household.phone)
    if save_form(form, lambda: registry.update_household(
            current_user, household, _household_data(form, phone)), _("Saved.")):
        return redirect(url_for("registry.household", household_id=household.id))
    return render_template("registry/household_form.html", form=form,
                           compound=household.building.compound, household=household)


@bp.route("/households/<int:household_id>/residents/new", methods=["GET", "POST"])
@require("registry.edit")
def resident_new(household_id: int) -> Response | str:
    household = load(Household, household_id)
    form = ResidentForm()
    if save_form(form, lambda: registry.add_resident(
            current_user, household, form.name.data, form.phone.data, form.relation.data,
            bool(form.is_representative.data)), _("Resident added.")):
        return redirect(url_for("registry.household", household_id=household.id))
    return render_template("registry/resident_form.html", form=form, household=household,
                           resident=None)


@bp.route("/residents/<int:resident_id>/edit", methods=["GET", "POST"])
@require("registry.edit")
def resident_edit(resident_id: int) -> Response | str:
    resident = load(Resident, resident_id)
    form = ResidentForm(obj=resident)
    if request.method == "GET":
        form.phone.data = ""
    if save_form(form, lambda: registry.update_resident(
            current_user, resident, form.name.data, form.phone.data or resident.phone,
            form.relation.data, bool(form.is_representative.data)), _("Saved.")):
        return redirect(url_for("registry.household", household_id=resident.household_id))
    return render_template("registry/resident_form.html", form=form,
                           household=resident.household, resident=resident)


@bp.post("/residents/<int:resident_id>/delete")
@require("registry.edit")
def resident_delete(resident_id: int) -> Response:
    resident = load(Resident, resident_id)
    household_id = resident.household_id
    if ConfirmForm().validate_on_submit():
        registry.remove_resident(current_user, resident)
        db.session.commit()
        flash(_("Resident removed."), "success")
    return redirect(url_for("registry.household", household_id=household_id))


@bp.post("/households/<int:household_id>/access-code")
@require("registry.access_codes")
def access_code_issue(household_id: int) -> Response | str:
    household = load(Household, household_id)
    if not ConfirmForm().validate_on_submit():
        return redirect(url_for("registry.household", household_id=household.id))
    code = accounts.issue_access_code(current_user, household)
    db.session.commit()
    # The code is shown once; like every registry page it is kept out of caches
    # (policy.PRIVATE_ACTIONS).
    return render_template("registry/access_code.html", household=household,
                           code=accounts.format_code(code))


@bp.post("/households/<int:household_id>/access-code/revoke")
@require("registry.access_codes")
def access_code_revoke(household_id: int) -> Response:
    household = load(Household, household_id)
    if ConfirmForm().validate_on_submit():
        count = accounts.revoke_access_codes(current_user, household)
        db.session.commit()
        flash(_("Access code revoked.") if count else _("There was no open access code."),
              "success" if count else "info")
    return redirect(url_for("registry.household", household_id=household.id))


@bp.route("/compounds/<int:compound_id>/import", methods=["GET", "POST"])
@require("registry.import")
@starts_reading  # the upload is read and checked before the write lock is taken to store it
def import_households(compound_id: int) -> Response | str | tuple[str, int]:
    compound = load(Compound, compound_id)
    form = ImportForm()
    # Back from a refused import (?job=): its problems above the form, to upload it again.
    refused = load(_page_import, id_arg("job") or 0) if request.args.get("job") else None
    if refused is not None and refused.compound_id != compound.id:
        raise NotFound(_("No such import."))
    problems = registry.import_problems(refused) if refused is not None else None
    if form.validate_on_submit():
        filename = form.file.data.filename or ""
        data = uploaded_table(form.file, filename)
        if data is not None:
            try:
                job = registry.request_import(
                    current_user, compound, data, filename or "upload.csv",
                    create_buildings=bool(form.create_buildings.data), locale=str(get_locale()))
            except ImportRejected as exc:  # not a households table at all
                return render_template("registry/import.html", form=form, compound=compound,
                                       problems=exc), 400
            db.session.commit()
            jobs.submit(registry.run_import_job, job.id)
            return redirect(url_for("registry.import_job", import_id=job.id))
    return render_template("registry/import.html", form=form, compound=compound,
                           problems=problems)


def _page_import(import_id: int) -> ImportJob:
    """An import started from a page; one from the command line has no page. (Whoever may
    import into its compound may follow it, as print jobs are shared by the committee.)"""
    job = registry.get_import_or_404(import_id)
    if job.compound_id is None:
        raise NotFound(_("No such import."))
    return job


@bp.get("/imports/<int:import_id>")
@require("registry.import")
def import_job(import_id: int) -> Response | str:
    """An import under way (this page refreshes itself), or what it did; a refused one goes
    back to the form, which lists every problem."""
    job = load(_page_import, import_id)
    if job.status == "failed" or job.stalled:
        return redirect(url_for("registry.import_households", compound_id=job.compound_id,
                                job=job.id))
    return render_template("registry/import_job.html", job=job,
                           summary=registry.import_summary(job))



@bp.post("/compounds/<int:compound_id>/export")
@require("registry.export")
def export_households(compound_id: int) -> Response:
    compound = load(Compound, compound_id)
    form = ExportForm()
    if not form.validate_on_submit():
        flash(_("Choose CSV or XLSX."), "danger")
        return redirect(url_for("registry.compound", compound_id=compound.id))
    payload = registry.export_households(current_user, [compound], form.fmt.data,
                                         form.headers.data)
    db.session.commit()
    mimetype = ("text/csv; charset=utf-8" if form.fmt.data == "csv" else
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
    filename = f"households-{compound.id}.{form.fmt.data}"
    return Response(payload, mimetype=mimetype, headers={
        "Content-Disposition": f'attachment; filename="{filename}"'})
