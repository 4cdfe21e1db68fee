//! An Apache Velocity 1.7 template engine for API Gateway mapping templates.
//!
//! Parse once, render many:
//!
//! ```
//! use apigw_vtl::{Context, Limits, Template, Value};
//!
//! let t = Template::parse("#foreach($p in $pets)$p#if($foreach.hasNext), #end#end").unwrap();
//! let mut ctx = Context::new();
//! ctx.insert("pets", Value::list(vec![Value::string("dog"), Value::string("cat")]));
//! assert_eq!(t.render(&mut ctx, &Limits::default()).unwrap(), "dog, cat");
//! ```
//!
//! [`aws`] builds API Gateway's `$input`, `$context`, `$stageVariables` and `$util`.

mod ast;
pub mod aws;
mod error;
mod json;
mod methods;
mod parser;
mod render;
mod value;

use std::sync::Arc;

pub use error::{ParseError, RenderError};
pub use json::{from_serde, parse_json};
pub use render::{Context, Limits, NullMode};
pub use value::{Hasher, HostObject, List, ListStyle, Map, MapEntries, Value};

/// A parsed template. Immutable, `Send + Sync`: share one across threads and render it
/// concurrently, each render with its own [`Context`].
#[derive(Debug)]
pub struct Template {
    src: Arc<str>,
    block: ast::Block,
}

impl Template {
    /// Parses a template; errors name the line and column.
    pub fn parse(src: &str) -> Result<Template, ParseError> {
        let block = parser::parse(src)?;
        Ok(Template {
            src: Arc::from(src),
            block,
        })
    }

    pub fn source(&self) -> &str {
        &self.src
    }

    /// Renders with plain Velocity 1.7 semantics. Variables the template sets with `#set`
    /// remain in `ctx` afterwards.
    pub fn render(&self, ctx: &mut Context, limits: &Limits) -> Result<String, RenderError> {
        self.render_with(ctx, limits, NullMode::Velocity)
    }

    /// Renders with a chosen treatment of references that have no value.
    pub fn render_with(
        &self,
        ctx: &mut Context,
        limits: &Limits,
        null_mode: NullMode,
    ) -> Result<String, RenderError> {
        render::render(&self.src, &self.block, ctx, limits, null_mode)
    }
}
