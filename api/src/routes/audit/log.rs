//! The verifiable log over HTTP: the latest signed checkpoint, the signing key, and inclusion
//! and consistency proofs (RFC 6962) to check against a checkpoint the auditor kept.

use axum::extract::State;
use axum::http::Uri;
use axum::Json;
use chrono::{DateTime, Utc};
use commands::audit::{encode_hash, proofs, AuditError};
use domain::policy::AuditAction;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::http::error::{ApiError, Problem};
use crate::http::extract::{query_of, Caller};
use crate::routes::AppState;

impl From<AuditError> for ApiError {
    fn from(error: AuditError) -> Self {
        Self::failed(error)
    }
}

fn not_found(code: &'static str, detail: String) -> ApiError {
    ApiError::NotFound { code, detail }
}

/// A signed checkpoint of the tenant's log.
#[derive(Debug, Serialize, ToSchema)]
pub struct CheckpointDto {
    /// The log's origin (`{audit.origin}/{tenant}`), the note's first line.
    pub origin: String,
    /// Leaves (events) it covers.
    pub tree_size: u64,
    /// The RFC 6962 root hash at that size (standard base64).
    pub root_hash: String,
    /// When it was signed.
    pub created_at: DateTime<Utc>,
    /// The signed note, exactly as signed (C2SP tlog-checkpoint text, a blank line, signature
    /// lines): keep it outside this system.
    pub note: String,
}

/// The latest signed checkpoint of the tenant's log (auditors and admins).
#[utoipa::path(
    get, path = "/api/v1/audit/log/checkpoint", tag = "audit",
    responses(
        (status = 200, description = "The latest checkpoint", body = CheckpointDto),
        (status = 404, description = "No checkpoint yet (or no signing key configured)", body = Problem),
    ),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn latest_checkpoint(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<CheckpointDto>, ApiError> {
    let tenant = caller.may_read(AuditAction::ReadHistory, None)?;
    let checkpoint = proofs::latest_checkpoint(&state.pool, tenant.as_str())
        .await?
        .ok_or_else(|| {
            not_found(
                "no_checkpoint",
                "no checkpoint has been published yet".into(),
            )
        })?;
    Ok(Json(CheckpointDto {
        origin: format!("{}/{tenant}", state.settings.audit.origin),
        tree_size: checkpoint.size,
        root_hash: encode_hash(&checkpoint.root),
        created_at: checkpoint.created_at,
        note: checkpoint.note,
    }))
}

/// The key checkpoints are signed with.
#[derive(Debug, Serialize, ToSchema)]
pub struct SigningKeyDto {
    /// The key's name (signature lines name it).
    pub name: String,
    /// `Ed25519`.
    pub algorithm: String,
    /// The public key as a C2SP signed-note verifier key, `{name}+{id}+{base64}`.
    pub verifier_key: String,
}

/// The public key checkpoints are signed with (auditors and admins).
#[utoipa::path(
    get, path = "/api/v1/audit/log/key", tag = "audit",
    responses(
        (status = 200, description = "The verifier key", body = SigningKeyDto),
        (status = 404, description = "No signing key is configured", body = Problem),
    ),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn signing_key(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<SigningKeyDto>, ApiError> {
    caller.may_read(AuditAction::ReadHistory, None)?;
    let key = state
        .settings
        .audit
        .key()
        .ok()
        .flatten()
        .ok_or_else(|| not_found("no_signing_key", "no signing key is configured".into()))?;
    Ok(Json(SigningKeyDto {
        name: key.name().to_owned(),
        algorithm: "Ed25519".to_owned(),
        verifier_key: key.verifier_key().to_owned(),
    }))
}

/// Which event, in which tree.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct InclusionQuery {
    /// The event.
    pub event_id: Uuid,
    /// The tree size to prove it in (a checkpoint's); the latest checkpoint's when absent.
    #[param(minimum = 1)]
    pub tree_size: Option<u64>,
}

/// A proof that an event is a leaf of the tree of a given size.
#[derive(Debug, Serialize, ToSchema)]
pub struct InclusionProof {
    /// The event.
    pub event_id: Uuid,
    /// Its position in the tenant's log (from 0).
    pub leaf_index: u64,
    /// Its leaf hash (standard base64).
    pub leaf_hash: String,
    /// The tree size the proof is for.
    pub tree_size: u64,
    /// The RFC 6962 audit path, leaf to root (standard base64 each).
    pub proof: Vec<String>,
}

/// The tree size a proof is asked for, checked against what is sealed.
async fn sealed_size(state: &AppState, tenant: &str, asked: Option<u64>) -> Result<u64, ApiError> {
    match asked {
        Some(0) => Err(ApiError::bad_request(
            "invalid_tree_size",
            "tree sizes start at 1".to_owned(),
        )),
        Some(size) => {
            let sealed = proofs::tree_size(&state.pool, tenant).await?;
            if size > sealed {
                return Err(not_found(
                    "tree_size_not_sealed",
                    format!("the log has {sealed} sealed events; no tree of size {size}"),
                ));
            }
            Ok(size)
        }
        None => Ok(proofs::latest_checkpoint(&state.pool, tenant)
            .await?
            .ok_or_else(|| not_found("no_checkpoint", "no checkpoint yet; give tree_size".into()))?
            .size),
    }
}

/// An inclusion proof of an event in the tenant's log (auditors and admins).
#[utoipa::path(
    get, path = "/api/v1/audit/log/inclusion", tag = "audit",
    params(InclusionQuery),
    responses(
        (status = 200, description = "The proof", body = InclusionProof),
        (status = 400, description = "Invalid parameters", body = Problem),
        (status = 404, description = "The event is not sealed in a tree of that size", body = Problem),
    ),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn inclusion_proof(
    State(state): State<AppState>,
    caller: Caller,
    uri: Uri,
) -> Result<Json<InclusionProof>, ApiError> {
    let tenant = caller.may_read(AuditAction::ReadHistory, None)?.as_str();
    let query: InclusionQuery = query_of(&uri)?;
    let tree_size = sealed_size(&state, tenant, query.tree_size).await?;
    let (leaf_index, leaf_hash) = proofs::leaf_of(&state.pool, tenant, query.event_id)
        .await?
        .filter(|(position, _)| *position < tree_size)
        .ok_or_else(|| {
            not_found(
                "event_not_sealed",
                format!(
                    "event {} is not in the log's first {tree_size} leaves",
                    query.event_id
                ),
            )
        })?;
    let proof = proofs::inclusion(&state.pool, tenant, leaf_index, tree_size).await?;
    Ok(Json(InclusionProof {
        event_id: query.event_id,
        leaf_index,
        leaf_hash: encode_hash(&leaf_hash),
        tree_size,
        proof: proof.iter().map(encode_hash).collect(),
    }))
}

/// Two tree sizes.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ConsistencyQuery {
    /// The older tree size (a checkpoint the auditor kept).
    #[param(minimum = 1)]
    pub from: u64,
    /// The newer tree size; the latest checkpoint's when absent.
    #[param(minimum = 1)]
    pub to: Option<u64>,
}

/// A proof that one tree extends another.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConsistencyProof {
    /// The older size.
    pub from: u64,
    /// The newer size.
    pub to: u64,
    /// The RFC 6962 consistency proof (standard base64 each).
    pub proof: Vec<String>,
}

/// A consistency proof between two sizes of the tenant's log (auditors and admins).
#[utoipa::path(
    get, path = "/api/v1/audit/log/consistency", tag = "audit",
    params(ConsistencyQuery),
    responses(
        (status = 200, description = "The proof", body = ConsistencyProof),
        (status = 400, description = "Invalid parameters", body = Problem),
        (status = 404, description = "A size is not sealed, or `from` exceeds `to`", body = Problem),
    ),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn consistency_proof(
    State(state): State<AppState>,
    caller: Caller,
    uri: Uri,
) -> Result<Json<ConsistencyProof>, ApiError> {
    let tenant = caller.may_read(AuditAction::ReadHistory, None)?.as_str();
    let query: ConsistencyQuery = query_of(&uri)?;
    if query.from == 0 {
        return Err(ApiError::bad_request(
            "invalid_tree_size",
            "tree sizes start at 1".to_owned(),
        ));
    }
    let to = sealed_size(&state, tenant, query.to).await?;
    if query.from > to {
        return Err(not_found(
            "tree_size_not_sealed",
            format!("from must be between 1 and {to}"),
        ));
    }
    let proof = proofs::consistency(&state.pool, tenant, query.from, to).await?;
    Ok(Json(ConsistencyProof {
        from: query.from,
        to,
        proof: proof.iter().map(encode_hash).collect(),
    }))
}
