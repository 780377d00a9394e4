//! Prometheus metrics, recorded into a recorder this server owns (no global recorder, so that
//! several servers — e.g. parallel tests — never share or fight over one).

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics::{Key, Label, Level, Metadata, Recorder};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle, PrometheusRecorder};

use crate::AppState;

pub struct Metrics {
    recorder: PrometheusRecorder,
    handle: PrometheusHandle,
}

fn meta() -> Metadata<'static> {
    Metadata::new(module_path!(), Level::INFO, Some(module_path!()))
}

impl Metrics {
    pub fn new() -> Self {
        let recorder = PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        Metrics { recorder, handle }
    }

    pub fn request(&self, route: String, method: String, status: u16, seconds: f64) {
        let labels = vec![
            Label::new("route", route),
            Label::new("method", method),
            Label::new("status", status.to_string()),
        ];
        self.recorder
            .register_counter(
                &Key::from_parts("kopa_http_requests_total", labels.clone()),
                &meta(),
            )
            .increment(1);
        self.recorder
            .register_histogram(
                &Key::from_parts("kopa_http_request_duration_seconds", labels[..2].to_vec()),
                &meta(),
            )
            .record(seconds);
    }

    pub fn objects_written(&self, stored: u64, failed: u64) {
        self.recorder
            .register_counter(&Key::from_name("kopa_objects_written_total"), &meta())
            .increment(stored);
        self.recorder
            .register_counter(&Key::from_name("kopa_objects_rejected_total"), &meta())
            .increment(failed);
    }

    pub fn render(&self) -> String {
        self.handle.render()
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
