//! Statement parameters over the extended protocol (`SELECT … WHERE sensor_id = $1`, as
//! drivers send them). Their types are what DataFusion infers from the query — told to the
//! client in the statement's description — unless the client gave its own; each value, in
//! text or binary form, becomes a literal of the inferred type. Only `SELECT` takes
//! parameters: weir's other statements are declarations, written out whole.
use datafusion::arrow::datatypes::DataType;
use datafusion::scalar::ScalarValue;
use pgwire::api::portal::Portal;
use pgwire::api::Type;

use crate::serve::error::ApiError;

/// Microseconds from the Unix epoch to Postgres' (2000-01-01).
const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;

/// The Postgres types to describe parameters with: those the client gave, else the inferred
/// ones, TEXT where neither is.
pub fn describe_types(inferred: &[Option<DataType>], given: &[Option<Type>]) -> Vec<Type> {
    inferred
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let known = |t: &Type| *t != Type::UNKNOWN;
            let given = given.get(i).cloned().flatten().filter(known);
            given
                .or_else(|| {
                    let t = t.as_ref()?;
                    arrow_pg::datatypes::into_pg_type(t).ok().filter(known)
                })
                .unwrap_or(Type::TEXT)
        })
        .collect()
}

fn bad(i: usize, e: impl std::fmt::Display) -> ApiError {
    ApiError::BadRequest(format!("parameter ${}: {e}", i + 1))
}

/// The portal's parameters as literals of the `inferred` types (`$1` first).
pub fn values(
    portal: &Portal<String>,
    inferred: &[Option<DataType>],
) -> Result<Vec<ScalarValue>, ApiError> {
    if portal.parameter_len() != inferred.len() {
        return Err(ApiError::BadRequest(format!(
            "the statement takes {} parameters, {} were given",
            inferred.len(),
            portal.parameter_len()
        )));
    }
    let described = describe_types(inferred, &portal.statement.parameter_types);
    (0..portal.parameter_len())
        .map(|i| {
            let v = one(portal, i, &described[i])?;
            match &inferred[i] {
                Some(t) if v.data_type() != *t => v.cast_to(t).map_err(|e| bad(i, e)),
                _ => Ok(v),
            }
        })
        .collect()
}

/// Parameter `i`, sent as type `ty`: text as text (cast afterwards), binary by its type.
fn one(portal: &Portal<String>, i: usize, ty: &Type) -> Result<ScalarValue, ApiError> {
    let Some(raw) = portal.parameters.get(i).cloned().flatten() else {
        return Ok(ScalarValue::Null);
    };
    if !portal.parameter_format.is_binary(i) {
        let text = std::str::from_utf8(&raw).map_err(|e| bad(i, e))?;
        return Ok(ScalarValue::Utf8(Some(text.to_string())));
    }
    let p = |e: pgwire::error::PgWireError| bad(i, e);
    Ok(match *ty {
        Type::BOOL => ScalarValue::Boolean(portal.parameter::<bool>(i, ty).map_err(p)?),
        Type::INT2 => ScalarValue::Int16(portal.parameter::<i16>(i, ty).map_err(p)?),
        Type::INT4 => ScalarValue::Int32(portal.parameter::<i32>(i, ty).map_err(p)?),
        Type::INT8 => ScalarValue::Int64(portal.parameter::<i64>(i, ty).map_err(p)?),
        Type::FLOAT4 => ScalarValue::Float32(portal.parameter::<f32>(i, ty).map_err(p)?),
        Type::FLOAT8 => ScalarValue::Float64(portal.parameter::<f64>(i, ty).map_err(p)?),
        Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME => {
            ScalarValue::Utf8(portal.parameter::<String>(i, ty).map_err(p)?)
        }
        Type::TIMESTAMP | Type::TIMESTAMPTZ => {
            let bytes: [u8; 8] = raw[..]
                .try_into()
                .map_err(|_| bad(i, "a binary timestamp is 8 bytes"))?;
            let micros = i64::from_be_bytes(bytes).saturating_add(PG_EPOCH_MICROS);
            let tz = (*ty == Type::TIMESTAMPTZ).then(|| "+00:00".into());
            ScalarValue::TimestampMicrosecond(Some(micros), tz)
        }
        _ => {
            return Err(bad(
                i,
                format!(
                    "type {} in binary form is not taken; send it as text",
                    ty.name()
                ),
            ))
        }
    })
}
