//! The read and write capacity units each request consumes, when
//! `DYNAMODB_CONSUMED_CAPACITY=on`: every call asks DynamoDB for its
//! consumed capacity (`ReturnConsumedCapacity: TOTAL`, which costs
//! nothing), and the request's metrics add it up
//! ([`Metric::ReadCapacityUnits`], [`Metric::WriteCapacityUnits`]).
//!
//! One interceptor on the SDK clients, rather than a line at each call:
//! no call can be forgotten. What it cannot see: a write refused by its
//! condition (or a cancelled transaction) consumes units too, but DynamoDB
//! returns no capacity with an error.

use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::operation::{
    batch_write_item::{BatchWriteItemInput, BatchWriteItemOutput},
    delete_item::{DeleteItemInput, DeleteItemOutput},
    get_item::{GetItemInput, GetItemOutput},
    put_item::{PutItemInput, PutItemOutput},
    query::{QueryInput, QueryOutput},
    transact_get_items::{TransactGetItemsInput, TransactGetItemsOutput},
    transact_write_items::{TransactWriteItemsInput, TransactWriteItemsOutput},
    update_item::{UpdateItemInput, UpdateItemOutput},
};
use aws_sdk_dynamodb::types::{ConsumedCapacity, ReturnConsumedCapacity};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::{
    AfterDeserializationInterceptorContextRef, BeforeSerializationInterceptorContextMut,
};

use crate::metrics::{self, Metric};

#[derive(Debug)]
pub struct RecordConsumedCapacity;

/// Sets `return_consumed_capacity` on whichever of `types` the input is.
macro_rules! ask_for_capacity {
    ($input:expr, $($type:ty),+) => {
        $(if let Some(input) = $input.downcast_mut::<$type>() {
            input.return_consumed_capacity = Some(ReturnConsumedCapacity::Total);
        })+
    };
}

impl Intercept for RecordConsumedCapacity {
    fn name(&self) -> &'static str {
        "RecordConsumedCapacity"
    }

    fn modify_before_serialization(
        &self,
        context: &mut BeforeSerializationInterceptorContextMut<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let input = context.input_mut();
        ask_for_capacity!(
            input,
            GetItemInput,
            QueryInput,
            TransactGetItemsInput,
            PutItemInput,
            UpdateItemInput,
            DeleteItemInput,
            TransactWriteItemsInput,
            BatchWriteItemInput
        );
        Ok(())
    }

    fn read_after_deserialization(
        &self,
        context: &AfterDeserializationInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let Ok(output) = context.output_or_error() else { return Ok(()) };
        let one = |capacity: &Option<ConsumedCapacity>| units(capacity.iter());
        let many = |capacity: &Option<Vec<ConsumedCapacity>>| units(capacity.iter().flatten());
        let (read, write) = if let Some(o) = output.downcast_ref::<GetItemOutput>() {
            (one(&o.consumed_capacity), 0.0)
        } else if let Some(o) = output.downcast_ref::<QueryOutput>() {
            (one(&o.consumed_capacity), 0.0)
        } else if let Some(o) = output.downcast_ref::<TransactGetItemsOutput>() {
            (many(&o.consumed_capacity), 0.0)
        } else if let Some(o) = output.downcast_ref::<PutItemOutput>() {
            (0.0, one(&o.consumed_capacity))
        } else if let Some(o) = output.downcast_ref::<UpdateItemOutput>() {
            (0.0, one(&o.consumed_capacity))
        } else if let Some(o) = output.downcast_ref::<DeleteItemOutput>() {
            (0.0, one(&o.consumed_capacity))
        } else if let Some(o) = output.downcast_ref::<TransactWriteItemsOutput>() {
            (0.0, many(&o.consumed_capacity))
        } else if let Some(o) = output.downcast_ref::<BatchWriteItemOutput>() {
            (0.0, many(&o.consumed_capacity))
        } else {
            (0.0, 0.0)
        };
        if read > 0.0 {
            metrics::add(Metric::ReadCapacityUnits, read);
        }
        if write > 0.0 {
            metrics::add(Metric::WriteCapacityUnits, write);
        }
        Ok(())
    }
}

fn units<'a>(capacity: impl Iterator<Item = &'a ConsumedCapacity>) -> f64 {
    capacity.filter_map(|c| c.capacity_units).sum()
}
