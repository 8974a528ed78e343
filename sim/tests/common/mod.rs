//! Helpers shared by the simulator contract tests: an HTTP client that is
//! safe under paused tokio time, and a webhook receiver that records what
//! it was sent.

#![allow(dead_code)]

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::routing::any;
use hmac::{Hmac, Mac};
use tokio::time::Instant;

/// A client with no tokio timers (no timeout, no idle-connection reaper):
/// under paused time those would fire while a response is on its way.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .pool_idle_timeout(None)
        .build()
        .unwrap()
}

pub fn hmac_sha256(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut m = Hmac::<sha2::Sha256>::new_from_slice(key).unwrap();
    m.update(data);
    m.finalize().into_bytes().to_vec()
}

pub fn hmac_sha1(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut m = Hmac::<sha1::Sha1>::new_from_slice(key).unwrap();
    m.update(data);
    m.finalize().into_bytes().to_vec()
}

/// One request a [`Receiver`] got.
#[derive(Clone, Debug)]
pub struct Hit {
    pub at: Instant,
    pub method: Method,
    pub uri: Uri,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Hit {
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .unwrap_or_else(|| panic!("no {name} header"))
            .to_str()
            .unwrap()
    }
}

#[derive(Default)]
struct Inner {
    hits: Vec<Hit>,
    statuses: VecDeque<u16>,
}

/// A webhook endpoint on 127.0.0.1 that answers 200 unless told otherwise.
pub struct Receiver {
    pub url: String,
    inner: Arc<Mutex<Inner>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn record(
    State(inner): State<Arc<Mutex<Inner>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let mut i = inner.lock().unwrap();
    i.hits.push(Hit {
        at: Instant::now(),
        method,
        uri,
        headers,
        body,
    });
    StatusCode::from_u16(i.statuses.pop_front().unwrap_or(200)).unwrap()
}

impl Receiver {
    pub async fn start() -> Self {
        let inner = Arc::new(Mutex::new(Inner::default()));
        let app = Router::new()
            .route("/{*path}", any(record))
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!(
            "http://{}/hooks/in?source=test",
            listener.local_addr().unwrap()
        );
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self { url, inner, task }
    }

    /// Answers the next requests with these statuses, then 200 again.
    pub fn respond_with(&self, statuses: &[u16]) {
        self.inner
            .lock()
            .unwrap()
            .statuses
            .extend(statuses.iter().copied());
    }

    pub fn hits(&self) -> Vec<Hit> {
        self.inner.lock().unwrap().hits.clone()
    }
}
