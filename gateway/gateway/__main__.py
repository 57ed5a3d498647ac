"""`python -m gateway migrate`: apply gateway's database migrations."""

from shared.migrations import main

if __name__ == "__main__":
    main("gateway")
