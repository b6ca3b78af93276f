//! The consent page of `Consent::Ask`: shown for `snsapi_userinfo` until the user allowed once,
//! never for `snsapi_base`; allow gives a code, deny only the state.

use http::StatusCode;
use wx_sandbox::{Consent, Sandbox, paths};

use crate::oauth::{authorize, callback_params, param};
use crate::*;

fn asking() -> Sandbox {
    let sb = Sandbox::builder()
        .app(APP, SECRET)
        .account_name(APP, "Shop <Demo>")
        .user(APP, alice())
        .consent(APP, Consent::Ask)
        .clock(ManualClock::new(start()))
        .build()
        .expect("valid set-up");
    assert_eq!(sb.is_following(APP, ALICE), Some(true));
    sb
}

/// The page's form fields (hidden inputs), as a browser would post them.
fn form_fields(page: &str) -> Vec<(String, String)> {
    page.split("<input type=\"hidden\" ")
        .skip(1)
        .map(|rest| {
            let attr = |name: &str| {
                let start = rest.find(&format!("{name}=\"")).expect("attribute") + name.len() + 2;
                let len = rest[start..].find('"').expect("closing quote");
                rest[start..start + len].to_owned()
            };
            (attr("name"), attr("value"))
        })
        .collect()
}

async fn answer(sb: &Sandbox, page: &HttpResponse, choice: &str) -> HttpResponse {
    let text = String::from_utf8_lossy(&page.body);
    let mut fields = form_fields(&text);
    fields.push(("answer".into(), choice.into()));
    let body: Vec<(&str, &str)> = fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    post_form(sb, &body).await
}

/// POSTs a form to the consent page's answer path.
async fn post_form(sb: &Sandbox, fields: &[(&str, &str)]) -> HttpResponse {
    let form = url_with_query("", fields);
    let body = form.trim_start_matches('?').as_bytes().to_vec();
    let url = format!("{API}{}", paths::AUTHORIZE_REPLY);
    sb.send(HttpRequest::post_json(url, body))
        .await
        .expect("no fault")
}

#[tokio::test]
async fn userinfo_asks_with_a_page_then_allow_redirects_with_a_code_and_is_remembered() {
    let sb = asking();
    let page = authorize(&sb, APP, "snsapi_userinfo", "s1").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(content_type(&page).starts_with("text/html"));
    let text = String::from_utf8_lossy(&page.body);
    assert!(
        text.contains("Shop &lt;Demo&gt;"),
        "account name, escaped: {text}"
    );
    assert!(text.contains("Alice 🐱"), "who is asked: {text}");
    assert!(text.contains("id=\"allow\"") && text.contains("id=\"deny\""));

    let back = callback_params(&answer(&sb, &page, "allow").await);
    assert_eq!(param(&back, "state"), Some("s1"));
    let code = param(&back, "code").expect("a code after allow");
    let r = get(
        &sb,
        "/sns/oauth2/access_token",
        &[
            ("appid", APP),
            ("secret", SECRET),
            ("code", code),
            ("grant_type", "authorization_code"),
        ],
    )
    .await;
    assert_eq!(json(&r)["openid"], ALICE);
    assert_eq!(json(&r)["scope"], "snsapi_userinfo");

    // The same page answered twice: refused, no second code.
    let again = answer(&sb, &page, "allow").await;
    assert_eq!(again.status, StatusCode::OK);
    assert!(String::from_utf8_lossy(&again.body).contains("answered already"));

    // Allowed once: the next login is silent, as at WeChat.
    let silent = callback_params(&authorize(&sb, APP, "snsapi_userinfo", "s2").await);
    assert!(param(&silent, "code").is_some());

    // Setting consent again forgets it.
    sb.set_consent(APP, Consent::Ask).unwrap();
    assert_eq!(
        authorize(&sb, APP, "snsapi_userinfo", "s3").await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn deny_redirects_with_the_state_only_and_base_is_silent() {
    let sb = asking();
    let page = authorize(&sb, APP, "snsapi_userinfo", "s1").await;
    let back = callback_params(&answer(&sb, &page, "deny").await);
    assert_eq!(param(&back, "state"), Some("s1"));
    assert_eq!(param(&back, "code"), None);
    // Deny is not remembered: the page again.
    assert_eq!(
        authorize(&sb, APP, "snsapi_userinfo", "s2").await.status,
        StatusCode::OK
    );

    let base = callback_params(&authorize(&sb, APP, "snsapi_base", "b").await);
    assert!(param(&base, "code").is_some(), "snsapi_base never asks");
}

#[tokio::test]
async fn a_page_expires_and_a_forged_ticket_is_refused() {
    let sb = asking();
    let page = authorize(&sb, APP, "snsapi_userinfo", "s1").await;
    sb.clock().advance(Duration::from_secs(601));
    let late = answer(&sb, &page, "allow").await;
    assert!(String::from_utf8_lossy(&late.body).contains("expired"));

    let r = post_form(
        &sb,
        &[("appid", APP), ("ticket", "nope"), ("answer", "allow")],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.headers.get(http::header::LOCATION).is_none());
}
