"""`python -m licensing.consumer`: applies the events licensing subscribes to."""

from licensing.handlers import HANDLERS
from shared.consumer import run

if __name__ == "__main__":
    run("licensing", HANDLERS)
