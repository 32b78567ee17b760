//! The bundled page and `hub*.js`, served from a copy built into the binary (`static/` at build
//! time), so a copied or `cargo install`ed binary serves them too; `--static-dir` serves a
//! directory instead, for development. Every answer is `Cache-Control: no-cache`: browsers keep
//! the file and revalidate it, and an unchanged file costs a 304 (ETag or Last-Modified).

use std::path::Path;

use axum::handler::HandlerWithoutStateExt;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use rust_embed::RustEmbed;
use tower_http::services::ServeDir;
use tower_http::set_header::SetResponseHeaderLayer;

use crate::error::HubError;

/// `static/` as it was when the binary was built (`debug-embed`: debug builds embed too, so
/// tests exercise the same path as a release binary).
#[derive(RustEmbed)]
#[folder = "static/"]
struct Embedded;

/// The router that answers every path no API route claims.
pub(crate) fn router(static_dir: Option<&Path>) -> Router {
    let files = match static_dir {
        Some(dir) => Router::new()
            .fallback_service(ServeDir::new(dir).not_found_service(not_found.into_service())),
        None => Router::new().fallback(embedded),
    };
    files
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-cache"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
}

/// Neither a route nor a file: the API's JSON error, so a mistyped API path says so clearly.
async fn not_found(uri: Uri) -> Response {
    HubError::NotFound(format!("no route or file at {}", uri.path())).into_response()
}

async fn embedded(method: Method, uri: Uri, headers: HeaderMap) -> Response {
    if method != Method::GET && method != Method::HEAD {
        return (
            StatusCode::METHOD_NOT_ALLOWED,
            [(header::ALLOW, "GET,HEAD")],
        )
            .into_response();
    }
    let Some(name) = file_name(uri.path()) else {
        return not_found(uri).await;
    };
    let Some(file) = Embedded::get(&name) else {
        return not_found(uri).await;
    };
    let etag = etag(&file.metadata.sha256_hash());
    let tag = HeaderValue::from_str(&etag).expect("hex is a valid header value");
    if if_none_match(&headers, &etag) {
        return (StatusCode::NOT_MODIFIED, [(header::ETAG, tag)]).into_response();
    }
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static(content_type(&name)),
            ),
            (header::ETAG, tag),
        ],
        file.data,
    )
        .into_response()
}

/// The embedded file a request path names: `/` and `dir/` mean their `index.html`. None for a
/// path that tries to leave the folder or is not valid UTF-8 once decoded.
fn file_name(path: &str) -> Option<String> {
    let decoded = percent_decode(path.trim_start_matches('/'))?;
    if decoded
        .split('/')
        .any(|seg| seg == ".." || seg == "." || seg.contains('\\'))
    {
        return None;
    }
    if decoded.is_empty() || decoded.ends_with('/') {
        Some(format!("{decoded}index.html"))
    } else {
        Some(decoded)
    }
}

/// `%XX` escapes decoded (file names with spaces, for instance); None if malformed.
fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// A strong ETag from the file's SHA-256 (the first 128 bits are plenty to tell versions apart).
fn etag(sha256: &[u8; 32]) -> String {
    let hex: String = sha256[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("\"{hex}\"")
}

/// RFC 9110 `If-None-Match`: `*` or a list of tags, compared weakly (a `W/` prefix matches).
fn if_none_match(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .any(|t| t == "*" || t.trim_start_matches("W/") == etag)
}

/// Media types of what `static/` holds; anything else is served as opaque bytes.
fn content_type(name: &str) -> &'static str {
    let ext = name.rsplit_once('.').map_or("", |(_, e)| e);
    match ext.to_ascii_lowercase().as_str() {
        "html" | "htm" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" | "map" => "application/json",
        "md" => "text/markdown; charset=utf-8",
        // TypeScript has no registered media type; plain text lets a browser show `hub.d.ts`.
        "ts" | "txt" => "text/plain; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "woff2" => "font/woff2",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_root_and_directories_mean_their_index() {
        assert_eq!(file_name("/").as_deref(), Some("index.html"));
        assert_eq!(file_name("/docs/").as_deref(), Some("docs/index.html"));
        assert_eq!(file_name("/hub.js").as_deref(), Some("hub.js"));
        assert_eq!(file_name("/a%20b.css").as_deref(), Some("a b.css"));
    }

    #[test]
    fn paths_that_leave_the_folder_or_are_malformed_name_no_file() {
        assert_eq!(file_name("/../Cargo.toml"), None);
        assert_eq!(file_name("/%2e%2e/Cargo.toml"), None);
        assert_eq!(file_name("/x%zz"), None);
        assert_eq!(file_name("/x%ff"), None);
        assert_eq!(file_name("/a\\b"), None);
    }

    #[test]
    fn the_page_and_every_hub_module_are_embedded() {
        for f in [
            "index.html",
            "hub.js",
            "hub-ws.js",
            "hub-sse.js",
            "hub-rest.js",
        ] {
            assert!(Embedded::get(f).is_some(), "{f} is not embedded");
        }
        assert!(Embedded::get("hub-view.js").is_some());
        assert!(Embedded::get("hub-tools.js").is_some());
        assert!(Embedded::get("tool-card.js").is_some());
    }

    #[test]
    fn content_types_follow_the_extension() {
        assert_eq!(content_type("index.html"), "text/html; charset=utf-8");
        assert_eq!(content_type("hub.js"), "text/javascript; charset=utf-8");
        assert_eq!(content_type("style.css"), "text/css; charset=utf-8");
        assert_eq!(content_type("hub.d.ts"), "text/plain; charset=utf-8");
        assert_eq!(content_type("blob"), "application/octet-stream");
    }

    #[test]
    fn if_none_match_accepts_lists_weak_tags_and_star() {
        let tag = etag(&[7; 32]);
        let mut h = HeaderMap::new();
        assert!(!if_none_match(&h, &tag));
        h.insert(header::IF_NONE_MATCH, HeaderValue::from_static("\"nope\""));
        assert!(!if_none_match(&h, &tag));
        h.insert(
            header::IF_NONE_MATCH,
            HeaderValue::from_str(&format!("\"x\", W/{tag}")).unwrap(),
        );
        assert!(if_none_match(&h, &tag));
        h.insert(header::IF_NONE_MATCH, HeaderValue::from_static("*"));
        assert!(if_none_match(&h, &tag));
    }
}
