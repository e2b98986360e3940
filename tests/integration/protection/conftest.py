"""Each test of the encryption and audit stores gets an empty store of its own."""

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from gateway.store.db import make_engine, make_sessionmaker
from servers import fresh_store


@pytest.fixture
def store_url(database_url: str, tmp_path: Path) -> Iterator[str]:
    """An empty store of the same kind as `database_url`, for this test alone."""
    with fresh_store(database_url, tmp_path) as url:
        yield url


@pytest.fixture
def engine(store_url: str) -> Iterator[Engine]:
    engine = make_engine(store_url)
    yield engine
    engine.dispose()


@pytest.fixture
def sessions(engine: Engine) -> sessionmaker[Session]:
    return make_sessionmaker(engine)
