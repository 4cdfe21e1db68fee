//! IAM policy documents as API Gateway evaluates them: a Lambda
//! authorizer's answer, a principal's statements, a REST API's resource
//! policy. Only what `execute-api` needs: `Effect`, `Principal`, `Action` /
//! `NotAction`, `Resource` / `NotResource`, and `Condition` with the string
//! and IP operators (`…IfExists` too). Evaluation: any matching Deny wins,
//! else any matching Allow, else nothing said (implicit deny).
//!
//! Parsing is strict where a lenient reading could widen access: an unknown
//! effect or condition operator is an error, never skipped.

use std::net::IpAddr;

use ipnet::IpNet;
use serde_json::Value;

use super::arn::{action_matches, wildcard_match};

/// Longest policy text considered (AWS caps resource policies at 8,192; an
/// authorizer's answer a little more generously).
pub const MAX_POLICY_BYTES: usize = 64 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("policy is not valid JSON: {0}")]
    Json(String),
    #[error("policy is too large")]
    TooLarge,
    #[error("policy has no Statement")]
    NoStatement,
    #[error("invalid {field}: {why}")]
    Invalid { field: &'static str, why: String },
    #[error("unsupported condition operator {0}")]
    UnsupportedOperator(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    Allow,
    Deny,
}

/// What a policy says about one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// A matching Deny statement.
    ExplicitDeny,
    /// A matching Allow and no matching Deny.
    Allow,
    /// Nothing matched.
    Silent,
}

#[derive(Debug, Clone, PartialEq)]
enum Principals {
    /// No `Principal` element: an identity policy (applies to its owner).
    Owner,
    /// `"*"` or `{"AWS": "*"}`: anyone, anonymous callers too.
    Anyone,
    /// Account ids, `arn:aws:iam::{account}:root`, or principal ARN patterns.
    Aws(Vec<String>),
}

#[derive(Debug, Clone, PartialEq)]
enum Match {
    Any(Vec<String>),
    Not(Vec<String>),
}

impl Match {
    fn covers(&self, value: &str, matches: impl Fn(&str, &str) -> bool) -> bool {
        match self {
            Match::Any(patterns) => patterns.iter().any(|p| matches(p, value)),
            Match::Not(patterns) => !patterns.iter().any(|p| matches(p, value)),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Operator {
    StringEquals,
    StringNotEquals,
    StringEqualsIgnoreCase,
    StringNotEqualsIgnoreCase,
    StringLike,
    StringNotLike,
    IpAddress,
    NotIpAddress,
}

impl Operator {
    fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "StringEquals" => Self::StringEquals,
            "StringNotEquals" => Self::StringNotEquals,
            "StringEqualsIgnoreCase" => Self::StringEqualsIgnoreCase,
            "StringNotEqualsIgnoreCase" => Self::StringNotEqualsIgnoreCase,
            "StringLike" => Self::StringLike,
            "StringNotLike" => Self::StringNotLike,
            "IpAddress" => Self::IpAddress,
            "NotIpAddress" => Self::NotIpAddress,
            _ => return None,
        })
    }

    fn negated(self) -> bool {
        matches!(
            self,
            Self::StringNotEquals
                | Self::StringNotEqualsIgnoreCase
                | Self::StringNotLike
                | Self::NotIpAddress
        )
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Values {
    Strings(Vec<String>),
    Nets(Vec<IpNet>),
}

#[derive(Debug, Clone, PartialEq)]
struct Condition {
    operator: Operator,
    if_exists: bool,
    /// Lower-cased: condition keys are case-insensitive.
    key: String,
    values: Values,
}

#[derive(Debug, Clone, PartialEq)]
struct Statement {
    effect: Effect,
    principals: Principals,
    actions: Match,
    resources: Match,
    conditions: Vec<Condition>,
}

/// A parsed policy document.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    statements: Vec<Statement>,
}

/// Who is calling, as far as policies can tell.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Caller {
    /// `None`: anonymous (no IAM identity).
    pub account: Option<String>,
    /// `arn:aws:iam::{account}:user/{name}` or `…:root`.
    pub arn: Option<String>,
    pub user_id: Option<String>,
}

/// The request facts conditions read.
#[derive(Debug, Clone, Default)]
pub struct Facts<'a> {
    pub action: &'a str,
    pub resource: &'a str,
    pub source_ip: Option<IpAddr>,
    pub source_vpc: Option<&'a str>,
    pub source_vpce: Option<&'a str>,
    pub caller: Option<&'a Caller>,
}

impl Facts<'_> {
    fn value(&self, key: &str) -> Option<String> {
        let caller = self.caller;
        match key {
            "aws:sourceip" => self.source_ip.map(|ip| ip.to_string()),
            "aws:sourcevpc" => self.source_vpc.map(str::to_owned),
            "aws:sourcevpce" => self.source_vpce.map(str::to_owned),
            "aws:principalaccount" => caller.and_then(|c| c.account.clone()),
            "aws:principalarn" => caller.and_then(|c| c.arn.clone()),
            "aws:userid" => caller.and_then(|c| c.user_id.clone()),
            _ => None,
        }
    }
}

fn strings(value: &Value, field: &'static str) -> Result<Vec<String>, PolicyError> {
    let bad = |why: &str| PolicyError::Invalid {
        field,
        why: why.to_owned(),
    };
    match value {
        Value::String(s) => Ok(vec![s.clone()]),
        Value::Array(items) if !items.is_empty() => items
            .iter()
            .map(|v| match v {
                Value::String(s) => Ok(s.clone()),
                Value::Number(n) => Ok(n.to_string()),
                Value::Bool(b) => Ok(b.to_string()),
                _ => Err(bad("expected strings")),
            })
            .collect(),
        Value::Number(n) => Ok(vec![n.to_string()]),
        Value::Bool(b) => Ok(vec![b.to_string()]),
        _ => Err(bad("expected a string or a non-empty list of strings")),
    }
}

/// `Foo` or `NotFoo`, exactly one of them.
fn either(
    s: &serde_json::Map<String, Value>,
    name: &'static str,
    not_name: &'static str,
) -> Result<Match, PolicyError> {
    match (get(s, name), get(s, not_name)) {
        (Some(v), None) => Ok(Match::Any(strings(v, name)?)),
        (None, Some(v)) => Ok(Match::Not(strings(v, not_name)?)),
        (Some(_), Some(_)) => Err(PolicyError::Invalid {
            field: name,
            why: format!("{name} and {not_name} are exclusive"),
        }),
        (None, None) => Err(PolicyError::Invalid {
            field: name,
            why: "missing".into(),
        }),
    }
}

/// Policy element names are case-sensitive in IAM; authorizers written by
/// hand often lower-case them, and AWS's authorizer accepts that, so both
/// spellings are read.
fn get<'v>(s: &'v serde_json::Map<String, Value>, name: &str) -> Option<&'v Value> {
    s.get(name).or_else(|| {
        s.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    })
}

fn principals(value: Option<&Value>) -> Result<Principals, PolicyError> {
    let bad = |why: &str| PolicyError::Invalid {
        field: "Principal",
        why: why.to_owned(),
    };
    match value {
        None => Ok(Principals::Owner),
        Some(Value::String(s)) if s == "*" => Ok(Principals::Anyone),
        Some(Value::Object(map)) => {
            let aws = get(map, "AWS").ok_or_else(|| bad("only AWS principals are supported"))?;
            let list = strings(aws, "Principal")?;
            if list.iter().any(|p| p == "*") {
                Ok(Principals::Anyone)
            } else {
                Ok(Principals::Aws(list))
            }
        }
        Some(_) => Err(bad("expected \"*\" or {\"AWS\": …}")),
    }
}

fn conditions(value: Option<&Value>) -> Result<Vec<Condition>, PolicyError> {
    let Some(value) = value else {
        return Ok(Vec::new());
    };
    let map = value.as_object().ok_or_else(|| PolicyError::Invalid {
        field: "Condition",
        why: "expected an object".into(),
    })?;
    let mut out = Vec::new();
    for (op_name, keys) in map {
        let (base, if_exists) = match op_name.strip_suffix("IfExists") {
            Some(base) => (base, true),
            None => (op_name.as_str(), false),
        };
        let operator = Operator::parse(base)
            .ok_or_else(|| PolicyError::UnsupportedOperator(op_name.clone()))?;
        let keys = keys.as_object().ok_or_else(|| PolicyError::Invalid {
            field: "Condition",
            why: format!("{op_name} must map keys to values"),
        })?;
        for (key, raw) in keys {
            let list = strings(raw, "Condition")?;
            let values = match operator {
                Operator::IpAddress | Operator::NotIpAddress => Values::Nets(
                    list.iter()
                        .map(|s| parse_net(s))
                        .collect::<Result<_, _>>()?,
                ),
                _ => Values::Strings(list),
            };
            out.push(Condition {
                operator,
                if_exists,
                key: key.to_ascii_lowercase(),
                values,
            });
        }
    }
    Ok(out)
}

/// A CIDR (`10.0.0.0/8`, `2001:db8::/32`) or a bare address (a /32 or /128).
fn parse_net(s: &str) -> Result<IpNet, PolicyError> {
    let s = s.trim();
    s.parse::<IpNet>()
        .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
        .map_err(|_| PolicyError::Invalid {
            field: "Condition",
            why: format!("{s:?} is not an IP address or CIDR block"),
        })
}

impl Policy {
    pub fn parse(text: &str) -> Result<Self, PolicyError> {
        if text.len() > MAX_POLICY_BYTES {
            return Err(PolicyError::TooLarge);
        }
        let value: Value =
            serde_json::from_str(text).map_err(|e| PolicyError::Json(e.to_string()))?;
        Self::from_value(&value)
    }

    pub fn from_value(value: &Value) -> Result<Self, PolicyError> {
        let doc = value.as_object().ok_or_else(|| PolicyError::Invalid {
            field: "policyDocument",
            why: "expected an object".into(),
        })?;
        let raw = get(doc, "Statement").ok_or(PolicyError::NoStatement)?;
        let raw: Vec<&Value> = match raw {
            Value::Array(items) => items.iter().collect(),
            single @ Value::Object(_) => vec![single],
            _ => return Err(PolicyError::NoStatement),
        };
        let mut statements = Vec::with_capacity(raw.len());
        for s in raw {
            let s = s.as_object().ok_or_else(|| PolicyError::Invalid {
                field: "Statement",
                why: "expected an object".into(),
            })?;
            let effect = match get(s, "Effect").and_then(Value::as_str) {
                Some(e) if e.eq_ignore_ascii_case("allow") => Effect::Allow,
                Some(e) if e.eq_ignore_ascii_case("deny") => Effect::Deny,
                other => {
                    return Err(PolicyError::Invalid {
                        field: "Effect",
                        why: format!("expected Allow or Deny, got {other:?}"),
                    });
                }
            };
            if get(s, "NotPrincipal").is_some() {
                return Err(PolicyError::Invalid {
                    field: "NotPrincipal",
                    why: "not supported".into(),
                });
            }
            statements.push(Statement {
                effect,
                principals: principals(get(s, "Principal"))?,
                actions: either(s, "Action", "NotAction")?,
                resources: either(s, "Resource", "NotResource")?,
                conditions: conditions(get(s, "Condition"))?,
            });
        }
        Ok(Self { statements })
    }

    /// A resource policy as API Gateway stores it: `execute-api:/{stage}/…`
    /// resources are shorthand for the API's own ARN (`api_arn` is
    /// `arn:aws:execute-api:{region}:{account}:{apiId}`).
    pub fn expand_api_shorthand(mut self, api_arn: &str) -> Self {
        for s in &mut self.statements {
            let (Match::Any(list) | Match::Not(list)) = &mut s.resources;
            for r in list.iter_mut() {
                if let Some(rest) = r.strip_prefix("execute-api:/") {
                    *r = format!("{api_arn}/{rest}");
                }
            }
        }
        self
    }

    /// Whether the policy has no statements at all.
    pub fn is_empty(&self) -> bool {
        self.statements.is_empty()
    }

    pub fn evaluate(&self, facts: &Facts<'_>) -> Decision {
        let mut allowed = false;
        for s in &self.statements {
            if !s.applies(facts) {
                continue;
            }
            match s.effect {
                Effect::Deny => return Decision::ExplicitDeny,
                Effect::Allow => allowed = true,
            }
        }
        if allowed {
            Decision::Allow
        } else {
            Decision::Silent
        }
    }
}

impl Statement {
    fn applies(&self, facts: &Facts<'_>) -> bool {
        self.principal_matches(facts.caller)
            && self.actions.covers(facts.action, action_matches)
            && self.resources.covers(facts.resource, wildcard_match)
            && self.conditions.iter().all(|c| c.holds(facts))
    }

    fn principal_matches(&self, caller: Option<&Caller>) -> bool {
        match &self.principals {
            Principals::Owner | Principals::Anyone => true,
            Principals::Aws(list) => {
                let Some(caller) = caller else {
                    return false;
                };
                list.iter().any(|p| {
                    let account = caller.account.as_deref().unwrap_or_default();
                    if p.len() == 12 && p.bytes().all(|b| b.is_ascii_digit()) {
                        return !account.is_empty() && p == account;
                    }
                    if let Some(acct) = p
                        .strip_prefix("arn:aws:iam::")
                        .and_then(|r| r.strip_suffix(":root"))
                    {
                        return !account.is_empty() && acct == account;
                    }
                    caller
                        .arn
                        .as_deref()
                        .is_some_and(|arn| wildcard_match(p, arn))
                })
            }
        }
    }
}

impl Condition {
    fn holds(&self, facts: &Facts<'_>) -> bool {
        let Some(actual) = facts.value(&self.key) else {
            // A missing key: `…IfExists` passes; negated operators pass; others fail.
            return self.if_exists || self.operator.negated();
        };
        let hit = match (&self.values, self.operator) {
            (Values::Nets(nets), _) => actual
                .parse::<IpAddr>()
                .is_ok_and(|ip| nets.iter().any(|n| n.contains(&ip))),
            (Values::Strings(list), Operator::StringLike | Operator::StringNotLike) => {
                list.iter().any(|p| wildcard_match(p, &actual))
            }
            (
                Values::Strings(list),
                Operator::StringEqualsIgnoreCase | Operator::StringNotEqualsIgnoreCase,
            ) => list.iter().any(|v| v.eq_ignore_ascii_case(&actual)),
            (Values::Strings(list), _) => list.contains(&actual),
        };
        hit != self.operator.negated()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;
    use serde_json::json;

    const ARN: &str = "arn:aws:execute-api:us-east-1:123456789012:abc/prod/GET/pets";

    fn facts<'a>(ip: &str, caller: Option<&'a Caller>) -> Facts<'a> {
        Facts {
            action: "execute-api:Invoke",
            resource: ARN,
            source_ip: ip.parse().ok(),
            caller,
            ..Default::default()
        }
    }

    fn policy(v: Value) -> Policy {
        Policy::from_value(&v).unwrap()
    }

    #[test]
    fn deny_wins_and_silence_is_not_allow() {
        let p = policy(json!({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "execute-api:Invoke", "Resource": "*"},
            {"Effect": "Deny", "Action": "execute-api:*", "Resource": "arn:aws:execute-api:*:*:abc/*/GET/pets"}
        ]}));
        assert_eq!(p.evaluate(&facts("1.2.3.4", None)), Decision::ExplicitDeny);
        let p = policy(
            json!({"Statement": {"Effect": "Allow", "Action": ["execute-api:Invoke"], "Resource": ["arn:aws:execute-api:*:*:abc/*/POST/*"]}}),
        );
        assert_eq!(p.evaluate(&facts("1.2.3.4", None)), Decision::Silent);
        let p = policy(
            json!({"Statement": {"Effect": "Allow", "NotResource": "arn:aws:execute-api:*:*:abc/*/POST/*", "Action": "*"}}),
        );
        assert_eq!(p.evaluate(&facts("1.2.3.4", None)), Decision::Allow);
        let p = policy(
            json!({"statement": [{"effect": "Allow", "action": "execute-api:Invoke", "resource": ARN}]}),
        );
        assert_eq!(p.evaluate(&facts("1.2.3.4", None)), Decision::Allow);
        let p = policy(
            json!({"Statement": [{"Effect": "Allow", "Action": "execute-api:InvalidateCache", "Resource": "*"}]}),
        );
        assert_eq!(p.evaluate(&facts("1.2.3.4", None)), Decision::Silent);
    }

    #[test]
    fn api_shorthand_expands() {
        let p = policy(
            json!({"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "execute-api:Invoke",
            "Resource": ["execute-api:/prod/GET/*"]}]}),
        );
        assert_eq!(p.evaluate(&facts("1.1.1.1", None)), Decision::Silent);
        let p = p.expand_api_shorthand("arn:aws:execute-api:us-east-1:123456789012:abc");
        assert_eq!(p.evaluate(&facts("1.1.1.1", None)), Decision::Allow);
    }

    #[test]
    fn ip_conditions_v4_and_v6() {
        let p = policy(json!({"Statement": [
            {"Effect": "Allow", "Principal": "*", "Action": "execute-api:Invoke", "Resource": "*"},
            {"Effect": "Deny", "Principal": "*", "Action": "execute-api:Invoke", "Resource": "*",
             "Condition": {"NotIpAddress": {"aws:SourceIp": ["10.0.0.0/8", "2001:db8::/32", "192.0.2.7"]}}}
        ]}));
        assert_eq!(p.evaluate(&facts("10.1.2.3", None)), Decision::Allow);
        assert_eq!(p.evaluate(&facts("2001:db8::1", None)), Decision::Allow);
        assert_eq!(p.evaluate(&facts("192.0.2.7", None)), Decision::Allow);
        assert_eq!(
            p.evaluate(&facts("192.0.2.8", None)),
            Decision::ExplicitDeny
        );
        assert_eq!(
            p.evaluate(&facts("2001:db9::1", None)),
            Decision::ExplicitDeny
        );
        // Missing IP: NotIpAddress holds (negated operator), so the deny applies.
        assert_eq!(p.evaluate(&facts("", None)), Decision::ExplicitDeny);
        assert!(matches!(
            Policy::from_value(
                &json!({"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*",
                "Condition": {"IpAddress": {"aws:SourceIp": "10.0.0.0/33"}}}]})
            ),
            Err(PolicyError::Invalid { .. })
        ));
    }

    #[test]
    fn vpce_and_principal_conditions() {
        let p = policy(json!({"Statement": [
            {"Effect": "Allow", "Principal": {"AWS": ["111122223333", "arn:aws:iam::444455556666:user/ops-*"]},
             "Action": "execute-api:Invoke", "Resource": "*",
             "Condition": {"StringEqualsIfExists": {"aws:SourceVpce": "vpce-1"}}}
        ]}));
        let a = Caller {
            account: Some("111122223333".into()),
            arn: Some("arn:aws:iam::111122223333:user/x".into()),
            user_id: None,
        };
        let b = Caller {
            account: Some("444455556666".into()),
            arn: Some("arn:aws:iam::444455556666:user/ops-jo".into()),
            user_id: None,
        };
        let c = Caller {
            account: Some("444455556666".into()),
            arn: Some("arn:aws:iam::444455556666:user/dev".into()),
            user_id: None,
        };
        assert_eq!(p.evaluate(&facts("1.1.1.1", Some(&a))), Decision::Allow);
        assert_eq!(p.evaluate(&facts("1.1.1.1", Some(&b))), Decision::Allow);
        assert_eq!(p.evaluate(&facts("1.1.1.1", Some(&c))), Decision::Silent);
        assert_eq!(
            p.evaluate(&facts("1.1.1.1", None)),
            Decision::Silent,
            "anonymous"
        );
        let mut f = facts("1.1.1.1", Some(&a));
        f.source_vpce = Some("vpce-2");
        assert_eq!(p.evaluate(&f), Decision::Silent);
        f.source_vpce = Some("vpce-1");
        assert_eq!(p.evaluate(&f), Decision::Allow);
    }

    #[test]
    fn strict_about_what_could_widen_access() {
        for bad in [
            json!({}),
            json!({"Statement": []}),
            json!({"Statement": [{"Effect": "Maybe", "Action": "*", "Resource": "*"}]}),
            json!({"Statement": [{"Effect": "Allow", "Resource": "*"}]}),
            json!({"Statement": [{"Effect": "Allow", "Action": "*", "NotAction": "*", "Resource": "*"}]}),
            json!({"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*", "Condition": {"DateGreaterThan": {"aws:CurrentTime": "x"}}}]}),
            json!({"Statement": [{"Effect": "Deny", "NotPrincipal": {"AWS": "1"}, "Action": "*", "Resource": "*"}]}),
            json!({"Statement": [{"Effect": "Allow", "Action": [], "Resource": "*"}]}),
            json!("Allow"),
        ] {
            let parsed = Policy::from_value(&bad);
            assert!(
                parsed.is_err() || parsed.as_ref().is_ok_and(Policy::is_empty),
                "{bad}"
            );
        }
    }

    /// Random documents built from hostile pieces: parsing never panics,
    /// and whatever parses never allows what a Deny-everything statement
    /// added to it denies.
    #[test]
    fn hostile_documents() {
        let mut rng = rand::thread_rng();
        let pieces = [
            json!("*"),
            json!("?"),
            json!(""),
            json!(null),
            json!(1e308),
            json!(-1),
            json!([]),
            json!({}),
            json!(["*", "execute-api:Invoke"]),
            json!("\u{0}\u{202e}"),
            json!("arn:aws:execute-api:*"),
            json!({"AWS": "*"}),
            json!({"AWS": []}),
            json!({"IpAddress": {"aws:SourceIp": "0.0.0.0/0"}}),
            json!({"NotIpAddress": {"aws:SourceIp": ["::/0"]}}),
            json!({"StringLike": {"aws:SourceVpc": "*"}}),
            json!("Allow"),
            json!("Deny"),
            json!("allow"),
        ];
        let fields = [
            "Effect",
            "Action",
            "NotAction",
            "Resource",
            "NotResource",
            "Principal",
            "Condition",
            "Sid",
        ];
        for _ in 0..5_000 {
            let mut statements = Vec::new();
            for _ in 0..rng.gen_range(0..4) {
                let mut s = serde_json::Map::new();
                for _ in 0..rng.gen_range(0..7) {
                    let f = fields[rng.gen_range(0..fields.len())];
                    s.insert(f.into(), pieces[rng.gen_range(0..pieces.len())].clone());
                }
                statements.push(Value::Object(s));
            }
            let doc = json!({"Statement": statements.clone()});
            let text = doc.to_string();
            // Truncated text too: never a panic.
            let cut = rng.gen_range(0..=text.len());
            let _ = Policy::parse(text.get(..cut).unwrap_or(""));
            let ip = if rng.gen_bool(0.5) { "10.0.0.1" } else { "::1" };
            if let Ok(p) = Policy::from_value(&doc) {
                let _ = p.evaluate(&facts(ip, None));
                let mut with_deny = statements;
                with_deny.push(json!({"Effect": "Deny", "Action": "*", "Resource": "*"}));
                let denied = Policy::from_value(&json!({"Statement": with_deny})).unwrap();
                assert_eq!(
                    denied.evaluate(&facts(ip, None)),
                    Decision::ExplicitDeny,
                    "{text}"
                );
            }
        }
    }
}
