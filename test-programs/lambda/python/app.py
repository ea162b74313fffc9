"""Test handler for Updraft's process runtime: see ../README.md."""
import json
import os
import time

COUNT = 0


def info(event, context):
    return {
        "request_id": context.aws_request_id,
        "deadline_ms": context.get_remaining_time_in_millis() + int(time.time() * 1000),
        "arn": context.invoked_function_arn,
        "function": context.function_name,
        "memory": int(context.memory_limit_in_mb),
        "route_key": event.get("routeKey"),
        "param": (event.get("pathParameters") or {}).get("op"),
        "count": COUNT,
        "pid": os.getpid(),
        "claims": ((event.get("requestContext") or {}).get("authorizer") or {}).get("jwt", {}).get("claims"),
        "env_home": os.environ.get("HOME"),
    }


def handler(event, context):
    global COUNT
    COUNT += 1
    if isinstance(event, dict) and event.get("version") == "2.0":
        op = (event.get("pathParameters") or {}).get("op")
        if op == "error":
            raise ValueError("asked to fail")
        if op == "sleep":
            time.sleep(60)
        if op == "sleep1":
            time.sleep(1)
        if op == "alloc":
            blob = bytearray(512 << 20)
            for i in range(0, len(blob), 4096):
                blob[i] = 1
        if op == "exit":
            os._exit(3)
        return {"statusCode": 200, "headers": {"content-type": "application/json"},
                "body": json.dumps(info(event, context))}
    if isinstance(event, dict) and event.get("Records") and event["Records"][0].get("eventSource") == "aws:sqs":
        failures = []
        for r in event["Records"]:
            print("sqs", r["body"])
            if r["body"] == "fail":
                failures.append({"itemIdentifier": r["messageId"]})
        return {"batchItemFailures": failures}
    if isinstance(event, dict) and event.get("detail-type") == "Scheduled Event":
        print("scheduled", event["id"])
        return None
    return {"echo": event, "request_id": context.aws_request_id, "count": COUNT}
