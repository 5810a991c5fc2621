//! Joins: the pure parts. `keys` encodes join keys as comparable bytes (the same bytes the
//! engine hashes to route rows and uses as keys of the table arrangement); `lookup` joins
//! stream rows with the table rows found for them; `interval` keeps both sides of an interval
//! join and pairs rows whose event times are within the interval.
pub mod interval;
pub mod keys;
pub mod lookup;

pub use interval::IntervalJoin;
pub use keys::KeyEncoder;
pub use lookup::LookupJoin;

use datafusion::arrow::array::{Array, BooleanArray};
use serde::{Deserialize, Serialize};

use crate::Result;

/// Inner or left outer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JoinKind {
    /// Only matched rows.
    Inner,
    /// Every left row; right columns NULL where nothing matched.
    Left,
}

/// Evaluates a boolean expression to a mask where NULL counts as false.
pub(crate) fn mask_of(
    e: &std::sync::Arc<dyn datafusion::physical_expr::PhysicalExpr>,
    batch: &datafusion::arrow::record_batch::RecordBatch,
) -> Result<Vec<bool>> {
    let v = e.evaluate(batch)?.into_array(batch.num_rows())?;
    let b = v
        .as_any()
        .downcast_ref::<BooleanArray>()
        .ok_or_else(|| crate::Error::MissingColumn("a boolean join condition".into()))?;
    Ok((0..b.len()).map(|i| b.is_valid(i) && b.value(i)).collect())
}
