"""Viewers' threads lease Snowpark sessions of their own (real sessions on fakesnow's server): two threads query
at once on two sessions, a third waits for one to come back, a thread's nested leases share its session, and a
transaction in one thread does not hold up another's statements."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from backend.warehouse.snowflake_pool import SessionPool
from backend.warehouse.snowflake_session import open_session


@pytest.fixture
def opener(fakesnow_server: dict) -> Any:
    params = dict(fakesnow_server, database="FLURRY_POOL", schema="PUBLIC")
    first = open_session("unused", secrets=params)
    first.sql("CREATE DATABASE IF NOT EXISTS FLURRY_POOL").collect()
    return first, lambda: open_session("unused", secrets=params)


def test_threads_hold_sessions_of_their_own_up_to_the_pools_size(opener: Any) -> None:
    first, open_more = opener
    pool = SessionPool(first, open_more, size=2)
    held: dict[str, Any] = {}
    both = threading.Barrier(2)
    third_got: list[float] = []
    release = threading.Event()

    def viewer(name: str) -> None:
        with pool.lease() as session:
            with pool.lease() as nested:
                assert nested is session  # nested within the thread: the same session
            session.sql("SELECT 1").collect()
            held[name] = session
            both.wait()
            release.wait(10)

    def third() -> None:
        started = time.monotonic()
        with pool.lease():
            third_got.append(time.monotonic() - started)

    viewers = [threading.Thread(target=viewer, args=(n,)) for n in ("a", "b")]
    for thread in viewers:
        thread.start()
    while len(held) < 2:
        time.sleep(0.01)
    waiting = threading.Thread(target=third)
    waiting.start()
    time.sleep(0.3)
    assert third_got == []  # both sessions lent: the third viewer waits
    release.set()
    for thread in [*viewers, waiting]:
        thread.join(10)
    assert held["a"] is not held["b"] and len(pool.sessions()) == 2 and len(third_got) == 1


def test_one_threads_transaction_does_not_hold_up_anothers_statements(opener: Any) -> None:
    from backend.warehouse.snowflake_warehouse import SnowflakeWarehouse

    first, open_more = opener
    wh = SnowflakeWarehouse(first, "FLURRY_POOL", reopen=open_more, sessions=2)
    wh.execute('CREATE OR REPLACE TABLE "FLURRY_POOL"."PUBLIC"."t" ("a" INT)')
    in_transaction, answered = threading.Event(), threading.Event()
    answered_in_time: list[bool] = []

    def writer() -> None:
        with wh.transaction():
            wh.execute('INSERT INTO "FLURRY_POOL"."PUBLIC"."t" VALUES (?)', [1])
            in_transaction.set()
            # open until the other thread has its answer (one shared session: it cannot get one meanwhile)
            answered_in_time.append(answered.wait(10))

    thread = threading.Thread(target=writer)
    thread.start()
    in_transaction.wait(10)
    wh.query('SELECT COUNT(*) AS "n" FROM "FLURRY_POOL"."PUBLIC"."t"')  # with one shared session: waits forever
    answered.set()
    thread.join(20)
    assert answered_in_time == [True]
    assert int(wh.query('SELECT COUNT(*) AS "n" FROM "FLURRY_POOL"."PUBLIC"."t"')["n"].iloc[0]) == 1
    single = SnowflakeWarehouse(first, "FLURRY_POOL")  # no way to open more: one session, leases queue
    assert single._pool.size == 1
