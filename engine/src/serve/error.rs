//! What a request that cannot be carried out gets back: an HTTP status and a JSON body
//! `{error, message, line?, column?, hint?}` (a compile error keeps its position and hint).
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;
use weir_queries::SqlError;

/// Errors of the server's API.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The SQL does not compile (422).
    #[error("{0}")]
    Sql(SqlError),
    /// No such pipeline (404).
    #[error("{0}")]
    NotFound(String),
    /// The pipeline exists already, or is not in a state that allows the request (409).
    #[error("{0}")]
    Conflict(String),
    /// No credentials, or wrong ones (401).
    #[error("{0}")]
    Unauthorized(String),
    /// The signed-in user's roles do not allow it (403).
    #[error("{0}")]
    Forbidden(String),
    /// The request is malformed (400).
    #[error("{0}")]
    BadRequest(String),
    /// The request is well formed but its content cannot be used: an upload that is not a
    /// model weir can run (422).
    #[error("{0}")]
    Unprocessable(String),
    /// Something the request needed outside weir failed: a work order's broker (502).
    #[error("{0}")]
    BadGateway(String),
    /// The server failed to carry out a valid request (500).
    #[error("{0}")]
    Internal(String),
}

/// The body of an error response.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// `sql`, `not_found`, `conflict`, `bad_request`, `unprocessable`, `unauthorized`,
    /// `forbidden`, `bad_gateway` or `internal`.
    pub error: &'static str,
    /// What went wrong.
    pub message: String,
    /// 1-based line of a SQL error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u64>,
    /// 1-based column of a SQL error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<u64>,
    /// What to do about it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

impl ApiError {
    /// The error of a script that does not compile.
    pub fn compile(e: weir_queries::Error) -> ApiError {
        match e {
            weir_queries::Error::Sql(s) => ApiError::Sql(s),
            other => ApiError::Sql(SqlError::at(0, 0, other.to_string())),
        }
    }

    fn status(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::Sql(_) => (StatusCode::UNPROCESSABLE_ENTITY, "sql"),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            ApiError::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            ApiError::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            ApiError::Unprocessable(_) => (StatusCode::UNPROCESSABLE_ENTITY, "unprocessable"),
            ApiError::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "unauthorized"),
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            ApiError::BadGateway(_) => (StatusCode::BAD_GATEWAY, "bad_gateway"),
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }

    /// The HTTP status code.
    pub fn status_code(&self) -> u16 {
        self.status().0.as_u16()
    }

    /// The response body.
    pub fn body(&self) -> ErrorBody {
        let (_, error) = self.status();
        match self {
            ApiError::Sql(s) => ErrorBody {
                error,
                message: s.message.clone(),
                line: Some(s.line),
                column: Some(s.column),
                hint: s.hint.clone(),
            },
            other => ErrorBody {
                error,
                message: other.to_string(),
                line: None,
                column: None,
                hint: None,
            },
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, _) = self.status();
        (status, axum::Json(self.body())).into_response()
    }
}
