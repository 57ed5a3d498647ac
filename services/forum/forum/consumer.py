"""`python -m forum.consumer`: applies the events the forum subscribes to."""

from forum.handlers import HANDLERS
from shared.consumer import run

if __name__ == "__main__":
    run("forum", HANDLERS)
