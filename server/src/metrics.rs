//! `/metrics` in the Prometheus text format (version 0.0.4), rendered by hand: a handful
//! of gauges and counters do not justify a metrics framework.

use std::fmt::Write as _;

/// One sample to render.
#[derive(Debug, Clone, PartialEq)]
pub struct Metric {
    pub name: &'static str,
    pub help: &'static str,
    pub kind: Kind,
    /// (label pairs, value)
    pub samples: Vec<(Vec<(&'static str, String)>, f64)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Gauge,
    Counter,
}

impl Metric {
    pub fn gauge(name: &'static str, help: &'static str, value: f64) -> Self {
        Self { name, help, kind: Kind::Gauge, samples: vec![(vec![], value)] }
    }

    pub fn counter(name: &'static str, help: &'static str, value: f64) -> Self {
        Self { name, help, kind: Kind::Counter, samples: vec![(vec![], value)] }
    }
}

fn escape_label(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

fn number(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        }
    } else {
        format!("{v}")
    }
}

pub fn render(metrics: &[Metric]) -> String {
    let mut out = String::new();
    for m in metrics {
        let kind = match m.kind {
            Kind::Gauge => "gauge",
            Kind::Counter => "counter",
        };
        let _ = writeln!(out, "# HELP {} {}", m.name, m.help);
        let _ = writeln!(out, "# TYPE {} {kind}", m.name);
        for (labels, value) in &m.samples {
            let labels = if labels.is_empty() {
                String::new()
            } else {
                let inner: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{}\"", escape_label(v))).collect();
                format!("{{{}}}", inner.join(","))
            };
            let _ = writeln!(out, "{}{labels} {}", m.name, number(*value));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_help_type_and_labelled_samples() {
        let mut rtt = Metric::gauge("kelpie_rtt_seconds", "Round-trip time per viewer.", 0.0);
        rtt.samples = vec![(vec![("viewer", "v\"1".into())], 0.002)];
        let text = render(&[Metric::counter("kelpie_frames_encoded_total", "Frames encoded.", 42.0), rtt]);
        assert_eq!(
            text,
            "# HELP kelpie_frames_encoded_total Frames encoded.\n# TYPE kelpie_frames_encoded_total counter\n\
kelpie_frames_encoded_total 42\n# HELP kelpie_rtt_seconds Round-trip time per viewer.\n# TYPE kelpie_rtt_seconds gauge\n\
kelpie_rtt_seconds{viewer=\"v\\\"1\"} 0.002\n"
        );
    }

    #[test]
    fn special_values_use_prometheus_spelling() {
        assert_eq!(number(f64::NAN), "NaN");
        assert_eq!(number(f64::INFINITY), "+Inf");
        assert_eq!(number(1.5), "1.5");
    }
}
