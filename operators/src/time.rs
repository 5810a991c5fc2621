//! Event time: reading a batch's event-time column as epoch milliseconds, and building
//! window-bound columns of the same kind (BIGINT ms or TIMESTAMP) as the event-time column.
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, Int64Array, PrimitiveArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{
    DataType, TimeUnit, TimestampMicrosecondType, TimestampMillisecondType,
    TimestampNanosecondType, TimestampSecondType,
};

use crate::{Error, EventTime, Result};

/// The latest event time weir accepts, epoch ms (about the year 2223). Rows outside
/// [`MIN_EVENT_TIME`, `MAX_EVENT_TIME`] are dead letters at the source, so that window bounds
/// (event time plus at most [`MAX_WINDOW`]) stay representable as TIMESTAMP nanoseconds.
pub const MAX_EVENT_TIME: EventTime = 8_000_000_000_000;
/// The earliest event time weir accepts, epoch ms (about the year 1717).
pub const MIN_EVENT_TIME: EventTime = -MAX_EVENT_TIME;
/// The longest window, slide, gap or join interval, ms (about 31 years).
pub const MAX_WINDOW: EventTime = 1_000_000_000_000;
/// The most windows one row may belong to (a hop's size / slide).
pub const MAX_WINDOWS_PER_ROW: EventTime = 10_000;

/// Whether `t` is an event time weir accepts.
pub fn in_range(t: EventTime) -> bool {
    (MIN_EVENT_TIME..=MAX_EVENT_TIME).contains(&t)
}

/// Whether `dt` can carry event time.
pub fn is_event_time_type(dt: &DataType) -> bool {
    matches!(
        dt,
        DataType::Int64
            | DataType::Int32
            | DataType::UInt32
            | DataType::UInt64
            | DataType::Timestamp(_, _)
    )
}

/// Reads `array` (integer epoch ms or a timestamp) as epoch milliseconds. NULLs are an error.
pub fn to_millis(name: &str, array: &ArrayRef) -> Result<Vec<EventTime>> {
    if array.null_count() > 0 {
        return Err(Error::NullEventTime(name.to_string()));
    }
    let (ints, divisor, multiplier) = match array.data_type() {
        DataType::Timestamp(unit, _) => {
            let raw = cast(array, &DataType::Int64)?;
            match unit {
                TimeUnit::Second => (raw, 1, 1000),
                TimeUnit::Millisecond => (raw, 1, 1),
                TimeUnit::Microsecond => (raw, 1000, 1),
                TimeUnit::Nanosecond => (raw, 1_000_000, 1),
            }
        }
        dt if is_event_time_type(dt) => (cast(array, &DataType::Int64)?, 1, 1),
        other => {
            return Err(Error::EventTimeType {
                column: name.to_string(),
                data_type: other.to_string(),
            })
        }
    };
    let ints = ints
        .as_any()
        .downcast_ref::<Int64Array>()
        .ok_or_else(|| Error::MissingColumn(name.to_string()))?;
    // A value the cast could not hold (an unsigned one past i64) is out of range, not 0.
    let lost = |i: usize| ints.is_null(i);
    Ok(ints
        .values()
        .iter()
        .enumerate()
        .map(|(i, v)| match lost(i) {
            true => EventTime::MAX,
            false => v.div_euclid(divisor).saturating_mul(multiplier),
        })
        .collect())
}

/// Builds a column of `data_type` (the event-time column's type) from epoch-ms values.
pub fn from_millis(data_type: &DataType, values: Vec<EventTime>) -> Result<ArrayRef> {
    let arr: ArrayRef = match data_type {
        DataType::Timestamp(unit, tz) => match unit {
            TimeUnit::Second => Arc::new(
                PrimitiveArray::<TimestampSecondType>::from(
                    values
                        .into_iter()
                        .map(|v| v.div_euclid(1000))
                        .collect::<Vec<_>>(),
                )
                .with_timezone_opt(tz.clone()),
            ),
            TimeUnit::Millisecond => Arc::new(
                PrimitiveArray::<TimestampMillisecondType>::from(values)
                    .with_timezone_opt(tz.clone()),
            ),
            TimeUnit::Microsecond => Arc::new(
                PrimitiveArray::<TimestampMicrosecondType>::from(
                    values
                        .into_iter()
                        .map(|v| v.saturating_mul(1000))
                        .collect::<Vec<_>>(),
                )
                .with_timezone_opt(tz.clone()),
            ),
            TimeUnit::Nanosecond => Arc::new(
                PrimitiveArray::<TimestampNanosecondType>::from(
                    values
                        .into_iter()
                        .map(|v| v.saturating_mul(1_000_000))
                        .collect::<Vec<_>>(),
                )
                .with_timezone_opt(tz.clone()),
            ),
        },
        DataType::Int64 => Arc::new(Int64Array::from(values)),
        other => cast(&(Arc::new(Int64Array::from(values)) as ArrayRef), other)?,
    };
    Ok(arr)
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::TimestampNanosecondArray;

    #[test]
    fn timestamp_round_trip() {
        let a: ArrayRef = Arc::new(TimestampNanosecondArray::from(vec![
            1_500_000_000i64,
            2_000_000,
        ]));
        let ms = to_millis("ts", &a).unwrap();
        assert_eq!(ms, vec![1500, 2]);
        let back = from_millis(a.data_type(), ms).unwrap();
        assert_eq!(back.data_type(), a.data_type());
    }

    #[test]
    fn strings_are_rejected() {
        let a: ArrayRef = Arc::new(datafusion::arrow::array::StringArray::from(vec!["x"]));
        assert!(matches!(
            to_millis("ts", &a),
            Err(Error::EventTimeType { .. })
        ));
    }
}
