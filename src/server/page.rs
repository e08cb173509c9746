//! The plain HTTP answers of the serve listener: the browser client (assets/web/index.html)
//! at `/`, so opening `http://ADDR/` in a browser is a conversation with hark; health and
//! readiness for the service manager.

use super::http::{Answer, Head};
use super::Access;

const PAGE: &str = include_str!("../../assets/web/index.html");

/// A connection over the server's limit.
pub fn busy() -> Answer {
    Answer::text(503, "too many connections; try again later\n").with_header("Retry-After: 5")
}

/// The answer to a plain request: the page at `/` (with a valid `?token=` when the server
/// takes tokens), `/healthz` (the process is up), `/readyz` (its engines are loaded, which
/// they are before the server listens) and `/metrics`, nothing else.
pub fn answer(head: &Head, access: &Access) -> Answer {
    let allowed = match access {
        Access::Anonymous => true,
        Access::Tokens(tokens) => tokens.shown_in(head),
    };
    match (head.method.as_str(), head.path.as_str()) {
        ("GET", "/" | "/index.html") if !allowed => {
            Answer::text(401, "this server needs a token: open /?token=YOUR_TOKEN\n")
        }
        ("GET", "/" | "/index.html") => Answer::new(200, "text/html; charset=utf-8", PAGE),
        ("GET", "/healthz") => Answer::text(200, "ok\n"),
        ("GET", "/readyz") => Answer::text(200, "ready\n"),
        // What the service is doing is for those who may use it (a scrape job's bearer token).
        ("GET", "/metrics") if !allowed => Answer::text(
            401,
            "this server needs a token: Authorization: Bearer TOKEN\n",
        ),
        ("GET", "/metrics") => Answer::new(
            200,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            crate::telemetry::metrics::global().encode(),
        ),
        ("GET", _) => Answer::text(404, "not found\n"),
        _ => Answer::text(405, "only GET\n"),
    }
}
