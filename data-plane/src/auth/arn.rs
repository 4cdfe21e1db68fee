//! Method ARNs (`arn:aws:execute-api:{region}:{account}:{apiId}/{stage}/{VERB}/{path}`)
//! and IAM's string matching with `*` (any run, `/` included) and `?` (one
//! character). The matcher is linear in practice and never recursive, so a
//! hostile pattern (`*a*a*a*…`) cannot blow the stack or run away.

/// The method ARN of a request: the path is the request path after the
/// stage, without its leading `/` (root: `…/prod/GET/`).
pub fn method_arn(
    region: &str,
    account: &str,
    api_id: &str,
    stage: &str,
    verb: &str,
    path_after_stage: &str,
) -> String {
    let path = path_after_stage
        .strip_prefix('/')
        .unwrap_or(path_after_stage);
    format!("arn:aws:execute-api:{region}:{account}:{api_id}/{stage}/{verb}/{path}")
}

/// IAM string matching: `*` matches any sequence (empty too), `?` exactly
/// one character; everything else literally, case-sensitively. Greedy with
/// a single backtrack point: O(|pattern|·|value|) at worst.
pub fn wildcard_match(pattern: &str, value: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let v: Vec<char> = value.chars().collect();
    let (mut pi, mut vi) = (0usize, 0usize);
    // Position after the last `*` seen, and the value index it resumed at.
    let mut star: Option<(usize, usize)> = None;
    while vi < v.len() {
        if pi < p.len() && (p[pi] == '?' || (p[pi] != '*' && p[pi] == v[vi])) {
            pi += 1;
            vi += 1;
        } else if pi < p.len() && p[pi] == '*' {
            pi += 1;
            star = Some((pi, vi));
        } else if let Some((after_star, resumed)) = star {
            // Let the last `*` swallow one more character and retry.
            pi = after_star;
            vi = resumed + 1;
            star = Some((after_star, resumed + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// Whether an action pattern (`execute-api:Invoke`, `execute-api:*`, `*`)
/// covers `action`; the service prefix is case-insensitive, as IAM's is.
pub fn action_matches(pattern: &str, action: &str) -> bool {
    wildcard_match(&pattern.to_ascii_lowercase(), &action.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;

    #[test]
    fn builds_method_arns() {
        assert_eq!(
            method_arn("us-east-1", "123456789012", "abc", "prod", "GET", "/"),
            "arn:aws:execute-api:us-east-1:123456789012:abc/prod/GET/"
        );
        assert_eq!(
            method_arn("us-east-1", "1", "abc", "prod", "POST", "/pets/a1b2"),
            "arn:aws:execute-api:us-east-1:1:abc/prod/POST/pets/a1b2"
        );
    }

    #[test]
    fn matches_like_iam() {
        let arn = "arn:aws:execute-api:us-east-1:123456789012:abc/prod/GET/pets/7";
        assert!(wildcard_match("*", arn));
        assert!(wildcard_match(arn, arn));
        assert!(wildcard_match(
            "arn:aws:execute-api:us-east-1:123456789012:abc/*",
            arn
        ));
        assert!(wildcard_match(
            "arn:aws:execute-api:*:*:abc/*/GET/pets/*",
            arn
        ));
        assert!(wildcard_match(
            "arn:aws:execute-api:us-east-1:123456789012:abc/prod/GET/pets/?",
            arn
        ));
        assert!(!wildcard_match(
            "arn:aws:execute-api:us-east-1:123456789012:abc/prod/GET/pets/??",
            arn
        ));
        assert!(!wildcard_match(
            "arn:aws:execute-api:us-east-1:123456789012:abc/prod/POST/*",
            arn
        ));
        assert!(!wildcard_match(
            "arn:aws:execute-api:us-east-1:123456789012:ab/*",
            arn
        ));
        assert!(!wildcard_match("", arn));
        assert!(wildcard_match("", ""));
        assert!(wildcard_match("**", ""));
        assert!(!wildcard_match("?", ""));
        assert!(wildcard_match("a*b*c", "aXXbYYc"));
        assert!(!wildcard_match("a*b*c", "aXXbYY"));
        assert!(wildcard_match("*/GET/*", "x/GET/"));
        assert!(wildcard_match("é?", "éü"));
        assert!(!wildcard_match("ABC", "abc"), "case-sensitive");
        assert!(action_matches("execute-api:*", "execute-api:Invoke"));
        assert!(action_matches("Execute-API:invoke", "execute-api:Invoke"));
        assert!(!action_matches(
            "execute-api:InvalidateCache",
            "execute-api:Invoke"
        ));
    }

    /// A reference matcher, exponential but obviously right, for small inputs.
    fn reference(p: &[char], v: &[char]) -> bool {
        match (p.first(), v.first()) {
            (None, None) => true,
            (None, Some(_)) => false,
            (Some('*'), _) => reference(&p[1..], v) || (!v.is_empty() && reference(p, &v[1..])),
            (Some(_), None) => false,
            (Some('?'), Some(_)) => reference(&p[1..], &v[1..]),
            (Some(a), Some(b)) => a == b && reference(&p[1..], &v[1..]),
        }
    }

    #[test]
    fn agrees_with_a_reference_on_random_input() {
        let mut rng = rand::thread_rng();
        let alphabet = ['a', 'b', '/', '*', '?', 'é'];
        for _ in 0..20_000 {
            let mut word = |n: usize, wild: bool| -> Vec<char> {
                (0..rng.gen_range(0..n))
                    .map(|_| {
                        let c = alphabet[rng.gen_range(0..alphabet.len())];
                        if !wild && (c == '*' || c == '?') {
                            'a'
                        } else {
                            c
                        }
                    })
                    .collect()
            };
            let p = word(8, true);
            let v = word(10, false);
            let (ps, vs): (String, String) = (p.iter().collect(), v.iter().collect());
            assert_eq!(
                wildcard_match(&ps, &vs),
                reference(&p, &v),
                "{ps:?} vs {vs:?}"
            );
        }
    }

    #[test]
    fn hostile_patterns_stay_fast() {
        let pattern = "*a".repeat(300) + "b";
        let value = "a".repeat(5_000);
        let started = std::time::Instant::now();
        assert!(!wildcard_match(&pattern, &value));
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
        // Control characters, NULs and huge inputs are just characters.
        assert!(wildcard_match("*\0*", "x\0y"));
        assert!(!wildcard_match("\u{202e}", "x"));
    }
}
