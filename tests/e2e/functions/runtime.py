#!/usr/bin/env python3
"""A custom-runtime `bootstrap` in Python's stdlib, speaking the Lambda Runtime API.

The tests zip it as `bootstrap` at test time. The event's "action" picks a behaviour:
echo (default), sleep, error, crash, touch (write a file), version (answer VERSION).
"""
import json
import os
import sys
import time
import urllib.request

VERSION = "v1"
API = "http://" + os.environ["AWS_LAMBDA_RUNTIME_API"] + "/2018-06-01/runtime"


def post(path, body, headers=None):
    req = urllib.request.Request(API + path, data=body, method="POST", headers=headers or {})
    with urllib.request.urlopen(req) as r:
        return r.status


print("runtime starting for", os.environ["AWS_LAMBDA_FUNCTION_NAME"], flush=True)
while True:
    with urllib.request.urlopen(API + "/invocation/next") as r:
        request_id = r.headers["Lambda-Runtime-Aws-Request-Id"]
        headers = {k.lower(): v for k, v in r.headers.items()}
        event = json.loads(r.read() or b"null")
    action = event.get("action") if isinstance(event, dict) else None
    print(f"handling {request_id} action={action}", flush=True)
    if action == "sleep":
        time.sleep(event["seconds"])
    elif action == "crash":
        sys.exit(3)
    elif action == "touch":
        with open(event["path"], "w") as f:
            f.write(request_id)
    elif action == "error":
        body = {"errorMessage": "something broke", "errorType": "BrokenError", "stackTrace": []}
        post(f"/invocation/{request_id}/error", json.dumps(body).encode(),
             {"Lambda-Runtime-Function-Error-Type": "Unhandled"})
        continue
    env = {k: os.environ.get(k) for k in ("AWS_LAMBDA_FUNCTION_NAME", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
                                          "AWS_REGION", "GREETING", "_HANDLER")}
    out = {"version": VERSION, "event": event, "requestId": request_id,
           "functionArn": headers.get("lambda-runtime-invoked-function-arn"), "env": env}
    post(f"/invocation/{request_id}/response", json.dumps(out).encode())
