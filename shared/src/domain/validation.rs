//! Collecting every field error of a request, so a client fixes them all in
//! one round trip instead of one per request.

use serde_json::{Map, Value};

/// Field name -> what is wrong with it, in the order found.
#[derive(Debug, Default)]
pub struct FieldErrors(Map<String, Value>);

impl FieldErrors {
    pub fn new() -> Self {
        Self::default()
    }

    /// Keeps the parsed value, or records why `field` failed.
    pub fn check<T>(&mut self, field: &str, result: Result<T, String>) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(message) => {
                self.add(field, message);
                None
            }
        }
    }

    pub fn add(&mut self, field: &str, message: impl Into<String>) {
        self.0.entry(field.to_owned()).or_insert_with(|| Value::String(message.into()));
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Field name -> message, for the error body's `details`.
    pub fn into_map(self) -> Map<String, Value> {
        self.0
    }
}
