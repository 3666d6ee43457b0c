//! Messages: a page of the stored ones (newest first, searched by id, recipient and status), a
//! message's own page (its request, its upstream id, the timeline of its statuses, each
//! delivery attempt of its callbacks, the callbacks it still owes), and the live stream of the
//! statuses of the messages a page shows.

use std::collections::HashMap;
use std::convert::Infallible;
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures_util::Stream;
use maud::{Markup, html};
use premise_base::UnixMs;
use premise_store::{MessageHistory, MessagePage, MessageSummary};
use premise_wire::{MessageStatus, StatusError};
use serde::Deserialize;

use super::{Session, href, page};
use crate::http::{ApiError, AppState};

/// Messages a page lists.
const PAGE: u32 = 50;
/// The most messages one live stream follows.
const FOLLOWED: usize = 200;
/// How often a live stream reads the statuses it follows.
const EVERY: Duration = Duration::from_secs(1);
/// A live stream ends after this (the browser opens a new one at once), so no stream outlives
/// a shutdown's drain by long.
const STREAM_FOR: Duration = Duration::from_secs(300);

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/console/messages", get(list))
        .route("/console/messages/{id}", get(show))
        .route("/console/events", get(events))
}

#[derive(Debug, Default, Deserialize)]
struct Search {
    /// Premise's id or the upstream's (`wamid`).
    id: Option<String>,
    to: Option<String>,
    status: Option<String>,
    /// Accepted at or before this moment, UTC (`YYYY-MM-DDTHH:MM`).
    until: Option<String>,
    before: Option<i64>,
}

/// The tick a status shows, and its name.
pub(super) fn ticks(status: MessageStatus) -> Markup {
    let mark = match status {
        MessageStatus::Queued => "◷",
        MessageStatus::Sent => "✓",
        MessageStatus::Delivered | MessageStatus::Read => "✓✓",
        MessageStatus::Failed => "✗",
    };
    html! { span.ticks data-status=(status.as_str()) title=(status.as_str()) { (mark) } }
}

fn given(value: &Option<String>) -> Option<String> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty()).map(str::to_owned)
}

async fn list(
    State(state): State<AppState>,
    session: Session,
    Query(search): Query<Search>,
) -> Result<Response, ApiError> {
    let status = given(&search.status).and_then(|s| {
        [
            MessageStatus::Queued,
            MessageStatus::Sent,
            MessageStatus::Delivered,
            MessageStatus::Read,
            MessageStatus::Failed,
        ]
        .into_iter()
        .find(|known| known.as_str() == s)
    });
    let query = MessagePage {
        before_seq: search.before,
        accepted_by: given(&search.until).and_then(|until| premise_base::UnixMs::parse_utc(&until)),
        recipient: given(&search.to),
        status,
        id: given(&search.id),
        limit: PAGE,
    };
    let messages = state.store.messages_page(&query).await?;
    let older = (messages.len() == PAGE as usize).then(|| messages.last().map(|m| m.seq)).flatten();
    let body = html! {
        form.search method="get" action=(href(&state, "/messages")) {
            input name="id" placeholder="Message id or wamid" value=[given(&search.id)];
            input name="to" placeholder="Recipient" value=[given(&search.to)];
            label.until { "Accepted by (UTC) " input type="datetime-local" name="until" value=[given(&search.until)]; }
            select name="status" {
                option value="" { "Any status" }
                @for s in ["queued", "sent", "delivered", "read", "failed"] {
                    option value=(s) selected[status.is_some_and(|x| x.as_str() == s)] { (s) }
                }
            }
            button type="submit" { "Search" }
        }
        @if messages.is_empty() {
            p.empty { "No message matches." }
        } @else {
            table.messages {
                thead { tr { th { "Accepted" } th { "Message" } th { "To" } th { "Status" } } }
                tbody {
                    @for m in &messages { (row(&state, m)) }
                }
            }
        }
        @if let Some(seq) = older {
            a.more href=(older_link(&state, &search, seq)) { "Older messages" }
        }
    };
    Ok(page(&state, &session, "Messages", &body).into_response())
}

/// The next page: the same search, below `seq`.
fn older_link(state: &AppState, search: &Search, seq: i64) -> String {
    let mut query = format!("before={seq}");
    for (name, value) in [
        ("id", &search.id),
        ("to", &search.to),
        ("status", &search.status),
        ("until", &search.until),
    ] {
        if let Some(value) = given(value) {
            query.push_str(&format!("&{name}={}", encoded(&value)));
        }
    }
    format!("{}?{query}", href(state, "/messages"))
}

/// `value` as a URL's query takes it: unreserved characters as they are, the rest escaped.
fn encoded(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn row(state: &AppState, m: &MessageSummary) -> Markup {
    html! {
        tr data-message=(m.id) {
            td { (m.accepted_at.utc()) }
            td.id { a href=(href(state, &format!("/messages/{}", m.id))) { (m.id) } }
            td { (m.recipient) }
            td { (ticks(m.status)) }
        }
    }
}

async fn show(
    State(state): State<AppState>,
    session: Session,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let found = state.store.message_summaries(std::slice::from_ref(&id)).await?;
    let (Some(summary), Some(stored)) = (found.first(), state.store.message(&id).await?) else {
        let body = html! { p.empty { "No message " code { (id) } " is stored (it may have been deleted by retention)." } };
        return Ok(page(&state, &session, "Message", &body).into_response());
    };
    let payload = serde_json::from_str::<serde_json::Value>(&stored.payload)
        .ok()
        .and_then(|v| serde_json::to_string_pretty(&v).ok())
        .unwrap_or(stored.payload);
    let account = state.store.account().await?;
    let shards: Vec<u32> = (0..account.shards).collect();
    let owed: Vec<_> = state
        .store
        .pending_callbacks(&shards, 1_000)
        .await?
        .into_iter()
        .filter(|c| c.message_id == id)
        .collect();
    let history = state.store.message_history(&id).await?.unwrap_or_default();
    let errors = errors_of(&history);
    let body = html! {
        dl.message data-message=(summary.id) {
            dt { "Id" } dd { code { (summary.id) } }
            dt { "To" } dd { (summary.recipient) }
            dt { "Status" } dd { (ticks(summary.status)) " " span.status-name { (summary.status.as_str()) } }
            dt { "Accepted" } dd { (summary.accepted_at.utc()) " UTC" }
            dt { "Last change" } dd { (summary.updated_at.utc()) " UTC" }
            dt { "Upstream id" } dd { code { (summary.upstream_id.as_deref().unwrap_or("–")) } }
        }
        h2 { "Timeline" }
        ol.timeline {
            li { span.at { (precise(summary.accepted_at)) } " accepted" }
            @for (status, at) in &history.reached {
                li data-status=(status.as_str()) {
                    span.at { (precise(*at)) } " " (ticks(*status)) " " (status.as_str())
                    @if *status == MessageStatus::Failed {
                        @for e in &errors {
                            " " span.error { (e.code) " " (e.title) @if let Some(d) = &e.details { ": " (d) } }
                        }
                    }
                }
            }
        }
        h2 { "Callback deliveries" }
        @if history.attempts.is_empty() {
            p.empty { "No delivery of a callback of it was attempted yet." }
        } @else {
            table.attempts {
                thead { tr { th { "Attempt" } th { "Callback" } th { "Reports" } th { "HTTP" } th { "Latency" } th { "Outcome" } } }
                tbody { @for a in &history.attempts {
                    tr data-outcome=(if a.attempt.error.is_none() { "delivered" } else { "failed" }) {
                        td { (precise(a.attempt.at)) }
                        td { (a.callback_seq) }
                        td { (a.status.map_or("message", MessageStatus::as_str)) }
                        td { (a.attempt.http_status.map_or_else(|| "–".to_owned(), |s| s.to_string())) }
                        td { (a.attempt.latency.as_millis()) " ms" }
                        td { (a.attempt.error.as_deref().unwrap_or("delivered")) }
                    }
                } }
            }
        }
        h2 { "Callbacks it still owes" }
        @if owed.is_empty() {
            p.empty { "None: every status callback of it was delivered (or none was asked for)." }
        } @else {
            table { thead { tr { th { "Callback" } th { "Failures" } th { "Last error" } th { "Next attempt" } } }
                tbody { @for c in &owed { tr {
                    td { (c.seq) } td { (c.failures) } td { (c.last_error.as_deref().unwrap_or("–")) } td { (c.next_attempt_at.utc()) }
                } } } }
        }
        h2 { "Request" }
        pre.payload { (payload) }
    };
    Ok(page(&state, &session, "Message", &body).into_response())
}

/// Why a message failed, as its history keeps it (none if it did not).
pub(super) fn errors_of(history: &MessageHistory) -> Vec<StatusError> {
    history.errors.as_deref().and_then(|e| serde_json::from_str(e).ok()).unwrap_or_default()
}

/// A moment to the millisecond, UTC.
fn precise(at: UnixMs) -> String {
    format!("{}.{:03}", at.utc(), at.ms().rem_euclid(1_000))
}

#[derive(Debug, Deserialize)]
struct Follow {
    /// Comma-separated message ids.
    #[serde(default)]
    ids: String,
}

/// `GET /console/events?ids=a,b`: server-sent events, one `status` event (`{"id","status"}`)
/// for each followed message when its status is first read and each time it changes. Read from
/// the database every second (any replica's work shows), by primary key.
async fn events(
    State(state): State<AppState>,
    _session: Session,
    Query(follow): Query<Follow>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let ids: Vec<String> = follow
        .ids
        .split(',')
        .map(str::trim)
        .filter(|id| !id.is_empty())
        .take(FOLLOWED)
        .map(str::to_owned)
        .collect();
    let watch = Watch {
        state,
        ids,
        shown: HashMap::new(),
        ready: Vec::new(),
        first: true,
        started: tokio::time::Instant::now(),
    };
    let stream = futures_util::stream::unfold(watch, |mut watch| async move {
        loop {
            if let Some(event) = watch.ready.pop() {
                return Some((Ok(event), watch));
            }
            let draining = watch.state.draining.load(std::sync::atomic::Ordering::Relaxed);
            if watch.ids.is_empty() || draining || watch.started.elapsed() > STREAM_FOR {
                return None;
            }
            if !watch.first {
                tokio::time::sleep(EVERY).await;
            }
            watch.first = false;
            if let Ok(found) = watch.state.store.message_summaries(&watch.ids).await {
                for m in found {
                    if watch.shown.get(&m.id) != Some(&m.status) {
                        let data = serde_json::json!({ "id": m.id, "status": m.status.as_str() });
                        watch.ready.push(Event::default().event("status").data(data.to_string()));
                        watch.shown.insert(m.id, m.status);
                    }
                }
            }
        }
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}

/// A live stream's state: what it follows, the status each was last shown in, events ready.
struct Watch {
    state: AppState,
    ids: Vec<String>,
    shown: HashMap<String, MessageStatus>,
    ready: Vec<Event>,
    first: bool,
    started: tokio::time::Instant,
}
