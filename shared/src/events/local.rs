//! The asynchronous half inside one process (`shop-local`): the change
//! feed read as it is written, the same mapping as the Lambda, the standard
//! consumers and the webhook fan-out (delivering through the in-process
//! queue), and the reservation expiry on a timer. At least once: a
//! change is acknowledged (outbox entry deleted, stream checkpoint moved)
//! only after every consumer has its events.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;

use super::change::{Mapping, events_of};
use super::consumers;
use super::dispatch::{DeliveryObserver, Dispatcher};
use super::expiry;
use crate::app::App;
use crate::config::StoreKind;
use crate::webhooks::{Deliverer, FanOut, LocalQueue};

/// Changes in flight at most: past it, reading the feed waits for the
/// consumers (one that is down holds the rest back only this far).
const WINDOW: usize = 5_000;
/// Changes read per call.
const BATCH: usize = 200;

/// How often `shop-local` deletes expired carts: they live for days, and
/// reads ignore an expired one anyway.
const CART_SWEEP_INTERVAL: Duration = Duration::from_secs(60);

/// Starts the change feed's reader, the consumers and the expiry timers on
/// the current runtime; they run until the process ends.
pub fn spawn(app: Arc<App>, observer: Arc<dyn DeliveryObserver>) {
    tokio::spawn(sweep_expired_carts(Arc::clone(&app)));
    if let Some(reservation) = app.config.order_reservation {
        tokio::spawn(expire_reservations(Arc::clone(&app), reservation));
    }
    if !app.config.event_feed {
        tracing::info!("EVENT_FEED=off: changes wait in the change feed for another reader");
        return;
    }
    let mut consumers = consumers::standard(&app);
    match Deliverer::from_app(&app) {
        Ok(deliverer) => consumers.push(Arc::new(FanOut::new(Arc::clone(&app.store), LocalQueue::new(deliverer)))),
        Err(err) => tracing::error!(error = %err, "webhooks are not delivered"),
    }
    let dispatcher = Dispatcher::start(consumers, Arc::clone(&observer));
    let mapping = app.config.event_mapping();
    match app.config.store {
        StoreKind::Embedded => {
            tokio::spawn(drain_outbox(Arc::clone(&app), dispatcher, mapping, observer));
        }
        StoreKind::DynamoDb => {
            #[cfg(feature = "stream-poller")]
            tokio::spawn(poll_stream(Arc::clone(&app), dispatcher, mapping, observer));
            #[cfg(not(feature = "stream-poller"))]
            {
                drop((dispatcher, observer));
                tracing::warn!("built without the stream poller: no events from DynamoDB");
            }
        }
    }
}

async fn drain_outbox(app: Arc<App>, dispatcher: Dispatcher, mapping: Mapping, observer: Arc<dyn DeliveryObserver>) {
    let Some(feed) = app.store.change_feed() else {
        tracing::error!("the embedded store has no change feed");
        return;
    };
    let mut last_read: Option<String> = None;
    let mut in_flight: HashMap<u64, String> = HashMap::new();
    let mut unacknowledged: Vec<String> = Vec::new();
    let mut position = 0u64;
    loop {
        unacknowledged.extend(dispatcher.take_done().into_iter().filter_map(|p| in_flight.remove(&p)));
        if !unacknowledged.is_empty() {
            match feed.acknowledge(unacknowledged.clone()).await {
                Ok(()) => unacknowledged.clear(),
                Err(err) => {
                    tracing::warn!(error = %err, "could not acknowledge outbox entries; retrying")
                }
            }
        }
        let mut full = false;
        if dispatcher.in_flight() < WINDOW {
            match feed.changes_after(last_read.clone(), BATCH).await {
                Ok(changes) => {
                    full = changes.len() == BATCH;
                    let mut count = 0;
                    for change in changes {
                        let events = events_of(&change, &mapping);
                        count += events.len();
                        in_flight.insert(position, change.id.clone());
                        last_read = Some(change.id);
                        dispatcher.submit(position, events);
                        position += 1;
                    }
                    observer.published(count);
                    observer.feed_read();
                }
                Err(err) => tracing::warn!(error = %err, "could not read the outbox; retrying"),
            }
        }
        if !full {
            tokio::select! {
                () = feed.wait_for_changes() => {}
                () = dispatcher.progressed() => {}
                () = tokio::time::sleep(app.config.events_poll_interval) => {}
            }
        }
    }
}

#[cfg(feature = "stream-poller")]
async fn poll_stream(app: Arc<App>, dispatcher: Dispatcher, mapping: Mapping, observer: Arc<dyn DeliveryObserver>) {
    use std::collections::{BTreeMap, HashSet, VecDeque};

    use super::poller::StreamPoller;
    use super::stream::changes_of;
    use crate::store::dynamodb::DynamoStore;

    let store = DynamoStore::connect(&app.config).await;
    let file = app.config.data_dir.join(format!("stream-checkpoint-{}.json", app.config.table_name));
    let mut poller = loop {
        match StreamPoller::open(&app.config, &store, Some(file.clone())).await {
            Ok(poller) => break poller,
            Err(err) => {
                tracing::warn!(error = %err, "cannot open the table's stream yet; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    };
    let mut checkpoint: BTreeMap<String, String> = poller.resumed_from().clone();
    // Submitted records in order, so the checkpoint only moves past a
    // record once it and every record before it are done.
    let mut order: VecDeque<(u64, String, String)> = VecDeque::new();
    let mut done: HashSet<u64> = HashSet::new();
    let mut position = 0u64;
    loop {
        done.extend(dispatcher.take_done());
        let mut moved = false;
        while let Some((first, _, _)) = order.front() {
            if !done.remove(first) {
                break;
            }
            let (_, shard, sequence) = order.pop_front().expect("front exists");
            checkpoint.insert(shard, sequence);
            moved = true;
        }
        if moved && let Err(err) = poller.save(&checkpoint) {
            tracing::warn!(error = %err, "could not save the stream checkpoint");
        }
        if dispatcher.in_flight() < WINDOW {
            match poller.poll().await {
                Ok(batches) => {
                    let mut count = 0;
                    for (_, batch) in &batches {
                        index_search(&app, &store, batch).await;
                    }
                    for (shard, batch) in batches {
                        for (record, change) in changes_of(&batch) {
                            let events = match change {
                                Ok(Some(change)) => events_of(&change, &mapping),
                                Ok(None) => Vec::new(),
                                Err(err) => {
                                    tracing::error!(event_id = %record.event_id, error = %err, "a stream record cannot be decoded; skipped");
                                    Vec::new()
                                }
                            };
                            count += events.len();
                            order.push_back((position, shard.clone(), record.dynamodb.sequence_number.clone()));
                            dispatcher.submit(position, events);
                            position += 1;
                        }
                    }
                    observer.published(count);
                    observer.feed_read();
                }
                Err(err) => {
                    tracing::warn!(error = %err, "could not read the table's stream; retrying")
                }
            }
        }
        tokio::select! {
            () = dispatcher.progressed() => {}
            () = tokio::time::sleep(app.config.events_poll_interval) => {}
        }
    }
}

/// The `search-index` function's work, in process: a batch's products
/// into the search index (and the listing cache emptied if they changed
/// more than stock) before its events go out. Retried until it succeeds
/// (the stream is not read on meanwhile; every other request would be
/// failing too).
#[cfg(feature = "stream-poller")]
async fn index_search(app: &App, store: &crate::store::dynamodb::DynamoStore, batch: &super::stream::StreamEvent) {
    while !crate::workers::index_batch(store, &app.invalidations, batch).await.batch_item_failures.is_empty() {
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// The embedded store's stand-in for DynamoDB's TTL on carts (on DynamoDB
/// the sweep does nothing).
async fn sweep_expired_carts(app: Arc<App>) {
    let mut timer = tokio::time::interval(CART_SWEEP_INTERVAL);
    timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        timer.tick().await;
        match app.store.sweep_expired_carts(OffsetDateTime::now_utc(), 1000).await {
            Ok(0) => {}
            Ok(swept) => tracing::info!(carts = swept, "expired carts deleted"),
            Err(err) => tracing::warn!(error = %err, "cart sweep failed; the next one retries"),
        }
    }
}

async fn expire_reservations(app: Arc<App>, reservation: Duration) {
    let mut timer = tokio::time::interval(expiry::local_interval(reservation));
    timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        timer.tick().await;
        if let Err(err) = expiry::sweep(&app, OffsetDateTime::now_utc(), reservation, 500).await {
            tracing::warn!(error = %err, "reservation expiry failed; the next sweep retries");
        }
    }
}
