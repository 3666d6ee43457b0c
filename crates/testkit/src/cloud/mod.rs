//! A fake of Meta's WhatsApp Cloud API, for Premise's tests and benchmark: a real HTTP server on
//! loopback that answers the calls Premise makes as Cloud does, and checks every request it
//! receives against Meta's own description of the API ([`schema`]), so the fake cannot drift
//! from it. What it received, and what it found invalid, is there to assert on.
//!
//! - `POST /{version}/{phone-number-id}/messages`: a send (answered with a new `wamid`) or a read
//!   receipt (`{"success":true}`).
//! - `POST /{version}/{phone-number-id}/media`: a multipart upload; answers the media's id.
//! - `GET /{version}/{media-id}`: a media's URL (with its type, hash and size);
//!   `GET /download/{media-id}`: its bytes, with the token.
//! - `GET /{version}/{phone-number-id}`: the number's name and quality rating.
//!
//! Every call needs `Authorization: Bearer <token>`; another token is refused as an expired one
//! (190). The control surface (methods of [`FakeCloud`]) injects faults into sends (429 with
//! `Retry-After`, 131056, 130429, 190, 131026, 5xx, slow answers), for every recipient or one,
//! and sends signed webhooks to Premise ([`webhooks`]): statuses of what it accepted, by itself
//! if asked, and customers' messages.

pub mod schema;
pub mod webhooks;

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Multipart, Path, State};
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use tokio::task::JoinHandle;

pub use webhooks::AutoStatuses;

/// The phone number id, token and app secret the fake expects by default.
pub const PHONE_NUMBER_ID: &str = "106540352242922";
pub const ACCESS_TOKEN: &str = "fake-cloud-system-user-token";
pub const APP_SECRET: &str = "fake-cloud-app-secret";
pub const VERIFY_TOKEN: &str = "fake-cloud-verify-token";

/// How a send is answered instead of being accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// An HTTP status with Cloud's error object for `code`, and `Retry-After` if given.
    Cloud { http: u16, code: i64, title: String, details: String, retry_after: Option<u64> },
    /// An HTTP status with a body that is not Cloud's (a proxy's error page).
    Bare { http: u16 },
    /// The send is accepted, after this long.
    Slow(Duration),
}

impl Fault {
    /// 429, 130429 (the number's rate limit), `Retry-After: seconds`.
    pub fn rate_limited(retry_after_secs: u64) -> Self {
        Self::cloud(429, 130429, "Rate limit hit", "Cloud API message throughput has been reached.")
            .retry_after(retry_after_secs)
    }

    /// 131056: too many messages to one recipient in a short time.
    pub fn pair_rate_limited() -> Self {
        Self::cloud(
            400,
            131056,
            "(Business Account, Consumer Account) pair rate limit hit",
            "Too many messages sent from the sender phone number to the same recipient phone number in a short period of time.",
        )
    }

    /// 190: the access token expired.
    pub fn token_expired() -> Self {
        Self::cloud(401, 190, "Error validating access token: Session has expired", "")
    }

    /// 131026: the recipient cannot receive it.
    pub fn undeliverable() -> Self {
        Self::cloud(400, 131026, "Message Undeliverable", "Message Undeliverable.")
    }

    /// 500 with 131000.
    pub fn server_error() -> Self {
        Self::cloud(500, 131000, "Something went wrong", "Something went wrong.")
    }

    pub fn cloud(http: u16, code: i64, title: &str, details: &str) -> Self {
        Self::Cloud {
            http,
            code,
            title: title.to_owned(),
            details: details.to_owned(),
            retry_after: None,
        }
    }

    #[must_use]
    pub fn retry_after(self, secs: u64) -> Self {
        match self {
            Self::Cloud { http, code, title, details, .. } => {
                Self::Cloud { http, code, title, details, retry_after: Some(secs) }
            }
            other => other,
        }
    }
}

/// A send the fake accepted.
#[derive(Debug, Clone)]
pub struct Accepted {
    pub wamid: String,
    pub to: String,
    pub body: Value,
    pub at: Instant,
}

/// A send answered, accepted or not.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub to: String,
    /// The `wamid` given, or the error code answered.
    pub outcome: Result<String, i64>,
    pub at: Instant,
}

/// A request the description does not allow.
#[derive(Debug, Clone)]
pub struct Invalid {
    pub path: String,
    pub body: String,
    pub errors: Vec<String>,
}

/// Uploaded or customer media the fake holds.
#[derive(Debug, Clone)]
pub struct StoredMedia {
    pub bytes: Vec<u8>,
    pub mime_type: String,
}

#[derive(Debug, Default)]
struct Books {
    token: String,
    latency: Duration,
    accepted: Vec<Accepted>,
    /// Every send answered (accepted or not), in order.
    attempts: Vec<Attempt>,
    read_receipts: Vec<String>,
    /// The read receipts that asked for a typing indicator, by message id.
    typing_indicators: Vec<String>,
    invalid: Vec<Invalid>,
    media: HashMap<String, StoredMedia>,
    uploads: Vec<String>,
    expired_media: HashSet<String>,
    downloads: u64,
    media_lookups: u64,
    phone_lookups: u64,
    faults: VecDeque<Fault>,
    recipient_faults: HashMap<String, VecDeque<Fault>>,
    next_id: u64,
}

#[derive(Debug)]
struct Inner {
    phone_number_id: String,
    base_url: String,
    state: Mutex<Books>,
    webhooks: webhooks::Sender,
}

/// The fake, serving until dropped.
#[derive(Debug)]
pub struct FakeCloud {
    inner: Arc<Inner>,
    addr: SocketAddr,
    server: JoinHandle<()>,
}

impl Drop for FakeCloud {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl FakeCloud {
    /// Starts a fake on 127.0.0.1 with the default phone number id and token, sending no
    /// webhooks until [`FakeCloud::send_webhooks_to`].
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind the fake");
        let addr = listener.local_addr().expect("the fake's address");
        // Build the validators before the first request, not during it.
        let _ = schema::schemas();
        let inner = Arc::new(Inner {
            phone_number_id: PHONE_NUMBER_ID.to_owned(),
            base_url: format!("http://{addr}"),
            state: Mutex::new(Books { token: ACCESS_TOKEN.to_owned(), ..Books::default() }),
            webhooks: webhooks::Sender::new(APP_SECRET),
        });
        let app = Router::new()
            .route("/{version}/{id}/messages", post(messages))
            .route("/{version}/{id}/media", post(upload))
            .route("/{version}/{id}", get(lookup))
            .route("/download/{id}", get(download))
            .with_state(inner.clone());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { inner, addr, server }
    }

    /// What to set `cloud.base_url` to.
    pub fn base_url(&self) -> String {
        self.inner.base_url.clone()
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    fn state(&self) -> std::sync::MutexGuard<'_, Books> {
        self.inner.state.lock().expect("the fake's state")
    }

    /// Where its webhooks go (Premise's `/cloud/webhook`), and which statuses it sends there
    /// by itself for every send it accepts.
    pub fn send_webhooks_to(&self, url: &str, auto: AutoStatuses) {
        self.inner.webhooks.configure(url, auto);
    }

    /// The webhook sender: signed statuses and customers' messages, on demand.
    pub fn webhooks(&self) -> &webhooks::Sender {
        &self.inner.webhooks
    }

    /// The token it accepts from now on (another is refused with 190).
    pub fn accept_token(&self, token: &str) {
        token.clone_into(&mut self.state().token);
    }

    /// Every answer is delayed this long.
    pub fn set_latency(&self, latency: Duration) {
        self.state().latency = latency;
    }

    /// The next sends, whoever they are for, get these faults, one each, in order.
    pub fn fail_next(&self, faults: impl IntoIterator<Item = Fault>) {
        self.state().faults.extend(faults);
    }

    /// The next sends to `to` get these faults, one each, in order.
    pub fn fail_recipient(&self, to: &str, faults: impl IntoIterator<Item = Fault>) {
        self.state().recipient_faults.entry(to.to_owned()).or_default().extend(faults);
    }

    /// Cloud forgets an uploaded media id (as after 30 days).
    pub fn expire_media(&self, id: &str) {
        self.state().expired_media.insert(id.to_owned());
    }

    /// Media a customer sent, to be downloaded: its Cloud id.
    pub fn add_customer_media(&self, bytes: &[u8], mime_type: &str) -> String {
        let mut state = self.state();
        state.next_id += 1;
        let id = format!("{}", 9_000_000_000_000_000u64 + state.next_id);
        state.media.insert(
            id.clone(),
            StoredMedia { bytes: bytes.to_vec(), mime_type: mime_type.to_owned() },
        );
        id
    }

    pub fn accepted(&self) -> Vec<Accepted> {
        self.state().accepted.clone()
    }

    pub fn accepted_count(&self) -> usize {
        self.state().accepted.len()
    }

    /// Every send answered, in order.
    pub fn attempts(&self) -> Vec<Attempt> {
        self.state().attempts.clone()
    }

    pub fn read_receipts(&self) -> Vec<String> {
        self.state().read_receipts.clone()
    }

    /// The read receipts that asked for a typing indicator, by message id.
    pub fn typing_indicators(&self) -> Vec<String> {
        self.state().typing_indicators.clone()
    }

    /// Requests the description does not allow. Tests assert this stays empty.
    pub fn invalid(&self) -> Vec<Invalid> {
        self.state().invalid.clone()
    }

    /// Media uploaded to it, by id, in upload order.
    pub fn uploads(&self) -> Vec<(String, StoredMedia)> {
        let state = self.state();
        state.uploads.iter().map(|id| (id.clone(), state.media[id].clone())).collect()
    }

    pub fn downloads(&self) -> u64 {
        self.state().downloads
    }

    /// `GET /{media-id}` calls.
    pub fn media_lookups(&self) -> u64 {
        self.state().media_lookups
    }

    pub fn phone_lookups(&self) -> u64 {
        self.state().phone_lookups
    }
}

/// Cloud's error object.
fn cloud_error(
    http: u16,
    code: i64,
    title: &str,
    details: &str,
    retry_after: Option<u64>,
) -> Response {
    let mut error = json!({
        "message": format!("(#{code}) {title}"),
        "type": "OAuthException",
        "code": code,
        "fbtrace_id": "AFakeTraceId",
    });
    if !details.is_empty() {
        error["error_data"] = json!({ "messaging_product": "whatsapp", "details": details });
    }
    let status = StatusCode::from_u16(http).unwrap_or(StatusCode::BAD_REQUEST);
    let mut response = (status, axum::Json(json!({ "error": error }))).into_response();
    if let Some(secs) = retry_after {
        response.headers_mut().insert(RETRY_AFTER, secs.to_string().parse().expect("a header"));
    }
    response
}

impl Inner {
    fn state(&self) -> std::sync::MutexGuard<'_, Books> {
        self.state.lock().expect("the fake's state")
    }

    /// `None` if the bearer token is the one accepted; the refusal otherwise.
    fn refuse_token(&self, headers: &HeaderMap) -> Option<Response> {
        let given = headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        let expected = self.state().token.clone();
        (given != Some(expected.as_str())).then(|| {
            cloud_error(401, 190, "Error validating access token: Session has expired", "", None)
        })
    }

    fn invalid(&self, path: &str, body: String, errors: &[String]) -> Response {
        tracing::warn!(path, ?errors, "the fake Cloud API received an invalid request");
        self.state().invalid.push(Invalid { path: path.to_owned(), body, errors: errors.to_vec() });
        cloud_error(400, 100, "Invalid parameter", &errors.join("; "), None)
    }

    async fn latency(&self) {
        let latency = self.state().latency;
        if !latency.is_zero() {
            tokio::time::sleep(latency).await;
        }
    }
}

async fn messages(
    State(inner): State<Arc<Inner>>,
    Path((version, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    inner.latency().await;
    let path = format!("/{version}/{id}/messages");
    if id != inner.phone_number_id {
        return cloud_error(400, 100, "Unsupported post request", "unknown phone number id", None);
    }
    if let Some(refusal) = inner.refuse_token(&headers) {
        return refusal;
    }
    let Ok(request) = serde_json::from_slice::<Value>(&body) else {
        return inner.invalid(
            &path,
            String::from_utf8_lossy(&body).into_owned(),
            &["not JSON".into()],
        );
    };
    let errors = schema::schemas().check_send(&request);
    if !errors.is_empty() {
        return inner.invalid(&path, request.to_string(), &errors);
    }
    if request.get("status").is_some() {
        let id = request["message_id"].as_str().unwrap_or_default().to_owned();
        let mut state = inner.state();
        if request.get("typing_indicator").is_some() {
            state.typing_indicators.push(id.clone());
        }
        state.read_receipts.push(id);
        drop(state);
        return axum::Json(json!({ "success": true })).into_response();
    }
    // A phone number in `to`, or a business-scoped user id in `recipient` (`to` wins if both).
    let to = request["to"]
        .as_str()
        .or_else(|| request["recipient"].as_str())
        .unwrap_or_default()
        .to_owned();
    let by_phone = request.get("to").is_some();
    let fault = {
        let mut state = inner.state();
        let own = state.recipient_faults.get_mut(&to).and_then(VecDeque::pop_front);
        own.or_else(|| state.faults.pop_front())
    };
    match fault {
        Some(Fault::Slow(delay)) => tokio::time::sleep(delay).await,
        Some(Fault::Cloud { http, code, title, details, retry_after }) => {
            inner.state().attempts.push(Attempt { to, outcome: Err(code), at: Instant::now() });
            return cloud_error(http, code, &title, &details, retry_after);
        }
        Some(Fault::Bare { http }) => {
            inner.state().attempts.push(Attempt {
                to,
                outcome: Err(i64::from(http)),
                at: Instant::now(),
            });
            let status = StatusCode::from_u16(http).unwrap_or(StatusCode::BAD_GATEWAY);
            return (status, [(CONTENT_TYPE, "text/html")], "<html>Bad gateway</html>")
                .into_response();
        }
        None => {}
    }
    if let Some(unknown) = unknown_media(&inner, &request) {
        return cloud_error(
            400,
            131053,
            "Media upload error",
            &format!("Unknown or expired media id {unknown}: no such media"),
            None,
        );
    }
    let wamid = {
        let mut state = inner.state();
        state.next_id += 1;
        let wamid = format!("wamid.FAKE{:020}", state.next_id);
        state.accepted.push(Accepted {
            wamid: wamid.clone(),
            to: to.clone(),
            body: request,
            at: Instant::now(),
        });
        state.attempts.push(Attempt {
            to: to.clone(),
            outcome: Ok(wamid.clone()),
            at: Instant::now(),
        });
        wamid
    };
    inner.webhooks.accepted(&wamid, &to);
    // Since business-scoped user ids, the answer names the customer's (Meta's "Business-scoped
    // user IDs" page): beside the number for a send by number, alone for a send by BSUID.
    let contact = if by_phone {
        json!({ "input": to, "wa_id": to, "user_id": webhooks::user_id_of(&to) })
    } else {
        json!({ "input": to, "user_id": to })
    };
    axum::Json(json!({
        "messaging_product": "whatsapp",
        "contacts": [contact],
        "messages": [{ "id": wamid }],
    }))
    .into_response()
}

/// A media id the send names that the fake does not hold (or has forgotten).
fn unknown_media(inner: &Inner, request: &Value) -> Option<String> {
    let mut ids = Vec::new();
    collect_ids(request, &mut ids);
    let state = inner.state();
    ids.into_iter().find(|id| !state.media.contains_key(id) || state.expired_media.contains(id))
}

fn collect_ids(value: &Value, ids: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, inner) in map {
                if ["image", "audio", "video", "document", "sticker"].contains(&key.as_str())
                    && let Some(id) = inner.get("id").and_then(Value::as_str)
                {
                    ids.push(id.to_owned());
                }
                collect_ids(inner, ids);
            }
        }
        Value::Array(items) => items.iter().for_each(|i| collect_ids(i, ids)),
        _ => {}
    }
}

async fn upload(
    State(inner): State<Arc<Inner>>,
    Path((version, id)): Path<(String, String)>,
    headers: HeaderMap,
    mut form: Multipart,
) -> Response {
    inner.latency().await;
    let path = format!("/{version}/{id}/media");
    if let Some(refusal) = inner.refuse_token(&headers) {
        return refusal;
    }
    let (mut product, mut file, mut errors) = (None, None, Vec::new());
    loop {
        match form.next_field().await {
            Ok(Some(field)) => {
                let name = field.name().unwrap_or_default().to_owned();
                let mime = field.content_type().map(str::to_owned);
                match field.bytes().await {
                    Ok(bytes) => match name.as_str() {
                        "messaging_product" => {
                            product = Some(String::from_utf8_lossy(&bytes).into_owned());
                        }
                        "file" => file = Some((bytes.to_vec(), mime)),
                        // Meta's media guide also sends the file's type as a field of its own.
                        "type" => {}
                        other => errors.push(format!("unexpected form field '{other}'")),
                    },
                    Err(e) => errors.push(format!("field {name}: {e}")),
                }
            }
            Ok(None) => break,
            Err(e) => {
                errors.push(format!("not multipart/form-data: {e}"));
                break;
            }
        }
    }
    if product.as_deref() != Some("whatsapp") {
        errors.push("messaging_product must be whatsapp".into());
    }
    let Some((bytes, Some(mime))) = file else {
        errors.push("a file part with its content type is required".into());
        return inner.invalid(&path, String::new(), &errors);
    };
    if !errors.is_empty() {
        return inner.invalid(&path, String::new(), &errors);
    }
    let mut state = inner.state();
    state.next_id += 1;
    let id = format!("{}", 1_000_000_000_000_000u64 + state.next_id);
    state.media.insert(id.clone(), StoredMedia { bytes, mime_type: mime });
    state.uploads.push(id.clone());
    axum::Json(json!({ "id": id })).into_response()
}

/// `GET /{version}/{id}`: the phone number, or a media's URL.
async fn lookup(
    State(inner): State<Arc<Inner>>,
    Path((_version, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    if id != inner.phone_number_id {
        // Counted on arrival, before the latency: a test can act while the answer is held.
        inner.state().media_lookups += 1;
    }
    inner.latency().await;
    if let Some(refusal) = inner.refuse_token(&headers) {
        return refusal;
    }
    if id == inner.phone_number_id {
        inner.state().phone_lookups += 1;
        return axum::Json(json!({
            "verified_name": "Premise Test Business",
            "display_phone_number": "+1 555-010-0000",
            "quality_rating": "GREEN",
            "id": id,
        }))
        .into_response();
    }
    let state = inner.state();
    match state.media.get(&id).filter(|_| !state.expired_media.contains(&id)) {
        Some(media) => axum::Json(json!({
            "messaging_product": "whatsapp",
            "url": format!("{}/download/{id}", inner.base_url),
            "mime_type": media.mime_type,
            "sha256": webhooks::sha256_hex(&media.bytes),
            "file_size": media.bytes.len().to_string(),
            "id": id,
        }))
        .into_response(),
        None => cloud_error(
            400,
            100,
            "Invalid parameter",
            "Unsupported get request: no such media",
            None,
        ),
    }
}

async fn download(
    State(inner): State<Arc<Inner>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Some(refusal) = inner.refuse_token(&headers) {
        return refusal;
    }
    let mut state = inner.state();
    state.downloads += 1;
    match state.media.get(&id) {
        Some(media) => {
            ([(CONTENT_TYPE, media.mime_type.clone())], media.bytes.clone()).into_response()
        }
        None => StatusCode::NOT_FOUND.into_response(),
    }
}
