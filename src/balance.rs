//! `dialajoke balance`: a small round-robin HTTP load balancer for running several instances on
//! one machine (`make cluster`, and the cluster tests, where it spreads Telnyx's webhooks over the
//! instances). Each request goes to the next instance in turn; an instance that refuses the
//! connection is skipped, so a dead one costs nothing but a retry. Responses are relayed as they
//! stream (the page's live updates are a stream). A real deployment puts its own load balancer
//! in front instead (see `docs/nginx.conf`).

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use actix_web::dev::ServerHandle;
use actix_web::http::StatusCode;
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};

/// Options of `dialajoke balance`.
#[derive(Debug, Clone, clap::Args)]
pub struct BalanceArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub bind: SocketAddr,
    /// An instance to send requests to, e.g. 127.0.0.1:8081 (repeat for each instance).
    #[arg(long = "backend", required = true)]
    pub backends: Vec<SocketAddr>,
}

/// Headers that belong to one connection, not to the request or response passed on.
const HOP_BY_HOP: [&str; 9] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "content-length",
];

struct Backends {
    list: Vec<SocketAddr>,
    /// How many requests each instance answered, in the order of `list`.
    answered: Vec<AtomicU64>,
    next: AtomicUsize,
    http: reqwest::Client,
}

/// A running balancer.
pub struct Balancer {
    addr: SocketAddr,
    backends: web::Data<Backends>,
    server: ServerHandle,
    serving: tokio::task::JoinHandle<io::Result<()>>,
}

impl Balancer {
    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// How many requests each instance has answered so far.
    pub fn answered(&self) -> Vec<(SocketAddr, u64)> {
        let counts = self.backends.answered.iter().map(|count| count.load(Ordering::Relaxed));
        self.backends.list.iter().copied().zip(counts).collect()
    }

    /// Stops serving.
    pub async fn stop(self) {
        self.server.stop(false).await;
        let _ = self.serving.await;
    }
}

/// Binds `bind` (port 0 picks a free port) and starts relaying to `backends` in the background.
pub async fn start(bind: SocketAddr, backends: Vec<SocketAddr>) -> io::Result<Balancer> {
    let http = reqwest::Client::builder()
        .no_proxy()
        .connect_timeout(Duration::from_secs(1))
        // Redirects are the client's business: relay them as they are.
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(io::Error::other)?;
    let answered = backends.iter().map(|_| AtomicU64::new(0)).collect();
    let state = web::Data::new(Backends { list: backends, answered, next: AtomicUsize::new(0), http });
    let listener = std::net::TcpListener::bind(bind)?;
    let addr = listener.local_addr()?;
    let shared = state.clone();
    let server = HttpServer::new(move || App::new().app_data(shared.clone()).default_service(web::to(relay)))
        .listen(listener)?
        .disable_signals()
        .shutdown_timeout(1)
        .run();
    Ok(Balancer { addr, backends: state, server: server.handle(), serving: tokio::spawn(server) })
}

/// Runs the balancer until Ctrl-C.
pub async fn serve(args: BalanceArgs) -> Result<(), String> {
    let balancer =
        start(args.bind, args.backends.clone()).await.map_err(|e| format!("cannot listen on {}: {e}", args.bind))?;
    let backends: Vec<String> = args.backends.iter().map(ToString::to_string).collect();
    tracing::info!(addr = %balancer.addr(), backends = %backends.join(", "), "balancing requests round-robin");
    let _ = tokio::signal::ctrl_c().await;
    for (backend, count) in balancer.answered() {
        tracing::info!(%backend, requests = count, "requests this instance answered");
    }
    balancer.stop().await;
    Ok(())
}

/// Sends the request to the next instance that takes the connection and relays its answer.
async fn relay(request: HttpRequest, body: web::Bytes, backends: web::Data<Backends>) -> HttpResponse {
    let count = backends.list.len();
    let first = backends.next.fetch_add(1, Ordering::Relaxed);
    let target = request.uri().path_and_query().map_or("/", |pq| pq.as_str());
    for turn in 0..count {
        let index = (first + turn) % count;
        let backend = backends.list[index];
        match forward(&backends.http, &request, &body, &format!("http://{backend}{target}")).await {
            Ok(response) => {
                backends.answered[index].fetch_add(1, Ordering::Relaxed);
                return relayed(response);
            }
            // Nothing was sent: the next instance may take it.
            Err(error) if error.is_connect() => tracing::debug!(%backend, "instance refused the connection"),
            Err(error) => {
                tracing::warn!(%backend, error = %error, "instance failed mid-request");
                return unavailable(StatusCode::BAD_GATEWAY, "the instance failed while answering");
            }
        }
    }
    unavailable(StatusCode::SERVICE_UNAVAILABLE, "no instance is taking connections")
}

async fn forward(
    http: &reqwest::Client,
    request: &HttpRequest,
    body: &web::Bytes,
    url: &str,
) -> Result<reqwest::Response, reqwest::Error> {
    let method = reqwest::Method::from_bytes(request.method().as_str().as_bytes()).unwrap_or(reqwest::Method::GET);
    let mut outgoing = http.request(method, url).body(body.clone());
    for (name, value) in request.headers() {
        if name != "host" && !HOP_BY_HOP.contains(&name.as_str()) {
            outgoing = outgoing.header(name.as_str(), value.as_bytes());
        }
    }
    outgoing.send().await
}

fn relayed(response: reqwest::Response) -> HttpResponse {
    let status = StatusCode::from_u16(response.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
    let mut relayed = HttpResponse::build(status);
    for (name, value) in response.headers() {
        if !HOP_BY_HOP.contains(&name.as_str()) {
            relayed.append_header((name.as_str(), value.as_bytes()));
        }
    }
    relayed.streaming(response.bytes_stream())
}

fn unavailable(status: StatusCode, detail: &str) -> HttpResponse {
    let title = status.canonical_reason().unwrap_or("Unavailable");
    HttpResponse::build(status).content_type("application/problem+json").json(serde_json::json!({
        "type": "about:blank",
        "title": title,
        "status": status.as_u16(),
        "detail": detail,
    }))
}
