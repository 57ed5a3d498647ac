"""ops.healthcheck, the health check of the relay and consumer containers, against real
processes and sockets of this machine (Linux /proc)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ops import healthcheck
from shared import migrations
from shared.heartbeat import Heartbeat

pytestmark = pytest.mark.skipif(not Path("/proc/self/net/tcp").exists(), reason="needs Linux /proc")


@pytest.fixture
def listener():
    server = socket.socket(socket.AF_INET6)
    server.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)  # IPv4 clients too (mapped)
    server.bind(("::", 0))
    server.listen()
    yield server.getsockname()[1]
    server.close()


def start_fake(argv_tail: list[str], connect_to: int | None = None) -> subprocess.Popen:
    """A process whose command line ends like the real component's, optionally connected."""
    code = "import socket, sys, time\n"
    if connect_to is not None:
        code += f"s = socket.create_connection(('127.0.0.1', {connect_to}))\n"
    code += "print('up', flush=True)\ntime.sleep(60)\n"
    process = subprocess.Popen([sys.executable, "-c", code, *argv_tail], stdout=subprocess.PIPE)
    assert process.stdout.readline() == b"up\n"
    return process


@pytest.fixture
def processes():
    started: list[subprocess.Popen] = []
    yield started
    for process in started:
        process.kill()
        process.wait()


def test_consumer_connected_to_the_broker_is_healthy(listener, processes):
    processes.append(start_fake(["-m", "hcfake.consumer"], connect_to=listener))
    env = {"AMQP_URL": f"amqp://user:secret@localhost:{listener}/%2F"}
    assert healthcheck.check("consumer", "hcfake", env=env) == []


def test_consumer_without_a_broker_connection_is_unhealthy(listener, processes):
    processes.append(start_fake(["-m", "hcfake.consumer"]))
    problems = healthcheck.check("consumer", "hcfake", env={"AMQP_URL": f"amqp://u:p@127.0.0.1:{listener}/"})
    assert len(problems) == 1 and "no connection to the broker" in problems[0]


def test_a_connection_of_another_process_does_not_count(listener, processes):
    processes.append(start_fake(["-m", "other.thing"], connect_to=listener))
    processes.append(start_fake(["-m", "hcfake.consumer"]))
    assert healthcheck.check("consumer", "hcfake", env={"AMQP_URL": f"amqp://u:p@127.0.0.1:{listener}/"})


def test_a_consumer_with_a_module_of_its_own_is_named_by_that_module(listener, processes):
    assert healthcheck.expected_argv("consumer", "hcfake.partner_inbox") == ["-m", "hcfake.partner_inbox"]
    env = {"AMQP_URL": f"amqp://u:p@127.0.0.1:{listener}/"}
    processes.append(start_fake(["-m", "hcfake.consumer"], connect_to=listener))
    assert healthcheck.check("consumer", "hcfake.partner_inbox", env=env) == [
        "no running process ends with '-m hcfake.partner_inbox'"
    ]
    processes.append(start_fake(["-m", "hcfake.partner_inbox"], connect_to=listener))
    assert healthcheck.check("consumer", "hcfake.partner_inbox", env=env) == []


def test_relay_connected_to_its_database_is_healthy(listener, processes):
    processes.append(start_fake(["-m", "shared.relay", "hcfake"], connect_to=listener))
    env = {"HCFAKE_DATABASE_URL": f"postgresql+psycopg://cc:pw@127.0.0.1:{listener}/hcfake"}
    assert healthcheck.check("relay", "hcfake", env=env) == []
    other_port = {"HCFAKE_DATABASE_URL": f"postgresql+psycopg://cc:pw@127.0.0.1:{listener + 1}/hcfake"}
    assert healthcheck.check("relay", "hcfake", env=other_port)


def test_missing_or_dead_process_is_unhealthy(processes):
    assert healthcheck.check("relay", "hcfake-none", env={}) == [
        "no running process ends with '-m shared.relay hcfake-none'"
    ]
    process = start_fake(["-m", "shared.relay", "hcfake-dead"])
    processes.append(process)
    assert healthcheck.find_processes(["-m", "shared.relay", "hcfake-dead"]) == [process.pid]
    process.kill()
    process.wait()
    deadline = time.monotonic() + 5
    while healthcheck.find_processes(["-m", "shared.relay", "hcfake-dead"]) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert healthcheck.find_processes(["-m", "shared.relay", "hcfake-dead"]) == []


def test_command_line_exit_codes(processes):
    run = [sys.executable, "-m", "ops.healthcheck"]
    root = Path(__file__).resolve().parents[2]
    assert subprocess.run([*run, "relay", "hcfake-none"], cwd=root, capture_output=True).returncode == 1
    assert subprocess.run([*run, "nonsense"], cwd=root, capture_output=True).returncode == 2
    # A relay on SQLite has no connection to check: a running process is all there is.
    assert subprocess.run([*run, "relay", "hcfake-sqlite"], cwd=root, capture_output=True).returncode == 1
    processes.append(start_fake(["-m", "shared.relay", "hcfake-sqlite"]))
    assert subprocess.run([*run, "relay", "hcfake-sqlite"], cwd=root, capture_output=True).returncode == 0


def test_a_stale_or_missing_heartbeat_is_unhealthy(tmp_path):
    beat = tmp_path / "heartbeat"
    env = {"HEARTBEAT_FILE": str(beat), "HEARTBEAT_MAX_AGE": "60"}
    assert "no heartbeat" in healthcheck.stale_heartbeat(env)
    Heartbeat(str(beat)).beat()
    assert healthcheck.stale_heartbeat(env) is None
    old = time.time() - 120
    os.utime(beat, (old, old))
    assert "hangs" in healthcheck.stale_heartbeat(env)
    assert healthcheck.stale_heartbeat({}) is None  # off unless configured


def test_the_relay_and_the_consumer_beat_while_they_run(settings_for, tmp_path):
    from shared.consumer import EventConsumer
    from shared.relay import OutboxRelay
    from tests.support import Background, wait_until

    for make in (
        lambda s: OutboxRelay(s),
        lambda s: EventConsumer(s, {}),
    ):
        beat = tmp_path / f"beat-{id(make)}"
        settings = settings_for("identity", heartbeat_file=str(beat))
        migrations.upgrade("identity", settings.database_url)
        with Background(make(settings)):
            wait_until(beat.exists, timeout=10)


def test_mailer_connected_to_its_database_is_healthy(listener, processes):
    assert healthcheck.expected_argv("mailer", "hcfake") == ["-m", "shared.mailer", "hcfake"]
    processes.append(start_fake(["-m", "shared.mailer", "hcfake"], connect_to=listener))
    env = {"HCFAKE_DATABASE_URL": f"postgresql+psycopg://cc:pw@127.0.0.1:{listener}/hcfake"}
    assert healthcheck.check("mailer", "hcfake", env=env) == []
    other_port = {"HCFAKE_DATABASE_URL": f"postgresql+psycopg://cc:pw@127.0.0.1:{listener + 1}/hcfake"}
    problems = healthcheck.check("mailer", "hcfake", env=other_port)
    assert len(problems) == 1 and "no connection to the database" in problems[0]


def test_mailer_without_a_database_connection_or_process_is_unhealthy(listener, processes):
    env = {"HCFAKE_DATABASE_URL": f"postgresql+psycopg://cc:pw@127.0.0.1:{listener}/hcfake"}
    assert healthcheck.check("mailer", "hcfake", env=env) == ["no running process ends with '-m shared.mailer hcfake'"]
    processes.append(start_fake(["-m", "shared.mailer", "hcfake"]))
    assert healthcheck.check("mailer", "hcfake", env=env)
    # A relay of the same service is not its mailer, nor is another service's mailer.
    processes.append(start_fake(["-m", "shared.relay", "hcfake"], connect_to=listener))
    processes.append(start_fake(["-m", "shared.mailer", "hcfake-other"], connect_to=listener))
    assert healthcheck.check("mailer", "hcfake", env=env)


def test_mailer_command_line_exit_codes(processes):
    run = [sys.executable, "-m", "ops.healthcheck"]
    root = Path(__file__).resolve().parents[2]
    assert subprocess.run([*run, "mailer", "hcfake-sqlite"], cwd=root, capture_output=True).returncode == 1
    processes.append(start_fake(["-m", "shared.mailer", "hcfake-sqlite"]))
    assert subprocess.run([*run, "mailer", "hcfake-sqlite"], cwd=root, capture_output=True).returncode == 0
    assert subprocess.run([*run, "mailer"], cwd=root, capture_output=True).returncode == 2


def test_the_real_mailer_on_postgresql_passes_its_health_check(new_database, tmp_path):
    """`python -m shared.mailer identity` keeps a connection to its database while idle and beats."""
    from tests.support import wait_until

    url = new_database("hcmailer")
    migrations.upgrade("identity", url)
    root = Path(__file__).resolve().parents[2]
    env = {
        **os.environ,
        "IDENTITY_DATABASE_URL": url,
        "HEARTBEAT_FILE": str(tmp_path / "heartbeat"),
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": "9",  # nothing to send: the mailer never connects
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "shared.mailer", "identity"], cwd=root, env=env, stderr=subprocess.PIPE, text=True
    )
    try:
        wait_until(lambda: healthcheck.check("mailer", "identity", env=env) == [], timeout=20)
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=15)
    assert process.returncode == 0, stderr
    assert '"component": "identity-mailer"' in stderr
