"""A Python handler run by awslambdaric (runtime python3.x)."""


def handler(event, context):
    if isinstance(event, dict) and event.get("fail"):
        raise ValueError("handler refused: " + str(event["fail"]))
    print("python handler got", event)
    return {
        "event": event,
        "requestId": context.aws_request_id,
        "functionName": context.function_name,
        "memory": context.memory_limit_in_mb,
        "arn": context.invoked_function_arn,
    }
