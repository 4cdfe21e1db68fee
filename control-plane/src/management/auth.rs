//! SigV4 authentication of every management request: buffers the body
//! (bounded), finds the access key's tenant, verifies the signature and hands
//! the handlers a [`Caller`] and the verified payload.

use apigw_sigv4::SigV4Error;
use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::AppState;
use crate::error::{ApiError, LambdaError};

/// Signing names the management endpoint answers for.
const SERVICES: [&str; 3] = ["apigateway", "apigatewayv2", "lambda"];

/// Who is calling: the tenant its access key belongs to.
#[derive(Debug, Clone)]
pub struct Caller {
    pub account_id: String,
    pub access_key_id: String,
    pub region: String,
}

/// Marks a request signed with a service-principal key. Such a request only
/// ever reaches `lambda` Invoke, for the account of the function's ARN.
#[derive(Debug, Clone)]
pub struct ServicePrincipal;

pub async fn authenticate(State(state): State<AppState>, request: Request, next: Next) -> Response {
    match verify(&state, request).await {
        Ok(request) => next.run(request).await,
        Err(e) => e.into_response(),
    }
}

async fn verify(state: &AppState, request: Request) -> Result<Request, ApiError> {
    let (mut parts, body) = request.into_parts();
    let lambda = parts.uri.path().starts_with("/2015-03-31/");
    let body = to_bytes(body, state.config.max_body_bytes)
        .await
        .map_err(|_| {
            if lambda {
                // Lambda callers expect Lambda's shape and wording.
                LambdaError::new(
                    axum::http::StatusCode::PAYLOAD_TOO_LARGE,
                    "RequestTooLargeException",
                    format!(
                        "Request must be smaller than {} bytes for the operation",
                        state.config.max_body_bytes
                    ),
                )
                .into()
            } else {
                ApiError::PayloadTooLarge
            }
        })?;
    let signed = apigw_sigv4::parse(&parts).map_err(signature_error)?;
    if !SERVICES.contains(&signed.service.as_str()) {
        return Err(ApiError::InvalidSignature(format!(
            "Credential should be scoped to correct service: '{}'.",
            SERVICES[0]
        )));
    }
    let Some(owner) = state
        .tenancy
        .resolve_key(&signed.access_key_id)
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?
    else {
        return Err(principal_refused(state, &signed, &parts, &body, lambda).await);
    };
    let payload = apigw_sigv4::verify(
        &signed,
        &parts,
        &body,
        &owner.secret,
        chrono::Utc::now(),
        chrono::Duration::minutes(15),
    )
    .map_err(signature_error)?;
    let account_id = if owner.service {
        let account = service_invoke_account(&parts, &signed.service).ok_or_else(|| {
            LambdaError::new(
                axum::http::StatusCode::FORBIDDEN,
                "AccessDeniedException",
                format!(
                    "The service principal {} may only call lambda:InvokeFunction on a function \
                     addressed by its full ARN",
                    signed.access_key_id
                ),
            )
        })?;
        parts.extensions.insert(ServicePrincipal);
        account
    } else {
        owner.account_id
    };
    parts.extensions.insert(Caller {
        account_id,
        access_key_id: signed.access_key_id.clone(),
        region: signed.region.clone(),
    });
    Ok(Request::from_parts(parts, Body::from(payload)))
}

/// A key no tenant administers: a principal's (issue 6), which calls
/// published APIs only, is told so once its signature checks out, in IAM's
/// words; anything else is an unknown key.
async fn principal_refused(
    state: &AppState,
    signed: &apigw_sigv4::SignedRequest,
    parts: &axum::http::request::Parts,
    body: &[u8],
    lambda: bool,
) -> ApiError {
    let principal = match state
        .tenancy
        .principal_credentials(&signed.access_key_id)
        .await
    {
        Ok(Some(p)) => p,
        Ok(None) => return ApiError::UnrecognizedClient,
        Err(e) => return ApiError::Internal(e.to_string()),
    };
    if let Err(e) = apigw_sigv4::verify(
        signed,
        parts,
        body,
        &principal.secret,
        chrono::Utc::now(),
        chrono::Duration::minutes(15),
    ) {
        return signature_error(e);
    }
    let action = format!("{}:{}", signed.service, parts.method);
    let message = format!(
        "User: {} is not authorized to perform: {action} on resource: arn:aws:{}:{}::{} \
         because no identity-based policy allows the {action} action",
        principal.arn,
        signed.service,
        signed.region,
        parts.uri.path()
    );
    if lambda {
        LambdaError::new(
            axum::http::StatusCode::FORBIDDEN,
            "AccessDeniedException",
            message,
        )
        .into()
    } else {
        ApiError::AccessDenied(message)
    }
}

/// For a service-principal request: the account of the function it invokes,
/// if the request is `POST /2015-03-31/functions/{full ARN}/invocations`
/// signed for `lambda`; `None` for anything else.
fn service_invoke_account(parts: &axum::http::request::Parts, service: &str) -> Option<String> {
    if service != "lambda" || parts.method != axum::http::Method::POST {
        return None;
    }
    let name = parts
        .uri
        .path()
        .strip_prefix("/2015-03-31/functions/")?
        .strip_suffix("/invocations")?;
    let name = percent_encoding::percent_decode_str(name)
        .decode_utf8()
        .ok()?;
    let arn = super::lambda::FunctionRef::parse(&name).ok()?;
    // Only a full ARN names a region: a partial one is refused.
    arn.region.as_ref()?;
    arn.account
}

fn signature_error(e: SigV4Error) -> ApiError {
    match e {
        SigV4Error::MissingAuthentication => ApiError::MissingAuthenticationToken,
        SigV4Error::Incomplete(m) | SigV4Error::UnsupportedAlgorithm(m) | SigV4Error::InvalidDate(m) => {
            ApiError::IncompleteSignature(m)
        }
        SigV4Error::SignatureMismatch { .. } => ApiError::InvalidSignature(
            "The request signature we calculated does not match the signature you provided. \
             Check your AWS Secret Access Key and signing method. Consult the service documentation for details."
                .into(),
        ),
        other => ApiError::InvalidSignature(other.to_string()),
    }
}
