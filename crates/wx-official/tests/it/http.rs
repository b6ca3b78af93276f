//! A minimal HTTP/1.1 transport over a Tokio TCP stream, so the client is tested over real HTTP
//! (against wiremock) without depending on the `wx-reqwest` adapter crate.

use std::time::Duration;

use async_trait::async_trait;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use wx_core::{HttpRequest, HttpResponse, HttpTransport, TransportError, TransportErrorKind};

#[derive(Clone, Debug)]
pub(crate) struct TcpTransport {
    pub(crate) timeout: Duration,
}

impl Default for TcpTransport {
    fn default() -> Self {
        TcpTransport {
            timeout: Duration::from_secs(5),
        }
    }
}

fn err(kind: TransportErrorKind, what: &'static str) -> TransportError {
    TransportError::new(kind, what)
}

#[async_trait]
impl HttpTransport for TcpTransport {
    async fn send(&self, request: HttpRequest) -> Result<HttpResponse, TransportError> {
        tokio::time::timeout(self.timeout, exchange(request))
            .await
            .map_err(|_| TransportError::from_kind(TransportErrorKind::Timeout))?
    }
}

async fn exchange(request: HttpRequest) -> Result<HttpResponse, TransportError> {
    let rest = request
        .url
        .strip_prefix("http://")
        .ok_or_else(|| err(TransportErrorKind::Other, "only http:// is supported"))?;
    let (authority, target) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let mut stream = TcpStream::connect(authority)
        .await
        .map_err(|e| TransportError::new(TransportErrorKind::Connect, e))?;
    let body = request.body.clone().unwrap_or_default();
    let mut head = format!(
        "{} {target} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\nContent-Length: {}\r\n",
        request.method,
        body.len()
    );
    for (name, value) in &request.headers {
        head.push_str(&format!(
            "{name}: {}\r\n",
            value.to_str().unwrap_or_default()
        ));
    }
    head.push_str("\r\n");
    let io = |e| TransportError::new(TransportErrorKind::Io, e);
    stream.write_all(head.as_bytes()).await.map_err(io)?;
    stream.write_all(&body).await.map_err(io)?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.map_err(io)?;
    parse(&raw)
}

fn parse(raw: &[u8]) -> Result<HttpResponse, TransportError> {
    let bad = || err(TransportErrorKind::Io, "malformed HTTP response");
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(bad)?;
    let head = std::str::from_utf8(&raw[..split]).map_err(|_| bad())?;
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or_else(bad)?;
    let mut response = HttpResponse::new(
        http::StatusCode::from_u16(status).map_err(|_| bad())?,
        Vec::new(),
    );
    let mut chunked = false;
    for line in lines {
        let (name, value) = line.split_once(':').ok_or_else(bad)?;
        let (name, value) = (name.trim(), value.trim());
        if name.eq_ignore_ascii_case("transfer-encoding") && value.eq_ignore_ascii_case("chunked") {
            chunked = true;
        }
        if let (Ok(n), Ok(v)) = (
            http::HeaderName::from_bytes(name.as_bytes()),
            http::HeaderValue::from_str(value),
        ) {
            response.headers.append(n, v);
        }
    }
    let body = &raw[split + 4..];
    response.body = if chunked {
        dechunk(body).ok_or_else(bad)?.into()
    } else {
        body.to_vec().into()
    };
    Ok(response)
}

fn dechunk(mut body: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = body.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&body[..line_end]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        body = &body[line_end + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(body.get(..size)?);
        body = body.get(size + 2..)?;
    }
}
