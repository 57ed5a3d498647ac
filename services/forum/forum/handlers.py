"""What the forum does with other services' events (its subscriptions, one line each)."""

from forum.authors import on_user_changed

HANDLERS = {
    "identity.user.changed": on_user_changed,
}
