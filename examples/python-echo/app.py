"""An echo handler for apigw's Lambda integrations, run by awslambdaric.

A proxy event is answered with {"event": <the event>, "version": "1.0"|"2.0"}
in the body; the ``behaviour`` query parameter picks another answer
(``error`` raises, ``malformed`` returns an invalid proxy answer). Any other
event (a non-proxy integration) is returned as is, unless it is
{"fail": "<message>"}, which raises with that message.
"""

import json


def handler(event, context):
    if not isinstance(event, dict) or "requestContext" not in event:
        if isinstance(event, dict) and "fail" in event:
            raise Exception(event["fail"])
        return event
    version = "2.0" if event.get("version") == "2.0" else "1.0"
    query = event.get("queryStringParameters") or {}
    behaviour = query.get("behaviour")
    if behaviour == "error":
        raise Exception("the function failed on purpose")
    if behaviour == "malformed":
        return {"statusCode": 200, "wrongValue": "x"}
    return {
        "statusCode": 200,
        "headers": {"content-type": "application/json"},
        "body": json.dumps(
            {
                "event": event,
                "version": version,
                "requestId": context.aws_request_id,
            }
        ),
    }
