"""Forum: categories, topics, posts, search, moderation, subscriptions."""
