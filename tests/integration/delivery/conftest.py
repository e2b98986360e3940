"""What the delivery tests share: a store of their own with a short retry ladder, and
sessions on it (a module may define its own)."""

from typing import Any

import pytest

from gateway.settings import Settings
from gateway.store.db import make_engine, make_sessionmaker


@pytest.fixture
def delivery_settings(settings: Settings, isolated_database_url: str) -> Settings:
    return settings.model_copy(update={"database_url": isolated_database_url,
                                       "delivery_limit": 2, "retry_delays": [1, 2],
                                       "relay_interval": 0.1})


@pytest.fixture
def sessions(delivery_settings: Settings) -> Any:
    return make_sessionmaker(make_engine(delivery_settings.database_url))
