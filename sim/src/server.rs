//! The HTTP plumbing every simulator shares: an axum server on a listener
//! whose connections can be cut from inside a handler.
//!
//! Cutting a connection is how the Kendo simulator loses a `201` on the way
//! back (the call exists, the client never hears so). axum offers no way to
//! close a connection without answering, so each accepted socket is wrapped
//! in [`KillableIo`]: once its switch is thrown every read and write fails,
//! hyper gives up on the connection and the socket closes with no response.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll, Waker};

use axum::Router;
use axum::extract::connect_info::Connected;
use axum::serve::{IncomingStream, Listener};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use crate::SimError;

/// Locks a mutex, recovering the data if a panicking thread poisoned it: the
/// simulators' state stays readable for the test that wants to report it.
pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[derive(Default)]
pub(crate) struct KillSwitch {
    killed: AtomicBool,
    wakers: Mutex<[Option<Waker>; 2]>,
}

impl KillSwitch {
    fn kill(&self) {
        self.killed.store(true, Ordering::SeqCst);
        let wakers = std::mem::take(&mut *lock(&self.wakers));
        for w in wakers.into_iter().flatten() {
            w.wake();
        }
    }

    fn is_killed(&self) -> bool {
        self.killed.load(Ordering::SeqCst)
    }

    fn park(&self, slot: usize, cx: &Context<'_>) {
        if let Some(s) = lock(&self.wakers).get_mut(slot) {
            *s = Some(cx.waker().clone());
        }
    }
}

#[derive(Default)]
struct Connections {
    next: AtomicU64,
    live: Mutex<HashMap<u64, Weak<KillSwitch>>>,
}

impl Connections {
    fn kill_all(&self) {
        let live = std::mem::take(&mut *lock(&self.live));
        for sw in live.values().filter_map(Weak::upgrade) {
            sw.kill();
        }
    }
}

/// One accepted connection, as handlers see it through `ConnectInfo`.
#[derive(Clone)]
pub(crate) struct Conn {
    pub(crate) peer: Option<SocketAddr>,
    switch: Arc<KillSwitch>,
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conn").field("peer", &self.peer).finish()
    }
}

impl Conn {
    /// Closes the connection without letting any response out.
    pub(crate) fn kill(&self) {
        self.switch.kill();
    }
}

impl Connected<IncomingStream<'_, SimListener>> for Conn {
    fn connect_info(stream: IncomingStream<'_, SimListener>) -> Self {
        stream.remote_addr().clone()
    }
}

pub(crate) struct KillableIo {
    inner: TcpStream,
    switch: Arc<KillSwitch>,
    id: u64,
    conns: Weak<Connections>,
}

impl Drop for KillableIo {
    fn drop(&mut self) {
        if let Some(c) = self.conns.upgrade() {
            lock(&c.live).remove(&self.id);
        }
    }
}

fn aborted() -> io::Error {
    io::Error::new(io::ErrorKind::ConnectionAborted, "closed by the simulator")
}

impl AsyncRead for KillableIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.switch.is_killed() {
            return Poll::Ready(Err(aborted()));
        }
        self.switch.park(0, cx);
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for KillableIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.switch.is_killed() {
            return Poll::Ready(Err(aborted()));
        }
        self.switch.park(1, cx);
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.switch.is_killed() {
            return Poll::Ready(Err(aborted()));
        }
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

pub(crate) struct SimListener {
    inner: TcpListener,
    conns: Arc<Connections>,
}

impl Listener for SimListener {
    type Io = KillableIo;
    type Addr = Conn;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            match self.inner.accept().await {
                Ok((stream, peer)) => {
                    // Small JSON answers must not wait for Nagle's algorithm.
                    let _ = stream.set_nodelay(true);
                    let switch = Arc::new(KillSwitch::default());
                    let id = self.conns.next.fetch_add(1, Ordering::Relaxed);
                    lock(&self.conns.live).insert(id, Arc::downgrade(&switch));
                    let io = KillableIo {
                        inner: stream,
                        switch: switch.clone(),
                        id,
                        conns: Arc::downgrade(&self.conns),
                    };
                    return (
                        io,
                        Conn {
                            peer: Some(peer),
                            switch,
                        },
                    );
                }
                // Out of file descriptors or a connection reset before accept:
                // nothing to do but try again; yield so a persistent error does
                // not spin.
                Err(_) => tokio::task::yield_now().await,
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.inner.local_addr().map(|a| Conn {
            peer: Some(a),
            switch: Arc::default(),
        })
    }
}

/// A running server. Dropping it stops accepting and closes every open
/// connection at once.
pub(crate) struct HttpServer {
    addr: SocketAddr,
    task: JoinHandle<()>,
    conns: Arc<Connections>,
}

impl HttpServer {
    pub(crate) async fn start(bind: SocketAddr, router: Router) -> Result<Self, SimError> {
        let inner = TcpListener::bind(bind)
            .await
            .map_err(|source| SimError::Bind { addr: bind, source })?;
        let addr = inner
            .local_addr()
            .map_err(|source| SimError::Bind { addr: bind, source })?;
        let conns = Arc::new(Connections::default());
        let listener = SimListener {
            inner,
            conns: conns.clone(),
        };
        let app = router.into_make_service_with_connect_info::<Conn>();
        let task = tokio::spawn(async move {
            // `serve` only returns on a listener error, which `accept` never
            // reports; there is nothing useful to do with the result.
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self { addr, task, conns })
    }

    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub(crate) fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.task.abort();
        self.conns.kill_all();
    }
}

/// A client for outgoing deliveries: never through a proxy (every receiver
/// is on 127.0.0.1), and with no tokio timer of its own (no timeout, no
/// idle-connection reaper). Under paused tokio time every pending timer fires
/// as soon as the runtime waits for a socket, so a tokio-timed timeout would
/// expire while the receiver's answer is already on its way.
pub(crate) fn http_client() -> Result<reqwest::Client, SimError> {
    reqwest::Client::builder()
        .no_proxy()
        .pool_idle_timeout(None)
        .build()
        .map_err(SimError::Client)
}

/// How long a sender waits for an answer: Kendo documents 10 s.
pub(crate) const DELIVERY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Runs `fut` for at most `limit` of real (wall-clock) time, measured by a
/// helper thread rather than a tokio timer so that tests pausing tokio time
/// do not see it expire early. `None` when the limit passed first.
pub(crate) async fn within_real_time<F: std::future::Future>(
    limit: std::time::Duration,
    fut: F,
) -> Option<F::Output> {
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    // Dropped when this function returns: the helper thread wakes at once
    // and ends, instead of sleeping out the full limit after every delivery.
    let (done, finished) = std::sync::mpsc::channel::<()>();
    // If the thread cannot start, `tx` is dropped with the closure and the
    // wait below never ends: no timeout rather than an instant one.
    let _ = std::thread::Builder::new()
        .name("sim-delivery-timeout".into())
        .spawn(move || {
            if let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = finished.recv_timeout(limit) {
                let _ = tx.send(());
            }
        });
    let expired = async move {
        if rx.await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    let out = tokio::select! {
        biased;
        out = fut => Some(out),
        () = expired => None,
    };
    drop(done);
    out
}

/// Sends one request and reads its status, with the delivery timeout.
pub(crate) async fn deliver(
    url: &str,
    send: impl std::future::Future<Output = Result<reqwest::Response, reqwest::Error>>,
) -> Result<u16, SimError> {
    match within_real_time(DELIVERY_TIMEOUT, send).await {
        Some(Ok(r)) => Ok(r.status().as_u16()),
        Some(Err(source)) => Err(SimError::Delivery {
            url: url.to_owned(),
            source,
        }),
        None => Err(SimError::TimedOut {
            url: url.to_owned(),
        }),
    }
}
