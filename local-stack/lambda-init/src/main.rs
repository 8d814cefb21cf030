//! A stand-in for the init binary LocalStack copies into every Lambda
//! container as `/var/rapid/init` (its fork of AWS's runtime interface
//! emulator, downloaded from a release page that no package registry
//! mirrors, so unreachable offline).
//!
//! It does what LocalStack's side (`localstack/services/lambda_/invocation/`)
//! expects of it, and no more:
//!
//! - accepts `POST /invoke` on port 9563 (JSON with `invoke-id`,
//!   `invoked-function-arn`, `payload`, `trace-id`) and answers at once;
//! - starts the function's `bootstrap` with `AWS_LAMBDA_RUNTIME_API`
//!   pointing at its own Lambda runtime API on 127.0.0.1:9001, and hands
//!   it the invocations one at a time;
//! - reports to `LOCALSTACK_RUNTIME_ENDPOINT`: `status/<id>/ready` when the
//!   bootstrap first asks for work, each invocation's logs and then its
//!   `response` or `error`, and `status/<id>/error` when the bootstrap
//!   fails to start or exits.
//!
//! # Layout
//! - `http`: the few HTTP/1.1 pieces both sides need (std only: there is
//!   nothing else inside the container).

mod http;

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

const INVOKE_ADDRESS: &str = "0.0.0.0:9563";
const RUNTIME_API_ADDRESS: &str = "127.0.0.1:9001";
const RUNTIME_PREFIX: &str = "/2018-06-01/runtime";
/// Where AWS's emulator looks for a custom runtime's entry point, in order.
const BOOTSTRAP_PATHS: [&str; 3] = ["/var/runtime/bootstrap", "/var/task/bootstrap", "/opt/bootstrap"];

/// One invocation as LocalStack sends it.
struct Invocation {
    id: String,
    function_arn: String,
    payload: String,
    trace_id: String,
}

/// What the two servers and the bootstrap's watcher share.
struct Init {
    localstack: LocalStack,
    /// How long a function may run (`AWS_LAMBDA_FUNCTION_TIMEOUT`), for the
    /// deadline the bootstrap is told.
    timeout: Duration,
    work: Mutex<Work>,
    work_arrived: Condvar,
    /// The bootstrap's output since the last invocation ended.
    logs: Mutex<String>,
}

#[derive(Default)]
struct Work {
    pending: VecDeque<Invocation>,
    /// The invocation the bootstrap is working on, reported as failed if
    /// the bootstrap exits before answering it.
    in_flight: Option<String>,
    announced_ready: bool,
}

/// LocalStack's callback endpoint for this execution environment.
struct LocalStack {
    endpoint: String,
    runtime_id: String,
}

impl LocalStack {
    fn status(&self, what: &str, body: &Value) {
        self.post(&format!("{}/status/{}/{what}", self.endpoint, self.runtime_id), body.to_string().as_bytes());
    }

    fn invocation(&self, id: &str, what: &str, body: &[u8]) {
        self.post(&format!("{}/invocations/{id}/{what}", self.endpoint), body);
    }

    fn post(&self, url: &str, body: &[u8]) {
        match http::post(url, body) {
            Ok(status) if status < 300 => {}
            Ok(status) => eprintln!("init: LocalStack answered {status} to {url}"),
            Err(e) => eprintln!("init: could not reach LocalStack at {url}: {e}"),
        }
    }
}

fn main() {
    let env = |name: &str| std::env::var(name).unwrap_or_default();
    let init = Arc::new(Init {
        localstack: LocalStack {
            endpoint: env("LOCALSTACK_RUNTIME_ENDPOINT"),
            runtime_id: env("LOCALSTACK_RUNTIME_ID"),
        },
        timeout: Duration::from_secs(env("AWS_LAMBDA_FUNCTION_TIMEOUT").parse().unwrap_or(3)),
        work: Mutex::new(Work::default()),
        work_arrived: Condvar::new(),
        logs: Mutex::new(String::new()),
    });
    let runtime_api = TcpListener::bind(RUNTIME_API_ADDRESS).expect("the runtime API port is free");
    let invocations = TcpListener::bind(INVOKE_ADDRESS).expect("the invocation port is free");
    serve(runtime_api, &init, runtime_api_request);
    serve(invocations, &init, invoke_request);
    run_bootstrap(&init);
}

/// Accepts connections on `listener`, a thread per connection, each
/// request answered by `handle`.
fn serve(listener: TcpListener, init: &Arc<Init>, handle: fn(&Init, http::Request, &mut TcpStream)) {
    let init = Arc::clone(init);
    thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let init = Arc::clone(&init);
            thread::spawn(move || {
                let mut writer = stream.try_clone().expect("a socket can be cloned");
                let mut reader = BufReader::new(stream);
                while let Ok(Some(request)) = http::read_request(&mut reader) {
                    handle(&init, request, &mut writer);
                }
            });
        }
    });
}

/// LocalStack's side: queue the invocation, answer at once.
fn invoke_request(init: &Init, request: http::Request, stream: &mut TcpStream) {
    let parsed: Option<Invocation> = serde_json::from_slice::<Value>(&request.body).ok().and_then(|body| {
        Some(Invocation {
            id: body["invoke-id"].as_str()?.to_owned(),
            function_arn: body["invoked-function-arn"].as_str().unwrap_or_default().to_owned(),
            payload: body["payload"].as_str().unwrap_or("{}").to_owned(),
            trace_id: body["trace-id"].as_str().unwrap_or_default().to_owned(),
        })
    });
    let status = match (request.method.as_str(), request.path.as_str(), parsed) {
        ("POST", "/invoke", Some(invocation)) => {
            init.work.lock().unwrap().pending.push_back(invocation);
            init.work_arrived.notify_one();
            200
        }
        ("POST", "/invoke", None) => 400,
        _ => 404,
    };
    let _ = http::respond(stream, status, &[], b"");
}

/// The bootstrap's side: the Lambda runtime API.
fn runtime_api_request(init: &Init, request: http::Request, stream: &mut TcpStream) {
    let path = request.path.strip_prefix(RUNTIME_PREFIX).unwrap_or(&request.path);
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let result = match (request.method.as_str(), segments.as_slice()) {
        ("GET", ["invocation", "next"]) => next_invocation(init, stream),
        ("POST", ["invocation", id, outcome @ ("response" | "error")]) => {
            init.work.lock().unwrap().in_flight = None;
            let logs = std::mem::take(&mut *init.logs.lock().unwrap());
            init.localstack.invocation(id, "logs", json!({ "logs": logs }).to_string().as_bytes());
            init.localstack.invocation(id, outcome, &request.body);
            http::respond(stream, 202, &[], b"{}")
        }
        ("POST", ["init", "error"]) => {
            init.localstack.status("error", &error_body(&request.body, "Runtime.InitError"));
            http::respond(stream, 202, &[], b"{}")
        }
        _ => http::respond(stream, 404, &[], b"{\"errorMessage\":\"unknown runtime API path\"}"),
    };
    if let Err(e) = result {
        eprintln!("init: runtime API: {e}");
    }
}

/// Blocks until LocalStack sends an invocation; the first call tells
/// LocalStack the environment is ready.
fn next_invocation(init: &Init, stream: &mut TcpStream) -> std::io::Result<()> {
    let first_call = !std::mem::replace(&mut init.work.lock().unwrap().announced_ready, true);
    if first_call {
        init.localstack.status("ready", &json!({}));
    }
    let mut work = init.work.lock().unwrap();
    while work.pending.is_empty() {
        work = init.work_arrived.wait(work).unwrap();
    }
    let invocation = work.pending.pop_front().expect("not empty");
    work.in_flight = Some(invocation.id.clone());
    drop(work);
    let deadline = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default() + init.timeout;
    let headers = [
        ("lambda-runtime-aws-request-id", invocation.id),
        ("lambda-runtime-deadline-ms", deadline.as_millis().to_string()),
        ("lambda-runtime-invoked-function-arn", invocation.function_arn),
        ("lambda-runtime-trace-id", invocation.trace_id),
        ("content-type", "application/json".to_owned()),
    ];
    http::respond(stream, 200, &headers, invocation.payload.as_bytes())
}

/// The runtime's error body as it sent it, or one in the runtime API's
/// shape when it sent nothing usable.
fn error_body(body: &[u8], error_type: &str) -> Value {
    serde_json::from_slice(body)
        .unwrap_or_else(|_| json!({ "errorMessage": String::from_utf8_lossy(body), "errorType": error_type }))
}

/// Runs the bootstrap with its output copied to the container's log and
/// kept for the invocation's logs; when it exits, says so and exits too.
fn run_bootstrap(init: &Arc<Init>) {
    let Some(bootstrap) = BOOTSTRAP_PATHS.iter().find(|path| Path::new(path).exists()) else {
        let message = format!("no bootstrap at any of {BOOTSTRAP_PATHS:?}");
        init.localstack.status("error", &json!({ "errorMessage": message, "errorType": "Runtime.InvalidEntrypoint" }));
        std::process::exit(1);
    };
    let child = Command::new(bootstrap)
        .env("AWS_LAMBDA_RUNTIME_API", RUNTIME_API_ADDRESS)
        .current_dir("/var/task")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(child) => child,
        Err(e) => {
            let message = format!("{bootstrap} did not start: {e}");
            init.localstack
                .status("error", &json!({ "errorMessage": message, "errorType": "Runtime.InvalidEntrypoint" }));
            std::process::exit(1);
        }
    };
    let copiers =
        [child.stdout.take().map(|out| copy_output(init, out)), child.stderr.take().map(|err| copy_output(init, err))];
    let status = child.wait().expect("the bootstrap can be waited for");
    for copier in copiers.into_iter().flatten() {
        let _ = copier.join();
    }
    let message = format!("{bootstrap} exited: {status}");
    eprintln!("init: {message}");
    let error = json!({ "errorMessage": message, "errorType": "Runtime.ExitError" });
    let work = init.work.lock().unwrap();
    match (&work.in_flight, work.announced_ready) {
        (Some(id), _) => init.localstack.invocation(id, "error", error.to_string().as_bytes()),
        (None, false) => init.localstack.status("error", &error),
        (None, true) => {}
    }
    std::process::exit(1);
}

fn copy_output(init: &Arc<Init>, output: impl std::io::Read + Send + 'static) -> thread::JoinHandle<()> {
    let init = Arc::clone(init);
    thread::spawn(move || {
        for line in BufReader::new(output).lines().map_while(Result::ok) {
            println!("{line}");
            let _ = std::io::stdout().flush();
            let mut logs = init.logs.lock().unwrap();
            logs.push_str(&line);
            logs.push('\n');
        }
    })
}
