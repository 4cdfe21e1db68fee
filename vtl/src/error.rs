use thiserror::Error;

/// A template that cannot be parsed. `line` and `column` are 1-based; the column counts
/// characters, not bytes.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{message} at line {line}, column {column}")]
pub struct ParseError {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl ParseError {
    pub(crate) fn at(src: &str, offset: usize, message: String) -> Self {
        let (line, column) = line_col(src, offset);
        ParseError {
            line,
            column,
            message,
        }
    }
}

/// 1-based line and column (in characters) of a byte offset.
pub(crate) fn line_col(src: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(src.len());
    while !src.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &src[..offset];
    let line = before.bytes().filter(|&b| b == b'\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

/// Why a render failed. Rendering never panics; every failure is one of these.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RenderError {
    #[error("output exceeds the limit of {limit} bytes")]
    OutputTooLarge { limit: usize },
    #[error("template exceeded the limit of {limit} evaluation steps")]
    TooManySteps { limit: u64 },
    #[error("values nested deeper than {limit} levels")]
    TooDeep { limit: usize },
    /// A method threw, as Java's `MethodInvocationException` does (e.g. `substring` out of range).
    #[error("invocation of method '{method}' failed at line {line}, column {column}: {message}")]
    Method {
        method: String,
        message: String,
        line: usize,
        column: usize,
    },
    /// The embedder's objects or the AWS layer refused something (e.g. an invalid override).
    #[error("{0}")]
    Host(String),
}
