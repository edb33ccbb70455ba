//! A worker and a submitter as clients of the HTTP API, for the job tests.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::time::Duration;

use crate::helpers::TestApp;

/// A worker's view of the API: one API key with the worker role.
#[derive(Clone)]
pub(crate) struct Worker {
    app_address: String,
    client: reqwest::Client,
    key: String,
}

impl Worker {
    pub(crate) async fn new(app: &TestApp) -> Self {
        Self {
            app_address: app.address.clone(),
            client: app.client.clone(),
            key: app.api_key_with_roles(&["worker"]).await.1,
        }
    }

    pub(crate) async fn post(&self, path: &str, body: Value) -> reqwest::Response {
        self.client
            .post(format!("{}{path}", self.app_address))
            .header("x-api-key", &self.key)
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    pub(crate) async fn claim(&self) -> Option<Value> {
        let response = self
            .post("/api/v1/worker/claim", json!({ "kinds": ["translation"] }))
            .await;
        match response.status() {
            StatusCode::NO_CONTENT => None,
            StatusCode::OK => Some(response.json().await.unwrap()),
            other => panic!("claim answered {other}: {}", response.text().await.unwrap()),
        }
    }

    /// Claims until a job is handed out (the queue view follows the store), or panics.
    pub(crate) async fn claim_within(&self, deadline: Duration) -> Value {
        let until = tokio::time::Instant::now() + deadline;
        loop {
            if let Some(job) = self.claim().await {
                return job;
            }
            assert!(
                tokio::time::Instant::now() < until,
                "no job to claim within {deadline:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub(crate) async fn on(&self, job: &Value, action: &str, mut body: Value) -> reqwest::Response {
        body["lease_id"] = job["lease_id"].clone();
        let id = job["job_id"].as_str().unwrap();
        self.post(&format!("/api/v1/worker/jobs/{id}/{action}"), body)
            .await
    }

    pub(crate) async fn upload_result(&self, text: &str) -> String {
        let response = self
            .client
            .post(format!("{}/api/v1/documents", self.app_address))
            .header("x-api-key", &self.key)
            .header("content-type", "text/plain")
            .body(text.to_owned())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::CREATED);
        let body: Value = response.json().await.unwrap();
        body["document_id"].as_str().unwrap().to_owned()
    }
}

pub(crate) async fn submitter(app: &TestApp) -> (String, String) {
    let (_, key) = app.api_key_with_roles(&["user"]).await;
    let document = app.uploaded_document(&key).await;
    (key, document)
}

pub(crate) async fn submit(app: &TestApp, key: &str, document: &str) -> Value {
    let response = app
        .anonymous(Method::POST, "/api/v1/jobs")
        .header("x-api-key", key)
        .json(&json!({
            "kind": "translation", "source_language": "en", "target_language": "de",
            "document_id": document, "priority": 5,
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    response.json().await.unwrap()
}
