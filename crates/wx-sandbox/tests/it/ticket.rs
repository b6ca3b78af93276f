//! `cgi-bin/ticket/getticket`: needs a valid base token; one ticket per validity period.

use std::time::Duration;

use serde_json::json;
use wx_core::{ErrCode, JsapiTicketResponse, decode_response};

use crate::*;

async fn ticket(sb: &Sandbox, token: &str, kind: &str) -> HttpResponse {
    get(
        sb,
        "/cgi-bin/ticket/getticket",
        &[("access_token", token), ("type", kind)],
    )
    .await
}

fn decoded(r: &HttpResponse) -> (String, u64) {
    let t: JsapiTicketResponse = decode_response("getticket", &r.body).expect("a ticket");
    (t.ticket.secret().to_owned(), t.expires_in)
}

#[tokio::test]
async fn same_ticket_with_7200_during_validity_then_a_new_one() {
    let sb = sandbox();
    let token = base_token(&sb).await;
    let r = ticket(&sb, &token, "jsapi").await;
    assert_eq!(content_type(&r), "application/json; encoding=utf-8");
    let v = json(&r);
    assert_eq!(
        (v["errcode"].clone(), v["errmsg"].clone()),
        (json!(0), json!("ok"))
    );
    let (first, expires_in) = decoded(&r);
    assert_eq!(expires_in, 7200);
    assert_eq!(first.len(), 86);
    sb.clock().advance(Duration::from_secs(3000));
    let token = base_token(&sb).await;
    let (again, expires_in) = decoded(&ticket(&sb, &token, "jsapi").await);
    assert_eq!(again, first);
    assert_eq!(
        expires_in, 7200,
        "WeChat reports 7200 again, not the remaining time"
    );
    sb.clock().advance(Duration::from_secs(4200));
    let token = base_token(&sb).await;
    let (next, _) = decoded(&ticket(&sb, &token, "jsapi").await);
    assert_ne!(next, first);
    // The card ticket is a different one.
    let (card, _) = decoded(&ticket(&sb, &token, "wx_card").await);
    assert_ne!(card, next);
    // Apps have their own tickets.
    let other = get(
        &sb,
        "/cgi-bin/token",
        &[
            ("grant_type", "client_credential"),
            ("appid", OTHER_APP),
            ("secret", OTHER_SECRET),
        ],
    )
    .await;
    let other_token = json(&other)["access_token"].as_str().unwrap().to_owned();
    let (other_ticket, _) = decoded(&ticket(&sb, &other_token, "jsapi").await);
    assert_ne!(other_ticket, next);
}

#[tokio::test]
async fn needs_a_valid_base_token() {
    let sb = sandbox();
    assert_error(
        &ticket(&sb, "forged", "jsapi").await,
        ErrCode::INVALID_CREDENTIAL,
    );
    let token = base_token(&sb).await;
    sb.clock().advance(Duration::from_secs(7200));
    assert_error(
        &ticket(&sb, &token, "jsapi").await,
        ErrCode::ACCESS_TOKEN_EXPIRED,
    );
    let token = base_token(&sb).await;
    assert_error(&ticket(&sb, &token, "jsapi2").await, ErrCode(40097));
    let missing_type = get(
        &sb,
        "/cgi-bin/ticket/getticket",
        &[("access_token", &token)],
    )
    .await;
    assert_error(&missing_type, ErrCode(40097));
}

#[tokio::test]
async fn a_stable_token_works_too() {
    let sb = sandbox();
    let body = json!({"grant_type": "client_credential", "appid": APP, "secret": SECRET});
    let r = post(&sb, "/cgi-bin/stable_token", body.to_string().as_bytes()).await;
    let token = json(&r)["access_token"].as_str().unwrap().to_owned();
    decoded(&ticket(&sb, &token, "jsapi").await);
}
