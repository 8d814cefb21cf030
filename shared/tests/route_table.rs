//! The route table is the single source of truth: `template.yaml`,
//! `openapi.yaml` (operations and their `x-access`), the manual's route
//! tables, `events/` and the function binaries must agree with it
//! exactly; and so must they with the table of functions that are not
//! routes (`shop::workers::WORKERS`).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use shop::access::Access;
use shop::routes::ROUTES;
use shop::workers::{Trigger, WORKERS};
use yaml_serde::Value;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

fn template() -> Value {
    let text = std::fs::read_to_string(repo_root().join("template.yaml")).unwrap();
    yaml_serde::from_str(&text).unwrap()
}

/// Strips CloudFormation's `!Ref`-style tags down to their values.
fn untag(value: &Value) -> &Value {
    match value {
        Value::Tagged(tagged) => untag(&tagged.value),
        other => other,
    }
}

fn functions_in_template() -> Vec<(String, Value)> {
    let template = template();
    let resources = template["Resources"].as_mapping().unwrap();
    resources
        .iter()
        .filter(|(_, resource)| resource["Type"] == "AWS::Serverless::Function")
        .map(|(name, resource)| (name.as_str().unwrap().to_owned(), resource.clone()))
        .collect()
}

fn file_stems(folder: &str, extension: &str) -> BTreeSet<String> {
    std::fs::read_dir(repo_root().join(folder))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == extension))
        .map(|path| path.file_stem().unwrap().to_string_lossy().into_owned())
        .collect()
}

fn route_functions() -> BTreeSet<String> {
    ROUTES.iter().map(|route| route.function.to_owned()).collect()
}

fn worker_functions() -> BTreeSet<String> {
    WORKERS.iter().map(|worker| worker.function.to_owned()).collect()
}

/// The template's function building `binary`, exactly one.
fn template_function(binary: &str) -> (String, Value) {
    let matching: Vec<_> = functions_in_template()
        .into_iter()
        .filter(|(_, f)| untag(&f["Metadata"]["BuildProperties"]["Binary"]).as_str() == Some(binary))
        .collect();
    assert_eq!(matching.len(), 1, "template functions building `{binary}`");
    matching.into_iter().next().unwrap()
}

#[test]
fn every_route_has_exactly_one_template_function_with_its_method_and_path() {
    let functions = functions_in_template();
    for route in ROUTES {
        let matching: Vec<_> = functions
            .iter()
            .filter(|(_, f)| untag(&f["Metadata"]["BuildProperties"]["Binary"]).as_str() == Some(route.function))
            .collect();
        assert_eq!(matching.len(), 1, "template functions building `{}`", route.function);
        let (name, function) = matching[0];
        let events = function["Properties"]["Events"].as_mapping().unwrap();
        assert_eq!(events.len(), 1, "{name} has one API event");
        let event = events.values().next().unwrap();
        assert_eq!(event["Type"], Value::from("HttpApi"), "{name}");
        assert_eq!(event["Properties"]["Method"].as_str(), Some(route.method), "{name}");
        assert_eq!(event["Properties"]["Path"].as_str(), Some(route.path), "{name}");
        assert_eq!(function["Metadata"]["BuildMethod"].as_str(), Some("rust-cargolambda"), "{name}");
        assert_eq!(
            function["Properties"]["CodeUri"].as_str(),
            Some(format!("./{}", route.package()).as_str()),
            "{name}"
        );
    }
    assert_eq!(functions.len(), ROUTES.len() + WORKERS.len(), "the template has functions neither table has");
}

#[test]
fn every_route_is_documented_once_in_openapi_under_its_function_name() {
    let text = std::fs::read_to_string(repo_root().join("openapi.yaml")).unwrap();
    let spec: Value = yaml_serde::from_str(&text).unwrap();
    let mut documented = BTreeSet::new();
    for (path, item) in spec["paths"].as_mapping().unwrap() {
        for (method, operation) in item.as_mapping().unwrap() {
            let method = method.as_str().unwrap();
            if method == "parameters" {
                continue;
            }
            let id = operation["operationId"].as_str().unwrap_or_else(|| panic!("{method} {path:?}: no operationId"));
            let route = ROUTES.iter().find(|route| route.function == id);
            let route = route.unwrap_or_else(|| panic!("openapi.yaml documents `{id}`, which no route serves"));
            assert_eq!(route.method, method.to_uppercase(), "{id}");
            assert_eq!(Some(route.path), path.as_str(), "{id}");
            assert!(documented.insert(id.to_owned()), "`{id}` is documented twice");
        }
    }
    assert_eq!(documented, route_functions(), "routes missing from openapi.yaml");
}

#[test]
fn every_route_has_a_binary_in_its_package_and_every_binary_a_route() {
    for package in ["functions", "functions-docs"] {
        let routes: BTreeSet<String> =
            ROUTES.iter().filter(|route| route.package() == package).map(|route| route.function.to_owned()).collect();
        let workers = if package == "functions" { worker_functions() } else { BTreeSet::new() };
        let expected: BTreeSet<String> = routes.union(&workers).cloned().collect();
        assert_eq!(file_stems(&format!("{package}/src/bin"), "rs"), expected, "{package}");
    }
}

/// The rule's dead-letter queue and the function's on-failure destination
/// are one queue of the worker's own, which no other worker uses.
fn assert_own_dead_letter_queue(name: &str, function: &Value, properties: &Value) {
    let rule_queue = format!("{:?}", untag(&properties["DeadLetterConfig"]["Arn"]));
    let destination = &function["Properties"]["EventInvokeConfig"]["DestinationConfig"]["OnFailure"];
    assert_eq!(destination["Type"], Value::from("SQS"), "{name}: an on-failure destination");
    assert_eq!(format!("{:?}", untag(&destination["Destination"])), rule_queue, "{name}: one dead-letter queue");
    let queue =
        untag(&properties["DeadLetterConfig"]["Arn"]).as_str().unwrap_or_default().trim_end_matches(".Arn").to_owned();
    assert!(queue.starts_with(&name.replace("Function", "")), "{name}: its own queue, not {queue}");
}

#[test]
fn every_worker_has_one_template_function_with_its_trigger_and_a_failure_destination() {
    let template = template();
    let resources = template["Resources"].as_mapping().unwrap();
    for worker in WORKERS {
        let (name, function) = template_function(worker.function);
        assert_eq!(function["Metadata"]["BuildMethod"].as_str(), Some("rust-cargolambda"), "{name}");
        assert_eq!(function["Properties"]["CodeUri"].as_str(), Some("./functions"), "{name}");
        let events = function["Properties"]["Events"].as_mapping().unwrap();
        assert_eq!(events.len(), 1, "{name} has one trigger");
        let event = events.values().next().unwrap();
        let properties = &event["Properties"];
        match worker.trigger {
            Trigger::TableStream => {
                assert_eq!(event["Type"], Value::from("DynamoDB"), "{name}");
                assert_eq!(properties["FunctionResponseTypes"][0], Value::from("ReportBatchItemFailures"), "{name}");
                assert_eq!(properties["BisectBatchOnFunctionError"], Value::from(true), "{name}");
                assert_eq!(properties["DestinationConfig"]["OnFailure"]["Type"], Value::from("SQS"), "{name}");
            }
            Trigger::Bus(types) => {
                assert_eq!(event["Type"], Value::from("EventBridgeRule"), "{name}");
                assert_eq!(properties["Pattern"]["source"][0], Value::from("shop.api"), "{name}");
                let matched: Option<BTreeSet<String>> = properties["Pattern"]["detail-type"]
                    .as_sequence()
                    .map(|list| list.iter().map(|t| t.as_str().unwrap().to_owned()).collect());
                let declared = types.map(|types| types.iter().map(|t| t.as_str().to_owned()).collect());
                assert_eq!(matched, declared, "{name}: the rule matches the worker's event types");
                assert_own_dead_letter_queue(&name, &function, properties);
            }
            Trigger::Schedule => {
                assert_eq!(event["Type"], Value::from("Schedule"), "{name}");
                assert_own_dead_letter_queue(&name, &function, properties);
            }
            Trigger::Queue => {
                assert_eq!(event["Type"], Value::from("SQS"), "{name}");
                assert_eq!(properties["FunctionResponseTypes"][0], Value::from("ReportBatchItemFailures"), "{name}");
                // The queue hands jobs that keep failing to run to a DLQ.
                let queue = untag(&properties["Queue"]).as_str().unwrap().trim_end_matches(".Arn").to_owned();
                let redrive = &resources[queue.as_str()]["Properties"]["RedrivePolicy"];
                assert!(
                    untag(&redrive["deadLetterTargetArn"]).as_str().is_some(),
                    "{name}: {queue} has a dead-letter queue"
                );
                assert!(redrive["maxReceiveCount"].as_u64().is_some(), "{name}: {queue} redrives");
            }
        }
        // Least privilege: a worker never gets a managed catch-all policy.
        let policies = format!("{:?}", function["Properties"]["Policies"]);
        assert!(!policies.contains("FullAccess") && !policies.contains("CrudPolicy"), "{name}: {policies}");
    }
    assert_eq!(
        resources["Table"]["Properties"]["StreamSpecification"]["StreamViewType"],
        Value::from("NEW_AND_OLD_IMAGES"),
        "the change feed"
    );
}

#[test]
fn every_route_has_a_sample_event_with_its_route_key() {
    let expected: BTreeSet<String> = route_functions().union(&worker_functions()).cloned().collect();
    assert_eq!(file_stems("events", "json"), expected);
    for route in ROUTES {
        let path = repo_root().join("events").join(format!("{}.json", route.function));
        let event: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(event["version"], "2.0", "{}", path.display());
        assert_eq!(event["routeKey"], route.route_key(), "{}", path.display());
        assert_eq!(event["requestContext"]["http"]["method"], route.method, "{}", path.display());
    }
}

#[test]
fn every_openapi_operation_publishes_its_routes_access_and_matching_security() {
    let text = std::fs::read_to_string(repo_root().join("openapi.yaml")).unwrap();
    let spec: Value = yaml_serde::from_str(&text).unwrap();
    let bearer: Value = yaml_serde::from_str("[{bearer: []}]").unwrap();
    let anonymous: Value = yaml_serde::from_str("[]").unwrap();
    for route in ROUTES {
        let operation = &spec["paths"][route.path][route.method.to_lowercase().as_str()];
        let id = route.function;
        assert_eq!(operation["x-access"].as_str(), Some(route.access.as_str()), "{id}: x-access");
        let responses = operation["responses"].as_mapping().unwrap();
        let declares = |status: &str| responses.contains_key(Value::from(status));
        if route.access.needs_token() {
            assert_eq!(operation["security"], bearer, "{id}: a protected operation names the bearer scheme");
            assert!(declares("401"), "{id}: a protected operation documents 401");
        } else {
            assert_eq!(operation["security"], anonymous, "{id}: a public operation needs no credentials");
        }
        if route.access == Access::Admin {
            assert!(declares("403"), "{id}: an admin operation documents 403");
        }
    }
}

/// The manual's route tables (in `docs/`, a table per topic) are rows
/// `| \`METHOD /path\` | \`access\` | ...`: exactly one per route across
/// the pages.
#[test]
fn the_manuals_route_tables_say_who_may_call_each_route_as_the_table_does() {
    let pages: Vec<(String, String)> = std::fs::read_dir(repo_root().join("docs"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "md"))
        .map(|path| (path.display().to_string(), std::fs::read_to_string(&path).unwrap()))
        .collect();
    for route in ROUTES {
        let row_start = format!("| `{}` | ", route.route_key());
        let rows: Vec<(&str, &str)> = pages
            .iter()
            .flat_map(|(page, text)| {
                text.lines().filter(|line| line.starts_with(&row_start)).map(move |l| (page.as_str(), l))
            })
            .collect();
        assert_eq!(rows.len(), 1, "rows in docs/ for `{}`: {rows:?}", route.route_key());
        let who = rows[0].1[row_start.len()..].split(" |").next().unwrap();
        assert_eq!(who, format!("`{}`", route.access.as_str()), "{}: who for `{}`", rows[0].0, route.route_key());
    }
}
