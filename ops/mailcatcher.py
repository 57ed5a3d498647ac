"""A local SMTP server that keeps every mail it receives, for `make run` and the tests.

Mails land as `.eml` files in a folder (default `var/mail/`), newest last, so a developer can
open the confirmation link of a registration without a real mail server.
`python -m ops.mailcatcher --port 1025 --dir var/mail`
"""

from __future__ import annotations

import argparse
import itertools
import signal
import threading
import time
from pathlib import Path

from aiosmtpd.controller import Controller


class MailFolder:
    """aiosmtpd handler: writes each message to its own file."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=True)
        self._counter = itertools.count(1)

    async def handle_DATA(self, server, session, envelope):
        name = f"{time.time_ns()}-{next(self._counter):04d}.eml"
        (self.folder / name).write_bytes(envelope.original_content or envelope.content)
        return "250 Message accepted for delivery"


def start(folder: Path, host: str = "127.0.0.1", port: int = 1025) -> Controller:
    controller = Controller(MailFolder(folder), hostname=host, port=port)
    controller.start()
    return controller


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=1025)
    parser.add_argument("--dir", type=Path, default=Path("var/mail"))
    args = parser.parse_args()
    controller = start(args.dir, args.host, args.port)
    print(f"mail catcher on {args.host}:{args.port}, keeping mails in {args.dir}/", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    controller.stop()


if __name__ == "__main__":
    main()
