-- The community read models: categories, posts, and each category's activity.
--
-- A category's counts live in their own table, written by post events with additive upserts:
-- a post's events and its category's are projected by different partitions, so a post may be
-- applied before the category row exists; counting apart never waits for it.

CREATE TABLE read_models.community_categories
(
    tenant_id     text        NOT NULL,
    category_id   uuid        NOT NULL,
    name          text        NOT NULL,
    description   text,
    archived      boolean     NOT NULL,
    version       bigint      NOT NULL,
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, category_id)
);

CREATE INDEX community_categories_by_name
    ON read_models.community_categories (tenant_id, name, category_id);

CREATE TABLE read_models.community_category_activity
(
    tenant_id        text        NOT NULL,
    category_id      uuid        NOT NULL,
    -- Posts readers see (not removed).
    posts            bigint      NOT NULL,
    last_activity_at timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, category_id)
);

CREATE TABLE read_models.community_posts
(
    tenant_id        text        NOT NULL,
    post_id          uuid        NOT NULL,
    category_id      uuid        NOT NULL,
    author           uuid        NOT NULL,
    title            text        NOT NULL,
    body             text        NOT NULL,
    locked           boolean     NOT NULL,
    pinned           boolean     NOT NULL,
    removed          boolean     NOT NULL,
    edits            integer     NOT NULL,
    version          bigint      NOT NULL,
    written_at       timestamptz NOT NULL,
    edited_at        timestamptz,
    last_activity_at timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, post_id)
);

-- A category's posts, pinned first, newest or most recently active next.
CREATE INDEX community_posts_newest
    ON read_models.community_posts (tenant_id, category_id, pinned DESC, written_at DESC, post_id DESC);
CREATE INDEX community_posts_active
    ON read_models.community_posts (tenant_id, category_id, pinned DESC, last_activity_at DESC, post_id DESC);
