"""Vendor staff accounts come from the environment at start, or from the CLI."""

from __future__ import annotations

import os
import subprocess
import sys

from shared import migrations
from tests.identity.conftest import IdentityApi


def test_migrate_creates_the_staff_account_and_the_cli_resets_it(tmp_path, settings_for):
    url = f"sqlite:///{tmp_path / 'identity.db'}"
    env = {
        **os.environ,
        "IDENTITY_DATABASE_URL": url,
        "STAFF_EMAIL": "Boss@Example.com",
        "STAFF_PASSWORD": "staff passphrase",
    }
    subprocess.run([sys.executable, "-m", "identity", "migrate"], env=env, check=True, capture_output=True)
    env["STAFF_PASSWORD"] = "another staff passphrase"
    subprocess.run(
        [sys.executable, "-m", "identity", "create-staff", "--email", "boss@example.com"],
        env=env,
        check=True,
        capture_output=True,
    )
    migrations.upgrade("identity", url)
    from identity.app import create_app

    app = create_app(settings_for("identity", url))
    api = IdentityApi(app, app.extensions["database"])
    assert api.verify("boss@example.com", "staff passphrase").status_code == 401
    answer = api.verify("boss@example.com", "another staff passphrase")
    assert answer.status_code == 200 and answer.get_json()["staff"] is True
