//! Meta's own Postman collection for the On-Premises API (v2.37, copied into
//! `tests/compat/`), every request of every folder, run against the real server on SQLite and
//! on Postgres by a runner written here (no Node needed): each must answer 2xx.
//!
//! The runner does what a person running the collection by hand does: it fills the
//! environment (`{{URL}}`, tokens, ids) and each `<placeholder>` with a realistic value (a
//! real JPEG, WebP or PEM where a file is expected), takes ids from earlier answers (the
//! backup's data, the identity hash, the stickerpack and sticker made, the registration code
//! the sandbox logged), and runs the collection in its order but for two things the order
//! cannot mean: a user logs in once created, and what deletes or logs out runs last (in
//! reverse order), so the requests after it in the folder still have something to read.

use std::collections::HashMap;
use std::time::Duration;

use crate::support;
use crate::support::files::{jpeg, pdf, webp};
use crate::support::pipeline::{Receiver, wait_for};
use crate::support::{Backend, Server, TestDb};
use premise_wire::registration::certificate_for;
use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

both_backends!(every_request_of_metas_postman_collection_succeeds);

const COLLECTION: &str = include_str!("../compat/onprem-postman-v2.37/collection.json");
const ADMIN_NEW_PASSWORD: &str = "N3w-Admin-Passw0rd!";

/// One request of the collection.
#[derive(Debug, Clone)]
struct Request {
    name: String,
    method: Method,
    url: String,
    headers: Vec<(String, String)>,
    basic: Option<(String, String)>,
    body: Body,
}

#[derive(Debug, Clone)]
enum Body {
    None,
    Raw(String),
    File,
}

fn requests(items: &[Value], out: &mut Vec<Request>) {
    for item in items {
        if let Some(inner) = item["item"].as_array() {
            requests(inner, out);
            continue;
        }
        let r = &item["request"];
        let url = r["url"]["raw"].as_str().or(r["url"].as_str()).unwrap().to_owned();
        let headers = r["header"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|h| h["disabled"] != true && !h["key"].as_str().unwrap_or_default().is_empty())
            .map(|h| {
                (h["key"].as_str().unwrap().to_owned(), h["value"].as_str().unwrap().to_owned())
            })
            .collect();
        let basic = (r["auth"]["type"] == "basic").then(|| {
            let field = |k: &str| {
                r["auth"]["basic"].as_array().unwrap().iter().find(|f| f["key"] == k).unwrap()["value"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            };
            (field("username"), field("password"))
        });
        let body = match r["body"]["mode"].as_str() {
            Some("raw") if !r["body"]["raw"].as_str().unwrap().trim().is_empty() => {
                Body::Raw(r["body"]["raw"].as_str().unwrap().to_owned())
            }
            Some("file") if r["method"] == "POST" => Body::File,
            _ => Body::None,
        };
        out.push(Request {
            name: item["name"].as_str().unwrap().to_owned(),
            method: Method::from_bytes(r["method"].as_str().unwrap().as_bytes()).unwrap(),
            url,
            headers,
            basic,
            body,
        });
    }
}

/// The collection's order, but a user logs in once created, and deletes run last (the latest
/// first), then the log-out.
fn plan(mut all: Vec<Request>) -> Vec<Request> {
    let login = all.iter().position(|r| r.name == "Login-User").unwrap();
    let login = all.remove(login);
    let created = all.iter().position(|r| r.name == "Create-User").unwrap();
    all.insert(created + 1, login);
    let (mut logouts, all): (Vec<_>, Vec<_>) =
        all.into_iter().partition(|r| r.name == "Logout-User");
    let (mut deletes, mut plan): (Vec<_>, Vec<_>) =
        all.into_iter().partition(|r| r.method == Method::DELETE);
    deletes.reverse();
    plan.append(&mut deletes);
    plan.append(&mut logouts);
    plan
}

/// Replaces `{{name}}` from `env` and the `<placeholders>` of `fills` found in `text`.
fn fill_text(text: &str, env: &HashMap<String, String>, fills: &HashMap<String, Value>) -> String {
    let mut text = text.to_owned();
    for (name, value) in env {
        text = text.replace(&format!("{{{{{name}}}}}"), value);
    }
    for (placeholder, value) in fills {
        if let Some(value) = value.as_str() {
            text = text.replace(placeholder.as_str(), value);
        }
    }
    text
}

/// Every string of `body` that is a placeholder, replaced by its (typed) value.
fn fill_json(body: &mut Value, fills: &HashMap<String, Value>, unfilled: &mut Vec<String>) {
    match body {
        Value::String(text) => {
            if let Some(value) = fills.get(text.as_str()) {
                *body = value.clone();
            } else if text.starts_with('<') || text.contains(" | ") {
                unfilled.push(text.clone());
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| fill_json(v, fills, unfilled)),
        Value::Object(map) => map.values_mut().for_each(|v| fill_json(v, fills, unfilled)),
        _ => {}
    }
}

/// A private CA and a certificate it signed, as PEM: (bundle of key, certificate and CA; CA).
fn certificates() -> (String, String) {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca.self_signed(&ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .signed_by(&key, &ca, &ca_key)
        .unwrap();
    (format!("{}{}{}", key.serialize_pem(), leaf.pem(), ca.pem()), ca.pem())
}

async fn upload(server: &Server, token: &str, mime: &str, bytes: Vec<u8>) -> String {
    let request = server
        .http
        .post(server.url("/v1/media"))
        .bearer_auth(token)
        .header("content-type", mime)
        .body(bytes);
    let (status, body) = support::send(request).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["media"][0]["id"].as_str().unwrap().to_owned()
}

/// The realistic value of each placeholder the collection uses.
fn fills(receiver: &str, media: &HashMap<&str, String>, inbound: &str) -> HashMap<String, Value> {
    let values = json!({
        "<New Admin Password>": ADMIN_NEW_PASSWORD,
        "<New Password>": "N3w-User-Passw0rd!",
        "<Country Code>": "1",
        "<Phone Number>": "6315551234",
        "<Two-Step PIN>": "123456",
        "1 | 2 | 4 | 8 | 16 | 32": 2,
        "<Webhook URL, https>": receiver,
        "<Provider Name>": "cdn",
        "<Bearer Auth Token>": "cdn-token-123",
        "<Password for Backup>": "backup passphrase 42",
        "<Business Profile Address>": "1 Hacker Way, Menlo Park, CA 94025",
        "<Business Profile Description>": "Bikes, parts and repairs",
        "<Business Profile Email>": "hello@bikes.example",
        "<Business Profile Vertical>": "Shopping and Retail",
        "<Business Entity Name>": "Lucky Shrub Private Limited",
        "<Business Entity Type: 'Limited liability partnership' | 'Sole proprietorship' | 'Partnership' | 'Public Company' | 'Private Company' | 'Other' >": "Partnership",
        "<Use when entity_type is set to 'Other' or 'Partnership' >": "Limited Liability Partnership",
        "true | false": true,
        "<customer care email address>": "care@luckyshrub.example",
        "<customer care landline number>": "+913857614343",
        "<customer care mobile number>": "+913854559033",
        "<grievance officer name>": "Chandravati P.",
        "<grievance officer email address>": "chandravati@luckyshrub.example",
        "<grievance officer landline number>": "+913857614343",
        "<grievance officer mobile number>": "+913854559033",
        "<About Profile>": "Open 9 to 5, ask us anything",
        "<Two-Step Verification PIN>": "123456",
        "<Two-Step Verification PIN": "123456",
        "< sms | voice >": "sms",
        "<Valid Cert from Business Manager>": certificate_for("Lucky Shrub", 4_611_686_018_427_387_904),
        "<false (default) | true>": false,
        "<Message Text>": "Hello from Premise",
        "<Message Text With URL>": "Track your order at https://www.example.com/track/1234",
        "<Message Caption>": "Your receipt",
        "<Media Caption>": "Your new bike",
        "<Media Id, from Media API>": media["image"],
        "<Provider Name from Media Provider API, optional": "cdn",
        "<Link to Image, https>": "https://cdn.example.com/photo.jpg",
        "<Link to Audio, https>": "https://cdn.example.com/voice.ogg",
        "<Link to Video, https>": "https://cdn.example.com/clip.mp4",
        "<Link to PDF, https>": "https://cdn.example.com/receipt.pdf",
        "<Image Link>": "https://cdn.example.com/sticker.webp",
        "<Filename>": "receipt.pdf",
        "<Header List Message>": "Our menu",
        "<List Body Message>": "Pick a dish",
        "<Footer Message>": "Thanks for ordering",
        "<Section 1>": "Mains",
        "<ID 1.1>": "main-1", "<Title 1.1>": "Burger", "<Description 1.1>": "With fries",
        "<ID 1.2>": "main-2", "<Title 1.2>": "Salad", "<Description 1.2>": "With dressing",
        "<ID 2.1>": "side-1", "<Title 2.1>": "Soup", "<Description 2.1>": "Of the day",
        "<ID 2.2>": "side-2", "<Title 2.2>": "Bread", "<Description 2.2>": "Fresh",
        "<Header Text>": "Your order",
        "<Body Text>": "Shall we deliver today?",
        "<Footer Text>": "Reply below",
        "<Button 1 Text>": "yes", "<Button 1>": "Yes",
        "<Button 2 Text>": "no", "<Button 2>": "No",
        "<Button 3 Text>": "later", "<Button 3>": "Later",
        "<Header text>": "Our picks",
        "<Optional Footer Text>": "Prices include tax",
        "<Section 1 Title>": "Bikes", "<Section 2 Title>": "Parts", "<Section 3 Title>": "Tools",
        "<catalog_id to be set>": "1234567890123456",
        "<product_retailer_id_1 to be set>": "sku-1", "<product_retailer_id_2 to be set>": "sku-2",
        "<product_retailer_id_3 to be set>": "sku-3", "<product_retailer_id_4 to be set>": "sku-4",
        "<product_retailer_id_5 to be set>": "sku-5", "<product_retailer_id_6 to be set>": "sku-6",
        "<product_retailer_id to be set>": "sku-1",
        "<Optional Body Text>": "Our best seller",
        "<Message Template Namespace>": "b1b2c3d4_e5f6_4a7b_8c9d_0e1f2a3b4c5d",
        "<Message Template Language Policy>": "deterministic",
        "<Message Template Language Code>": "en_US",
        "<param type>": "text",
        "<param value>": "Jane",
        "<Media HTTPS URL>": "https://cdn.example.com/order.jpg",
        "<Message Text Param>": "Jane",
        "<Param Text>": "Jane",
        "<Developer Defined Dynamic URL suffix>": "order/1234",
        "<Developer Defined payload for quick reply>": "confirm-1234",
        "<Contact's City>": "Menlo Park", "<Contact's Country>": "United States",
        "<Contact's Country Code>": "us", "<Contact's State>": "CA",
        "<Contact's Street>": "1 Hacker Way", "<Contact's Address Type>": "HOME",
        "<Contact's Zip Code>": "94025", "<Contact's Birthday>": "1990-01-31",
        "<Contact's Email>": "jane@example.com", "<Contact's Email Type>": "WORK",
        "<Contact's First Name>": "Jane", "<Contact's Formatted Name>": "Jane Doe",
        "<Contact's Last Name>": "Doe", "<Contact's Company>": "Lucky Shrub",
        "<Contact's Phone Number>": "+1 631 555 1234", "<Contact's Phone Number Type>": "CELL",
        "<Longitude>": -122.148981, "<Latitude>": 37.483307,
        "<Location Name>": "Meta HQ", "<Location's Address>": "1 Hacker Way, Menlo Park, CA 94025",
        "<Sticker Media ID>": media["sticker"],
        "<Message ID from Webhook>": inbound,
        "<Your Publisher Name>": "Lucky Shrub",
        "<Your Sticker Pack Name>": "Shrubs",
        "<Valid iOS App Store Link>": "https://apps.apple.com/app/id1234567890",
        "<Valid Android App Store Link>": "https://play.google.com/store/apps/details?id=com.luckyshrub.stickers",
        "<Sticker Image Media Id>": media["sticker"],
        "<Valid Image Media Id": media["sticker"],
    });
    values.as_object().unwrap().iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}

/// Values that differ from one request to the next although the placeholder is the same:
/// each template its own name (so each is learned as it is), each media message a media of
/// its own kind.
fn overrides(name: &str, media: &HashMap<&str, String>) -> Vec<(&'static str, Value)> {
    let template = |n: &str| vec![("<Message Template Element Name>", json!(n))];
    match name {
        "Send-Message-Template-Text" => template("order_ready"),
        "Send-Message-Template-Media" => template("order_photo"),
        "Send-Message-Template-Call-To-Action" => template("track_order"),
        "Send-Message-Template-Quick-Reply" => template("confirm_visit"),
        "Send-Audio-Message-By-ID" => vec![("<Media Id, from Media API>", json!(media["audio"]))],
        "Send-Video-Message-By-ID" => vec![("<Media Id, from Media API>", json!(media["video"]))],
        "Send-Doc-Message-By-ID" => vec![("<Media Id, from Media API>", json!(media["document"]))],
        _ => Vec::new(),
    }
}

/// The code the sandbox logged for the registration of 16315551234.
async fn registration_code(server: &Server) -> String {
    let find =
        || {
            server.logs().lines().rev().find(|l| l.contains("registration code sent")).and_then(
                |l| l.split(" code=").nth(1).map(|c| c.chars().take(6).collect::<String>()),
            )
        };
    wait_for(Duration::from_secs(10), "the registration code in the log", || find().is_some())
        .await;
    find().unwrap()
}

async fn every_request_of_metas_postman_collection_succeeds(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = Server::start_with(&db, &[("PREMISE_SANDBOX__CHECK_TEMPLATES", "learn")]).await;
    let token = server.admin_token().await;
    let receiver = Receiver::start().await;

    // What a person prepares before running the collection: media to send, a profile photo to
    // read, a customer's message to mark read.
    let mut media = HashMap::new();
    media.insert("image", upload(&server, &token, "image/jpeg", jpeg(640)).await);
    media.insert(
        "audio",
        upload(&server, &token, "audio/ogg", b"OggS\0\x02 a voice note".to_vec()).await,
    );
    media.insert(
        "video",
        upload(&server, &token, "video/mp4", b"\0\0\0\x18ftypmp42 a clip".to_vec()).await,
    );
    media.insert("document", upload(&server, &token, "application/pdf", pdf()).await);
    media.insert("sticker", upload(&server, &token, "image/webp", webp()).await);
    let photo = server
        .http
        .post(server.url("/v1/settings/profile/photo"))
        .bearer_auth(&token)
        .header("content-type", "image/jpeg")
        .body(jpeg(640));
    assert_eq!(support::send(photo).await.0, StatusCode::OK);
    let (status, body) = server
        .send_json(
            Method::POST,
            "/v1/sandbox/inbound",
            Some(&token),
            json!({"from": "16315550000", "type": "text", "text": {"body": "Hi!"}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let inbound = body["messages"][0]["id"].as_str().unwrap().to_owned();

    let mut env: HashMap<String, String> = [
        ("URL", server.base.clone()),
        ("AdminUsername", "admin".to_owned()),
        ("AdminPassword", support::ADMIN_PASSWORD.to_owned()),
        ("AdminAuthToken", token.clone()),
        ("UserUsername", "integration".to_owned()),
        ("UserPassword", "Integr4tion!pass".to_owned()),
        ("UserAuthToken", String::new()),
        ("Recipient-WA-ID", "16315551234".to_owned()),
        ("Test-Media-Id", media["image"].clone()),
        ("Test-1P-Stickerpack-Id", "whatsapp-cuppy".to_owned()),
        ("Test-3P-Stickerpack-Id", String::new()),
        ("Test-Sticker-Index", "0".to_owned()),
        ("Test-Sticker-Media-Id", media["sticker"].clone()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let mut fills = fills(&receiver.url(), &media, &inbound);
    let (bundle, ca) = certificates();

    let collection: Value = serde_json::from_str(COLLECTION).unwrap();
    let mut all = Vec::new();
    requests(collection["item"].as_array().unwrap(), &mut all);
    assert_eq!(all.len(), 93, "every request of the collection");
    let mut failures = Vec::new();
    for request in plan(all) {
        let mut fills_here = fills.clone();
        fills_here
            .extend(overrides(&request.name, &media).into_iter().map(|(k, v)| (k.to_owned(), v)));
        if request.name == "Register-Account" {
            let code = registration_code(&server).await;
            fills_here.insert("<Registration Code Received via SMS/Voice>".to_owned(), json!(code));
        }
        let url = fill_text(&request.url, &env, &fills_here);
        let mut builder = server.http.request(request.method.clone(), &url);
        for (key, value) in &request.headers {
            let value = fill_text(value, &env, &fills_here);
            if !value.contains('<') && !key.eq_ignore_ascii_case("content-length") {
                builder = builder.header(key, value);
            }
        }
        if let Some((user, password)) = &request.basic {
            builder = builder.basic_auth(
                fill_text(user, &env, &fills_here),
                Some(fill_text(password, &env, &fills_here)),
            );
        }
        builder = match &request.body {
            Body::None => builder,
            Body::Raw(raw) => {
                let mut body: Value = serde_json::from_str(&fill_text(raw, &env, &HashMap::new()))
                    .unwrap_or_else(|e| panic!("{}: the body is not JSON: {e}", request.name));
                let mut unfilled = Vec::new();
                fill_json(&mut body, &fills_here, &mut unfilled);
                assert!(unfilled.is_empty(), "{}: no value for {unfilled:?}", request.name);
                builder.body(body.to_string())
            }
            Body::File => builder.body(match request.name.as_str() {
                "Set-Profile-Photo" | "Upload-Media" => jpeg(640),
                "Upload-Certificate" => bundle.clone().into_bytes(),
                "Upload Webhook CA Certificate" => ca.clone().into_bytes(),
                other => panic!("{other}: which file?"),
            }),
        };
        let response = builder.send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        let answer: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if !status.is_success() {
            failures.push(format!("{} {} {url}: {status} {text}", request.name, request.method));
            continue;
        }
        // What a person copies from one answer into the next requests.
        match request.name.as_str() {
            "Login-Admin" => {
                env.insert("AdminAuthToken".into(), support::token_of(&answer));
                env.insert("AdminPassword".into(), ADMIN_NEW_PASSWORD.into());
            }
            "Login-User" => {
                env.insert("UserAuthToken".into(), support::token_of(&answer));
            }
            "Update-User" => {
                env.insert("UserPassword".into(), "N3w-User-Passw0rd!".into());
            }
            "Backup-Settings" => {
                fills.insert(
                    "<Data to Restore, from Backup API>".into(),
                    answer["settings"]["data"].clone(),
                );
            }
            "Contact-Get-Identity" => {
                fills.insert("<identity hash>".into(), answer["identity"][0]["hash"].clone());
            }
            "Upload-Media" => {
                env.insert(
                    "Test-Media-Id".into(),
                    answer["media"][0]["id"].as_str().unwrap().into(),
                );
            }
            "Create-Third-Party-Stickerpacks" => {
                let id = answer["stickerpacks"][0]["id"].as_str().unwrap();
                env.insert("Test-3P-Stickerpack-Id".into(), id.into());
            }
            "Create-Third-Party-Stickers" => {
                let index = answer["stickers"][0]["index"].as_u64().unwrap();
                env.insert("Test-Sticker-Index".into(), index.to_string());
            }
            _ => {}
        }
    }
    assert!(failures.is_empty(), "{} requests failed:\n{}", failures.len(), failures.join("\n"));
}
