# Sourced by bench/run, bench/callgrind and bench/cpu: the benchmark's route.

# bench_route GW BACKEND_PORT: creates the benchmark's REST API with GW (a command that runs
# `aws apigateway ...` against apigw's management API): `/{proxy+}` ANY -> HTTP_PROXY
# http://127.0.0.1:BACKEND_PORT/{proxy}, deployed to stage `bench`. Prints the path that
# reaches its `/hello`; fails (AWS CLI errors on stderr) if a call fails.
bench_route() {
    local gw=$1 backend=$2 api root res
    # shellcheck disable=SC2016 # a JMESPath literal
    local root_query='items[?path==`/`].id'
    api=$("$gw" create-rest-api --name bench --query id --output text) &&
        root=$("$gw" get-resources --rest-api-id "$api" --query "$root_query" --output text) &&
        res=$("$gw" create-resource --rest-api-id "$api" --parent-id "$root" --path-part '{proxy+}' \
            --query id --output text) &&
        "$gw" put-method --rest-api-id "$api" --resource-id "$res" --http-method ANY \
            --authorization-type NONE --request-parameters method.request.path.proxy=true >/dev/null &&
        "$gw" put-integration --rest-api-id "$api" --resource-id "$res" --http-method ANY \
            --type HTTP_PROXY --integration-http-method ANY --uri "http://127.0.0.1:$backend/{proxy}" \
            --request-parameters integration.request.path.proxy=method.request.path.proxy >/dev/null &&
        "$gw" create-deployment --rest-api-id "$api" --stage-name bench >/dev/null &&
        echo "/restapis/$api/bench/_user_request_/hello"
}
