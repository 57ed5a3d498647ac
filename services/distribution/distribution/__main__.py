"""`python -m distribution migrate`: apply distribution's database migrations."""

from shared.migrations import main

if __name__ == "__main__":
    main("distribution")
