//! The catalog a script builds: its sources, tables, sinks, views, models and baselines, and
//! the DataFusion session they are planned with. The planner reads it; the statements of
//! `script`, `models` and `baselines` add to it.
use std::borrow::Cow;
use std::sync::Arc;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::execution::context::SessionState;
use datafusion::logical_expr::{LogicalPlan, TableSource};
use datafusion::sql::sqlparser::ast;

use crate::plan::{BaselineDef, ModelDef, SinkDef, SourceDef};
use crate::session::session;

/// A view: its optimized logical plan, inlined where it is read, and its window, if any.
pub struct View {
    pub(crate) plan: LogicalPlan,
    pub(crate) window: Option<(weir_operators::window::WindowSpec, String)>,
}

impl TableSource for View {
    fn schema(&self) -> SchemaRef {
        Arc::new(self.plan.schema().as_arrow().clone())
    }
    fn get_logical_plan(&self) -> Option<Cow<'_, LogicalPlan>> {
        Some(Cow::Borrowed(&self.plan))
    }
}

/// What a script has declared so far.
pub struct Catalog {
    pub(crate) state: SessionState,
    pub(crate) sources: Vec<SourceDef>,
    pub(crate) sinks: Vec<SinkDef>,
    pub(crate) views: Vec<(String, Arc<View>)>,
    pub(crate) models: Vec<ModelDef>,
    pub(crate) baselines: Vec<BaselineDef>,
    /// While planning a provenance pipeline: its sources (which get the position column).
    pub(crate) provenance: Vec<String>,
}

impl Catalog {
    /// An empty catalog.
    pub fn new() -> Self {
        Catalog {
            state: session(),
            sources: Vec::new(),
            sinks: Vec::new(),
            views: Vec::new(),
            models: Vec::new(),
            baselines: Vec::new(),
            provenance: Vec::new(),
        }
    }
}

impl Default for Catalog {
    fn default() -> Self {
        Self::new()
    }
}

/// A FROM relation's source (or table, or view) name, lower case, and the identifier that
/// qualifies its columns: its alias, or its name.
pub(crate) fn named_relation(t: &ast::TableFactor) -> Option<(String, ast::Ident)> {
    match t {
        ast::TableFactor::Table { name, alias, .. } => {
            let name = name.to_string().to_ascii_lowercase();
            let qualifier = alias
                .as_ref()
                .map(|a| a.name.clone())
                .unwrap_or_else(|| ast::Ident::new(&name));
            Some((name, qualifier))
        }
        _ => None,
    }
}
