//! The body type every answer of the proxy carries: either bytes we made
//! (gateway responses, mock bodies) or a backend's body streamed through.

use std::pin::Pin;
use std::task::{Context, Poll};

use apigw_http1_client::ResponseBody;
use bytes::Bytes;
use http_body::{Frame, SizeHint};

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A response body. An enum of the two kinds there are, not a boxed trait
/// object: no allocation and no dynamic call per answer.
#[derive(Debug)]
pub enum Body {
    /// Bytes we made; `None` once sent, or when empty.
    Full(Option<Bytes>),
    /// A backend's answer, read from its connection as it is sent on.
    Backend(ResponseBody),
}

pub fn full(bytes: impl Into<Bytes>) -> Body {
    let bytes = bytes.into();
    Body::Full((!bytes.is_empty()).then_some(bytes))
}

pub fn empty() -> Body {
    Body::Full(None)
}

impl From<ResponseBody> for Body {
    fn from(body: ResponseBody) -> Self {
        Self::Backend(body)
    }
}

impl http_body::Body for Body {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.get_mut() {
            Self::Full(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
            Self::Backend(body) => Pin::new(body)
                .poll_frame(cx)
                .map(|frame| frame.map(|f| f.map_err(Into::into))),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Self::Full(bytes) => bytes.is_none(),
            Self::Backend(body) => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Self::Full(bytes) => SizeHint::with_exact(bytes.as_ref().map_or(0, |b| b.len() as u64)),
            Self::Backend(body) => body.size_hint(),
        }
    }
}

#[cfg(test)]
mod tests {
    use http_body::Body as _;
    use http_body_util::BodyExt;

    use super::*;

    #[tokio::test]
    async fn full_bodies_say_their_size_and_end() {
        let body = full("hello");
        assert_eq!(body.size_hint().exact(), Some(5));
        assert!(!body.is_end_stream());
        assert_eq!(body.collect().await.unwrap().to_bytes(), "hello");
        for empty in [empty(), full("")] {
            assert!(empty.is_end_stream());
            assert_eq!(empty.size_hint().exact(), Some(0));
            assert!(empty.collect().await.unwrap().to_bytes().is_empty());
        }
    }
}
