"""Settings from environment variables, one object per component.

Every component reads the same names (see the configuration table in the README); a
service's database URL comes from `<SERVICE>_DATABASE_URL` and defaults to a SQLite file
under `var/`, so one machine needs no database server.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    return int(raw) if raw not in (None, "") else default


def _float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    return float(raw) if raw not in (None, "") else default


def var_dir() -> Path:
    return Path(os.environ.get("VAR_DIR") or REPO_ROOT / "var")


def default_database_url(service: str) -> str:
    return f"sqlite:///{var_dir() / (service + '.db')}"


@dataclass(frozen=True)
class Settings:
    service: str
    database_url: str
    amqp_url: str = "amqp://guest:guest@localhost:5672/"
    # Prefix for every exchange and queue name: lets tests (and several developers on one
    # broker) run side by side without seeing each other's messages.
    events_namespace: str = ""
    # Key for the short-lived identity tokens the gateway signs and services verify.
    internal_auth_secret: str = ""
    public_url: str = "http://localhost:8080"
    gateway_port: int = 8080
    smtp_host: str = "localhost"
    smtp_port: int = 1025
    mail_from: str = "Zákaznické centrum <zakaznicke-centrum@localhost>"
    registration_confirm_ttl: int = 172800
    download_link_ttl: int = 3600
    staff_email: str | None = None
    staff_password: str | None = None
    # Consumer: attempts of a failing handler before the message goes to the DLQ.
    max_delivery_attempts: int = 5
    relay_poll_interval: float = 0.02
    # Touched by relays and consumers while their loop turns (container health checks).
    heartbeat_file: str | None = None
    # Where the gateway finds each service (base URLs).
    service_urls: dict[str, str] = field(default_factory=dict)
    upstream_timeout: float = 5.0
    # Calls to one service a gateway worker keeps in flight (its bulkhead): gunicorn.conf.py
    # makes it half the worker's threads; 16 is half of the gateway's default 32.
    upstream_max_in_flight: int = 16
    max_content_length: int = 1024 * 1024
    # How many reverse proxies (the compose edge server) stand in front of the gateway: their
    # X-Forwarded-For names the real client, which throttling per client needs.
    trusted_proxies: int = 0
    session_idle_timeout: int = 30 * 60
    session_absolute_timeout: int = 12 * 3600

    @classmethod
    def from_env(cls, service: str, **overrides) -> Settings:
        env = os.environ
        settings = cls(
            service=service,
            database_url=env.get(f"{service.upper()}_DATABASE_URL") or default_database_url(service),
            amqp_url=env.get("AMQP_URL") or cls.amqp_url,
            events_namespace=env.get("EVENTS_NAMESPACE", ""),
            internal_auth_secret=env.get("INTERNAL_AUTH_SECRET", ""),
            public_url=(env.get("PUBLIC_URL") or cls.public_url).rstrip("/"),
            gateway_port=_int("GATEWAY_PORT", cls.gateway_port),
            smtp_host=env.get("SMTP_HOST") or cls.smtp_host,
            smtp_port=_int("SMTP_PORT", cls.smtp_port),
            mail_from=env.get("MAIL_FROM") or cls.mail_from,
            registration_confirm_ttl=_int("REGISTRATION_CONFIRM_TTL", cls.registration_confirm_ttl),
            download_link_ttl=_int("DOWNLOAD_LINK_TTL", cls.download_link_ttl),
            staff_email=env.get("STAFF_EMAIL") or None,
            staff_password=env.get("STAFF_PASSWORD") or None,
            max_delivery_attempts=_int("MAX_DELIVERY_ATTEMPTS", cls.max_delivery_attempts),
            relay_poll_interval=_float("RELAY_POLL_INTERVAL", cls.relay_poll_interval),
            heartbeat_file=env.get("HEARTBEAT_FILE") or None,
            service_urls={
                name: env.get(f"{name.upper()}_URL", f"http://127.0.0.1:{port}")
                for name, port in DEFAULT_SERVICE_PORTS.items()
            },
            upstream_timeout=_float("UPSTREAM_TIMEOUT", cls.upstream_timeout),
            upstream_max_in_flight=_int("UPSTREAM_MAX_IN_FLIGHT", cls.upstream_max_in_flight),
            max_content_length=_int("MAX_CONTENT_LENGTH", cls.max_content_length),
            trusted_proxies=_int("TRUSTED_PROXIES", cls.trusted_proxies),
            session_idle_timeout=_int("SESSION_IDLE_TIMEOUT", cls.session_idle_timeout),
            session_absolute_timeout=_int("SESSION_ABSOLUTE_TIMEOUT", cls.session_absolute_timeout),
        )
        return replace(settings, **overrides)

    def require_secret(self) -> str:
        if len(self.internal_auth_secret) < 32:
            raise RuntimeError(
                "INTERNAL_AUTH_SECRET must be set to at least 32 random characters "
                "(make run generates one into var/secrets.env)"
            )
        return self.internal_auth_secret


# Where each service listens when run locally; compose and tests override with <NAME>_URL.
DEFAULT_SERVICE_PORTS = {"identity": 8081, "licensing": 8082, "distribution": 8083, "forum": 8084}
