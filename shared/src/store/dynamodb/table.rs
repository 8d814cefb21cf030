//! Creating the table, for DynamoDB Local only.
//!
//! In AWS the SAM template owns the table; nothing in the application
//! creates tables there. The local gateway and the tests call
//! [`create_if_missing`] only when the endpoint is a loopback address.

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection, ProjectionType,
    ScalarAttributeType, StreamSpecification, StreamViewType, TimeToLiveSpecification,
};

use super::errors::classify;
use crate::store::StoreError;

/// The generic secondary indexes every pattern beyond the primary key uses.
pub const INDEXES: &[&str] = &["GSI1", "GSI2"];

/// The attribute DynamoDB's TTL deletes expired items by.
pub const TTL_ATTRIBUTE: &str = "expiresAt";

/// True when `endpoint` names this machine: the only place where the
/// application may create a table. A loopback name or address, or an
/// address of one of this machine's interfaces (one it can bind), such as
/// the Docker bridge address `sam local`'s containers reach DynamoDB Local
/// on.
pub fn is_local_endpoint(endpoint: &str) -> bool {
    let authority = endpoint.split("://").nth(1).unwrap_or(endpoint);
    let authority = authority.split(['/', '?']).next().unwrap_or("");
    let host = match authority.strip_prefix('[') {
        Some(bracketed) => bracketed.split(']').next().unwrap_or(""),
        None => authority.split(':').next().unwrap_or(""),
    };
    let owned = |ip: std::net::IpAddr| !ip.is_unspecified() && std::net::TcpListener::bind((ip, 0)).is_ok();
    host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback() || owned(ip))
}

/// The change feed: every write's old and new item (what the template's
/// `StreamSpecification` sets in AWS).
fn stream() -> StreamSpecification {
    StreamSpecification::builder()
        .stream_enabled(true)
        .stream_view_type(StreamViewType::NewAndOldImages)
        .build()
        .expect("complete stream specification")
}

/// Creates `table` with its indexes, stream and TTL unless it exists; a
/// table made before the stream existed gets it.
pub async fn create_if_missing(client: &Client, table: &str) -> Result<bool, StoreError> {
    let exists = client.describe_table().table_name(table).send().await;
    match exists {
        Ok(found) => {
            let streaming = found.table().and_then(|t| t.stream_specification()).is_some_and(|s| s.stream_enabled());
            if !streaming {
                client
                    .update_table()
                    .table_name(table)
                    .stream_specification(stream())
                    .send()
                    .await
                    .map_err(classify)?;
            }
            return Ok(false);
        }
        Err(err) if err.as_service_error().is_some_and(|e| e.is_resource_not_found_exception()) => {}
        Err(err) => return Err(classify(err)),
    }
    let key = |name: &str, key_type| {
        KeySchemaElement::builder().attribute_name(name).key_type(key_type).build().expect("complete key schema")
    };
    let string_attribute = |name: &str| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .expect("complete attribute definition")
    };
    let mut request = client
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .stream_specification(stream())
        .key_schema(key("PK", KeyType::Hash))
        .key_schema(key("SK", KeyType::Range))
        .attribute_definitions(string_attribute("PK"))
        .attribute_definitions(string_attribute("SK"));
    for index in INDEXES {
        let (pk, sk) = (format!("{index}PK"), format!("{index}SK"));
        request = request
            .attribute_definitions(string_attribute(&pk))
            .attribute_definitions(string_attribute(&sk))
            .global_secondary_indexes(
                GlobalSecondaryIndex::builder()
                    .index_name(*index)
                    .key_schema(key(&pk, KeyType::Hash))
                    .key_schema(key(&sk, KeyType::Range))
                    .projection(Projection::builder().projection_type(ProjectionType::All).build())
                    .build()
                    .expect("complete index"),
            );
    }
    match request.send().await {
        Ok(_) => {}
        // Two processes racing to create the same table: the loser is fine.
        Err(err) if err.as_service_error().is_some_and(|e| e.is_resource_in_use_exception()) => return Ok(false),
        Err(err) => return Err(classify(err)),
    }
    client
        .update_time_to_live()
        .table_name(table)
        .time_to_live_specification(
            TimeToLiveSpecification::builder()
                .attribute_name(TTL_ATTRIBUTE)
                .enabled(true)
                .build()
                .expect("complete TTL specification"),
        )
        .send()
        .await
        .map_err(classify)?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_endpoints_count_as_local() {
        for local in ["http://127.0.0.1:8000", "http://localhost:8000/", "http://[::1]:8000", "127.0.0.2:1"] {
            assert!(is_local_endpoint(local), "{local}");
        }
        for remote in [
            "https://dynamodb.us-east-1.amazonaws.com",
            "http://10.0.0.5:8000",
            "http://127.example.com",
            "http://0.0.0.0:8000",
        ] {
            assert!(!is_local_endpoint(remote), "{remote}");
        }
    }

    #[test]
    fn an_address_of_this_machines_own_interfaces_counts_as_local() {
        // The address this machine would send from (no packet is sent).
        let socket = std::net::UdpSocket::bind("0.0.0.0:0").unwrap();
        let Ok(()) = socket.connect("192.0.2.1:9") else { return };
        let own = socket.local_addr().unwrap().ip();
        assert!(is_local_endpoint(&format!("http://{own}:8000")), "{own}");
    }
}
