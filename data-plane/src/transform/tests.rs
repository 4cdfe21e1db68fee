use std::collections::BTreeMap;

use ::http::{HeaderMap, StatusCode};
use serde_json::json;

use super::*;
use crate::integration::mapping::RequestContext;

fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.append(*k, HeaderValue::from_static(v));
    }
    h
}

fn plan_of(
    integration: serde_json::Value,
    content_type: Option<&'static str>,
) -> Result<Option<String>, ResponseType> {
    let t = RequestTemplates::compile(&integration).unwrap();
    let h = content_type.map_or_else(HeaderMap::new, |ct| headers(&[("content-type", ct)]));
    match t.plan(&h) {
        Ok(RequestPlan::Transform(k)) => Ok(Some(k.template.source().to_owned())),
        Ok(RequestPlan::PassThrough) => Ok(None),
        Err(e) => Err(e.kind),
    }
}

#[test]
fn request_templates_follow_the_passthrough_table() {
    let templates = json!({"application/json": "J", "text/xml": "X"});
    for behaviour in ["WHEN_NO_MATCH", "WHEN_NO_TEMPLATES", "NEVER"] {
        let with = json!({"passthroughBehavior": behaviour, "requestTemplates": templates});
        // A template for the type transforms, whatever the behaviour; the
        // media type ignores parameters and case; no Content-Type is JSON.
        assert_eq!(
            plan_of(with.clone(), Some("text/xml; charset=utf-8")),
            Ok(Some("X".into()))
        );
        assert_eq!(
            plan_of(with.clone(), Some("Application/JSON")),
            Ok(Some("J".into()))
        );
        assert_eq!(plan_of(with.clone(), None), Ok(Some("J".into())));
        let unmatched = plan_of(with, Some("text/plain"));
        let none = plan_of(
            json!({"passthroughBehavior": behaviour}),
            Some("text/plain"),
        );
        match behaviour {
            "WHEN_NO_MATCH" => {
                assert_eq!(unmatched, Ok(None));
                assert_eq!(none, Ok(None));
            }
            "WHEN_NO_TEMPLATES" => {
                assert_eq!(unmatched, Err(ResponseType::UnsupportedMediaType));
                assert_eq!(none, Ok(None));
            }
            _ => {
                assert_eq!(unmatched, Err(ResponseType::UnsupportedMediaType));
                assert_eq!(none, Err(ResponseType::UnsupportedMediaType));
            }
        }
    }
    assert!(RequestTemplates::compile(&json!({"passthroughBehavior": "SOMETIMES"})).is_err());
}

#[test]
fn response_templates_follow_accept() {
    let t = ResponseTemplates::compile(&json!({"responseTemplates": {
        "text/plain": "P", "application/json": "J", "application/xml": "X"
    }}))
    .unwrap();
    let pick = |accept: Option<&'static str>| {
        let h = accept.map_or_else(HeaderMap::new, |a| headers(&[("accept", a)]));
        t.select(&h).map(|k| k.template.source().to_owned())
    };
    assert_eq!(pick(None).as_deref(), Some("J"));
    assert_eq!(pick(Some("application/xml")).as_deref(), Some("X"));
    // Only the first media type of Accept counts.
    assert_eq!(
        pick(Some("text/plain, application/xml")).as_deref(),
        Some("P")
    );
    assert_eq!(pick(Some("image/png")).as_deref(), Some("J"));
    let only =
        ResponseTemplates::compile(&json!({"responseTemplates": {"text/html": "H"}})).unwrap();
    assert_eq!(
        only.select(&HeaderMap::new()).map(|k| k.template.source()),
        Some("H")
    );
    assert!(
        ResponseTemplates::default()
            .select(&HeaderMap::new())
            .is_none()
    );
}

#[test]
fn parse_errors_are_found_before_compiling() {
    assert_eq!(
        first_parse_error(&json!({"requestTemplates": {"application/json": "ok $x"}})),
        None
    );
    let bad =
        first_parse_error(&json!({"requestTemplates": {"application/json": "#if($x)"}})).unwrap();
    assert!(bad.contains("application/json"), "{bad}");
    let bad = first_parse_error(&json!({"integrationResponses": {"200": {
        "responseTemplates": {"application/json": "#foreach($a)#end"}
    }}}))
    .unwrap();
    assert!(bad.starts_with("integration response 200"), "{bad}");
}

#[test]
fn renders_with_the_request_as_input() {
    let h = headers(&[("x-token", "abc"), ("user-agent", "ua/1")]);
    let authorizer = json!({"principalId": "me", "role": "admin"});
    let view = RequestView {
        headers: &h,
        raw_query: Some("q=a+b&id=42"),
        path_parameters: None,
        context: RequestContext {
            request_id: "rid",
            api_id: "api1",
            stage: "prod",
            resource_path: "/items/{id}",
            http_method: "POST",
            source_ip: "10.0.0.1",
            request_time_epoch: 1_700_000_000_123,
            authorizer: authorizer.as_object(),
            ..Default::default()
        },
    };
    let vars = BTreeMap::from([("env".to_string(), "e2e".to_string())]);
    let inputs = Inputs {
        view: &view,
        stage_variables: &vars,
    };
    let t = Template::parse(concat!(
        r#"{"id": "$input.params('id')", "q": "$input.params().querystring.q", "tok": "$input.params('X-Token')", "#,
        r#""n": $input.json('$.n'), "ctx": "$context.requestId $context.stage $context.resourcePath $context.httpMethod", "#,
        r#""ip": "$context.identity.sourceIp", "ua": "$context.identity.userAgent", "who": "$context.authorizer.principalId", "#,
        r#""epoch": $context.requestTimeEpoch, "time": "$context.requestTime", "env": "$stageVariables.env"}"#,
        "#set($context.requestOverride.header.X-A = \"1\")",
    ))
    .unwrap();
    let out = inputs.render(&t, br#"{"n": [1, 2]}"#).unwrap();
    assert_eq!(
        out.body,
        concat!(
            r#"{"id": "42", "q": "a b", "tok": "abc", "n": [1,2], "ctx": "rid prod /items/{id} POST", "#,
            r#""ip": "10.0.0.1", "ua": "ua/1", "who": "me", "epoch": 1700000000123, "#,
            r#""time": "14/Nov/2023:22:13:20 +0000", "env": "e2e"}"#
        )
    );
    assert_eq!(
        out.overrides.request_headers,
        vec![("X-A".to_string(), "1".to_string())]
    );
    // A render failure is AWS's 500, never a panic.
    let failing = Template::parse("$input.body.substring(99)").unwrap();
    assert_eq!(
        inputs.render(&failing, b"short").unwrap_err().kind,
        ResponseType::ApiConfigurationError
    );
}

#[test]
fn response_overrides_apply() {
    let overrides = Overrides {
        status: Some(418),
        response_headers: vec![
            ("X-One".into(), "1".into()),
            ("bad name".into(), "x".into()),
        ],
        ..Overrides::default()
    };
    let mut status = StatusCode::OK;
    let mut h = HeaderMap::new();
    apply_response_overrides(&overrides, &mut status, &mut h);
    assert_eq!(status.as_u16(), 418);
    assert_eq!(h["x-one"], "1");
    assert_eq!(h.len(), 1);
}
