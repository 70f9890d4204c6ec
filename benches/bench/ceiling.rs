//! The ceiling for webhook intake: a bare actix-web endpoint that verifies the signature and
//! parses the event with the service's own code, then answers 200 with nothing stored. It runs as
//! a child process of the bench (the same executable, told its role by the environment) so it
//! gets the same share of the machine as the service does.

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use dialajoke::telnyx::signature::{PublicKey, SIGNATURE_HEADER, TIMESTAMP_HEADER};
use dialajoke::telnyx::webhook;

/// Environment variable that turns the bench executable into the ceiling server.
pub const ROLE: &str = "DIALAJOKE_BENCH_CEILING";
const KEY: &str = "DIALAJOKE_BENCH_CEILING_KEY";

/// The ceiling server, running.
pub struct Ceiling {
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
}

impl Ceiling {
    /// Starts it and waits until it accepts connections.
    pub async fn start(public_key: &str) -> Ceiling {
        let addr = super::service::free_addr();
        let child = Command::new(std::env::current_exe().expect("bench executable"))
            .env(ROLE, addr.to_string())
            .env(KEY, public_key)
            .stdin(Stdio::null())
            .spawn()
            .expect("ceiling server starts");
        while tokio::net::TcpStream::connect(addr).await.is_err() {
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
        Ceiling { child, addr }
    }

    /// Stops it.
    pub fn stop(mut self) {
        self.child.kill().expect("ceiling stops");
        self.child.wait().expect("ceiling exits");
    }
}

fn header<'a>(req: &'a HttpRequest, name: &str) -> Option<&'a str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

async fn receive(req: HttpRequest, body: web::Bytes, key: web::Data<PublicKey>) -> HttpResponse {
    let now = chrono::Utc::now().timestamp();
    if key.verify(header(&req, SIGNATURE_HEADER), header(&req, TIMESTAMP_HEADER), &body, now).is_err() {
        return HttpResponse::Unauthorized().finish();
    }
    match webhook::parse(&body) {
        Ok(_) => HttpResponse::Ok().finish(),
        Err(_) => HttpResponse::BadRequest().finish(),
    }
}

/// Serves the ceiling endpoint when this process was started in that role; returns otherwise.
pub fn serve_if_asked() {
    let Ok(bind) = std::env::var(ROLE) else { return };
    let key = PublicKey::from_base64(&std::env::var(KEY).expect("key")).expect("valid key");
    let key = web::Data::new(key);
    let served = actix_web::rt::System::new().block_on(async move {
        HttpServer::new(move || App::new().app_data(key.clone()).route("/webhook", web::post().to(receive)))
            .bind(bind)?
            .run()
            .await
    });
    served.expect("ceiling server");
    std::process::exit(0);
}
