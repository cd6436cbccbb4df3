"""The platform database: SQLite under the home directory by default, PostgreSQL by URL for a team.

``REGSANDBOX_DATABASE_URL`` names it (``postgresql+psycopg://user:pass@host/db``); without it the
platform keeps ``platform.db`` in its home. Tables are created on first use.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

from orchestrator.settings import Settings
from orchestrator.store.models import Base


def database_url(settings: Settings) -> str:
    return settings.database_url or f"sqlite:///{settings.home / 'platform.db'}"


@functools.cache
def _engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _pragmas(connection, _record):
            # WAL lets the portal read while a trial's flow run writes; foreign keys are off by default.
            cursor = connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()
    else:
        # Sessions in UTC: timestamps then read back with the zone they were written in, whatever
        # the server's TimeZone, so hashes over them (the audit chain) and comparisons hold.
        engine = create_engine(url, pool_pre_ping=True, connect_args={"options": "-c timezone=UTC"})
    Base.metadata.create_all(engine)
    return engine


def as_utc(value: dt.datetime) -> dt.datetime:
    """A stored timestamp as an aware UTC datetime (SQLite returns them naive, in UTC)."""
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def engine(settings: Settings) -> Engine:
    settings.home.mkdir(parents=True, exist_ok=True)
    return _engine(database_url(settings))


def sessions(settings: Settings) -> sessionmaker[Session]:
    return sessionmaker(engine(settings), expire_on_commit=False)


@contextmanager
def session_scope(settings: Settings) -> Iterator[Session]:
    """One unit of work: committed when the block ends, rolled back if it raises."""
    with sessions(settings)() as session, session.begin():
        yield session
