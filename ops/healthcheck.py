"""Container health checks for the components that have no HTTP port (relays, consumers,
mailers).

`python -m ops.healthcheck relay|consumer|mailer|notifier <service>` exits 0 when, in this container,
1. the component's process runs (its command line is `... -m shared.relay <service>`,
   `... -m <service>.consumer` or `... -m shared.mailer <service>`) and is neither a zombie nor
   stopped (a consumer run as another module, such as licensing's partner inbox, is named by
   that module: `consumer licensing.partner_inbox` looks for `... -m licensing.partner_inbox`,
   and needs the broker like every consumer), and
2. that process holds an ESTABLISHED TCP connection to what it works with: a consumer to the
   broker (`AMQP_URL`), a relay to its PostgreSQL database (`<SERVICE>_DATABASE_URL`, where it
   LISTENs for new outbox rows), a mailer to its PostgreSQL database too (the pooled
   connection it polls the mail queue on; the SMTP server it only connects to while mail is
   waiting, and an SMTP outage is the mail server's problem, which the mailer rides out).
   Connections are matched by socket inode, so they are that process's own, not just any
   socket in the container.

3. when `HEARTBEAT_FILE` is set, the process's loop touched that file within the last
   `HEARTBEAT_MAX_AGE` seconds (default 60): a loop stuck while holding its connections open
   is caught here (shared/heartbeat.py).

So "healthy" means "running, connected and turning", not merely "a PID exists": a consumer
that lost the broker and is backing off, or a relay whose database went away, reports
unhealthy until it has reconnected.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

PROC = Path("/proc")
ESTABLISHED = "01"
KINDS = ("relay", "consumer", "mailer", "notifier")


def expected_argv(kind: str, service: str) -> list[str]:
    """The tail of the component's command line (as docker-compose.yml and the Procfile run it)."""
    if kind == "relay":
        return ["-m", "shared.relay", service]
    if kind == "consumer":
        # A dotted name is the consumer's own module (python -m licensing.partner_inbox).
        return ["-m", service if "." in service else f"{service}.consumer"]
    if kind == "mailer":
        return ["-m", "shared.mailer", service]
    if kind == "notifier":  # the forum's digest writer: a database poller like a mailer
        return ["-m", f"{service}.notifier"]
    raise ValueError(f"unknown component kind {kind!r} (relay, consumer, mailer or notifier)")


def find_processes(argv_tail: list[str], proc: Path = PROC) -> list[int]:
    """PIDs of live processes whose command line ends with argv_tail (this one excluded)."""
    found = []
    for entry in proc.iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:  # it ended meanwhile, or is not ours to read
            continue
        if argv and argv[-1] == b"":
            argv = argv[:-1]
        tail = [part.decode(errors="replace") for part in argv[-len(argv_tail) :]]
        if tail == argv_tail and state not in ("Z", "X", "T", "t"):
            found.append(int(entry.name))
    return sorted(found)


def socket_inodes(pid: int, proc: Path = PROC) -> set[str]:
    inodes = set()
    for fd in (proc / str(pid) / "fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    return inodes


def _decode_address(hex_address: str) -> tuple[ipaddress.IPv4Address | ipaddress.IPv6Address, int]:
    host, port = hex_address.split(":")
    raw = bytes.fromhex(host)
    # /proc/net/tcp{,6} print the address as 32-bit words in host (little-endian) order.
    raw = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
    address = ipaddress.ip_address(raw)
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    return address, int(port, 16)


def established_peers(pid: int, proc: Path = PROC) -> set[tuple[str, int]]:
    """(remote address, remote port) of the process's ESTABLISHED TCP connections."""
    inodes = socket_inodes(pid, proc)
    peers = set()
    for table in ("tcp", "tcp6"):
        try:
            lines = (proc / str(pid) / "net" / table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 9 and fields[3] == ESTABLISHED and fields[9] in inodes:
                address, port = _decode_address(fields[2])
                peers.add((str(address), port))
    return peers


def resolve(host: str, port: int) -> set[tuple[str, int]]:
    return {
        (str(ipaddress.ip_address(info[4][0])), port)
        for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    }


def dependency(kind: str, service: str, env=os.environ) -> tuple[str, str, int] | None:
    """(what, host, port) the component must stay connected to, or None (a relay or mailer
    on SQLite)."""
    if kind == "consumer":
        url = urlsplit(env.get("AMQP_URL") or "amqp://guest:guest@localhost:5672/")
        return "broker", url.hostname or "localhost", url.port or (5671 if url.scheme == "amqps" else 5672)
    url = urlsplit(env.get(f"{service.upper()}_DATABASE_URL") or "sqlite://")
    if not url.scheme.startswith("postgresql"):
        return None
    return "database", url.hostname or "localhost", url.port or 5432


def stale_heartbeat(env=os.environ) -> str | None:
    path = env.get("HEARTBEAT_FILE")
    if not path:
        return None
    limit = float(env.get("HEARTBEAT_MAX_AGE") or 60)
    try:
        age = time.time() - Path(path).stat().st_mtime
    except OSError:
        return f"no heartbeat at {path} yet"
    return f"the heartbeat at {path} is {age:.0f}s old (limit {limit:.0f}s): the loop hangs" if age > limit else None


def check(kind: str, service: str, env=os.environ, proc: Path = PROC) -> list[str]:
    """The problems found; empty when healthy."""
    argv_tail = expected_argv(kind, service)
    pids = find_processes(argv_tail, proc)
    if not pids:
        return [f"no running process ends with {' '.join(argv_tail)!r}"]
    stale = stale_heartbeat(env)
    if stale:
        return [stale]
    target = dependency(kind, service, env)
    if target is None:
        return []
    what, host, port = target
    try:
        wanted = resolve(host, port)
    except OSError as error:
        return [f"cannot resolve the {what} host {host!r}: {error}"]
    for pid in pids:
        if established_peers(pid, proc) & wanted:
            return []
    return [f"{kind} {service} (pid {', '.join(map(str, pids))}) has no connection to the {what} at {host}:{port}"]


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2 or argv[0] not in KINDS:
        print("usage: python -m ops.healthcheck relay|consumer|mailer|notifier <service>", file=sys.stderr)
        return 2
    problems = check(argv[0], argv[1])
    for problem in problems:
        print(f"unhealthy: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
