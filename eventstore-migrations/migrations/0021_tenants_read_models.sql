-- The tenants read models: one row per provisioned tenant (settings, status), and the size of
-- every stored document, one row per document stream, so a tenant's stored bytes are summed
-- when asked for and no row is shared between streams (see 0012).

CREATE TABLE read_models.tenants
(
    tenant_id         text        NOT NULL PRIMARY KEY,
    display_name      text        NOT NULL,
    status            text        NOT NULL CHECK (status IN ('active', 'suspended')),
    suspension_reason text,
    suspended_at      timestamptz,
    settings          jsonb       NOT NULL,
    version           bigint      NOT NULL,
    provisioned_at    timestamptz NOT NULL,
    updated_at        timestamptz NOT NULL
);

CREATE TABLE read_models.tenant_documents
(
    tenant_id   text        NOT NULL,
    document_id uuid        NOT NULL,
    size_bytes  bigint      NOT NULL,
    uploaded_at timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, document_id)
);

-- A tenant's stored bytes, summed by an index-only scan.
CREATE INDEX tenant_documents_sizes ON read_models.tenant_documents (tenant_id) INCLUDE (size_bytes);
