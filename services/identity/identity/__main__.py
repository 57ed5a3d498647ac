"""`python -m identity <command>`: the operator's commands for this service.

migrate        apply the database migrations, then create the staff account from
               STAFF_EMAIL/STAFF_PASSWORD if those are set (run before every start)
create-staff   create or reset a vendor staff account: --email, --name; the password
               is read from STAFF_PASSWORD or asked for
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys

from sqlalchemy import select

from identity import people
from identity.models import User
from identity.passwords import hash_password
from shared import migrations
from shared.config import Settings
from shared.db import Database


def ensure_staff(database: Database, email: str, password: str, name: str = "Vendor staff") -> User:
    email = email.strip().lower()
    with database.unit_of_work() as session:
        user = session.scalars(select(User).where(User.email == email)).one_or_none()
        if user is None:
            user = User(email=email, name=name, staff=True, status="active")
            session.add(user)
        user.staff = True
        user.status = "active"
        user.password_hash = hash_password(password)
        session.flush()  # a new user gets its id
        people.announce(session, user.id)  # a new staff account, or an account made staff
        return user


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m identity", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("migrate")
    staff = commands.add_parser("create-staff")
    staff.add_argument("--email", required=True)
    staff.add_argument("--name", default="Vendor staff")
    demo = commands.add_parser("demo-accounts", help="an administrator and a colleague for make run")
    demo.add_argument("--customer", required=True)
    demo.add_argument("--admin", nargs=3, metavar=("EMAIL", "NAME", "PASSWORD"), required=True)
    demo.add_argument("--colleague", nargs=3, metavar=("EMAIL", "NAME", "PASSWORD"), required=True)
    args = parser.parse_args(argv)

    settings = Settings.from_env("identity")
    if args.command == "migrate":
        migrations.upgrade("identity", settings.database_url)
        if settings.staff_email and settings.staff_password:
            ensure_staff(Database(settings.database_url), settings.staff_email, settings.staff_password)
            print(f"staff account {settings.staff_email} is ready")
    elif args.command == "create-staff":
        password = os.environ.get("STAFF_PASSWORD") or getpass.getpass("Password: ")
        if len(password) < 8:
            sys.exit("the password needs at least 8 characters")
        ensure_staff(Database(settings.database_url), args.email, password, args.name)
        print(f"staff account {args.email} is ready")
    elif args.command == "demo-accounts":
        from identity.demo import ensure_demo_accounts

        ensure_demo_accounts(settings, args.customer, tuple(args.admin), tuple(args.colleague))


if __name__ == "__main__":
    main()
