"""Dead letters for operators: see what failed and why, and send it back once fixed.

`python -m ops.deadletters list [consumer]` prints each message in `<consumer>.events.dlq`
(event id, type, when and why it failed) and leaves it there; `python -m ops.deadletters
replay <consumer> [event-id ...]` puts the messages (all, or the ones named) back on that
consumer's own queue only, so other consumers never see the event twice, and removes them
from the DLQ once the broker confirmed the copy.

Events a service's relay held (it could not publish them, `shared.outbox`) are listed beside
them as `<service>.outbox` (`list` without a name shows every consumer and every service;
`list identity.outbox` one service's), and `replay identity.outbox [event-id ...]` releases
them to that relay, which publishes each once. Those are asked of the services' internal
endpoints (`shared.outbox_api`), with a token signed with `INTERNAL_AUTH_SECRET`, at
`<SERVICE>_URL`.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict

from shared.config import Settings
from shared.dead_letters import OUTBOX, DeadLetters, HeldEvents, ServiceUnavailable


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ops.deadletters", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)
    listing = commands.add_parser("list", help="show dead letters and held events")
    listing.add_argument("consumer", nargs="?", help="a consumer, or <service>.outbox (default: all)")
    replaying = commands.add_parser("replay", help="send dead letters back to their consumer, or release held events")
    replaying.add_argument("consumer", help="a consumer, or <service>.outbox")
    replaying.add_argument("event_ids", nargs="*")
    args = parser.parse_args(argv)

    settings = Settings.from_env("ops")
    letters = DeadLetters(settings.amqp_url, settings.events_namespace)
    held = HeldEvents(settings, caller="ops")
    failed = False
    if args.command == "list":
        names = [args.consumer] if args.consumer else [*letters.consumers(), *(s + OUTBOX for s in held.services())]
        for name in names:
            service = held.service_of(name)
            if service is None:
                for letter in letters.list(name):
                    print(json.dumps(letter.__dict__, ensure_ascii=False))
                continue
            try:
                for event in held.list(service):
                    print(json.dumps({"consumer": event.consumer, **asdict(event)}, ensure_ascii=False))
            except ServiceUnavailable as error:
                print(f"cannot list {name}: {error}", file=sys.stderr)
                failed = True
    elif (service := held.service_of(args.consumer)) is not None:
        try:
            ids = args.event_ids or [event.event_id for event in held.list(service)]
            released = [event_id for event_id in ids if held.release(service, event_id)]
        except ServiceUnavailable as error:
            print(f"cannot release {args.consumer}: {error}", file=sys.stderr)
            return 1
        print(f"released {len(released)} held event(s) to {service}'s relay", file=sys.stderr)
    else:
        count = letters.replay(args.consumer, set(args.event_ids) or None)
        print(f"replayed {count} message(s) to {letters.topology.queue(args.consumer)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
