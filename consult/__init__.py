"""议事厅 consult: resident consultation and household voting for compound renovations."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from datetime import datetime

from flask import Flask
from flask_babel import format_decimal, get_locale

from config import BASE_DIR, CONFIGS, Config, ProductionConfig
from consult.accounts import sessions
from consult.core import catalogs, jobs, logs
from consult.core import secrets as secret_keys
from consult.core.database import configure_engine
from consult.core.forms import refused_status
from consult.core.handlers import (
    add_cache_headers,
    add_security_headers,
    register_error_handlers,
)
from consult.core.i18n import (
    html_lang,
    install_template_gettext,
    remember_requested_locale,
    select_locale,
)
from consult.core.proxies import TrustedProxyFix
from consult.core.times import format_date, format_datetime
from consult.core.urls import BoundedIntConverter
from consult.extensions import babel, bootstrap, csrf, db, limiter, login_manager, migrate

log = logging.getLogger(__name__)


def _config_class() -> type[Config]:
    name = os.environ.get("CONSULT_CONFIG", "development").lower()
    if name not in CONFIGS:
        raise RuntimeError(f"CONSULT_CONFIG must be one of {sorted(CONFIGS)}, not {name!r}")
    return CONFIGS[name]


def create_app(config_class: type[Config] | None = None) -> Flask:
    """Build the application: extensions, blueprints, commands and error handlers."""
    config_class = config_class or _config_class()
    app = Flask(
        __name__,
        template_folder=str(BASE_DIR / "templates"),
        static_folder=str(BASE_DIR / "static"),
        instance_path=str(config_class.INSTANCE_DIR),
    )
    app.config.from_object(config_class)
    os.makedirs(app.instance_path, exist_ok=True)
    _secret_key(app, production=issubclass(config_class, ProductionConfig))
    logs.init_app(app)  # first, so that every later hook and handler logs with the request id
    proxies = int(app.config["TRUSTED_PROXIES"])
    if proxies > 0:
        # Behind the reverse proxy the client's address (rate limits, lockouts) and scheme
        # come from its headers, when the request comes from the proxy's own address.
        app.wsgi_app = TrustedProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, proxies, app.config["TRUSTED_PROXY_ADDRESSES"])

    _load_models()
    _load_audit_readers()
    db.init_app(app)
    migrate.init_app(app, db, directory=str(BASE_DIR / "migrations"))
    csrf.init_app(app)
    compiled = catalogs.ensure_compiled(app.config["BABEL_TRANSLATION_DIRECTORIES"])
    if compiled:
        log.info("Compiled the translation catalogs of %s.", ", ".join(compiled))
    babel.init_app(app, locale_selector=select_locale)
    install_template_gettext(app)
    bootstrap.init_app(app)
    limiter.init_app(app)
    _init_login(app)
    sessions.init_app(app)
    from consult.ballots import crosscheck

    crosscheck.init_app(app)  # flask audit verify checks the stored ballots too
    with app.app_context():
        configure_engine(app, db.engine)

    app.url_map.converters["int"] = BoundedIntConverter  # before the routes are added
    _register_blueprints(app)
    from consult import api

    api.init_app(app)  # /api/v1: after the pages' blueprints, with the same error handler
    register_error_handlers(app)
    app.after_request(refused_status)
    app.after_request(add_security_headers)
    app.after_request(add_cache_headers)
    app.after_request(remember_requested_locale)
    _jinja(app)

    from consult import cli

    cli.register(app)
    _warn_without_cjk_font(app)
    return app


# A bare ``rq worker`` imports consult.core.jobs, so this package first: its jobs build the
# app with this factory.
jobs.set_app_factory(create_app)


def _secret_key(app: Flask, *, production: bool) -> None:
    """Settle the key the server and the commands share (consult.core.secrets): the
    environment's, else instance/secret_key, which development makes on first start.
    Production refuses to start without a real one; the tests keep their own."""
    if app.testing:
        return
    try:
        key = secret_keys.resolve(app.config.get("SECRET_KEY"), app.instance_path,
                                  create=not production)
    except OSError as exc:  # an instance folder that cannot be written
        log.warning("No secret key: %s cannot be made (%s); access codes cannot be issued.",
                    f"{app.instance_path}/secret_key", exc)
        key = None
    if production and (key is None or len(key) < secret_keys.MIN_LENGTH):
        raise RuntimeError(
            "Refusing to start in production without SECRET_KEY: set it (or write it to "
            f"{app.instance_path}/secret_key) as a random string of at least "
            f"{secret_keys.MIN_LENGTH} characters, e.g. "
            "python -c 'import secrets; print(secrets.token_hex(32))'.")
    if key is not None:
        app.config["SECRET_KEY"] = key


def _load_models() -> None:
    """Import every domain's models so the metadata (and Alembic) knows all tables."""
    import consult.accounts.models
    import consult.api.models
    import consult.audit.models
    import consult.ballots.models
    import consult.consultations.models
    import consult.consultations.questionnaire_models
    import consult.feedback.models
    import consult.implementation.models
    import consult.notices.models
    import consult.notifications.models
    import consult.registry.models
    import consult.scoring.models
    import consult.uploads.models  # noqa: F401


def _load_audit_readers() -> None:
    """Import how every domain has its audit events read (names of its objects, its fields,
    answers side by side), which the audit pages show (``consult.audit.presenting``)."""
    import consult.accounts.auditing
    import consult.ballots.auditing
    import consult.consultations.auditing
    import consult.feedback.auditing
    import consult.implementation.auditing
    import consult.notices.auditing
    import consult.registry.auditing
    import consult.scoring.auditing  # noqa: F401


def _init_login(app: Flask) -> None:
    from flask_babel import lazy_gettext as _l

    login_manager.init_app(app)
    login_manager.login_view = "accounts.login"
    login_manager.login_message = _l("Please sign in to see this page.")
    login_manager.login_message_category = "info"
    login_manager.session_protection = "basic"
    # The account and its session row in one statement (consult/accounts/sessions.py).
    login_manager.user_loader(sessions.load_user)


def _register_blueprints(app: Flask) -> None:
    from consult.accounts.views import bp as accounts_bp
    from consult.audit.views import bp as audit_bp
    from consult.ballots.proof_views import bp as proofs_bp
    from consult.ballots.views import bp as ballots_bp
    from consult.consultations.views import bp as consultations_bp
    from consult.feedback.views import bp as feedback_bp
    from consult.implementation.views import bp as implementation_bp
    from consult.main.views import bp as main_bp
    from consult.notices.views import bp as notices_bp
    from consult.notifications.views import bp as notifications_bp
    from consult.process.dashboard_views import bp as dashboard_bp
    from consult.process.reminder_views import bp as reminders_bp
    from consult.registry.views import bp as registry_bp
    from consult.scoring.views import bp as scoring_bp
    from consult.uploads.views import bp as uploads_bp

    for blueprint in (main_bp, accounts_bp, registry_bp, audit_bp, consultations_bp,
                      ballots_bp, proofs_bp, notices_bp, implementation_bp, uploads_bp,
                      dashboard_bp, scoring_bp, feedback_bp, reminders_bp,
                      notifications_bp):
        app.register_blueprint(blueprint)


def from_iso(value: str | None) -> datetime | None:
    """Times frozen into notices are ISO strings; templates format them as datetimes."""
    return datetime.fromisoformat(value) if value else None


def _jinja(app: Flask) -> None:
    from flask import g
    from flask_login import current_user

    from consult.audit.actions import action_label, actor_label, kind_label, object_label
    from consult.ballots.explain import CHOICE_LABELS
    from consult.ballots.models import (
        BALLOT_CHANNEL_LABELS,
        ENTRY_STATE_LABELS,
        BallotChannel,
        EntryState,
    )
    from consult.consultations.models import SECRECY_LABELS, Secrecy
    from consult.consultations.service import format_money
    from consult.core.display import area, area_m2, choice_order, large_text, text_width
    from consult.core.i18n import SUPPORTED_LOCALES
    from consult.core.markup import render_markdown
    from consult.core.policy import ROLE_LABELS, Role, can
    from consult.core.text import mask_phone
    from consult.core.urls import url_for_page, url_with
    from consult.implementation.service import rating_label
    from consult.notices.models import NOTICE_KIND_LABELS, NoticeKind, PrintKind
    from consult.notifications import service as notifications
    from consult.process.printing import PRINT_KIND_LABELS, link
    from consult.registry.models import RELATION_LABELS, Relation, household_label
    from consult.registry.service import address_for

    def unread_notifications() -> int:
        """The header's unread count: one COUNT, only for someone signed in, once a page."""
        if not current_user.is_authenticated:
            return 0
        if "unread_notifications" not in g:
            g.unread_notifications = notifications.unread_count(current_user.id)
        return int(g.unread_notifications)

    app.jinja_env.globals.update(
        unread_notifications=unread_notifications,
        format_datetime=format_datetime, format_date=format_date, format_decimal=format_decimal,
        get_locale=get_locale, html_lang=lambda: html_lang(str(get_locale())), can=can,
        html_lang_of=html_lang, large_text=large_text,
        address_for=lambda household: address_for(current_user, household),
        cjk_font=lambda: ("Noto Sans CJK TC" if str(get_locale()) == "zh_Hant"
                          else "Noto Sans CJK SC"),
        supported_locales=SUPPORTED_LOCALES, action_label=action_label, kind_label=kind_label,
        object_label=object_label, actor_label=actor_label,
        role_label=lambda role: ROLE_LABELS[Role(role)], url_for_page=url_for_page,
        url_with=url_with,
        relation_label=lambda value: RELATION_LABELS.get(Relation(value), value),
        choice_label=lambda value: CHOICE_LABELS.get(value, value),
        channel_label=lambda value: BALLOT_CHANNEL_LABELS.get(BallotChannel(value), value),
        entry_state_label=lambda value: ENTRY_STATE_LABELS.get(EntryState(value), value),
        secrecy_label=lambda value: SECRECY_LABELS.get(Secrecy(value), value),
        rating_label=rating_label, household_label=household_label, public_link=link,
        print_kind_label=lambda value: PRINT_KIND_LABELS.get(PrintKind(value), value),
        notice_kind_label=lambda value: NOTICE_KIND_LABELS.get(NoticeKind(value), value),
    )
    app.jinja_env.filters.update(mask_phone=mask_phone, area=area, money=format_money,
                                 markdown=render_markdown, fromiso=from_iso, m2=area_m2,
                                 choice_order=choice_order, text_width=text_width)


def _warn_without_cjk_font(app: Flask) -> None:
    # Without a CJK font PDFs silently print empty boxes; say so at start-up.
    fc_list = shutil.which("fc-list")
    if fc_list is None:
        app.config["CJK_FONT_AVAILABLE"] = False
    else:
        out = subprocess.run([fc_list, ":lang=zh-cn", "family"], capture_output=True,  # noqa: S603
                             text=True, check=False).stdout
        app.config["CJK_FONT_AVAILABLE"] = bool(out.strip())
    if not app.config["CJK_FONT_AVAILABLE"]:
        log.warning("No Chinese (CJK) font is installed: install fonts-noto-cjk, or printed "
                    "notices will not be readable.")
