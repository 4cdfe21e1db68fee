//! Binary payloads (reference §5.2): the API's `binaryMediaTypes` decide
//! whether a request body (by `Content-Type`) or an answer (by `Accept`) is
//! binary, and `contentHandling` on an integration (request side) or an
//! integration response converts between bytes and base64 text.
//!
//! The media-type matching lives in [`BinaryMediaTypes`] (shared with the
//! Lambda proxy events, which base64-encode binary bodies).

use apigw_proto::gateway_response::ResponseType;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use serde_json::Value;

use crate::gateway_response::GatewayError;
pub use crate::integration::proxy_event::BinaryMediaTypes;

/// `contentHandling`; unset passes the payload through as it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ContentHandling {
    #[default]
    Passthrough,
    ConvertToText,
    ConvertToBinary,
}

impl ContentHandling {
    pub fn parse(value: Option<&Value>) -> Result<Self, String> {
        match value.and_then(Value::as_str) {
            None => Ok(Self::Passthrough),
            Some("CONVERT_TO_TEXT") => Ok(Self::ConvertToText),
            Some("CONVERT_TO_BINARY") => Ok(Self::ConvertToBinary),
            Some(other) => Err(format!("invalid contentHandling {other:?}")),
        }
    }
}

/// A request body after `contentHandling`, and whether a mapping template
/// may apply to it (AWS applies templates to text only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Converted {
    pub body: Bytes,
    pub templatable: bool,
}

/// Converts a payload: binary + CONVERT_TO_TEXT → base64 text; text +
/// CONVERT_TO_BINARY → decoded bytes (not base64: 500
/// `API_CONFIGURATION_ERROR`, as AWS); anything else unchanged. Binary
/// stays binary and is never templated.
pub fn convert(
    body: Bytes,
    is_binary: bool,
    handling: ContentHandling,
) -> Result<Converted, GatewayError> {
    Ok(match (is_binary, handling) {
        (true, ContentHandling::ConvertToText) => Converted {
            body: Bytes::from(STANDARD.encode(&body)),
            templatable: true,
        },
        (true, _) => Converted {
            body,
            templatable: false,
        },
        (false, ContentHandling::ConvertToBinary) => Converted {
            body: decode(&body)?,
            templatable: false,
        },
        (false, _) => Converted {
            body,
            templatable: true,
        },
    })
}

/// Converts an integration's answer for the caller: CONVERT_TO_TEXT
/// base64-encodes, CONVERT_TO_BINARY decodes base64; unset passes through.
pub fn convert_response(body: Bytes, handling: ContentHandling) -> Result<Bytes, GatewayError> {
    match handling {
        ContentHandling::Passthrough => Ok(body),
        ContentHandling::ConvertToText => Ok(Bytes::from(STANDARD.encode(&body))),
        ContentHandling::ConvertToBinary => decode(&body),
    }
}

fn decode(body: &[u8]) -> Result<Bytes, GatewayError> {
    let trimmed = body.trim_ascii();
    STANDARD.decode(trimmed).map(Bytes::from).map_err(|e| {
        tracing::warn!(error = %e, "Execution failed: payload is not valid base64 for CONVERT_TO_BINARY");
        GatewayError::new(ResponseType::ApiConfigurationError)
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn parses_content_handling() {
        assert_eq!(
            ContentHandling::parse(None),
            Ok(ContentHandling::Passthrough)
        );
        assert_eq!(
            ContentHandling::parse(Some(&json!("CONVERT_TO_TEXT"))),
            Ok(ContentHandling::ConvertToText)
        );
        assert_eq!(
            ContentHandling::parse(Some(&json!("CONVERT_TO_BINARY"))),
            Ok(ContentHandling::ConvertToBinary)
        );
        assert!(ContentHandling::parse(Some(&json!("TO_TEXT"))).is_err());
    }

    #[test]
    fn converts_request_bodies() {
        let raw = Bytes::from_static(&[0xff, 0x00, 0x10]);
        let text = convert(raw.clone(), true, ContentHandling::ConvertToText).unwrap();
        assert_eq!(text.body.as_ref(), b"/wAQ");
        assert!(text.templatable);
        let kept = convert(raw.clone(), true, ContentHandling::Passthrough).unwrap();
        assert_eq!(kept.body, raw);
        assert!(!kept.templatable);
        let decoded = convert(
            Bytes::from_static(b"/wAQ\n"),
            false,
            ContentHandling::ConvertToBinary,
        )
        .unwrap();
        assert_eq!(decoded.body, raw);
        assert!(!decoded.templatable);
        let err = convert(
            Bytes::from_static(b"%%%"),
            false,
            ContentHandling::ConvertToBinary,
        )
        .unwrap_err();
        assert_eq!(err.kind, ResponseType::ApiConfigurationError);
        let plain = convert(
            Bytes::from_static(b"{}"),
            false,
            ContentHandling::Passthrough,
        )
        .unwrap();
        assert!(plain.templatable);
    }

    #[test]
    fn converts_responses() {
        assert_eq!(
            convert_response(Bytes::from_static(b"hi"), ContentHandling::ConvertToText).unwrap(),
            Bytes::from_static(b"aGk=")
        );
        assert_eq!(
            convert_response(
                Bytes::from_static(b"aGk="),
                ContentHandling::ConvertToBinary
            )
            .unwrap(),
            Bytes::from_static(b"hi")
        );
        assert!(
            convert_response(Bytes::from_static(b"!"), ContentHandling::ConvertToBinary).is_err()
        );
    }
}
