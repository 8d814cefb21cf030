//! The deployed stack as the tests reach it: functions invoked through
//! LocalStack's Lambda API with API Gateway (HTTP API) events, since
//! LocalStack's open-source core has no HTTP API; the table, the queues and
//! the cache through their own protocols.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use base64::Engine;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const PASSWORD: &str = "correct horse battery";
/// LocalStack reads the region and account from the signature's scope; it
/// does not check the signature itself.
const AUTHORIZATION: &str =
    "AWS4-HMAC-SHA256 Credential=test/20261207/us-east-1/service/aws4_request, SignedHeaders=host, Signature=0";

pub struct Stack {
    state: PathBuf,
    endpoint: String,
    functions: HashMap<String, String>,
    resources: HashMap<String, String>,
    /// The Docker bridge's address: where functions reach this machine.
    pub bridge: String,
    client: reqwest::Client,
}

impl Stack {
    pub fn from_env() -> Self {
        let state = PathBuf::from(
            std::env::var("SHOP_LOCALSTACK_DIR")
                .expect("SHOP_LOCALSTACK_DIR: run local-stack/localstack.sh start and deploy"),
        );
        let read = |name: &str| std::fs::read_to_string(state.join(name)).unwrap().trim().to_owned();
        let json_map = |name: &str| serde_json::from_str::<HashMap<String, String>>(&read(name)).unwrap();
        Stack {
            endpoint: read("url"),
            functions: json_map("functions.json"),
            resources: json_map("resources.json"),
            bridge: read("bridge"),
            client: reqwest::Client::builder().timeout(Duration::from_secs(60)).build().unwrap(),
            state,
        }
    }

    /// Invokes a route's function with an HTTP API event; its status and
    /// JSON body.
    pub async fn route(
        &self,
        binary: &str,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        self.invoke_route(binary, method, path, "", None, token, body).await
    }

    pub async fn route_with_query(
        &self,
        binary: &str,
        method: &str,
        path: &str,
        query: &str,
        token: Option<&str>,
    ) -> (u16, Value) {
        self.invoke_route(binary, method, path, query, None, token, None).await
    }

    pub async fn route_with_id(
        &self,
        binary: &str,
        method: &str,
        path: &str,
        name: &str,
        value: &str,
        token: Option<&str>,
    ) -> (u16, Value) {
        self.invoke_route(binary, method, path, "", Some((name, value)), token, None).await
    }

    pub async fn product(&self, id: &str) -> (u16, Value) {
        self.route_with_id("products-get", "GET", &format!("/api/products/{id}"), "id", id, None).await
    }

    #[allow(clippy::too_many_arguments)]
    async fn invoke_route(
        &self,
        binary: &str,
        method: &str,
        path: &str,
        query: &str,
        parameter: Option<(&str, &str)>,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut headers = json!({"content-type": "application/json", "x-forwarded-for": "203.0.113.9", "user-agent": "localstack-test"});
        if let Some(token) = token {
            headers["authorization"] = json!(format!("Bearer {token}"));
        }
        let mut event = json!({
            "version": "2.0",
            "routeKey": format!("{method} {path}"),
            "rawPath": path,
            "rawQueryString": query,
            "headers": headers,
            "requestContext": {
                "accountId": "000000000000", "apiId": "localstack", "domainName": "localhost", "domainPrefix": "localhost",
                "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "203.0.113.9", "userAgent": "localstack-test"},
                "requestId": uuid::Uuid::new_v4().to_string(), "routeKey": format!("{method} {path}"), "stage": "$default",
                "time": "07/Dec/2026:12:00:00 +0000", "timeEpoch": 1796644800000u64
            },
            "isBase64Encoded": false
        });
        if !query.is_empty() {
            let parameters: serde_json::Map<String, Value> =
                form_urlencoded::parse(query.as_bytes()).map(|(k, v)| (k.into_owned(), json!(v))).collect();
            event["queryStringParameters"] = Value::Object(parameters);
        }
        if let Some((name, value)) = parameter {
            event["pathParameters"] = json!({ name: value });
        }
        if let Some(body) = body {
            event["body"] = json!(body.to_string());
        }
        let answer = self.invoke(binary, &event).await;
        let status = answer["statusCode"].as_u64().unwrap_or_else(|| panic!("{binary} answered no status: {answer}"));
        let text = answer["body"].as_str().unwrap_or_default();
        let text = if answer["isBase64Encoded"] == true {
            String::from_utf8(base64::engine::general_purpose::STANDARD.decode(text).unwrap()).unwrap()
        } else {
            text.to_owned()
        };
        (status as u16, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// Lambda's Invoke of the stack's function built from `binary`.
    pub async fn invoke(&self, binary: &str, payload: &Value) -> Value {
        let name = self.functions.get(binary).unwrap_or_else(|| panic!("no function {binary} in the stack"));
        let response = self
            .client
            .post(format!("{}/2015-03-31/functions/{name}/invocations", self.endpoint))
            .header("authorization", AUTHORIZATION)
            .body(payload.to_string())
            .send()
            .await
            .unwrap();
        let failed = response.headers().get("x-amz-function-error").is_some();
        let text = response.text().await.unwrap();
        assert!(!failed, "{binary} failed: {text}");
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }

    /// A JSON-protocol call (DynamoDB, SQS) to LocalStack.
    async fn aws_json(&self, target: &str, body: Value) -> Value {
        let response = self
            .client
            .post(&self.endpoint)
            .header("authorization", AUTHORIZATION)
            .header("content-type", "application/x-amz-json-1.0")
            .header("x-amz-target", target)
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        assert!(status.is_success(), "{target}: {status} {text}");
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }

    pub async fn put_item(&self, item: Value) {
        let table = self.admin_variables()["TABLE_NAME"].clone();
        self.aws_json("DynamoDB_20120810.PutItem", json!({"TableName": table, "Item": item})).await;
    }

    fn queue_url(&self, logical_id: &str) -> &str {
        self.resources.get(logical_id).unwrap_or_else(|| panic!("no queue {logical_id} in the stack"))
    }

    /// The bodies of the messages waiting on a queue (received, so hidden
    /// for the queue's visibility timeout).
    pub async fn receive_messages(&self, logical_id: &str) -> Vec<String> {
        let body = json!({"QueueUrl": self.queue_url(logical_id), "MaxNumberOfMessages": 10, "WaitTimeSeconds": 1});
        let answer = self.aws_json("AmazonSQS.ReceiveMessage", body).await;
        answer["Messages"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|m| m["Body"].as_str().map(str::to_owned))
            .collect()
    }

    pub async fn send_message(&self, logical_id: &str, message: &str) {
        let body = json!({"QueueUrl": self.queue_url(logical_id), "MessageBody": message});
        self.aws_json("AmazonSQS.SendMessage", body).await;
    }

    pub async fn queue_attributes(&self, logical_id: &str) -> Value {
        let body = json!({"QueueUrl": self.queue_url(logical_id), "AttributeNames": ["All"]});
        self.aws_json("AmazonSQS.GetQueueAttributes", body).await["Attributes"].clone()
    }

    /// `GET key` on the stack's cache (the script's Redis), by hand: one
    /// RESP command.
    pub async fn redis_get(&self, key: &str) -> Option<String> {
        let url = std::fs::read_to_string(self.state.join("cache-url")).unwrap();
        let address = url.trim().trim_start_matches("redis://").to_owned();
        let mut connection = tokio::net::TcpStream::connect(address).await.unwrap();
        let command = format!("*2\r\n$3\r\nGET\r\n${}\r\n{key}\r\n", key.len());
        connection.write_all(command.as_bytes()).await.unwrap();
        let mut reply = vec![0; 512];
        let read = connection.read(&mut reply).await.unwrap();
        let reply = String::from_utf8_lossy(&reply[..read]).into_owned();
        // `$-1` is nil; `$N\r\nvalue\r\n` a value.
        reply.strip_prefix('$').filter(|r| !r.starts_with("-1")).and_then(|r| r.split("\r\n").nth(1)).map(str::to_owned)
    }

    fn admin_variables(&self) -> HashMap<String, String> {
        std::fs::read_to_string(self.state.join("admin-env"))
            .unwrap()
            .lines()
            .filter_map(|line| line.split_once('=').map(|(k, v)| (k.to_owned(), v.to_owned())))
            .collect()
    }

    async fn register_and_login(&self, email: &str, grant_admin: bool) -> String {
        let body = json!({"email": email, "password": PASSWORD, "name": "LocalStack Test"});
        let (status, registered) = self.route("auth-register", "POST", "/api/auth/register", None, Some(body)).await;
        assert_eq!(status, 201, "{registered}");
        if grant_admin {
            // Registration never makes an admin in Lambda: the operator's command does.
            let output = std::process::Command::new(env!("CARGO_BIN_EXE_shop-local"))
                .args(["admin", "grant", email])
                .env_clear()
                .env("PATH", std::env::var("PATH").unwrap_or_default())
                .envs(self.admin_variables())
                .output()
                .unwrap();
            assert!(output.status.success(), "admin grant: {}", String::from_utf8_lossy(&output.stderr));
        }
        let body = json!({"email": email, "password": PASSWORD});
        let (status, session) = self.route("auth-login", "POST", "/api/auth/login", None, Some(body)).await;
        assert_eq!(status, 200, "{session}");
        session["token"].as_str().unwrap().to_owned()
    }

    pub async fn admin_token(&self) -> String {
        self.register_and_login(&format!("admin-{}@example.com", super::run_id()), true).await
    }

    pub async fn customer_token(&self) -> String {
        self.register_and_login(&format!("buyer-{}@example.com", super::run_id()), false).await
    }
}
