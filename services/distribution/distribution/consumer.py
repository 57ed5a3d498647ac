"""`python -m distribution.consumer`: applies the events distribution subscribes to."""

from distribution.handlers import HANDLERS
from shared.consumer import run

if __name__ == "__main__":
    run("distribution", HANDLERS)
