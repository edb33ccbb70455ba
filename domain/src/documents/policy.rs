//! What may be done with documents, and by whom. A document's subject is its uploader's account.

use crate::identity::Role;
use crate::policy::{context_actions, Rule};

context_actions! {
    /// The documents context's actions.
    pub enum DocumentAction in "documents" {
        /// Upload a document (workers upload their results).
        UploadDocument = "upload_document" =>
            Rule::roles(&[Role::Admin, Role::User, Role::Worker]),
        /// Download a document (its uploader, an admin, or a worker: workers read the documents
        /// of the jobs they claim).
        DownloadDocument = "download_document" =>
            Rule::roles(&[Role::Admin, Role::Worker]).or_subject(),
    }
}
