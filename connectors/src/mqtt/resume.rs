//! When an MQTT source can continue from a checkpoint: the broker keeps what weir has not
//! acknowledged only for a persistent session (a fixed `client_id`, `clean_session = 'false'`,
//! QoS 1 or 2), and weir acknowledges a message once it is in the `archive`, which is where a
//! restored job reads the messages after its checkpoint from.
use std::collections::BTreeMap;

/// `Ok` when a source with `options` can be checkpointed; otherwise what to set.
pub fn resumable(options: &BTreeMap<String, String>) -> Result<(), String> {
    let get = |k: &str| options.get(k).map(|v| v.trim().to_ascii_lowercase());
    let mut missing = Vec::new();
    if get("archive").is_none() {
        missing.push(
            "archive = 'DIR' (messages are acknowledged once archived, and replayed from there)",
        );
    }
    if get("client_id").is_none() {
        missing.push("a fixed client_id (the broker keeps the session under it)");
    }
    if get("clean_session").as_deref() != Some("false") {
        missing
            .push("clean_session = 'false' (a persistent session keeps unacknowledged messages)");
    }
    if get("qos").as_deref() == Some("0") {
        missing.push("qos = '1' or '2' (QoS 0 messages are never delivered again)");
    }
    if missing.is_empty() {
        return Ok(());
    }
    Err(format!(
        "an MQTT source continues from a checkpoint only with {}",
        missing.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_missing_is_named() {
        let mut o: BTreeMap<String, String> = [("topic", "t")]
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        let e = resumable(&o).unwrap_err();
        assert!(e.contains("archive") && e.contains("client_id") && e.contains("clean_session"));
        o.insert("archive".into(), "/tmp/a".into());
        o.insert("client_id".into(), "c".into());
        o.insert("clean_session".into(), "false".into());
        assert_eq!(resumable(&o), Ok(()));
        o.insert("qos".into(), "0".into());
        assert!(resumable(&o).unwrap_err().contains("qos"));
    }
}
