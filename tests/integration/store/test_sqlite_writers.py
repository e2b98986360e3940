"""SQLite writers of one process take turns on a lock that is always given back."""

import threading

from gateway.partners import register_partner
from gateway.store.db import make_engine, make_sessionmaker, unit_of_work, upgrade
from gateway.store.models import Partner


def test_the_write_lock_is_given_back_by_commit_rollback_and_close(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'writers.db'}"
    upgrade(url)
    sessions = make_sessionmaker(make_engine(url))
    with sessions() as session:  # flushed, then closed without commit
        register_partner(session=session, partner_id="a-1", name="a", system="other")
    with sessions() as session:  # flushed, then rolled back
        register_partner(session=session, partner_id="a-2", name="a", system="other")
        session.rollback()
    done = threading.Event()

    def write() -> None:
        with unit_of_work(sessions) as session:
            register_partner(session=session, partner_id="a-3", name="a", system="other")
        done.set()

    thread = threading.Thread(target=write)
    thread.start()
    assert done.wait(5), "a writer was left waiting for a lock nobody holds"
    thread.join()
    with sessions() as session:
        assert [p.id for p in session.query(Partner).order_by(Partner.id)] == ["a-3"]


def test_concurrent_writers_all_land(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'many.db'}"
    upgrade(url)
    sessions = make_sessionmaker(make_engine(url))

    def write(n: int) -> None:
        for i in range(10):
            with unit_of_work(sessions) as session:
                register_partner(session=session, partner_id=f"w-{n}-{i}", name="w",
                                 system="other")

    threads = [threading.Thread(target=write, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    with sessions() as session:
        assert session.query(Partner).count() == 80
