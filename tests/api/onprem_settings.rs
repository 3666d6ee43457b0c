//! The rest of On-Premises' settings surface, as its Postman collection and clients call it:
//! compliance info, registration, contacts' identities, the profile photo, media providers,
//! the internal statistics and support information. Admin only where On-Premises was, kept in
//! the database (another replica answers the same), bad input answered with the field at
//! fault and nothing changed.

use std::time::Duration;

use crate::support;
use crate::support::files::{jpeg, webp};
use crate::support::pipeline::wait_for;
use crate::support::{Backend, Server, TestDb, assert_error};
use premise_wire::photo::jpeg_header;
use premise_wire::registration::certificate_for;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

both_backends!(
    the_settings_surface_round_trips_and_refuses_bad_input,
    a_backup_restores_the_settings_only_with_its_password,
    stickerpacks_first_and_third_party,
);

async fn post_bytes(
    server: &Server,
    token: &str,
    path: &str,
    mime: &str,
    bytes: Vec<u8>,
) -> (StatusCode, Value) {
    let request = server
        .http
        .post(server.url(path))
        .bearer_auth(token)
        .header("content-type", mime)
        .body(bytes);
    support::send(request).await
}

fn compliance() -> Value {
    json!({
        "entity_name": "Lucky Shrub Private Limited",
        "entity_type": "Partnership",
        "entity_type_custom": "Limited Liability Partnership",
        "is_registered": "true",
        "customer_care_details": {"email": "care@luckyshrub.example",
            "landline_number": "+913857614343", "mobile_number": "+913854559033"},
        "grievance_officer_details": {"name": "Chandravati P.",
            "email": "chandravati@luckyshrub.example", "mobile_number": "+913854559033"}
    })
}

/// The code the sandbox "sent" to `number`, from the server's log.
async fn code_sent(server: &Server, number: &str) -> String {
    let find = || {
        server
            .logs()
            .lines()
            .rev()
            .find(|l| l.contains("registration code sent") && l.contains(number))
            .and_then(|line| {
                line.split(" code=").nth(1).map(|rest| rest.chars().take(6).collect::<String>())
            })
    };
    wait_for(Duration::from_secs(10), "the registration code in the log", || find().is_some())
        .await;
    find().unwrap()
}

async fn the_settings_surface_round_trips_and_refuses_bad_input(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = Server::start(&db).await;
    let other = Server::start(&db).await;
    let token = server.admin_token().await;

    // Compliance info: empty, then what was set, on another replica too.
    let path = "/v1/settings/business/compliance_info";
    let (status, body) = server.get(path, Some(&token)).await;
    assert_eq!(
        (status, &body["settings"]["business"]["compliance_info"]),
        (StatusCode::OK, &json!({}))
    );
    let (status, body) = server.call(&token, Method::POST, path, Some(compliance())).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, body) = other.get(path, Some(&token)).await;
    let stored = &body["settings"]["business"]["compliance_info"];
    assert_eq!(stored["entity_name"], "Lucky Shrub Private Limited");
    assert_eq!(stored["is_registered"], true);
    assert_eq!(stored["grievance_officer_details"]["mobile_number"], "+913854559033");

    // Registration: a code "sent" to the log, a wrong one refused, the right one registers.
    let cert = certificate_for("Lucky Shrub", 1_234_567);
    let request = json!({"cc": "1", "phone_number": "6315551234", "method": "sms", "cert": cert,
        "pin": "024680"});
    // With two-step verification on, its PIN is asked for.
    let (status, _) = server
        .call(&token, Method::POST, "/v1/settings/account/two-step", Some(json!({"pin": "024680"})))
        .await;
    assert_eq!(status, StatusCode::OK);
    for (pin, code) in [(None, 1008), (Some("135790"), 1009)] {
        let mut without = request.clone();
        match pin {
            None => without.as_object_mut().unwrap().remove("pin"),
            Some(pin) => without.as_object_mut().unwrap().insert("pin".into(), json!(pin)),
        };
        let (status, body) = server.call(&token, Method::POST, "/v1/account", Some(without)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_error(&body, code, "pin");
    }
    let (status, body) =
        server.call(&token, Method::POST, "/v1/account", Some(request.clone())).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["account"], json!([{"vname": "Lucky Shrub"}]));
    let code = code_sent(&server, "16315551234").await;
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let (status, body) =
        other.call(&token, Method::POST, "/v1/account/verify", Some(json!({"code": wrong}))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_error(&body, 1009, "code");
    let (status, body) =
        other.call(&token, Method::POST, "/v1/account/verify", Some(json!({"code": code}))).await;
    assert_eq!(status, StatusCode::CREATED, "another replica verifies: {body}");
    let (status, _) = server.call(&token, Method::POST, "/v1/account", Some(request)).await;
    assert_eq!(status, StatusCode::CREATED, "already registered");
    let (status, body) =
        server.call(&token, Method::POST, "/v1/account/verify", Some(json!({"code": code}))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "no code pending: {body}");

    // A contact's identity: its hash, acknowledged with that hash only.
    let (status, body) = server.get("/v1/contacts/16315550001/identity", Some(&token)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let hash = body["identity"][0]["hash"].as_str().unwrap().to_owned();
    assert!(body["identity"][0]["created_at"].as_i64().unwrap() > 1_700_000_000);
    let (_, again) = other.get("/v1/contacts/16315550001/identity", Some(&token)).await;
    assert_eq!(again["identity"], body["identity"], "the same on every replica");
    let identity = "/v1/contacts/16315550001/identity";
    let (status, body) =
        server.call(&token, Method::PUT, identity, Some(json!({"hash": "nope"}))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_error(&body, 1009, "hash");
    let (status, _) = server.call(&token, Method::PUT, identity, Some(json!({"hash": hash}))).await;
    assert_eq!(status, StatusCode::OK);

    // The profile photo: none, set, served as bytes and as a link, deleted.
    let photo = "/v1/settings/profile/photo";
    let (status, body) = server.get(photo, Some(&token)).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let jpeg = jpeg(640);
    let (status, body) = post_bytes(&server, &token, photo, "image/jpeg", jpeg.clone()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let bytes = other.http.get(other.url(photo)).bearer_auth(&token).send().await.unwrap();
    assert_eq!(bytes.headers()["content-type"], "image/jpeg");
    assert_eq!(bytes.bytes().await.unwrap().to_vec(), jpeg);
    let (status, body) = server.get(&format!("{photo}?format=link"), Some(&token)).await;
    assert_eq!(status, StatusCode::OK);
    let link = body["settings"]["profile"]["photo"]["link"].as_str().unwrap().to_owned();
    let fetched = server.http.get(&link).bearer_auth(&token).send().await.unwrap();
    assert_eq!(fetched.bytes().await.unwrap().to_vec(), jpeg, "the link downloads the photo");
    for (mime, bytes, field) in [
        ("image/jpeg", jpeg_header(191, 640), "photo"),
        ("image/png", jpeg.clone(), "photo"),
        ("image/gif", jpeg.clone(), "Content-Type"),
        ("image/jpeg", vec![0; 5 * 1024 * 1024 + 1], "photo"),
    ] {
        let (status, body) = post_bytes(&server, &token, photo, mime, bytes).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{mime}: {body}");
        assert_error(&body, 1009, field);
    }
    let (status, _) = server.call(&token, Method::DELETE, photo, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(other.get(photo, Some(&token)).await.0, StatusCode::NOT_FOUND);

    // Media providers: added, replaced by name, listed on another replica, deleted.
    let providers = "/v1/settings/application/media/providers";
    let posted = json!([{"name": "cdn", "type": "www", "config": {"bearer": "t1"}}]);
    assert_eq!(server.call(&token, Method::POST, providers, Some(posted)).await.0, StatusCode::OK);
    let posted = json!([{"name": "cdn", "type": "www", "config": {"bearer": "t2"}},
        {"name": "files", "type": "www", "config": {"basic": {"username": "u", "password": "p"}}}]);
    assert_eq!(server.call(&token, Method::POST, providers, Some(posted)).await.0, StatusCode::OK);
    let (_, body) = other.get(providers, Some(&token)).await;
    let listed = &body["settings"]["application"]["media"]["providers"];
    assert_eq!(listed.as_array().unwrap().len(), 2, "{body}");
    // Replaced by name (two, not three); the secrets are write-only, never shown.
    assert_eq!(listed[0]["name"], "cdn");
    assert!(!body.to_string().contains("t2") && !body.to_string().contains("\"p\""), "{body}");
    assert_eq!(listed[1]["config"]["basic"]["username"], "u");
    let image = |provider: &str| {
        json!({"to": "16315550002", "type": "image",
            "image": {"link": "https://cdn.example/a.jpg", "provider": {"name": provider}}})
    };
    let (status, body) =
        server.call(&token, Method::POST, "/v1/messages", Some(image("files"))).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, _) =
        server.call(&token, Method::DELETE, &format!("{providers}/files"), None).await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) =
        server.call(&token, Method::DELETE, &format!("{providers}/files"), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    // The sandbox fetches no links: a provider Premise does not know is no reason to refuse
    // (through the Cloud API such a link goes to Cloud as it is; see tests/api/cloud.rs).
    let (status, body) =
        server.call(&token, Method::POST, "/v1/messages", Some(image("files"))).await;
    assert_eq!(status, StatusCode::CREATED, "a provider no longer configured: {body}");

    // Internal statistics and support information.
    let (status, body) = server.get("/v1/stats/app/internal", Some(&token)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["stats"]["internal_app"].as_object().unwrap().len() == 1, "{body}");
    let (status, body) = server.get("/v1/stats/db/internal", Some(&token)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let tables = body["stats"]["internal_db"]["db_table_rows"]["data"].as_array().unwrap();
    let messages = tables.iter().find(|t| t["labels"]["table"] == "messages").unwrap();
    assert_eq!(messages["value"], 2, "{body}");
    let (status, body) = server.get("/v1/support", Some(&token)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["support"]["registration"]["vname"], "Lucky Shrub");
    assert!(
        body["support"]["nodes"].as_array().unwrap().contains(&body["support"]["node"]),
        "{body}"
    );

    // The first invalid value of each limit: its code and the field it names.
    let mut bad_compliance = compliance();
    bad_compliance["customer_care_details"]["mobile_number"] = json!("913854559033");
    let long = |n: usize| "a".repeat(n);
    let refusals = [
        (path, Method::POST, json!({}), 1008, "entity_name"),
        (path, Method::POST, json!({"entity_name": long(129)}), 1009, "entity_name"),
        (path, Method::POST, bad_compliance, 1009, "customer_care_details.mobile_number"),
        (
            "/v1/account",
            Method::POST,
            json!({"cc": "1", "phone_number": "6315551234", "method": "fax", "cert": cert}),
            1009,
            "method",
        ),
        (
            "/v1/account",
            Method::POST,
            json!({"cc": "1", "phone_number": "6315551234", "method": "sms", "cert": "bm90IGEgY2VydA=="}),
            1009,
            "cert",
        ),
        (
            "/v1/account",
            Method::POST,
            json!({"cc": "1", "method": "sms", "cert": cert}),
            1008,
            "phone_number",
        ),
        ("/v1/account/verify", Method::POST, json!({"code": "12345"}), 1009, "code"),
        ("/v1/contacts/abc/identity", Method::PUT, json!({"hash": "x"}), 1009, "wa_id"),
        ("/v1/contacts/16315550001/identity", Method::PUT, json!({}), 1008, "hash"),
        (
            providers,
            Method::POST,
            json!([{"name": "a b", "type": "www", "config": {"bearer": "t"}}]),
            1009,
            "providers[0].name",
        ),
        (
            providers,
            Method::POST,
            json!([{"name": "a", "type": "s3", "config": {"bearer": "t"}}]),
            1009,
            "providers[0].type",
        ),
        (
            providers,
            Method::POST,
            json!([{"name": "a", "type": "www", "config": {}}]),
            1009,
            "providers[0].config",
        ),
    ];
    for (path, method, body, code, field) in refusals {
        let (status, answer) = server.call(&token, method, path, Some(body.clone())).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path} {body}: {answer}");
        assert_error(&answer, code, field);
    }
    let (_, body) = server.get(providers, Some(&token)).await;
    assert_eq!(
        body["settings"]["application"]["media"]["providers"].as_array().unwrap().len(),
        1,
        "refusals changed nothing"
    );

    // Admin only, as On-Premises: a user's token gets 403.
    let user = server.user_token(&token, "integration", "Integr4tion!pass").await;
    for (method, path, body) in [
        (Method::GET, "/v1/settings/business/compliance_info", None),
        (Method::POST, "/v1/settings/business/compliance_info", Some(compliance())),
        (Method::POST, "/v1/account", Some(json!({}))),
        (Method::POST, "/v1/account/verify", Some(json!({"code": "123456"}))),
        (Method::GET, "/v1/settings/profile/photo", None),
        (Method::DELETE, "/v1/settings/profile/photo", None),
        (Method::GET, providers, None),
        (Method::POST, providers, Some(json!([]))),
        (Method::DELETE, "/v1/settings/application/media/providers/cdn", None),
        (Method::GET, "/v1/stats/app/internal", None),
        (Method::GET, "/v1/stats/db/internal", None),
        (Method::GET, "/v1/support", None),
    ] {
        let (status, answer) = server.call(&user, method.clone(), path, body).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{method} {path}: {answer}");
        assert_eq!(answer["errors"][0]["code"], 1005, "{answer}");
    }
    let (status, _) = post_bytes(&server, &user, photo, "image/jpeg", jpeg).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

async fn a_backup_restores_the_settings_only_with_its_password(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = Server::start(&db).await;
    let token = server.admin_token().await;
    let about = "/v1/settings/profile/about";
    let providers = "/v1/settings/application/media/providers";
    let setup = [
        (Method::PATCH, about, json!({"text": "Before the backup"})),
        (
            Method::POST,
            providers,
            json!([{"name": "cdn", "type": "www", "config": {"bearer": "t"}}]),
        ),
        (
            Method::PATCH,
            "/v1/settings/application",
            json!({"webhooks": {"url": "https://hooks.example/a"}}),
        ),
        (
            Method::POST,
            "/v1/account/shards",
            json!({"cc": "1", "phone_number": "6315551234", "shards": 2}),
        ),
    ];
    for (method, path, body) in setup {
        let (status, answer) = server.call(&token, method, path, Some(body)).await;
        assert!(status.is_success(), "{path}: {answer}");
    }
    let (status, body) = server
        .call(
            &token,
            Method::POST,
            "/v1/settings/backup",
            Some(json!({"password": "s3cret backup"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let data = body["settings"]["data"].as_str().unwrap().to_owned();
    let contents =
        String::from_utf8(premise::backup::open("s3cret backup", &data).unwrap()).unwrap();
    assert!(
        contents.contains("Before the backup") && contents.contains("hooks.example"),
        "{contents}"
    );
    assert!(!contents.contains("argon2") && !contents.contains("admin"), "no accounts: {contents}");

    // Everything changes after the backup.
    let later = [
        (Method::PATCH, about, json!({"text": "After the backup"})),
        (
            Method::POST,
            providers,
            json!([{"name": "late", "type": "www", "config": {"bearer": "t"}}]),
        ),
        (
            Method::PATCH,
            "/v1/settings/application",
            json!({"webhooks": {"url": "https://hooks.example/b"}}),
        ),
        (
            Method::POST,
            "/v1/account/shards",
            json!({"cc": "1", "phone_number": "6315551234", "shards": 4}),
        ),
        (Method::PATCH, "/v1/settings/profile/about", json!({"text": "After the backup"})),
    ];
    for (method, path, body) in later {
        assert!(server.call(&token, method, path, Some(body)).await.0.is_success());
    }
    let state = || async {
        let about =
            server.get(about, Some(&token)).await.1["settings"]["profile"]["about"]["text"].clone();
        let providers = server.get(providers, Some(&token)).await.1["settings"]["application"]["media"]["providers"].clone();
        let webhook =
            server.get("/v1/settings/application", Some(&token)).await.1["settings"]["application"]
                ["webhooks"]["url"]
                .clone();
        let shards =
            server.get("/v1/account/shards", Some(&token)).await.1["account"]["shards"].clone();
        (about, providers.as_array().unwrap().len(), webhook, shards)
    };
    let after = state().await;
    assert_eq!(after, (json!("After the backup"), 2, json!("https://hooks.example/b"), json!(4)));

    // A wrong password, altered data or something else entirely: 400, nothing changed.
    let mut altered = data.clone().into_bytes();
    let middle = altered.len() / 2;
    altered[middle] = if altered[middle] == b'A' { b'B' } else { b'A' };
    let altered = String::from_utf8(altered).unwrap();
    for (body, field) in [
        (json!({"password": "wrong", "data": data}), "password"),
        (json!({"password": "s3cret backup", "data": altered}), "password"),
        (json!({"password": "s3cret backup", "data": "bm90IGEgYmFja3Vw"}), "data"),
        (json!({"password": "s3cret backup"}), "data"),
        (json!({"data": data}), "password"),
    ] {
        let (status, answer) =
            server.call(&token, Method::POST, "/v1/settings/restore", Some(body)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
        assert!(answer["errors"][0]["details"].as_str().unwrap().contains(field), "{answer}");
    }
    assert_eq!(state().await, after, "refused restores changed nothing");

    let (status, body) = server
        .call(
            &token,
            Method::POST,
            "/v1/settings/restore",
            Some(json!({"password": "s3cret backup", "data": data})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        state().await,
        (json!("Before the backup"), 1, json!("https://hooks.example/a"), json!(2))
    );

    let user = server.user_token(&token, "integration", "Integr4tion!pass").await;
    for path in ["/v1/settings/backup", "/v1/settings/restore"] {
        let (status, _) =
            server.call(&user, Method::POST, path, Some(json!({"password": "x"}))).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}");
    }
}

async fn stickerpacks_first_and_third_party(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = Server::start(&db).await;
    let other = Server::start(&db).await;
    let token = server.admin_token().await;

    // First party: listed, read, read only.
    let (status, body) = server.get("/v1/stickerpacks?namespace=whatsapp", Some(&token)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let first = body["stickerpacks"][0]["id"].as_str().unwrap().to_owned();
    let (status, body) = server
        .get(&format!("/v1/stickerpacks/{first}/stickers/0?namespace=whatsapp"), Some(&token))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["stickers"][0]["index"], 0);
    let (status, _) = server
        .call(&token, Method::DELETE, &format!("/v1/stickerpacks/{first}?namespace=whatsapp"), None)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // Third party: a pack, a sticker from an uploaded WebP, each changed and deleted.
    let (status, body) = server
        .call(
            &token,
            Method::POST,
            "/v1/stickerpacks",
            Some(json!({
        "publisher": "Lucky Shrub", "name": "Shrubs",
        "ios_app_store_link": "https://apps.apple.com/app/id123",
        "android_app_store_link": "https://play.google.com/store/apps/details?id=shrub"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let pack = body["stickerpacks"][0]["id"].as_str().unwrap().to_owned();
    let (status, body) = post_bytes(&server, &token, "/v1/media", "image/webp", webp()).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let image = body["media"][0]["id"].as_str().unwrap().to_owned();
    let stickers = format!("/v1/stickerpacks/{pack}/stickers");
    let (status, body) = server
        .call(
            &token,
            Method::POST,
            &stickers,
            Some(json!({"image_data_id": image, "emojis": ["🐥", "😃"]})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let index = body["stickers"][0]["index"].as_u64().unwrap();
    let sticker = format!("{stickers}/{index}");
    let (status, _) =
        other.call(&token, Method::PATCH, &sticker, Some(json!({"emojis": ["🌳"]}))).await;
    assert_eq!(status, StatusCode::OK);
    let (_, body) = server.get(&sticker, Some(&token)).await;
    assert_eq!(
        body["stickers"][0],
        json!({"index": index, "image_data_id": image, "emojis": ["🌳"]})
    );
    let (status, _) = other
        .call(
            &token,
            Method::PATCH,
            &format!("/v1/stickerpacks/{pack}"),
            Some(json!({"name": "Shrubs II"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, body) = server.get("/v1/stickerpacks", Some(&token)).await;
    assert_eq!(body["stickerpacks"][0]["name"], "Shrubs II");
    assert_eq!(body["stickerpacks"][0]["publisher"], "Lucky Shrub");
    // A sticker message may send the pack's image.
    let (status, body) = server
        .call(
            &token,
            Method::POST,
            "/v1/messages",
            Some(json!({"to": "16315550003", "type": "sticker", "sticker": {"id": image}})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    // Bad input: the field at fault; unknown ids 404.
    let (status, body) =
        post_bytes(&server, &token, "/v1/media", "image/jpeg", jpeg_header(512, 512)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let jpeg = body["media"][0]["id"].as_str().unwrap().to_owned();
    for (path, method, body, code, field) in [
        ("/v1/stickerpacks".to_owned(), Method::POST, json!({"name": "x"}), 1008, "publisher"),
        (
            "/v1/stickerpacks".to_owned(),
            Method::POST,
            json!({"name": "a".repeat(129), "publisher": "p"}),
            1009,
            "name",
        ),
        (
            "/v1/stickerpacks".to_owned(),
            Method::POST,
            json!({"name": "n", "publisher": "p", "ios_app_store_link": "apps.apple.com"}),
            1009,
            "ios_app_store_link",
        ),
        (
            stickers.clone(),
            Method::POST,
            json!({"image_data_id": image, "emojis": []}),
            1009,
            "emojis",
        ),
        (
            stickers.clone(),
            Method::POST,
            json!({"image_data_id": jpeg, "emojis": ["😃"]}),
            1009,
            "image_data_id",
        ),
        (
            stickers.clone(),
            Method::POST,
            json!({"image_data_id": "nope", "emojis": ["😃"]}),
            1009,
            "image_data_id",
        ),
        (stickers.clone(), Method::POST, json!({"emojis": ["😃"]}), 1008, "image_data_id"),
    ] {
        let (status, answer) = server.call(&token, method, &path, Some(body.clone())).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path} {body}: {answer}");
        assert_error(&answer, code, field);
    }
    assert_eq!(server.get("/v1/stickerpacks/999", Some(&token)).await.0, StatusCode::NOT_FOUND);
    assert_eq!(server.get(&format!("{stickers}/99"), Some(&token)).await.0, StatusCode::NOT_FOUND);

    // Reading is for users too; changing is for admins.
    let user = server.user_token(&token, "integration", "Integr4tion!pass").await;
    assert_eq!(server.get("/v1/stickerpacks", Some(&user)).await.0, StatusCode::OK);
    for (method, path) in
        [(Method::DELETE, sticker.clone()), (Method::DELETE, format!("/v1/stickerpacks/{pack}"))]
    {
        let (status, _) = server.call(&user, method.clone(), &path, None).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{method} {path}");
        assert_eq!(server.call(&token, method, &path, None).await.0, StatusCode::OK);
    }
    let (_, body) = server.get("/v1/stickerpacks", Some(&token)).await;
    assert_eq!(body["stickerpacks"], json!([]));
}

/// The two-step PIN cannot be guessed: after five wrong PINs in a row no PIN is checked for ten
/// minutes (429/1015), the right one included, on every replica; it used to take 40 wrong PINs
/// and then the right one.
#[tokio::test]
async fn wrong_two_step_pins_lock_the_pin() {
    let db = TestDb::new(Backend::Sqlite).await;
    let server = Server::start(&db).await;
    let other = Server::start(&db).await;
    let token = server.admin_token().await;
    let (status, _) = server
        .call(&token, Method::POST, "/v1/settings/account/two-step", Some(json!({"pin": "024680"})))
        .await;
    assert_eq!(status, StatusCode::OK);
    let cert = certificate_for("Lucky Shrub", 1_234_567);
    let request = |pin: &str| json!({"cc": "1", "phone_number": "6315551234", "method": "sms", "cert": cert, "pin": pin});
    for guess in 0..5 {
        let replica = if guess % 2 == 0 { &server } else { &other };
        let (status, body) = replica
            .call(&token, Method::POST, "/v1/account", Some(request(&format!("10000{guess}"))))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_error(&body, 1009, "pin");
    }
    for replica in [&server, &other] {
        let (status, body) =
            replica.call(&token, Method::POST, "/v1/account", Some(request("024680"))).await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
        assert_error(&body, 1015, "too many wrong two-step verification PINs");
    }
}
