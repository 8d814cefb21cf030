"""The deployed stack through boto3, for localstack.sh (run with the SAM
venv's Python, which has boto3 and SAM's YAML reader). AWS_ENDPOINT_URL
points every client at LocalStack.

    stack.py clear-failed STACK        delete the stack if it failed to create (it cannot be updated)
    stack.py describe STACK STATE      outputs.json, resources.json, functions.json into STATE; outputs printed
    stack.py invoke-all FUNCTIONS      every function with its events/ sample: "binary<TAB>answer" lines
"""

import json
import sys

import boto3
from samcli.yamlhelper import yaml_parse

FAILED = ("ROLLBACK_COMPLETE", "ROLLBACK_FAILED", "CREATE_FAILED", "DELETE_FAILED")


def template_functions():
    """(logical id, binary) of every function, in the template's order."""
    with open("template.yaml") as template:
        resources = yaml_parse(template.read())["Resources"]
    return [
        (name, resource["Metadata"]["BuildProperties"]["Binary"])
        for name, resource in resources.items()
        if resource["Type"] == "AWS::Serverless::Function"
    ]


def clear_failed(stack_name):
    cloudformation = boto3.client("cloudformation")
    try:
        status = cloudformation.describe_stacks(StackName=stack_name)["Stacks"][0]["StackStatus"]
    except cloudformation.exceptions.ClientError:
        return
    if status in FAILED:
        cloudformation.delete_stack(StackName=stack_name)
        cloudformation.get_waiter("stack_delete_complete").wait(StackName=stack_name)


def describe(stack_name, state):
    cloudformation = boto3.client("cloudformation")
    stack = cloudformation.describe_stacks(StackName=stack_name)["Stacks"][0]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
    resources = {}
    for page in cloudformation.get_paginator("list_stack_resources").paginate(StackName=stack_name):
        for resource in page["StackResourceSummaries"]:
            resources[resource["LogicalResourceId"]] = resource["PhysicalResourceId"]
    functions = {binary: resources[name] for name, binary in template_functions() if name in resources}
    for name, value in (("outputs", outputs), ("resources", resources), ("functions", functions)):
        with open(f"{state}/{name}.json", "w") as file:
            json.dump(value, file, indent=2)
    for key, value in outputs.items():
        print(f"  {key}: {value}")


def answer_of(response):
    """What sam-local.sh compares to: a route's status, a worker's JSON."""
    payload = response["Payload"].read()
    if "FunctionError" in response:
        return f"error {payload[:200]!r}"
    try:
        value = json.loads(payload)
    except ValueError:
        return "no answer"
    return value["statusCode"] if isinstance(value, dict) and "statusCode" in value else json.dumps(value)


def invoke_all(functions_file):
    with open(functions_file) as file:
        functions = json.load(file)
    client = boto3.client("lambda")
    for _, binary in template_functions():
        with open(f"events/{binary}.json", "rb") as sample:
            response = client.invoke(FunctionName=functions[binary], Payload=sample.read())
        print(f"{binary}\t{answer_of(response)}", flush=True)


if __name__ == "__main__":
    command, *arguments = sys.argv[1:]
    {"clear-failed": clear_failed, "describe": describe, "invoke-all": invoke_all}[command](*arguments)
