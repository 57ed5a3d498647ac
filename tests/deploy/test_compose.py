"""The operators' deployment (Dockerfile, docker-compose.yml, deploy/) stays valid and in step
with the code: the Procfile, the event catalogue, the settings and the Makefile.

No container engine is needed: compose files are checked with `docker-compose config` and the
Compose specification's JSON schema, commands by importing what they name.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import re
import runpy
import shlex
import shutil
import subprocess
from pathlib import Path

import jsonschema
import pytest
import yaml

from ops.suite import COMPONENTS, procfile
from shared.config import Settings
from shared.topology import Topology

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
# Values for the variables compose requires (`${NAME:?...}`): the check needs some, not real ones.
REQUIRED_ENV = {
    "INTERNAL_AUTH_SECRET": "x" * 40,
    "RABBITMQ_PASSWORD": "rabbit-password",
    "POSTGRES_PASSWORD": "postgres-password",
}
# The Compose specification schema as the docker-compose package ships it (Debian: docker-compose).
# A failure, not a skip: `make test` installs it first (ops/machine.sh).
NO_COMPOSE = "docker-compose is not installed: run `make test`, which installs Debian's docker-compose"
SCHEMA_CANDIDATES = [
    Path("/usr/lib/python3/dist-packages/compose/config/compose_spec.json"),
    *Path("/usr/lib/python3/dist-packages").glob("compose*/config/compose_spec.json"),
    *Path("/usr/local/lib").glob("python3*/*-packages/compose/config/compose_spec.json"),
]
INFRASTRUCTURE = {"rabbitmq", "postgres", "mailcatcher", "edge"}
# Variables the code reads that compose deliberately does not set, and why.
NOT_FOR_COMPOSE = {
    "EVENTS_NAMESPACE": "prefixes broker names so test runs share a broker; one deployment has one broker",
    "VAR_DIR": "folder of the SQLite defaults; compose gives every component a PostgreSQL URL",
    "GATEWAY_PORT": "the host port compose publishes the edge (in front of the gateway) on; the gateway binds 8000",
    "BIND": "gunicorn's default bind; every web command passes --bind 0.0.0.0:8000",
}


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text())


@pytest.fixture(scope="module")
def services(compose) -> dict:
    return compose["services"]


def app_services(services: dict) -> dict:
    """The containers that run our image (everything but the infrastructure)."""
    return {name: service for name, service in services.items() if name not in INFRASTRUCTURE}


def is_one_shot(name: str, service: dict) -> bool:
    return name.endswith("-migrate")


def compose_cli(*args: str, env: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess:
    binary = shutil.which("docker-compose")
    if binary is None:
        pytest.fail(NO_COMPOSE)
    # An empty env file: an operator's .env in the checkout must not fill in what the test omits.
    empty = tmp_path / "empty.env"
    empty.write_text("")
    base = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path)}
    return subprocess.run(
        [binary, "--env-file", str(empty), "-f", str(COMPOSE_FILE), *args],
        env={**base, **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


# --- (a) docker-compose accepts the file ----------------------------------------------------
def test_docker_compose_config_accepts_the_file(tmp_path):
    result = compose_cli("config", "-q", env=REQUIRED_ENV, tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("missing", sorted(REQUIRED_ENV))
def test_docker_compose_refuses_to_run_without_each_secret(tmp_path, missing):
    env = {name: value for name, value in REQUIRED_ENV.items() if name != missing}
    result = compose_cli("config", "-q", env=env, tmp_path=tmp_path)
    assert result.returncode != 0
    assert f"set {missing}" in result.stderr


def test_env_example_is_a_valid_env_file_once_the_secrets_are_set(tmp_path):
    binary = shutil.which("docker-compose")
    if binary is None:
        pytest.fail(NO_COMPOSE)
    result = subprocess.run(
        [binary, "--env-file", str(ROOT / ".env.example"), "-f", str(COMPOSE_FILE), "config", "-q"],
        env={"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path), **REQUIRED_ENV},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr


# --- (b) the Compose specification's schema -------------------------------------------------
@pytest.fixture(scope="module")
def spec_validator():
    schema_file = next((path for path in SCHEMA_CANDIDATES if path.is_file()), None)
    if schema_file is None:
        pytest.fail(f"compose_spec.json not found: it ships with Debian's docker-compose. {NO_COMPOSE}")
    schema = json.loads(schema_file.read_text())
    # The file declares draft 2019-09 (spelt "http://json-schema.org/draft/2019-09/schema#", which
    # jsonschema does not recognise by that URI), so name the draft explicitly.
    jsonschema.Draft201909Validator.check_schema(schema)
    return jsonschema.Draft201909Validator(schema)


def schema_errors(validator, document) -> list[str]:
    errors = sorted(validator.iter_errors(document), key=lambda error: list(error.absolute_path))
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors]


def test_compose_file_matches_the_compose_specification_schema(compose, spec_validator):
    assert schema_errors(spec_validator, compose) == []


def test_the_schema_check_would_notice_a_mistake(compose, spec_validator):
    broken = json.loads(json.dumps(compose))
    broken["services"]["identity"]["healthcheck"]["retry"] = 3  # a misspelt key
    broken["services"]["gateway"]["depends_on"]["identity"] = {"condition": "service_ready"}
    assert len(schema_errors(spec_validator, broken)) == 2


# --- (c) every command names something that exists ------------------------------------------
def _assert_runnable(argv: list[str]) -> None:
    if argv[:2] == ["python", "-m"]:
        module = argv[2]
        spec = importlib.util.find_spec(module)
        assert spec is not None, f"python -m {module}: no such module"
        if spec.submodule_search_locations is not None:  # a package runs its __main__
            assert importlib.util.find_spec(f"{module}.__main__") is not None, f"{module} has no __main__"
    elif argv[0] == "gunicorn":
        config = argv[argv.index("-c") + 1]
        assert (ROOT / config).is_file(), f"gunicorn config {config} missing"
        module_name, _, factory = argv[-1].partition(":")
        module = importlib.import_module(module_name)
        name = factory.removesuffix("()")
        assert callable(getattr(module, name, None)), f"{module_name} has no {name}"
    else:
        pytest.fail(f"unexpected command {argv}")


def test_every_command_refers_to_something_that_exists(services):
    for name, service in app_services(services).items():
        command = service["command"]
        assert isinstance(command, list), f"{name}: use the exec (list) form, so the process is PID 1"
        _assert_runnable(command)


def test_every_health_check_command_exists(services):
    for service in app_services(services).values():
        test = service["healthcheck"]["test"] if "healthcheck" in service else None
        if test and test[0] == "CMD" and test[1:3] == ["python", "-m"]:
            _assert_runnable(test[1:])


# --- (d) compose runs exactly what the Procfile runs ----------------------------------------
def _normalised(argv: list[str]) -> list[str]:
    argv = list(argv)
    if "--bind" in argv:
        argv[argv.index("--bind") + 1] = "<address>"
    return argv


def test_every_procfile_process_runs_the_same_command_in_compose(services):
    for name, command in procfile().items():
        assert name in services, f"Procfile process {name} has no compose service"
        assert _normalised(services[name]["command"]) == _normalised(shlex.split(command)), name


def test_every_long_running_compose_service_is_a_procfile_process(services):
    long_running = {name for name, service in app_services(services).items() if not is_one_shot(name, service)}
    assert long_running == set(procfile())


def test_every_component_is_migrated_before_it_starts(services):
    for component in COMPONENTS:
        job = services[f"{component}-migrate"]
        assert job["command"] == ["python", "-m", component, "migrate"]
        assert job.get("restart") == "no"
    for name, service in app_services(services).items():
        if is_one_shot(name, service):
            continue
        component = name.split("-")[0]
        assert service["depends_on"][f"{component}-migrate"] == {"condition": "service_completed_successfully"}, name


def test_components_wait_for_healthy_infrastructure(services):
    for name, service in app_services(services).items():
        depends_on = service["depends_on"]
        assert depends_on["postgres"] == {"condition": "service_healthy"}, name
        if name != "gateway" and not is_one_shot(name, service):
            assert depends_on["rabbitmq"] == {"condition": "service_healthy"}, name
    gateway = services["gateway"]["depends_on"]
    for service in ("identity", "licensing", "distribution", "forum"):
        assert gateway[service] == {"condition": "service_healthy"}


# --- (e) the broker loads the catalogue's topology ------------------------------------------
def test_rabbitmq_definitions_are_generated_from_the_event_catalogue():
    committed = json.loads((ROOT / "deploy/rabbitmq/definitions.json").read_text())
    assert committed == Topology().definitions(), "deploy/rabbitmq/definitions.json is stale: run `make definitions`"


def test_rabbitmq_container_loads_those_definitions(services):
    rabbitmq = services["rabbitmq"]
    mounts = {volume.split(":")[0]: volume.split(":")[1] for volume in rabbitmq["volumes"]}
    topology_in_container = mounts["./deploy/rabbitmq/definitions.json"]
    assert mounts["./deploy/rabbitmq/rabbitmq.conf"].startswith("/etc/rabbitmq/conf.d/")
    entrypoint = mounts["./deploy/rabbitmq/entrypoint.sh"]
    assert rabbitmq["entrypoint"][-1] == entrypoint
    assert rabbitmq["command"] == ["docker-entrypoint.sh", "rabbitmq-server"]
    conf = (ROOT / "deploy/rabbitmq/rabbitmq.conf").read_text()
    loaded = re.search(r"^load_definitions\s*=\s*(\S+)", conf, re.M).group(1)
    script = (ROOT / "deploy/rabbitmq/entrypoint.sh").read_text()
    assert f"CC_TOPOLOGY_FILE:-{topology_in_container}" in script
    assert f"CC_DEFINITIONS_FILE:-{loaded}" in script


def test_rabbitmq_entrypoint_adds_vhost_user_and_permissions(tmp_path):
    target = tmp_path / "definitions.json"
    password = 'a "quoted" \\ password $1'
    result = subprocess.run(
        ["/bin/sh", str(ROOT / "deploy/rabbitmq/entrypoint.sh"), "cat", str(target)],
        env={
            "PATH": os.environ.get("PATH", ""),
            "RABBITMQ_USER": "cc",
            "RABBITMQ_PASSWORD": password,
            "CC_TOPOLOGY_FILE": str(ROOT / "deploy/rabbitmq/definitions.json"),
            "CC_DEFINITIONS_FILE": str(target),
        },
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    definitions = json.loads(result.stdout)  # `exec "$@"` ran the given command: cat the file
    assert definitions["vhosts"] == [{"name": "/"}]
    assert definitions["users"] == [{"name": "cc", "password": password, "tags": "administrator"}]
    assert definitions["permissions"] == [{"user": "cc", "vhost": "/", "configure": ".*", "write": ".*", "read": ".*"}]
    topology = Topology().definitions()
    assert {key: definitions[key] for key in topology} == topology
    assert target.stat().st_mode & 0o077 == 0, "the file with the password must not be readable by others"


def test_rabbitmq_entrypoint_needs_the_password(tmp_path):
    result = subprocess.run(
        ["/bin/sh", str(ROOT / "deploy/rabbitmq/entrypoint.sh"), "true"],
        env={"PATH": os.environ.get("PATH", ""), "RABBITMQ_USER": "cc", "CC_DEFINITIONS_FILE": str(tmp_path / "d")},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode != 0
    assert "RABBITMQ_PASSWORD" in result.stderr


def test_rabbitmq_entrypoint_refuses_control_characters_in_credentials(tmp_path):
    result = subprocess.run(
        ["/bin/sh", str(ROOT / "deploy/rabbitmq/entrypoint.sh"), "true"],
        env={
            "PATH": os.environ.get("PATH", ""),
            "RABBITMQ_USER": "cc",
            "RABBITMQ_PASSWORD": "two\nlines",
            "CC_TOPOLOGY_FILE": str(ROOT / "deploy/rabbitmq/definitions.json"),
            "CC_DEFINITIONS_FILE": str(tmp_path / "definitions.json"),
        },
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode != 0
    assert not (tmp_path / "definitions.json").exists()


def test_the_components_use_the_user_the_broker_is_given(services):
    amqp_url = services["identity"]["environment"]["AMQP_URL"]
    broker = services["rabbitmq"]["environment"]
    assert amqp_url.startswith(f"amqp://{broker['RABBITMQ_USER']}:{broker['RABBITMQ_PASSWORD']}@rabbitmq:5672/")


# --- (f) every setting a deployment needs is in the common environment ----------------------
class RecordingEnviron(dict):
    """os.environ stand-in that remembers every name looked up."""

    def __init__(self, *args):
        super().__init__(*args)
        self.read: set[str] = set()

    def get(self, key, default=None):
        self.read.add(key)
        return super().get(key, default)

    def __getitem__(self, key):
        self.read.add(key)
        return super().__getitem__(key)

    def __contains__(self, key):
        self.read.add(key)
        return super().__contains__(key)


def variables_the_code_reads(monkeypatch) -> set[str]:
    recorder = RecordingEnviron()
    monkeypatch.setattr(os, "environ", recorder)
    for component in COMPONENTS:
        Settings.from_env(component)
    runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    monkeypatch.undo()
    return recorder.read | read_outside_settings()


# Read by distribution's downloads module at request time rather than by Settings.
READ_BY_DISTRIBUTION = ("DISTRIBUTION_STORAGE_DIR", "DOWNLOAD_ACCEL_REDIRECT")


def read_outside_settings() -> set[str]:
    source = (ROOT / "services/distribution/distribution/downloads_api.py").read_text()
    for name in READ_BY_DISTRIBUTION:
        assert f'os.environ.get("{name}")' in source, f"distribution no longer reads {name}"
    return set(READ_BY_DISTRIBUTION)


def test_every_variable_the_code_reads_is_in_the_common_environment(compose, monkeypatch):
    read = variables_the_code_reads(monkeypatch)
    assert {"AMQP_URL", "INTERNAL_AUTH_SECRET", "IDENTITY_DATABASE_URL", "GATEWAY_DATABASE_URL"} <= read  # sanity
    common = compose["x-app-environment"]
    missing = read - set(common) - set(NOT_FOR_COMPOSE)
    assert not missing, f"set these in x-app-environment (or explain in NOT_FOR_COMPOSE): {sorted(missing)}"
    assert not set(common) - read, "x-app-environment sets variables no code reads"


def test_every_component_gets_the_common_environment(services, compose):
    for name, service in app_services(services).items():
        assert service["environment"] == compose["x-app-environment"], name


def test_common_environment_points_at_the_compose_services(compose):
    common = compose["x-app-environment"]
    assert common["SMTP_HOST"] == "${SMTP_HOST:-mailcatcher}"
    for component in COMPONENTS:
        assert re.fullmatch(
            rf"postgresql\+psycopg://.+@postgres:5432/{component}", common[f"{component.upper()}_DATABASE_URL"]
        )
    for service in ("identity", "licensing", "distribution", "forum"):
        assert common[f"{service.upper()}_URL"] == f"http://{service}:8000"


def test_postgres_init_script_creates_every_components_database():
    script = (ROOT / "deploy/postgres/init-databases.sh").read_text()
    listed = re.search(r"^for database in (.+); do$", script, re.M).group(1).split()
    assert listed == list(COMPONENTS)


def test_env_example_documents_every_variable_compose_reads():
    referenced = set(re.findall(r"\$\{([A-Z_][A-Z0-9_]*)", COMPOSE_FILE.read_text()))
    documented = set(re.findall(r"^#? ?([A-Z_][A-Z0-9_]*)=", (ROOT / ".env.example").read_text(), re.M))
    assert referenced - documented == set(), "document these in .env.example"
    assert documented - referenced == set(), ".env.example documents variables compose does not use"


# --- (g) every long-running container has a health check ------------------------------------
def test_every_long_running_service_has_a_health_check(services):
    for name, service in services.items():
        if is_one_shot(name, service):
            continue
        healthcheck = service.get("healthcheck")
        assert healthcheck and not healthcheck.get("disable"), f"{name} has no health check"
        assert healthcheck["test"][0] in ("CMD", "CMD-SHELL") and healthcheck["test"] != ["NONE"], name
        assert service.get("restart") == "unless-stopped", name


def test_web_health_checks_probe_the_port_gunicorn_binds(services):
    for name, service in app_services(services).items():
        command = service["command"]
        if command[0] == "gunicorn":
            port = command[command.index("--bind") + 1].rsplit(":", 1)[1]
            assert f"127.0.0.1:{port}/healthz" in " ".join(service["healthcheck"]["test"]), name


def test_worker_health_checks_name_their_process(services):
    for service in app_services(services).values():
        command = service["command"]
        if command[:3] == ["python", "-m", "shared.relay"]:
            assert service["healthcheck"]["test"] == ["CMD", "python", "-m", "ops.healthcheck", "relay", command[3]]
        elif command[2].endswith(".consumer"):
            component = command[2].removesuffix(".consumer")
            assert service["healthcheck"]["test"] == ["CMD", "python", "-m", "ops.healthcheck", "consumer", component]
        elif command[:3] == ["python", "-m", "shared.mailer"]:
            assert service["healthcheck"]["test"] == ["CMD", "python", "-m", "ops.healthcheck", "mailer", command[3]]
        elif command[2].endswith(".notifier"):
            component = command[2].removesuffix(".notifier")
            assert service["healthcheck"]["test"] == ["CMD", "python", "-m", "ops.healthcheck", "notifier", component]
        elif command[2] == "licensing.partner_inbox":  # a consumer with a module of its own
            assert service["healthcheck"]["test"] == [
                "CMD",
                "python",
                "-m",
                "ops.healthcheck",
                "consumer",
                "licensing.partner_inbox",
            ]


# --- (h) the image's PYTHONPATH is the Makefile's SOURCE_ROOTS ------------------------------
def test_dockerfile_pythonpath_matches_makefile_source_roots():
    makefile = (ROOT / "Makefile").read_text()
    roots = re.search(r"^SOURCE_ROOTS\s*:?=\s*(.+)$", makefile, re.M).group(1).split()
    dockerfile = (ROOT / "Dockerfile").read_text()
    workdir = re.search(r"^WORKDIR\s+(\S+)", dockerfile, re.M).group(1)
    pythonpath = re.search(r"^ENV\s+PYTHONPATH=(\S+)", dockerfile, re.M).group(1).split(":")
    assert pythonpath == [os.path.normpath(f"{workdir}/{root}") for root in roots]


def test_dockerfile_runs_as_an_unprivileged_user_without_baked_in_secrets():
    dockerfile = (ROOT / "Dockerfile").read_text()
    users = re.findall(r"^USER\s+(\S+)", dockerfile, re.M)
    assert users and users[-1] not in ("root", "0")
    assert re.search(r"^ARG PYTHON_IMAGE=python:3\.11-slim\b", dockerfile, re.M)  # the default base
    for secret in ("INTERNAL_AUTH_SECRET", "PASSWORD", "DATABASE_URL", "AMQP_URL"):
        assert secret not in dockerfile
    ignored = (ROOT / ".dockerignore").read_text().split()
    for entry in (".env", ".venv", "var", ".git"):
        assert entry in ignored


# --- (i) the edge server in front of the gateway --------------------------------------------
def _mounts(service: dict) -> dict[str, str]:
    """volume or host path -> (target, options) of a service's short-syntax volumes."""
    mounts = {}
    for volume in service.get("volumes", []):
        source, target, *options = volume.split(":")
        mounts[source] = (target, options)
    return mounts


def test_only_the_edge_is_published_and_it_waits_for_a_healthy_gateway(services):
    assert services["edge"]["ports"] == ["${GATEWAY_PORT:-8080}:8080"]
    assert "ports" not in services["gateway"], "the gateway is reached through the edge only"
    assert services["edge"]["depends_on"] == {"gateway": {"condition": "service_healthy"}}
    assert services["edge"]["image"] == "${EDGE_IMAGE:-nginx:1.27-alpine}"  # upstream nginx unless replaced


def test_the_edge_runs_the_repositorys_configuration(services):
    target, options = _mounts(services["edge"])["./deploy/nginx/edge.conf"]
    assert target == "/etc/nginx/conf.d/default.conf" and options == ["ro"]
    conf = (ROOT / "deploy/nginx/edge.conf").read_text()
    assert re.search(r"^\s*listen 8080;", conf, re.M), "the edge listens where compose publishes it"
    assert re.search(r"^\s*server gateway:8000;", conf, re.M)
    health = " ".join(services["edge"]["healthcheck"]["test"])
    port = re.search(r"127\.0\.0\.1:(\d+)/healthz", health).group(1)
    assert re.search(rf"^\s*listen 127\.0\.0\.1:{port};", conf, re.M)


def test_the_files_volume_is_mounted_where_distribution_stores_and_the_edge_reads(compose, services):
    common = compose["x-app-environment"]
    storage = common["DISTRIBUTION_STORAGE_DIR"]
    accel = common["DOWNLOAD_ACCEL_REDIRECT"]
    assert "distribution-files" in compose["volumes"]
    target, options = _mounts(services["distribution"])["distribution-files"]
    assert storage == target or storage.startswith(target.rstrip("/") + "/"), (storage, target)
    assert "ro" not in options
    edge_target, edge_options = _mounts(services["edge"])["distribution-files"]
    assert edge_options == ["ro"]
    # The file at <storage>/<k>/<key> is at <edge mount>/<same relative path> in the edge...
    in_edge = edge_target.rstrip("/") + storage[len(target.rstrip("/")) :]
    conf = (ROOT / "deploy/nginx/edge.conf").read_text()
    location = re.search(rf"location {re.escape(accel.rstrip('/'))}/ \{{(.*?)\n    \}}", conf, re.S)
    assert location, f"edge.conf has no location for DOWNLOAD_ACCEL_REDIRECT {accel}"
    # ...which is what the internal location's alias names.
    assert re.search(rf"^\s*alias {re.escape(in_edge.rstrip('/'))}/;", location.group(1), re.M)
    assert re.search(r"^\s*internal;", location.group(1), re.M)
    # No other container sees the files.
    for name, service in services.items():
        if name not in ("distribution", "edge"):
            assert "distribution-files" not in _mounts(service), name
