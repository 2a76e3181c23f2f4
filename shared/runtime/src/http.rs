//! HTTP at the edge: one error type per boundary maps to one response shape,
//! `{"code": "<stable machine-readable code>", "message": "<for humans>"}`.

use lambda_http::http::{HeaderMap, StatusCode};
use lambda_http::{Body, Response};
use serde::Serialize;
use tier_store::StoreError;

/// An HTTP error response. `code` values are part of the API: never rename
/// one, only add.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Itemised problems (every bad row of a price book), when there are many.
    pub errors: Option<serde_json::Value>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            errors: None,
        }
    }

    pub fn with_errors(mut self, errors: serde_json::Value) -> Self {
        self.errors = Some(errors);
        self
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn unprocessable(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
    }

    pub fn not_found(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, code, message)
    }

    pub fn unauthorized(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, code, message)
    }

    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, message)
    }

    pub fn into_response(self) -> Response<Body> {
        json(
            self.status,
            &ErrorBody {
                code: self.code,
                message: &self.message,
                errors: self.errors.as_ref(),
            },
        )
    }
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    code: &'a str,
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    errors: Option<&'a serde_json::Value>,
}

/// A storage failure is ours, not the caller's: logged with its cause, and
/// answered without internals. 503 invites a retry, which is safe: every
/// write path is idempotent. What cannot succeed on a retry (an item that
/// does not read back, a request the service refuses as such) is a 500.
impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        tracing::error!(error = %e, "storage failure");
        match e {
            StoreError::Contention { .. }
            | StoreError::Partial { .. }
            | StoreError::Aws { refused: false, .. } => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "storage is temporarily unavailable; retry later",
            ),
            // Ours to fix, not the caller's to retry.
            StoreError::Corrupt { .. }
            | StoreError::Unwritable { .. }
            | StoreError::Aws { refused: true, .. } => ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "internal error",
            ),
        }
    }
}

pub fn json<T: Serialize + ?Sized>(status: StatusCode, body: &T) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Body::Text(
            serde_json::to_string(body).expect("response bodies serialise"),
        ))
        .expect("status and header are valid")
}

pub fn respond(result: Result<Response<Body>, ApiError>) -> Response<Body> {
    result.unwrap_or_else(ApiError::into_response)
}

/// The request body, refusing anything over `limit` bytes.
pub fn body_bytes(body: &Body, limit: usize) -> Result<&[u8], ApiError> {
    let bytes: &[u8] = body.as_ref();
    if bytes.len() > limit {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("the body is {} bytes; the limit is {limit}", bytes.len()),
        ));
    }
    Ok(bytes)
}

/// Deeper than any document of the API nests (a rule set's conditions,
/// eight deep, reach about 20), far inside the parser's own limit.
pub const MAX_JSON_DEPTH: usize = 64;

/// Whether `bytes` open more than `max` arrays and objects inside one
/// another, strings skipped. Checked before parsing, so that a too-deep
/// document is refused the same way wherever its nesting is, whether or
/// not a field's type would have failed first.
fn nests_deeper_than(bytes: &[u8], max: usize) -> bool {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for &b in bytes {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > max {
                    return true;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

/// Parses a JSON body into `T`, naming the field that is wrong.
pub fn parse_json<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if nests_deeper_than(bytes, MAX_JSON_DEPTH) {
        return Err(ApiError::bad_request(
            "malformed_json",
            format!("the body nests arrays and objects deeper than {MAX_JSON_DEPTH}"),
        ));
    }
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if inner.is_syntax() || inner.is_eof() {
            ApiError::bad_request(
                "malformed_json",
                format!("the body is not valid JSON: {inner}"),
            )
        } else {
            ApiError::unprocessable("invalid_document", format!("{path}: {inner}"))
        }
    })
}

/// Compares a presented secret with the expected one in constant time.
pub fn secret_matches(presented: &str, expected: &str) -> bool {
    use subtle::ConstantTimeEq;
    presented.len() == expected.len() && bool::from(presented.as_bytes().ct_eq(expected.as_bytes()))
}

pub fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// The path's segments, each percent-decoded once, as API Gateway hands
/// path parameters to a function: `/v1/admin/distributors/a%3Ab` names
/// distributor `a:b`. Splitting comes first, so an encoded `/` stays inside
/// its segment (and is then refused by the id it names). Leading and
/// trailing slashes are ignored.
pub fn path_segments(path: &str) -> Result<Vec<String>, ApiError> {
    path.trim_matches('/')
        .split('/')
        .map(|segment| {
            percent_encoding::percent_decode_str(segment)
                .decode_utf8()
                .map(|s| s.into_owned())
                .map_err(|_| {
                    ApiError::bad_request(
                        "invalid_path",
                        format!("path segment {segment:?} is not percent-encoded UTF-8"),
                    )
                })
        })
        .collect()
}

/// The values of a repeated query parameter (`?sku=A&sku=B`), decoded.
pub fn query_values(query: Option<&str>, name: &str) -> Vec<String> {
    query
        .unwrap_or("")
        .split('&')
        .filter_map(|pair| pair.split_once('=').or(Some((pair, ""))))
        .filter(|(k, _)| percent_decode(k) == name)
        .map(|(_, v)| percent_decode(v))
        .collect()
}

/// A query string's key or value, decoded as forms encode it: `+` is a
/// space, then `%XX` sequences (one left as written when it is not one).
fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(&s.replace('+', " "))
        .decode_utf8_lossy()
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn too_deep_a_body_is_malformed_wherever_it_nests() {
        let deep = |open: &str, close: &str| {
            format!(
                r#"{{"platform": {}1{}}}"#,
                open.repeat(70),
                close.repeat(70)
            )
        };
        for body in [deep("[", "]"), deep(r#"{"a":"#, "}")] {
            let err = parse_json::<serde_json::Value>(body.as_bytes()).unwrap_err();
            assert_eq!(err.code, "malformed_json", "{}", err.message);
        }
        // Brackets inside strings do not count, escaped quotes included.
        let text = format!(r#"{{"note": "\"{}"}}"#, "[".repeat(200));
        assert!(parse_json::<serde_json::Value>(text.as_bytes()).is_ok());
        let fine = format!(
            "{}1{}",
            "[".repeat(MAX_JSON_DEPTH),
            "]".repeat(MAX_JSON_DEPTH)
        );
        assert!(parse_json::<serde_json::Value>(fine.as_bytes()).is_ok());
    }

    #[test]
    fn path_segments_are_decoded_once_after_splitting() {
        let segments = path_segments("/v1/admin/distributors/a%3Ab/").unwrap();
        assert_eq!(segments, ["v1", "admin", "distributors", "a:b"]);
        // Once: `%253A` is the text `%3A`, not a colon.
        assert_eq!(path_segments("/x/a%253Ab").unwrap(), ["x", "a%3Ab"]);
        // An encoded slash stays in its segment.
        assert_eq!(path_segments("/x/a%2Fb").unwrap(), ["x", "a/b"]);
        // `+` is a plus in a path, not a space.
        assert_eq!(path_segments("/x/a+b").unwrap(), ["x", "a+b"]);
        let err = path_segments("/x/%FF").unwrap_err();
        assert_eq!(err.code, "invalid_path");
    }

    #[test]
    fn repeated_query_values() {
        assert_eq!(
            query_values(Some("sku=A&sku=B%2D1&x=1"), "sku"),
            ["A", "B-1"]
        );
        assert!(query_values(None, "sku").is_empty());
        assert_eq!(query_values(Some("sku=%"), "sku"), ["%"]);
        assert_eq!(query_values(Some("sku=A%4"), "sku"), ["A%4"]);
        assert_eq!(query_values(Some("q=a+b%2Bc"), "q"), ["a b+c"]);
    }

    #[test]
    fn constant_time_compare() {
        assert!(secret_matches("abc", "abc"));
        assert!(!secret_matches("abd", "abc"));
        assert!(!secret_matches("ab", "abc"));
    }
}
