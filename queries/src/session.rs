//! The DataFusion side of planning: one `SessionState` with every function weir plans with
//! (DataFusion's, plus the model functions of `weir_models::udf`),
//! and the `ContextProvider` that shows DataFusion's SQL planner weir's sources and views.
use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::common::config::ConfigOptions;
use datafusion::common::TableReference;
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::execution::context::SessionState;
use datafusion::execution::session_state::SessionStateBuilder;
use datafusion::logical_expr::logical_plan::builder::LogicalTableSource;
use datafusion::logical_expr::{AggregateUDF, ScalarUDF, TableSource, WindowUDF};
use datafusion::prelude::SessionConfig;
use datafusion::sql::planner::{ContextProvider, ParserOptions};

/// The session every plan is built with (its model functions read the process's registry).
pub fn session() -> SessionState {
    session_with(
        weir_models::registry().clone(),
        weir_operators::drift::baseline::global().clone(),
    )
}

/// The session a job's operators are built with: its model functions read the job's own
/// models (its catalog).
pub fn session_with(
    models: Arc<weir_models::Registry>,
    baselines: Arc<weir_operators::drift::baseline::Baselines>,
) -> SessionState {
    let config = SessionConfig::new()
        .set_bool("datafusion.sql_parser.map_string_types_to_utf8view", false)
        .set_bool("datafusion.sql_parser.collect_spans", true);
    let mut state = SessionStateBuilder::new()
        .with_config(config)
        .with_default_features()
        .build();
    for f in weir_models::udf::functions_with(models).into_iter().chain([
        weir_operators::provenance::row::function(),
        weir_operators::provenance::extend::function(),
    ]) {
        // Registering returns the function a name replaced; weir's names are new.
        let _ = datafusion::execution::FunctionRegistry::register_udf(&mut state, Arc::new(f));
    }
    for f in crate::functions::feature_functions()
        .into_iter()
        .chain(weir_operators::drift::udaf::functions_with(baselines))
        .chain([
            weir_operators::drift::auc::function(),
            weir_operators::provenance::function(),
        ])
    {
        let _ = datafusion::execution::FunctionRegistry::register_udaf(&mut state, Arc::new(f));
    }
    state
}

/// Parser options matching [`session`].
pub fn parser_options() -> ParserOptions {
    let mut o = ParserOptions::new();
    o.collect_spans = true;
    o.map_string_types_to_utf8view = false;
    o.enable_ident_normalization = true;
    o
}

/// Tables visible to one planning call.
pub struct Provider<'a> {
    state: &'a SessionState,
    tables: HashMap<String, Arc<dyn TableSource>>,
    options: ConfigOptions,
    /// Names of the tables the planner asked for.
    pub used: RefCell<Vec<String>>,
}

impl<'a> Provider<'a> {
    /// An empty provider over `state`'s functions.
    pub fn new(state: &'a SessionState) -> Self {
        Provider {
            state,
            tables: HashMap::new(),
            options: state.config_options().as_ref().clone(),
            used: RefCell::new(Vec::new()),
        }
    }

    /// Adds a table (a source, with window columns when the query is windowed).
    pub fn add_table(&mut self, name: &str, schema: SchemaRef) {
        self.tables
            .insert(name.to_string(), Arc::new(LogicalTableSource::new(schema)));
    }

    /// Adds a table source (a view).
    pub fn add_source(&mut self, name: &str, source: Arc<dyn TableSource>) {
        self.tables.insert(name.to_string(), source);
    }
}

impl ContextProvider for Provider<'_> {
    fn get_table_source(&self, name: TableReference) -> DfResult<Arc<dyn TableSource>> {
        let key = name.table().to_string();
        match self.tables.get(&key) {
            Some(t) => {
                self.used.borrow_mut().push(key);
                Ok(t.clone())
            }
            None => {
                let mut known: Vec<_> = self.tables.keys().cloned().collect();
                known.sort();
                Err(DataFusionError::Plan(format!(
                    "unknown source or view '{name}' (declared: {})",
                    if known.is_empty() {
                        "none".to_string()
                    } else {
                        known.join(", ")
                    }
                )))
            }
        }
    }

    fn get_function_meta(&self, name: &str) -> Option<Arc<ScalarUDF>> {
        self.state.scalar_functions().get(name).cloned()
    }

    fn get_aggregate_meta(&self, name: &str) -> Option<Arc<AggregateUDF>> {
        self.state.aggregate_functions().get(name).cloned()
    }

    fn get_window_meta(&self, name: &str) -> Option<Arc<WindowUDF>> {
        self.state.window_functions().get(name).cloned()
    }

    fn get_variable_type(&self, _variable_names: &[String]) -> Option<DataType> {
        None
    }

    fn options(&self) -> &ConfigOptions {
        &self.options
    }

    fn get_higher_order_meta(
        &self,
        _name: &str,
    ) -> Option<Arc<datafusion::logical_expr::HigherOrderUDF>> {
        None
    }

    fn higher_order_function_names(&self) -> Vec<String> {
        Vec::new()
    }

    fn udf_names(&self) -> Vec<String> {
        self.state.scalar_functions().keys().cloned().collect()
    }

    fn udaf_names(&self) -> Vec<String> {
        self.state.aggregate_functions().keys().cloned().collect()
    }

    fn udwf_names(&self) -> Vec<String> {
        self.state.window_functions().keys().cloned().collect()
    }
}
