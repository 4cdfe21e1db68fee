//! The benchmark's template and input, shared by `benches/render.rs` and
//! `examples/render_loop.rs` so both measure the same render.

use apigw_vtl::aws::AwsInput;

pub const TEMPLATE: &str = r#"#set($inputRoot = $input.path('$'))
#set($count = $inputRoot.pets.size())
{
  "requestId": "$context.requestId",
  "stage": "$stageVariables.env",
  "total": $count,
  "pets": [
#foreach($pet in $inputRoot.pets)
    {
      "id": $pet.id,
      "name": "$util.escapeJavaScript($pet.name)",
      "kind": "$pet.type.toUpperCase()",
      "price": $pet.price,
#if($pet.price > 100)
      "tier": "premium",
#else
      "tier": "standard",
#end
      "link": "/pets/$pet.id?page=$input.params('page')"
    }#if($foreach.hasNext),#end
#end
  ]
}
"#;

pub fn input() -> AwsInput {
    let pets: Vec<String> = (1..=10)
        .map(|i| {
            format!(
                r#"{{"id":{i},"name":"pet {i}","type":"{}","price":{}.99}}"#,
                if i % 2 == 0 { "dog" } else { "cat" },
                40 * i
            )
        })
        .collect();
    AwsInput {
        body: format!(r#"{{"pets":[{}]}}"#, pets.join(",")),
        query: vec![("page".into(), "2".into())],
        context: serde_json::json!({"requestId": "c6af9ac6-7b61-11e6-9a41-93e8deadbeef"}),
        stage_variables: vec![("env".into(), "prod".into())],
        ..AwsInput::default()
    }
}
