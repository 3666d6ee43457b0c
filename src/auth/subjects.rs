//! Token checks, batched like commits. Every authenticated request must learn from the store
//! that its token's account still exists and the token is not revoked (`POST /v1/messages`
//! learns it from the statement that stores its message: `http::auth::Sender`); one query
//! per request would cost a database round trip per request. Concurrent checks are instead
//! gathered: the checker takes everything waiting, asks the store once per distinct token
//! (integrations hold one or a few), and answers every waiter. A check only ever joins a query
//! that starts after it arrived, so a logout or deletion committed before a request is always
//! seen: the answers are exactly those of one query per request.

use std::collections::HashMap;
use std::sync::Arc;

use premise_store::{Store, StoreError, TokenSubject};
use tokio::sync::{mpsc, oneshot};

/// Checks waiting for the checker beyond which requests query the store themselves.
const MAX_WAITING: usize = 10_000;

type Answer = Result<Option<TokenSubject>, Arc<StoreError>>;
type Check = ((String, String), oneshot::Sender<Answer>);

#[derive(Debug, Clone)]
pub struct SubjectChecks {
    store: Arc<dyn Store>,
    tx: mpsc::Sender<Check>,
}

impl SubjectChecks {
    /// Starts the checker; it stops when every handle is dropped.
    pub fn start(store: Arc<dyn Store>) -> Self {
        let (tx, rx) = mpsc::channel(MAX_WAITING);
        tokio::spawn(run(store.clone(), rx));
        Self { store, tx }
    }

    /// What the store says now about token `jti` of `username`.
    pub async fn check(&self, username: &str, jti: &str) -> Answer {
        let (done, answer) = oneshot::channel();
        let key = (username.to_owned(), jti.to_owned());
        if self.tx.try_send((key, done)).is_ok()
            && let Ok(answer) = answer.await
        {
            return answer;
        }
        self.store.token_subject(username, jti).await.map_err(Arc::new)
    }
}

async fn run(store: Arc<dyn Store>, mut rx: mpsc::Receiver<Check>) {
    while let Some(first) = rx.recv().await {
        let mut waiting: HashMap<(String, String), Vec<oneshot::Sender<Answer>>> = HashMap::new();
        let (key, done) = first;
        waiting.entry(key).or_default().push(done);
        while let Ok((key, done)) = rx.try_recv() {
            waiting.entry(key).or_default().push(done);
        }
        for ((username, jti), waiters) in waiting {
            let answer = store.token_subject(&username, &jti).await.map_err(Arc::new);
            for done in waiters {
                let _ = done.send(answer.clone());
            }
        }
    }
}
