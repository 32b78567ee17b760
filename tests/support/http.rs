//! HTTP helpers: the reqwest client tests share, and reading a number from `/metrics`.

use std::time::Duration;

/// The shared HTTP client: every request is bounded (20 s).
pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .expect("client")
}

/// A number from Prometheus text (sum of all series of that name).
pub fn metric_value(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| l.split([' ', '{']).next() == Some(name))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}
