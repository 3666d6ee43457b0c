//! Health: the gateway's state, the replicas and the shards each holds (as each published with
//! its heartbeat), what waits in the queue and the callback outbox, shard by shard.

use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use maud::{Markup, html};
use premise_engine::StatsSample;
use premise_upstream::Gateway;

use super::{Session, page};
use crate::http::{ApiError, AppState};

pub fn routes() -> Router<AppState> {
    Router::new().route("/console/health", get(show))
}

/// Shards as a short list (`0–3, 7`), or `none`.
fn held(mut shards: Vec<u32>) -> String {
    shards.sort_unstable();
    let mut runs: Vec<(u32, u32)> = Vec::new();
    for s in shards {
        match runs.last_mut() {
            Some((_, end)) if *end + 1 == s => *end = s,
            _ => runs.push((s, s)),
        }
    }
    if runs.is_empty() {
        return "none".to_owned();
    }
    let runs: Vec<String> = runs
        .into_iter()
        .map(|(a, b)| if a == b { a.to_string() } else { format!("{a}–{b}") })
        .collect();
    runs.join(", ")
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
                        @let shards = if *node == me {
                            state.nodes.shards()
                        } else {
                            stats.as_ref().map(|s| s.shards.clone()).unwrap_or_default()
                        };
                        td.shards { (held(shards)) }
                        td { (stats.as_ref().map_or(0, |s| s.messages_sent)) }
                        td { (stats.as_ref().map_or(0, |s| s.messages_failed)) }
                        td { (stats.as_ref().map_or(0, |s| s.callback_posts_ok)) }
                    }
                }
            }
        }
        h2 { "The last minutes" }
        p.empty { "A sample every ten seconds per replica, as each published it with its heartbeat." }
        @for (node, stats) in &replicas {
            @if let Some(stats) = stats.as_ref().filter(|s| s.history.len() > 1) {
                section.charts {
                    h3 { (node) }
                    (chart("messages sent a second", &rates(&stats.history, |s| s.sent)))
                    (chart("callbacks delivered a second", &rates(&stats.history, |s| s.posted)))
                    (chart("queued messages", &levels(&stats.history, |s| s.queued)))
                    (chart("callbacks waiting", &levels(&stats.history, |s| s.callbacks)))
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

/// The rate of a counter between samples, per second, at each sample after the first.
fn rates(history: &[StatsSample], counter: fn(&StatsSample) -> u64) -> Vec<(i64, f64)> {
    history
        .windows(2)
        .map(|w| {
            let seconds = (w[1].at - w[0].at).max(1) as f64;
            (w[1].at, counter(&w[1]).saturating_sub(counter(&w[0])) as f64 / seconds)
        })
        .collect()
}

fn levels(history: &[StatsSample], level: fn(&StatsSample) -> u64) -> Vec<(i64, f64)> {
    history.iter().map(|s| (s.at, level(s) as f64)).collect()
}

/// A small line chart (inline SVG: markup, not script), with its last value and its peak.
fn chart(title: &str, points: &[(i64, f64)]) -> Markup {
    const W: f64 = 300.0;
    const H: f64 = 60.0;
    let (first, last) = (points.first().map_or(0, |p| p.0), points.last().map_or(1, |p| p.0));
    let span = (last - first).max(1) as f64;
    let peak = points.iter().map(|p| p.1).fold(0.0_f64, f64::max);
    let top = if peak > 0.0 { peak } else { 1.0 };
    let line: Vec<String> = points
        .iter()
        .map(|(at, v)| {
            let x = (*at - first) as f64 / span * W;
            let y = H - 2.0 - v / top * (H - 4.0);
            format!("{x:.1},{y:.1}")
        })
        .collect();
    let now = points.last().map_or(0.0, |p| p.1);
    html! {
        figure.chart {
            svg viewBox="0 0 300 60" width="300" height="60" role="img" aria-label=(title) {
                polyline fill="none" stroke="#0b6e4f" stroke-width="2" points=(line.join(" ")) {}
            }
            figcaption { (title) ": " strong { (format!("{now:.0}")) } " now, " (format!("{peak:.0}")) " at most" }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(at: i64, sent: u64, queued: u64) -> StatsSample {
        StatsSample { at, sent, posted: 0, queued, callbacks: 0 }
    }

    #[test]
    fn counters_are_drawn_as_rates_and_levels_as_they_are() {
        let history = [sample(0, 0, 5), sample(10, 100, 0), sample(20, 100, 7)];
        assert_eq!(rates(&history, |s| s.sent), [(10, 10.0), (20, 0.0)]);
        assert_eq!(levels(&history, |s| s.queued), [(0, 5.0), (10, 0.0), (20, 7.0)]);
        let drawn = chart("messages sent a second", &rates(&history, |s| s.sent)).into_string();
        assert!(drawn.contains(r#"points="0.0,2.0 300.0,58.0""#), "{drawn}");
        assert!(drawn.contains("<strong>0</strong> now, 10 at most"), "{drawn}");
        assert!(!drawn.contains("style="), "no inline style: the policy forbids it");
    }

    #[test]
    fn shards_read_as_runs() {
        assert_eq!(held(vec![7, 2, 0, 1, 3]), "0–3, 7");
        assert_eq!(held(vec![5]), "5");
        assert_eq!(held(Vec::new()), "none");
    }
}
