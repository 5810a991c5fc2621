//! The Postgres wire protocol (pgwire): `psql -h HOST -p PORT -U NAME weir`. Users sign in
//! with SCRAM-SHA-256 against the server's users (their SCRAM keys are kept beside the
//! Argon2id hash); statements arrive over the simple or the extended protocol and are run by
//! `handler.rs` (read by `statements.rs`).
pub mod handler;
pub mod params;
pub mod statements;
pub mod subscribe;

use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;
use futures::Sink;
use pgwire::api::auth::sasl::scram::ScramAuth;
use pgwire::api::auth::sasl::SASLAuthStartupHandler;
use pgwire::api::auth::{
    AuthSource, DefaultServerParameterProvider, LoginInfo, Password, StartupHandler,
};
use pgwire::api::portal::{Format, Portal};
use pgwire::api::query::{ExtendedQueryHandler, SimpleQueryHandler};
use pgwire::api::results::{DescribePortalResponse, DescribeStatementResponse, Response};
use pgwire::api::stmt::{NoopQueryParser, StoredStatement};
use pgwire::api::store::PortalStore;
use pgwire::api::{ClientInfo, ClientPortalStore, PgWireServerHandlers, METADATA_USER};
use pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use pgwire::messages::PgWireBackendMessage;

use self::handler::{pg_error, respond, run};
use self::statements::{classify, split, Stmt};
use super::error::ApiError;
use super::server::Server;
use super::users::{User, SCRAM_ITERATIONS};

/// The server's users as SCRAM's password source.
#[derive(Debug)]
struct Users(Arc<ServerRef>);

/// The server, for handlers that must be `Debug`.
struct ServerRef(Arc<Server>);

impl Debug for ServerRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("weir server")
    }
}

fn denied(message: &str) -> PgWireError {
    PgWireError::UserError(Box::new(ErrorInfo::new(
        "FATAL".into(),
        "28P01".into(),
        message.into(),
    )))
}

#[async_trait]
impl AuthSource for Users {
    async fn get_password(&self, login: &LoginInfo) -> PgWireResult<Password> {
        let name = login.user().unwrap_or("");
        let (salt, salted) = self.0 .0.users.scram(name).ok_or_else(|| {
            denied(&format!(
                "password authentication failed for user \"{name}\""
            ))
        })?;
        Ok(Password::new(Some(salt), salted))
    }
}

/// Runs statements for signed-in clients.
pub struct Handler {
    app: Arc<Server>,
    parser: Arc<NoopQueryParser>,
}

impl Handler {
    fn user<C: ClientInfo>(&self, client: &C) -> PgWireResult<User> {
        let name = client
            .metadata()
            .get(METADATA_USER)
            .cloned()
            .unwrap_or_default();
        self.app
            .users
            .get(&name)
            .ok_or_else(|| denied(&format!("no user \"{name}\"")))
    }
}

#[async_trait]
impl SimpleQueryHandler for Handler {
    async fn do_query<C>(&self, client: &mut C, query: &str) -> PgWireResult<Vec<Response>>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let user = self.user(client)?;
        let texts = split(query);
        if let Some(sub) = texts.iter().find_map(|t| match classify(t) {
            Ok(Stmt::Subscribe(s)) => Some(s),
            _ => None,
        }) {
            if texts.len() > 1 {
                return Err(pg_error(&ApiError::BadRequest(
                    "SUBSCRIBE streams until it ends: send it alone".into(),
                )));
            }
            let tag =
                subscribe::run(client, &self.app, &user, &sub, subscribe::Mode::Simple).await?;
            return Ok(vec![Response::Execution(tag)]);
        }
        let mut out = Vec::new();
        for text in texts {
            let outcome = run(&self.app, &user, &text)
                .await
                .map_err(|e| pg_error(&e))?;
            out.push(respond(outcome, &Format::UnifiedText)?);
        }
        if out.is_empty() {
            out.push(Response::EmptyQuery);
        }
        Ok(out)
    }
}

/// The columns a statement answers with, without running it.
async fn describe(
    app: &Arc<Server>,
    user: &User,
    text: &str,
    format: &Format,
) -> PgWireResult<Vec<pgwire::api::results::FieldInfo>> {
    match classify(text) {
        Ok(Stmt::Select(sql)) => {
            let schema = super::query::describe(app, user, &sql)
                .await
                .map_err(|e| pg_error(&e))?;
            handler::fields(&schema, format)
        }
        Ok(Stmt::Subscribe(sub)) if !sub.copy => {
            let table = subscribe::open_async(app, user, &sub.table).await?;
            handler::fields(&subscribe::schema_of(&table.schema()), format)
        }
        Ok(Stmt::Show(_)) => {
            // SHOW's columns depend on what is shown: answered by running it (it changes nothing).
            match run(app, user, text).await.map_err(|e| pg_error(&e))? {
                handler::Outcome::Rows(_, schema) => handler::fields(&schema, format),
                handler::Outcome::Done(_) => Ok(Vec::new()),
            }
        }
        _ => Ok(Vec::new()),
    }
}

/// A `SELECT` with statement parameters, run with the portal's values for them.
async fn with_parameters(
    app: &Arc<Server>,
    user: &User,
    text: &str,
    portal: &Portal<String>,
) -> Result<handler::Outcome, ApiError> {
    let Ok(Stmt::Select(sql)) = classify(text) else {
        return Err(ApiError::BadRequest(
            "only SELECT takes statement parameters: write the values into the statement".into(),
        ));
    };
    let values = |types: &[_]| params::values(portal, types);
    let a = super::query::select_with(app, user, &sql, values).await?;
    Ok(handler::Outcome::Rows(a.batches, a.schema))
}

#[async_trait]
impl ExtendedQueryHandler for Handler {
    type Statement = String;
    type QueryParser = NoopQueryParser;

    fn query_parser(&self) -> Arc<Self::QueryParser> {
        self.parser.clone()
    }

    async fn do_query<C>(
        &self,
        client: &mut C,
        portal: &Portal<Self::Statement>,
        _max_rows: usize,
    ) -> PgWireResult<Response>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let user = self.user(client)?;
        let text = portal
            .statement
            .statement
            .trim()
            .trim_end_matches(';')
            .to_string();
        if text.is_empty() {
            return Ok(Response::EmptyQuery);
        }
        if !portal.parameters.is_empty() {
            let outcome = with_parameters(&self.app, &user, &text, portal)
                .await
                .map_err(|e| pg_error(&e))?;
            return respond(outcome, &portal.result_column_format);
        }
        if let Ok(Stmt::Subscribe(sub)) = classify(&text) {
            let mode = subscribe::Mode::Extended(portal.result_column_format.clone());
            let tag = subscribe::run(client, &self.app, &user, &sub, mode).await?;
            return Ok(Response::Execution(tag));
        }
        let outcome = run(&self.app, &user, &text)
            .await
            .map_err(|e| pg_error(&e))?;
        respond(outcome, &portal.result_column_format)
    }

    async fn do_describe_statement<C>(
        &self,
        client: &mut C,
        target: &StoredStatement<Self::Statement>,
    ) -> PgWireResult<DescribeStatementResponse>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let user = self.user(client)?;
        let text = target.statement.trim().trim_end_matches(';');
        let format = Format::UnifiedBinary;
        let (fields, types) = match classify(text) {
            Ok(Stmt::Select(sql)) => {
                let (schema, types) =
                    super::query::describe_with_parameters(&self.app, &user, &sql)
                        .await
                        .map_err(|e| pg_error(&e))?;
                (handler::fields(&schema, &format)?, types)
            }
            _ => (describe(&self.app, &user, text, &format).await?, Vec::new()),
        };
        Ok(DescribeStatementResponse::new(
            params::describe_types(&types, &target.parameter_types),
            fields,
        ))
    }

    async fn do_describe_portal<C>(
        &self,
        client: &mut C,
        target: &Portal<Self::Statement>,
    ) -> PgWireResult<DescribePortalResponse>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let user = self.user(client)?;
        let fields = describe(
            &self.app,
            &user,
            &target.statement.statement,
            &target.result_column_format,
        )
        .await?;
        Ok(DescribePortalResponse::new(fields))
    }
}

/// The handlers of one server.
struct Factory {
    handler: Arc<Handler>,
    users: Arc<ServerRef>,
}

impl PgWireServerHandlers for Factory {
    fn simple_query_handler(&self) -> Arc<impl SimpleQueryHandler> {
        self.handler.clone()
    }

    fn extended_query_handler(&self) -> Arc<impl ExtendedQueryHandler> {
        self.handler.clone()
    }

    fn startup_handler(&self) -> Arc<impl StartupHandler> {
        let mut scram = ScramAuth::new(Arc::new(Users(self.users.clone())));
        scram.set_iterations(SCRAM_ITERATIONS);
        let mut params = DefaultServerParameterProvider::default();
        params.server_version = format!("16.0 (weir {})", env!("CARGO_PKG_VERSION"));
        Arc::new(SASLAuthStartupHandler::new(Arc::new(params)).with_scram(scram))
    }
}

/// Serves the Postgres protocol on `listener` until the process ends (taking SSL requests
/// when given a TLS acceptor).
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Arc<Server>,
    tls: Option<pgwire::tokio::TlsAcceptor>,
) {
    let factory = Arc::new(Factory {
        handler: Arc::new(Handler {
            app: app.clone(),
            parser: Arc::new(NoopQueryParser::new()),
        }),
        users: Arc::new(ServerRef(app)),
    });
    loop {
        let Ok((socket, _)) = listener.accept().await else {
            continue;
        };
        let (f, tls) = (factory.clone(), tls.clone());
        tokio::spawn(async move {
            if let Err(e) = pgwire::tokio::process_socket(socket, tls, f).await {
                tracing::debug!(error = %e, "a Postgres connection ended with an error");
            }
        });
    }
}
