//! The server's pipelines: created from SQL, recorded in the catalog, run on one runtime,
//! stopped, started again, deleted. Every change is written to the catalog before it is
//! answered, so a server started again on the same directory finds what it was told.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use weir_queries::plan::{ScriptPlan, SinkRef};

use super::catalog::{Catalog, Desired, Record};
use super::error::ApiError;
use super::pipeline::{now_ms, Served, Settings};
use crate::runtime::Runtime;

/// Names a pipeline may not take (they are routes of their own).
const RESERVED: &[&str] = &["validate"];

/// A running server's pipelines, users and audit log.
pub struct Server {
    /// Users, roles and tokens.
    pub users: super::users::Users,
    /// The audit log.
    pub audit: super::audit::Audit,
    /// What Postgres clients declared (`CREATE SOURCE`, …).
    pub declarations: super::declarations::Declarations,
    rt: Arc<Runtime>,
    catalog: Catalog,
    settings: Settings,
    pipelines: Mutex<BTreeMap<String, Arc<Served>>>,
    /// Recorded pipelines whose SQL no longer compiles: kept in the catalog, not run.
    broken: Mutex<Vec<Record>>,
    ready: AtomicBool,
}

fn internal(e: impl std::fmt::Display) -> ApiError {
    ApiError::Internal(e.to_string())
}

/// Refuses a name that cannot name a pipeline (its checkpoints live in a directory of it).
fn check_name(name: &str) -> Result<(), ApiError> {
    let ok = name.len() <= 64
        && name.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if !ok || RESERVED.contains(&name) {
        return Err(ApiError::BadRequest(format!(
            "pipeline name '{name}': use 1 to 64 letters, digits, '_' or '-', starting with a letter (not 'validate')"
        )));
    }
    Ok(())
}

/// Compiles a script the server is to run: it must write somewhere (a bare `SELECT` would
/// keep every row it gives in memory for as long as it runs).
pub fn compile(sql: &str) -> Result<ScriptPlan, ApiError> {
    let plan = weir_queries::compile(sql).map_err(ApiError::Sql)?;
    if plan.pipelines.is_empty() {
        return Err(ApiError::Sql(
            weir_queries::SqlError::at(1, 1, "the script has no pipeline")
                .hint("add CREATE PIPELINE name AS INSERT INTO sink SELECT …"),
        ));
    }
    if let Some(p) = plan
        .pipelines
        .iter()
        .find(|p| matches!(p.sink, SinkRef::Collect))
    {
        return Err(ApiError::Sql(
            weir_queries::SqlError::at(
                0,
                0,
                format!(
                    "'{}' is a bare SELECT: a served pipeline writes to a sink",
                    p.name
                ),
            )
            .hint(
                "declare CREATE SINK … and write CREATE PIPELINE name AS INSERT INTO sink SELECT …",
            ),
        ));
    }
    Ok(plan)
}

impl Server {
    /// A server on `rt` keeping its catalog, users, audit log and checkpoints in
    /// `state_dir`; `admin_password` is the first admin's when there are no users yet.
    pub fn new(
        rt: Arc<Runtime>,
        state_dir: &Path,
        every: Duration,
        admin_password: Option<String>,
    ) -> Result<Server, ApiError> {
        let catalog = Catalog::open(state_dir)?;
        let alerts = weir_connectors::alerts::Store::open(&state_dir.join("server"))
            .map_err(|e| ApiError::Internal(format!("opening the alert store: {e}")))?;
        weir_connectors::alerts::install(Arc::new(alerts));
        weir_connectors::kpi::open(&state_dir.join("server"))
            .map_err(|e| ApiError::Internal(format!("opening the KPIs: {e}")))?;
        Ok(Server {
            users: super::users::Users::open(state_dir, admin_password)?,
            audit: super::audit::Audit::open(state_dir)?,
            declarations: super::declarations::Declarations::open(state_dir)?,
            rt,
            catalog,
            settings: Settings {
                jobs_dir: state_dir.join("jobs"),
                every,
                uploads: Arc::new(super::uploads::Uploads::open(state_dir)?),
            },
            pipelines: Mutex::new(BTreeMap::new()),
            broken: Mutex::new(Vec::new()),
            ready: AtomicBool::new(false),
        })
    }

    /// Loads the catalog and starts every pipeline recorded as running; then the server is
    /// ready.
    pub fn restore(&self) -> Result<(), ApiError> {
        for record in self.catalog.load()? {
            let plan = match compile(&record.sql) {
                Ok(p) => p,
                Err(e) => {
                    tracing::warn!(pipeline = %record.name, error = %e, "a recorded pipeline no longer compiles; kept, not run");
                    self.broken.lock().map_err(internal)?.push(record);
                    continue;
                }
            };
            let served = Arc::new(Served::new(record.clone(), plan));
            self.map()?.insert(record.name.clone(), served.clone());
            let finished = served.finished_before(&self.settings);
            if finished {
                served.show_finished();
            }
            if record.desired == Desired::Running && !finished {
                served.start(&self.rt, &self.settings).map_err(internal)?;
            }
        }
        self.ready.store(true, Ordering::SeqCst);
        Ok(())
    }

    /// Whether the catalog is loaded and its pipelines started.
    pub fn ready(&self) -> bool {
        self.ready.load(Ordering::SeqCst)
    }

    fn map(&self) -> Result<std::sync::MutexGuard<'_, BTreeMap<String, Arc<Served>>>, ApiError> {
        self.pipelines.lock().map_err(internal)
    }

    /// Writes the catalog from the pipelines now known.
    fn save(&self) -> Result<(), ApiError> {
        let mut records: Vec<Record> = self
            .map()?
            .values()
            .filter_map(|s| s.record.lock().ok().map(|r| r.clone()))
            .collect();
        records.extend(self.broken.lock().map_err(internal)?.iter().cloned());
        self.catalog.save(&records)
    }

    fn job_dir(&self, name: &str) -> PathBuf {
        self.settings.jobs_dir.join(name)
    }

    /// Compiles `sql`, records it as pipeline `name` of `owner` and starts it. Only engineers
    /// (and admins) set connector secrets: `written` is the part of `sql` the owner wrote
    /// (all of it over REST; the `CREATE PIPELINE` over Postgres, after the declarations).
    pub fn create(
        &self,
        name: &str,
        sql: &str,
        written: &str,
        owner: &super::users::User,
    ) -> Result<Arc<Served>, ApiError> {
        check_name(name)?;
        let plan = compile(sql)?;
        if !owner.any(&[super::users::Role::Engineer])
            && weir_queries::redact::redact(written) != written
        {
            return Err(ApiError::Forbidden(format!(
                "user '{}' may not set connector secrets (password, token, …): ask an engineer to declare the source or sink",
                owner.name
            )));
        }
        let record = Record {
            name: name.to_string(),
            sql: sql.to_string(),
            desired: Desired::Running,
            created_ms: now_ms(),
            owner: owner.name.clone(),
            models: Default::default(),
        };
        let served = Arc::new(Served::new(record, plan));
        {
            let mut map = self.map()?;
            let taken = map.contains_key(name)
                || self
                    .broken
                    .lock()
                    .map_err(internal)?
                    .iter()
                    .any(|r| r.name == name);
            if taken {
                return Err(ApiError::Conflict(format!(
                    "pipeline '{name}' exists; DELETE it first, or POST …/{name}/restart"
                )));
            }
            map.insert(name.to_string(), served.clone());
        }
        // A new pipeline starts from nothing, whatever an earlier one of its name left.
        let dir = self.job_dir(name);
        if dir.exists() {
            std::fs::remove_dir_all(&dir).map_err(internal)?;
        }
        self.save()?;
        served.start(&self.rt, &self.settings).map_err(internal)?;
        Ok(served)
    }

    /// The pipeline called `name`.
    pub fn get(&self, name: &str) -> Result<Arc<Served>, ApiError> {
        self.map()?
            .get(name)
            .cloned()
            .ok_or_else(|| ApiError::NotFound(format!("no pipeline '{name}'")))
    }

    /// Every pipeline, by name.
    pub fn list(&self) -> Vec<Arc<Served>> {
        self.map()
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default()
    }

    fn set_desired(&self, served: &Served, desired: Desired) -> Result<(), ApiError> {
        served.record.lock().map_err(internal)?.desired = desired;
        self.save()
    }

    /// Stops pipeline `name` (at a last checkpoint when it keeps them); it stays stopped.
    pub fn stop(&self, name: &str) -> Result<Arc<Served>, ApiError> {
        let served = self.get(name)?;
        self.set_desired(&served, Desired::Stopped)?;
        served.stop();
        Ok(served)
    }

    /// Starts pipeline `name` again (from its last checkpoint when it keeps them).
    pub fn start(&self, name: &str) -> Result<Arc<Served>, ApiError> {
        let served = self.get(name)?;
        self.set_desired(&served, Desired::Running)?;
        served.start(&self.rt, &self.settings).map_err(internal)?;
        Ok(served)
    }

    /// Stops and starts pipeline `name`.
    pub fn restart(&self, name: &str) -> Result<Arc<Served>, ApiError> {
        self.get(name)?.stop();
        self.start(name)
    }

    /// Stops pipeline `name` and forgets it with its checkpoints and its table sinks.
    pub fn delete(&self, name: &str) -> Result<(), ApiError> {
        let served = self.get(name)?;
        served.stop();
        for s in served.plan.sinks.iter().filter(|s| s.connector == "table") {
            weir_connectors::table::drop_table(&s.name);
        }
        self.map()?.remove(name);
        self.save()?;
        let dir = self.job_dir(name);
        if dir.exists() {
            std::fs::remove_dir_all(&dir).map_err(internal)?;
        }
        Ok(())
    }

    /// Applies `ALTER MODEL name SET VERSION 'v'` to every running pipeline that has the
    /// model; says how many.
    pub fn alter_model(&self, statement: &str) -> Result<usize, ApiError> {
        let (model, version) = weir_queries::parse_alter_model(statement).map_err(ApiError::Sql)?;
        let mut n = 0;
        for p in self.list() {
            if !p.plan.models.iter().any(|m| m.name == model) || !p.active() {
                continue;
            }
            p.state()
                .2
                .alter_model(statement)
                .map_err(|e| ApiError::BadRequest(e.to_string()))?;
            if let Ok(mut r) = p.record.lock() {
                r.models.insert(model.clone(), version.clone());
            }
            n += 1;
        }
        if n == 0 {
            return Err(ApiError::NotFound(format!(
                "no running pipeline has model '{model}'"
            )));
        }
        // Recorded before the answer: a restart keeps the switch.
        self.save()?;
        Ok(n)
    }

    /// The versions uploaded to the server.
    pub fn uploads(&self) -> Vec<weir_queries::plan::ModelDef> {
        self.settings.uploads.all()
    }

    /// Keeps `bytes` as version `version` of `model` and declares it in every running
    /// pipeline with the model (and in their later jobs); gives the version and how many
    /// running pipelines have it now.
    pub fn upload_model(
        &self,
        model: &str,
        version: &str,
        bytes: &[u8],
    ) -> Result<(weir_queries::plan::ModelDef, usize), ApiError> {
        let pipelines = self.list();
        let declared: Vec<_> = pipelines
            .iter()
            .flat_map(|p| p.plan.models.iter().filter(|m| m.name == model).cloned())
            .collect();
        let def = self
            .settings
            .uploads
            .add(model, version, bytes, &declared)?;
        let mut n = 0;
        for p in pipelines.iter().filter(|p| p.active()) {
            if p.plan.models.iter().any(|m| m.name == model) {
                p.state()
                    .2
                    .add_version(def.clone())
                    .map_err(|e| ApiError::Internal(e.to_string()))?;
                n += 1;
            }
        }
        Ok((def, n))
    }

    /// Stops every pipeline (each at a last checkpoint) without changing what the catalog
    /// says should run: a server started again starts them again.
    pub fn shutdown(&self) {
        self.ready.store(false, Ordering::SeqCst);
        for s in self.list() {
            s.stop();
        }
        let _ = self.rt.shutdown();
    }
}
