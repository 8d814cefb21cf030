//! A webhook receiver on the Docker bridge's address (the one address of
//! this machine that functions in LocalStack's containers reach), which
//! records what it receives and can refuse each message's first attempt.

use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

/// One request as received.
#[derive(Clone, Debug)]
pub struct Delivery {
    pub webhook_id: String,
    pub timestamp: String,
    pub signature: String,
    pub body: String,
}

impl Delivery {
    /// Standard Webhooks: one of the `v1,` signatures is the HMAC of
    /// `id.timestamp.body` under the secret (`whsec_` + base64 key).
    pub fn signature_is_valid(&self, secret: &str) -> bool {
        use base64::Engine;
        let key = base64::engine::general_purpose::STANDARD.decode(secret.trim_start_matches("whsec_")).unwrap();
        let timestamp: i64 = self.timestamp.parse().unwrap_or_default();
        let expected = shop::webhooks::signing::sign(&key, &self.webhook_id, timestamp, self.body.as_bytes());
        self.signature.split(' ').any(|signature| signature == expected)
    }
}

pub struct Receiver {
    url: String,
    received: Arc<Mutex<Vec<Delivery>>>,
    server: tokio::task::JoinHandle<()>,
}

impl Receiver {
    /// Listens on `address`; with `refuse_first_attempts`, answers 500 to a
    /// message id's first delivery and 204 to the next.
    pub async fn start(address: &str, refuse_first_attempts: bool) -> Self {
        let listener = TcpListener::bind((address, 0)).await.unwrap();
        let url = format!("http://{address}:{}/hook", listener.local_addr().unwrap().port());
        let received = Arc::new(Mutex::new(Vec::<Delivery>::new()));
        let log = Arc::clone(&received);
        let server = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let log = Arc::clone(&log);
                tokio::spawn(async move {
                    let mut reader = BufReader::new(stream);
                    let Some(delivery) = read_delivery(&mut reader).await else { return };
                    let status = {
                        let mut log = log.lock().unwrap();
                        let seen_before = log.iter().any(|d| d.webhook_id == delivery.webhook_id);
                        log.push(delivery);
                        if refuse_first_attempts && !seen_before {
                            "500 Internal Server Error"
                        } else {
                            "204 No Content"
                        }
                    };
                    let answer = format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
                    let _ = reader.get_mut().write_all(answer.as_bytes()).await;
                });
            }
        });
        Receiver { url, received, server }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn received(&self) -> Vec<Delivery> {
        self.received.lock().unwrap().clone()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn read_delivery(reader: &mut BufReader<tokio::net::TcpStream>) -> Option<Delivery> {
    let mut line = String::new();
    reader.read_line(&mut line).await.ok()?;
    let (mut length, mut webhook_id, mut timestamp, mut signature) = (0, String::new(), String::new(), String::new());
    loop {
        line.clear();
        reader.read_line(&mut line).await.ok()?;
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        let (name, value) = header.split_once(':')?;
        let value = value.trim().to_owned();
        match name.to_ascii_lowercase().as_str() {
            "content-length" => length = value.parse().ok()?,
            "webhook-id" => webhook_id = value,
            "webhook-timestamp" => timestamp = value,
            "webhook-signature" => signature = value,
            _ => {}
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).await.ok()?;
    Some(Delivery { webhook_id, timestamp, signature, body: String::from_utf8_lossy(&body).into_owned() })
}
