//! `GET /ui/live`: server-sent events for the open pages — a `changed` event whenever the
//! alert store changes (raised, repeated, acted on, verified), checked twice a second; the
//! page then fetches its content again.
use std::convert::Infallible;
use std::time::Duration;

use axum::response::sse::{Event, KeepAlive, Sse};
use futures::Stream;
use weir_connectors::alerts;

/// The stream of changes.
pub async fn live() -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let start = alerts::current().changes();
    let stream = futures::stream::unfold(start, |seen| async move {
        loop {
            tokio::time::sleep(Duration::from_millis(500)).await;
            let now = alerts::current().changes();
            if now != seen {
                let e = Event::default().event("changed").data(now.to_string());
                return Some((Ok(e), now));
            }
        }
    });
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}
