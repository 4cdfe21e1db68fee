//! The `lambda` service (API version 2015-03-31, rest-json) served by the
//! built-in function host: CreateFunction, GetFunction,
//! GetFunctionConfiguration, ListFunctions, UpdateFunctionCode,
//! UpdateFunctionConfiguration, DeleteFunction and Invoke. Shapes and
//! wording follow botocore's model; errors use Lambda's own shape
//! ([`LambdaError`]). Only `$LATEST` exists (no versions or aliases).

use std::collections::BTreeMap;
use std::sync::LazyLock;
use std::time::Duration;

use apigw_function_host::{FunctionHost, FunctionSpec, HostError, InvokeRequest};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Extension, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD as BASE64, URL_SAFE_NO_PAD};
use regex::Regex;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::auth::Caller;
use super::{AppState, input};
use crate::error::{ApiError, ApiResult, LambdaError};
use crate::store::functions::{self, FunctionRow};
use crate::store::{StoreError, Tx, now_epoch};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/2015-03-31/functions", get(list).post(create))
        .route("/2015-03-31/functions/", get(list).post(create))
        .route(
            "/2015-03-31/functions/{name}",
            get(get_function).delete(delete),
        )
        .route(
            "/2015-03-31/functions/{name}/configuration",
            get(get_configuration).put(update_configuration),
        )
        .route("/2015-03-31/functions/{name}/code", put(update_code))
        .route("/2015-03-31/functions/{name}/invocations", post(invoke))
}

const MIN_TIMEOUT: i64 = 1;
const MAX_TIMEOUT: i64 = 900;
const DEFAULT_TIMEOUT: i64 = 3;
const MIN_MEMORY: i64 = 128;
const MAX_MEMORY: i64 = 10_240;
const DEFAULT_MEMORY: i64 = 128;
const MAX_ENVIRONMENT_BYTES: usize = 4096;
const MAX_CLIENT_CONTEXT_BYTES: usize = 3583;
const PAGE_MAX: i64 = 50;

const FUNCTION_NAME_PATTERN: &str = r"(arn:(aws[a-zA-Z-]*)?:lambda:)?([a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\d{1}:)?(\d{12}:)?(function:)?([a-zA-Z0-9-_\.]+)(:(\$LATEST(\.PUBLISHED)?|[a-zA-Z0-9-_]+))?";
const ROLE_PATTERN: &str = r"arn:(aws[a-zA-Z-]*)?:iam::\d{12}:role/?[a-zA-Z_0-9+=,.@\-_/]+";

static FUNCTION_NAME: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"^(?:arn:aws[a-zA-Z-]*:lambda:(?P<region>[a-z]{2}(?:-gov|-iso[a-z]?)?-[a-z]+-\d):)?(?:(?P<account>\d{12}):)?(?:function:)?(?P<name>[a-zA-Z0-9_.-]+)(?::(?P<qualifier>\$LATEST(?:\.PUBLISHED)?|[a-zA-Z0-9_-]+))?$",
    )
    .expect("static regex")
});
static ROLE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(&format!("^(?:{ROLE_PATTERN})$")).expect("static regex"));
static ENV_NAME: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[a-zA-Z][a-zA-Z0-9_]+$").expect("static regex"));
static CREATE_NAME: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[a-zA-Z0-9_-]{1,64}$").expect("static regex"));

/// Every runtime in botocore's `Runtime` enum, for AWS's validation message.
const RUNTIMES: &[&str] = &[
    "nodejs",
    "nodejs4.3",
    "nodejs6.10",
    "nodejs8.10",
    "nodejs10.x",
    "nodejs12.x",
    "nodejs14.x",
    "nodejs16.x",
    "java8",
    "java8.al2",
    "java11",
    "python2.7",
    "python3.6",
    "python3.7",
    "python3.8",
    "python3.9",
    "dotnetcore1.0",
    "dotnetcore2.0",
    "dotnetcore2.1",
    "dotnetcore3.1",
    "dotnet6",
    "dotnet8",
    "nodejs4.3-edge",
    "go1.x",
    "ruby2.5",
    "ruby2.7",
    "provided",
    "provided.al2",
    "nodejs18.x",
    "python3.10",
    "java17",
    "ruby3.2",
    "ruby3.3",
    "ruby3.4",
    "python3.11",
    "nodejs20.x",
    "provided.al2023",
    "python3.12",
    "java21",
    "python3.13",
    "nodejs22.x",
    "nodejs24.x",
    "python3.14",
    "java25",
    "dotnet10",
    "ruby4.0",
];

/// Variables Lambda sets itself and refuses in `Environment.Variables`.
const RESERVED_VARIABLES: &[&str] = &[
    "_HANDLER",
    "_X_AMZN_TRACE_ID",
    "AWS_DEFAULT_REGION",
    "AWS_REGION",
    "AWS_EXECUTION_ENV",
    "AWS_LAMBDA_FUNCTION_NAME",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
    "AWS_LAMBDA_FUNCTION_VERSION",
    "AWS_LAMBDA_INITIALIZATION_TYPE",
    "AWS_LAMBDA_LOG_GROUP_NAME",
    "AWS_LAMBDA_LOG_STREAM_NAME",
    "AWS_ACCESS_KEY",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_LAMBDA_RUNTIME_API",
    "LAMBDA_TASK_ROOT",
    "LAMBDA_RUNTIME_DIR",
];

// ---- errors ----------------------------------------------------------------

fn invalid_parameter(message: impl Into<String>) -> ApiError {
    LambdaError::new(
        StatusCode::BAD_REQUEST,
        "InvalidParameterValueException",
        message,
    )
    .into()
}

fn validation(message: impl Into<String>) -> ApiError {
    LambdaError::new(StatusCode::BAD_REQUEST, "ValidationException", message).into()
}

/// AWS's wording for one violated model constraint.
fn constraint(value: &str, member: &str, rule: &str) -> ApiError {
    validation(format!(
        "1 validation error detected: Value '{value}' at '{member}' failed to satisfy constraint: {rule}"
    ))
}

fn invalid_content(message: impl Into<String>) -> ApiError {
    LambdaError::new(
        StatusCode::BAD_REQUEST,
        "InvalidRequestContentException",
        message,
    )
    .into()
}

fn not_found(arn: &str) -> ApiError {
    LambdaError::new(
        StatusCode::NOT_FOUND,
        "ResourceNotFoundException",
        format!("Function not found: {arn}"),
    )
    .into()
}

fn conflict(message: impl Into<String>) -> ApiError {
    LambdaError::new(StatusCode::CONFLICT, "ResourceConflictException", message).into()
}

fn service_error(detail: impl std::fmt::Display) -> ApiError {
    tracing::error!(%detail, "lambda call failed");
    LambdaError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "ServiceException",
        "An internal error occurred",
    )
    .into()
}

/// Store failures in Lambda's shape: a lost compare-and-swap is an update in
/// progress, anything else a service error.
fn store_error(arn: &str) -> impl Fn(StoreError) -> ApiError + '_ {
    move |e| match e {
        StoreError::ConcurrentModification => conflict(format!(
            "The operation cannot be performed at this time. An update is in progress for resource: {arn}"
        )),
        other => service_error(other),
    }
}

/// Parses a JSON body; failures are Lambda's `InvalidRequestContentException`.
fn body<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> ApiResult<T> {
    input::json(bytes).map_err(|e| match e {
        ApiError::Serialization(m) => invalid_content(m),
        other => other,
    })
}

// ---- function names --------------------------------------------------------

/// A `FunctionName` as given: a name, a partial ARN (`123456789012:function:name`)
/// or a full ARN, each optionally qualified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionRef {
    pub region: Option<String>,
    pub account: Option<String>,
    pub name: String,
    pub qualifier: Option<String>,
}

impl FunctionRef {
    pub fn parse(value: &str) -> ApiResult<Self> {
        let caps = FUNCTION_NAME
            .captures(value)
            .filter(|_| value.len() <= 256)
            .ok_or_else(|| {
                constraint(
                    value,
                    "functionName",
                    &format!(
                        "Member must satisfy regular expression pattern: {FUNCTION_NAME_PATTERN}"
                    ),
                )
            })?;
        Ok(Self {
            region: caps.name("region").map(|m| m.as_str().to_owned()),
            account: caps.name("account").map(|m| m.as_str().to_owned()),
            name: caps["name"].to_owned(),
            qualifier: caps.name("qualifier").map(|m| m.as_str().to_owned()),
        })
    }

    /// The ARN a "not found" names: what was asked for, filled in from the caller.
    fn arn_for(&self, caller: &Caller) -> String {
        let mut arn = function_arn(
            self.region.as_deref().unwrap_or(&caller.region),
            self.account.as_deref().unwrap_or(&caller.account_id),
            &self.name,
        );
        if let Some(q) = &self.qualifier {
            arn.push(':');
            arn.push_str(q);
        }
        arn
    }
}

pub fn function_arn(region: &str, account: &str, name: &str) -> String {
    format!("arn:aws:lambda:{region}:{account}:function:{name}")
}

// ---- the stored function ---------------------------------------------------

/// A function's configuration as stored in `functions.doc`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct StoredFunction {
    region: String,
    runtime: String,
    role: String,
    #[serde(default)]
    handler: Option<String>,
    #[serde(default)]
    description: String,
    timeout: i64,
    memory_size: i64,
    #[serde(default)]
    environment: BTreeMap<String, String>,
    last_modified: String,
    revision_id: String,
    code_size: u64,
    #[serde(default)]
    tags: BTreeMap<String, String>,
    #[serde(default)]
    architectures: Vec<String>,
    #[serde(default)]
    ephemeral_storage: Option<i64>,
}

/// A function read inside a transaction.
struct Loaded {
    row: FunctionRow,
    doc: StoredFunction,
}

impl Loaded {
    fn arn(&self) -> String {
        function_arn(
            &self.doc.region,
            &self.row.account_id,
            &self.row.function_name,
        )
    }

    /// Lambda's `FunctionConfiguration`.
    fn configuration(&self) -> Value {
        let d = &self.doc;
        let mut c = json!({
            "FunctionName": self.row.function_name,
            "FunctionArn": self.arn(),
            "Runtime": d.runtime,
            "Role": d.role,
            "CodeSize": d.code_size,
            "Description": d.description,
            "Timeout": d.timeout,
            "MemorySize": d.memory_size,
            "LastModified": d.last_modified,
            "CodeSha256": self.row.code_sha256,
            "Version": "$LATEST",
            "TracingConfig": {"Mode": "PassThrough"},
            "RevisionId": d.revision_id,
            "State": "Active",
            "LastUpdateStatus": "Successful",
            "PackageType": "Zip",
            "Architectures": if d.architectures.is_empty() { vec!["x86_64".to_owned()] } else { d.architectures.clone() },
            "EphemeralStorage": {"Size": d.ephemeral_storage.unwrap_or(512)},
            "SnapStart": {"ApplyOn": "None", "OptimizationStatus": "Off"},
            "LoggingConfig": {"LogFormat": "Text", "LogGroup": format!("/aws/lambda/{}", self.row.function_name)},
        });
        if let Some(h) = &d.handler {
            c["Handler"] = json!(h);
        }
        if !d.environment.is_empty() {
            c["Environment"] = json!({ "Variables": d.environment });
        }
        c
    }

    fn spec(&self) -> FunctionSpec {
        let d = &self.doc;
        FunctionSpec {
            account_id: self.row.account_id.clone(),
            name: self.row.function_name.clone(),
            region: d.region.clone(),
            arn: self.arn(),
            runtime: d.runtime.clone(),
            handler: d.handler.clone(),
            timeout: Duration::from_secs(u64::try_from(d.timeout).unwrap_or(3)),
            memory_mb: u32::try_from(d.memory_size).unwrap_or(128),
            environment: d.environment.clone(),
            code_sha256: self.row.code_sha256.clone(),
            revision: d.revision_id.clone(),
        }
    }

    fn doc_json(&self) -> ApiResult<String> {
        serde_json::to_string(&self.doc).map_err(service_error)
    }
}

/// Finds the caller's function named by `name` (any form); `$LATEST` only.
async fn load(
    tx: &mut Tx,
    caller: &Caller,
    name: &str,
    qualifier: Option<&str>,
) -> ApiResult<Loaded> {
    let mut f = FunctionRef::parse(name)?;
    if f.qualifier.is_none() {
        f.qualifier = qualifier.map(str::to_owned);
    }
    let missing = || not_found(&f.arn_for(caller));
    // Another account's ARN answers exactly as a missing function does.
    if f.account.as_deref().is_some_and(|a| a != caller.account_id) {
        return Err(missing());
    }
    if f.qualifier.as_deref().is_some_and(|q| q != "$LATEST") {
        return Err(missing());
    }
    let row = functions::get(tx, &caller.account_id, &f.name)
        .await
        .map_err(service_error)?
        .ok_or_else(missing)?;
    let doc: StoredFunction = serde_json::from_str(&row.doc).map_err(service_error)?;
    if f.region.as_deref().is_some_and(|r| r != doc.region) {
        return Err(missing());
    }
    Ok(Loaded { row, doc })
}

fn last_modified() -> String {
    chrono::Utc::now()
        .format("%Y-%m-%dT%H:%M:%S%.3f%z")
        .to_string()
}

fn reply(status: StatusCode, body: &Value) -> Response {
    (
        status,
        [("content-type", "application/json")],
        body.to_string(),
    )
        .into_response()
}

// ---- validation ------------------------------------------------------------

fn check_role(role: &str) -> ApiResult<()> {
    if ROLE.is_match(role) {
        return Ok(());
    }
    Err(constraint(
        role,
        "role",
        &format!("Member must satisfy regular expression pattern: {ROLE_PATTERN}"),
    ))
}

fn check_runtime(runtime: &str) -> ApiResult<()> {
    if !RUNTIMES.contains(&runtime) {
        return Err(constraint(
            runtime,
            "runtime",
            &format!(
                "Member must satisfy enum value set: [{}]",
                RUNTIMES.join(", ")
            ),
        ));
    }
    let supported = runtime.starts_with("provided") || runtime.starts_with("python3.");
    if !supported {
        return Err(invalid_parameter(format!(
            "The runtime parameter of {runtime} is not supported by this function host. \
             Supported runtimes: provided, provided.al2, provided.al2023 and python3.x"
        )));
    }
    Ok(())
}

fn check_handler(handler: &str) -> ApiResult<()> {
    if handler.len() > 128 {
        return Err(constraint(
            handler,
            "handler",
            "Member must have length less than or equal to 128",
        ));
    }
    if handler.chars().any(char::is_whitespace) {
        return Err(constraint(
            handler,
            "handler",
            r"Member must satisfy regular expression pattern: [^\s]+",
        ));
    }
    Ok(())
}

fn check_description(description: &str) -> ApiResult<()> {
    if description.chars().count() > 256 {
        return Err(constraint(
            description,
            "description",
            "Member must have length less than or equal to 256",
        ));
    }
    Ok(())
}

fn check_timeout(timeout: i64) -> ApiResult<()> {
    if timeout < MIN_TIMEOUT {
        return Err(constraint(
            &timeout.to_string(),
            "timeout",
            "Member must have value greater than or equal to 1",
        ));
    }
    if timeout > MAX_TIMEOUT {
        return Err(constraint(
            &timeout.to_string(),
            "timeout",
            "Member must have value less than or equal to 900",
        ));
    }
    Ok(())
}

fn check_memory(memory: i64) -> ApiResult<()> {
    if memory < MIN_MEMORY {
        return Err(constraint(
            &memory.to_string(),
            "memorySize",
            "Member must have value greater than or equal to 128",
        ));
    }
    if memory > MAX_MEMORY {
        return Err(invalid_parameter(format!(
            "'MemorySize' value failed to satisfy constraint: Member must have value less than or equal to {MAX_MEMORY}"
        )));
    }
    Ok(())
}

fn check_environment(vars: &BTreeMap<String, String>) -> ApiResult<()> {
    let reserved: Vec<&str> = vars
        .keys()
        .map(String::as_str)
        .filter(|k| RESERVED_VARIABLES.contains(k))
        .collect();
    if !reserved.is_empty() {
        return Err(invalid_parameter(format!(
            "Lambda was unable to configure your environment variables because the environment variables \
             you have provided contains reserved keys that are currently not supported for modification. \
             Reserved keys used in this request: {}",
            reserved.join(", ")
        )));
    }
    if let Some(bad) = vars.keys().find(|k| !ENV_NAME.is_match(k)) {
        return Err(validation(format!(
            "1 validation error detected: Value at 'environment.variables' failed to satisfy constraint: \
             Map keys must satisfy constraint: [Member must satisfy regular expression pattern: [a-zA-Z]([a-zA-Z0-9_])+] (key '{bad}')"
        )));
    }
    let size = serde_json::to_string(vars).map_or(0, |s| s.len());
    if size > MAX_ENVIRONMENT_BYTES {
        return Err(invalid_parameter(format!(
            "Lambda was unable to configure your environment variables because the environment variables \
             you have provided exceeded the 4KB limit. String measured: {}",
            serde_json::to_string(vars).unwrap_or_default()
        )));
    }
    Ok(())
}

/// Decodes and checks `ZipFile`; S3 and image code are not supported here.
fn zip_file(
    zip: Option<&str>,
    s3_bucket: Option<&str>,
    image: Option<&str>,
) -> ApiResult<(Vec<u8>, apigw_function_host::CodeInfo)> {
    if image.is_some() {
        return Err(invalid_parameter(
            "Container images (ImageUri) are not supported by this function host; upload a .zip with ZipFile",
        ));
    }
    if s3_bucket.is_some() {
        return Err(invalid_parameter(
            "S3 code locations are not supported by this function host; upload the .zip with ZipFile",
        ));
    }
    let zip = zip.ok_or_else(|| invalid_parameter("Please provide a source for function code."))?;
    let bytes = BASE64.decode(zip.trim()).map_err(|_| {
        invalid_content("Could not parse request body into json: ZipFile is not valid base64")
    })?;
    let info = apigw_function_host::inspect(&bytes).map_err(|e| match e {
        HostError::CodeTooLarge(_) => {
            invalid_parameter("Unzipped size must be smaller than 262144000 bytes")
        }
        _ => invalid_parameter(
            "Could not unzip uploaded file. Please check your file, then try to upload again.",
        ),
    })?;
    Ok((bytes, info))
}

// ---- CreateFunction --------------------------------------------------------

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CodeInput {
    zip_file: Option<String>,
    #[serde(rename = "S3Bucket")]
    s3_bucket: Option<String>,
    image_uri: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct EnvironmentInput {
    #[serde(default)]
    variables: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct EphemeralStorageInput {
    size: i64,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CreateInput {
    function_name: Option<String>,
    runtime: Option<String>,
    role: Option<String>,
    handler: Option<String>,
    code: Option<CodeInput>,
    description: Option<String>,
    timeout: Option<i64>,
    memory_size: Option<i64>,
    package_type: Option<String>,
    environment: Option<EnvironmentInput>,
    #[serde(default)]
    tags: BTreeMap<String, String>,
    architectures: Option<Vec<String>>,
    ephemeral_storage: Option<EphemeralStorageInput>,
}

fn check_architectures(archs: &[String]) -> ApiResult<()> {
    match archs {
        [a] if a == "x86_64" || a == "arm64" => Ok(()),
        _ => Err(constraint(
            &format!("[{}]", archs.join(", ")),
            "architectures",
            "Member must have length less than or equal to 1, Member must satisfy enum value set: [x86_64, arm64]",
        )),
    }
}

async fn create(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    bytes: Bytes,
) -> ApiResult<Response> {
    let input: CreateInput = body(&bytes)?;
    let given = input
        .function_name
        .ok_or_else(|| validation("1 validation error detected: Value null at 'functionName' failed to satisfy constraint: Member must not be null"))?;
    let f = FunctionRef::parse(&given)?;
    if !CREATE_NAME.is_match(&f.name) || f.qualifier.is_some() {
        return Err(constraint(
            &given,
            "functionName",
            r"Member must satisfy regular expression pattern: (arn:(aws[a-zA-Z-]*)?:lambda:)?([a-z]{2}(-gov)?-[a-z]+-\d{1}:)?(\d{12}:)?(function:)?([a-zA-Z0-9-_]+)",
        ));
    }
    if f.account.as_deref().is_some_and(|a| a != caller.account_id) {
        return Err(LambdaError::new(
            StatusCode::FORBIDDEN,
            "AccessDeniedException",
            format!("The account of {given} is not the caller's account"),
        )
        .into());
    }
    let role = input
        .role
        .ok_or_else(|| validation("1 validation error detected: Value null at 'role' failed to satisfy constraint: Member must not be null"))?;
    check_role(&role)?;
    if let Some(p) = input.package_type.as_deref() {
        match p {
            "Zip" => {}
            "Image" => {
                return Err(invalid_parameter(
                    "PackageType Image is not supported by this function host",
                ));
            }
            other => {
                return Err(constraint(
                    other,
                    "packageType",
                    "Member must satisfy enum value set: [Zip, Image]",
                ));
            }
        }
    }
    let (Some(runtime), Some(handler)) = (input.runtime, input.handler) else {
        return Err(invalid_parameter(
            "Runtime and Handler are mandatory parameters for functions created with deployment packages.",
        ));
    };
    check_runtime(&runtime)?;
    check_handler(&handler)?;
    let description = input.description.unwrap_or_default();
    check_description(&description)?;
    let timeout = input.timeout.unwrap_or(DEFAULT_TIMEOUT);
    check_timeout(timeout)?;
    let memory_size = input.memory_size.unwrap_or(DEFAULT_MEMORY);
    check_memory(memory_size)?;
    let environment = input
        .environment
        .and_then(|e| e.variables)
        .unwrap_or_default();
    check_environment(&environment)?;
    let architectures = input.architectures.unwrap_or_default();
    if !architectures.is_empty() {
        check_architectures(&architectures)?;
    }
    let code = input.code.ok_or_else(|| {
        validation("1 validation error detected: Value null at 'code' failed to satisfy constraint: Member must not be null")
    })?;
    let (zip, info) = zip_file(
        code.zip_file.as_deref(),
        code.s3_bucket.as_deref(),
        code.image_uri.as_deref(),
    )?;
    let region = f.region.clone().unwrap_or_else(|| caller.region.clone());
    let loaded = Loaded {
        row: FunctionRow {
            account_id: caller.account_id.clone(),
            function_name: f.name.clone(),
            created_at: now_epoch(),
            version: 1,
            doc: String::new(),
            code_sha256: info.sha256,
        },
        doc: StoredFunction {
            region,
            runtime,
            role,
            handler: Some(handler),
            description,
            timeout,
            memory_size,
            environment,
            last_modified: last_modified(),
            revision_id: uuid::Uuid::new_v4().to_string(),
            code_size: info.size,
            tags: input.tags,
            architectures,
            ephemeral_storage: input.ephemeral_storage.map(|e| e.size),
        },
    };
    let exists = || conflict(format!("Function already exist: {}", f.name));
    let mut tx = state.store.begin().await.map_err(service_error)?;
    if functions::get(&mut tx, &caller.account_id, &f.name)
        .await
        .map_err(service_error)?
        .is_some()
    {
        return Err(exists());
    }
    let row = FunctionRow {
        doc: loaded.doc_json()?,
        ..loaded.row.clone()
    };
    functions::insert(&mut tx, &row, &zip)
        .await
        .map_err(|e| match e {
            // A concurrent CreateFunction of the same name won the race.
            StoreError::Database(db)
                if db
                    .as_database_error()
                    .is_some_and(|d| d.is_unique_violation()) =>
            {
                exists()
            }
            other => service_error(other),
        })?;
    tx.commit().await.map_err(service_error)?;
    Ok(reply(StatusCode::CREATED, &loaded.configuration()))
}

// ---- reads -----------------------------------------------------------------

#[derive(Debug, Default, Deserialize)]
struct QualifierQuery {
    #[serde(rename = "Qualifier")]
    qualifier: Option<String>,
}

async fn get_function(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
    Query(query): Query<QualifierQuery>,
) -> ApiResult<Response> {
    let mut tx = state.store.begin().await.map_err(service_error)?;
    let f = load(&mut tx, &caller, &name, query.qualifier.as_deref()).await?;
    let mut out = json!({
        "Configuration": f.configuration(),
        // The zip is not downloadable from this host (there is no S3).
        "Code": {"RepositoryType": "S3"},
    });
    if !f.doc.tags.is_empty() {
        out["Tags"] = json!(f.doc.tags);
    }
    Ok(reply(StatusCode::OK, &out))
}

async fn get_configuration(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
    Query(query): Query<QualifierQuery>,
) -> ApiResult<Response> {
    let mut tx = state.store.begin().await.map_err(service_error)?;
    let f = load(&mut tx, &caller, &name, query.qualifier.as_deref()).await?;
    Ok(reply(StatusCode::OK, &f.configuration()))
}

#[derive(Debug, Default, Deserialize)]
struct ListQuery {
    #[serde(rename = "Marker")]
    marker: Option<String>,
    #[serde(rename = "MaxItems")]
    max_items: Option<String>,
}

async fn list(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Query(query): Query<ListQuery>,
) -> ApiResult<Response> {
    let limit = match query.max_items.as_deref() {
        None => PAGE_MAX,
        Some(v) => {
            let n: i64 = v
                .parse()
                .map_err(|_| invalid_parameter(format!("Invalid MaxItems value: {v}")))?;
            if !(1..=10_000).contains(&n) {
                return Err(constraint(
                    v,
                    "maxItems",
                    if n < 1 {
                        "Member must have value greater than or equal to 1"
                    } else {
                        "Member must have value less than or equal to 10000"
                    },
                ));
            }
            n.min(PAGE_MAX)
        }
    };
    // The marker is opaque to clients: the last name returned, encoded.
    let after = match query.marker.as_deref().filter(|m| !m.is_empty()) {
        None => None,
        Some(m) => Some(
            URL_SAFE_NO_PAD
                .decode(m)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(|| invalid_parameter(format!("Invalid Marker: {m}")))?,
        ),
    };
    let mut tx = state.store.begin().await.map_err(service_error)?;
    let rows = functions::list(&mut tx, &caller.account_id, after.as_deref(), limit + 1)
        .await
        .map_err(service_error)?;
    let more = rows.len() as i64 > limit;
    let mut items = Vec::new();
    let mut last = None;
    for row in rows.into_iter().take(limit as usize) {
        let doc: StoredFunction = serde_json::from_str(&row.doc).map_err(service_error)?;
        last = Some(row.function_name.clone());
        items.push(Loaded { row, doc }.configuration());
    }
    let mut out = json!({ "Functions": items });
    if more && let Some(last) = last {
        out["NextMarker"] = json!(URL_SAFE_NO_PAD.encode(last));
    }
    Ok(reply(StatusCode::OK, &out))
}

// ---- updates ---------------------------------------------------------------

fn check_revision(f: &Loaded, revision: Option<&str>) -> ApiResult<()> {
    match revision {
        Some(r) if r != f.doc.revision_id => Err(LambdaError::new(
            StatusCode::PRECONDITION_FAILED,
            "PreconditionFailedException",
            "The Revision Id provided does not match the latest Revision Id. Call the GetFunction/GetAlias API to retrieve the latest Revision Id",
        )
        .into()),
        _ => Ok(()),
    }
}

fn touched(doc: &mut StoredFunction) {
    doc.last_modified = last_modified();
    doc.revision_id = uuid::Uuid::new_v4().to_string();
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct UpdateCodeInput {
    zip_file: Option<String>,
    #[serde(rename = "S3Bucket")]
    s3_bucket: Option<String>,
    image_uri: Option<String>,
    #[serde(default)]
    dry_run: bool,
    revision_id: Option<String>,
    architectures: Option<Vec<String>>,
}

async fn update_code(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
    bytes: Bytes,
) -> ApiResult<Response> {
    let input: UpdateCodeInput = body(&bytes)?;
    let (zip, info) = zip_file(
        input.zip_file.as_deref(),
        input.s3_bucket.as_deref(),
        input.image_uri.as_deref(),
    )?;
    if let Some(a) = &input.architectures {
        check_architectures(a)?;
    }
    let mut tx = state.store.begin().await.map_err(service_error)?;
    let mut f = load(&mut tx, &caller, &name, None).await?;
    check_revision(&f, input.revision_id.as_deref())?;
    f.row.code_sha256 = info.sha256;
    f.doc.code_size = info.size;
    if let Some(a) = input.architectures {
        f.doc.architectures = a;
    }
    touched(&mut f.doc);
    if input.dry_run {
        return Ok(reply(StatusCode::OK, &f.configuration()));
    }
    let arn = f.arn();
    functions::update_code(
        &mut tx,
        &f.row.account_id,
        &f.row.function_name,
        f.row.version,
        &f.doc_json()?,
        &f.row.code_sha256,
        &zip,
    )
    .await
    .map_err(store_error(&arn))?;
    tx.commit().await.map_err(service_error)?;
    Ok(reply(StatusCode::OK, &f.configuration()))
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct UpdateConfigInput {
    role: Option<String>,
    handler: Option<String>,
    description: Option<String>,
    timeout: Option<i64>,
    memory_size: Option<i64>,
    environment: Option<EnvironmentInput>,
    runtime: Option<String>,
    revision_id: Option<String>,
    ephemeral_storage: Option<EphemeralStorageInput>,
}

async fn update_configuration(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
    bytes: Bytes,
) -> ApiResult<Response> {
    let input: UpdateConfigInput = body(&bytes)?;
    if let Some(r) = &input.role {
        check_role(r)?;
    }
    if let Some(h) = &input.handler {
        check_handler(h)?;
    }
    if let Some(d) = &input.description {
        check_description(d)?;
    }
    if let Some(t) = input.timeout {
        check_timeout(t)?;
    }
    if let Some(m) = input.memory_size {
        check_memory(m)?;
    }
    if let Some(r) = &input.runtime {
        check_runtime(r)?;
    }
    let environment = input.environment.map(|e| e.variables.unwrap_or_default());
    if let Some(vars) = &environment {
        check_environment(vars)?;
    }
    let mut tx = state.store.begin().await.map_err(service_error)?;
    let mut f = load(&mut tx, &caller, &name, None).await?;
    check_revision(&f, input.revision_id.as_deref())?;
    let d = &mut f.doc;
    if let Some(v) = input.role {
        d.role = v;
    }
    if let Some(v) = input.handler {
        d.handler = Some(v);
    }
    if let Some(v) = input.description {
        d.description = v;
    }
    if let Some(v) = input.timeout {
        d.timeout = v;
    }
    if let Some(v) = input.memory_size {
        d.memory_size = v;
    }
    if let Some(v) = input.runtime {
        d.runtime = v;
    }
    if let Some(v) = environment {
        d.environment = v;
    }
    if let Some(v) = input.ephemeral_storage {
        d.ephemeral_storage = Some(v.size);
    }
    touched(d);
    let arn = f.arn();
    functions::update_doc(
        &mut tx,
        &f.row.account_id,
        &f.row.function_name,
        f.row.version,
        &f.doc_json()?,
    )
    .await
    .map_err(store_error(&arn))?;
    tx.commit().await.map_err(service_error)?;
    Ok(reply(StatusCode::OK, &f.configuration()))
}

async fn delete(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Extension(host): Extension<FunctionHost>,
    Path(name): Path<String>,
    Query(query): Query<QualifierQuery>,
) -> ApiResult<Response> {
    let mut tx = state.store.begin().await.map_err(service_error)?;
    let f = load(&mut tx, &caller, &name, query.qualifier.as_deref()).await?;
    functions::delete(&mut tx, &f.row.account_id, &f.row.function_name)
        .await
        .map_err(service_error)?;
    tx.commit().await.map_err(service_error)?;
    host.remove(&f.row.account_id, &f.row.function_name);
    Ok(StatusCode::NO_CONTENT.into_response())
}

// ---- Invoke ----------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum InvocationType {
    RequestResponse,
    Event,
    DryRun,
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Reads the caller's function (and, with `install`, puts its code on this
/// host if missing), then lets go of the database before anything runs.
async fn ready_spec(
    state: &AppState,
    caller: &Caller,
    host: &FunctionHost,
    name: &str,
    qualifier: Option<&str>,
    install: bool,
) -> ApiResult<FunctionSpec> {
    let mut tx = state.store.begin().await.map_err(service_error)?;
    let f = load(&mut tx, caller, name, qualifier).await?;
    let spec = f.spec();
    if install && !host.is_installed(&spec.account_id, &spec.code_sha256) {
        let zip = functions::get_code(&mut tx, &spec.account_id, &spec.name, &spec.code_sha256)
            .await
            .map_err(service_error)?
            .ok_or_else(|| not_found(&spec.arn))?;
        drop(tx);
        host.install(&spec.account_id, &spec.code_sha256, Bytes::from(zip))
            .await
            .map_err(service_error)?;
    }
    Ok(spec)
}

/// Runs the caller's own function `arn` synchronously on this host, as a
/// RequestResponse Invoke would (TestInvokeAuthorizer's call). `Err`: why no
/// function answer came back (missing function, host refusal, `timeout`).
pub(crate) async fn invoke_own(
    state: &AppState,
    caller: &Caller,
    host: &FunctionHost,
    arn: &str,
    payload: Bytes,
    timeout: Duration,
) -> Result<apigw_function_host::InvokeOutput, String> {
    // `load` answers another account's ARN as a missing function.
    let spec = ready_spec(state, caller, host, arn, None, true)
        .await
        .map_err(|e| e.to_string())?;
    let request = InvokeRequest {
        payload,
        tail_log: false,
        client_context: None,
    };
    tokio::time::timeout(timeout, host.invoke(&spec, request))
        .await
        .map_err(|_| format!("timed out after {timeout:?}"))?
        .map_err(|e| e.to_string())
}

async fn invoke(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Extension(host): Extension<FunctionHost>,
    Path(name): Path<String>,
    Query(query): Query<QualifierQuery>,
    headers: HeaderMap,
    payload: Bytes,
) -> ApiResult<Response> {
    let kind = match header(&headers, "x-amz-invocation-type") {
        None | Some("RequestResponse") => InvocationType::RequestResponse,
        Some("Event") => InvocationType::Event,
        Some("DryRun") => InvocationType::DryRun,
        Some(other) => {
            return Err(constraint(
                other,
                "invocationType",
                "Member must satisfy enum value set: [Event, RequestResponse, DryRun]",
            ));
        }
    };
    let tail_log = match header(&headers, "x-amz-log-type") {
        None | Some("None") => false,
        Some("Tail") => true,
        Some(other) => {
            return Err(constraint(
                other,
                "logType",
                "Member must satisfy enum value set: [None, Tail]",
            ));
        }
    };
    let client_context = match header(&headers, "x-amz-client-context") {
        None => None,
        Some(cc) if cc.len() > MAX_CLIENT_CONTEXT_BYTES => {
            return Err(invalid_content(format!(
                "Client context must be smaller than {MAX_CLIENT_CONTEXT_BYTES} bytes"
            )));
        }
        Some(cc) => Some(
            BASE64
                .decode(cc)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .filter(|s| serde_json::from_str::<Value>(s).is_ok())
                .ok_or_else(|| {
                    invalid_content("Client context must be a valid Base64-encoded JSON object.")
                })?,
        ),
    };
    let limit = match kind {
        InvocationType::Event => apigw_function_host::MAX_ASYNC_PAYLOAD_BYTES,
        _ => apigw_function_host::MAX_SYNC_PAYLOAD_BYTES,
    };
    if payload.len() > limit {
        return Err(LambdaError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "RequestTooLargeException",
            format!("Request must be smaller than {limit} bytes for the InvokeFunction operation"),
        )
        .into());
    }
    // An empty payload is the empty object, as on Lambda; anything else must be JSON.
    let payload = if payload.iter().all(u8::is_ascii_whitespace) {
        Bytes::from_static(b"{}")
    } else {
        if let Err(e) = serde_json::from_slice::<serde::de::IgnoredAny>(&payload) {
            return Err(invalid_content(format!(
                "Could not parse request body into json: Could not parse payload into json: {e}"
            )));
        }
        payload
    };

    let spec = ready_spec(
        &state,
        &caller,
        &host,
        &name,
        query.qualifier.as_deref(),
        kind != InvocationType::DryRun,
    )
    .await?;
    let request = InvokeRequest {
        payload,
        tail_log,
        client_context,
    };
    match kind {
        InvocationType::DryRun => Ok(StatusCode::NO_CONTENT.into_response()),
        InvocationType::Event => {
            host.invoke_event(spec, request);
            Ok(StatusCode::ACCEPTED.into_response())
        }
        InvocationType::RequestResponse => {
            let out = host.invoke(&spec, request).await.map_err(|e| match e {
                HostError::TooManyRequests => {
                    let mut e = LambdaError::new(
                        StatusCode::TOO_MANY_REQUESTS,
                        "TooManyRequestsException",
                        "Rate Exceeded.",
                    );
                    e.reason = Some("ReservedFunctionConcurrentInvocationLimitExceeded");
                    e.into()
                }
                other => service_error(other),
            })?;
            let mut response = (StatusCode::OK, out.payload).into_response();
            let h = response.headers_mut();
            h.insert("content-type", HeaderValue::from_static("application/json"));
            h.insert(
                "x-amz-executed-version",
                HeaderValue::from_static("$LATEST"),
            );
            if out.function_error {
                h.insert(
                    "x-amz-function-error",
                    HeaderValue::from_static("Unhandled"),
                );
            }
            if let Some(log) = out.log_result.and_then(|l| HeaderValue::from_str(&l).ok()) {
                h.insert("x-amz-log-result", log);
            }
            Ok(response)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn function_names_in_every_form() {
        let f = FunctionRef::parse("my-fn").unwrap();
        assert_eq!(
            (f.region, f.account, f.name.as_str(), f.qualifier),
            (None, None, "my-fn", None)
        );
        let f = FunctionRef::parse("my-fn:$LATEST").unwrap();
        assert_eq!(f.qualifier.as_deref(), Some("$LATEST"));
        let f = FunctionRef::parse("123456789012:function:my-fn").unwrap();
        assert_eq!(f.account.as_deref(), Some("123456789012"));
        assert_eq!(f.region, None);
        let f = FunctionRef::parse("arn:aws:lambda:eu-west-1:123456789012:function:my-fn:prod")
            .unwrap();
        assert_eq!(f.region.as_deref(), Some("eu-west-1"));
        assert_eq!(f.account.as_deref(), Some("123456789012"));
        assert_eq!(f.name, "my-fn");
        assert_eq!(f.qualifier.as_deref(), Some("prod"));
        for bad in ["", "a b", "arn:aws:lambda:eu-west-1:12:function:x", "x/y"] {
            assert!(FunctionRef::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn environment_rules() {
        let ok = BTreeMap::from([("GREETING".to_string(), "hi".to_string())]);
        assert!(check_environment(&ok).is_ok());
        let reserved = BTreeMap::from([("AWS_REGION".to_string(), "x".to_string())]);
        let e = check_environment(&reserved).unwrap_err().to_string();
        assert!(
            e.ends_with("Reserved keys used in this request: AWS_REGION"),
            "{e}"
        );
        let big = BTreeMap::from([("BIG".to_string(), "x".repeat(5000))]);
        assert!(
            check_environment(&big)
                .unwrap_err()
                .to_string()
                .contains("exceeded the 4KB limit")
        );
        let bad = BTreeMap::from([("1X".to_string(), "x".to_string())]);
        assert!(check_environment(&bad).is_err());
    }

    #[test]
    fn limits() {
        assert!(check_timeout(1).is_ok() && check_timeout(900).is_ok());
        assert!(check_timeout(0).is_err() && check_timeout(901).is_err());
        assert!(check_memory(128).is_ok() && check_memory(10_240).is_ok());
        assert!(check_memory(127).is_err() && check_memory(10_241).is_err());
        assert!(check_runtime("python3.12").is_ok() && check_runtime("provided.al2023").is_ok());
        assert!(check_runtime("nodejs20.x").is_err() && check_runtime("cobol").is_err());
        assert!(check_role("arn:aws:iam::123456789012:role/lambda-role").is_ok());
        assert!(check_role("not-a-role").is_err());
    }
}
