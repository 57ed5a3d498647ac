"""Every image the deployment uses can be replaced by a variable (a registry mirror, or a
stand-in built on a machine that reaches no registry), and the defaults stay the upstream
images operators pull. Checked with `docker-compose config`, which resolves the variables."""

from __future__ import annotations

import re

import pytest
import yaml

from tests.deploy.test_compose import INFRASTRUCTURE, REQUIRED_ENV, ROOT, compose_cli

UPSTREAM = {
    "rabbitmq": ("RABBITMQ_IMAGE", "rabbitmq:3.13-management"),
    "postgres": ("POSTGRES_IMAGE", "postgres:16"),
    "mailcatcher": ("MAILCATCHER_IMAGE", "axllent/mailpit:v1.27.8"),
    "edge": ("EDGE_IMAGE", "nginx:1.27-alpine"),
}
PYTHON_UPSTREAM = "python:3.11-slim"


def resolved(tmp_path, **env: str) -> dict:
    result = compose_cli("config", env={**REQUIRED_ENV, **env}, tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)["services"]


def test_every_infrastructure_image_has_a_variable():
    assert set(UPSTREAM) == INFRASTRUCTURE


def test_the_defaults_are_the_upstream_images(tmp_path):
    services = resolved(tmp_path)
    for name, (_variable, image) in UPSTREAM.items():
        assert services[name]["image"] == image
    built = [service for service in services.values() if "build" in service]
    assert built and all(service["build"]["args"]["PYTHON_IMAGE"] == PYTHON_UPSTREAM for service in built)


@pytest.mark.parametrize("name", sorted(UPSTREAM))
def test_each_image_is_overridden_by_its_variable(tmp_path, name):
    variable, _image = UPSTREAM[name]
    services = resolved(tmp_path, **{variable: f"local/{name}:standin"})
    assert services[name]["image"] == f"local/{name}:standin"
    others = {other: services[other]["image"] for other in UPSTREAM if other != name}
    assert others == {other: image for other, (_v, image) in UPSTREAM.items() if other != name}


def test_the_app_image_is_built_on_the_python_base_given(tmp_path):
    services = resolved(tmp_path, PYTHON_IMAGE="local/python:standin")
    built = [service for service in services.values() if "build" in service]
    assert built and all(service["build"]["args"]["PYTHON_IMAGE"] == "local/python:standin" for service in built)
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.search(rf"^ARG PYTHON_IMAGE={re.escape(PYTHON_UPSTREAM)}$", dockerfile, re.M)
    assert re.search(r"^FROM \$\{PYTHON_IMAGE\}$", dockerfile, re.M)


def test_the_env_example_names_every_image_variable():
    example = (ROOT / ".env.example").read_text()
    for variable, image in [*UPSTREAM.values(), ("PYTHON_IMAGE", PYTHON_UPSTREAM)]:
        assert f"# {variable}={image}" in example
