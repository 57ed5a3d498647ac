"""`python -m licensing migrate`: apply licensing's database migrations."""

from shared.migrations import main

if __name__ == "__main__":
    main("licensing")
