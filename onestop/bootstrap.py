"""The composition root: everything OneStop runs is built here, from one frozen Settings."""

from __future__ import annotations

import asyncio
import logging
from datetime import date
from typing import TYPE_CHECKING, Awaitable, Callable, Any

from eventsourcing.postgres import PostgresDatastore

from application.back_office import BackOffice
from application.jobs import Job
from application.ports import Clock
from application.projections import bangkok_day
from domain.catalogue import FeeSchedule
from domain.organizations import SEED_ORGANIZATIONS, Directory
from domain.rules import RuleBook
from infrastructure.clock import SystemClock
from infrastructure.eventstore.references import CREATE_SEQUENCE, PostgresReferenceIssuer
from onestop.rules_file import load_rules
from onestop.settings import Settings, SettingsError
from infrastructure.views.recorder import ViewsRecorder

log = logging.getLogger("onestop.bootstrap")

if TYPE_CHECKING:  # the processes import these lazily, so that each loads only what it runs
    from aiohttp import web

    from api.app import ApiContext
    from api.limits import LimitSettings
    from application.ports import SubjectDataSource
    from infrastructure.identity.verifier import OidcTokenVerifier
    from infrastructure.jobs.dispatcher import Dispatcher
    from infrastructure.integrations.delivery import WebhookSettings
    from workers.jobs import JobRuntime


def eventsourcing_env(settings: Settings, *, create_table: bool = False, pool_max: int | None = None) -> dict[str, str]:
    """The event store's environment; its pool opens one connection and grows to ``pool_max``
    (default ONESTOP_POOL_SIZE; see onestop.connection_budget)."""
    db = settings.database
    pool_max = max(1, pool_max or settings.pool_size)
    return {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_DBNAME": db.dbname,
        "POSTGRES_HOST": db.host,
        "POSTGRES_PORT": str(db.port),
        "POSTGRES_USER": db.user,
        "POSTGRES_PASSWORD": db.password,
        "POSTGRES_POOL_SIZE": "1",
        "POSTGRES_MAX_OVERFLOW": str(pool_max - 1),
        # No pre-ping: it costs a round trip per checkout, and the recorder already retries
        # on a broken connection.
        # Never POSTGRES_ENABLE_DB_FUNCTIONS: in eventsourcing 9.5.6 it skips the table lock and
        # readers tailing the log miss events under concurrent writes.
        "CREATE_TABLE": "y" if create_table else "n",
        "TRANSCODER_TOPIC": "infrastructure.eventstore.transcoder:OrjsonTranscoder",
        # The INSERT with binary arrays (infrastructure/eventstore/recorder.py), same lock and NOTIFY.
        "APPLICATION_RECORDER_TOPIC": "infrastructure.eventstore.recorder:ArrayInsertRecorder",
    }


def load_rule_book(settings: Settings) -> RuleBook:
    """The rules file (ONESTOP_RULES_FILE, or its old name ONESTOP_FEES_FILE), else the shipped
    defaults. A bad file raises `RulesError` naming the entry, which stops startup."""
    return load_rules(settings.rules_file or settings.fees_file)


def load_fees(settings: Settings, *, rules: RuleBook | None = None, clock: Clock | None = None) -> FeeSchedule:
    """The fees in force today (Bangkok), from the rules file."""
    book = rules or load_rule_book(settings)
    return book.fee_schedule(bangkok_today(clock or SystemClock()))


def bangkok_today(clock: Clock) -> date:
    return bangkok_day(clock.now())


def build_directory() -> Directory:
    return Directory(SEED_ORGANIZATIONS)


# How long the event store's pool keeps retrying one lost connection before a new checkout starts
# a fresh attempt (its delays double from 1 s, so the longest wait for a returned server is ~8 s).
RECONNECT_SECONDS = 15.0


def build_back_office(settings: Settings, *, clock: Clock | None = None, create_table: bool = False, pool_max: int | None = None,
                      personal_data: bool = True) -> BackOffice:
    """The application on PostgreSQL. With ``personal_data`` (every process but ``migrate``)
    the master and blind-index keys are required (SettingsError before anything connects), and
    personal fields are encrypted per person unless ONESTOP_ENCRYPT_PERSONAL_DATA=off."""
    if personal_data:
        settings.require_master_key()
        settings.require_blind_index_key()
    env = eventsourcing_env(settings, create_table=create_table, pool_max=pool_max)
    clock = clock or SystemClock()
    rules = load_rule_book(settings)
    # The reference issuer shares the application's connection pool, which exists only once the
    # application is built; so it is attached right after construction.
    from infrastructure.privacy.keys import BlindIndex

    app = BackOffice(
        env,
        directory=build_directory(),
        fees=load_fees(settings, rules=rules, clock=clock),
        rules=rules,
        biller_id=settings.promptpay_biller_id,
        references=_LateReferences(),
        clock=clock,
        # Ids derived from a person (allowance recipients, booking ledgers) are made from it.
        subject_index=BlindIndex(settings.blind_index_key) if settings.blind_index_key is not None else None,
    )
    app.references = PostgresReferenceIssuer(datastore(app))
    # psycopg_pool retries a lost connection with a doubling delay and no cap for up to 5
    # minutes, so after a long outage the pool could sit idle for a minute after PostgreSQL is
    # back. Giving an attempt up after RECONNECT_SECONDS lets the next checkout start afresh.
    datastore(app).pool.reconnect_timeout = RECONNECT_SECONDS
    app.batch_lines = settings.allowance_batch_lines
    if personal_data:
        install_personal_data(settings, app)
    return app


def install_personal_data(settings: Settings, app: BackOffice) -> None:
    """Per-person encryption in the event store's mapper, the blind index, and the erasure
    adapter (infrastructure/privacy/)."""
    from infrastructure.privacy.erasure import PostgresPersonalData
    from infrastructure.privacy.keys import BlindIndex, MasterKeys, SubjectKeys
    from infrastructure.privacy.mapper import install

    blind_index = BlindIndex(settings.require_blind_index_key())
    keys = SubjectKeys(datastore(app), MasterKeys(settings.require_master_key(), settings.master_key_previous),
                       cache_size=settings.key_cache_size, cache_seconds=settings.key_cache_seconds,
                       events_table=app.recorder.events_table_name)
    mapper = install(app, keys, blind_index) if settings.encrypt_personal_data else None
    app.personal_data = PostgresPersonalData(app, keys, blind_index, mapper)


class _LateReferences(PostgresReferenceIssuer):
    def __init__(self) -> None:  # replaced right after the application is built
        pass


def datastore(app: BackOffice) -> PostgresDatastore:
    return app.recorder.datastore  # type: ignore[attr-defined,no-any-return]


def build_register(app: BackOffice) -> Any:
    """The allowance register's follower, reading Recipient events through the personal-data
    revealer when they are encrypted."""
    from infrastructure.allowance.register import RegisterFollower

    return RegisterFollower(datastore(app), reveal=getattr(getattr(app, "personal_data", None), "reveal_states", None))


def build_views(app: BackOffice) -> ViewsRecorder:
    personal = getattr(app, "personal_data", None)
    return ViewsRecorder(datastore(app), blind_index=personal.index if personal is not None else None)


def migrate(settings: Settings) -> None:
    """Create every table, index and sequence OneStop needs. Safe to run again."""
    app = build_back_office(settings, create_table=True, personal_data=False)
    try:
        views = build_views(app)
        views.create_table()
        from infrastructure.jobs.dispatcher import TRACKING_TABLE as DISPATCHER_TRACKING
        from infrastructure.jobs.jobs_store import SCHEMA_STATEMENTS as JOBS_SCHEMA
        from eventsourcing.postgres import PostgresTrackingRecorder

        PostgresTrackingRecorder(datastore(app), tracking_table_name=DISPATCHER_TRACKING).create_table()
        with datastore(app).transaction(commit=True) as curs:
            curs.execute(CREATE_SEQUENCE)
            for statement in JOBS_SCHEMA:
                curs.execute(statement)
            for statement in integration_schema():
                curs.execute(statement)
            for statement in identity_schema():
                curs.execute(statement)
            from infrastructure.allowance.register import SCHEMA_STATEMENTS as ALLOWANCE_SCHEMA

            for statement in ALLOWANCE_SCHEMA:
                curs.execute(statement)
            if settings.secrets_key is not None:
                from infrastructure.secret_box import SecretBox, encrypt_plain_webhook_secrets

                encrypt_plain_webhook_secrets(curs, SecretBox(settings.secrets_key))
    finally:
        app.close()


def redact(url: str) -> str:
    """A URL without its password, fit for health output and logs."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return urlunsplit(parts._replace(netloc=netloc))
    return url


async def build_api(settings: Settings) -> web.Application:
    """The HTTP API with everything it needs."""
    from api.app import ApiContext, create_app
    from api.command_bus import CommandBus
    from infrastructure.views.read_models import PostgresReadModel

    app = build_back_office(settings)
    bus = CommandBus(app, workers=settings.pool_size)
    read_model = await PostgresReadModel.connect(settings.database.url(), min_size=1, max_size=settings.pool_size)
    database_url = redact(settings.database.url())

    async def database_health() -> dict[str, object]:
        try:
            log_position = await read_model.log_position()
            views_position = await read_model.views_position()
        except Exception as error:  # any failure means "down", with the reason
            return {"name": "database", "status": "down", "url": database_url, "error": str(error)}
        return {
            "name": "database", "status": "up", "url": database_url,
            "log_position": log_position, "views_position": views_position, "views_lag": log_position - views_position,
        }

    async def close() -> None:
        await read_model.close()
        bus.close()
        app.close()

    from api import jobs as jobs_api
    from api import payment_notices

    outside_checks, close_outside = outside_health_checks(settings)

    async def close_all() -> None:
        await close_outside()
        await close()

    ctx = ApiContext(app=app, bus=bus, read_model=read_model, jwt_secret=settings.jwt_secret,
                     health_checks=[database_health, *outside_checks], on_cleanup=[close_all],
                     bank_callback_secret=settings.bank_callback_secret, jwt_max_ttl_seconds=settings.jwt_max_ttl_seconds,
                     limits=limit_settings(settings), cors_origins=settings.cors_origins)
    if app.personal_data is not None:
        ctx.blind_index = app.personal_data.index
        read_model.reveal = app.personal_data.reveal_all  # type: ignore[attr-defined]
    from api import data_subjects
    from infrastructure.eventstore.follower_status import FollowerWatch

    ctx.followers = FollowerWatch(read_model.pool, stall_seconds=settings.stall_seconds)
    ctx.extra_routes.extend([payment_notices.routes, jobs_api.routes, allowances_routes(read_model.pool), data_subjects.routes])
    add_personal_data(ctx, settings, read_model.pool)
    from infrastructure.land_tax.views import PostgresLandTaxViews

    ctx.land_tax = PostgresLandTaxViews(read_model.pool)
    add_identity(ctx, settings, read_model.pool)
    from api.appointments import AppointmentsApi
    from infrastructure.views.appointments import PostgresAppointmentViews

    ctx.extra_routes.append(AppointmentsApi(PostgresAppointmentViews(read_model.pool)).routes())
    add_money_trail(ctx, settings, read_model.pool)
    shutdown = await add_audit_and_integrations(ctx, settings, read_model.pool)
    web_app = create_app(ctx)
    web_app.on_shutdown.extend(shutdown)
    return web_app


def identity_schema() -> list[str]:
    """The tables of browser sessions and pending sign-ins."""
    from infrastructure.identity.sessions import SCHEMA_STATEMENTS

    return list(SCHEMA_STATEMENTS)


def build_token_verifier(settings: Settings) -> OidcTokenVerifier | None:
    """The verifier of the trusted issuers' tokens, or None when ONESTOP_OIDC_ISSUERS is unset.
    A bad issuers file raises IssuersFileError naming the entry, which stops startup."""
    from infrastructure.identity.issuers import load_issuers
    from infrastructure.identity.verifier import OidcTokenVerifier

    if settings.oidc_issuers_file is None:
        return None
    return OidcTokenVerifier(load_issuers(settings.oidc_issuers_file), max_ttl_seconds=settings.jwt_max_ttl_seconds,
                             min_refresh_seconds=settings.jwks_min_refresh_seconds)


def add_identity(ctx: ApiContext, settings: Settings, pool: object) -> None:
    """Who may call: development tokens (when on), the trusted issuers, browser sessions."""
    from api import signin
    from infrastructure.identity.sessions import PostgresSessionStore
    from infrastructure.identity.sign_in import OidcSignIn
    from infrastructure.privacy.keys import BlindIndex

    verifier = build_token_verifier(settings)
    ctx.dev_tokens = settings.dev_tokens
    ctx.token_verifier = verifier
    ctx.sessions = PostgresSessionStore(pool, subject_index=BlindIndex(settings.require_blind_index_key()))  # type: ignore[arg-type]
    ctx.sign_in = OidcSignIn(verifier) if verifier is not None else None
    ctx.browser_origins = settings.sign_in_origins
    ctx.public_url = settings.public_url
    ctx.extra_routes.append(signin.routes)
    if verifier is not None:
        ctx.on_cleanup.insert(0, verifier.close)


def allowances_routes(pool: object) -> web.RouteTableDef:
    """The elderly-allowance routes, reading the register view through ``pool``."""
    from api.allowances import AllowancesApi
    from infrastructure.allowance.register import RegisterQueries

    return AllowancesApi(RegisterQueries(pool)).routes()  # type: ignore[arg-type]


def add_money_trail(ctx: ApiContext, settings: Settings, pool: Any) -> None:
    """Receipts' queries and printer. Without a Thai font the API answers receipts as JSON only."""
    from infrastructure.money_trail.queries import PostgresMoneyTrail
    from infrastructure.money_trail.receipt_pdf import FpdfReceiptPrinter, ThaiFontMissing

    ctx.money_trail = PostgresMoneyTrail(pool)  # receipts' QR codes use ctx.public_url (add_identity sets it)
    try:
        ctx.receipt_printer = FpdfReceiptPrinter()
    except ThaiFontMissing as missing:
        log.warning("receipts as PDF are off: %s", missing)


async def reconcile(settings: Settings, day: date) -> list[dict[str, Any]]:
    """Reconcile one Bangkok day with the bank's settlement file (``onestop reconcile --day``)."""
    import asyncpg

    from application.reconciliation import reconcile_day
    from infrastructure.money_trail.bank_settlements import HttpBankSettlements
    from infrastructure.money_trail.queries import PostgresMoneyTrail
    from infrastructure.views.read_models import _init_connection

    if settings.bank_url is None:
        raise SettingsError("ONESTOP_BANK_URL is needed to read the bank's settlement file")
    app = build_back_office(settings, pool_max=2)
    pool = await asyncpg.create_pool(settings.database.url(), min_size=1, max_size=2, init=_init_connection)
    try:
        settlements = HttpBankSettlements(settings.bank_url, timeout_seconds=settings.outside_timeout_seconds)
        return await reconcile_day(day, app, settlements, PostgresMoneyTrail(pool))
    finally:
        await pool.close()
        app.close()


def daily_reconciliation(settings: Settings) -> Callable[[date], object] | None:
    """What the sweeper runs each morning for the day before; None without a bank to ask."""
    if settings.bank_url is None:
        return None
    return lambda day: asyncio.run(reconcile(settings, day))


def limit_settings(settings: Settings) -> LimitSettings:
    """The API's abuse limits, from the settings."""
    from api.limits import LimitSettings

    return LimitSettings(
        enabled=settings.rate_limits,
        subject_per_second=settings.rate_subject_per_second, subject_burst=settings.rate_subject_burst,
        ip_per_second=settings.rate_ip_per_second, ip_burst=settings.rate_ip_burst,
        notice_per_second=settings.rate_notice_per_second, notice_burst=settings.rate_notice_burst,
        sse_max_streams_per_subject=settings.sse_max_streams_per_subject,
        header_timeout_seconds=settings.header_timeout_seconds, body_timeout_seconds=settings.body_timeout_seconds,
    )


def outside_health_checks(settings: Settings) -> tuple[list, Callable[[], Awaitable[None]]]:
    """Health of the broker, the registry and the bank, each with its URL. They are reported
    but do not make the API unhealthy: requests are still taken while they are down."""
    import aiohttp

    session: list[aiohttp.ClientSession] = []

    def http_check(name: str, url: str | None) -> Callable[[], Awaitable[dict[str, object]]]:
        async def check() -> dict[str, object]:
            if url is None:
                return {"name": name, "status": "not configured", "url": None, "required": False}
            if not session:
                session.append(aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)))
            try:
                async with session[0].get(url.rstrip("/") + "/health") as response:
                    up = response.status == 200
                return {"name": name, "status": "up" if up else "down", "url": url, "required": False}
            except (aiohttp.ClientError, OSError, asyncio.TimeoutError) as error:
                return {"name": name, "status": "down", "url": url, "error": type(error).__name__, "required": False}
        return check

    async def broker_check() -> dict[str, object]:
        url = settings.broker_url
        if url is None:
            return {"name": "broker", "status": "up", "url": "in-process (stub)", "required": False}
        from urllib.parse import urlsplit

        parts = urlsplit(url)
        default_port = 5672 if parts.scheme.startswith("amqp") else 6379
        try:
            _, writer = await asyncio.wait_for(asyncio.open_connection(parts.hostname or "127.0.0.1", parts.port or default_port), 2)
            writer.close()
            status = "up"
        except (OSError, asyncio.TimeoutError):
            status = "down"
        return {"name": "broker", "status": status, "url": redact(url), "required": False}

    async def close() -> None:
        for s in session:
            await s.close()

    return [broker_check, http_check("registry", settings.registry_url), http_check("bank", settings.bank_url)], close


def build_job_runtime(settings: Settings, *, pool_max: int | None = None) -> JobRuntime:
    """What a worker process needs to run jobs: the application and the outside systems."""
    from infrastructure.jobs.jobs_store import JobsStore
    from infrastructure.jobs.outside_systems import HttpCivilRegistry, HttpPaymentGateway
    from infrastructure.jobs.database_identity import database_marker
    from workers.jobs import JobRuntime

    if settings.registry_url is None or settings.bank_url is None:
        raise SettingsError("a worker needs ONESTOP_REGISTRY_URL and ONESTOP_BANK_URL")
    from onestop.connection_budget import worker_pool

    from infrastructure.jobs.aggregate_batch import PostgresAggregateBatch

    app = build_back_office(settings, pool_max=pool_max or worker_pool(settings))
    app.aggregate_batch = PostgresAggregateBatch(app)  # a batch of registry answers loads its requests in one query
    registry = HttpCivilRegistry(settings.registry_url, timeout_seconds=settings.outside_timeout_seconds)
    gateway = HttpPaymentGateway(settings.bank_url, settings.promptpay_biller_id, timeout_seconds=settings.outside_timeout_seconds)
    return JobRuntime(
        app=app,
        registry=registry,
        gateway=gateway,
        store=JobsStore(datastore(app)),
        threads=settings.worker_threads,
        database_marker=database_marker(settings),
        status_checks=registry,
        transfers=gateway,
        register=build_register(app),
    )


def build_sweeper_send(settings: Settings, broker: object, marker: str) -> Callable[[Job, int], None]:
    """How the sweeper sends the jobs it finds stale: as the dispatcher does, to this database's queue."""
    from infrastructure.jobs.database_identity import jobs_queue
    from workers.actors import dramatiq_sender

    return dramatiq_sender(broker, jobs_queue(settings, marker), max_retries=settings.job_max_retries, min_backoff_ms=settings.job_min_backoff_ms,
                           max_backoff_ms=settings.job_max_backoff_ms, database=marker)


def build_dispatcher(settings: Settings, broker: object, marker: str | None = None, app: BackOffice | None = None) -> Dispatcher:
    from infrastructure.jobs.database_identity import database_marker, jobs_queue
    from infrastructure.jobs.dispatcher import Dispatcher
    from workers.actors import dramatiq_sender

    marker = marker or database_marker(settings)
    send = dramatiq_sender(broker, jobs_queue(settings, marker), max_retries=settings.job_max_retries, min_backoff_ms=settings.job_min_backoff_ms,
                           max_backoff_ms=settings.job_max_backoff_ms, database=marker)
    # Its own pool: the dispatcher and the sweeper (see onestop.connection_budget).
    return Dispatcher(app or build_back_office(settings, pool_max=2), send)


# -- auditors and integrators: audit log and chain, published feed, webhooks -------------------


def integration_schema() -> list[str]:
    """The tables of the published feed, the audit chain, webhooks and the access log."""
    from infrastructure.audit import audit_chain
    from infrastructure.integrations import event_feed, subscriptions
    from infrastructure.privacy import access_log

    from infrastructure.integrations import stream_tickets
    from infrastructure.privacy import erasure as privacy_erasure
    from infrastructure.privacy import keys as privacy_keys

    return [*event_feed.SCHEMA_STATEMENTS, *audit_chain.SCHEMA_STATEMENTS, *subscriptions.SCHEMA_STATEMENTS, *access_log.SCHEMA_STATEMENTS,
            *stream_tickets.SCHEMA_STATEMENTS, *privacy_keys.SCHEMA_STATEMENTS, *privacy_erasure.SCHEMA_STATEMENTS]


# -- personal data: who looked, and what is held about a person ---------------------------------


def subject_data_sources(pool: object, index: Callable[[str], str], reveal: Callable[..., Any] | None = None) -> list[SubjectDataSource]:
    """What an access or portability export holds, one section per source, in this order:
    requests, payments, allowances (with disbursement lines), tax notices, receipts,
    appointments, events. ``index`` is the keyed blind index (it finds a person's records once
    the views read "[erased]"); ``reveal`` opens the personal fields of stored event documents
    (the bank's reasons of disbursement lines). A feature that keeps personal data of its own
    adds its source here."""
    from infrastructure.privacy.subject_data import subject_sources

    return list(subject_sources(pool, index, reveal))  # type: ignore[arg-type]


def add_personal_data(ctx: ApiContext, settings: Settings, pool: object) -> None:
    """The access log (batched, flushed before the read model's pool closes), the subject
    references (the same keyed blind index as the event store's), and the export's data
    sources, on ``ctx``."""
    from application.disclosures import Disclosures
    from infrastructure.privacy.access_log import BatchedAccessLog
    from infrastructure.privacy.keys import BlindIndex
    from infrastructure.privacy.subject_data import PostgresSubjectLookup

    access_log = BatchedAccessLog(pool, flush_ms=settings.access_log_flush_ms, batch_rows=settings.access_log_batch_rows)  # type: ignore[arg-type]
    ctx.access_log = access_log
    index = BlindIndex(settings.require_blind_index_key())
    ctx.disclosures = Disclosures(access_log, index, PostgresSubjectLookup(pool), SystemClock())  # type: ignore[arg-type]
    personal = getattr(ctx.app, "personal_data", None)
    ctx.subject_sources = subject_data_sources(pool, index, getattr(personal, "reveal_all", None))
    ctx.on_cleanup.insert(0, access_log.close)


def build_followers(app: BackOffice) -> list[Any]:
    """What the elected projector runs after each catch-up, in order (each keeps its own
    position): the published feed, the erasure purge, the hash chain, the allowance register.
    The feed, the erasure purge and the chain are handed each batch the projector reads
    (``BatchFollower``)."""
    from infrastructure.audit.audit_chain import ChainFollower
    from infrastructure.integrations.event_feed import FeedFollower

    personal = getattr(app, "personal_data", None)
    reveal = getattr(personal, "reveal_published", None)
    followers: list[Any] = [FeedFollower(datastore(app), reveal=reveal)]
    if personal is not None and personal.mapper is not None:
        from infrastructure.privacy.erasure import ErasureFollower

        followers.append(ErasureFollower(personal))
    return [*followers, ChainFollower(datastore(app)), build_register(app).catch_up]


def webhook_settings(settings: Settings) -> WebhookSettings:
    from infrastructure.integrations.delivery import WebhookSettings

    return WebhookSettings.from_settings(settings)


async def add_audit_and_integrations(ctx: ApiContext, settings: Settings, pool: object) -> list:
    """Routes and hooks for auditors (log, export, verify, as_of) and integrators (feed, SSE,
    subscriptions) on ``ctx``; returns the hooks to run when the server shuts down."""
    from api.audit import AuditApi
    from api.streams import StreamSettings, StreamsApi
    from api.subscriptions import SubscriptionsApi
    from application.cloudevents import TOPIC_OF_TYPE
    from application.history import History
    from infrastructure.audit.audit_log import AuditLog
    from infrastructure.integrations.event_feed import EventFeed, FeedNotifier
    from infrastructure.integrations.subscriptions import SubscriptionStore
    from infrastructure.integrations.targets import check_target
    from infrastructure.secret_box import SecretBox

    notifier = FeedNotifier(settings.database.url())
    await notifier.start()
    personal = ctx.app.personal_data
    log = AuditLog(pool, reveal=personal.reveal_all if personal is not None else None)  # type: ignore[arg-type,attr-defined]
    from domain.data_subject import DataSubject

    # Auditors filter by every stored type: the published ones and the erasures (not published).
    topics = [*TOPIC_OF_TYPE.values(), DataSubject.Registered.TOPIC, DataSubject.Erased.TOPIC]
    audit = AuditApi(log, History(ctx.app, log, ctx.bus.call), {t.partition(":")[2]: t for t in topics})
    from infrastructure.integrations.stream_tickets import PostgresStreamTickets

    stream_api = StreamsApi(EventFeed(pool, notifier),  # type: ignore[arg-type]
                            StreamSettings(heartbeat_seconds=settings.sse_heartbeat_seconds, ticket_ttl_seconds=settings.stream_ticket_ttl_seconds),
                            PostgresStreamTickets(pool))  # type: ignore[arg-type]
    box = SecretBox(settings.require_secrets_key())
    subscriptions = SubscriptionsApi(SubscriptionStore(pool, box), webhook_settings(settings), check_target)  # type: ignore[arg-type]
    ctx.extra_routes.extend([audit.routes(), stream_api.routes(), subscriptions.routes()])
    ctx.as_of_request = audit.as_of_request
    ctx.as_of_payment = audit.as_of_payment
    from application.current import CurrentState

    ctx.current = CurrentState(ctx.app, log, ctx.bus.call)
    # Before the read model's pool closes (the hooks run in order).
    ctx.on_cleanup.insert(0, notifier.close)

    async def stop_streams(app: object) -> None:
        await stream_api.shutdown(app)  # type: ignore[arg-type]
        await notifier.close()

    return [stop_streams]

