//! Sparkplug B over a real mosquitto: BIRTH messages declare metrics with aliases, DATA messages
//! use the aliases only; weir decodes every metric into a row (names resolved, signed integers
//! and floats right) and sends a truncated payload to the dead-letter file. The payloads are
//! encoded here by hand (protobuf wire format), independently of weir's decoder.
use weir_tests::{scratch, Mosquitto, MqttPublisher, WeirProcess};

fn varint(mut v: u64, out: &mut Vec<u8>) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

enum V {
    Int(u32),
    Float(f32),
    Double(f64),
    Bool(bool),
}

fn metric(name: Option<&str>, alias: u64, ts: u64, datatype: Option<u32>, v: V) -> Vec<u8> {
    let mut m = Vec::new();
    if let Some(n) = name {
        varint(1 << 3 | 2, &mut m);
        varint(n.len() as u64, &mut m);
        m.extend_from_slice(n.as_bytes());
    }
    varint(2 << 3, &mut m);
    varint(alias, &mut m);
    varint(3 << 3, &mut m);
    varint(ts, &mut m);
    if let Some(d) = datatype {
        varint(4 << 3, &mut m);
        varint(d as u64, &mut m);
    }
    match v {
        V::Int(x) => {
            varint(10 << 3, &mut m);
            varint(x as u64, &mut m);
        }
        V::Float(x) => {
            varint(12 << 3 | 5, &mut m);
            m.extend_from_slice(&x.to_le_bytes());
        }
        V::Double(x) => {
            varint(13 << 3 | 1, &mut m);
            m.extend_from_slice(&x.to_le_bytes());
        }
        V::Bool(b) => {
            varint(14 << 3, &mut m);
            varint(b as u64, &mut m);
        }
    }
    m
}

fn payload(ts: u64, seq: u64, metrics: Vec<Vec<u8>>) -> Vec<u8> {
    let mut p = Vec::new();
    varint(1 << 3, &mut p);
    varint(ts, &mut p);
    for m in metrics {
        varint(2 << 3 | 2, &mut p);
        varint(m.len() as u64, &mut p);
        p.extend(m);
    }
    varint(3 << 3, &mut p);
    varint(seq, &mut p);
    p
}

#[test]
fn sparkplug_b_metrics_become_rows() {
    let broker = Mosquitto::start("sparkplug");
    let dir = scratch("sparkplug");
    let group = format!("g{}", std::process::id());
    let t = |kind: &str, dev: &str| format!("spBv1.0/{group}/{kind}/edge1{dev}");
    let nbirth = payload(
        1000,
        0,
        vec![
            metric(Some("temp"), 1, 1000, Some(10), V::Double(20.5)),
            metric(Some("rpm"), 2, 1000, Some(3), V::Int((-5i32) as u32)),
            metric(Some("running"), 3, 1000, Some(11), V::Bool(true)),
        ],
    );
    let msgs: Vec<(String, Vec<u8>)> = vec![
        (t("NBIRTH", ""), nbirth.clone()),
        (
            t("DBIRTH", "/dev7"),
            payload(
                1001,
                1,
                vec![metric(Some("pressure"), 10, 1001, Some(9), V::Float(6.25))],
            ),
        ),
        (
            t("DDATA", "/dev7"),
            payload(2000, 2, vec![metric(None, 10, 2000, None, V::Float(6.5))]),
        ),
        (t("NDATA", ""), nbirth[..nbirth.len() / 2].to_vec()),
        (
            t("NDATA", ""),
            payload(
                3000,
                3,
                vec![
                    metric(None, 1, 3000, None, V::Double(21.0)),
                    metric(None, 2, 3000, None, V::Int((-7i32) as u32)),
                ],
            ),
        ),
    ];
    let out = dir.join("rows.csv");
    let dead = dir.join("dead.jsonl");
    let script = dir.join("p.sql");
    std::fs::write(
        &script,
        format!(
            "CREATE SOURCE sp (message_type TEXT, edge_node TEXT, device TEXT, metric TEXT, datatype TEXT, value DOUBLE, ts BIGINT, seq BIGINT)
               WITH (connector = 'mqtt', url = 'mqtt://127.0.0.1:{}', topic = 'spBv1.0/{group}/#', format = 'sparkplug',
                     max_messages = '{}', dead_letter = '{}');
             CREATE SINK rows WITH (connector = 'file', path = '{}', format = 'csv', header = 'false');
             CREATE PIPELINE metrics AS INSERT INTO rows
             SELECT message_type, edge_node, coalesce(device, '-') AS device, metric, datatype, value, ts, seq FROM sp;",
            broker.port,
            msgs.len(),
            dead.display(),
            out.display()
        ),
    )
    .unwrap();
    let mut weir = WeirProcess::start(&script, &[]);
    weir.wait_for("subscribed to", 1);
    let mut publisher = MqttPublisher::connect("sp-pub", broker.port);
    for (topic, p) in &msgs {
        publisher.publish(topic, p.clone());
    }
    publisher.wait_acks();
    weir.finish();
    let mut rows: Vec<String> = std::fs::read_to_string(&out)
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    rows.sort();
    assert_eq!(
        rows,
        vec![
            "DBIRTH,edge1,dev7,pressure,Float,6.25,1001,1",
            "DDATA,edge1,dev7,pressure,Float,6.5,2000,2",
            "NBIRTH,edge1,-,rpm,Int32,-5.0,1000,0",
            "NBIRTH,edge1,-,running,Boolean,1.0,1000,0",
            "NBIRTH,edge1,-,temp,Double,20.5,1000,0",
            "NDATA,edge1,-,rpm,Int32,-7.0,3000,3",
            "NDATA,edge1,-,temp,Double,21.0,3000,3",
        ]
    );
    let dead_lines: Vec<serde_json::Value> = std::fs::read_to_string(&dead)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(dead_lines.len(), 1);
    assert!(
        dead_lines[0]["position"]
            .as_str()
            .unwrap()
            .contains("/NDATA/edge1#3"),
        "{dead_lines:?}"
    );
}
