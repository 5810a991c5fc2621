//! Stateless row operators over DataFusion physical expressions.
pub mod filter;
pub mod project;

pub use filter::Filter;
pub use project::Project;

/// The value of argument `i` of a function call when it is a literal (a baseline's or a
/// source's name given in SQL), read from the call's physical expressions.
pub fn literal(
    args: &[std::sync::Arc<dyn datafusion::physical_expr::PhysicalExpr>],
    i: usize,
) -> Option<&datafusion::common::ScalarValue> {
    args.get(i)
        .and_then(|e| {
            (e.as_ref() as &dyn std::any::Any)
                .downcast_ref::<datafusion::physical_expr::expressions::Literal>()
        })
        .map(|l| l.value())
}
