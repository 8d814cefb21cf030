//! The `events-publish` function's sink: the stack's EventBridge bus.
//! Every event is one entry, `source` `shop.api`, `detail-type` the event
//! type, `detail` the envelope; consumers subscribe with rules on them.

use async_trait::async_trait;
use aws_sdk_eventbridge::Client;
use aws_sdk_eventbridge::config::BehaviorVersion;
use aws_sdk_eventbridge::types::PutEventsRequestEntry;

use super::envelope::Event;
use super::stream::EventSink;
use crate::store::dynamodb::{https_client, lambda_environment};

/// Every entry's `source`: what the stack's rules match.
pub const SOURCE: &str = "shop.api";

pub struct EventBridgeSink {
    client: Client,
    bus: String,
}

impl EventBridgeSink {
    /// A client of `bus` with Lambda's region and credentials
    /// (`AWS_ENDPOINT_URL_EVENTBRIDGE` overrides the endpoint, e.g. for an
    /// emulator).
    pub fn new(bus: &str) -> Self {
        let (region, credentials) = lambda_environment();
        let mut config = aws_sdk_eventbridge::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .http_client(https_client())
            .region(region)
            .credentials_provider(credentials);
        config.set_endpoint_url(crate::store::dynamodb::endpoint_url("AWS_ENDPOINT_URL_EVENTBRIDGE"));
        EventBridgeSink { client: Client::from_conf(config.build()), bus: bus.to_owned() }
    }
}

#[async_trait]
impl EventSink for EventBridgeSink {
    async fn put(&self, events: &[Event]) -> Result<(), String> {
        let mut entries = Vec::with_capacity(events.len());
        for event in events {
            let detail = serde_json::to_string(event).map_err(|e| e.to_string())?;
            entries.push(
                PutEventsRequestEntry::builder()
                    .event_bus_name(&self.bus)
                    .source(SOURCE)
                    .detail_type(event.event_type().as_str())
                    .detail(detail)
                    .time(
                        aws_sdk_eventbridge::primitives::DateTime::from_nanos(event.occurred_at.unix_timestamp_nanos())
                            .map_err(|e| e.to_string())?,
                    )
                    .build(),
            );
        }
        let output = self.client.put_events().set_entries(Some(entries)).send().await.map_err(|e| e.to_string())?;
        match output.failed_entry_count() {
            0 => Ok(()),
            failed => {
                let codes: Vec<&str> = output.entries().iter().filter_map(|e| e.error_code()).collect();
                Err(format!("{failed} of {} entries refused: {}", events.len(), codes.join(", ")))
            }
        }
    }
}
