"""The composition root: everything OneStop runs is built here, from one frozen Settings."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

from eventsourcing.postgres import PostgresDatastore

from application.back_office import BackOffice
from application.ports import Clock
from domain.catalogue import FeeSchedule
from domain.organizations import SEED_ORGANIZATIONS, Directory
from infrastructure.clock import SystemClock
from infrastructure.references import CREATE_SEQUENCE, PostgresReferenceIssuer
from infrastructure.settings import Settings
from infrastructure.views import ViewsRecorder

DEFAULT_FEES_FILE = Path(__file__).with_name("fees.toml")


def eventsourcing_env(settings: Settings, *, create_table: bool = False) -> dict[str, str]:
    db = settings.database
    return {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_DBNAME": db.dbname,
        "POSTGRES_HOST": db.host,
        "POSTGRES_PORT": str(db.port),
        "POSTGRES_USER": db.user,
        "POSTGRES_PASSWORD": db.password,
        "POSTGRES_POOL_SIZE": str(settings.pool_size),
        "POSTGRES_MAX_OVERFLOW": "2",
        # No pre-ping: it costs a round trip per checkout, and the recorder already retries
        # on a broken connection.
        # Never POSTGRES_ENABLE_DB_FUNCTIONS: in eventsourcing 9.5.6 it skips the table lock and
        # readers tailing the log miss events under concurrent writes.
        "CREATE_TABLE": "y" if create_table else "n",
    }


def load_fees(settings: Settings) -> FeeSchedule:
    path = settings.fees_file or DEFAULT_FEES_FILE
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    return FeeSchedule(**data)


def build_directory() -> Directory:
    return Directory(SEED_ORGANIZATIONS)


@dataclass
class WriteSide:
    app: BackOffice
    views: ViewsRecorder


def build_back_office(settings: Settings, *, clock: Clock | None = None, create_table: bool = False) -> BackOffice:
    env = eventsourcing_env(settings, create_table=create_table)
    # The reference issuer shares the application's connection pool, which exists only once the
    # application is built; so it is attached right after construction.
    app = BackOffice(
        env,
        directory=build_directory(),
        fees=load_fees(settings),
        biller_id=settings.promptpay_biller_id,
        references=_LateReferences(),
        clock=clock or SystemClock(),
    )
    app.references = PostgresReferenceIssuer(datastore(app))
    return app


class _LateReferences(PostgresReferenceIssuer):
    def __init__(self) -> None:  # replaced right after the application is built
        pass


def datastore(app: BackOffice) -> PostgresDatastore:
    return app.recorder.datastore  # type: ignore[attr-defined,no-any-return]


def build_views(app: BackOffice) -> ViewsRecorder:
    return ViewsRecorder(datastore(app))


def migrate(settings: Settings) -> None:
    """Create every table, index and sequence OneStop needs. Safe to run again."""
    app = build_back_office(settings, create_table=True)
    try:
        views = build_views(app)
        views.create_table()
        with datastore(app).transaction(commit=True) as curs:
            curs.execute(CREATE_SEQUENCE)
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


async def build_api(settings: Settings) -> "web.Application":  # noqa: F821
    """The HTTP API with everything it needs."""
    from api.app import ApiContext, create_app
    from infrastructure.command_bus import CommandBus
    from infrastructure.read_models import PostgresReadModel

    app = build_back_office(settings)
    bus = CommandBus(app, workers=settings.pool_size)
    read_model = await PostgresReadModel.connect(settings.database.url(), max_size=settings.pool_size)
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

    ctx = ApiContext(app=app, bus=bus, read_model=read_model, jwt_secret=settings.jwt_secret,
                     health_checks=[database_health], on_cleanup=[close])
    return create_app(ctx)
