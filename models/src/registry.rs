//! The model registry: every model name with its versions and the current one. A running
//! pipeline switches versions with `set_current` (from `ALTER MODEL … SET VERSION` in a
//! control file); the switch takes effect at batch boundaries: the first call for a model in a
//! batch pins the version on that thread until the next batch begins ([`begin_batch`]), so
//! `predict` and `model_version` on the same rows always agree.
use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::{Arc, OnceLock, RwLock};

use crate::{load, Error, Predictor, Result};

/// One version of a model.
pub struct Version {
    /// Version name (`v1`).
    pub version: String,
    /// Where it was loaded from.
    pub path: String,
    /// The loaded model.
    pub model: Arc<dyn Predictor>,
    /// Its batch times (process-wide, by model and version name).
    pub times: Arc<crate::times::BatchTimes>,
}

#[derive(Default)]
struct Entry {
    versions: Vec<Arc<Version>>,
    current: usize,
}

/// Named, versioned models.
#[derive(Default)]
pub struct Registry {
    models: RwLock<HashMap<String, Entry>>,
}

/// The process's registry: the one `CREATE MODEL` loads and checks models with while a script
/// compiles. A running job reads its own registry (its catalog), made with [`Registry::new`].
pub fn registry() -> &'static Arc<Registry> {
    static R: OnceLock<Arc<Registry>> = OnceLock::new();
    R.get_or_init(|| Arc::new(Registry::default()))
}

thread_local! {
    /// Versions pinned for this thread's batch, by registry (its address) and model name.
    static PINS: RefCell<HashMap<(usize, String), Arc<Version>>> = RefCell::new(HashMap::new());
}

/// Starts a new batch on this thread: the next call for each model reads its current version.
pub fn begin_batch() {
    PINS.with(|p| p.borrow_mut().clear());
}

fn poisoned<T>(_: T) -> Error {
    Error::Registry("the model registry lock is poisoned".into())
}

impl Registry {
    /// An empty registry (a job's catalog).
    pub fn new() -> Arc<Registry> {
        Arc::new(Registry::default())
    }

    fn pin_key(&self, name: &str) -> (usize, String) {
        (self as *const Registry as usize, name.to_string())
    }

    /// Loads `path` as version `version` of `name` (again only if the path changed). The first
    /// version declared becomes current.
    pub fn declare(
        &self,
        name: &str,
        version: &str,
        path: &str,
        features: Option<usize>,
    ) -> Result<Arc<Version>> {
        {
            let models = self.models.read().map_err(poisoned)?;
            if let Some(v) = models.get(name).and_then(|e| {
                e.versions
                    .iter()
                    .find(|v| v.version == version && v.path == path)
            }) {
                return Ok(v.clone());
            }
        }
        let model = load(path, features)?;
        let v = Arc::new(Version {
            version: version.to_string(),
            path: path.to_string(),
            model,
            times: crate::times::times_of(name, version),
        });
        let mut models = self.models.write().map_err(poisoned)?;
        let e = models.entry(name.to_string()).or_default();
        e.versions.retain(|x| x.version != version);
        e.versions.push(v.clone());
        Ok(v)
    }

    /// Makes `version` the current version of `name`.
    pub fn set_current(&self, name: &str, version: &str) -> Result<()> {
        let mut models = self.models.write().map_err(poisoned)?;
        let e = models
            .get_mut(name)
            .ok_or_else(|| Error::Registry(format!("no model '{name}'")))?;
        let i = e
            .versions
            .iter()
            .position(|v| v.version == version)
            .ok_or_else(|| {
                Error::Registry(format!(
                    "model '{name}' has no version '{version}' (known: {})",
                    e.versions
                        .iter()
                        .map(|v| v.version.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            })?;
        e.current = i;
        tracing::info!("model {name}: version {version} is now current");
        Ok(())
    }

    /// The current version of `name` (pinned for the rest of this thread's batch).
    pub fn current(&self, name: &str) -> Result<Arc<Version>> {
        let key = self.pin_key(name);
        if let Some(v) = PINS.with(|p| p.borrow().get(&key).cloned()) {
            return Ok(v);
        }
        let v = {
            let models = self.models.read().map_err(poisoned)?;
            let e = models.get(name).ok_or_else(|| {
                Error::Registry(format!("no model '{name}' (declare it with CREATE MODEL)"))
            })?;
            e.versions
                .get(e.current)
                .cloned()
                .ok_or_else(|| Error::Registry(format!("model '{name}' has no versions")))?
        };
        PINS.with(|p| p.borrow_mut().insert(key, v.clone()));
        Ok(v)
    }

    /// A given version of `name`.
    pub fn version(&self, name: &str, version: &str) -> Result<Arc<Version>> {
        let models = self.models.read().map_err(poisoned)?;
        models
            .get(name)
            .and_then(|e| e.versions.iter().find(|v| v.version == version))
            .cloned()
            .ok_or_else(|| Error::Registry(format!("model '{name}' has no version '{version}'")))
    }
}
