"""`python -m forum.notifier`: turns watchers' pending notes into digest e-mails.

Each pass finds watchers whose oldest note is `FORUM_DIGEST_DELAY` seconds old (default 300)
and queues one mail per watcher (forum.subscriptions.send_digest), each in its own
transaction. The mails themselves go out through the forum's mailer (`python -m shared.mailer
forum`). A database outage is waited out with back-off; SIGTERM stops it between watchers.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from datetime import timedelta

from forum import subscriptions
from shared import amqp, logs
from shared.config import Settings
from shared.db import Database, utc_now
from shared.heartbeat import Heartbeat

log = logging.getLogger(__name__)


class Notifier:
    def __init__(self, settings: Settings, delay: float, interval: float = 1.0):
        self.settings = settings
        self.database = Database(settings.database_url)
        self.delay = delay
        self.interval = interval
        self.stopping = threading.Event()
        self.heartbeat = Heartbeat(settings.heartbeat_file)

    def run_once(self) -> int:
        """One pass; returns how many digests it queued."""
        cutoff = utc_now() - timedelta(seconds=self.delay)
        with self.database.unit_of_work() as session:
            due = subscriptions.due_watchers(session, cutoff)
        sent = 0
        for user_id in due:
            if self.stopping.is_set():
                break
            with self.database.unit_of_work() as session:
                count = subscriptions.send_digest(
                    session, user_id, self.settings.require_secret(), self.settings.public_url
                )
            if count:
                sent += 1
                log.info("digest of %d posts queued for %s", count, user_id)
        return sent

    def run_forever(self) -> None:
        backoff = amqp.Backoff()
        log.info("forum notifier started (digest delay %ss)", self.delay)
        while not self.stopping.is_set():
            self.heartbeat.beat()
            try:
                self.run_once()
                backoff.reset()
                self.stopping.wait(self.interval)
            except Exception as error:  # the database away, or anything else: wait and go again
                delay = backoff.next_delay()
                log.warning("notifier pass failed (%s: %s); retrying in %.1fs", type(error).__name__, error, delay)
                self.stopping.wait(delay)

    def stop(self, *_args) -> None:
        self.stopping.set()


def main() -> None:
    logs.configure("forum-notifier")
    notifier = Notifier(Settings.from_env("forum"), delay=float(os.environ.get("FORUM_DIGEST_DELAY", "300")))
    signal.signal(signal.SIGTERM, notifier.stop)
    signal.signal(signal.SIGINT, notifier.stop)
    notifier.run_forever()


if __name__ == "__main__":
    main()
