"""`python -m identity.consumer`: applies the events identity subscribes to."""

from identity.handlers import HANDLERS
from shared.consumer import run

if __name__ == "__main__":
    run("identity", HANDLERS)
