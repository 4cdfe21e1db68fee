//! API Gateway's documented and recorded mapping-template examples (the team's reference
//! `aws-api-gateway.md` §5.6 and §16.4), with exact expected output. Where the reference
//! gives an output only "semantically" (Example A), the exact whitespace is what Apache
//! Velocity 1.7 itself printed for the same template and data.

use apigw_vtl::aws::{AwsInput, Overrides, Rendered, render};
use apigw_vtl::{Limits, RenderError, Template};
use serde_json::json;

fn run(template: &str, input: &AwsInput) -> Rendered {
    let t = Template::parse(template).unwrap_or_else(|e| panic!("{template:?}: {e}"));
    render(&t, input, &Limits::default()).unwrap_or_else(|e| panic!("{template:?}: {e}"))
}

fn body(template: &str, body: &str) -> String {
    run(
        template,
        &AwsInput {
            body: body.into(),
            ..AwsInput::default()
        },
    )
    .body
}

fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
    p.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

const GROCERY: &str = r#"{"department":"produce","categories":["fruit","vegetables"],"bins":[{"category":"fruit","type":"apples","price":1.99,"unit":"pound","quantity":232},{"category":"fruit","type":"bananas","price":0.19,"unit":"each","quantity":112},{"category":"vegetables","type":"carrots","price":1.29,"unit":"bag","quantity":57}]}"#;

#[test]
fn example_a_grocery_foreach() {
    let template = r#"#set($inputRoot = $input.path('$'))
{
  "choices": [
#foreach($elem in $inputRoot.bins)
    {
      "kind": "$elem.type",
      "suggestedPrice": "$elem.price per $elem.unit",
      "available": $elem.quantity
    }#if($foreach.hasNext),#end

#end
  ]
}"#;
    let want = r#"{
  "choices": [
    {
      "kind": "apples",
      "suggestedPrice": "1.99 per pound",
      "available": 232
    },
    {
      "kind": "bananas",
      "suggestedPrice": "0.19 per each",
      "available": 112
    },
    {
      "kind": "carrots",
      "suggestedPrice": "1.29 per bag",
      "available": 57
    }
  ]
}"#;
    let out = body(template, GROCERY);
    assert_eq!(out, want);
    // And the documented (whitespace-free) form.
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        v,
        serde_json::from_str::<serde_json::Value>(r#"{"choices":[{"kind":"apples","suggestedPrice":"1.99 per pound","available":232},{"kind":"bananas","suggestedPrice":"0.19 per each","available":112},{"kind":"carrots","suggestedPrice":"1.29 per bag","available":57}]}"#).unwrap()
    );
}

fn things_input() -> AwsInput {
    AwsInput {
        body: r#"{"things":{"1":{},"2":{},"3":{}}}"#.into(),
        path_params: pairs(&[("id", "123")]),
        ..AwsInput::default()
    }
}

#[test]
fn example_b_params_path_json() {
    let template = "{\n    \"id\" : \"$input.params('id')\",\n    \"count\" : \"$input.path('$.things').size()\",\n    \"things\" : $input.json('$.things')\n}";
    let out = run(template, &things_input()).body;
    assert_eq!(
        out,
        "{\n    \"id\" : \"123\",\n    \"count\" : \"3\",\n    \"things\" : {\"1\":{},\"2\":{},\"3\":{}}\n}"
    );
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        v,
        json!({"id":"123","count":"3","things":{"1":{},"2":{},"3":{}}})
    );
}

#[test]
fn example_b_escape_javascript_of_json() {
    let template = "{\n    \"id\" : \"$input.params('id')\",\n    \"count\" : \"$input.path('$.things').size()\",\n    \"things\" : \"$util.escapeJavaScript($input.json('$.things'))\"\n}";
    let out = run(template, &things_input()).body;
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        v,
        json!({"id":"123","count":"3","things":"{\"1\":{},\"2\":{},\"3\":{}}"})
    );
    assert!(
        out.contains(r#""things" : "{\"1\":{},\"2\":{},\"3\":{}}""#),
        "{out}"
    );
}

#[test]
fn example_c_query_param_and_json_string() {
    let input = AwsInput {
        body: r#"{"Price":"249.99","Age":"6"}"#.into(),
        query: pairs(&[("name", "Bella"), ("type", "dog")]),
        ..AwsInput::default()
    };
    let out = run(
        r#"{"name" : "$input.params('name')", "body" : $input.json('$.Age')}"#,
        &input,
    );
    assert_eq!(out.body, r#"{"name" : "Bella", "body" : "6"}"#);
    // §16.4: escapeJavaScript of that JSON string.
    let out = run(
        r#"{"body": "$util.escapeJavaScript($input.json('$.Age'))"}"#,
        &input,
    );
    assert_eq!(out.body, r#"{"body": "\"6\""}"#);
}

#[test]
fn example_d_parse_json() {
    let out = body(
        "#set($o = $util.parseJson($input.path('$.errorMessage')))\n{\"v\" : $o.key2.arr[0]}",
        r#"{"errorMessage":"{\"key1\":\"var1\",\"key2\":{\"arr\":[1,2,3]}}"}"#,
    );
    assert_eq!(out, r#"{"v" : 1}"#);
}

const PETSTORE_E: &str = r#"#set($inputRoot = $input.path('$'))
$input.json("$")
#if($inputRoot.toString().contains("error"))
#set($context.responseOverride.status = 400)
#end
"#;

#[test]
fn example_e_response_status_override() {
    let backend =
        r#"{"errors":[{"key":"GetPetRequest.petId","message":"The value is out of range."}]}"#;
    let out = run(
        PETSTORE_E,
        &AwsInput {
            body: backend.into(),
            ..AwsInput::default()
        },
    );
    assert_eq!(out.body, format!("{backend}\n"));
    assert_eq!(out.overrides.status, Some(400));
    // A good answer keeps its status.
    let ok = run(
        PETSTORE_E,
        &AwsInput {
            body: r#"{"id":1,"type":"dog","price":249.99}"#.into(),
            ..AwsInput::default()
        },
    );
    assert_eq!(ok.body, "{\"id\":1,\"type\":\"dog\",\"price\":249.99}\n");
    assert_eq!(ok.overrides, Overrides::default());
}

#[test]
fn example_f_request_header_overrides() {
    let template = r#"#set($header1Override = "foo")
#set($header3Value = "$input.params('header1')$input.params('header2')")
$input.json("$")
#set($context.requestOverride.header.header3 = $header3Value)
#set($context.requestOverride.header.header1 = $header1Override)
#set($context.requestOverride.header.multivalueheader=[$header1Override, $header3Value])"#;
    let out = run(
        template,
        &AwsInput {
            body: r#"{"a":1}"#.into(),
            headers: pairs(&[("header1", "header1Val"), ("header2", "header2Val")]),
            ..AwsInput::default()
        },
    );
    assert_eq!(out.body, "{\"a\":1}\n");
    assert_eq!(
        out.overrides.request_headers,
        pairs(&[
            ("header3", "header1Valheader2Val"),
            ("header1", "foo"),
            ("multivalueheader", "foo,header1Valheader2Val"),
        ])
    );
}

#[test]
fn override_query_path_and_response_header() {
    let out = body_and_overrides(
        "#set($context.requestOverride.querystring.q = 'v')#set($context.requestOverride.path.id = 7)#set($context.responseOverride.header.X-Trace = 'abc')#set($context.responseOverride.status = '201')",
    );
    assert_eq!(out.status, Some(201));
    assert_eq!(out.request_querystring, pairs(&[("q", "v")]));
    assert_eq!(out.request_path, pairs(&[("id", "7")]));
    assert_eq!(out.response_headers, pairs(&[("X-Trace", "abc")]));
}

fn body_and_overrides(template: &str) -> Overrides {
    run(template, &AwsInput::default()).overrides
}

#[test]
fn each_override_may_be_set_once() {
    // "Overrides are final": setting the same one twice answers 5XX on API Gateway.
    for template in [
        "#set($context.responseOverride.status = 400)#set($context.responseOverride.status = 401)",
        "#set($context.requestOverride.header.h = 'a')#set($context.requestOverride.header.h = 'b')",
        "#set($context.responseOverride.header.h = 'a')$context.responseOverride.header.put('h', 'b')",
    ] {
        let t = Template::parse(template).unwrap();
        let err = render(&t, &AwsInput::default(), &Limits::default()).unwrap_err();
        assert!(
            matches!(err, RenderError::Host(ref m) if m.contains("more than once")),
            "{template}: {err}"
        );
    }
    // The documented workaround: a local variable, one override at the end. Overrides read
    // back as set.
    let out = run(
        "#set($s = 200)#if(true)#set($s = 404)#end#set($context.responseOverride.status = $s)$context.responseOverride.status $context.requestOverride.header.size()",
        &AwsInput::default(),
    );
    assert_eq!(out.body, "404 0");
    assert_eq!(out.overrides.status, Some(404));
}

#[test]
fn invalid_status_override_fails_the_render() {
    let t = Template::parse("#set($context.responseOverride.status = 'teapot')").unwrap();
    let err = render(&t, &AwsInput::default(), &Limits::default()).unwrap_err();
    assert!(
        matches!(err, RenderError::Host(ref m) if m.contains("teapot")),
        "{err}"
    );
}

/// §16.4: integration response templates over a backend body `{"json": X}`.
#[test]
fn recorded_input_path_rendering() {
    let cases = [
        ("$result", r#"{"foo":"bar"}"#, "{foo=bar}"),
        ("$result", r#"[{"foo":"bar"}]"#, r#"[{"foo":"bar"}]"#),
        (
            "$result",
            r#"{"foo":[{"nested":"bar"}]}"#,
            r#"{foo=[{"nested":"bar"}]}"#,
        ),
        (
            "$result",
            r#"{"bigger":"dict","to":"test","with":"separators"}"#,
            "{bigger=dict, to=test, with=separators}",
        ),
        ("$result.nested", r#"{"nested":{"foo":"bar"}}"#, "{foo=bar}"),
        (
            "$result.nested",
            r#"{"nested":[{"foo":"bar"}]}"#,
            r#"[{"foo":"bar"}]"#,
        ),
        ("$result[0]", r#"[{"foo":"bar"}]"#, "{foo=bar}"),
        ("$result.toString()", r#"{"foo":"bar"}"#, "{foo=bar}"),
    ];
    for (expr, x, want) in cases {
        let template = format!("#set($result = $input.path(\"$.json\")){expr}");
        let got = body(&template, &format!(r#"{{"json": {x}}}"#));
        assert_eq!(got, want, "{template} over {x}");
    }
}

#[test]
fn recorded_missing_path_is_empty_and_null() {
    let template = r##"#set($result = $input.path("$.nonExisting")){"body": $result, "nested": $result.nested, "isNull": #if( $result == $null )"true"#else"false"#end, "isEmptyString": #if( $result == "" )"true"#else"false"#end}"##;
    assert_eq!(
        body(template, r#"{"json": {"a": 1}}"#),
        r#"{"body": , "nested": , "isNull": "true", "isEmptyString": "true"}"#
    );
    let list = template.replace("$.nonExisting", "$.json.listValue");
    assert_eq!(
        body(&list, r#"{"json": {"listValue": []}}"#),
        r#"{"body": [], "nested": , "isNull": "false", "isEmptyString": "false"}"#
    );
}

#[test]
fn recorded_request_body_templates() {
    assert_eq!(body("$input.body", ""), "{}");
    assert_eq!(
        body(
            "Action=SendMessage&MessageBody=$input.body",
            r#"{"some": "value"}"#
        ),
        r#"Action=SendMessage&MessageBody={"some": "value"}"#
    );
    let enc = "EncodedBody=$util.urlEncode($input.body)";
    assert_eq!(body(enc, "some raw data"), "EncodedBody=some+raw+data");
    assert_eq!(
        body(enc, r#"{"some": "value"}"#),
        "EncodedBody=%7B%22some%22%3A+%22value%22%7D"
    );
    assert_eq!(body(enc, ""), "EncodedBody=%7B%7D");
}

#[test]
fn input_json_forms() {
    let b = r#"{"a":{"b":[1,2.5,"x",true,null]},"s":"q\"uote","n":1.0}"#;
    assert_eq!(body("$input.json('$')", b), b);
    assert_eq!(body("$input.json('$.a.b')", b), r#"[1,2.5,"x",true,null]"#);
    assert_eq!(body("$input.json('$.s')", b), r#""q\"uote""#);
    assert_eq!(body("$input.json('$.n')", b), "1.0");
    assert_eq!(body("$input.json('$.a.b[1]')", b), "2.5");
    // A definite path that matches nothing gives an empty JSON string.
    assert_eq!(body("$input.json('$.missing')", b), r#""""#);
    // Indefinite paths give lists.
    assert_eq!(body("$input.json('$.a.b[0,1]')", b), "[1,2.5]");
    assert_eq!(body("$input.json('$..b')", b), r#"[[1,2.5,"x",true,null]]"#);
    // Object keys keep the document's order.
    assert_eq!(
        body("$input.json('$')", r#"{"z":1,"a":2,"m":3}"#),
        r#"{"z":1,"a":2,"m":3}"#
    );
}

#[test]
fn input_path_forms() {
    let b = r#"{"pets":[{"id":1,"type":"dog","price":249.99},{"id":2,"type":"cat","price":124.99}],"name":"shop","with-dash":"d"}"#;
    assert_eq!(body("$input.path('$.name')", b), "shop");
    assert_eq!(body("$input.path('$.pets').size()", b), "2");
    assert_eq!(body("$input.path('$.pets[1].type')", b), "cat");
    assert_eq!(body("$input.path('$.pets[0].price')", b), "249.99");
    assert_eq!(body("$input.path('$.with-dash')", b), "d");
    assert_eq!(
        body(
            "#foreach($p in $input.path('$.pets'))$p.id:$p.type#if($foreach.hasNext),#end#end",
            b
        ),
        "1:dog,2:cat"
    );
    assert_eq!(
        body("$input.path('$.pets[?(@.price < 200)].type')", b),
        r#"["cat"]"#
    );
    assert_eq!(
        body("$input.path('$').keySet()", b),
        "[pets, name, with-dash]"
    );
    // Changing what path() returned does not change the payload.
    assert_eq!(
        body(
            "#set($r = $input.path('$'))#set($r.name = 'x')$r.name $input.path('$.name')",
            b
        ),
        "x shop"
    );
}

#[test]
fn input_path_on_non_json_body_fails() {
    let t = Template::parse("$input.path('$.a')").unwrap();
    let input = AwsInput {
        body: "not json".into(),
        ..AwsInput::default()
    };
    assert!(matches!(
        render(&t, &input, &Limits::default()),
        Err(RenderError::Method { .. })
    ));
}

fn params_input() -> AwsInput {
    AwsInput {
        path_params: pairs(&[("petId", "42")]),
        query: pairs(&[("type", "dog"), ("page", "1"), ("page", "2")]),
        headers: pairs(&[("Accept", "application/json"), ("X-Id", "h")]),
        ..AwsInput::default()
    }
}

#[test]
fn input_params_lookup_order_and_misses() {
    let i = params_input();
    assert_eq!(
        run(
            "$input.params('petId') $input.params('type') $input.params('Accept')",
            &i
        )
        .body,
        "42 dog application/json"
    );
    // Repeated query parameters: the last value. Unknown names: empty string.
    assert_eq!(
        run("[$input.params('page')][$input.params('nope')]", &i).body,
        "[2][]"
    );
    // Header names are case-insensitive when no exact match exists.
    assert_eq!(run("$input.params('x-id')", &i).body, "h");
    // Path wins over query string, query string over header.
    let both = AwsInput {
        path_params: pairs(&[("id", "p")]),
        query: pairs(&[("id", "q"), ("h", "q")]),
        headers: pairs(&[("id", "hd"), ("h", "hd")]),
        ..AwsInput::default()
    };
    assert_eq!(
        run("$input.params('id') $input.params('h')", &both).body,
        "p q"
    );
}

#[test]
fn input_params_all_passthrough_template() {
    // The shape of AWS's "Method Request passthrough" template.
    let template = r#"#set($allParams = $input.params())
{
"params" : {
#foreach($type in $allParams.keySet())
    #set($params = $allParams.get($type))
"$type" : {
    #foreach($paramName in $params.keySet())
    "$paramName" : "$util.escapeJavaScript($params.get($paramName))"
        #if($foreach.hasNext),#end
    #end
}
    #if($foreach.hasNext),#end
#end
}
}"#;
    let out = run(template, &params_input()).body;
    let v: serde_json::Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(
        v,
        json!({"params": {
            "path": {"petId": "42"},
            "querystring": {"type": "dog", "page": "2"},
            "header": {"Accept": "application/json", "X-Id": "h"}
        }})
    );
    assert_eq!(
        run("$input.params()", &params_input()).body,
        "{path={petId=42}, querystring={type=dog, page=2}, header={Accept=application/json, X-Id=h}}"
    );
}

#[test]
fn util_functions() {
    let cases = [
        (
            r#"$util.escapeJavaScript("it's a ""test""/")"#,
            r#"it\'s a \"test\"\/"#,
        ),
        ("$util.escapeJavaScript('\u{1}\u{7f}')", "\\u0001\u{7f}"),
        (
            r#"$util.escapeJavaScript("it's").replaceAll("\\'", "'")"#,
            "it's",
        ),
        ("$util.escapeJavaScript('tab\there')", r"tab\there"),
        (
            "$util.escapeJavaScript('é€😀')",
            r"\u00E9\u20AC\uD83D\uDE00",
        ),
        ("$util.urlEncode('a b&c=d/é')", "a+b%26c%3Dd%2F%C3%A9"),
        ("$util.urlEncode('-_.*~')", "-_.*%7E"),
        ("$util.urlDecode('a+b%26c%3Dd%2F%C3%A9')", "a b&c=d/é"),
        ("$util.base64Encode('hello world')", "aGVsbG8gd29ybGQ="),
        ("$util.base64Decode('aGVsbG8gd29ybGQ=')", "hello world"),
        (
            r#"#set($o = $util.parseJson('{"a":[1,{"b":"c"}]}'))$o.a[1].b $o.a.size() $o"#,
            r#"c 2 {a=[1,{"b":"c"}]}"#,
        ),
    ];
    for (template, want) in cases {
        assert_eq!(body(template, ""), want, "{template}");
    }
}

#[test]
fn util_failures_fail_the_render() {
    for template in [
        "$util.urlDecode('%zz')",
        "$util.base64Decode('***')",
        "$util.parseJson('{nope')",
    ] {
        let t = Template::parse(template).unwrap();
        assert!(
            render(&t, &AwsInput::default(), &Limits::default()).is_err(),
            "{template}"
        );
    }
}

#[test]
fn stage_variables_forms() {
    let input = AwsInput {
        stage_variables: pairs(&[("env", "prod"), ("url", "example.com")]),
        ..AwsInput::default()
    };
    assert_eq!(
        run(
            "$stageVariables.env $stageVariables['url'] ${stageVariables['env']} [$stageVariables.nope]",
            &input
        )
        .body,
        "prod example.com prod []"
    );
}

#[test]
fn context_variables() {
    let input = AwsInput {
        context: json!({
            "requestId": "req-1",
            "requestTimeEpoch": 1700000000000i64,
            "httpMethod": "POST",
            "identity": {"sourceIp": "10.0.0.1", "userAgent": "curl/8"},
            "authorizer": {"principalId": "user", "claims": {"email": "a@b.c"}, "numKey": "1"},
            "stage": "prod"
        }),
        ..AwsInput::default()
    };
    assert_eq!(
        run(
            "$context.requestId $context.requestTimeEpoch $context.httpMethod $context.identity.sourceIp $context.authorizer.principalId $context.authorizer.claims.email $context.authorizer.numKey $context.stage [$context.nope]",
            &input
        )
        .body,
        "req-1 1700000000000 POST 10.0.0.1 user a@b.c 1 prod []"
    );
}

#[test]
fn null_references_print_nothing_on_api_gateway() {
    assert_eq!(
        body("[$nope][$input.path('$.x')][${nope.a}]", "{}"),
        "[][][]"
    );
}

#[test]
fn foreach_stops_after_1000_items_as_on_api_gateway() {
    let items: Vec<String> = (0..1500).map(|i| i.to_string()).collect();
    let b = format!("[{}]", items.join(","));
    let out = body("#foreach($i in $input.path('$'))x#end", &b);
    assert_eq!(out.len(), 1000);
}
