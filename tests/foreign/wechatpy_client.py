"""wechatpy, installed from PyPI, against the wx-sandbox binary: a foreign client, unchanged
but for its base URLs, walks the token, OAuth, JS-SDK and push flows.

Run by scripts/foreign.sh (part of scripts/test.sh): python wechatpy_client.py SANDBOX_URL.
The sandbox runs with tests/foreign/sandbox.json. Every check raises on failure.
"""

import json
import sys
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import requests
from wechatpy import WeChatClient, create_reply, parse_message
from wechatpy.crypto import WeChatCrypto
from wechatpy.exceptions import WeChatClientException, WeChatOAuthException
from wechatpy.oauth import WeChatOAuth
from wechatpy.utils import check_signature

BASE = sys.argv[1].rstrip("/")
APPID = "wx5f0c1d2e3a4b5c6d"
SECRET = "foreign-client-secret-0123456789"
OPENID = "o-foreign-alice"
CALLBACK = "https://app.example.com/wx/callback"
# The server URL settings of the push part (safe mode).
TOKEN = "foreign-server-token"
AES_KEY = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
ORIGINAL_ID = "gh_foreign0000a1"


def ok(what):
    print(f"ok: {what}", flush=True)


def admin(method, path, body=None):
    r = requests.request(method, f"{BASE}/__sandbox/{path}", json=body, timeout=30)
    assert r.status_code == 200, f"admin {path}: {r.status_code} {r.text}"
    return r.json()


def expect_errcode(exc_type, code, call):
    try:
        call()
    except exc_type as e:
        assert e.errcode == code, f"expected {code}, got {e.errcode} {e.errmsg}"
        return
    raise AssertionError(f"expected errcode {code}, the call succeeded")


class SandboxClient(WeChatClient):
    """wechatpy's client with the sandbox as api.weixin.qq.com (its token URL is a literal)."""

    API_BASE_URL = BASE + "/cgi-bin/"

    def fetch_access_token(self):
        return self._fetch_access_token(
            url=BASE + "/cgi-bin/token",
            params={"grant_type": "client_credential", "appid": self.appid, "secret": self.secret},
        )


def base_token_and_ticket():
    admin("POST", "counts/reset")
    client = SandboxClient(APPID, SECRET)
    token = client.access_token
    assert len(token) == 136, token
    assert client.access_token == token, "cached by wechatpy"
    assert admin("GET", "counts")["paths"] == {"/cgi-bin/token": 1}
    ok("base token (one /cgi-bin/token request)")

    ticket = client.jsapi.get_jsapi_ticket()
    assert ticket and client.jsapi.get_jsapi_ticket() == ticket
    signature = client.jsapi.get_jsapi_signature("nonce", ticket, 1700000000, "https://app.example.com/")
    assert len(signature) == 40
    ok("JS-SDK ticket and signature")

    # A new token replaces the old one: it keeps working for the 5-minute grace period, then
    # WeChat answers 40001. wechatpy's auto-retry is off so the error reaches us.
    client.fetch_access_token()
    stale = SandboxClient(APPID, SECRET, access_token=token, auto_retry=False)
    assert stale.jsapi.get_ticket()["ticket"] == ticket
    admin("POST", "clock", {"advance_secs": 301})
    expect_errcode(WeChatClientException, 40001, lambda: stale.jsapi.get_ticket())
    assert client.jsapi.get_ticket()["ticket"], "the new token still works"
    ok("40001 for the replaced token after the grace period (clock moved by the admin API)")


def oauth_flow():
    oauth = WeChatOAuth(APPID, SECRET, CALLBACK, scope="snsapi_userinfo", state="foreign1")
    oauth.API_BASE_URL = BASE + "/"
    oauth.OAUTH_BASE_URL = BASE + "/connect/"
    r = requests.get(oauth.authorize_url, allow_redirects=False, timeout=30)
    assert r.status_code == 302, (r.status_code, r.text)
    location = urllib.parse.urlsplit(r.headers["Location"])
    assert location.geturl().startswith(CALLBACK), location
    query = urllib.parse.parse_qs(location.query)
    assert query["state"] == ["foreign1"], query
    code = query["code"][0]
    ok("authorize redirect with code and state")

    token = oauth.fetch_access_token(code)
    assert token["openid"] == OPENID and token["scope"] == "snsapi_userinfo", token
    assert token["unionid"] == "u-foreign-alice", token
    info = oauth.get_user_info()
    assert info["nickname"] == "Alice", info
    assert oauth.check_access_token()
    ok("code exchange, user info, web token check")

    first = oauth.access_token
    refreshed = oauth.refresh_access_token(oauth.refresh_token)
    assert refreshed["openid"] == OPENID and refreshed["expires_in"] == 7200, refreshed
    assert oauth.check_access_token()
    assert oauth.access_token == first, "a live web token is extended, not replaced"
    ok("web token refresh and check again")

    expect_errcode(WeChatOAuthException, 40163, lambda: oauth.fetch_access_token(code))
    ok("40163 for a reused code")


class AppServer(BaseHTTPRequestHandler):
    """The app's server URL, in safe mode, with wechatpy's own crypto: echoes text."""

    crypto = WeChatCrypto(TOKEN, AES_KEY, APPID)
    seen = []

    def log_message(self, *args):
        pass

    def _query(self):
        q = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
        return {k: v[0] for k, v in q.items()}

    def _answer(self, body):
        data = body.encode("utf-8")
        self.send_response(200)
        self.send_header("Content-Type", "text/xml; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        q = self._query()
        check_signature(TOKEN, q["signature"], q["timestamp"], q["nonce"])
        self._answer(q["echostr"])

    def do_POST(self):
        q = self._query()
        raw = self.rfile.read(int(self.headers["Content-Length"])).decode("utf-8")
        xml = self.crypto.decrypt_message(raw, q["msg_signature"], q["timestamp"], q["nonce"])
        message = parse_message(xml)
        AppServer.seen.append((q.get("encrypt_type"), raw, message))
        reply = create_reply(f"echo: {message.content}", message).render()
        self._answer(self.crypto.encrypt_message(reply, q["nonce"], q["timestamp"]))


def safe_mode_push():
    server = ThreadingHTTPServer(("127.0.0.1", 0), AppServer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/wx"
        admin("POST", "server", {
            "appid": APPID, "url": url, "token": TOKEN, "mode": "safe",
            "encoding_aes_key": AES_KEY, "original_id": ORIGINAL_ID,
        })
        ok("server URL registered (echostr check answered)")

        report = admin("POST", "act", {
            "appid": APPID, "openid": OPENID, "action": {"kind": "text", "content": "hello from the sandbox"},
        })
        assert report["outcome"] == "replied", report
        encrypt_type, raw, message = AppServer.seen[-1]
        assert encrypt_type == "aes"
        assert "<Encrypt>" in raw and "<Content>" not in raw, "safe mode: only the ciphertext"
        assert message.type == "text" and message.source == OPENID and message.target == ORIGINAL_ID
        assert message.content == "hello from the sandbox"
        ok("safe-mode push decrypted by wechatpy.crypto.WeChatCrypto")

        inbox = admin("GET", f"inbox?appid={APPID}&openid={OPENID}")["messages"]
        assert inbox and inbox[-1]["via"] == "reply", inbox
        assert "echo: hello from the sandbox" in json.dumps(inbox[-1]["content"], ensure_ascii=False), inbox
        ok("encrypted reply accepted by the sandbox and delivered to the user's inbox")
    finally:
        server.shutdown()


def main():
    assert admin("GET", "health") == {"ok": True}
    base_token_and_ticket()
    oauth_flow()
    safe_mode_push()
    print("wechatpy against the wx-sandbox binary: every check passed")


if __name__ == "__main__":
    main()
