//! HTTP plumbing shared by every handler: what a request carries, how a
//! JSON body is read, how responses are written and decorated.

mod body;
pub mod compression;
mod cursor;
mod request;
mod response;

pub use body::{body_bytes, has_body, parse_json};
pub use cursor::CursorCodec;
pub use request::{RequestMeta, bearer_token, path_param};
pub use response::{apply_standard_headers, json, json_bytes, no_content, preflight, with_location};
