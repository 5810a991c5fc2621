//! What the Kafka source holds between polling and decoding: records, and for tables the
//! columns a tombstone fills. Shared by the source and the tombstone decoder.

/// A message waiting to be decoded: partition, offset, payload (`None`: a tombstone), key and
/// timestamp (ms).
pub(crate) struct Record {
    pub(crate) partition: i32,
    pub(crate) offset: i64,
    pub(crate) payload: Option<Vec<u8>>,
    pub(crate) key: Option<Vec<u8>>,
    pub(crate) timestamp: Option<i64>,
}

/// For tables: tombstones (null payloads) become rows that delete their key. The table's
/// schema ends with a marker column (`delete` on tombstone rows, NULL otherwise); a tombstone
/// row carries the key (from the message key) and, in the event-time column, the message's
/// timestamp.
pub(crate) struct Tombstones {
    pub(crate) key: usize,
    pub(crate) marker: usize,
    pub(crate) time: Option<usize>,
}
