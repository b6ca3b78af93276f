//! The authorize URL against the node-webot vector, byte for byte.

use serde::Deserialize;
use wx_core::test_util::MockTransport;
use wx_core::{AppSecret, Error, MemoryTokenStore, Scope};
use wx_official::{AuthorizeUrl, OfficialAccount};

use crate::common::*;

#[derive(Deserialize)]
struct Vector {
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    appid: String,
    redirect_uri: String,
    state: Option<String>,
    scope: Option<String>,
    expected: String,
}

#[test]
fn matches_the_node_webot_vector_byte_for_byte() {
    let vector: Vector =
        serde_json::from_slice(&fixture("vector.oauth_authorize_url.node_webot_test.json"))
            .expect("vector");
    assert_eq!(vector.cases.len(), 3);
    for case in vector.cases {
        let client = OfficialAccount::builder(case.appid.as_str(), AppSecret::new("secret"))
            .build(MockTransport::new(), MemoryTokenStore::new())
            .expect("client");
        // node-webot's defaults: snsapi_base, empty state.
        let scope = case
            .scope
            .as_deref()
            .map_or(Scope::Base, |s| Scope::parse(s).expect("known scope"));
        let url = client
            .authorize_url(
                &case.redirect_uri,
                scope,
                case.state.as_deref().unwrap_or(""),
            )
            .expect("url");
        assert_eq!(url, case.expected);
        assert_eq!(client.transport().total(), 0, "no request is sent");
    }
}

#[test]
fn force_popup_goes_before_the_fragment_and_open_base_is_used() {
    let s = setup_with(|b| b.open_base("http://127.0.0.1:3000/"));
    let url = s
        .client
        .authorize_url_with(
            &AuthorizeUrl::new(
                "https://app.example.com/cb?next=/home&x=中",
                Scope::UserInfo,
            )
            .state("abcXYZ019")
            .force_popup(true),
        )
        .expect("url");
    assert_eq!(
        url,
        format!(
            "http://127.0.0.1:3000/connect/oauth2/authorize?appid={APPID}\
             &redirect_uri=https%3A%2F%2Fapp.example.com%2Fcb%3Fnext%3D%2Fhome%26x%3D%E4%B8%AD\
             &response_type=code&scope=snsapi_userinfo&state=abcXYZ019&forcePopup=true#wechat_redirect"
        )
    );
    let plain = s
        .client
        .authorize_url_with(&AuthorizeUrl::new("http://a.example/", Scope::Base).force_popup(false))
        .expect("url");
    assert!(
        plain.ends_with("&scope=snsapi_base&state=#wechat_redirect"),
        "{plain}"
    );
}

#[test]
fn bad_state_or_redirect_uri_is_invalid_input() {
    let s = setup();
    let long = "a".repeat(129);
    for state in ["a-b", "has space", "ü", long.as_str(), "x&y=z", "x#"] {
        let e = s
            .client
            .authorize_url("https://a.example/cb", Scope::Base, state)
            .expect_err(state);
        assert!(
            matches!(e, Error::InvalidInput(ref i) if i.argument == "state"),
            "{state}"
        );
    }
    s.client
        .authorize_url("https://a.example/cb", Scope::Base, &"Z9".repeat(64))
        .expect("128 bytes is fine");
    for uri in [
        "",
        "/relative",
        "a.example/cb",
        "https://a.example/\ncb",
        "ftp://a.example/",
    ] {
        let e = s
            .client
            .authorize_url(uri, Scope::Base, "s")
            .expect_err(uri);
        assert!(
            matches!(e, Error::InvalidInput(ref i) if i.argument == "redirect_uri"),
            "{uri:?}"
        );
    }
}
