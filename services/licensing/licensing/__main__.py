"""`python -m licensing <command>`: the operator's commands for this service.

migrate        apply the database migrations (run before every start)
import         import customers and direct-sale licenses from a CSV, all rows or none:
               FILE.csv [--dry-run] [--output OUT.csv]; the installation numbers go to
               FILE.imported.csv (or OUT.csv); rejected rows are listed with line, column, reason
dead-letters   list: the dead letters of licensing's event consumer (licensing.events.dlq)
               and of the partners' sales inbox (licensing.partner-sales.dlq), with reasons;
               replay [event-id ...]: send the event consumer's back to it (all, or these)
               (python -m ops.deadletters does the same for every consumer)
"""

from __future__ import annotations

import argparse
import json
import sys

from shared import migrations
from shared.config import Settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m licensing", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("migrate", help="apply the database migrations")
    importing = commands.add_parser("import", help="import customers and licenses from a CSV (all or nothing)")
    importing.add_argument("file", help="the CSV: UTF-8, comma or semicolon, one row per license")
    importing.add_argument("--dry-run", action="store_true", help="check every row, write nothing")
    importing.add_argument("--output", help="where the installation numbers go (default FILE.imported.csv)")
    dead = commands.add_parser("dead-letters", help="list or replay licensing's dead letters")
    dead_commands = dead.add_subparsers(dest="action", required=True)
    dead_commands.add_parser("list", help="show each dead letter and why it failed; nothing is removed")
    replay = dead_commands.add_parser("replay", help="send dead letters back to licensing's consumer")
    replay.add_argument("event_ids", nargs="*", help="only these events (default: all)")
    args = parser.parse_args(argv)

    settings = Settings.from_env("licensing")
    if args.command == "migrate":
        migrations.upgrade("licensing", settings.database_url)
    elif args.command == "import":
        return _import(settings, args.file, args.output, args.dry_run)
    elif args.command == "dead-letters":
        _dead_letters(settings, args.action, args.event_ids if args.action == "replay" else [])
    return 0


def _import(settings: Settings, file: str, output: str | None, dry_run: bool) -> int:
    from licensing.importer import ImportFileError, Progress, import_file, summary
    from shared.db import Database

    database = Database(settings.database_url)
    try:
        result = import_file(database, file, output=output, dry_run=dry_run, progress=Progress(sys.stderr))
    except ImportFileError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    finally:
        database.dispose()
    print(summary(result))
    return 0 if result.ok else 1


def _dead_letters(settings: Settings, action: str, event_ids: list[str]) -> None:
    from shared.dead_letters import DeadLetters

    letters = DeadLetters(settings.amqp_url, settings.events_namespace)
    if action == "replay":
        count = letters.replay("licensing", set(event_ids) or None)
        print(f"replayed {count} message(s) to {letters.topology.queue('licensing')}", file=sys.stderr)
        return
    for letter in [*letters.list("licensing"), *letters.list_partner_sales()]:
        print(json.dumps(letter.__dict__, ensure_ascii=False))


if __name__ == "__main__":
    sys.exit(main())
