//! `CREATE MODEL name FROM 'model.onnx' WITH (version = 'v1', inputs = '4')` and
//! `ALTER MODEL name SET VERSION 'v2'`. Declaring a model loads it (so a bad path or an
//! unsupported operator is an error at its line); several `CREATE MODEL` with one name declare
//! its versions, the first being current until an `ALTER MODEL`.
use crate::catalog::Catalog;
use crate::error::SqlError;
use crate::plan::ModelDef;
use crate::tokens::{to_map, Cursor};

impl Catalog {
    fn has_version(&self, name: &str, version: &str) -> bool {
        self.models
            .iter()
            .any(|m| m.name == name && m.version == version)
    }

    pub(crate) fn create_model(&mut self, mut c: Cursor) -> Result<(), SqlError> {
        c.expect("CREATE")?;
        c.expect("MODEL")?;
        let loc = c.loc();
        let name = c.ident("a model name")?;
        c.expect("FROM")?;
        let ploc = c.loc();
        let path = c.string("the model file, as a quoted path")?;
        let opts = c.options()?;
        if !c.at_end() {
            return Err(c.error("unexpected text after the model's options"));
        }
        let mut map = to_map(&opts);
        let version = map.remove("version").unwrap_or_else(|| "v1".into());
        let features = match map.remove("inputs") {
            None => None,
            Some(v) => Some(v.parse::<usize>().map_err(|_| {
                SqlError::at(loc.0, loc.1, format!("inputs = '{v}' is not a number"))
                    .hint("inputs gives the number of input features, e.g. inputs = '4'")
            })?),
        };
        if let Some((k, _)) = map.into_iter().next() {
            return Err(
                SqlError::at(loc.0, loc.1, format!("unknown model option '{k}'"))
                    .hint("models take version = '<name>' and inputs = '<feature count>'"),
            );
        }
        if self.has_version(&name, &version) {
            return Err(SqlError::at(
                loc.0,
                loc.1,
                format!("model '{name}' already has version '{version}'"),
            ));
        }
        let loaded = weir_models::registry()
            .declare(&name, &version, &path, features)
            .map_err(|e| {
                SqlError::at(ploc.0, ploc.1, e.to_string()).hint(
                    "models are ONNX files; tree ensembles, linear models and neural networks run",
                )
            })?;
        let current = !self.models.iter().any(|m| m.name == name);
        if current {
            weir_models::registry()
                .set_current(&name, &version)
                .map_err(|e| SqlError::at(loc.0, loc.1, e.to_string()))?;
        }
        self.models.push(ModelDef {
            name,
            version,
            path,
            features: Some(loaded.model.features()),
            current,
            evaluator: loaded.model.evaluator().to_string(),
        });
        Ok(())
    }

    pub(crate) fn alter_model(&mut self, c: Cursor) -> Result<(), SqlError> {
        let (loc, name, version) = read_alter_model(c)?;
        if !self.has_version(&name, &version) {
            return Err(SqlError::at(
                loc.0,
                loc.1,
                format!("model '{name}' has no version '{version}'"),
            )
            .hint("declare it first: CREATE MODEL name FROM 'file.onnx' WITH (version = '...')"));
        }
        for m in self.models.iter_mut().filter(|m| m.name == name) {
            m.current = m.version == version;
        }
        weir_models::registry()
            .set_current(&name, &version)
            .map_err(|e| SqlError::at(loc.0, loc.1, e.to_string()))
    }
}

/// `ALTER MODEL name SET VERSION 'v'`: where the name stands, the name and the version.
fn read_alter_model(mut c: Cursor) -> Result<((u64, u64), String, String), SqlError> {
    c.expect("ALTER")?;
    c.expect("MODEL")?;
    let loc = c.loc();
    let name = c.ident("a model name")?;
    c.expect("SET")?;
    c.expect("VERSION")?;
    let version = c.string("the version, quoted")?;
    if !c.at_end() {
        return Err(c.error("unexpected text after the version"));
    }
    Ok((loc, name, version))
}

/// Reads one control statement sent to a running job (`weir run --control`, the server):
/// `ALTER MODEL name SET VERSION 'v'`, with the script's own grammar. Gives (model, version);
/// whether the job has that version is the job's catalog's to say.
pub fn parse_alter_model(text: &str) -> Result<(String, String), SqlError> {
    let mut statements = crate::tokens::split(text)?;
    if statements.len() != 1 {
        return Err(SqlError::at(1, 1, "expected one statement")
            .hint("send one ALTER MODEL <name> SET VERSION '<version>' at a time"));
    }
    let c = Cursor::new(statements.remove(0));
    if c.word_at(0).as_deref() != Some("ALTER") || c.word_at(1).as_deref() != Some("MODEL") {
        return Err(c
            .error("expected ALTER MODEL")
            .hint("a running job takes ALTER MODEL <name> SET VERSION '<version>'"));
    }
    let (_, name, version) = read_alter_model(c)?;
    Ok((name, version))
}
