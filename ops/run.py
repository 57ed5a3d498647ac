"""`make run`: the whole suite on one machine, with demo data.

Checks RabbitMQ, keeps its secrets in `var/secrets.env` (made on first run), starts a mail
catcher unless SMTP_HOST/SMTP_PORT are given, migrates every database, starts every process
of the Procfile with prefixed output, loads the demo data, prints where to go and how to sign
in, restarts a process that dies, and stops everything on Ctrl-C.

The demo data never takes the suite down: each step waits for what it needs from the other
services (ops.seed), a failed attempt is made again (every step is safe to repeat), and when
it keeps failing `make run` says why and goes on running without it: the suite is usable,
its logs show the cause, and the next `make run` loads what is missing.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from ops import mailcatcher, seed
from ops.suite import ROOT, Suite
from shared import amqp
from shared.config import DEFAULT_SERVICE_PORTS, var_dir

SECRETS = {
    "INTERNAL_AUTH_SECRET": lambda: secrets.token_hex(32),
    "DEMO_STAFF_PASSWORD": lambda: secrets.token_urlsafe(12),
    "DEMO_ADMIN_PASSWORD": lambda: secrets.token_urlsafe(12),
    "DEMO_USER_PASSWORD": lambda: secrets.token_urlsafe(12),
}
DEMO_ADMIN = ("spravce@example.com", "Jana Správcová")
DEMO_USER = ("ucetni@example.com", "Petr Účetní")
SEED_ATTEMPTS = 3
SEED_PAUSE = 5.0  # seconds between attempts


def load_secrets(path: Path) -> dict[str, str]:
    """Random secrets made once per checkout, so restarts keep sessions and demo sign-ins."""
    path.parent.mkdir(parents=True, exist_ok=True)
    kept = dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line) if path.exists() else {}
    missing = {name: make() for name, make in SECRETS.items() if name not in kept}
    if missing:
        kept.update(missing)
        path.write_text("".join(f"{name}={value}\n" for name, value in kept.items()))
    path.chmod(0o600)
    return kept


def ensure_broker(url: str) -> None:
    if amqp.broker_reachable(url):
        return
    if shutil.which("docker") and subprocess.run(["docker", "info"], capture_output=True).returncode == 0:
        print("RabbitMQ is not reachable; starting the compose 'rabbitmq' service ...", flush=True)
        subprocess.run(["docker", "compose", "up", "-d", "--wait", "rabbitmq"], cwd=ROOT, check=True)
        if amqp.broker_reachable(url):
            return
    sys.exit(
        f"RabbitMQ is not reachable at AMQP_URL={url}.\n"
        "Start one, then run `make run` again:\n"
        "  - Debian/Ubuntu: sudo apt-get install rabbitmq-server (it starts itself), or `rabbitmq-server -detached`\n"
        "  - with Docker:   docker compose up -d rabbitmq\n"
        "  - elsewhere:     set AMQP_URL=amqp://user:password@host:5672/"
    )


def main() -> None:
    folder = var_dir()
    kept = load_secrets(folder / "secrets.env")
    env = {
        "INTERNAL_AUTH_SECRET": os.environ.get("INTERNAL_AUTH_SECRET") or kept["INTERNAL_AUTH_SECRET"],
        "STAFF_EMAIL": os.environ.get("STAFF_EMAIL") or "operator@example.com",
        "STAFF_PASSWORD": os.environ.get("STAFF_PASSWORD") or kept["DEMO_STAFF_PASSWORD"],
        "GATEWAY_PORT": os.environ.get("GATEWAY_PORT") or "8080",
        "GATEWAY_HOST": os.environ.get("GATEWAY_HOST") or "127.0.0.1",
        "VAR_DIR": str(folder),
    }
    for service, port in DEFAULT_SERVICE_PORTS.items():
        env[f"{service.upper()}_PORT"] = os.environ.get(f"{service.upper()}_PORT") or str(port)
    env = Suite.local_env(env)
    env["PUBLIC_URL"] = os.environ.get("PUBLIC_URL") or f"http://localhost:{env['GATEWAY_PORT']}"
    amqp_url = os.environ.get("AMQP_URL") or "amqp://guest:guest@localhost:5672/"
    ensure_broker(amqp_url)

    catcher = None
    if not (os.environ.get("SMTP_HOST") or os.environ.get("SMTP_PORT")):
        env.update(SMTP_HOST="127.0.0.1", SMTP_PORT=os.environ.get("MAILCATCHER_PORT", "1025"))
        catcher = mailcatcher.start(folder / "mail", "127.0.0.1", int(env["SMTP_PORT"]))

    suite = Suite(env, echo=True)
    print("Migrating the databases ...", flush=True)
    suite.migrate()
    state = {"stopping": False, "supervising": False}

    def stop(*_):
        state["stopping"] = True
        if not state["supervising"]:
            raise KeyboardInterrupt  # seeding may be waiting on a service: Ctrl-C does not wait with it

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    try:
        suite.start()
        suite.wait_ready(timeout=90)
        admin = (*DEMO_ADMIN, kept["DEMO_ADMIN_PASSWORD"])
        colleague = (*DEMO_USER, kept["DEMO_USER_PASSWORD"])
        demo = seed_demo(suite, env, admin, colleague)
        if demo is not None:
            banner(env, demo, catcher is not None, folder, admin, colleague)
        else:
            print(f"\n  Customer Center is running without its demo data: {env['PUBLIC_URL']}/\n", flush=True)
        state["supervising"] = True
        supervise(suite, lambda: state["stopping"])
    except KeyboardInterrupt:
        pass
    finally:
        state["supervising"] = True  # another Ctrl-C must not cut the stopping short
        print("\nStopping ...", flush=True)
        suite.stop_all()
        if catcher is not None:
            catcher.stop()


def load_demo(suite: Suite, env: dict[str, str], admin: tuple[str, str, str], colleague) -> seed.Demo:
    """Every step of the demo data, each waiting for what it needs from the other services."""
    gateway, staff = suite.web_url("gateway"), (env["STAFF_EMAIL"], env["STAFF_PASSWORD"])
    demo = seed.seed(gateway, *staff)
    demo_customer = next(iter(demo.numbers.values()))
    seed.wait_for_profile(gateway, *staff, demo_customer)
    accounts = ["--customer", demo_customer, "--admin", *admin, "--colleague", *colleague]
    subprocess.run([sys.executable, "-m", "identity", "demo-accounts", *accounts], env=suite.env, cwd=ROOT, check=True)
    seed.register_product(gateway, admin[0], admin[2], demo_customer, demo.to_register)
    seed.seed_forum(gateway, [(admin[0], admin[2]), (colleague[0], colleague[2])], staff)
    return demo


def seed_demo(
    suite: Suite,
    env: dict[str, str],
    admin: tuple[str, str, str],
    colleague: tuple[str, str, str],
    attempts: int = SEED_ATTEMPTS,
    pause: float = SEED_PAUSE,
) -> seed.Demo | None:
    """The demo data, tried again after a failure; None (and why, printed) when it keeps failing."""
    for attempt in range(1, attempts + 1):
        try:
            return load_demo(suite, env, admin, colleague)
        except Exception as error:  # whatever it was, the suite stays up: say why
            print(f"!! loading the demo data failed (attempt {attempt} of {attempts}): {error}", flush=True)
        restart_exited(suite)  # a consumer that died is what the demo data waited for
        if attempt < attempts:
            time.sleep(pause)
    print(
        "!! the demo data is not loaded (see above why); the suite keeps running without it. "
        "Run `make run` again to load what is missing.",
        flush=True,
    )
    return None


SUPERVISE_INTERVAL = 0.1  # seconds between looks at the processes


def supervise(suite: Suite, stopping, interval: float = SUPERVISE_INTERVAL) -> None:
    """Restart a process that exits, at once, as compose's restart policy would."""
    while not stopping():
        restart_exited(suite, stopping)
        time.sleep(interval)


def restart_exited(suite: Suite, stopping=lambda: False) -> None:
    """Start each process that exited again, with its whole process group: a gunicorn master's
    workers that outlived it are killed first (they would hold its port)."""
    for name, alive in suite.running().items():
        if not alive and not stopping():
            print(f"!! {name} exited; restarting it", flush=True)
            suite.restart(name)


def banner(env: dict[str, str], demo: seed.Demo, catching: bool, folder: Path, admin, colleague) -> None:
    numbers = demo.numbers
    lines = [
        "",
        "=" * 72,
        f"  Customer Center is running:   {env['PUBLIC_URL']}/",
        f"  English:                      {env['PUBLIC_URL']}/?lang=en",
        f"  API documentation (gateway):  {env['PUBLIC_URL']}/docs",
        f"  Vendor staff sign-in:         {env['STAFF_EMAIL']} / {env['STAFF_PASSWORD']}",
        f"  Demo administrator:           {admin[0]} / {admin[2]}  (customer {next(iter(numbers.values()))})",
        f"  Demo user (downloads, news):  {colleague[0]} / {colleague[2]}",
        f"  Demo partner API key:         {demo.partner_key}",
        f"  Partner-sold, not registered: {demo.unregistered}  (register it as the administrator)",
        "  Demo customers (customer number, company):",
        *[f"    {number}  {name}" for name, number in numbers.items()],
        f"  Mails land in:                {folder / 'mail'}/"
        if catching
        else f"  Mails go to {env.get('SMTP_HOST')}:{env.get('SMTP_PORT')}",
        "  Stop with Ctrl-C.",
        "=" * 72,
        "",
    ]
    print("\n".join(lines), flush=True)


if __name__ == "__main__":
    main()
