//! Rendering metric families in the two formats On-Premises offered: the Prometheus text format
//! (version 0.0.4), and its JSON `{"<name>":{"type","help","data":[{"labels","value"}]}}`, where
//! a histogram becomes its `_bucket`, `_sum` and `_count` series.

use std::fmt::Write;

use premise_engine::metrics::{Family, Kind, Value};
use serde_json::{Map, json};

pub const PROMETHEUS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

pub fn prometheus(families: &[Family]) -> String {
    let mut out = String::new();
    for family in families {
        let kind = match family.kind {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        };
        let _ = writeln!(out, "# HELP {} {}", family.name, escape(family.help, false));
        let _ = writeln!(out, "# TYPE {} {kind}", family.name);
        for sample in &family.samples {
            match &sample.value {
                Value::Number(v) => {
                    let _ = writeln!(
                        out,
                        "{}{} {}",
                        family.name,
                        labels(&sample.labels, None),
                        number(*v)
                    );
                }
                Value::Histogram(buckets, sum) => {
                    for (le, count) in buckets {
                        let le = number(*le);
                        let _ = writeln!(
                            out,
                            "{}_bucket{} {count}",
                            family.name,
                            labels(&sample.labels, Some(&le))
                        );
                    }
                    let count = buckets.last().map_or(0, |(_, c)| *c);
                    let l = labels(&sample.labels, None);
                    let _ = writeln!(out, "{}_sum{l} {}", family.name, number(*sum));
                    let _ = writeln!(out, "{}_count{l} {count}", family.name);
                }
            }
        }
    }
    out
}

/// The On-Premises JSON object of metrics (what goes under `"metrics"` or `"stats":{"app"}`).
pub fn json(families: &[Family]) -> serde_json::Value {
    let mut out = Map::new();
    for family in families {
        for sample in &family.samples {
            let label_map = |extra: Option<(&str, String)>| {
                let mut m: Map<String, serde_json::Value> =
                    sample.labels.iter().map(|(k, v)| ((*k).to_owned(), json!(v))).collect();
                if let Some((k, v)) = extra {
                    m.insert(k.to_owned(), json!(v));
                }
                m
            };
            let point = |labels: Map<String, serde_json::Value>, value: serde_json::Value| {
                if labels.is_empty() {
                    json!({ "value": value })
                } else {
                    json!({ "labels": labels, "value": value })
                }
            };
            match &sample.value {
                Value::Number(v) => {
                    let kind = if family.kind == Kind::Counter { "counter" } else { "gauge" };
                    push(
                        &mut out,
                        family.name.to_owned(),
                        kind,
                        family.help,
                        point(label_map(None), num(*v)),
                    );
                }
                Value::Histogram(buckets, sum) => {
                    for (le, count) in buckets {
                        let labels = label_map(Some(("le", number(*le))));
                        push(
                            &mut out,
                            format!("{}_bucket", family.name),
                            "counter",
                            family.help,
                            point(labels, json!(count)),
                        );
                    }
                    let count = buckets.last().map_or(0, |(_, c)| *c);
                    push(
                        &mut out,
                        format!("{}_sum", family.name),
                        "counter",
                        family.help,
                        point(label_map(None), num(*sum)),
                    );
                    push(
                        &mut out,
                        format!("{}_count", family.name),
                        "counter",
                        family.help,
                        point(label_map(None), json!(count)),
                    );
                }
            }
        }
    }
    serde_json::Value::Object(out)
}

fn push(
    out: &mut Map<String, serde_json::Value>,
    name: String,
    kind: &str,
    help: &str,
    point: serde_json::Value,
) {
    let family =
        out.entry(name).or_insert_with(|| json!({ "type": kind, "help": help, "data": [] }));
    if let Some(data) = family["data"].as_array_mut() {
        data.push(point);
    }
}

fn num(v: f64) -> serde_json::Value {
    if v.fract() == 0.0 && v.abs() < 9.0e15 { json!(v as i64) } else { json!(v) }
}

fn number(v: f64) -> String {
    if v == f64::INFINITY {
        "+Inf".to_owned()
    } else if v.fract() == 0.0 && v.abs() < 9.0e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

fn labels(labels: &[(&'static str, String)], le: Option<&str>) -> String {
    if labels.is_empty() && le.is_none() {
        return String::new();
    }
    let mut out = String::from("{");
    for (i, (k, v)) in
        labels.iter().map(|(k, v)| (*k, v.as_str())).chain(le.map(|le| ("le", le))).enumerate()
    {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(out, "{k}=\"{}\"", escape(v, true));
    }
    out.push('}');
    out
}

/// Backslash and newline escaped everywhere; double quotes in label values.
fn escape(text: &str, quotes: bool) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '"' if quotes => out.push_str("\\\""),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use premise_engine::metrics::Histogram;

    use super::*;

    #[test]
    fn renders_both_formats() {
        let h = Histogram::default();
        h.observe(std::time::Duration::from_millis(2));
        let families = vec![
            Family::new("a_total", "A \"thing\"\nhere", Kind::Counter)
                .with(vec![("route", "/v1/x\"y".into())], 3.0),
            Family::new("lat_seconds", "Latency", Kind::Histogram).with_histogram(vec![], &h),
        ];
        let text = prometheus(&families);
        assert!(text.contains("# HELP a_total A \"thing\"\\nhere\n"), "{text}");
        assert!(text.contains("a_total{route=\"/v1/x\\\"y\"} 3\n"), "{text}");
        assert!(text.contains("lat_seconds_bucket{le=\"0.001\"} 0\n"), "{text}");
        assert!(text.contains("lat_seconds_bucket{le=\"0.0025\"} 1\n"), "{text}");
        assert!(
            text.contains(
                "lat_seconds_bucket{le=\"+Inf\"} 1\nlat_seconds_sum 0.002\nlat_seconds_count 1\n"
            ),
            "{text}"
        );
        let json = json(&families);
        assert_eq!(json["a_total"]["type"], "counter");
        assert_eq!(json["a_total"]["data"][0]["labels"]["route"], "/v1/x\"y");
        assert_eq!(json["a_total"]["data"][0]["value"], 3);
        assert_eq!(json["lat_seconds_count"]["data"][0]["value"], 1);
        assert_eq!(json["lat_seconds_bucket"]["data"].as_array().unwrap().len(), 15);
    }
}
