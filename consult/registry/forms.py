"""Registry forms."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf.file import FileField, FileRequired
from wtforms import BooleanField, HiddenField, SelectField, StringField

from consult.core.forms import FlaskForm, max_length, options, required
from consult.registry.models import RELATION_LABELS


class CommunityForm(FlaskForm):
    name = StringField(_l("Community name"), validators=[required(), max_length(100)])
    street = StringField(_l("Sub-district (街道)"), validators=[max_length(100)])


class CompoundForm(FlaskForm):
    community_id = SelectField(_l("Community"), coerce=int, choices=[])
    name = StringField(_l("Compound name"), validators=[required(), max_length(100)])
    address = StringField(_l("Address"), validators=[max_length(200)])


class BuildingForm(FlaskForm):
    name = StringField(_l("Building name, e.g. 3号楼"), validators=[required(), max_length(50)])


class HouseholdForm(FlaskForm):
    building_id = SelectField(_l("Building"), coerce=int, choices=[])
    unit = StringField(_l("Unit"), validators=[max_length(20)])
    floor = StringField(_l("Floor"), validators=[max_length(5)],
                        render_kw={"inputmode": "numeric"})
    room = StringField(_l("Room"), validators=[required(), max_length(20)])
    area = StringField(_l("Exclusive area (m², up to two decimals)"),
                       validators=[required(), max_length(20)],
                       render_kw={"inputmode": "decimal"})
    owner_name = StringField(_l("Owner name"), validators=[required(), max_length(100)])
    owner_key = StringField(_l("Owner key (same key = same owner, e.g. a hashed ID number)"),
                            validators=[max_length(128)])
    phone = StringField(_l("Phone"), validators=[max_length(30)],
                        render_kw={"inputmode": "tel", "autocomplete": "off"})


class HouseholdEditForm(HouseholdForm):
    phone = StringField(_l("New phone number (leave empty to keep the current one)"),
                        validators=[max_length(30)],
                        render_kw={"inputmode": "tel", "autocomplete": "off"})
    clear_phone = BooleanField(_l("Remove the phone number"))


class ResidentForm(FlaskForm):
    name = StringField(_l("Name"), validators=[required(), max_length(100)])
    phone = StringField(_l("Phone"), validators=[max_length(30)],
                        render_kw={"inputmode": "tel", "autocomplete": "off"})
    relation = SelectField(_l("Relation to the household"), choices=[])

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.relation.choices = options((k.value, v) for k, v in RELATION_LABELS.items())
    is_representative = BooleanField(_l("Household representative (户代表)"))


class ImportForm(FlaskForm):
    file = FileField(_l("Households file (CSV or XLSX)"),
                     validators=[FileRequired(message=_l("Choose a file."))])
    create_buildings = BooleanField(_l("Create buildings that are not in the registry yet"))


class ExportForm(FlaskForm):
    fmt = SelectField(_l("Format"), choices=options([("xlsx", "Excel (XLSX)"), ("csv", "CSV")]))
    headers = SelectField(_l("Column headers"), choices=[])

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.headers.choices = options([("zh", _l("Chinese")), ("en", _l("English"))])


class ConfirmForm(FlaskForm):
    """A button-only form: the CSRF token is all it carries."""

    next = HiddenField()


class GridImportForm(FlaskForm):
    file = FileField(_l("Grids file (CSV or XLSX)"),
                     validators=[FileRequired(message=_l("Choose a file."))])


class GridConfirmForm(FlaskForm):
    """The checked file again (base64: a grids file is small), to be checked once more and
    written."""

    content = HiddenField()
    filename = HiddenField()
