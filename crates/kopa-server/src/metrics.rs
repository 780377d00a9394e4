//! Prometheus metrics, recorded into a recorder this server owns (no global recorder, so that
//! several servers — e.g. parallel tests — never share or fight over one).
//!
//! [`Metrics`] is a cheap handle (clone it): the federation sync loop records its peer figures
//! through the same handle as the server, so `/metrics` shows them all.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics::{Key, Label, Level, Metadata, Recorder};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle, PrometheusRecorder};

use crate::AppState;

/// The metrics of one node. Cloning shares the recorder.
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Recording>,
}

struct Recording {
    recorder: PrometheusRecorder,
    handle: PrometheusHandle,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

fn meta() -> Metadata<'static> {
    Metadata::new(module_path!(), Level::INFO, Some(module_path!()))
}

impl Metrics {
    pub fn new() -> Self {
        let recorder = PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        Metrics {
            inner: Arc::new(Recording { recorder, handle }),
        }
    }

    fn counter(&self, name: &'static str, labels: Vec<Label>, n: u64) {
        self.inner
            .recorder
            .register_counter(&Key::from_parts(name, labels), &meta())
            .increment(n);
    }

    fn gauge(&self, name: &'static str, labels: Vec<Label>, v: f64) {
        self.inner
            .recorder
            .register_gauge(&Key::from_parts(name, labels), &meta())
            .set(v);
    }

    fn peer(peer: &str) -> Vec<Label> {
        vec![Label::new("peer", peer.to_string())]
    }

    /// `kopa_peer_last_sync_timestamp_seconds{peer}`: the end of the last successful sync round
    /// with `peer`, in unix seconds. Also makes `kopa_peer_sync_errors_total{peer}` appear, at 0
    /// until a round fails, so that alerts on its rate see the peer from its first round.
    pub fn peer_synced(&self, peer: &str, unix_seconds: f64) {
        self.counter("kopa_peer_sync_errors_total", Self::peer(peer), 0);
        self.gauge(
            "kopa_peer_last_sync_timestamp_seconds",
            Self::peer(peer),
            unix_seconds,
        );
    }

    /// `kopa_peer_lag_objects{peer}` and `kopa_peer_lag_seconds{peer}`: what `peer` still has for
    /// this node after the last round, and how old the oldest of it is.
    pub fn peer_lag(&self, peer: &str, objects: u64, seconds: f64) {
        self.gauge("kopa_peer_lag_objects", Self::peer(peer), objects as f64);
        self.gauge("kopa_peer_lag_seconds", Self::peer(peer), seconds);
    }

    /// `kopa_peer_sync_errors_total{peer}`: a failed sync round (refused connection, 5xx, …).
    pub fn peer_sync_error(&self, peer: &str) {
        self.counter("kopa_peer_sync_errors_total", Self::peer(peer), 1);
    }

    /// `kopa_peer_objects_received_total{peer}` (new versions stored),
    /// `kopa_peer_objects_rejected_total{peer,reason}` and `kopa_signatures_verified_total`, from
    /// what [`kopa_ingest::receive`] did with objects delivered by `peer`.
    pub fn peer_received(&self, peer: &str, report: &kopa_ingest::ReceiveReport) {
        self.counter(
            "kopa_peer_objects_received_total",
            Self::peer(peer),
            report.stored,
        );
        for (reason, n) in report.rejected_by_reason() {
            let labels = vec![
                Label::new("peer", peer.to_string()),
                Label::new("reason", reason),
            ];
            self.counter("kopa_peer_objects_rejected_total", labels, n);
        }
        self.counter(
            "kopa_signatures_verified_total",
            Vec::new(),
            report.verified,
        );
    }

    /// `kopa_peer_posts_refused_total{peer}`: a post by `peer` into a collection its export policy
    /// does not name, refused whole.
    pub fn peer_post_refused(&self, peer: &str) {
        self.counter("kopa_peer_posts_refused_total", Self::peer(peer), 1);
    }

    /// What this node refused from `peer` since it started, as `/metrics` counts it (for the peer's
    /// status): whole posts outside its policy, and objects by reason (pulled or posted).
    pub fn peer_refusals(&self, peer: &str) -> (u64, std::collections::BTreeMap<String, u64>) {
        let text = self.render();
        let value = |v: &str| v.trim().parse::<f64>().map_or(0, |v| v as u64);
        let posts = format!("kopa_peer_posts_refused_total{{peer=\"{peer}\"}} ");
        let objects = format!("kopa_peer_objects_rejected_total{{peer=\"{peer}\",reason=\"");
        let mut refused = 0;
        let mut by_reason = std::collections::BTreeMap::new();
        for line in text.lines() {
            if let Some(v) = line.strip_prefix(&posts) {
                refused = value(v);
            } else if let Some((reason, v)) = line
                .strip_prefix(&objects)
                .and_then(|rest| rest.split_once("\"} "))
            {
                by_reason.insert(reason.to_string(), value(v));
            }
        }
        (refused, by_reason)
    }

    pub(crate) fn request(&self, route: String, method: String, status: u16, seconds: f64) {
        let labels = vec![
            Label::new("route", route),
            Label::new("method", method),
            Label::new("status", status.to_string()),
        ];
        self.inner
            .recorder
            .register_counter(
                &Key::from_parts("kopa_http_requests_total", labels.clone()),
                &meta(),
            )
            .increment(1);
        self.inner
            .recorder
            .register_histogram(
                &Key::from_parts("kopa_http_request_duration_seconds", labels[..2].to_vec()),
                &meta(),
            )
            .record(seconds);
    }

    pub fn objects_written(&self, stored: u64, failed: u64) {
        self.counter("kopa_objects_written_total", Vec::new(), stored);
        self.counter("kopa_objects_rejected_total", Vec::new(), failed);
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        self.inner.handle.render()
    }
}

/// Middleware: count every request by route template, method and status, and time it.
pub async fn track(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let start = Instant::now();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let method = req.method().to_string();
    let resp = next.run(req).await;
    state.metrics().request(
        route,
        method,
        resp.status().as_u16(),
        start.elapsed().as_secs_f64(),
    );
    resp
}

/// `GET /metrics`: Prometheus text format.
pub async fn render(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics().render(),
    )
}

impl kopa_ingest::FederationMetrics for Metrics {
    fn peer_received(&self, peer: &str, report: &kopa_ingest::ReceiveReport) {
        Metrics::peer_received(self, peer, report);
    }
    fn peer_synced(&self, peer: &str, unix_seconds: f64) {
        Metrics::peer_synced(self, peer, unix_seconds);
    }
    fn peer_lag(&self, peer: &str, objects: u64, seconds: f64) {
        Metrics::peer_lag(self, peer, objects, seconds);
    }
    fn peer_sync_error(&self, peer: &str) {
        Metrics::peer_sync_error(self, peer);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_peers_error_counter_is_shown_at_zero_from_its_first_successful_round() {
        let m = Metrics::new();
        assert!(!m.render().contains("kopa_peer_sync_errors_total"));
        m.peer_synced("p", 1.0);
        assert!(
            m.render()
                .contains("kopa_peer_sync_errors_total{peer=\"p\"} 0"),
            "{}",
            m.render()
        );
        m.peer_sync_error("p");
        m.peer_synced("p", 2.0);
        assert!(m
            .render()
            .contains("kopa_peer_sync_errors_total{peer=\"p\"} 1"));
    }
}
