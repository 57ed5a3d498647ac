"""Start the suite's processes from the Procfile and watch them: used by `make run`, the
end-to-end tests and the benchmarks, so all three run exactly what operators run.

`Suite(env)` takes the environment every process gets (ports, database URLs, namespace);
`migrate()` applies every component's migrations; `start()` launches the Procfile's
processes (all, or the names given), `stop(name)` / `kill(name)` end one (the fault tests do),
`restart(name)` starts one that exited again (what `make run`'s supervisor does),
`wait_ready()` polls each web component's `/readyz`.

Each process is started in a session (and so a process group) of its own, and a process is
always ended or restarted with its whole group: when a gunicorn master dies, whatever is left
of it (its workers, should they outlive it) goes too, and the new master finds its port free.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import urllib3

ROOT = Path(__file__).resolve().parent.parent
PROCFILE = ROOT / "Procfile"
COMPONENTS = ("identity", "licensing", "distribution", "forum", "gateway")
WEB_PORT_VARIABLES = {
    "identity": "IDENTITY_PORT",
    "licensing": "LICENSING_PORT",
    "distribution": "DISTRIBUTION_PORT",
    "forum": "FORUM_PORT",
    "gateway": "GATEWAY_PORT",
}


# Ports this process has handed out: the kernel may offer a port it just gave us again once
# the probing socket is closed, and two components told the same port fight over it (one of
# them then answers the other's requests; CI saw it once, licensing on the gateway's port).
_HANDED_OUT: set[int] = set()
_HANDED_OUT_LOCK = threading.Lock()


def free_port() -> int:
    """A port nothing listens on now and that this process has not handed out before."""
    with _HANDED_OUT_LOCK:
        while True:
            with socket.socket() as sock:
                sock.bind(("127.0.0.1", 0))
                port = sock.getsockname()[1]
            if port not in _HANDED_OUT:
                _HANDED_OUT.add(port)
                return port


def procfile() -> dict[str, str]:
    entries = {}
    for line in PROCFILE.read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9_-]+):\s*(.+)$", line)
        if match:
            entries[match.group(1)] = match.group(2)
    return entries


@dataclass
class Process:
    name: str
    command: str
    popen: subprocess.Popen


class Suite:
    def __init__(self, env: dict[str, str], log_dir: Path | None = None, echo: bool = False):
        self.env = {**os.environ, **env}
        self.env.setdefault("PYTHONUNBUFFERED", "1")
        self.log_dir = log_dir
        self.echo = echo
        self.processes: dict[str, Process] = {}
        self.entries = procfile()

    # --- set-up -----------------------------------------------------------------------
    @staticmethod
    def local_env(base: dict[str, str] | None = None, host: str = "127.0.0.1") -> dict[str, str]:
        """Ports for every web component: the given ones, or free ones."""
        env = dict(base or {})
        for component, variable in WEB_PORT_VARIABLES.items():
            env.setdefault(variable, str(free_port()))
            if component != "gateway":
                env.setdefault(f"{component.upper()}_URL", f"http://{host}:{env[variable]}")
        env.setdefault("GATEWAY_HOST", host)
        env.setdefault("PUBLIC_URL", f"http://localhost:{env['GATEWAY_PORT']}")
        return env

    def migrate(self) -> None:
        for component in COMPONENTS:
            subprocess.run([sys.executable, "-m", component, "migrate"], env=self.env, cwd=ROOT, check=True)

    # --- processes --------------------------------------------------------------------
    def start(self, names: list[str] | None = None) -> None:
        for name in names or list(self.entries):
            self.start_one(name)

    def start_one(self, name: str) -> None:
        command = self.entries[name]
        output = subprocess.DEVNULL
        if self.log_dir is not None:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            output = open(self.log_dir / f"{name}.log", "ab")
        elif self.echo:
            output = subprocess.PIPE
        env = {**self.env, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{self.env.get('PATH', '')}"}
        popen = subprocess.Popen(
            ["/bin/sh", "-c", f"exec {command}"],
            env=env,
            cwd=ROOT,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: a stop reaches gunicorn's workers too
        )
        if output is subprocess.PIPE:
            threading.Thread(target=_prefix_lines, args=(name, popen.stdout), daemon=True).start()
        self.processes[name] = Process(name, command, popen)

    def restart(self, name: str) -> None:
        """Start a process again (one that exited): what is left of its group is killed first."""
        process = self.processes.pop(name, None)
        if process is not None:
            end_group(process.popen)
        self.start_one(name)

    def stop(self, name: str, sig: int = signal.SIGTERM, timeout: float = 15) -> None:
        process = self.processes.pop(name, None)
        if process is None:
            return
        if process.popen.poll() is not None:
            end_group(process.popen)  # the leader is gone; what it left behind goes too
            return
        try:
            os.killpg(process.popen.pid, sig)
            process.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.popen.pid, signal.SIGKILL)
            process.popen.wait()
        except ProcessLookupError:
            pass

    def kill(self, name: str) -> None:
        """End a process the hard way, as a crash would (no clean-up, no ack)."""
        self.stop(name, signal.SIGKILL)

    def stop_all(self) -> None:
        for name in list(self.processes):
            self.stop(name)

    def running(self) -> dict[str, bool]:
        return {name: p.popen.poll() is None for name, p in self.processes.items()}

    def web_url(self, component: str) -> str:
        return f"http://127.0.0.1:{self.env[WEB_PORT_VARIABLES[component]]}"

    def wait_ready(self, components: tuple[str, ...] | None = None, timeout: float = 60) -> None:
        components = components or tuple(c for c in COMPONENTS if c in self.processes)
        http = urllib3.PoolManager(retries=False, timeout=2)
        deadline = time.monotonic() + timeout
        pending = list(components)
        while pending:
            component = pending[0]
            process = self.processes.get(component)
            if process is not None and process.popen.poll() is not None:
                raise RuntimeError(f"{component} exited with {process.popen.returncode}")
            try:
                if http.request("GET", self.web_url(component) + "/readyz").status == 200:
                    pending.pop(0)
                    continue
            except urllib3.exceptions.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"{component} not ready after {timeout}s")
            time.sleep(0.2)


def group_members(pgid: int) -> list[int]:
    """The live processes (zombies aside) of a process group: read from /proc on Linux."""
    proc = Path("/proc")
    if not (proc / "self" / "stat").exists():
        try:
            os.killpg(pgid, 0)
            return [pgid]
        except (ProcessLookupError, PermissionError):
            return []
    members = []
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
        if fields[0] not in ("Z", "X") and int(fields[2]) == pgid:
            members.append(int(entry.name))
    return members


def end_group(popen: subprocess.Popen, timeout: float = 2.0) -> None:
    """SIGKILL whatever is left of the process group `popen` leads (it was started with
    start_new_session), and wait until it is gone, so that its ports are free again."""
    popen.poll()  # reap the leader if it exited
    deadline = time.monotonic() + timeout
    while group_members(popen.pid):
        try:
            os.killpg(popen.pid, signal.SIGKILL)
        except ProcessLookupError:
            return
        if time.monotonic() > deadline:
            return  # left to the kernel; the new process retries its bind
        time.sleep(0.01)
    popen.poll()


def _prefix_lines(name: str, stream) -> None:
    for raw in iter(stream.readline, b""):
        sys.stdout.write(f"{name:>22} | {raw.decode(errors='replace')}")
        sys.stdout.flush()
