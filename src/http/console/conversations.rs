//! Conversations: each customer with the last message between them and the business, and a
//! chat view of both sides (every message type drawn as text, a business message with its
//! live ticks). With the sandbox, a composer writes **as the customer**: a text (as a reply to
//! a message, if chosen), or a tap on a button or a list row of an interactive message; and the
//! sandbox's controls: its clock, the customer's 24-hour window, its test numbers.

use std::collections::BTreeMap;

use axum::Router;
use axum::extract::{Form, Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use maud::{Markup, html};
use premise_base::UnixMs;
use premise_store::{KnownCustomer, MessagePage};
use premise_upstream::sandbox::window::{WINDOW_MS, window_open};
use serde::Deserialize;
use serde_json::{Value, json};

use super::messages::ticks;
use super::{Session, href, page, to};
use crate::http::{ApiError, AppState};

/// Customers listed, and messages of each side a chat view shows.
const SHOWN: u32 = 50;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/console/conversations", get(list))
        .route("/console/conversations/{customer}", get(chat))
        .route("/console/conversations/{customer}/write", post(write))
        .route("/console/conversations/{customer}/upload", post(upload))
        .route("/console/media/{id}", get(media))
        .route("/console/sandbox/clock", post(clock))
}

/// The customers written to or heard from lately, the latest first: (customer, when, what).
async fn customers(state: &AppState) -> Result<Vec<(String, UnixMs, String)>, ApiError> {
    let mut latest: BTreeMap<String, (UnixMs, String)> = BTreeMap::new();
    let page = MessagePage { limit: SHOWN * 4, ..MessagePage::default() };
    for m in state.store.messages_page(&page).await? {
        latest.entry(m.recipient).or_insert((m.accepted_at, format!("→ {}", m.status.as_str())));
    }
    for m in state.store.inbound_page(None, None, SHOWN * 4).await? {
        let said =
            serde_json::from_str::<Value>(&m.payload).map(|p| preview(&p)).unwrap_or_default();
        let entry = latest.entry(m.from).or_insert((m.received_at, format!("← {said}")));
        if m.received_at > entry.0 {
            *entry = (m.received_at, format!("← {said}"));
        }
    }
    let mut all: Vec<(String, UnixMs, String)> =
        latest.into_iter().map(|(who, (at, what))| (who, at, what)).collect();
    all.sort_by_key(|c| std::cmp::Reverse(c.1));
    all.truncate(SHOWN as usize);
    Ok(all)
}

async fn list(State(state): State<AppState>, session: Session) -> Result<Response, ApiError> {
    let customers = customers(&state).await?;
    let mut known = BTreeMap::new();
    for (who, ..) in &customers {
        if let Some(customer) = state.store.customer(who).await? {
            known.insert(who.clone(), customer);
        }
    }
    let body = html! {
        @if customers.is_empty() {
            p.empty { "No conversation yet: messages sent, or written by customers, appear here." }
        } @else {
            ul.conversations {
                @for (who, at, what) in &customers {
                    li {
                        a href=(href(&state, &format!("/conversations/{who}"))) { strong { (who) } }
                        @if let Some(customer) = known.get(who) { " " (identity(customer, who)) }
                        " " span.when { (at.utc()) } br; span.preview { (what) }
                    }
                }
            }
        }
        @if state.sandbox.is_some() { (test_numbers(&state)) }
    };
    Ok(page(&state, &session, "Conversations", &body).into_response())
}

/// The sandbox's test numbers, each a conversation to open.
fn test_numbers(state: &AppState) -> Markup {
    let numbers = [
        ("16505550100", "sent, delivered, read"),
        ("16505550101", "sent, delivered, never read"),
        ("16505550102", "sent only (offline)"),
        ("16505550103", "failed 1026"),
        ("16505550104", "failed 470"),
        ("16505550105", "failed 471"),
        ("16505550106", "not on WhatsApp"),
    ];
    html! {
        h2 { "Sandbox test numbers" }
        ul.numbers {
            @for (number, outcome) in numbers {
                li { a href=(href(state, &format!("/conversations/{number}"))) { (number) } " " (outcome) }
            }
        }
    }
}

/// One line of what a message says, for a list.
fn preview(message: &Value) -> String {
    let kind = message["type"].as_str().unwrap_or("message");
    let text = message["text"]["body"]
        .as_str()
        .or_else(|| message[kind]["caption"].as_str())
        .or_else(|| message["button"]["text"].as_str())
        .or_else(|| message["interactive"]["button_reply"]["title"].as_str())
        .or_else(|| message["interactive"]["list_reply"]["title"].as_str())
        .or_else(|| message["interactive"]["body"]["text"].as_str());
    let text: String = text.unwrap_or(kind).chars().take(80).collect();
    text
}

/// A message of either side drawn as text (an uploaded image shown, uploaded audio and video
/// playable): its words, what it carries, what it answers.
fn bubble(state: &AppState, message: &Value, quoted: &BTreeMap<String, String>) -> Markup {
    let kind = message["type"].as_str().unwrap_or("text");
    let body = &message[kind];
    html! {
        @if let Some(replied) = message["context"]["id"].as_str() {
            @match quoted.get(replied) {
                Some(said) => blockquote.context { "↪ " (said) },
                None => p.context { "↪ replying to " code { (replied) } },
            }
        }
        @match kind {
            "text" => p { (message["text"]["body"].as_str().unwrap_or_default()) },
            "image" | "video" | "audio" | "voice" | "document" | "sticker" => {
                p.media { "[" (kind) "] "
                    @if let Some(name) = body["filename"].as_str() { (name) " " }
                    @if let Some(link) = body["link"].as_str() { code { (link) } }
                    @else if let Some(id) = body["id"].as_str() { "media " code { (id) } }
                }
                @if let Some(id) = body["id"].as_str() {
                    @let src = href(state, &format!("/media/{id}"));
                    @match kind {
                        "image" | "sticker" => img.preview src=(src) alt=(format!("[{kind}]"));,
                        "video" => video.preview controls preload="metadata" src=(src) {},
                        "audio" | "voice" => audio.preview controls preload="metadata" src=(src) {},
                        _ => {},
                    }
                }
                @if let Some(caption) = body["caption"].as_str() { p { (caption) } }
            },
            "location" => p { "📍 " (body["name"].as_str().unwrap_or_default()) " "
                (body["address"].as_str().unwrap_or_default()) " ("
                (body["latitude"]) ", " (body["longitude"]) ")" },
            "contacts" => p { "👤 " @for c in message["contacts"].as_array().into_iter().flatten() {
                (c["name"]["formatted_name"].as_str().unwrap_or_default()) " " } },
            "template" | "hsm" => p.template { "template " code { (body["name"].as_str()
                .or_else(|| body["element_name"].as_str()).unwrap_or_default()) }
                " (" (body["language"]["code"].as_str().unwrap_or_default()) ")" },
            "reaction" => p { (body["emoji"].as_str().unwrap_or_default()) " to " code { (body["message_id"].as_str().unwrap_or_default()) } },
            "button" => p { "tapped “" (body["text"].as_str().unwrap_or_default()) "”" },
            "interactive" => (interactive(body)),
            other => p { "[" (other) "]" },
        }
    }
}

fn interactive(body: &Value) -> Markup {
    html! {
        @if let Some(reply) = body["button_reply"]["title"].as_str().or_else(|| body["list_reply"]["title"].as_str()) {
            p { "tapped “" (reply) "”" }
        } @else {
            @if let Some(text) = body["body"]["text"].as_str() { p { (text) } }
            ul.choices {
                @for b in body["action"]["buttons"].as_array().into_iter().flatten() {
                    li { "[" (b["reply"]["title"].as_str().unwrap_or_default()) "]" }
                }
                @for section in body["action"]["sections"].as_array().into_iter().flatten() {
                    @for row in section["rows"].as_array().into_iter().flatten() {
                        li { "• " (row["title"].as_str().unwrap_or_default()) }
                    }
                }
            }
        }
    }
}

/// A line of the chat: who, when, the message (and, for the business, its id and status).
struct Line {
    at: UnixMs,
    ours: bool,
    id: String,
    message: Value,
    status: Option<premise_wire::MessageStatus>,
    /// Why it failed, if it did.
    errors: Vec<premise_wire::StatusError>,
    /// A template's text as the sandbox's registry fills it in.
    hydrated: Option<String>,
}

async fn chat(
    State(state): State<AppState>,
    session: Session,
    Path(customer): Path<String>,
) -> Result<Response, ApiError> {
    let mut lines = Vec::new();
    let ours =
        MessagePage { recipient: Some(customer.clone()), limit: SHOWN, ..MessagePage::default() };
    for m in state.store.messages_page(&ours).await? {
        let Some(stored) = state.store.message(&m.id).await? else { continue };
        let message = serde_json::from_str(&stored.payload).unwrap_or(Value::Null);
        let hydrated = match (&state.sandbox, premise_wire::Message::from_stored(&stored.payload)) {
            (Some(world), Ok(sent)) => match &sent.content {
                premise_wire::Content::Template { template } => world.hydrate(template, false).ok(),
                _ => None,
            },
            _ => None,
        };
        let errors = match m.status {
            premise_wire::MessageStatus::Failed => failure(&state, &m.id).await?,
            _ => Vec::new(),
        };
        lines.push(Line {
            at: m.accepted_at,
            ours: true,
            id: m.id,
            message,
            status: Some(m.status),
            errors,
            hydrated,
        });
    }
    for m in state.store.inbound_page(Some(&customer), None, SHOWN).await? {
        let message = serde_json::from_str(&m.payload).unwrap_or(Value::Null);
        lines.push(Line {
            at: m.received_at,
            ours: false,
            id: m.id,
            message,
            status: None,
            errors: Vec::new(),
            hydrated: None,
        });
    }
    lines.sort_by_key(|line| line.at);
    // What each message said, for the replies that quote it.
    let quoted: BTreeMap<String, String> =
        lines.iter().map(|line| (line.id.clone(), preview(&line.message))).collect();
    let known = state.store.customer(&customer).await?;
    let composer = state.sandbox.is_some() && session.is_admin();
    let body = html! {
        @if let Some(known) = &known {
            p.who {
                @if let Some(name) = &known.profile_name { strong { (name) } " · " }
                "Business-scoped user id " code { (known.user_id) }
                @if let Some(number) = &known.wa_id { ", number " (number) }
                @if let Some(name) = &known.username { ", username @" (name) } }
        }
        @if let Some(world) = &state.sandbox {
            @let now = world.clock.now_ms();
            @let open = window_open(world.windows.last_inbound(&customer), now);
            p.sandbox {
                "Sandbox time " (UnixMs(now).utc()) " UTC · 24-hour window "
                @if open { span.ok { "open" } } @else { span.bad { "closed" } }
                @if let Some(last) = world.windows.last_inbound(&customer) {
                    @if open { " until " (UnixMs(last + WINDOW_MS).utc()) " UTC" }
                }
            }
        }
        ol.chat {
            @for line in &lines {
                li class=(if line.ours { "ours" } else { "theirs" }) data-message=[line.status.map(|_| line.id.as_str())] {
                    (bubble(&state, &line.message, &quoted))
                    @if let Some(text) = &line.hydrated { pre.hydrated { (text) } }
                    span.meta { (line.at.utc()) " "
                        @if let Some(status) = line.status { (ticks(status)) }
                        @for e in &line.errors { " " span.error { (e.code) " " (e.title) } }
                    }
                    @if composer && line.ours { (taps(&state, &session, &customer, line)) }
                }
            }
        }
        @if lines.is_empty() { p.empty { "Nothing between this customer and the business yet." } }
        @if composer { (compose(&state, &session, &customer, &lines)) }
    };
    Ok(page(&state, &session, &format!("Conversation with {customer}"), &body).into_response())
}

/// Who a customer listed by `key` is, beyond the key: their profile's name, @username, and
/// their number or business-scoped user id (whichever the key is not).
fn identity(customer: &KnownCustomer, key: &str) -> Markup {
    let other = [customer.wa_id.as_deref(), Some(customer.user_id.as_str())]
        .into_iter()
        .flatten()
        .find(|id| *id != key);
    html! {
        span.identity {
            @if let Some(name) = &customer.profile_name { (name) " " }
            @if let Some(username) = &customer.username { "@" (username) " " }
            @if let Some(other) = other { code { (other) } }
        }
    }
}

/// Why message `id` failed: the errors its failure came with.
async fn failure(state: &AppState, id: &str) -> Result<Vec<premise_wire::StatusError>, ApiError> {
    let history = state.store.message_history(id).await?.unwrap_or_default();
    Ok(super::messages::errors_of(&history))
}

/// A form per button and list row of a business's interactive message: tapping it as the
/// customer.
fn taps(state: &AppState, session: &Session, customer: &str, line: &Line) -> Markup {
    let action = &line.message["interactive"]["action"];
    let buttons = action["buttons"].as_array().into_iter().flatten().map(|b| {
        (
            "button",
            b["reply"]["id"].as_str().unwrap_or_default(),
            b["reply"]["title"].as_str().unwrap_or_default(),
        )
    });
    let rows = action["sections"].as_array().into_iter().flatten().flat_map(|s| {
        s["rows"].as_array().into_iter().flatten().map(|r| {
            ("list", r["id"].as_str().unwrap_or_default(), r["title"].as_str().unwrap_or_default())
        })
    });
    html! {
        @for emoji in ["👍", "❤️", "😂"] {
            form.tap method="post" action=(href(state, &format!("/conversations/{customer}/write"))) {
                input type="hidden" name="csrf" value=(session.csrf);
                input type="hidden" name="kind" value="reaction";
                input type="hidden" name="emoji" value=(emoji);
                input type="hidden" name="reply_to" value=(line.id);
                button type="submit" title="React as the customer" { (emoji) }
            }
        }
        @for (kind, id, title) in buttons.chain(rows) {
            form.tap method="post" action=(href(state, &format!("/conversations/{customer}/write"))) {
                input type="hidden" name="csrf" value=(session.csrf);
                input type="hidden" name="kind" value=(kind);
                input type="hidden" name="choice_id" value=(id);
                input type="hidden" name="choice_title" value=(title);
                input type="hidden" name="reply_to" value=(line.id);
                button type="submit" { "Tap “" (title) "” as the customer" }
            }
        }
    }
}

fn compose(state: &AppState, session: &Session, customer: &str, lines: &[Line]) -> Markup {
    html! {
        form.compose method="post" action=(href(state, &format!("/conversations/{customer}/write"))) {
            input type="hidden" name="csrf" value=(session.csrf);
            input type="hidden" name="kind" value="text";
            label { "Write as the customer" textarea name="text" rows="2" required {} }
            label { "In reply to"
                select name="reply_to" {
                    option value="" { "(no message)" }
                    @for line in lines.iter().rev().take(20) {
                        option value=(line.id) { (if line.ours { "business: " } else { "customer: " }) (preview(&line.message)) }
                    }
                }
            }
            button type="submit" { "Send as the customer" }
        }
        form.compose method="post" enctype="multipart/form-data" action=(href(state, &format!("/conversations/{customer}/upload"))) {
            input type="hidden" name="csrf" value=(session.csrf);
            label { "Send a file as the customer (an image, a video, audio or a document)"
                input type="file" name="file" required; }
            label { "Caption" input name="caption"; }
            button type="submit" { "Send the file as the customer" }
        }
        form.clock method="post" action=(href(state, "/sandbox/clock")) {
            input type="hidden" name="csrf" value=(session.csrf);
            input type="hidden" name="customer" value=(customer);
            button type="submit" name="hours" value="1" { "Sandbox clock +1 h" }
            button type="submit" name="hours" value="24" { "Sandbox clock +24 h" }
        }
    }
}

#[derive(Debug, Deserialize)]
struct Written {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    text: String,
    #[serde(default)]
    reply_to: String,
    #[serde(default)]
    choice_id: String,
    #[serde(default)]
    choice_title: String,
    #[serde(default)]
    emoji: String,
}

/// Injects the customer's message into the sandbox, as `POST /v1/sandbox/inbound` does.
async fn write(
    State(state): State<AppState>,
    session: Session,
    Path(customer): Path<String>,
    Form(form): Form<Written>,
) -> Result<Response, ApiError> {
    if let Err(refused) = session.admin().and_then(|()| session.check(&form.csrf)) {
        return Ok(refused.into_response());
    }
    let mut body = match form.kind.as_str() {
        "button" => json!({"type": "interactive", "interactive": {"type": "button_reply",
            "button_reply": {"id": form.choice_id, "title": form.choice_title}}}),
        "list" => json!({"type": "interactive", "interactive": {"type": "list_reply",
            "list_reply": {"id": form.choice_id, "title": form.choice_title}}}),
        "reaction" => json!({"type": "reaction",
            "reaction": {"message_id": form.reply_to, "emoji": form.emoji}}),
        _ => json!({"type": "text", "text": {"body": form.text}}),
    };
    body["from"] = json!(customer);
    if !form.reply_to.is_empty() && form.kind != "reaction" {
        body["context"] = json!({ "id": form.reply_to });
    }
    let id = crate::http::sandbox::write_as_customer(&state, &body).await?;
    tracing::info!(%id, %customer, by = %session.caller.username, "console: wrote as the customer");
    Ok(to(&state, &format!("/conversations/{customer}")))
}

#[derive(Debug, Deserialize)]
struct Clock {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    hours: i64,
    #[serde(default)]
    customer: String,
}

/// Moves the sandbox's clock forward (every replica's, as `POST /v1/sandbox/clock` does).
async fn clock(
    State(state): State<AppState>,
    session: Session,
    Form(form): Form<Clock>,
) -> Result<Response, ApiError> {
    if let Err(refused) = session.admin().and_then(|()| session.check(&form.csrf)) {
        return Ok(refused.into_response());
    }
    crate::http::sandbox::advance_clock(&state, form.hours.clamp(0, 24 * 30) * 3_600).await?;
    let back = if form.customer.is_empty() {
        "/conversations".to_owned()
    } else {
        format!("/conversations/{}", form.customer)
    };
    Ok(to(&state, &back))
}

/// The types of media shown in the page (raster images, and audio and video the page's own
/// players play): nothing an upload holds runs here. Anything else is offered as a download.
const PLAYABLE: [&str; 10] = [
    "image/jpeg",
    "image/png",
    "image/webp",
    "image/gif",
    "video/mp4",
    "video/3gpp",
    "audio/aac",
    "audio/mp4",
    "audio/mpeg",
    "audio/ogg",
];

/// An uploaded media, for the conversation's previews: shown inline only when it is of a type
/// in [`PLAYABLE`], offered as a download otherwise.
async fn media(
    State(state): State<AppState>,
    _session: Session,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let mut response = crate::http::media::serve(&state, id).await?;
    let kind = response
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let disposition =
        if PLAYABLE.iter().any(|t| kind.starts_with(t)) { "inline" } else { "attachment" };
    response.headers_mut().insert(
        axum::http::header::CONTENT_DISPOSITION,
        axum::http::HeaderValue::from_static(disposition),
    );
    Ok(response)
}

/// A file sent as the customer: stored as an upload, then their message carrying it injected
/// into the sandbox (an image, a video, audio, a sticker or a document, by its type).
async fn upload(
    State(state): State<AppState>,
    session: Session,
    Path(customer): Path<String>,
    mut form: axum::extract::Multipart,
) -> Result<Response, ApiError> {
    use premise_wire::media::{MediaKind, MediaType};

    let bad = |why: String| ApiError::from(premise_wire::Rejection::invalid("file", why));
    let (mut csrf, mut caption, mut stored) = (String::new(), String::new(), None);
    while let Some(mut field) = form.next_field().await.map_err(|e| bad(e.to_string()))? {
        match field.name().unwrap_or_default() {
            "csrf" => csrf = field.text().await.map_err(|e| bad(e.to_string()))?,
            "caption" => caption = field.text().await.map_err(|e| bad(e.to_string()))?,
            "file" => {
                if let Err(refused) = session.admin().and_then(|()| session.check(&csrf)) {
                    return Ok(refused.into_response());
                }
                let media_type = MediaType::parse(field.content_type())?;
                let filename = field.file_name().map(str::to_owned);
                let mut upload = crate::http::media::Upload::new(
                    state.store.clone(),
                    media_type.clone(),
                    state.clock.clone(),
                );
                while let Some(chunk) = field.chunk().await.map_err(|e| bad(e.to_string()))? {
                    upload.write(&chunk).await?;
                }
                stored = Some((upload.finish().await?, media_type.kind(), filename));
            }
            _ => {}
        }
    }
    let Some((id, kind, filename)) = stored else {
        return Err(premise_wire::Rejection::missing("file").into());
    };
    let kind = match kind {
        MediaKind::Image => "image",
        MediaKind::Sticker => "sticker",
        MediaKind::Video => "video",
        MediaKind::Audio => "audio",
        MediaKind::Document => "document",
    };
    let mut carried = json!({ "id": id });
    if !caption.is_empty() && kind != "audio" && kind != "sticker" {
        carried["caption"] = json!(caption);
    }
    if let (Some(name), "document") = (filename, kind) {
        carried["filename"] = json!(name);
    }
    let body = json!({ "from": customer, "type": kind, kind: carried });
    let message = crate::http::sandbox::write_as_customer(&state, &body).await?;
    tracing::info!(id = %message, %customer, media = kind, by = %session.caller.username, "console: sent a file as the customer");
    Ok(to(&state, &format!("/conversations/{customer}")))
}
