//! A person watching the console while the load runs (`--console`): signed in through the
//! login form, the Messages page reloaded every two seconds, Health every two seconds, and the
//! live stream of the statuses of the messages the page shows, followed anew every ten seconds,
//! so the benchmark shows what a console watching costs the message path.

use std::time::Duration;

use anyhow::{Context, bail};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::load::PASSWORD;

/// A watching console; stops with [`Watcher::stop`], answering how many pages and status events
/// it read.
#[derive(Debug)]
pub struct Watcher {
    stop: CancellationToken,
    task: JoinHandle<anyhow::Result<(u64, u64)>>,
}

impl Watcher {
    pub async fn start(base: &str) -> anyhow::Result<Self> {
        let http =
            reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build()?;
        let session = sign_in(&http, base).await?;
        let stop = CancellationToken::new();
        let task = tokio::spawn(watch(http, base.to_owned(), session, stop.clone()));
        Ok(Self { stop, task })
    }

    pub async fn stop(self) -> anyhow::Result<(u64, u64)> {
        self.stop.cancel();
        self.task.await?
    }
}

fn cookie(response: &reqwest::Response, name: &str) -> Option<String> {
    response.headers().get_all("set-cookie").iter().filter_map(|v| v.to_str().ok()).find_map(
        |line| Some(line.strip_prefix(&format!("{name}="))?.split(';').next()?.to_owned()),
    )
}

async fn sign_in(http: &reqwest::Client, base: &str) -> anyhow::Result<String> {
    let form = http.get(format!("{base}/console/login")).send().await?;
    let token = cookie(&form, "premise_console_login").context("no login form token")?;
    let answer = http
        .post(format!("{base}/console/login"))
        .header("cookie", format!("premise_console_login={token}"))
        .form(&[("csrf", token.as_str()), ("username", "admin"), ("password", PASSWORD)])
        .send()
        .await?;
    match cookie(&answer, "premise_console") {
        Some(session) => Ok(session),
        None => bail!("the console refused the sign-in: {}", answer.status()),
    }
}

/// The ids of the messages a page shows.
fn shown(page: &str) -> Vec<String> {
    page.split(r#"data-message=""#)
        .skip(1)
        .filter_map(|rest| rest.split('"').next().map(str::to_owned))
        .collect()
}

async fn watch(
    http: reqwest::Client,
    base: String,
    session: String,
    stop: CancellationToken,
) -> anyhow::Result<(u64, u64)> {
    let cookie = format!("premise_console={session}");
    let (mut pages, mut events) = (0u64, 0u64);
    while !stop.is_cancelled() {
        let page = http
            .get(format!("{base}/console/messages"))
            .header("cookie", &cookie)
            .send()
            .await?
            .text()
            .await?;
        pages += 1;
        let ids = shown(&page).join(",");
        let mut stream = Some(
            http.get(format!("{base}/console/events?ids={ids}"))
                .header("cookie", &cookie)
                .send()
                .await?,
        );
        // Followed for ten seconds (the stream ends sooner when the page showed nothing), the
        // pages reloaded every two, as a browser left open does.
        let follow_until = tokio::time::Instant::now() + Duration::from_secs(10);
        let mut reload = tokio::time::interval(Duration::from_secs(2));
        reload.tick().await;
        loop {
            let next = async {
                match stream.as_mut() {
                    Some(live) => live.chunk().await.ok().flatten(),
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = stop.cancelled() => return Ok((pages, events)),
                () = tokio::time::sleep_until(follow_until) => break,
                chunk = next => match chunk {
                    Some(bytes) => {
                        events += bytes.windows(13).filter(|w| w == b"event: status").count() as u64;
                    }
                    None => stream = None,
                },
                _ = reload.tick() => {
                    for path in ["/console/messages", "/console/health"] {
                        http.get(format!("{base}{path}")).header("cookie", &cookie).send().await?.bytes().await?;
                        pages += 1;
                    }
                }
            }
        }
    }
    Ok((pages, events))
}
