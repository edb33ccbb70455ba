-- The community read models: categories, posts, comments, reactions, the activity of each
-- category and post, reports, and members' standing.
--
-- Counts live in activity tables of their own, written with additive upserts by the events of
-- other streams: a comment's events and its post's (or a post's and its category's) are
-- projected by different partitions, so a comment may be applied before its post's row exists;
-- counting apart never waits for it.

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
    -- Posts readers see (neither removed nor hidden). Its comments are counted when read,
    -- from its posts' counts: a post that goes takes its comments out of the count with it.
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
    hidden           boolean     NOT NULL,
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

CREATE TABLE read_models.community_post_activity
(
    tenant_id        text        NOT NULL,
    post_id          uuid        NOT NULL,
    -- Comments readers see (not removed), replies included.
    comments         bigint      NOT NULL,
    last_activity_at timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, post_id)
);

CREATE TABLE read_models.community_comments
(
    tenant_id   text        NOT NULL,
    comment_id  uuid        NOT NULL,
    post_id     uuid        NOT NULL,
    category_id uuid        NOT NULL,
    parent_id   uuid,
    author      uuid        NOT NULL,
    body        text        NOT NULL,
    removed     boolean     NOT NULL,
    hidden      boolean     NOT NULL,
    edits       integer     NOT NULL,
    version     bigint      NOT NULL,
    written_at  timestamptz NOT NULL,
    edited_at   timestamptz,
    updated_at  timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, comment_id)
);

-- A post's threads: its top-level comments in order, and each one's replies.
CREATE INDEX community_comments_threads
    ON read_models.community_comments (tenant_id, post_id, parent_id, comment_id);

-- Who reacted how to what: one row per reaction there is now.
CREATE TABLE read_models.community_reactions
(
    tenant_id   text NOT NULL,
    target_kind text NOT NULL CHECK (target_kind IN ('post', 'comment')),
    target_id   uuid NOT NULL,
    member      uuid NOT NULL,
    kind        text NOT NULL,
    PRIMARY KEY (tenant_id, target_kind, target_id, member, kind)
);

CREATE TABLE read_models.community_reports
(
    tenant_id    text        NOT NULL,
    report_id    uuid        NOT NULL,
    target_kind  text        NOT NULL CHECK (target_kind IN ('post', 'comment')),
    target_id    uuid        NOT NULL,
    reporter     uuid        NOT NULL,
    reason       text        NOT NULL,
    status       text        NOT NULL CHECK (status IN ('open', 'hidden', 'dismissed')),
    resolved_by  text,
    version      bigint      NOT NULL,
    filed_at     timestamptz NOT NULL,
    resolved_at  timestamptz,
    PRIMARY KEY (tenant_id, report_id)
);

-- The moderation queue: open reports, oldest first.
CREATE INDEX community_reports_open
    ON read_models.community_reports (tenant_id, filed_at, report_id) WHERE status = 'open';

CREATE TABLE read_models.community_members
(
    tenant_id       text        NOT NULL,
    member          uuid        NOT NULL,
    suspended_until timestamptz,
    reason          text,
    suspended_by    text,
    version         bigint      NOT NULL,
    updated_at      timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, member)
);

CREATE TABLE read_models.community_announcements
(
    tenant_id       text        NOT NULL,
    announcement_id uuid        NOT NULL,
    title           text        NOT NULL,
    body            text        NOT NULL,
    -- The roles it is for; NULL: everyone of the tenant.
    audience        text[],
    starts_at       timestamptz,
    ends_at         timestamptz,
    pinned          boolean     NOT NULL,
    status          text        NOT NULL CHECK (status IN ('draft', 'published', 'retracted')),
    published_at    timestamptz,
    version         bigint      NOT NULL,
    drafted_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, announcement_id)
);

CREATE INDEX community_announcements_published
    ON read_models.community_announcements (tenant_id, published_at DESC)
    WHERE status = 'published';

CREATE TABLE read_models.community_announcement_reads
(
    tenant_id       text        NOT NULL,
    announcement_id uuid        NOT NULL,
    reader          uuid        NOT NULL,
    read_at         timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, announcement_id, reader)
);

-- Each tenant's community settings; no row: the defaults (public pages off).
CREATE TABLE read_models.community_settings
(
    tenant_id    text        PRIMARY KEY,
    public_pages boolean     NOT NULL,
    version      bigint      NOT NULL,
    updated_at   timestamptz NOT NULL
);
