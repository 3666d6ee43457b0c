//! Webhooks (admins): the callbacks waiting for the integration's receiver (failures, next
//! attempt, "retry now"), and the webhooks received from Meta that Premise kept because parts
//! of them could not be mapped ("process again", after an upgrade).

use axum::Router;
use axum::extract::{Form, Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use maud::html;
use serde::Deserialize;

use super::{Session, href, page, to};
use crate::http::{ApiError, AppState};

/// Callbacks and kept webhooks a page shows.
const SHOWN: u32 = 100;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/console/webhooks", get(list))
        .route("/console/webhooks/callbacks/{seq}/retry", post(retry))
        .route("/console/webhooks/received/{id}/process", post(process))
}

async fn list(State(state): State<AppState>, session: Session) -> Result<Response, ApiError> {
    if let Err(refused) = session.admin() {
        return Ok(refused.into_response());
    }
    let account = state.store.account().await?;
    let shards: Vec<u32> = (0..account.shards).collect();
    let waiting = state.store.pending_callbacks(&shards, SHOWN).await?;
    let received = match state.cloud {
        Some(_) => Some(state.store.unmapped_webhooks(SHOWN).await?),
        None => None,
    };
    let now = state.clock.now();
    let url =
        state.settings.get().await.map_err(ApiError::internal)?.1.webhook_url.unwrap_or_default();
    let body = html! {
        p { "Callbacks go to " code { (if url.is_empty() { "(no webhooks.url set)" } else { url.as_str() }) } "." }
        h2 { "Callbacks waiting" }
        @if waiting.is_empty() {
            p.empty { "None: the receiver has taken every callback." }
        } @else {
            table.callbacks {
                thead { tr { th { "Callback" } th { "Message" } th { "Failures" } th { "Last error" } th { "Next attempt" } th {} } }
                tbody {
                    @for c in &waiting {
                        tr data-callback=(c.seq) {
                            td { (c.seq) @if c.inbound { " (customer's message)" } }
                            td.id {
                                @if c.inbound { (c.message_id) }
                                @else { a href=(href(&state, &format!("/messages/{}", c.message_id))) { (c.message_id) } }
                            }
                            td.failures { (c.failures) }
                            td.error { (c.last_error.as_deref().unwrap_or("–")) }
                            td { @if c.next_attempt_at <= now { "due now" } @else { (c.next_attempt_at.utc()) " UTC" } }
                            td {
                                form method="post" action=(href(&state, &format!("/webhooks/callbacks/{}/retry", c.seq))) {
                                    input type="hidden" name="csrf" value=(session.csrf);
                                    button type="submit" { "Retry now" }
                                }
                            }
                        }
                    }
                }
            }
        }
        @if let Some(received) = &received {
            h2 { "Received from Meta, not all mapped" }
            @if received.is_empty() {
                p.empty { "None: every webhook Meta sent was mapped." }
            } @else {
                table.received {
                    thead { tr { th { "Webhook" } th { "Received" } th { "What was not mapped" } th {} } }
                    tbody {
                        @for w in received {
                            tr {
                                td { (w.id) }
                                td { (w.received_at.utc()) " UTC" }
                                td { pre { (w.unmapped) } }
                                td {
                                    form method="post" action=(href(&state, &format!("/webhooks/received/{}/process", w.id))) {
                                        input type="hidden" name="csrf" value=(session.csrf);
                                        button type="submit" { "Process again" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(page(&state, &session, "Webhooks", &body).into_response())
}

#[derive(Debug, Deserialize)]
struct Csrf {
    #[serde(default)]
    csrf: String,
}

/// Makes a waiting callback due now; the dispatcher delivers it on its next round.
async fn retry(
    State(state): State<AppState>,
    session: Session,
    Path(seq): Path<i64>,
    Form(form): Form<Csrf>,
) -> Result<Response, ApiError> {
    if let Err(refused) = session.admin().and_then(|()| session.check(&form.csrf)) {
        return Ok(refused.into_response());
    }
    if state.store.retry_callback(seq, state.clock.now()).await? {
        tracing::info!(callback = seq, by = %session.caller.username, "console: callback retried now");
    }
    Ok(to(&state, "/webhooks"))
}

async fn process(
    State(state): State<AppState>,
    session: Session,
    Path(id): Path<i64>,
    Form(form): Form<Csrf>,
) -> Result<Response, ApiError> {
    if let Err(refused) = session.admin().and_then(|()| session.check(&form.csrf)) {
        return Ok(refused.into_response());
    }
    let left = crate::http::webhook::process_again_kept(&state, id).await?;
    tracing::info!(webhook = id, unmapped = left, by = %session.caller.username, "console: kept webhook processed again");
    Ok(to(&state, "/webhooks"))
}
