"""`make run` (ops/run.py) as a newcomer uses it: everything comes up with demo data, the
home page answers in Czech and English, a demo mail catcher listens, Ctrl-C stops it all."""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time

import pika
import requests

from ops import seed
from ops.suite import ROOT, free_port
from shared.topology import Topology
from tests.support import running_suite, wait_until


def test_make_run_starts_the_suite_with_demo_data_and_stops_on_ctrl_c(amqp_url, tmp_path):
    namespace = f"run-{secrets.token_hex(4)}."
    ports = {name: str(free_port()) for name in ("GATEWAY", "IDENTITY", "LICENSING", "DISTRIBUTION", "FORUM")}
    env = {
        **{k: v for k, v in os.environ.items() if not k.endswith("_DATABASE_URL")},
        **{f"{name}_PORT": port for name, port in ports.items()},
        "AMQP_URL": amqp_url,
        "EVENTS_NAMESPACE": namespace,
        "VAR_DIR": str(tmp_path / "var"),
        "MAILCATCHER_PORT": str(free_port()),
        "WEB_CONCURRENCY": "1",
        "PYTHONUNBUFFERED": "1",
    }
    for name in ("STAFF_EMAIL", "STAFF_PASSWORD", "INTERNAL_AUTH_SECRET", "SMTP_HOST", "SMTP_PORT", "PUBLIC_URL"):
        env.pop(name, None)
    log = open(tmp_path / "run.log", "w+b")
    run = subprocess.Popen(
        [sys.executable, "-m", "ops.run"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    gateway = f"http://127.0.0.1:{ports['GATEWAY']}"
    try:
        wait_until(
            lambda: b"Customer Center is running" in (tmp_path / "run.log").read_bytes(), timeout=120, interval=0.5
        )
        output = (tmp_path / "run.log").read_text()
        assert "operator@example.com" in output and "100001" in output and "spravce@example.com" in output

        czech = requests.get(f"{gateway}/", timeout=10)
        assert czech.status_code == 200 and 'lang="cs"' in czech.text
        english = requests.get(f"{gateway}/?lang=en", timeout=10)
        assert 'lang="en"' in english.text
        for port in ports.values():
            assert requests.get(f"http://127.0.0.1:{port}/healthz", timeout=10).status_code == 200
        assert (tmp_path / "var" / "secrets.env").stat().st_mode & 0o077 == 0
        # the printed demo accounts sign in, with the rights the banner promises
        kept = dict(line.split("=", 1) for line in (tmp_path / "var" / "secrets.env").read_text().splitlines())
        for email, password, administrator in (
            ("spravce@example.com", kept["DEMO_ADMIN_PASSWORD"], True),
            ("ucetni@example.com", kept["DEMO_USER_PASSWORD"], False),
        ):
            token = requests.post(f"{gateway}/api/v1/sessions", json={"email": email, "password": password}, timeout=10)
            assert token.status_code == 201, token.text
            me = requests.get(
                f"{gateway}/api/v1/me", headers={"Authorization": f"Bearer {token.json()['token']}"}, timeout=10
            )
            [membership] = me.json()["memberships"]
            assert membership["administrator"] is administrator
            if administrator:  # two direct licenses and the partner-sold one it registered
                listed = requests.get(
                    f"{gateway}/api/v1/customers/{membership['customer_number']}/licenses",
                    headers={"Authorization": f"Bearer {token.json()['token']}"},
                    timeout=10,
                ).json()["items"]
                assert sorted(item["channel"] for item in listed) == ["direct", "direct", "partner"]
                releases = requests.get(
                    f"{gateway}/api/v1/customers/{membership['customer_number']}/downloads",
                    headers={"Authorization": f"Bearer {token.json()['token']}"},
                    timeout=10,
                ).json()["items"]
                assert {r["version"] for r in releases} >= {"2026.1", "2026.1.1", "5.0"}
                demo_file = requests.get(releases[0]["files"][0]["url"], timeout=30)
                assert demo_file.status_code == 200 and len(demo_file.content) == releases[0]["files"][0]["size"]
                bearer = token.json()["token"]
                forum = _demo_forum(gateway, bearer)
                assert forum["topics"] == 4 and forum["pinned"] == ["Vítejte ve fóru Zákaznického centra"]
                # authors are shown as identity announced them over the broker: with their company
                wait_until(lambda bearer=bearer: _demo_forum(gateway, bearer)["companies"], timeout=30)
        assert "Demo partner API key:         cc_" in output and "Partner-sold, not registered:" in output
    except BaseException:
        # what the suite said is the first thing anyone needs when this fails (shown with the failure)
        print("\n".join((tmp_path / "run.log").read_text(errors="replace").splitlines()[-80:]))
        raise
    finally:
        os.killpg(run.pid, signal.SIGINT)
        try:
            run.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(run.pid, signal.SIGKILL)
            raise
        connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
        Topology(namespace).delete(connection.channel())
        connection.close()
    time.sleep(0.5)
    for port in ports.values():
        try:
            requests.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
            raise AssertionError(f"something still answers on {port} after Ctrl-C")
        except requests.ConnectionError:
            pass


def _demo_forum(gateway: str, token: str) -> dict:
    headers = {"Authorization": f"Bearer {token}"}
    categories = requests.get(f"{gateway}/api/v1/forum/categories", headers=headers, timeout=10).json()["items"]
    topics = [
        topic
        for category in categories
        for topic in requests.get(
            f"{gateway}/api/v1/forum/categories/{category['id']}/topics", headers=headers, timeout=10
        ).json()["items"]
    ]
    return {
        "topics": len(topics),
        "pinned": [topic["title"] for topic in topics if topic["pinned"]],
        "companies": {topic["author"]["company_name"] for topic in topics} - {None},
    }


# --- the demo data on a busy machine: a consumer that applies its events late ------------------
HELD_BACK = 8.0  # seconds licensing's consumer starts late: longer than any fixed retry of a moment


def test_seeding_waits_for_licensing_to_learn_the_demo_administrators_membership(
    amqp_url, new_database, tmp_path_factory
):
    """`make run` registered the demo product before licensing had applied the administrator's
    membership, got `404 No such customer profile` and stopped every process."""
    staff = {"email": "seed-staff@example.com", "password": "staff-password-for-seeding"}
    admin = ("spravce@example.com", "Jana Správcová", "demo-admin-password-1")
    colleague = ("ucetni@example.com", "Petr Účetní", "demo-user-password-1")
    with running_suite(amqp_url, new_database, tmp_path_factory, "seed", staff) as suite:
        gateway = suite.web_url("gateway")
        demo = seed.seed(gateway, staff["email"], staff["password"])
        customer = next(iter(demo.numbers.values()))
        wait_until(lambda: _profile_known(gateway, staff, customer), timeout=60)
        suite.stop("licensing-consumer")  # from here licensing learns no membership
        accounts = ["--customer", customer, "--admin", *admin, "--colleague", *colleague]
        subprocess.run(
            [sys.executable, "-m", "identity", "demo-accounts", *accounts], env=suite.env, cwd=ROOT, check=True
        )
        late = threading.Timer(HELD_BACK, suite.start_one, ["licensing-consumer"])
        late.start()
        try:
            seed.register_product(gateway, admin[0], admin[2], customer, demo.to_register)
        finally:
            late.join()
        token = requests.post(
            f"{gateway}/api/v1/sessions", json={"email": admin[0], "password": admin[2]}, timeout=10
        ).json()["token"]
        listed = requests.get(
            f"{gateway}/api/v1/customers/{customer}/licenses", headers={"Authorization": f"Bearer {token}"}, timeout=10
        ).json()["items"]
        assert sorted(item["channel"] for item in listed) == ["direct", "direct", "partner"]


def _profile_known(gateway: str, staff: dict, customer: str) -> bool:
    token = requests.post(f"{gateway}/api/v1/sessions", json=staff, timeout=10).json()["token"]
    answer = requests.get(
        f"{gateway}/api/v1/admin/customer-profiles/{customer}", headers={"Authorization": f"Bearer {token}"}, timeout=10
    )
    return answer.status_code == 200


def test_make_run_keeps_running_and_says_why_when_the_demo_data_cannot_be_loaded(monkeypatch, capsys):
    from ops import run
    from ops.suite import Suite

    monkeypatch.setattr(seed, "DEPENDENCY_WAIT", 1.0)
    with socket.create_server(("127.0.0.1", 0)) as closed:
        nobody = str(closed.getsockname()[1])  # the gateway's port, where nothing listens
    suite = Suite({"GATEWAY_PORT": nobody})
    env = {"STAFF_EMAIL": "operator@example.com", "STAFF_PASSWORD": "x" * 16}
    demo = run.seed_demo(suite, env, ("a@example.com", "A", "p" * 12), ("b@example.com", "B", "p" * 12), pause=0)
    assert demo is None
    printed = capsys.readouterr().out
    assert printed.count("loading the demo data failed") == run.SEED_ATTEMPTS
    assert "identity to sign operator@example.com in" in printed and "keeps running without it" in printed
