"""`python -m forum migrate`: apply forum's database migrations."""

from shared.migrations import main

if __name__ == "__main__":
    main("forum")
