//! OTLP traces (`opentelemetry.proto.collector.trace.v1.TraceService`): each span becomes a
//! [`SpanItem`] with its resource's attributes, its `service.name` as the service, and the
//! instrumentation scope as `otel.scope.name` / `otel.scope.version` attributes.

use std::sync::Arc;

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    self, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use tonic::{Request, Response, Status};

use super::{attributes, id, nanos, resource, scope_attributes, summarize};
use crate::records::{SpanEventItem, SpanItem, SpanLinkItem};
use crate::service::IngestService;

#[derive(Clone)]
pub struct OtlpTraces {
    service: Arc<IngestService>,
}

/// The mountable OTLP trace server.
pub fn traces_server(
    service: Arc<IngestService>,
    max_message_bytes: usize,
) -> TraceServiceServer<OtlpTraces> {
    pharos_runtime::tonic_server!(
        TraceServiceServer::new(OtlpTraces { service }),
        max_message_bytes
    )
}

#[tonic::async_trait]
impl trace_service_server::TraceService for OtlpTraces {
    async fn export(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        let outcome = self
            .service
            .write_spans(to_span_items(request.into_inner()))
            .await?;
        let partial_success = (!outcome.rejections.is_empty()).then(|| ExportTracePartialSuccess {
            rejected_spans: i64::try_from(outcome.rejections.len()).unwrap_or(i64::MAX),
            error_message: summarize(&outcome.rejections),
        });
        Ok(Response::new(ExportTraceServiceResponse {
            partial_success,
        }))
    }
}

/// Every span an OTLP request carries.
pub fn to_span_items(request: ExportTraceServiceRequest) -> Vec<SpanItem> {
    let mut items = Vec::new();
    for resource_spans in request.resource_spans {
        let (resource, service) = resource(resource_spans.resource.as_ref());
        for scope_spans in resource_spans.scope_spans {
            let scope = scope_attributes(scope_spans.scope.as_ref());
            for span in scope_spans.spans {
                let status = span.status.unwrap_or_default();
                let mut span_attributes = attributes(&span.attributes);
                span_attributes.extend(scope.iter().cloned());
                items.push(SpanItem {
                    trace_id: span.trace_id,
                    span_id: span.span_id,
                    parent_span_id: id(span.parent_span_id),
                    trace_state: span.trace_state,
                    service: service.clone(),
                    name: span.name,
                    kind: span.kind,
                    start_ns: nanos(span.start_time_unix_nano),
                    end_ns: nanos(span.end_time_unix_nano),
                    status_code: status.code,
                    status_message: status.message,
                    attributes: span_attributes,
                    events: span
                        .events
                        .into_iter()
                        .map(|event| SpanEventItem {
                            time_ns: nanos(event.time_unix_nano),
                            name: event.name,
                            attributes: attributes(&event.attributes),
                        })
                        .collect(),
                    links: span
                        .links
                        .into_iter()
                        .map(|link| SpanLinkItem {
                            trace_id: link.trace_id,
                            span_id: link.span_id,
                            trace_state: link.trace_state,
                            attributes: attributes(&link.attributes),
                        })
                        .collect(),
                    resource: resource.clone(),
                });
            }
        }
    }
    items
}
