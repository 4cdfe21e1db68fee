//! The parsed form of a template. Immutable after parsing (so `Template` is `Send + Sync`);
//! render-time values are built from it per render.

use std::sync::Arc;

pub(crate) type Block = Vec<Node>;

#[derive(Debug)]
pub(crate) enum Node {
    Text(Box<str>),
    Ref(Reference),
    /// `\$x`, `\\$x`…: Velocity decides what to print only at render time (it depends on
    /// whether `$x` has a value).
    EscapedRef {
        backslashes: usize,
        reference: Reference,
    },
    Set {
        target: Reference,
        value: Expr,
    },
    If {
        branches: Vec<(Expr, Block)>,
        otherwise: Option<Block>,
    },
    Foreach {
        var: Box<str>,
        iterable: Expr,
        body: Block,
    },
    Break,
    Stop,
}

#[derive(Debug)]
pub(crate) struct Reference {
    pub root: Box<str>,
    pub quiet: bool,
    pub parts: Vec<Accessor>,
    /// The reference exactly as written: what Velocity prints when it has no value.
    pub source: Box<str>,
    /// Byte offset of the `$` in the template (for error positions).
    pub pos: usize,
}

#[derive(Debug)]
pub(crate) enum Accessor {
    Property(Box<str>),
    Method {
        name: Box<str>,
        args: Vec<Expr>,
        pos: usize,
    },
    Index {
        index: Expr,
        pos: usize,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BinOp {
    Or,
    And,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Add,
    Sub,
    Mul,
    Div,
    Mod,
}

#[derive(Debug)]
pub(crate) enum Expr {
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(Arc<str>),
    /// A double-quoted string containing references or directives.
    Interpolated(Block),
    List(Vec<Expr>),
    Range(Box<Expr>, Box<Expr>),
    Map(Vec<(Expr, Expr)>),
    Ref(Reference),
    Not(Box<Expr>),
    Neg(Box<Expr>),
    Binary(BinOp, Box<Expr>, Box<Expr>),
}
