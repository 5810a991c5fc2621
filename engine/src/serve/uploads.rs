//! Model versions uploaded to the server (`PUT /api/v1/models/{model}/versions/{version}`):
//! each ONNX file kept under `STATE_DIR/models/<model>/<version>.onnx` and listed in
//! `STATE_DIR/server/models.json`, both written durably before the upload is answered. A file
//! is loaded (and its input width checked against the model's other versions) before it is
//! kept; a kept version is declared in every pipeline that declares the model — in its running
//! job and in every later job, after a restart too — and becomes current only when switched to
//! (`ALTER MODEL`, `POST …/version`).
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use weir_queries::plan::{ModelDef, ScriptPlan};

use super::catalog::write_durably;
use super::error::ApiError;

/// The uploaded versions.
#[derive(Debug)]
pub struct Uploads {
    dir: PathBuf,
    list_file: PathBuf,
    list: Mutex<Vec<ModelDef>>,
}

/// Whether `s` may name a model or a version (it names a file).
pub fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && !s.starts_with('.')
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c))
}

fn internal(e: impl std::fmt::Display) -> ApiError {
    ApiError::Internal(e.to_string())
}

impl Uploads {
    /// The uploads kept in `state_dir` (none for a new directory).
    pub fn open(state_dir: &Path) -> Result<Uploads, ApiError> {
        let list_file = state_dir.join("server").join("models.json");
        let list = match std::fs::read(&list_file) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| internal(format!("{}: {e}", list_file.display())))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(internal(format!("{}: {e}", list_file.display()))),
        };
        Ok(Uploads {
            dir: state_dir.join("models"),
            list_file,
            list: Mutex::new(list),
        })
    }

    /// Every uploaded version.
    pub fn all(&self) -> Vec<ModelDef> {
        self.list.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// The uploaded versions of the models `plan` declares.
    pub fn for_plan(&self, plan: &ScriptPlan) -> Vec<ModelDef> {
        let mut out = self.all();
        out.retain(|u| plan.models.iter().any(|m| m.name == u.name));
        out
    }

    /// Keeps `bytes` as version `version` of `model`, whose versions the pipelines declare as
    /// `declared`: refused when the version exists, when the file is not a model weir can run,
    /// or when its input width differs from the model's other versions.
    pub fn add(
        &self,
        model: &str,
        version: &str,
        bytes: &[u8],
        declared: &[ModelDef],
    ) -> Result<ModelDef, ApiError> {
        if !valid_name(model) || !valid_name(version) {
            return Err(ApiError::BadRequest(
                "model and version names are 1 to 64 letters, digits, '_', '-' or '.'".into(),
            ));
        }
        let mut list = self.list.lock().map_err(internal)?;
        let taken = |m: &ModelDef| m.name == model && m.version == version;
        if declared.iter().chain(list.iter()).any(taken) {
            return Err(ApiError::Conflict(format!(
                "model '{model}' already has a version '{version}': upload it under a new version name"
            )));
        }
        let dir = self.dir.join(model);
        std::fs::create_dir_all(&dir).map_err(internal)?;
        let path = dir.join(format!("{version}.onnx"));
        write_durably(&path, bytes)?;
        let def = match check(model, version, &path, declared) {
            Ok(def) => def,
            Err(e) => {
                let _ = std::fs::remove_file(&path);
                return Err(e);
            }
        };
        list.push(def.clone());
        let text = serde_json::to_vec_pretty(&*list).map_err(internal)?;
        if let Err(e) = write_durably(&self.list_file, &text) {
            list.pop();
            return Err(e);
        }
        Ok(def)
    }
}

/// Loads the file at `path` as a version of `model`: it must load, and take as many inputs
/// as the model's declared versions.
fn check(
    model: &str,
    version: &str,
    path: &Path,
    declared: &[ModelDef],
) -> Result<ModelDef, ApiError> {
    let text = path.to_string_lossy().to_string();
    let width = declared.iter().find_map(|m| m.features);
    let loaded = weir_models::load(&text, None)
        .or_else(|e| match width {
            Some(w) => weir_models::load(&text, Some(w)),
            None => Err(e),
        })
        .map_err(|e| {
            ApiError::Unprocessable(format!("the upload is not a model weir can run: {e}"))
        })?;
    if let Some(w) = width.filter(|w| *w != loaded.features()) {
        return Err(ApiError::Unprocessable(format!(
            "the upload takes {} inputs; model '{model}' takes {w}",
            loaded.features()
        )));
    }
    Ok(ModelDef {
        name: model.to_string(),
        version: version.to_string(),
        path: text,
        features: Some(loaded.features()),
        current: false,
        evaluator: loaded.evaluator().to_string(),
    })
}
