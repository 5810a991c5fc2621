//! Business KPIs against their baselines: a file of KPI readings (uptime per site, energy per
//! unit) through two `kpi` sinks; `GET /api/v1/kpis` and the overview's tiles give each KPI's
//! baseline (the mean over October, computed here independently), its current value (the
//! latest from November on) and the change, good or bad by the KPI's direction; the figures
//! survive a server restart.
use std::time::Duration;

use serde_json::{json, Value};
use weir_tests::scratch;
use weir_tests::serve::WeirServer;

/// ms of `2026-MM-DD` 00:00 UTC plus `h` hours.
fn day(month: u32, d: u32, h: i64) -> i64 {
    let oct1 = 1_790_812_800_000i64; // 2026-10-01T00:00:00Z
    let days = if month == 10 { d - 1 } else { 31 + d - 1 } as i64;
    oct1 + days * 86_400_000 + h * 3_600_000
}

fn find<'a>(kpis: &'a [Value], name: &str, site: &str) -> &'a Value {
    kpis.iter()
        .find(|k| k["name"] == name && k["site"] == site)
        .unwrap_or_else(|| panic!("no {name} at {site}: {kpis:?}"))
}

#[test]
fn kpis_are_shown_against_their_baselines() {
    let dir = scratch("serve-kpis");
    let rows: Vec<(&str, &str, i64, f64)> = vec![
        ("uptime", "A", day(10, 1, 0) - 3_600_000, 50.0), // September 30: before the baseline
        ("uptime", "A", day(10, 2, 0), 90.0),
        ("uptime", "A", day(10, 15, 0), 92.0),
        ("uptime", "A", day(10, 31, 23), 94.0),
        ("uptime", "A", day(11, 1, 0), 95.0),
        ("uptime", "A", day(11, 20, 0), 97.0),
        ("uptime", "A", day(11, 10, 0), 91.0), // older than the latest: not current
        ("uptime", "B", day(10, 5, 0), 80.0),
        ("uptime", "B", day(11, 5, 0), 76.0),
        ("energy_per_unit", "A", day(10, 3, 0), 10.0),
        ("energy_per_unit", "A", day(10, 4, 0), 12.0),
        ("energy_per_unit", "A", day(11, 3, 0), 9.9),
    ];
    let mut csv = String::from("kpi,site,ts,value\n");
    for (k, s, t, v) in &rows {
        csv.push_str(&format!("{k},{s},{t},{v}\n"));
    }
    let input = dir.join("kpis.csv");
    std::fs::write(&input, csv).expect("input");
    let sql = format!(
        "CREATE SOURCE k (kpi TEXT, site TEXT, ts BIGINT, value DOUBLE)
           WITH (connector = 'file', path = '{}', format = 'csv', event_time = 'ts', watermark_delay = '90d');
         CREATE SINK up WITH (connector = 'kpi', site = 'site', time = 'ts', unit = '%',
           baseline = '2026-10-01/2026-11-01');
         CREATE SINK energy WITH (connector = 'kpi', site = 'site', time = 'ts', unit = 'kWh',
           better = 'lower', baseline = '2026-10-01/2026-11-01');
         CREATE PIPELINE uptime AS INSERT INTO up SELECT kpi, site, ts, value FROM k WHERE kpi = 'uptime';
         CREATE PIPELINE power AS INSERT INTO energy SELECT kpi, site, ts, value FROM k WHERE kpi = 'energy_per_unit';",
        input.display()
    );
    let state = dir.join("state");
    let s = WeirServer::start(&state, &[]);
    let body = json!({"name": "kpis", "sql": sql});
    let r = s.must("POST", "/api/v1/pipelines", Some(&body));
    assert_eq!(r.status, 201, "{}", r.text);
    s.wait_state("kpis", "finished", Duration::from_secs(60));

    // The oracle: the mean of the values in [Oct 1, Nov 1), the latest at or after Nov 1.
    let (start, end) = (day(10, 1, 0), day(11, 1, 0));
    let expect = |name: &str, site: &str| {
        let of: Vec<_> = rows.iter().filter(|r| r.0 == name && r.1 == site).collect();
        let base: Vec<f64> = of
            .iter()
            .filter(|r| r.2 >= start && r.2 < end)
            .map(|r| r.3)
            .collect();
        let cur = of
            .iter()
            .filter(|r| r.2 >= end)
            .max_by_key(|r| r.2)
            .map(|r| r.3);
        (
            base.iter().sum::<f64>() / base.len() as f64,
            cur.expect("a current value"),
        )
    };
    let check = |s: &WeirServer| {
        let kpis = s.must("GET", "/api/v1/kpis", None).json();
        let kpis = kpis.as_array().expect("kpis").clone();
        assert_eq!(kpis.len(), 3, "{kpis:?}");
        for (name, site, better) in [
            ("uptime", "A", true),
            ("uptime", "B", false),
            ("energy_per_unit", "A", true),
        ] {
            let k = find(&kpis, name, site);
            let (b, c) = expect(name, site);
            assert!((k["baseline"].as_f64().unwrap() - b).abs() < 1e-9, "{k}");
            assert_eq!(k["current"].as_f64(), Some(c), "{k}");
            let pct = (c - b) / b * 100.0;
            assert!(
                (k["change_pct"].as_f64().unwrap() - pct).abs() < 1e-9,
                "{k}"
            );
            assert_eq!(k["improved"], better, "{k}");
        }
        let page = s.must("GET", "/ui", None);
        assert_eq!(page.status, 200);
        let tile = page
            .text
            .split("data-label=\"uptime · A\"")
            .nth(1)
            .expect("the uptime tile");
        let tile = tile.split("</div>").next().unwrap_or("");
        assert!(
            tile.contains("97.00 %") && tile.contains("baseline 92.00") && tile.contains("+5.4%"),
            "{tile}"
        );
    };
    check(&s);
    s.terminate();
    let s = WeirServer::start(&state, &[]);
    check(&s);
}
