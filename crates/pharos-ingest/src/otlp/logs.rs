//! OTLP logs (`opentelemetry.proto.collector.logs.v1.LogsService`): each log record becomes a
//! [`LogItem`] with its resource's attributes, its `service.name` as the service, a string body
//! as sent (any other body as its JSON text), its trace context, and the instrumentation scope
//! and `event_name` as attributes (`otel.scope.name`, `otel.scope.version`, `event.name`).

use std::sync::Arc;

use opentelemetry_proto::tonic::collector::logs::v1::logs_service_server::{
    self, LogsServiceServer,
};
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsPartialSuccess, ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use serde_json::Value;
use tonic::{Request, Response, Status};

use super::{attributes, id, json, nanos, resource, scope_attributes, summarize};
use crate::records::LogItem;
use crate::service::IngestService;

#[derive(Clone)]
pub struct OtlpLogs {
    service: Arc<IngestService>,
}

/// The mountable OTLP logs server.
pub fn logs_server(
    service: Arc<IngestService>,
    max_message_bytes: usize,
) -> LogsServiceServer<OtlpLogs> {
    pharos_runtime::tonic_server!(
        LogsServiceServer::new(OtlpLogs { service }),
        max_message_bytes
    )
}

#[tonic::async_trait]
impl logs_service_server::LogsService for OtlpLogs {
    async fn export(
        &self,
        request: Request<ExportLogsServiceRequest>,
    ) -> Result<Response<ExportLogsServiceResponse>, Status> {
        let outcome = self
            .service
            .write_logs(to_log_items(request.into_inner()))
            .await?;
        let partial_success = (!outcome.rejections.is_empty()).then(|| ExportLogsPartialSuccess {
            rejected_log_records: i64::try_from(outcome.rejections.len()).unwrap_or(i64::MAX),
            error_message: summarize(&outcome.rejections),
        });
        Ok(Response::new(ExportLogsServiceResponse { partial_success }))
    }
}

/// Every log record an OTLP request carries.
pub fn to_log_items(request: ExportLogsServiceRequest) -> Vec<LogItem> {
    let mut items = Vec::new();
    for resource_logs in request.resource_logs {
        let (resource, service) = resource(resource_logs.resource.as_ref());
        for scope_logs in resource_logs.scope_logs {
            let scope = scope_attributes(scope_logs.scope.as_ref());
            for record in scope_logs.log_records {
                let mut record_attributes = attributes(&record.attributes);
                record_attributes.extend(scope.iter().cloned());
                if !record.event_name.is_empty() {
                    record_attributes
                        .push(("event.name".to_owned(), Value::from(record.event_name)));
                }
                let body = match json(record.body.as_ref()) {
                    Value::String(text) => text,
                    Value::Null => String::new(),
                    other => other.to_string(),
                };
                items.push(LogItem {
                    time_ns: nanos(record.time_unix_nano),
                    observed_ns: nanos(record.observed_time_unix_nano),
                    service: service.clone(),
                    severity_number: record.severity_number,
                    severity_text: record.severity_text,
                    body,
                    attributes: record_attributes,
                    trace_id: id(record.trace_id),
                    span_id: id(record.span_id),
                    resource: resource.clone(),
                });
            }
        }
    }
    items
}
