//! AWS's published SigV4 test suite (tests/vectors/v4, see its README), run
//! through our verifier.
//!
//! For every vector and for each form it has (header, presigned query) we read
//! the *signed* request (a verifier only ever sees signed requests; the
//! unsigned `request.txt` lacks `X-Amz-Date`), parse it with our `parse`,
//! rebuild the canonical request and string to sign with our building blocks
//! and compare them with AWS's files, then run `verify_with` with the vector's
//! secret and `now` = the vector's timestamp, and finally flip one hex digit of
//! the signature and expect `SignatureMismatch`.
//!
//! `context.json` options are honoured as follows:
//! - `normalize` -> `Settings::normalize_path`.
//! - `omit_session_token` -> `Settings::omit_session_token` (the presigned
//!   token is appended after signing and is not in the canonical query).
//! - `sign_body` needs no setting: the signer then sends `x-amz-content-sha256`
//!   (header form), which we read, or signs the body hash (presigned form),
//!   which our verifier accepts besides UNSIGNED-PAYLOAD.
//! - `credentials`, `region`, `service`, `timestamp`, `expiration_in_seconds`
//!   are checked against what `parse` read from the signed request.

use std::fs;
use std::path::{Path, PathBuf};

use apigw_sigv4::{
    AuthForm, PayloadKind, Settings, SigV4Error, SignedRequest, UriEncoding, canonical_request,
    parse, sha256_hex, string_to_sign, verify, verify_with,
};
use chrono::{DateTime, Utc};
use http::request::Parts;

const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
/// `aws_credential_types::Credentials::for_tests()` (access key `ANOTREAL`),
/// which signed `double-encode-path`, one of the two vectors smithy-rs added.
const SMITHY_TEST_SECRET: &str = "notrealrnrELgWzOk3IfjzDKtFBhDby";

/// The secret of the access key the two vectors without context.json name.
fn secret_without_context(access_key_id: &str) -> &'static str {
    match access_key_id {
        "ANOTREAL" => SMITHY_TEST_SECRET,
        "AKIDEXAMPLE" => SECRET,
        other => panic!("unknown access key {other}"),
    }
}

fn suite_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors/v4")
}

/// A request parsed from the suite's text format.
struct RawRequest {
    parts: Parts,
    body: Vec<u8>,
    /// The request line had a literal space in its path, which no HTTP/1.1
    /// request line can carry; we sent it percent-encoded instead.
    encoded_space: bool,
}

/// Parses the suite's HTTP/1.1 text. Folded header lines (obs-fold) are joined
/// with a space, as RFC 7230 section 3.2.4 lets a recipient do (hyper would
/// reject them outright). Header values keep inner whitespace, as on the wire.
fn parse_http(text: &str) -> RawRequest {
    let (head, body) = match text.split_once("\n\n") {
        Some((head, body)) => (head, body),
        None => (text.trim_end_matches('\n'), ""),
    };
    let mut lines = head.lines();
    let request_line = lines.next().expect("request line");
    let (method, rest) = request_line.split_once(' ').expect("method");
    let target = rest.strip_suffix(" HTTP/1.1").unwrap_or(rest);
    let encoded_space = target.contains(' ');
    let target = target.replace(' ', "%20");

    let mut headers: Vec<(String, String)> = Vec::new();
    for line in lines {
        if line.starts_with([' ', '\t']) {
            let last = headers.last_mut().expect("continuation after a header");
            last.1.push(' ');
            last.1.push_str(line.trim_matches([' ', '\t']));
        } else {
            let (name, value) = line.split_once(':').expect("header line");
            headers.push((name.to_owned(), value.trim_matches([' ', '\t']).to_owned()));
        }
    }

    let mut builder = http::Request::builder().method(method).uri(target);
    for (name, value) in &headers {
        builder = builder.header(
            name.as_str(),
            http::HeaderValue::from_bytes(value.as_bytes()).expect("header value"),
        );
    }
    let (parts, ()) = builder.body(()).expect("request").into_parts();
    RawRequest {
        parts,
        body: body.as_bytes().to_vec(),
        encoded_space,
    }
}

struct Context {
    access_key_id: String,
    secret: String,
    region: String,
    service: String,
    timestamp: DateTime<Utc>,
    expires_secs: i64,
    normalize: bool,
    omit_session_token: bool,
}

fn context(dir: &Path) -> Option<Context> {
    let text = fs::read_to_string(dir.join("context.json")).ok()?;
    let json: serde_json::Value = serde_json::from_str(&text).expect("context.json");
    let creds = &json["credentials"];
    Some(Context {
        access_key_id: creds["access_key_id"].as_str()?.to_owned(),
        secret: creds["secret_access_key"].as_str()?.to_owned(),
        region: json["region"].as_str()?.to_owned(),
        service: json["service"].as_str()?.to_owned(),
        timestamp: json["timestamp"].as_str()?.parse().expect("timestamp"),
        expires_secs: json["expiration_in_seconds"].as_i64()?,
        normalize: json["normalize"].as_bool()?,
        omit_session_token: json["omit_session_token"].as_bool().unwrap_or(false),
    })
}

fn read(dir: &Path, file: &str) -> Option<String> {
    fs::read_to_string(dir.join(file)).ok()
}

/// The payload hash the signer used, as the verifier derives it.
fn payload_hash(signed: &SignedRequest, body: &[u8]) -> String {
    match &signed.payload {
        PayloadKind::Hash(hash) => hash.clone(),
        // Presigned without x-amz-content-sha256: the suite signs the body hash.
        PayloadKind::Computed | PayloadKind::Unsigned => sha256_hex(body),
        PayloadKind::Streaming => unreachable!("no streaming vectors in the suite"),
    }
}

/// Replaces the first hex digit of `signature` inside `text` by another one.
fn tamper(text: &str, signature: &str) -> String {
    let flipped = if signature.starts_with('0') { "1" } else { "0" };
    text.replacen(signature, &format!("{flipped}{}", &signature[1..]), 1)
}

/// Runs one form of one vector; returns a description of what was checked.
fn run_form(name: &str, dir: &Path, form: AuthForm) -> Option<String> {
    let prefix = match form {
        AuthForm::Header => "header",
        AuthForm::Query => "query",
    };
    let signed_text = read(dir, &format!("{prefix}-signed-request.txt"))?;
    let ctx = context(dir);
    let raw = parse_http(&signed_text);
    let signed = parse(&raw.parts).unwrap_or_else(|e| panic!("{name}/{prefix}: parse: {e}"));
    assert_eq!(signed.form, form, "{name}/{prefix}");

    let (secret, now, mut settings) = match &ctx {
        Some(ctx) => {
            assert_eq!(signed.access_key_id, ctx.access_key_id, "{name}/{prefix}");
            assert_eq!(signed.region, ctx.region, "{name}/{prefix}");
            assert_eq!(signed.service, ctx.service, "{name}/{prefix}");
            assert_eq!(signed.timestamp, ctx.timestamp, "{name}/{prefix}");
            if form == AuthForm::Query {
                assert_eq!(
                    signed.expires,
                    Some(chrono::Duration::seconds(ctx.expires_secs)),
                    "{name}/{prefix}"
                );
            }
            let settings = Settings {
                normalize_path: ctx.normalize,
                omit_session_token: ctx.omit_session_token,
                ..Settings::default()
            };
            (ctx.secret.clone(), ctx.timestamp, settings)
        }
        // The two smithy-rs vectors have no context.json: default (non-S3)
        // settings, the secret of the key they name, and the time they carry.
        None => (
            secret_without_context(&signed.access_key_id).to_owned(),
            signed.timestamp,
            Settings::default(),
        ),
    };
    if raw.encoded_space {
        // get-space-*: the suite's request line has a raw space in the path
        // (`GET /example space/ HTTP/1.1`), which cannot be sent over HTTP, and
        // expects the canonical path `/example%20space/`, i.e. the path encoded
        // exactly once. A real client sends `/example%20space/`; the suite's
        // signer (aws-c-auth) encoded the raw text once. Verifying the encoded
        // wire form with single encoding reproduces the suite's canonical
        // request exactly (with double encoding it would be `%2520`).
        settings.uri_encoding = UriEncoding::Single;
    }

    // Canonical request.
    let creq = canonical_request(
        &raw.parts,
        &signed.signed_headers,
        &payload_hash(&signed, &raw.body),
        form,
        &settings,
    )
    .unwrap_or_else(|e| panic!("{name}/{prefix}: canonical request: {e}"));
    let mut expected_creq = read(dir, &format!("{prefix}-canonical-request.txt"))
        .expect("canonical request file")
        .trim_end_matches('\n')
        .to_owned();
    if name == "double-encode-path" {
        // smithy-rs generated this file with its signer clock at
        // 20210511T154045Z but the signed request (and its signature) at
        // 20150830T123600Z; only the x-amz-date line differs, and the
        // signature check below proves the rest.
        expected_creq =
            expected_creq.replace("x-amz-date:20210511T154045Z", "x-amz-date:20150830T123600Z");
    }
    assert_eq!(creq, expected_creq, "{name}/{prefix}: canonical request");

    // String to sign, where the vector has one.
    let sts = string_to_sign(&signed.timestamp, &signed.scope(), &creq);
    if let Some(expected) = read(dir, &format!("{prefix}-string-to-sign.txt")) {
        assert_eq!(
            sts,
            expected.trim_end_matches('\n'),
            "{name}/{prefix}: string to sign"
        );
    }
    if let Some(expected) = read(dir, &format!("{prefix}-signature.txt")) {
        assert_eq!(
            signed.signature,
            expected.trim(),
            "{name}/{prefix}: signature"
        );
    }

    // Verification.
    let max_skew = chrono::Duration::minutes(15);
    let payload = verify_with(
        &signed, &raw.parts, &raw.body, &secret, now, max_skew, &settings,
    )
    .unwrap_or_else(|e| panic!("{name}/{prefix}: verify: {e}"));
    assert_eq!(&payload[..], &raw.body[..], "{name}/{prefix}");
    if settings == Settings::for_service(&signed.service) {
        verify(&signed, &raw.parts, &raw.body, &secret, now, max_skew)
            .unwrap_or_else(|e| panic!("{name}/{prefix}: verify (service defaults): {e}"));
    }

    // One flipped hex digit must fail.
    let bad = parse_http(&tamper(&signed_text, &signed.signature));
    let bad_signed = parse(&bad.parts).expect("tampered request still parses");
    assert_ne!(bad_signed.signature, signed.signature);
    match verify_with(
        &bad_signed,
        &bad.parts,
        &bad.body,
        &secret,
        now,
        max_skew,
        &settings,
    ) {
        Err(SigV4Error::SignatureMismatch {
            canonical_request,
            string_to_sign: reported_sts,
        }) => {
            // A presigned URL without x-amz-content-sha256 is reported with the
            // primary candidate, UNSIGNED-PAYLOAD.
            let expected = if signed.payload == PayloadKind::Unsigned {
                let (head, _) = creq.rsplit_once('\n').expect("payload line");
                format!("{head}\nUNSIGNED-PAYLOAD")
            } else {
                creq.clone()
            };
            assert_eq!(canonical_request, expected, "{name}/{prefix}");
            assert_eq!(
                reported_sts,
                string_to_sign(&signed.timestamp, &signed.scope(), &expected),
                "{name}/{prefix}"
            );
        }
        other => panic!("{name}/{prefix}: tampered signature gave {other:?}"),
    }

    Some(format!(
        "{name}/{prefix} ({:?}, normalize={})",
        settings.uri_encoding, settings.normalize_path
    ))
}

#[test]
fn every_vector_in_the_aws_suite_verifies() {
    let mut names: Vec<String> = fs::read_dir(suite_dir())
        .expect("tests/vectors/v4")
        .map(|entry| {
            entry
                .expect("dir entry")
                .file_name()
                .into_string()
                .expect("name")
        })
        .collect();
    names.sort();
    assert_eq!(names.len(), 40, "the suite has 40 v4 vectors");

    let mut checked = Vec::new();
    for name in &names {
        let dir = suite_dir().join(name);
        let header = run_form(name, &dir, AuthForm::Header);
        assert!(header.is_some(), "{name}: every vector has the header form");
        checked.extend(header);
        checked.extend(run_form(name, &dir, AuthForm::Query));
    }
    // 38 vectors have both forms; the two smithy-rs ones only the header form.
    assert_eq!(checked.len(), 78, "{checked:#?}");
}

/// `double-url-encode` (Lambda, us-east-2) pins down double encoding of a path
/// whose `:` the client percent-encoded: it verifies with our default
/// settings and not with single encoding.
#[test]
fn double_url_encode_vector_pins_double_encoding() {
    let dir = suite_dir().join("double-url-encode");
    let raw = parse_http(&read(&dir, "header-signed-request.txt").unwrap());
    assert_eq!(
        raw.parts.uri.path(),
        "/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-west-2%3A892717189312%3Afunction%3Amy-rusty-fun/invocations"
    );
    let creq = read(&dir, "header-canonical-request.txt").unwrap();
    assert!(creq.contains("arn%253Aaws%253Alambda"), "{creq}");
    let signed = parse(&raw.parts).unwrap();
    assert_eq!(
        (signed.region.as_str(), signed.service.as_str()),
        ("us-east-2", "lambda")
    );
    let max_skew = chrono::Duration::minutes(15);
    verify(
        &signed,
        &raw.parts,
        &raw.body,
        SECRET,
        signed.timestamp,
        max_skew,
    )
    .unwrap();
    // Single (S3-style) encoding must not verify this request.
    let single = Settings {
        uri_encoding: UriEncoding::Single,
        ..Settings::default()
    };
    let result = verify_with(
        &signed,
        &raw.parts,
        &raw.body,
        SECRET,
        signed.timestamp,
        max_skew,
        &single,
    );
    assert!(
        matches!(result, Err(SigV4Error::SignatureMismatch { .. })),
        "{result:?}"
    );
}

#[test]
fn suite_vectors_expire() {
    let dir = suite_dir().join("get-vanilla");
    let max_skew = chrono::Duration::minutes(15);
    // (file, last accepted `now` after the request time)
    for (file, window) in [
        ("header-signed-request.txt", max_skew),
        ("query-signed-request.txt", chrono::Duration::seconds(3600)),
    ] {
        let raw = parse_http(&read(&dir, file).unwrap());
        let signed = parse(&raw.parts).unwrap();
        let now = signed.timestamp + window;
        verify(&signed, &raw.parts, &raw.body, SECRET, now, max_skew)
            .unwrap_or_else(|e| panic!("{file}: {e}"));
        let now = now + chrono::Duration::seconds(1);
        let result = verify(&signed, &raw.parts, &raw.body, SECRET, now, max_skew);
        assert!(
            matches!(result, Err(SigV4Error::Expired { .. })),
            "{file}: {result:?}"
        );
    }
}
