//! The load driver: a fixed number of keep-alive HTTP/1.1 connections, each sending its next
//! request as soon as the previous answer is read (closed loop), for a fixed time. Requests come
//! from a shared source so every one is distinct (webhooks with their own event id and signature).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// Where requests come from: `request(n)` builds the n-th request of a run, `None` when the
/// source is used up (pre-signed webhooks are finite).
pub trait Source: Send + Sync + 'static {
    /// The n-th request, or `None` past the end.
    fn request(&self, n: usize) -> Option<Request<Full<Bytes>>>;
}

/// One run's shape.
#[derive(Debug, Clone, Copy)]
pub struct Load {
    /// Concurrent connections, each with one request in flight.
    pub connections: usize,
    /// How long requests are sent for.
    pub duration: Duration,
}

/// What one run measured.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Latency of every answered request, in microseconds.
    pub latencies_us: Vec<u32>,
    /// Requests answered 2xx.
    pub ok: u64,
    /// Requests answered with any other status.
    pub refused: u64,
    /// Requests that got no answer (connection errors).
    pub errors: u64,
    /// From the first request to the last answer.
    pub elapsed: Duration,
    /// The source ran out before the time was up (the run is then shorter than asked).
    pub exhausted: bool,
}

impl Outcome {
    /// Answered requests per second.
    pub fn rate(&self) -> f64 {
        (self.ok + self.refused) as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    fn merge(&mut self, other: Outcome) {
        self.latencies_us.extend(other.latencies_us);
        self.ok += other.ok;
        self.refused += other.refused;
        self.errors += other.errors;
        self.exhausted |= other.exhausted;
    }
}

/// Runs `load` against `addr`, taking requests from `source` in order.
pub async fn run(addr: SocketAddr, source: Arc<dyn Source>, load: Load) -> Outcome {
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let deadline = start + load.duration;
    let workers: Vec<_> = (0..load.connections)
        .map(|_| tokio::spawn(connection(addr, Arc::clone(&source), Arc::clone(&next), deadline)))
        .collect();
    let mut total = Outcome::default();
    for worker in workers {
        total.merge(worker.await.expect("load connection task"));
    }
    total.elapsed = start.elapsed();
    total
}

async fn connection(addr: SocketAddr, source: Arc<dyn Source>, next: Arc<AtomicUsize>, deadline: Instant) -> Outcome {
    let mut outcome = Outcome { latencies_us: Vec::with_capacity(1 << 16), ..Outcome::default() };
    let stream = TcpStream::connect(addr).await.expect("connect to the server under test");
    stream.set_nodelay(true).expect("nodelay");
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.expect("handshake");
    tokio::spawn(conn);
    while Instant::now() < deadline {
        let Some(request) = source.request(next.fetch_add(1, Ordering::Relaxed)) else {
            outcome.exhausted = true;
            break;
        };
        let sent = Instant::now();
        let answer = match sender.send_request(request).await {
            Ok(response) => {
                let status = response.status();
                response.into_body().collect().await.map(|_| status)
            }
            Err(error) => {
                outcome.errors += 1;
                eprintln!("request failed: {error}");
                break;
            }
        };
        match answer {
            Ok(status) => {
                let micros = u32::try_from(sent.elapsed().as_micros()).unwrap_or(u32::MAX);
                outcome.latencies_us.push(micros);
                if status.is_success() { outcome.ok += 1 } else { outcome.refused += 1 }
            }
            Err(_) => outcome.errors += 1,
        }
    }
    outcome
}

/// The same request every time (page and API loads).
pub struct Repeat<F>(pub F);

impl<F> Source for Repeat<F>
where
    F: Fn(usize) -> Request<Full<Bytes>> + Send + Sync + 'static,
{
    fn request(&self, n: usize) -> Option<Request<Full<Bytes>>> {
        Some((self.0)(n))
    }
}
