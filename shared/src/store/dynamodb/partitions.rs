//! `DYNAMODB_PARTITION_REPORT=<file>`: every successful write charged to
//! the partitions it lands in ([`super::heat`]), and the summary written to
//! the file about once a second (what `load/partition-heat.sh` reads).
//! Creating `<file>.restart` restarts the counting (within a second; the
//! file is removed): a load's setup is left out that way.
//!
//! DynamoDB Local enforces no partition limit, so this is how a local run
//! sees what AWS would throttle. One interceptor on the SDK clients, like
//! [`super::capacity`]: no write can be forgotten. The request is read
//! before it is sent (the writes it names) and charged only when DynamoDB
//! answered it with success; a batch's unprocessed items are left out. A
//! write refused by its condition consumes units in AWS too, but is not
//! charged here: the report is the heat of what succeeds.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::operation::{
    batch_write_item::{BatchWriteItemInput, BatchWriteItemOutput},
    delete_item::DeleteItemInput,
    put_item::PutItemInput,
    transact_write_items::TransactWriteItemsInput,
    update_item::UpdateItemInput,
};
use aws_sdk_dynamodb::types::AttributeValue;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeSerializationInterceptorContextRef, FinalizerInterceptorContextRef,
};
use aws_smithy_types::config_bag::{Storable, StoreReplace};

use super::heat::{Action, Heat, Item, Write, index_key_changes};

/// Partitions the file lists one by one (the patterns list them all).
const LISTED_PARTITIONS: usize = 40;

/// One heat per process, however many clients it builds (the API's, the
/// stream poller's), written to one file.
struct Report {
    path: PathBuf,
    heat: Mutex<Heat>,
    changes: AtomicU64,
}

static REPORT: OnceLock<Report> = OnceLock::new();

/// The interceptor; the first one made starts the writer of `path`.
#[derive(Debug)]
pub struct RecordPartitionHeat;

impl RecordPartitionHeat {
    pub fn new(path: PathBuf) -> Self {
        let mut started = false;
        REPORT.get_or_init(|| {
            started = true;
            Report { path, heat: Mutex::new(Heat::default()), changes: AtomicU64::new(0) }
        });
        if started {
            std::thread::Builder::new()
                .name("partition-report".into())
                .spawn(write_report_every_second)
                .expect("a thread for the partition report");
        }
        RecordPartitionHeat
    }
}

fn write_report_every_second() {
    let Some(report) = REPORT.get() else { return };
    let mut written = u64::MAX;
    let restart = report.path.with_extension("restart");
    loop {
        if std::fs::remove_file(&restart).is_ok() {
            report.heat.lock().unwrap_or_else(|e| e.into_inner()).restart_counting();
            report.changes.fetch_add(1, Ordering::Relaxed);
        }
        let changes = report.changes.load(Ordering::Relaxed);
        if changes != written {
            let summary = report.heat.lock().unwrap_or_else(|e| e.into_inner()).summary(LISTED_PARTITIONS);
            let temporary = report.path.with_extension("partial");
            let json = serde_json::to_vec_pretty(&summary).unwrap_or_default();
            match std::fs::write(&temporary, json).and_then(|()| std::fs::rename(&temporary, &report.path)) {
                Ok(()) => written = changes,
                Err(err) => tracing::warn!(path = %report.path.display(), error = %err, "partition report not written"),
            }
        }
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// The writes a request names, kept between its serialization and its
/// answer.
#[derive(Clone, Debug)]
struct PlannedWrites(Vec<Write>);

impl Storable for PlannedWrites {
    type Storer = StoreReplace<Self>;
}

impl Intercept for RecordPartitionHeat {
    fn name(&self) -> &'static str {
        "RecordPartitionHeat"
    }

    fn read_before_serialization(
        &self,
        context: &BeforeSerializationInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let writes = planned_writes(context.input());
        if !writes.is_empty() {
            cfg.interceptor_state().store_put(PlannedWrites(writes));
        }
        Ok(())
    }

    fn read_after_execution(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let (Some(Ok(output)), Some(planned), Some(report)) =
            (context.output_or_error(), cfg.load::<PlannedWrites>(), REPORT.get())
        else {
            return Ok(());
        };
        let unprocessed: HashSet<(String, String)> = output
            .downcast_ref::<BatchWriteItemOutput>()
            .and_then(|o| o.unprocessed_items.as_ref())
            .into_iter()
            .flat_map(|tables| tables.values().flatten())
            .filter_map(|request| {
                let key = request
                    .put_request
                    .as_ref()
                    .map(|put| &put.item)
                    .or(request.delete_request.as_ref().map(|delete| &delete.key))?;
                Some((string(key, "PK")?, string(key, "SK")?))
            })
            .collect();
        let mut heat = report.heat.lock().unwrap_or_else(|e| e.into_inner());
        for write in planned.0.iter().filter(|w| !unprocessed.contains(&(w.pk.clone(), w.sk.clone()))) {
            heat.charge(write);
        }
        report.changes.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

fn string(item: &Item, name: &str) -> Option<String> {
    match item.get(name) {
        Some(AttributeValue::S(value)) => Some(value.clone()),
        _ => None,
    }
}

fn keyed(item: &Item, action: Action, transactional: bool) -> Option<Write> {
    Some(Write { pk: string(item, "PK")?, sk: string(item, "SK")?, action, transactional })
}

fn update(
    key: &Item,
    expression: &str,
    names: Option<&HashMap<String, String>>,
    values: Option<&HashMap<String, AttributeValue>>,
    transactional: bool,
) -> Option<Write> {
    let (sets, removes) =
        index_key_changes(expression, names.unwrap_or(&HashMap::new()), values.unwrap_or(&HashMap::new()));
    keyed(key, Action::Update { sets, removes }, transactional)
}

/// The writes of whichever write operation `input` is.
fn planned_writes(input: &aws_smithy_runtime_api::client::interceptors::context::Input) -> Vec<Write> {
    if let Some(put) = input.downcast_ref::<PutItemInput>() {
        let item = put.item.clone().unwrap_or_default();
        return keyed(&item, Action::Put(item.clone()), false).into_iter().collect();
    }
    if let Some(u) = input.downcast_ref::<UpdateItemInput>() {
        let key = u.key.clone().unwrap_or_default();
        let expression = u.update_expression.as_deref().unwrap_or_default();
        let names = u.expression_attribute_names.as_ref();
        return update(&key, expression, names, u.expression_attribute_values.as_ref(), false).into_iter().collect();
    }
    if let Some(delete) = input.downcast_ref::<DeleteItemInput>() {
        return keyed(&delete.key.clone().unwrap_or_default(), Action::Delete, false).into_iter().collect();
    }
    if let Some(batch) = input.downcast_ref::<BatchWriteItemInput>() {
        return batch
            .request_items
            .iter()
            .flat_map(|tables| tables.values().flatten())
            .filter_map(|request| match (&request.put_request, &request.delete_request) {
                (Some(put), _) => keyed(&put.item, Action::Put(put.item.clone()), false),
                (_, Some(delete)) => keyed(&delete.key, Action::Delete, false),
                _ => None,
            })
            .collect();
    }
    if let Some(transaction) = input.downcast_ref::<TransactWriteItemsInput>() {
        return transaction
            .transact_items
            .iter()
            .flatten()
            .filter_map(|item| {
                if let Some(put) = &item.put {
                    keyed(&put.item, Action::Put(put.item.clone()), true)
                } else if let Some(u) = &item.update {
                    let names = u.expression_attribute_names.as_ref();
                    update(&u.key, &u.update_expression, names, u.expression_attribute_values.as_ref(), true)
                } else if let Some(delete) = &item.delete {
                    keyed(&delete.key, Action::Delete, true)
                } else {
                    item.condition_check.as_ref().and_then(|check| keyed(&check.key, Action::Check, true))
                }
            })
            .collect();
    }
    Vec::new()
}
