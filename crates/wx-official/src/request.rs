//! Typed requests: each WeChat endpoint is a struct bound to its answer type.
//!
//! A request says *what* to call as data ([`Endpoint`]: method, path, query, body, auth,
//! idempotency); [`OfficialAccount::send`](crate::OfficialAccount::send) runs it through the one
//! execute path and decodes the answer with [`FromResponse`]. Arguments are checked in
//! [`Request::endpoint`], so bad input is a typed error before anything is sent.
//!
//! Adding an endpoint is a struct, a few lines of data and its answer model:
//!
//! ```
//! use serde::Deserialize;
//! use wx_official::{Endpoint, Request};
//!
//! /// `GET /cgi-bin/get_api_domain_ip`: the IP addresses of WeChat's API servers.
//! struct ApiDomainIp;
//!
//! #[derive(Debug, Deserialize)]
//! #[non_exhaustive]
//! struct IpList {
//!     ip_list: Vec<String>,
//! }
//!
//! impl Request for ApiDomainIp {
//!     type Response = IpList;
//!     fn endpoint(&self) -> wx_core::Result<Endpoint> {
//!         Ok(Endpoint::get("/cgi-bin/get_api_domain_ip").with_base_token())
//!     }
//! }
//!
//! let ep = ApiDomainIp.endpoint()?;
//! assert_eq!(ep.name(), "cgi-bin/get_api_domain_ip");
//! assert_eq!(ep.auth_kind(), wx_official::Auth::BaseToken);
//! # Ok::<(), wx_core::Error>(())
//! ```

use serde::de::DeserializeOwned;
use wx_core::{HttpResponse, Result, decode_response};

use crate::endpoint::Endpoint;

/// A typed WeChat request: the endpoint as data, bound to the type its answer decodes into
/// (async-stripe's `StripeRequest` shape).
pub trait Request {
    /// The decoded answer.
    type Response: FromResponse;

    /// The endpoint as data, after checking the request's arguments.
    ///
    /// # Errors
    /// [`wx_core::Error::InvalidInput`] when an argument breaks WeChat's documented rules; the
    /// request is then never sent.
    fn endpoint(&self) -> Result<Endpoint>;
}

impl<R: Request + ?Sized> Request for &R {
    type Response = R::Response;
    fn endpoint(&self) -> Result<Endpoint> {
        (**self).endpoint()
    }
}

/// How an answer is read from WeChat's HTTP response (after a 2xx status).
///
/// Every `serde` type decodes as a JSON answer through wx-core's lenient decoder (the `errcode`
/// envelope checked first, whatever the Content-Type). Answers that may be files implement this
/// trait themselves and decide by what WeChat actually sent.
pub trait FromResponse: Sized {
    /// Decodes `response`, the answer of `endpoint` (its name, for errors).
    ///
    /// # Errors
    /// [`wx_core::Error::Api`] for a WeChat error answer, [`wx_core::Error::Decode`] for a body
    /// that is not the expected shape.
    fn from_response(endpoint: &'static str, response: &HttpResponse) -> Result<Self>;
}

impl<T: DeserializeOwned> FromResponse for T {
    fn from_response(endpoint: &'static str, response: &HttpResponse) -> Result<Self> {
        decode_response(endpoint, &response.body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::StatusCode;

    /// An answer that is not JSON: the raw bytes (how file downloads plug in).
    struct Raw(Vec<u8>);

    impl FromResponse for Raw {
        fn from_response(_: &'static str, response: &HttpResponse) -> Result<Self> {
            Ok(Raw(response.body.to_vec()))
        }
    }

    #[test]
    fn json_answers_go_through_the_envelope_and_others_decide_themselves() {
        let ok = HttpResponse::new(StatusCode::OK, r#"{"ip_list":["1.2.3.4"]}"#);
        let v: serde_json::Value = FromResponse::from_response("x", &ok).expect("decodes");
        assert_eq!(v["ip_list"][0], "1.2.3.4");
        let err = HttpResponse::new(StatusCode::OK, r#"{"errcode":40001,"errmsg":"bad"}"#);
        let e = <serde_json::Value as FromResponse>::from_response("x", &err).expect_err("api");
        assert!(matches!(e, wx_core::Error::Api(_)), "{e:?}");
        let raw = Raw::from_response("x", &err).expect("raw");
        assert_eq!(raw.0, err.body.to_vec());
    }
}
