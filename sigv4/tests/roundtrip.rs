//! Requests signed by the real AWS signer (`aws_sigv4::http_request::sign`, the
//! one inside the AWS Rust SDK) must verify; changed ones must not.

use std::time::SystemTime;

use apigw_sigv4::{
    AuthForm, PayloadKind, Settings, SigV4Error, UriEncoding, parse, verify, verify_with,
};
use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest, SignatureLocation,
    SigningSettings, UriPathNormalizationMode, sign,
};
use chrono::{DateTime, Duration, TimeZone, Utc};
use http::request::Parts;

const ACCESS_KEY: &str = "AKIDEXAMPLE";
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

fn signing_time() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 3, 9, 23, 59, 30).unwrap()
}

fn skew() -> Duration {
    Duration::minutes(15)
}

/// What a test asks the AWS signer to sign.
struct Spec<'a> {
    method: &'a str,
    /// Absolute URL as the client would send it (already percent-encoded).
    url: &'a str,
    headers: Vec<(&'a str, &'a str)>,
    signable: SignableBody<'a>,
    settings: SigningSettings,
    service: &'a str,
    credentials: Credentials,
}

impl<'a> Spec<'a> {
    fn new(method: &'a str, url: &'a str, body: &'a [u8]) -> Self {
        Spec {
            method,
            url,
            headers: Vec::new(),
            signable: SignableBody::Bytes(body),
            settings: SigningSettings::default(),
            service: "apigateway",
            credentials: Credentials::new(ACCESS_KEY, SECRET, None, None, "test"),
        }
    }

    /// Signs with aws-sigv4 and returns the request head as an HTTP/1.1 server
    /// sees it: origin-form URI plus a `Host` header.
    fn sign(&self) -> Parts {
        let mut parts = self.sign_absolute();
        let authority = parts.uri.authority().expect("absolute URL").clone();
        parts.headers.insert(
            http::header::HOST,
            http::HeaderValue::from_str(authority.as_str()).unwrap(),
        );
        parts.uri = parts
            .uri
            .path_and_query()
            .expect("path")
            .as_str()
            .parse()
            .unwrap();
        parts
    }

    /// Signs and returns the head as an HTTP/2 server sees it: the authority
    /// is in the URI and there is no `Host` header.
    fn sign_absolute(&self) -> Parts {
        let identity = self.credentials.clone().into();
        let params = aws_sigv4::sign::v4::SigningParams::builder()
            .identity(&identity)
            .region("us-east-1")
            .name(self.service)
            .time(SystemTime::from(signing_time()))
            .settings(self.settings.clone())
            .build()
            .unwrap()
            .into();
        let signable = SignableRequest::new(
            self.method,
            self.url,
            self.headers.iter().copied(),
            self.signable.clone(),
        )
        .unwrap();
        let (instructions, _signature) = sign(signable, &params).unwrap().into_parts();

        let mut builder = http::Request::builder().method(self.method).uri(self.url);
        for (name, value) in &self.headers {
            builder = builder.header(*name, *value);
        }
        let mut request = builder.body(()).unwrap();
        instructions.apply_to_request_http1x(&mut request);
        request.into_parts().0
    }
}

fn check(parts: &Parts, body: &[u8]) -> Result<bytes::Bytes, SigV4Error> {
    check_at(parts, body, SECRET, signing_time())
}

fn check_at(
    parts: &Parts,
    body: &[u8],
    secret: &str,
    now: DateTime<Utc>,
) -> Result<bytes::Bytes, SigV4Error> {
    let signed = parse(parts)?;
    verify(&signed, parts, body, secret, now, skew())
}

#[test]
fn post_with_json_body() {
    let body = br#"{"name":"pets","description":"a   b"}"#;
    let mut spec = Spec::new(
        "POST",
        "https://apigateway.us-east-1.amazonaws.com/restapis",
        body,
    );
    spec.headers = vec![
        ("content-type", "application/json"),
        ("x-amz-meta-note", "  a   b  "),
    ];
    let parts = spec.sign();
    let signed = parse(&parts).unwrap();
    assert_eq!(signed.access_key_id, ACCESS_KEY);
    assert_eq!(signed.payload, PayloadKind::Computed);
    assert!(signed.signed_headers.contains(&"content-type".to_owned()));
    assert_eq!(&check(&parts, body).unwrap()[..], body);

    // The body changed after signing.
    let mut changed = body.to_vec();
    changed[3] ^= 1;
    assert!(matches!(
        check(&parts, &changed),
        Err(SigV4Error::SignatureMismatch { .. })
    ));
    // A signed header changed after signing.
    let mut tampered = parts.clone();
    tampered
        .headers
        .insert("content-type", "text/plain".parse().unwrap());
    assert!(matches!(
        check(&tampered, body),
        Err(SigV4Error::SignatureMismatch { .. })
    ));
    // The method changed after signing.
    let mut tampered = parts.clone();
    tampered.method = http::Method::PUT;
    assert!(matches!(
        check(&tampered, body),
        Err(SigV4Error::SignatureMismatch { .. })
    ));
}

#[test]
fn wrong_secret_fails() {
    let parts = Spec::new(
        "GET",
        "https://apigateway.us-east-1.amazonaws.com/restapis",
        b"",
    )
    .sign();
    check(&parts, b"").unwrap();
    let wrong = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEZ";
    match check_at(&parts, b"", wrong, signing_time()) {
        Err(SigV4Error::SignatureMismatch {
            canonical_request,
            string_to_sign,
        }) => {
            assert!(
                canonical_request
                    .starts_with("GET\n/restapis\n\nhost:apigateway.us-east-1.amazonaws.com\n")
            );
            assert!(string_to_sign.starts_with(
                "AWS4-HMAC-SHA256\n20240309T235930Z\n20240309/us-east-1/apigateway/aws4_request\n"
            ));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn stale_and_future_timestamps_fail() {
    let parts = Spec::new(
        "GET",
        "https://apigateway.us-east-1.amazonaws.com/restapis",
        b"",
    )
    .sign();
    let late = signing_time() + Duration::minutes(20);
    match check_at(&parts, b"", SECRET, late) {
        Err(err @ SigV4Error::Expired { .. }) => assert_eq!(
            err.to_string(),
            "Signature expired: 20240309T235930Z is now earlier than 20240310T000430Z \
             (20240310T001930Z - 15 min.)"
        ),
        other => panic!("{other:?}"),
    }
    let early = signing_time() - Duration::minutes(20);
    match check_at(&parts, b"", SECRET, early) {
        Err(err @ SigV4Error::Expired { .. }) => assert_eq!(
            err.to_string(),
            "Signature not yet current: 20240309T235930Z is still later than 20240309T235430Z \
             (20240309T233930Z + 15 min.)"
        ),
        other => panic!("{other:?}"),
    }
    // Inside the window on either side.
    check_at(&parts, b"", SECRET, signing_time() + Duration::minutes(14)).unwrap();
    check_at(&parts, b"", SECRET, signing_time() - Duration::minutes(14)).unwrap();
}

#[test]
fn encoded_colons_and_slashes_in_the_path_are_double_encoded() {
    let url = "https://apigateway.us-east-1.amazonaws.com/tags/arn%3Aaws%3Aapigateway%3Aus-east-1%3A%3A%2Frestapis%2Fabc";
    let body = br#"{"tags":{"team":"blue"}}"#;
    let parts = Spec::new("PUT", url, body).sign();
    assert_eq!(
        parts.uri.path(),
        "/tags/arn%3Aaws%3Aapigateway%3Aus-east-1%3A%3A%2Frestapis%2Fabc"
    );
    check(&parts, body).unwrap();

    let signed = parse(&parts).unwrap();
    // What the error would show proves the double encoding.
    let single = Settings {
        uri_encoding: UriEncoding::Single,
        ..Settings::default()
    };
    match verify_with(
        &signed,
        &parts,
        body,
        SECRET,
        signing_time(),
        skew(),
        &single,
    ) {
        Err(SigV4Error::SignatureMismatch {
            canonical_request, ..
        }) => assert!(
            canonical_request.contains("/tags/arn%3Aaws%3Aapigateway"),
            "{canonical_request}"
        ),
        other => panic!("{other:?}"),
    }
    let creq = apigw_sigv4::canonical_request(
        &parts,
        &signed.signed_headers,
        &apigw_sigv4::sha256_hex(body),
        AuthForm::Header,
        &Settings::default(),
    )
    .unwrap();
    assert!(
        creq.starts_with(
            "PUT\n/tags/arn%253Aaws%253Aapigateway%253Aus-east-1%253A%253A%252Frestapis%252Fabc\n"
        ),
        "{creq}"
    );
}

#[test]
fn paths_needing_normalisation_and_encoding() {
    for url in [
        "https://execute-api.us-east-1.amazonaws.com/prod/a%20b/%E2%82%AC/c~d",
        "https://execute-api.us-east-1.amazonaws.com/prod//x/./y/../z/",
        "https://execute-api.us-east-1.amazonaws.com",
        "https://execute-api.us-east-1.amazonaws.com/prod/%40connections/abc%3D",
    ] {
        let mut spec = Spec::new("GET", url, b"");
        spec.service = "execute-api";
        check(&spec.sign(), b"").unwrap_or_else(|e| panic!("{url}: {e}"));
    }
}

#[test]
fn query_strings_with_spaces_duplicates_and_odd_values() {
    let url = "https://apigateway.us-east-1.amazonaws.com/restapis?limit=10&position=a%20b&tag=x&tag=a\
               &empty=&flag&q=c+d&plus=%2B&utf8=%E2%82%AC&tilde=~&Z=1";
    let parts = Spec::new("GET", url, b"").sign();
    check(&parts, b"").unwrap();

    // Reordering the query does not matter, changing a value does.
    let mut reordered = parts.clone();
    reordered.uri = "/restapis?Z=1&tag=a&tag=x&tilde=~&utf8=%E2%82%AC&plus=%2B&q=c%20d&flag=&empty&position=a+b&limit=10"
        .parse()
        .unwrap();
    check(&reordered, b"").unwrap();
    let mut changed = parts.clone();
    changed.uri = "/restapis?limit=11&position=a%20b&tag=x&tag=a&empty=&flag&q=c+d&plus=%2B&utf8=%E2%82%AC&tilde=~&Z=1"
        .parse()
        .unwrap();
    assert!(matches!(
        check(&changed, b""),
        Err(SigV4Error::SignatureMismatch { .. })
    ));
}

#[test]
fn unsigned_payload() {
    let body = b"anything at all";
    let mut spec = Spec::new(
        "PUT",
        "https://apigateway.us-east-1.amazonaws.com/restapis/abc",
        body,
    );
    spec.signable = SignableBody::UnsignedPayload;
    spec.settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
    let parts = spec.sign();
    assert_eq!(parts.headers["x-amz-content-sha256"], "UNSIGNED-PAYLOAD");
    assert_eq!(parse(&parts).unwrap().payload, PayloadKind::Unsigned);
    assert_eq!(&check(&parts, body).unwrap()[..], body);
    // By the client's choice the body is not covered: another body verifies too.
    assert_eq!(&check(&parts, b"other").unwrap()[..], b"other");
    // But the literal is: claiming a hash instead breaks the signature.
    let mut tampered = parts.clone();
    tampered.headers.insert(
        "x-amz-content-sha256",
        apigw_sigv4::sha256_hex(b"other").parse().unwrap(),
    );
    assert!(matches!(
        check(&tampered, b"other"),
        Err(SigV4Error::SignatureMismatch { .. })
    ));
}

#[test]
fn content_sha256_header_must_match_the_body() {
    let body = br#"{"a":1}"#;
    let mut spec = Spec::new(
        "POST",
        "https://apigateway.us-east-1.amazonaws.com/restapis",
        body,
    );
    spec.settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
    let parts = spec.sign();
    assert_eq!(
        parse(&parts).unwrap().payload,
        PayloadKind::Hash(apigw_sigv4::sha256_hex(body))
    );
    check(&parts, body).unwrap();
    assert_eq!(
        check(&parts, br#"{"a":2}"#),
        Err(SigV4Error::PayloadHashMismatch)
    );
}

#[test]
fn session_token_is_signed() {
    let mut spec = Spec::new(
        "GET",
        "https://apigateway.us-east-1.amazonaws.com/apikeys",
        b"",
    );
    spec.credentials = Credentials::new(
        ACCESS_KEY,
        SECRET,
        Some("token-123".to_owned()),
        None,
        "test",
    );
    let parts = spec.sign();
    assert!(
        parse(&parts)
            .unwrap()
            .signed_headers
            .contains(&"x-amz-security-token".to_owned())
    );
    check(&parts, b"").unwrap();
    let mut tampered = parts.clone();
    tampered
        .headers
        .insert("x-amz-security-token", "token-124".parse().unwrap());
    assert!(matches!(
        check(&tampered, b""),
        Err(SigV4Error::SignatureMismatch { .. })
    ));
}

#[test]
fn http2_style_authority_without_host_header() {
    let parts = Spec::new(
        "GET",
        "https://lambda.us-east-1.amazonaws.com:8443/2015-03-31/functions",
        b"",
    )
    .sign_absolute();
    assert!(!parts.headers.contains_key(http::header::HOST));
    check(&parts, b"").unwrap();
}

#[test]
fn presigned_urls() {
    for signable in [SignableBody::Bytes(b""), SignableBody::UnsignedPayload] {
        let mut spec = Spec::new(
            "GET",
            "https://apigateway.us-east-1.amazonaws.com/restapis?limit=5&name=a%20b",
            b"",
        );
        spec.signable = signable.clone();
        spec.settings.signature_location = SignatureLocation::QueryParams;
        spec.settings.expires_in = Some(std::time::Duration::from_secs(300));
        let parts = spec.sign();
        assert!(!parts.headers.contains_key(http::header::AUTHORIZATION));
        let signed = parse(&parts).unwrap();
        assert_eq!(signed.form, AuthForm::Query, "{signable:?}");
        assert_eq!(signed.expires, Some(Duration::seconds(300)));

        check(&parts, b"").unwrap_or_else(|e| panic!("{signable:?}: {e}"));
        check_at(&parts, b"", SECRET, signing_time() + Duration::seconds(300)).unwrap();
        let late = check_at(&parts, b"", SECRET, signing_time() + Duration::seconds(301));
        assert!(matches!(late, Err(SigV4Error::Expired { .. })), "{late:?}");
        let early = check_at(&parts, b"", SECRET, signing_time() - Duration::minutes(16));
        assert!(
            matches!(early, Err(SigV4Error::Expired { .. })),
            "{early:?}"
        );

        // Lengthening the validity breaks the signature.
        let longer: http::Uri = parts
            .uri
            .to_string()
            .replace("X-Amz-Expires=300", "X-Amz-Expires=3000")
            .parse()
            .unwrap();
        let mut tampered = parts.clone();
        tampered.uri = longer;
        assert!(matches!(
            check(&tampered, b""),
            Err(SigV4Error::SignatureMismatch { .. })
        ));
    }
}

#[test]
fn s3_single_encoding() {
    let mut spec = Spec::new(
        "GET",
        "https://s3.us-east-1.amazonaws.com/bucket/my%20key/a%3Ab//c",
        b"",
    );
    spec.service = "s3";
    spec.signable = SignableBody::UnsignedPayload;
    spec.settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
    spec.settings.percent_encoding_mode = PercentEncodingMode::Single;
    spec.settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
    let parts = spec.sign();
    check(&parts, b"").unwrap();
    // With the non-S3 rules the same request does not verify.
    let signed = parse(&parts).unwrap();
    let result = verify_with(
        &signed,
        &parts,
        b"",
        SECRET,
        signing_time(),
        skew(),
        &Settings::default(),
    );
    assert!(
        matches!(result, Err(SigV4Error::SignatureMismatch { .. })),
        "{result:?}"
    );
}

#[test]
fn credential_scope_date_must_match_the_request_date() {
    let parts = Spec::new(
        "GET",
        "https://apigateway.us-east-1.amazonaws.com/restapis",
        b"",
    )
    .sign();
    let mut signed = parse(&parts).unwrap();
    signed.date = "20240310".to_owned();
    match verify(&signed, &parts, b"", SECRET, signing_time(), skew()) {
        Err(SigV4Error::InvalidDate(message)) => {
            assert!(message.contains("'20240310' != '20240309'"), "{message}")
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn host_must_be_signed() {
    let mut settings = SigningSettings::default();
    let mut excluded = settings.excluded_headers.take().unwrap_or_default();
    excluded.push("host".into());
    settings.excluded_headers = Some(excluded);
    let mut spec = Spec::new(
        "GET",
        "https://apigateway.us-east-1.amazonaws.com/restapis",
        b"",
    );
    spec.settings = settings;
    let parts = spec.sign();
    assert!(
        !parse(&parts)
            .unwrap()
            .signed_headers
            .contains(&"host".to_owned())
    );
    assert!(matches!(check(&parts, b""), Err(SigV4Error::Incomplete(m)) if m.contains("'Host'")));
}
