"""The pieces behind quick recovery: the broker reconnection back-off and the supervisor's
ending of a dead process's whole group (the fault tests time the real thing)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from ops.suite import end_group, group_members
from shared import amqp


def test_reconnecting_to_the_broker_is_soon_at_first_and_then_about_once_a_second():
    backoff = amqp.reconnect_backoff()
    delays = [backoff.next_delay() for _ in range(50)]
    assert delays[0] <= amqp.RECONNECT_FIRST
    assert max(delays) <= amqp.RECONNECT_LIMIT
    assert min(delays[10:]) >= amqp.RECONNECT_LIMIT / 2  # a broker that stays away is not hammered
    assert len({round(d, 6) for d in delays[10:]}) > 1  # jitter: the processes do not knock together
    backoff.reset()
    assert backoff.next_delay() <= amqp.RECONNECT_FIRST


def test_pika_gives_a_connection_try_a_short_time():
    params = amqp.parameters("amqp://guest:guest@127.0.0.1:5672/")
    assert params.socket_timeout <= 2
    assert params.stack_timeout <= 4


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_what_a_dead_leader_left_in_its_group_is_killed_before_a_restart():
    # A leader that leaves a child behind when it dies, as a killed gunicorn master would.
    leader = subprocess.Popen(["/bin/sh", "-c", "sleep 60 & wait"], start_new_session=True)
    deadline = time.monotonic() + 10
    while len(group_members(leader.pid)) < 2:
        assert time.monotonic() < deadline, "the child never started"
        time.sleep(0.01)
    os.kill(leader.pid, signal.SIGKILL)
    leader.wait()
    assert group_members(leader.pid), "the child outlived its leader"
    end_group(leader)
    assert group_members(leader.pid) == []
