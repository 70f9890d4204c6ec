//! Finding the public URL when none is configured: a local ngrok agent (`ngrok http 8080`)
//! reports its tunnels at `http://127.0.0.1:4040/api/tunnels`.

use std::time::Duration;

use serde::Deserialize;

/// Where ngrok's local agent API listens.
pub const AGENT_URL: &str = "http://127.0.0.1:4040/api/tunnels";

#[derive(Deserialize)]
struct Tunnels {
    tunnels: Vec<Tunnel>,
}

#[derive(Deserialize)]
struct Tunnel {
    public_url: String,
}

/// Why no tunnel was found.
#[derive(Debug, thiserror::Error)]
#[error(
    "DIALAJOKE_PUBLIC_URL is not set and no https ngrok tunnel was found at {AGENT_URL} ({0}); \
     start `ngrok http 8080` or set DIALAJOKE_PUBLIC_URL"
)]
pub struct NoTunnel(String);

/// Asks the agent at `agent_url` for its https tunnel's public URL.
pub async fn public_url(agent_url: &str) -> Result<String, NoTunnel> {
    let client =
        reqwest::Client::builder().timeout(Duration::from_secs(2)).build().map_err(|e| NoTunnel(e.to_string()))?;
    let response = client.get(agent_url).send().await.map_err(|_| NoTunnel("the agent did not answer".into()))?;
    let tunnels: Tunnels =
        response.json().await.map_err(|_| NoTunnel("the agent's answer was not understood".into()))?;
    tunnels
        .tunnels
        .into_iter()
        .map(|t| t.public_url)
        .find(|url| url.starts_with("https://"))
        .map(|url| url.trim_end_matches('/').to_owned())
        .ok_or_else(|| NoTunnel("the agent has no https tunnel".into()))
}
