//! The dashboard's static files, embedded in the binary: htmx, uPlot (see
//! `engine/assets/LICENSES.md`) and weir's own stylesheet.
use axum::extract::Path;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

/// (name, content type, bytes).
const FILES: [(&str, &str, &str); 4] = [
    (
        "htmx.min.js",
        "text/javascript",
        include_str!("../../../assets/htmx.min.js"),
    ),
    (
        "uPlot.iife.min.js",
        "text/javascript",
        include_str!("../../../assets/uPlot.iife.min.js"),
    ),
    (
        "uPlot.min.css",
        "text/css",
        include_str!("../../../assets/uPlot.min.css"),
    ),
    (
        "weir.css",
        "text/css",
        include_str!("../../../assets/weir.css"),
    ),
];

/// `GET /ui/assets/{file}`.
pub async fn asset(Path(file): Path<String>) -> Response {
    match FILES.iter().find(|(n, _, _)| *n == file) {
        Some((_, kind, body)) => (
            [
                (header::CONTENT_TYPE, *kind),
                (header::CACHE_CONTROL, "public, max-age=3600"),
            ],
            *body,
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "no such asset").into_response(),
    }
}
