//! One deadline on every request body. Actix times out a slow request head, not a slow body: a
//! client sending a byte every few seconds would hold its connection and buffer open for as long
//! as it liked, on any route. Here the payload every handler and extractor reads is wrapped so
//! it fails once [`BODY_DEADLINE`] has passed since the request arrived, and the answer then is a
//! 408, whatever the handler made of the failed read.

use std::cell::Cell;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;

use actix_web::HttpMessage;
use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::error::PayloadError;
use actix_web::middleware::Next;
use actix_web::web::Bytes;
use futures_util::{FutureExt, Stream, StreamExt};
use tokio::time::Sleep;

use super::problem::ApiError;

/// How long a client has to deliver a whole body. The largest body taken (a webhook, 64 KiB)
/// arrives at once from any sender that means well.
pub const BODY_DEADLINE: Duration = Duration::from_secs(5);

/// A payload that fails once its deadline has passed, and says so in `expired`.
struct Deadlined {
    inner: Payload,
    deadline: Pin<Box<Sleep>>,
    expired: Rc<Cell<bool>>,
}

impl Stream for Deadlined {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.deadline.poll_unpin(cx).is_ready() {
            this.expired.set(true);
            let late = std::io::Error::new(std::io::ErrorKind::TimedOut, "the body did not arrive in time");
            return Poll::Ready(Some(Err(PayloadError::Io(late))));
        }
        this.inner.poll_next_unpin(cx)
    }
}

/// The body-deadline middleware (see the module docs).
pub async fn limit_body_time(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let expired = Rc::new(Cell::new(false));
    let deadlined = Deadlined {
        inner: req.take_payload(),
        deadline: Box::pin(tokio::time::sleep(BODY_DEADLINE)),
        expired: Rc::clone(&expired),
    };
    req.set_payload(Payload::Stream { payload: Box::pin(deadlined) });
    let res = next.call(req).await?;
    if !expired.get() {
        return Ok(res.map_into_left_body());
    }
    let late = ApiError::RequestTimeout(format!("the body did not arrive within {} s", BODY_DEADLINE.as_secs()));
    Ok(res.error_response(late).map_into_right_body())
}
