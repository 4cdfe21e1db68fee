//! Malformed signature information gives the right error, never a panic.

use apigw_sigv4::{AuthForm, SigV4Error, parse};
use chrono::{TimeZone, Utc};
use http::request::Parts;

const SIG: &str = "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31";
const CRED: &str = "AKIDEXAMPLE/20150830/us-east-1/service/aws4_request";

fn head(authorization: Option<&[u8]>, extra: &[(&str, &str)], uri: &str) -> Parts {
    let mut builder = http::Request::builder()
        .uri(uri)
        .header("host", "example.amazonaws.com")
        .header("x-amz-date", "20150830T123600Z");
    if let Some(value) = authorization {
        builder = builder.header(
            "authorization",
            http::HeaderValue::from_bytes(value).unwrap(),
        );
    }
    for (name, value) in extra {
        builder = builder.header(*name, *value);
    }
    builder.body(()).unwrap().into_parts().0
}

fn parse_auth(authorization: &str) -> Result<apigw_sigv4::SignedRequest, SigV4Error> {
    parse(&head(Some(authorization.as_bytes()), &[], "/"))
}

fn valid() -> String {
    format!("AWS4-HMAC-SHA256 Credential={CRED}, SignedHeaders=host;x-amz-date, Signature={SIG}")
}

fn incomplete(result: Result<apigw_sigv4::SignedRequest, SigV4Error>) -> String {
    match result {
        Err(SigV4Error::Incomplete(message)) => message,
        other => panic!("expected Incomplete, got {other:?}"),
    }
}

#[test]
fn a_valid_header_parses() {
    let signed = parse_auth(&valid()).unwrap();
    assert_eq!(signed.access_key_id, "AKIDEXAMPLE");
    assert_eq!(signed.date, "20150830");
    assert_eq!(signed.region, "us-east-1");
    assert_eq!(signed.service, "service");
    assert_eq!(signed.signed_headers, ["host", "x-amz-date"]);
    assert_eq!(signed.signature, SIG);
    assert_eq!(
        signed.timestamp,
        Utc.with_ymd_and_hms(2015, 8, 30, 12, 36, 0).unwrap()
    );
    assert_eq!(signed.form, AuthForm::Header);
    assert_eq!(signed.expires, None);
    // Without spaces after the commas, as some clients send it.
    let compact = valid().replace(", ", ",");
    assert_eq!(parse_auth(&compact).unwrap(), signed);
}

#[test]
fn no_authentication() {
    assert_eq!(
        parse(&head(None, &[], "/")),
        Err(SigV4Error::MissingAuthentication)
    );
    assert_eq!(
        parse(&head(None, &[], "/?X-Amz-Signature=abc&Action=x")),
        Err(SigV4Error::MissingAuthentication)
    );
    // Other x-amz headers do not matter when there is no signature at all.
    assert_eq!(
        parse(&head(None, &[("x-amz-content-sha256", "bogus")], "/")),
        Err(SigV4Error::MissingAuthentication)
    );
    assert_eq!(
        SigV4Error::MissingAuthentication.to_string(),
        "Missing Authentication Token"
    );
}

#[test]
fn missing_parameters() {
    let message = incomplete(parse_auth(&format!(
        "AWS4-HMAC-SHA256 SignedHeaders=host;x-amz-date, Signature={SIG}"
    )));
    assert!(message.starts_with("Authorization header requires 'Credential' parameter. Authorization=AWS4-HMAC-SHA256 SignedHeaders"), "{message}");

    let message = incomplete(parse_auth("AWS4-HMAC-SHA256"));
    assert!(message.contains("requires 'Credential'"), "{message}");
    assert!(message.contains("requires 'Signature'"), "{message}");
    assert!(message.contains("requires 'SignedHeaders'"), "{message}");

    let message = incomplete(parse_auth(&format!(
        "AWS4-HMAC-SHA256 Credential={CRED}, SignedHeaders=host, Signature={SIG}, Signature={SIG}"
    )));
    assert!(message.contains("more than one 'Signature'"), "{message}");

    let message = incomplete(parse_auth(&format!(
        "AWS4-HMAC-SHA256 Credential={CRED}, SignedHeaders, Signature={SIG}"
    )));
    assert!(message.contains("missing equal-sign"), "{message}");

    let message = incomplete(parse_auth(&format!(
        "AWS4-HMAC-SHA256 Credential={CRED}, SignedHeaders=host, Signature={SIG}, Extra=1"
    )));
    assert!(message.contains("'Extra'"), "{message}");

    incomplete(parse_auth(""));
    incomplete(parse_auth("   "));
}

#[test]
fn bad_credential_scope() {
    for (credential, needle) in [
        (
            "AKIDEXAMPLE/20150830/us-east-1/service",
            "must have the form",
        ),
        (
            "AKIDEXAMPLE/20150830/us-east-1/service/aws4_request/x",
            "must have the form",
        ),
        ("AKIDEXAMPLE", "must have the form"),
        ("", "must have the form"),
        (
            "AKIDEXAMPLE/20150830/us-east-1/service/aws4_requesx",
            "valid terminator: 'aws4_request', not 'aws4_requesx'",
        ),
        (
            "AKIDEXAMPLE/2015083/us-east-1/service/aws4_request",
            "valid date",
        ),
        (
            "AKIDEXAMPLE/2015-8-30/us-east-1/service/aws4_request",
            "valid date",
        ),
        ("AKIDEXAMPLE/20150830//service/aws4_request", "valid region"),
        (
            "AKIDEXAMPLE/20150830/us-east-1//aws4_request",
            "valid service",
        ),
        ("/20150830/us-east-1/service/aws4_request", "access key id"),
    ] {
        let header = format!(
            "AWS4-HMAC-SHA256 Credential={credential}, SignedHeaders=host;x-amz-date, Signature={SIG}"
        );
        let message = incomplete(parse_auth(&header));
        assert!(message.contains(needle), "{credential}: {message}");
    }
}

#[test]
fn unknown_algorithms() {
    for (header, algorithm) in [
        (
            "AWS4-HMAC-SHA512 Credential=x, SignedHeaders=host, Signature=y",
            "AWS4-HMAC-SHA512",
        ),
        (
            "AWS4-ECDSA-P256-SHA256 Credential=x",
            "AWS4-ECDSA-P256-SHA256",
        ),
        ("AWS AKIDEXAMPLE:frJIUN8DYpKDtOLCwo//yllqDzg=", "AWS"),
        ("Bearer eyJhbGciOiJIUzI1NiJ9", "Bearer"),
        ("aws4-hmac-sha256 Credential=x", "aws4-hmac-sha256"),
        (
            "AWS4-HMAC-SHA256Credential=x",
            "AWS4-HMAC-SHA256Credential=x",
        ),
    ] {
        assert_eq!(
            parse_auth(header),
            Err(SigV4Error::UnsupportedAlgorithm(algorithm.to_owned())),
            "{header}"
        );
    }
    let presigned = head(
        None,
        &[],
        "/?X-Amz-Algorithm=AWS4-ECDSA-P256-SHA256&X-Amz-Credential=x&X-Amz-Date=20150830T123600Z\
         &X-Amz-Expires=60&X-Amz-SignedHeaders=host&X-Amz-Signature=y",
    );
    assert_eq!(
        parse(&presigned),
        Err(SigV4Error::UnsupportedAlgorithm(
            "AWS4-ECDSA-P256-SHA256".to_owned()
        ))
    );
}

#[test]
fn bad_signatures_and_signed_headers() {
    for signature in [
        "z".repeat(64),
        SIG.to_uppercase(),
        SIG[..63].to_owned(),
        format!("{SIG}0"),
        String::new(),
        "é".repeat(32),
    ] {
        let header = format!(
            "AWS4-HMAC-SHA256 Credential={CRED}, SignedHeaders=host, Signature={signature}"
        );
        let message = incomplete(parse_auth(&header));
        assert!(message.contains("64 lowercase hexadecimal"), "{message}");
    }
    for signed_headers in ["", "host;;x-amz-date", "host;x amz", "host;x:y", "host;é"] {
        let header = format!(
            "AWS4-HMAC-SHA256 Credential={CRED}, SignedHeaders={signed_headers}, Signature={SIG}"
        );
        let message = incomplete(parse_auth(&header));
        assert!(
            message.contains("invalid header name"),
            "{signed_headers}: {message}"
        );
    }
    // Names are lowercased.
    let header = format!(
        "AWS4-HMAC-SHA256 Credential={CRED}, SignedHeaders=Host;X-Amz-Date, Signature={SIG}"
    );
    assert_eq!(
        parse_auth(&header).unwrap().signed_headers,
        ["host", "x-amz-date"]
    );
}

#[test]
fn huge_headers() {
    let huge = format!(
        "AWS4-HMAC-SHA256 Credential={}, SignedHeaders=host, Signature={SIG}",
        "A".repeat(1 << 20)
    );
    let message = incomplete(parse_auth(&huge));
    assert!(message.contains("too large"), "{message}");

    // Under the limit, the echo of client data in the message stays short.
    let big = format!(
        "AWS4-HMAC-SHA256 Credential={}, SignedHeaders=host, Signature={SIG}",
        "A/".repeat(5000)
    );
    let message = incomplete(parse_auth(&big));
    assert!(message.len() < 1024, "{}", message.len());

    let many = format!(
        "AWS4-HMAC-SHA256 Credential={CRED}, SignedHeaders={}, Signature={SIG}",
        vec!["x-a"; 3000].join(";")
    );
    assert_eq!(parse_auth(&many).unwrap().signed_headers.len(), 3000);
}

#[test]
fn odd_header_bytes_and_repeats() {
    let mut bytes = valid().into_bytes();
    bytes.extend_from_slice(b"\xff\xfe");
    assert!(matches!(
        parse(&head(Some(&bytes), &[], "/")),
        Err(SigV4Error::Incomplete(_))
    ));

    let twice = head(
        Some(valid().as_bytes()),
        &[("authorization", &valid())],
        "/",
    );
    assert!(incomplete(parse(&twice)).contains("Only one Authorization header"));

    let two_dates = head(
        Some(valid().as_bytes()),
        &[("x-amz-date", "20150830T123600Z")],
        "/",
    );
    assert!(matches!(parse(&two_dates), Err(SigV4Error::Incomplete(_))));

    let both = head(
        Some(valid().as_bytes()),
        &[],
        &format!("/?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature={SIG}"),
    );
    assert!(incomplete(parse(&both)).contains("Only one auth mechanism"));
}

#[test]
fn dates() {
    let no_date = http::Request::builder()
        .uri("/")
        .header("host", "example.amazonaws.com")
        .header("authorization", valid())
        .body(())
        .unwrap()
        .into_parts()
        .0;
    assert!(incomplete(parse(&no_date)).starts_with(
        "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header."
    ));

    let mut with_date = no_date.clone();
    with_date
        .headers
        .insert("date", "Sun, 30 Aug 2015 12:36:00 GMT".parse().unwrap());
    assert_eq!(
        parse(&with_date).unwrap().timestamp,
        Utc.with_ymd_and_hms(2015, 8, 30, 12, 36, 0).unwrap()
    );

    for bad in [
        "2015-08-30T12:36:00Z",
        "20150830T123600",
        "20150830T123600z",
        "20151330T123600Z",
        "20150230T123600Z",
        "20150830T246000Z",
        "+0150830T123600Z",
        "20150830 123600Z",
        "",
    ] {
        let mut parts = no_date.clone();
        parts.headers.insert("x-amz-date", bad.parse().unwrap());
        match parse(&parts) {
            Err(SigV4Error::InvalidDate(message)) => {
                assert!(
                    message.starts_with("Date must be in ISO-8601 'basic format'."),
                    "{message}"
                )
            }
            other => panic!("{bad}: {other:?}"),
        }
    }
}

#[test]
fn presigned_query_problems() {
    let base = format!(
        "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDEXAMPLE%2F20150830%2Fus-east-1%2Fservice%2Faws4_request\
         &X-Amz-Date=20150830T123600Z&X-Amz-SignedHeaders=host&X-Amz-Signature={SIG}"
    );
    let query = |rest: &str| head(None, &[], &format!("/?{base}{rest}"));
    let signed = parse(&query("&X-Amz-Expires=60")).unwrap();
    assert_eq!(signed.form, AuthForm::Query);
    assert_eq!(signed.expires, Some(chrono::Duration::seconds(60)));

    let message = incomplete(parse(&query("")));
    assert!(
        message.starts_with("AWS query-string parameters must include"),
        "{message}"
    );
    for (rest, needle) in [
        ("&X-Amz-Expires=604801", "less than a week"),
        ("&X-Amz-Expires=-1", "non-negative integer"),
        ("&X-Amz-Expires=1e3", "non-negative integer"),
        (
            "&X-Amz-Expires=99999999999999999999",
            "non-negative integer",
        ),
        ("&X-Amz-Expires=60&X-Amz-Signature=00", "only be given once"),
        ("&X-Amz-Expires=60&X-Amz-Credential=%FF", "valid UTF-8"),
    ] {
        let message = incomplete(parse(&query(rest)));
        assert!(message.contains(needle), "{rest}: {message}");
    }
    let bad_date = head(
        None,
        &[],
        &format!(
            "/?{}&X-Amz-Expires=60",
            base.replace("20150830T123600Z", "2015")
        ),
    );
    assert!(matches!(parse(&bad_date), Err(SigV4Error::InvalidDate(_))));
}

#[test]
fn content_sha256_values() {
    for (value, ok) in [
        ("UNSIGNED-PAYLOAD", true),
        ("STREAMING-AWS4-HMAC-SHA256-PAYLOAD", true),
        (
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            true,
        ),
        ("STREAMING-UNSIGNED-PAYLOAD-TRAILER", false),
        ("unsigned-payload", false),
        ("abc", false),
        ("", false),
    ] {
        let parts = head(
            Some(valid().as_bytes()),
            &[("x-amz-content-sha256", value)],
            "/",
        );
        let result = parse(&parts);
        assert_eq!(result.is_ok(), ok, "{value}: {result:?}");
        if !ok {
            assert_eq!(result, Err(SigV4Error::PayloadHashMismatch), "{value}");
        }
    }
}

#[test]
fn error_codes() {
    assert_eq!(
        SigV4Error::MissingAuthentication.error_code(),
        "MissingAuthenticationTokenException"
    );
    assert_eq!(
        SigV4Error::Incomplete(String::new()).error_code(),
        "IncompleteSignatureException"
    );
    assert_eq!(
        SigV4Error::PayloadHashMismatch.error_code(),
        "InvalidSignatureException"
    );
}

/// splitmix64, for reproducible random inputs.
fn next(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[test]
fn random_headers_and_queries_never_panic() {
    let tokens = [
        "AWS4-HMAC-SHA256",
        " ",
        ",",
        ", ",
        "=",
        ";",
        "/",
        "Credential",
        "SignedHeaders",
        "Signature",
        CRED,
        SIG,
        "host",
        "x-amz-date",
        "aws4_request",
        "20150830",
        "é",
        "%",
        "%FF",
        "&",
        "X-Amz-Algorithm",
        "X-Amz-Expires",
        "X-Amz-Date",
        "+",
        "?",
    ];
    let mut state = 99;
    for _ in 0..20_000 {
        let mut text = String::new();
        for _ in 0..(next(&mut state) % 16) {
            text.push_str(tokens[(next(&mut state) % tokens.len() as u64) as usize]);
        }
        if let Ok(value) = http::HeaderValue::from_str(&text) {
            let mut parts = head(None, &[], "/");
            parts.headers.insert("authorization", value);
            let _ = parse(&parts);
        }
        let query: String = text
            .chars()
            .filter(|c| c.is_ascii_graphic() && *c != '#')
            .collect();
        if let Ok(uri) = format!("/?{query}").parse::<http::Uri>() {
            let mut parts = head(None, &[], "/");
            parts.uri = uri;
            let _ = parse(&parts);
        }
    }
}
