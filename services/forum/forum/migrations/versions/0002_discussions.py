"""Authors, topics, posts, revisions, flags, watches, notifications, search, mail, throttles.

Search is per dialect: on PostgreSQL a `search_vector` column on posts with a GIN index, in
the text search configuration `forum_search` (unaccent, then simple: Czech has no stemmer in
PostgreSQL, and folding accents lets "ucetnictvi" find "účetnictví"); on SQLite an FTS5 table
whose unicode61 tokenizer removes diacritics the same way.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

from shared import mail, throttle

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def _when(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    throttle.create_table(op)
    mail.create_table(op)
    with op.batch_alter_table("categories") as batch:
        batch.add_column(sa.Column("product", sa.String(40), nullable=True))
    op.create_table(
        "authors",
        sa.Column("user_id", sa.String(36), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("email", sa.String(254), nullable=True),
        sa.Column("company_name", sa.String(200), nullable=True),
        sa.Column("staff", sa.Boolean(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
    )
    op.create_table(
        "topics",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("category_id", sa.Integer(), sa.ForeignKey("categories.id"), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("author_id", sa.String(36), sa.ForeignKey("authors.user_id"), nullable=False),
        _when("created_at"),
        _when("last_activity_at"),
        sa.Column("replies", sa.Integer(), nullable=False),
        sa.Column("pinned", sa.Boolean(), nullable=False),
        sa.Column("locked", sa.Boolean(), nullable=False),
        sa.Column("hidden", sa.Boolean(), nullable=False),
        sa.Column("solution_post_id", sa.Integer(), nullable=True),
    )
    op.create_index("ix_topics_listing", "topics", ["category_id", "pinned", "last_activity_at", "id"])
    op.create_index("ix_topics_recent", "topics", ["last_activity_at"])
    op.create_table(
        "posts",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("topic_id", sa.Integer(), sa.ForeignKey("topics.id"), nullable=False, index=True),
        sa.Column("author_id", sa.String(36), sa.ForeignKey("authors.user_id"), nullable=False, index=True),
        sa.Column("by_staff", sa.Boolean(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("body_html", sa.Text(), nullable=False),
        _when("created_at"),
        _when("edited_at", nullable=True),
        sa.Column("hidden", sa.Boolean(), nullable=False),
    )
    op.create_index("ix_posts_created_at", "posts", ["created_at"])
    op.create_table(
        "post_revisions",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("post_id", sa.Integer(), sa.ForeignKey("posts.id"), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        _when("written_at"),
        sa.Column("replaced_by", sa.String(36), nullable=False),
        _when("replaced_at"),
        sa.UniqueConstraint("post_id", "number"),
    )
    op.create_table(
        "flags",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("post_id", sa.Integer(), sa.ForeignKey("posts.id"), nullable=False),
        sa.Column("user_id", sa.String(36), nullable=False),
        sa.Column("reason", sa.String(500), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        _when("created_at"),
        sa.Column("resolved_by", sa.String(36), nullable=True),
        _when("resolved_at", nullable=True),
        sa.UniqueConstraint("post_id", "user_id"),
    )
    op.create_index("ix_flags_status", "flags", ["status", "id"])
    op.create_table(
        "watches",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("user_id", sa.String(36), sa.ForeignKey("authors.user_id"), nullable=False, index=True),
        sa.Column("topic_id", sa.Integer(), sa.ForeignKey("topics.id"), nullable=True, index=True),
        sa.Column("category_id", sa.Integer(), sa.ForeignKey("categories.id"), nullable=True, index=True),
        _when("created_at"),
        sa.UniqueConstraint("user_id", "topic_id"),
        sa.UniqueConstraint("user_id", "category_id"),
    )
    op.create_table(
        "pending_notifications",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("user_id", sa.String(36), nullable=False, index=True),
        sa.Column("post_id", sa.Integer(), sa.ForeignKey("posts.id"), nullable=False),
        _when("created_at"),
        sa.UniqueConstraint("user_id", "post_id"),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute("CREATE EXTENSION IF NOT EXISTS unaccent")
        op.execute("CREATE TEXT SEARCH CONFIGURATION forum_search (COPY = simple)")
        op.execute(
            "ALTER TEXT SEARCH CONFIGURATION forum_search "
            "ALTER MAPPING FOR hword, hword_part, word WITH unaccent, simple"
        )
        op.execute("ALTER TABLE posts ADD COLUMN search_vector tsvector")
        # Kept in the row (compressed) rather than in TOAST: search reads the vector of every
        # candidate, and a TOASTed one costs 3-4 more page reads (bench/README.md, "scale").
        op.execute("ALTER TABLE posts ALTER COLUMN search_vector SET STORAGE MAIN")
        op.execute("CREATE INDEX ix_posts_search ON posts USING gin (search_vector)")
    else:
        op.execute(
            "CREATE VIRTUAL TABLE post_search USING fts5(title, body, tokenize = 'unicode61 remove_diacritics 2')"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP INDEX ix_posts_search")
        op.execute("DROP TEXT SEARCH CONFIGURATION forum_search")
    else:
        op.execute("DROP TABLE post_search")
    for table in ("pending_notifications", "watches", "flags", "post_revisions", "posts", "topics", "authors"):
        op.drop_table(table)
    with op.batch_alter_table("categories") as batch:
        batch.drop_column("product")
    op.drop_table("outgoing_mail")
    op.drop_table("throttles")
