//! The unit exchanged between workers: a `RecordBatch`, serialized as Arrow IPC when it has to
//! cross a process boundary (timely moves it without copying between threads).
use datafusion::arrow::ipc::reader::StreamReader;
use datafusion::arrow::ipc::writer::StreamWriter;
use datafusion::arrow::record_batch::RecordBatch;
use serde::de::Error as _;
use serde::ser::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A record batch that timely can exchange.
#[derive(Clone, Debug)]
pub struct BatchMsg(pub RecordBatch);

impl Serialize for BatchMsg {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut buf = Vec::new();
        {
            let mut w =
                StreamWriter::try_new(&mut buf, &self.0.schema()).map_err(S::Error::custom)?;
            w.write(&self.0).map_err(S::Error::custom)?;
            w.finish().map_err(S::Error::custom)?;
        }
        s.serialize_bytes(&buf)
    }
}

impl<'de> Deserialize<'de> for BatchMsg {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let bytes: Vec<u8> = serde_bytes_vec(d)?;
        let mut r =
            StreamReader::try_new(std::io::Cursor::new(bytes), None).map_err(D::Error::custom)?;
        match r.next() {
            Some(Ok(b)) => Ok(BatchMsg(b)),
            Some(Err(e)) => Err(D::Error::custom(e)),
            None => Err(D::Error::custom("empty batch message")),
        }
    }
}

fn serde_bytes_vec<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
    struct V;
    impl<'de> serde::de::Visitor<'de> for V {
        type Value = Vec<u8>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("bytes")
        }
        fn visit_bytes<E>(self, v: &[u8]) -> Result<Vec<u8>, E> {
            Ok(v.to_vec())
        }
        fn visit_byte_buf<E>(self, v: Vec<u8>) -> Result<Vec<u8>, E> {
            Ok(v)
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut a: A) -> Result<Vec<u8>, A::Error> {
            let mut v = Vec::new();
            while let Some(b) = a.next_element()? {
                v.push(b);
            }
            Ok(v)
        }
    }
    d.deserialize_byte_buf(V)
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::Int64Array;
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use std::sync::Arc;

    #[test]
    fn round_trips_through_json() {
        let s = Arc::new(Schema::new(vec![Field::new("a", DataType::Int64, false)]));
        let b = RecordBatch::try_new(s, vec![Arc::new(Int64Array::from(vec![1, 2, 3]))]).unwrap();
        let text = serde_json::to_string(&BatchMsg(b.clone())).unwrap();
        let back: BatchMsg = serde_json::from_str(&text).unwrap();
        assert_eq!(back.0, b);
    }
}
