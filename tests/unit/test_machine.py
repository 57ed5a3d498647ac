"""ops/machine.sh, which `make test` and `make run` call first: what it decides to do.

The decision runs the real script with a PATH of stub executables (`id`, `apt-get` and the
packages' commands) standing in for the machine, so each case is a machine of its own; the last
tests run it on this real machine, which `make test` has made ready, so it has nothing to do.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "ops/machine.sh"
BASH = shutil.which("bash") or "/bin/bash"
COMMANDS = {"chromium": "chromium", "docker-compose": "docker-compose", "nginx": "nginx-light", "wrk": "wrk"}


def stub(folder: Path, name: str, body: str) -> None:
    path = folder / name
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)


def machine(tmp_path: Path, *, uid: int, apt: bool, present: set[str]) -> tuple[Path, Path]:
    """A folder of stubs (the whole PATH) and the log the stub apt-get writes its calls to."""
    folder = tmp_path / "bin"
    folder.mkdir()
    log = tmp_path / "apt.log"
    stub(folder, "id", f'[ "$1" = -u ] && echo {uid}')
    if apt:
        stub(folder, "apt-get", f'echo "$DEBIAN_FRONTEND $*" >> {log}')
    for command in present:
        stub(folder, command, "exit 0")
    return folder, log


def run(folder: Path, mode: str = "test", **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [BASH, str(SCRIPT), mode],
        env={"PATH": str(folder), "CC_MACHINE_SBIN": "", **env},
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_as_root_with_apt_it_installs_only_what_is_missing(tmp_path):
    folder, log = machine(tmp_path, uid=0, apt=True, present={"chromium", "wrk"})
    result = run(folder)
    assert result.returncode == 0, result.stderr
    assert log.read_text().splitlines() == [
        " update -qq",
        "noninteractive install -y -qq docker-compose nginx-light",
    ]


def test_as_root_with_everything_there_apt_is_not_called(tmp_path):
    folder, log = machine(tmp_path, uid=0, apt=True, present=set(COMMANDS))
    result = run(folder)
    assert result.returncode == 0, result.stderr
    assert not log.exists()


def test_not_root_it_stops_with_the_exact_command(tmp_path):
    folder, log = machine(tmp_path, uid=1000, apt=True, present={"docker-compose"})
    result = run(folder)
    assert result.returncode == 2
    assert "  sudo apt-get install -y chromium nginx-light wrk\n" in result.stderr
    assert not log.exists()


def test_without_apt_it_stops_naming_the_packages(tmp_path):
    folder, log = machine(tmp_path, uid=0, apt=False, present=set())
    result = run(folder)
    assert result.returncode == 2
    assert "sudo apt-get install -y chromium docker-compose nginx-light wrk" in result.stderr
    assert "no apt-get" in result.stderr


def test_make_run_needs_none_of_the_test_packages(tmp_path):
    folder, log = machine(tmp_path, uid=1000, apt=True, present=set())
    result = run(folder, "run")
    assert result.returncode == 0, result.stderr
    assert not log.exists()


def test_a_remote_broker_and_database_are_left_alone(tmp_path):
    folder, _ = machine(tmp_path, uid=0, apt=True, present=set(COMMANDS))
    # rabbitmqctl and pg_ctlcluster stubs that fail loudly if called.
    for name in ("rabbitmqctl", "rabbitmq-server", "rabbitmq-plugins", "pg_ctlcluster"):
        stub(folder, name, "echo called >&2; exit 9")
    result = run(folder, AMQP_URL="amqp://u:p@broker.example:5672/", POSTGRES_URL="postgresql://db.example/x")
    assert result.returncode == 0, result.stderr
    assert "called" not in result.stderr


@pytest.mark.parametrize("mode", ["test", "run"])
def test_this_machine_is_ready_so_there_is_nothing_to_do(mode):
    """`make test` ran the script before pytest: run again on the real machine, it does nothing."""
    result = subprocess.run([BASH, str(SCRIPT), mode], env=dict(os.environ), capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stderr == "", result.stderr  # it says something only when it acts or stops
