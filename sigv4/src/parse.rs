//! Reading the signature information out of a request head, before the secret
//! is known (the access key id in it says which secret to look up).

use chrono::{DateTime, NaiveDateTime, Utc};
use http::header::{AUTHORIZATION, DATE};
use http::request::Parts;

use crate::SigV4Error;
use crate::canonical::{ALGORITHM, STREAMING_PAYLOAD, UNSIGNED_PAYLOAD, query_pairs, scope};

/// Longest `Authorization` header (or signature query parameter) we read.
/// Real ones are a few hundred bytes; this bounds work and error messages.
const MAX_AUTH_LEN: usize = 16 * 1024;
/// Longest presigned URL lifetime AWS allows: 7 days.
const MAX_EXPIRES_SECS: i64 = 604_800;
/// How much of a client-supplied value we quote back in an error message.
const MAX_ECHO: usize = 256;

/// Where the signature was carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthForm {
    /// `Authorization: AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...`
    Header,
    /// Presigned URL: `X-Amz-Algorithm`, `X-Amz-Credential`, ... query parameters.
    Query,
}

/// What the last line of the canonical request (the payload hash) is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PayloadKind {
    /// `x-amz-content-sha256` carries this hex SHA-256; the body must match it.
    Hash(String),
    /// `UNSIGNED-PAYLOAD`: the client chose not to sign the body. Also the
    /// default for presigned URLs without `x-amz-content-sha256`.
    Unsigned,
    /// `STREAMING-AWS4-HMAC-SHA256-PAYLOAD`: aws-chunked body, each chunk signed.
    Streaming,
    /// No `x-amz-content-sha256`: the hex SHA-256 of the received body.
    Computed,
}

/// What the `Authorization` header (or presigned query) says, before the
/// secret is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedRequest {
    pub access_key_id: String,
    /// Credential scope date, `yyyymmdd`.
    pub date: String,
    pub region: String,
    pub service: String,
    /// Lowercase header names, in the order the client listed them.
    pub signed_headers: Vec<String>,
    /// 64 lowercase hex digits.
    pub signature: String,
    /// From `X-Amz-Date` (header or query), else the `Date` header.
    pub timestamp: DateTime<Utc>,
    pub form: AuthForm,
    pub payload: PayloadKind,
    /// `X-Amz-Expires` of a presigned URL; `None` for the header form.
    pub expires: Option<chrono::Duration>,
}

impl SignedRequest {
    /// The credential scope, `yyyymmdd/region/service/aws4_request`.
    pub fn scope(&self) -> String {
        scope(&self.date, &self.region, &self.service)
    }
}

/// Parses the authentication information of a request head.
///
/// Returns [`SigV4Error::MissingAuthentication`] when there is neither an
/// `Authorization` header nor an `X-Amz-Algorithm` query parameter. Only
/// syntax is checked here; [`crate::verify`] checks times and the signature.
pub fn parse(parts: &Parts) -> Result<SignedRequest, SigV4Error> {
    let mut auth_headers = parts.headers.get_all(AUTHORIZATION).iter();
    let auth_header = auth_headers.next();
    if auth_headers.next().is_some() {
        return Err(incomplete("Only one Authorization header may be sent."));
    }
    let query = parts.uri.query().unwrap_or("");
    let presigned = query_pairs(query).any(|(name, _)| name == b"X-Amz-Algorithm");

    match (auth_header, presigned) {
        (None, false) => Err(SigV4Error::MissingAuthentication),
        (Some(_), true) => Err(incomplete(
            "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter \
             or the Authorization header should be specified.",
        )),
        (Some(value), false) => {
            let value = std::str::from_utf8(value.as_bytes())
                .map_err(|_| incomplete("The Authorization header is not valid UTF-8."))?;
            let payload = payload_kind(parts)?.unwrap_or(PayloadKind::Computed);
            parse_header_form(parts, value, payload)
        }
        (None, true) => {
            let payload = payload_kind(parts)?.unwrap_or(PayloadKind::Unsigned);
            parse_query_form(query, payload)
        }
    }
}

fn parse_header_form(
    parts: &Parts,
    value: &str,
    payload: PayloadKind,
) -> Result<SignedRequest, SigV4Error> {
    if value.len() > MAX_AUTH_LEN {
        return Err(incomplete("The Authorization header is too large."));
    }
    if value.trim().is_empty() {
        return Err(incomplete("The Authorization header is empty."));
    }
    let (algorithm, rest) = value.split_once(' ').unwrap_or((value, ""));
    if algorithm != ALGORITHM {
        return Err(SigV4Error::UnsupportedAlgorithm(echo(algorithm)));
    }

    let (mut credential, mut signed_headers, mut signature) = (None, None, None);
    for component in rest.split(',').map(str::trim).filter(|c| !c.is_empty()) {
        let Some((key, val)) = component.split_once('=') else {
            return Err(incomplete(format!(
                "Invalid key=value pair (missing equal-sign) in Authorization header: '{}'.",
                echo(component)
            )));
        };
        let slot = match key {
            "Credential" => &mut credential,
            "SignedHeaders" => &mut signed_headers,
            "Signature" => &mut signature,
            _ => {
                return Err(incomplete(format!(
                    "Unexpected parameter '{}' in Authorization header.",
                    echo(key)
                )));
            }
        };
        if slot.replace(val).is_some() {
            return Err(incomplete(format!(
                "Authorization header has more than one '{key}' parameter."
            )));
        }
    }

    let mut missing = String::new();
    for (name, present) in [
        ("Credential", credential.is_some()),
        ("Signature", signature.is_some()),
        ("SignedHeaders", signed_headers.is_some()),
    ] {
        if !present {
            missing.push_str(&format!(
                "Authorization header requires '{name}' parameter. "
            ));
        }
    }
    let (Some(credential), Some(signed_headers), Some(signature)) =
        (credential, signed_headers, signature)
    else {
        return Err(incomplete(format!(
            "{missing}Authorization={}",
            echo(value)
        )));
    };

    let timestamp = header_timestamp(parts, value)?;
    build(
        credential,
        signed_headers,
        signature,
        timestamp,
        AuthForm::Header,
        payload,
        None,
    )
}

fn parse_query_form(query: &str, payload: PayloadKind) -> Result<SignedRequest, SigV4Error> {
    const NAMES: [&str; 6] = [
        "X-Amz-Algorithm",
        "X-Amz-Credential",
        "X-Amz-Signature",
        "X-Amz-Date",
        "X-Amz-SignedHeaders",
        "X-Amz-Expires",
    ];
    let mut values: [Option<String>; 6] = Default::default();
    for (name, value) in query_pairs(query) {
        let Some(i) = NAMES.iter().position(|n| n.as_bytes() == name.as_slice()) else {
            continue;
        };
        if value.len() > MAX_AUTH_LEN {
            return Err(incomplete(format!(
                "Query parameter '{}' is too large.",
                NAMES[i]
            )));
        }
        let value = String::from_utf8(value).map_err(|_| {
            incomplete(format!(
                "Query parameter '{}' is not valid UTF-8.",
                NAMES[i]
            ))
        })?;
        if values[i].replace(value).is_some() {
            return Err(incomplete(format!(
                "Query parameter '{}' may only be given once.",
                NAMES[i]
            )));
        }
    }
    let [
        Some(algorithm),
        Some(credential),
        Some(signature),
        Some(date),
        Some(signed_headers),
        Some(expires),
    ] = values
    else {
        return Err(incomplete(
            "AWS query-string parameters must include 'X-Amz-Algorithm', 'X-Amz-Credential', \
             'X-Amz-Signature', 'X-Amz-Date', 'X-Amz-SignedHeaders', and 'X-Amz-Expires'. \
             Re-examine the query-string parameters.",
        ));
    };
    if algorithm != ALGORITHM {
        return Err(SigV4Error::UnsupportedAlgorithm(echo(&algorithm)));
    }
    let expires = parse_expires(&expires)?;
    let timestamp = parse_amz_date(&date)?;
    build(
        &credential,
        &signed_headers,
        &signature,
        timestamp,
        AuthForm::Query,
        payload,
        Some(expires),
    )
}

fn build(
    credential: &str,
    signed_headers: &str,
    signature: &str,
    timestamp: DateTime<Utc>,
    form: AuthForm,
    payload: PayloadKind,
    expires: Option<chrono::Duration>,
) -> Result<SignedRequest, SigV4Error> {
    let [access_key_id, date, region, service, terminator] = split_credential(credential)?;
    if terminator != "aws4_request" {
        return Err(incomplete(format!(
            "Credential should be scoped with a valid terminator: 'aws4_request', not '{}'.",
            echo(terminator)
        )));
    }
    if date.len() != 8 || !date.bytes().all(|b| b.is_ascii_digit()) {
        return Err(incomplete(format!(
            "Credential should be scoped to a valid date (yyyymmdd), not '{}'.",
            echo(date)
        )));
    }
    for (what, value) in [
        ("an access key id", access_key_id),
        ("a valid region", region),
        ("a valid service", service),
    ] {
        if value.is_empty() {
            return Err(incomplete(format!(
                "Credential should be scoped to {what}."
            )));
        }
    }
    Ok(SignedRequest {
        access_key_id: access_key_id.to_owned(),
        date: date.to_owned(),
        region: region.to_owned(),
        service: service.to_owned(),
        signed_headers: parse_signed_headers(signed_headers)?,
        signature: parse_signature(signature)?,
        timestamp,
        form,
        payload,
        expires,
    })
}

fn split_credential(credential: &str) -> Result<[&str; 5], SigV4Error> {
    let parts: Vec<&str> = credential.splitn(6, '/').collect();
    <[&str; 5]>::try_from(parts).map_err(|_| {
        incomplete(format!(
            "Credential must have the form \
             <AccessKeyId>/<yyyymmdd>/<region>/<service>/aws4_request, got '{}'.",
            echo(credential)
        ))
    })
}

fn parse_signed_headers(list: &str) -> Result<Vec<String>, SigV4Error> {
    let names: Vec<String> = list.split(';').map(str::to_ascii_lowercase).collect();
    for name in &names {
        if http::HeaderName::from_bytes(name.as_bytes()).is_err() {
            return Err(incomplete(format!(
                "SignedHeaders contains an invalid header name: '{}'.",
                echo(name)
            )));
        }
    }
    Ok(names)
}

fn parse_signature(signature: &str) -> Result<String, SigV4Error> {
    let valid = signature.len() == 64
        && signature
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if !valid {
        return Err(incomplete(format!(
            "Signature must be 64 lowercase hexadecimal characters, got '{}'.",
            echo(signature)
        )));
    }
    Ok(signature.to_owned())
}

fn parse_expires(value: &str) -> Result<chrono::Duration, SigV4Error> {
    let secs =
        (!value.is_empty() && value.len() <= 10 && value.bytes().all(|b| b.is_ascii_digit()))
            .then(|| value.parse::<i64>().ok())
            .flatten()
            .ok_or_else(|| {
                incomplete(format!(
                    "X-Amz-Expires must be a non-negative integer number of seconds, got '{}'.",
                    echo(value)
                ))
            })?;
    if secs > MAX_EXPIRES_SECS {
        return Err(incomplete(
            "X-Amz-Expires must be less than a week (in seconds) that is 604800",
        ));
    }
    Ok(chrono::Duration::seconds(secs))
}

/// The request time of the header form: `X-Amz-Date`, else `Date`.
fn header_timestamp(parts: &Parts, authorization: &str) -> Result<DateTime<Utc>, SigV4Error> {
    let single = |name: &str| -> Result<Option<String>, SigV4Error> {
        let mut values = parts.headers.get_all(name).iter();
        let first = values.next();
        if values.next().is_some() {
            return Err(incomplete(format!("Only one '{name}' header may be sent.")));
        }
        first
            .map(|v| {
                v.to_str().map(str::to_owned).map_err(|_| {
                    SigV4Error::InvalidDate(format!("The '{name}' header is not ASCII."))
                })
            })
            .transpose()
    };
    if let Some(amz_date) = single("x-amz-date")? {
        return parse_amz_date(&amz_date);
    }
    if let Some(date) = single(DATE.as_str())? {
        // Clients that use `Date` send an HTTP date; some send the basic form.
        return DateTime::parse_from_rfc2822(&date)
            .map(|d| d.with_timezone(&Utc))
            .or_else(|_| parse_amz_date(&date));
    }
    Err(incomplete(format!(
        "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. \
         Authorization={}",
        echo(authorization)
    )))
}

/// Parses the ISO 8601 basic form `yyyymmddThhmmssZ`, strictly, so that
/// formatting the result gives back the same string for the string to sign.
pub(crate) fn parse_amz_date(value: &str) -> Result<DateTime<Utc>, SigV4Error> {
    let shape_ok = value.len() == 16
        && value.bytes().enumerate().all(|(i, b)| match i {
            8 => b == b'T',
            15 => b == b'Z',
            _ => b.is_ascii_digit(),
        });
    shape_ok
        .then(|| NaiveDateTime::parse_from_str(value, "%Y%m%dT%H%M%SZ").ok())
        .flatten()
        .map(|naive| naive.and_utc())
        .ok_or_else(|| {
            SigV4Error::InvalidDate(format!(
                "Date must be in ISO-8601 'basic format'. Got '{}'.",
                echo(value)
            ))
        })
}

/// `None` when there is no `x-amz-content-sha256` header (the default then
/// depends on the form).
fn payload_kind(parts: &Parts) -> Result<Option<PayloadKind>, SigV4Error> {
    let mut values = parts.headers.get_all("x-amz-content-sha256").iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(incomplete(
            "Only one 'x-amz-content-sha256' header may be sent.",
        ));
    }
    let kind = match value.as_bytes() {
        b if b == UNSIGNED_PAYLOAD.as_bytes() => PayloadKind::Unsigned,
        b if b == STREAMING_PAYLOAD.as_bytes() => PayloadKind::Streaming,
        b if b.len() == 64 && b.iter().all(u8::is_ascii_hexdigit) => {
            PayloadKind::Hash(String::from_utf8_lossy(b).into_owned())
        }
        // Anything else (e.g. the trailer variants) would leave the body unchecked.
        _ => return Err(SigV4Error::PayloadHashMismatch),
    };
    Ok(Some(kind))
}

fn incomplete(message: impl Into<String>) -> SigV4Error {
    SigV4Error::Incomplete(message.into())
}

/// A client value, cut short for quoting in an error message.
fn echo(value: &str) -> String {
    match value.char_indices().nth(MAX_ECHO) {
        Some((end, _)) => format!("{}...", &value[..end]),
        None => value.to_owned(),
    }
}
