//! Health: the gateway's state, the replicas and the shards each holds, what waits in the
//! queue and the callback outbox, shard by shard.

use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use maud::html;
use premise_upstream::Gateway;

use super::{Session, page};
use crate::http::{ApiError, AppState};

pub fn routes() -> Router<AppState> {
    Router::new().route("/console/health", get(show))
}

async fn show(State(state): State<AppState>, session: Session) -> Result<Response, ApiError> {
    let gateway = state.upstream.gateway();
    let backlog = state.store.backlog().await?;
    let shards = state.store.shard_backlogs().await?;
    let account = state.store.account().await?;
    let me = state.nodes.me().to_owned();
    let replicas = state.nodes.stats();
    let body = html! {
        dl.health {
            dt { "Gateway" }
            dd {
                @match &gateway {
                    Gateway::Connected => span.ok { "connected" },
                    Gateway::Disconnected(why) => span.bad { "disconnected: " (why) },
                }
            }
            dt { "Queued messages" } dd.queued { (backlog.queued) }
            dt { "Callbacks waiting" } dd.callbacks { (backlog.callbacks) }
            dt { "Shards" } dd { (account.shards) " (generation " (account.generation) ")" }
        }
        h2 { "Replicas" }
        table.replicas {
            thead { tr { th { "Replica" } th { "Shards held" } th { "Sent" } th { "Failed" } th { "Callbacks posted" } } }
            tbody {
                @for (node, stats) in &replicas {
                    tr {
                        td { (node) @if *node == me { " (this one)" } }
                        td { @if *node == me { (format!("{:?}", state.nodes.shards())) } @else { "–" } }
                        td { (stats.as_ref().map_or(0, |s| s.messages_sent)) }
                        td { (stats.as_ref().map_or(0, |s| s.messages_failed)) }
                        td { (stats.as_ref().map_or(0, |s| s.callback_posts_ok)) }
                    }
                }
            }
        }
        h2 { "What waits, by shard" }
        @if shards.is_empty() {
            p.empty { "Nothing waits." }
        } @else {
            table.shards {
                thead { tr { th { "Shard" } th { "Queued" } th { "Callbacks" } } }
                tbody { @for s in &shards { tr { td { (s.shard) } td { (s.queued) } td { (s.callbacks) } } } }
            }
        }
    };
    Ok(page(&state, &session, "Health", &body).into_response())
}
