//! `dialajoke balance`, the round-robin balancer `make cluster` and the cluster tests put in front
//! of several instances: requests take turns over the instances, one that refuses connections is
//! skipped, and answers come back as the instance gave them. Simulators stand in for instances
//! here: they are HTTP servers that count what reached them.

mod common;

use std::net::SocketAddr;

use common::process::free_port;
use dialajoke::balance;
use dialajoke::sim::{self, RequestKind, SimConfig, SimHandle};

const KEY: &str = "balance-key";

async fn instance() -> SimHandle {
    sim::start(SimConfig::local(KEY)).await.expect("simulator starts")
}

/// An address nothing listens on.
fn nobody() -> SocketAddr {
    ([127, 0, 0, 1], free_port()).into()
}

/// Where the balancer listens: any free port.
fn any_port() -> SocketAddr {
    ([127, 0, 0, 1], 0).into()
}

async fn look_up(base: &str) -> reqwest::Response {
    let http = reqwest::Client::builder().no_proxy().build().expect("client");
    http.get(format!("{base}/v2/calls/no-such-call")).bearer_auth(KEY).send().await.expect("answered")
}

#[tokio::test]
async fn requests_take_turns_over_the_instances_skipping_one_that_is_down() {
    let (first, second) = (instance().await, instance().await);
    let down = nobody();
    let balancer = balance::start(any_port(), vec![first.addr(), down, second.addr()]).await.expect("starts");
    let base = format!("http://{}", balancer.addr());

    for _ in 0..6 {
        look_up(&base).await;
    }

    // Turns start at first, down (so second), second, first, down (so second), second.
    assert_eq!(first.count_requests(RequestKind::Status), 2);
    assert_eq!(second.count_requests(RequestKind::Status), 4);
    assert_eq!(balancer.answered(), [(first.addr(), 2), (down, 0), (second.addr(), 4)]);
}

#[tokio::test]
async fn an_answer_comes_back_as_the_instance_gave_it() {
    let only = instance().await;
    let balancer = balance::start(any_port(), vec![only.addr()]).await.expect("starts");

    let direct = look_up(&format!("http://{}", only.addr())).await;
    let relayed = look_up(&format!("http://{}", balancer.addr())).await;

    assert_eq!(relayed.status(), direct.status());
    assert_eq!(relayed.headers().get("content-type"), direct.headers().get("content-type"));
    assert_eq!(relayed.bytes().await.expect("body"), direct.bytes().await.expect("body"));
}

#[tokio::test]
async fn with_every_instance_down_the_answer_is_a_problem_document() {
    let balancer = balance::start(any_port(), vec![nobody(), nobody()]).await.expect("starts");

    let answer = look_up(&format!("http://{}", balancer.addr())).await;

    assert_eq!(answer.status(), 503);
    assert_eq!(answer.headers()["content-type"], "application/problem+json");
}
