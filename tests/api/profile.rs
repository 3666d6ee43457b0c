//! The account's profile settings as On-Premises had them: the About text, the business profile
//! (a POST changes the fields it names) and two-step verification. Admin only, kept in the
//! database (another replica answers the same), bad input answered with the field at fault.

use crate::support;
use crate::support::{Backend, Server, TestDb, assert_error};
use reqwest::{Method, StatusCode};
use serde_json::json;

both_backends!(profiles_round_trip_and_refuse_bad_input);

async fn profiles_round_trip_and_refuse_bad_input(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = Server::start(&db).await;
    let token = server.admin_token().await;

    // About: empty until set, then what was set, on this replica and on a fresh one.
    let (status, body) = server.get("/v1/settings/profile/about", Some(&token)).await;
    assert_eq!(
        (status, &body["settings"]),
        (StatusCode::OK, &json!({"profile": {"about": {"text": ""}}}))
    );
    let about = "Open 9 to 5 ⏰ — ask us anything";
    let (status, body) = server
        .call(&token, Method::PATCH, "/v1/settings/profile/about", Some(json!({"text": about})))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    support::assert_meta(&body);
    let other = Server::start(&db).await;
    let (_, body) = other.get("/v1/settings/profile/about", Some(&token)).await;
    assert_eq!(body["settings"]["profile"]["about"]["text"], about, "another replica reads it");

    // Business profile: a POST changes the fields it names.
    let (_, body) = server.get("/v1/settings/business/profile", Some(&token)).await;
    assert_eq!(
        body["settings"]["business"]["profile"],
        json!({"address": "", "description": "", "email": "", "vertical": "", "websites": []})
    );
    let full = json!({"address": "1 Hacker Way, Menlo Park", "description": "Bikes and repairs",
        "email": "hello@bikes.example", "vertical": "Shopping and Retail",
        "websites": ["https://bikes.example", "https://www.facebook.com/bikes"]});
    let (status, body) = server
        .call(&token, Method::POST, "/v1/settings/business/profile", Some(full.clone()))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _) = other
        .call(
            &token,
            Method::POST,
            "/v1/settings/business/profile",
            Some(json!({"email": "shop@bikes.example"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, body) = server.get("/v1/settings/business/profile", Some(&token)).await;
    let mut expected = full.clone();
    expected["email"] = json!("shop@bikes.example");
    assert_eq!(body["settings"]["business"]["profile"], expected);

    // The first invalid value of each limit: its code and the field it names; nothing changed.
    let long = |n: usize| "a".repeat(n);
    let refusals = [
        ("/v1/settings/profile/about", Method::PATCH, json!({"text": long(140)}), 1009, "text"),
        ("/v1/settings/profile/about", Method::PATCH, json!({"text": ""}), 1009, "text"),
        ("/v1/settings/profile/about", Method::PATCH, json!({}), 1008, "text"),
        (
            "/v1/settings/business/profile",
            Method::POST,
            json!({"address": long(257)}),
            1009,
            "address",
        ),
        (
            "/v1/settings/business/profile",
            Method::POST,
            json!({"description": long(257)}),
            1009,
            "description",
        ),
        (
            "/v1/settings/business/profile",
            Method::POST,
            json!({"email": format!("{}@b.example", long(119))}),
            1009,
            "email",
        ),
        (
            "/v1/settings/business/profile",
            Method::POST,
            json!({"email": "no-at-sign"}),
            1009,
            "email",
        ),
        (
            "/v1/settings/business/profile",
            Method::POST,
            json!({"vertical": "Bakery"}),
            1009,
            "vertical",
        ),
        ("/v1/settings/business/profile", Method::POST, json!({"vertical": ""}), 1009, "vertical"),
        (
            "/v1/settings/business/profile",
            Method::POST,
            json!({"websites": ["https://a.example", "https://b.example", "https://c.example"]}),
            1009,
            "websites",
        ),
        (
            "/v1/settings/business/profile",
            Method::POST,
            json!({"websites": [format!("https://{}", long(249))]}),
            1009,
            "websites[0]",
        ),
        (
            "/v1/settings/business/profile",
            Method::POST,
            json!({"websites": ["bikes.example"]}),
            1009,
            "websites[0]",
        ),
        ("/v1/settings/account/two-step", Method::POST, json!({"pin": "12345"}), 1009, "pin"),
        ("/v1/settings/account/two-step", Method::POST, json!({"pin": 123456}), 1009, "pin"),
        ("/v1/settings/account/two-step", Method::POST, json!({}), 1008, "pin"),
    ];
    for (path, method, body, code, field) in refusals {
        let (status, answer) = server.call(&token, method, path, Some(body.clone())).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path} {body}: {answer}");
        assert_error(&answer, code, field);
    }
    let (_, body) = server.get("/v1/settings/business/profile", Some(&token)).await;
    assert_eq!(body["settings"]["business"]["profile"], expected, "refusals changed nothing");
    let (status, _) = server
        .call(
            &token,
            Method::POST,
            "/v1/settings/business/profile",
            Some(json!({"email": format!("{}@b.example", long(118))})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "128 characters is the limit, not beyond it");

    // Two-step verification: on and off; the PIN is never shown or stored as given.
    let (status, _) = server
        .call(&token, Method::POST, "/v1/settings/account/two-step", Some(json!({"pin": "024680"})))
        .await;
    assert_eq!(status, StatusCode::OK);
    let stored =
        db.strings("SELECT document FROM account_documents WHERE name = 'account.two_step'").await;
    assert!(stored.len() == 1 && !stored[0].contains("024680"), "{stored:?}");
    // Nor as a plain salted hash, which a copy of the database gives up in a million tries
    // (six digits): it is keyed, with a key the document does not hold.
    let document: serde_json::Value = serde_json::from_str(&stored[0]).unwrap();
    let salt = document["salt"].as_str().unwrap();
    let plain = |pin: &str| -> String {
        use sha2::Digest;
        sha2::Sha256::digest(format!("{salt}:{pin}")).iter().map(|b| format!("{b:02x}")).collect()
    };
    assert!(!stored[0].contains(&plain("024680")), "a plain salted SHA-256: {stored:?}");
    let (status, _) =
        server.call(&token, Method::DELETE, "/v1/settings/account/two-step", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        db.scalar("SELECT COUNT(*) FROM account_documents WHERE name = 'account.two_step'").await,
        0
    );

    // Admin only, as On-Premises: a user's token gets 403.
    let user = server.user_token(&token, "integration", "Integr4tion!pass").await;
    for (method, path, body) in [
        (Method::GET, "/v1/settings/profile/about", None),
        (Method::PATCH, "/v1/settings/profile/about", Some(json!({"text": "x"}))),
        (Method::GET, "/v1/settings/business/profile", None),
        (Method::POST, "/v1/settings/business/profile", Some(json!({"address": "x"}))),
        (Method::POST, "/v1/settings/account/two-step", Some(json!({"pin": "123456"}))),
        (Method::DELETE, "/v1/settings/account/two-step", None),
    ] {
        let (status, answer) = server.call(&user, method.clone(), path, body).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{method} {path}: {answer}");
        assert_eq!(answer["errors"][0]["code"], 1005, "{answer}");
    }
}
