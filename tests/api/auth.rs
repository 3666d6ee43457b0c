//! Login, tokens and accounts, exactly as On-Premises integrations use them, on both backends.

use std::time::Duration;

use crate::support::{
    ADMIN_PASSWORD, Backend, Server, TestDb, assert_error, assert_meta, jwt_payload, token_of,
};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

both_backends!(
    first_login_requires_a_password_change,
    password_rules_are_enforced,
    tokens_expire,
    logout_revokes_only_that_token,
    messages_are_stored_only_with_a_valid_token,
    roles_and_account_management,
    bad_logins_are_rate_limited,
    forged_tokens_are_rejected,
    generated_signing_key_survives_restart,
    tokens_do_not_survive_a_password_change,
);

async fn first_login_requires_a_password_change(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = Server::start(&db).await;

    let (status, body) = server.login("admin", "secret", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_error(&body, 1024, "new_password");
    assert_eq!(body["errors"][0]["title"], "Password Change Required");

    let (status, body) =
        server.login("admin", "secret", Some(json!({"new_password": "short"}))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_error(&body, 1009, "new_password");

    let (status, body) =
        server.login("admin", "wrong", Some(json!({"new_password": ADMIN_PASSWORD}))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "a wrong password cannot change it");
    assert_error(&body, 1005, "Invalid credentials.");

    let (status, body) =
        server.login("admin", "secret", Some(json!({"new_password": ADMIN_PASSWORD}))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_meta(&body);
    let token = token_of(&body);
    assert_eq!(token.split('.').count(), 3, "JWT-shaped");
    let expires_after = body["users"][0]["expires_after"].as_str().unwrap();
    assert_eq!(expires_after.len(), "2018-09-11 12:48:55+00:00".len(), "{expires_after}");
    assert!(
        expires_after.ends_with("+00:00") && expires_after.as_bytes()[10] == b' ',
        "{expires_after}"
    );
    let claims = jwt_payload(&token);
    for claim in ["exp", "iat", "jti", "sub"] {
        assert!(claims.get(claim).is_some(), "claim {claim} missing: {claims}");
    }
    assert_eq!(claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(), 7 * 24 * 3600);

    // The old password is gone; the new one logs in without further ado.
    let (status, body) = server.login("admin", "secret", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_error(&body, 1005, "Invalid credentials.");
    let (status, _) = server.login("admin", ADMIN_PASSWORD, None).await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = server.get("/v1/health", Some(&token)).await;
    assert_eq!((status, &body["health"]["gateway_status"]), (StatusCode::OK, &json!("connected")));

    // Login with an empty JSON body and a Content-Type, as Meta's Postman collection sends it.
    let resp = server
        .http
        .post(server.url("/v1/users/login"))
        .basic_auth("admin", Some(ADMIN_PASSWORD))
        .header("content-type", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
}

async fn password_rules_are_enforced(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = Server::start(&db).await;
    let admin = server.admin_token().await;
    let rules = [
        ("Sh0rt!x", "8 to 64 characters"),
        (&format!("Aa1!{}", "x".repeat(61)) as &str, "8 to 64 characters"),
        ("NoDigits!here", "digit"),
        ("nouppercase1!", "upper-case"),
        ("NOLOWERCASE1!", "lower-case"),
        ("NoSpecial1234", "special character"),
    ];
    for (password, rule) in rules {
        let (status, body) = server
            .send_json(
                Method::POST,
                "/v1/users",
                Some(&admin),
                json!({"username": "carol", "password": password}),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{password}: {body}");
        assert_error(&body, 1009, rule);
        assert_error(&body, 1009, "password");

        let (status, body) =
            server.login("admin", ADMIN_PASSWORD, Some(json!({"new_password": password}))).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{password}: {body}");
        assert_error(&body, 1009, rule);
    }
    // Every special character of the policy counts. (A password change ends the tokens issued
    // before it: each new password logs in for the next token.)
    let mut admin = admin;
    for special in "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~".chars() {
        let password = format!("Passw0rd{special}");
        let (status, body) = server
            .send_json(Method::PUT, "/v1/users/admin", Some(&admin), json!({"password": password}))
            .await;
        assert_eq!(status, StatusCode::OK, "{special}: {body}");
        let (status, body) = server.login("admin", &password, None).await;
        assert_eq!(status, StatusCode::OK, "{special}: {body}");
        admin = token_of(&body);
    }
    let (status, body) = server
        .send_json(Method::POST, "/v1/users", Some(&admin), json!({"username": "carol"}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_error(&body, 1008, "'password'");
    let (status, body) = server
        .send_json(
            Method::POST,
            "/v1/users",
            Some(&admin),
            json!({"username": "ab", "password": "Val1d!pass"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_error(&body, 1009, "username");
}

async fn tokens_expire(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = Server::start_with(&db, &[("PREMISE_AUTH__TOKEN_LIFETIME_SECS", "1")]).await;
    let token = server.admin_token().await;
    let claims = jwt_payload(&token);
    assert_eq!(claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(), 1);
    // Valid until `exp`, refused from then on.
    let exp = claims["exp"].as_i64().unwrap();
    let now =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64();
    tokio::time::sleep(Duration::from_secs_f64((exp as f64 - now + 0.2).max(0.0))).await;
    let (status, body) = server.get("/v1/users/admin", Some(&token)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_error(&body, 1005, "Invalid credentials.");
}

async fn logout_revokes_only_that_token(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = Server::start(&db).await;
    let first = server.admin_token().await;
    let second = server.admin_token().await;

    let resp =
        server.http.post(server.url("/v1/users/logout")).bearer_auth(&first).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_meta(&resp.json::<Value>().await.unwrap());

    let (status, body) = server.get("/v1/users/admin", Some(&first)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_error(&body, 1005, "Invalid credentials.");
    let resp =
        server.http.post(server.url("/v1/users/logout")).bearer_auth(&first).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "a revoked token cannot log out again");
    let (status, _) = server.get("/v1/users/admin", Some(&second)).await;
    assert_eq!(status, StatusCode::OK, "other tokens of the same user stay valid");
}

/// `POST /v1/messages` checks its token in the statement that stores the message; what the
/// caller sees is the same as a check on arrival: 401 for a revoked token or a deleted account
/// whatever the body, nothing stored.
async fn messages_are_stored_only_with_a_valid_token(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = Server::start(&db).await;
    let admin = server.admin_token().await;
    let revoked = server.admin_token().await;
    let alice = server.user_token(&admin, "alice", "Alice123!").await;
    let text = json!({"to": "16315551234", "type": "text", "text": {"body": "hi"}});
    let send = |token: &str, body: Value| {
        let token = token.to_owned();
        let server = &server;
        async move { server.send_json(Method::POST, "/v1/messages", Some(&token), body).await }
    };
    assert_eq!(send(&revoked, text.clone()).await.0, StatusCode::CREATED);
    assert_eq!(send(&alice, text.clone()).await.0, StatusCode::CREATED);

    let resp = server.http.post(server.url("/v1/users/logout")).bearer_auth(&revoked).send();
    assert_eq!(resp.await.unwrap().status(), StatusCode::OK);
    let refused = [
        text.clone(),
        json!({"to": "16315551234", "type": "text"}),
        json!({"to": "16315551234", "type": "image", "image": {"id": "no-such-media"}}),
        json!({"to": "16315551234", "type": "template", "template": {"namespace": "ns",
            "name": "unknown", "language": {"policy": "deterministic", "code": "en"}}}),
    ];
    for body in refused {
        let (status, answer) = send(&revoked, body.clone()).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}: {answer}");
        assert_error(&answer, 1005, "Invalid credentials.");
    }
    let resp = server
        .http
        .post(server.url("/v1/messages"))
        .bearer_auth(&revoked)
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "an unreadable body, a revoked token");
    assert_eq!(send(&admin, text.clone()).await.0, StatusCode::CREATED, "other tokens work");

    let resp = server.http.delete(server.url("/v1/users/alice")).bearer_auth(&admin).send();
    assert_eq!(resp.await.unwrap().status(), StatusCode::OK);
    assert_eq!(send(&alice, text.clone()).await.0, StatusCode::UNAUTHORIZED, "account deleted");
    assert_eq!(db.scalar("SELECT COUNT(*) FROM messages").await, 3, "only the valid ones stored");
}

async fn roles_and_account_management(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = Server::start(&db).await;
    let admin = server.admin_token().await;
    let alice = server.user_token(&admin, "alice", "Alice123!").await;

    // A user sees itself, not others, and cannot use admin endpoints.
    let (status, body) = server.get("/v1/users/alice", Some(&alice)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["users"][0], json!({"ROLES": "ROLE_USER", "username": "alice"}));
    let (status, body) = server.get("/v1/users/admin", Some(&alice)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_error(&body, 1005, "");
    let (status, body) = server
        .send_json(
            Method::POST,
            "/v1/users",
            Some(&alice),
            json!({"username": "mallory", "password": "Mall0ry!pw"}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_error(&body, 1005, "admin");
    let resp =
        server.http.delete(server.url("/v1/users/alice")).bearer_auth(&alice).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let (status, _) = server
        .send_json(Method::PUT, "/v1/users/admin", Some(&alice), json!({"password": "Hijack3d!"}))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // A user changes its own password.
    let (status, body) = server
        .send_json(Method::PUT, "/v1/users/alice", Some(&alice), json!({"password": "Alice456!"}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(server.login("alice", "Alice123!", None).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(server.login("alice", "Alice456!", None).await.0, StatusCode::OK);

    // The admin sees everyone; unknown users are 404; duplicates answer as On-Premises did.
    let (status, body) = server.get("/v1/users/admin", Some(&admin)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["users"][0], json!({"ROLES": "ROLE_ADMIN", "username": "admin"}));
    let (status, body) = server.get("/v1/users/nobody", Some(&admin)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_error(&body, 1006, "nobody");
    let (status, body) = server
        .send_json(
            Method::POST,
            "/v1/users",
            Some(&admin),
            json!({"username": "alice", "password": "Alice123!"}),
        )
        .await;
    assert_error(&body, 1014, "Unable to create user. Already exist?");
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);

    // Admins can create admins, which can use admin endpoints.
    let (status, body) = server
        .send_json(
            Method::POST,
            "/v1/users",
            Some(&admin),
            json!({"username": "ops-admin", "password": "0psAdmin!", "ROLES": "ROLE_ADMIN"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (_, body) = server.login("ops-admin", "0psAdmin!", None).await;
    let ops = token_of(&body);
    assert_eq!(server.get("/v1/users/alice", Some(&ops)).await.0, StatusCode::OK);

    // Deleting a user revokes its tokens; re-creating the name does not revive them.
    let resp =
        server.http.delete(server.url("/v1/users/alice")).bearer_auth(&admin).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let (status, body) = server.get("/v1/users/alice", Some(&alice)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_error(&body, 1005, "Invalid credentials.");
    server.user_token(&admin, "alice", "Alice123!").await;
    assert_eq!(server.get("/v1/users/alice", Some(&alice)).await.0, StatusCode::UNAUTHORIZED);
    let resp =
        server.http.delete(server.url("/v1/users/alice")).bearer_auth(&admin).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let resp =
        server.http.delete(server.url("/v1/users/alice")).bearer_auth(&admin).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);

    // `admin` cannot be deleted, not even by another admin.
    let resp =
        server.http.delete(server.url("/v1/users/admin")).bearer_auth(&ops).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    assert_error(&resp.json::<Value>().await.unwrap(), 1005, "admin");
}

async fn bad_logins_are_rate_limited(backend: Backend) {
    let db = TestDb::new(backend).await;
    let env =
        [("PREMISE_AUTH__MAX_FAILED_LOGINS", "3"), ("PREMISE_AUTH__FAILED_LOGIN_WINDOW_SECS", "2")];
    let server = Server::start_with(&db, &env).await;
    server.admin_token().await;
    for _ in 0..3 {
        let (status, body) = server.login("admin", "wrong-password", None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_error(&body, 1005, "Invalid credentials.");
    }
    for password in ["wrong-password", ADMIN_PASSWORD] {
        let (status, body) = server.login("admin", password, None).await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "even the right password waits");
        assert_error(&body, 1015, "Rate limiting exceeded on bad login attempts");
    }
    // Unknown users count as failures too; the window ends and logins work again.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(server.login("admin", ADMIN_PASSWORD, None).await.0, StatusCode::OK);
    assert_eq!(server.login("ghost", "x", None).await.0, StatusCode::UNAUTHORIZED);
}

async fn forged_tokens_are_rejected(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = Server::start(&db).await;
    let good = server.admin_token().await;
    let claims = jwt_payload(&good);

    let other_key = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(b"an attacker's key of thirty-two bytes"),
    )
    .unwrap();
    let payload = good.split('.').nth(1).unwrap();
    let b64 = |s: &str| {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s)
    };
    let alg_none = format!("{}.{payload}.", b64(r#"{"alg":"none","typ":"JWT"}"#));
    let mut tampered_claims = claims.clone();
    tampered_claims["sub"] = json!("someone-else");
    let tampered = format!(
        "{}.{}.{}",
        good.split('.').next().unwrap(),
        b64(&tampered_claims.to_string()),
        good.split('.').nth(2).unwrap()
    );

    for (what, header) in [
        ("other key", format!("Bearer {other_key}")),
        ("alg none", format!("Bearer {alg_none}")),
        ("tampered payload", format!("Bearer {tampered}")),
        ("garbage", "Bearer not-a-token".to_owned()),
        ("empty", "Bearer ".to_owned()),
        ("basic instead of bearer", "Basic YWRtaW46c2VjcmV0".to_owned()),
    ] {
        let resp = server
            .http
            .get(server.url("/v1/users/admin"))
            .header("authorization", header)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "{what}");
        assert_error(&resp.json::<Value>().await.unwrap(), 1005, "Invalid credentials.");
    }
    let (status, body) = server.get("/v1/users/admin", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "missing");
    assert_error(&body, 1005, "Invalid credentials.");
    // The scheme word is case-insensitive, as in HTTP.
    let resp = server
        .http
        .get(server.url("/v1/users/admin"))
        .header("authorization", format!("bearer {good}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
}

async fn generated_signing_key_survives_restart(backend: Backend) {
    let db = TestDb::new(backend).await;
    let token = {
        let server = Server::start(&db).await;
        server.admin_token().await
    };
    let server = Server::start(&db).await;
    let (status, body) = server.get("/v1/users/admin", Some(&token)).await;
    assert_eq!(status, StatusCode::OK, "a token from before the restart: {body}");
}

/// Every token issued before a password change answers 401 from then on, on every replica:
/// after the user changes it, after an admin resets it, and after the admin changes its own at
/// login. The token issued with the change works.
async fn tokens_do_not_survive_a_password_change(backend: Backend) {
    let db = TestDb::new(backend).await;
    let (one, other) = (Server::start(&db).await, Server::start(&db).await);
    let admin = one.admin_token().await;
    let alice = one.user_token(&admin, "alice", "Al1ce!pass").await;
    let (_, body) = other.login("alice", "Al1ce!pass", None).await;
    let alice_elsewhere = token_of(&body);
    let fine = (StatusCode::OK, StatusCode::CREATED);
    let refused = (StatusCode::UNAUTHORIZED, StatusCode::UNAUTHORIZED);
    assert_eq!(works(&other, &alice).await, fine);

    // The user changes it: both of its tokens stop, on both replicas.
    let (status, body) = one
        .send_json(
            Method::PUT,
            "/v1/users/alice",
            Some(&alice),
            json!({"password": "N3w!Passw0rd"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    for server in [&one, &other] {
        assert_eq!(works(server, &alice).await, refused);
        assert_eq!(works(server, &alice_elsewhere).await, refused);
    }
    let (_, body) = other.login("alice", "N3w!Passw0rd", None).await;
    let fresh = token_of(&body);
    assert_eq!(works(&one, &fresh).await, fine);

    // An admin resets it.
    let (status, _) = other
        .send_json(
            Method::PUT,
            "/v1/users/alice",
            Some(&admin),
            json!({"password": "Res3t!Passw0rd"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(works(&one, &fresh).await, refused);

    // The admin changes its own at login: its earlier token stops, the new one works.
    let (status, body) =
        one.login("admin", ADMIN_PASSWORD, Some(json!({"new_password": "An0ther!Admin1"}))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let new_admin = token_of(&body);
    for server in [&one, &other] {
        let (status, _) = server.get("/v1/settings/application", Some(&admin)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        let (status, _) = server.get("/v1/settings/application", Some(&new_admin)).await;
        assert_eq!(status, StatusCode::OK);
    }
}

/// What a token may do as `alice`: (read her account, send a message).
async fn works(server: &Server, token: &str) -> (StatusCode, StatusCode) {
    let (read, _) = server.get("/v1/users/alice", Some(token)).await;
    let (sent, _) = server
        .send_json(
            Method::POST,
            "/v1/messages",
            Some(token),
            json!({"to": "16505550100", "type": "text", "text": {"body": "hi"}}),
        )
        .await;
    (read, sent)
}
