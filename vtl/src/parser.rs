//! Hand-written parser for the Velocity 1.7 template language.
//!
//! Whitespace rules follow Velocity 1.7 (checked against Apache Velocity 1.7 itself): a
//! directive (`#set`, `#if`, `#elseif`, `#else`, `#end`, `#foreach`, `#break`, `#stop`)
//! followed only by spaces/tabs up to the end of its line swallows those and the newline;
//! the indentation before a directive is kept. `##` comments swallow their newline, `#* *#`
//! comments do not.

use std::sync::Arc;

use crate::ast::{Accessor, BinOp, Block, Expr, Node, Reference};
use crate::error::ParseError;

/// A parse error before its line and column are worked out (only the one that reaches the
/// caller needs them; the parser discards many while backtracking).
pub(crate) struct PErr {
    offset: usize,
    msg: String,
}

/// Deep nesting is refused rather than risking the stack on hostile input.
const MAX_NESTING: usize = 200;

pub(crate) fn parse(src: &str) -> Result<Block, ParseError> {
    parse_inner(src).map_err(|e| ParseError::at(src, e.offset, e.msg))
}

fn parse_inner(src: &str) -> Result<Block, PErr> {
    let mut p = Parser {
        src,
        base: 0,
        pos: 0,
        depth: 0,
    };
    let (block, term) = p.block()?;
    match term {
        Terminator::Eof => Ok(block),
        Terminator::End(at) => Err(p.err_at(at, "#end without a matching #if or #foreach")),
        Terminator::Else(at) => Err(p.err_at(at, "#else without a matching #if")),
        Terminator::ElseIf(_, at) => Err(p.err_at(at, "#elseif without a matching #if")),
    }
}

enum Terminator {
    Eof,
    End(usize),
    Else(usize),
    ElseIf(Expr, usize),
}

struct Parser<'a> {
    /// The text being parsed: the template, or the inside of a double-quoted string.
    src: &'a str,
    /// Offset of `src` within `full`.
    base: usize,
    pos: usize,
    depth: usize,
}

fn is_ident_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_'
}

// Velocity 1.x identifiers may contain `-` (so `$a-b` is one reference).
fn is_ident_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b'-'
}

const DIRECTIVES: [&str; 8] = [
    "set", "if", "elseif", "else", "end", "foreach", "break", "stop",
];

impl<'a> Parser<'a> {
    fn bytes(&self) -> &'a [u8] {
        self.src.as_bytes()
    }

    fn peek(&self) -> Option<u8> {
        self.bytes().get(self.pos).copied()
    }

    fn peek_at(&self, off: usize) -> Option<u8> {
        self.bytes().get(self.pos + off).copied()
    }

    fn abs(&self, pos: usize) -> usize {
        self.base + pos
    }

    fn err_at(&self, pos: usize, msg: impl Into<String>) -> PErr {
        PErr {
            offset: self.abs(pos),
            msg: msg.into(),
        }
    }

    fn err(&self, msg: impl Into<String>) -> PErr {
        self.err_at(self.pos, msg)
    }

    fn enter(&mut self) -> Result<(), PErr> {
        self.depth += 1;
        if self.depth > MAX_NESTING {
            return Err(self.err(format!("nesting deeper than {MAX_NESTING} levels")));
        }
        Ok(())
    }

    fn leave(&mut self) {
        self.depth -= 1;
    }

    /// Parses text and directives until EOF or a block terminator (`#end`, `#else`, `#elseif`).
    fn block(&mut self) -> Result<(Block, Terminator), PErr> {
        self.enter()?;
        let r = self.block_inner();
        self.leave();
        r
    }

    fn block_inner(&mut self) -> Result<(Block, Terminator), PErr> {
        let mut nodes = Vec::new();
        let mut text = String::new();
        // Where in `text` the current run of plain text began. Velocity 1.7's lexer gives
        // `#set` the spaces before it only when they do not continue a run of text (they
        // follow the template start, a reference, a directive or a comment).
        let mut run_start = 0;
        macro_rules! flush {
            () => {
                if !text.is_empty() {
                    nodes.push(Node::Text(std::mem::take(&mut text).into_boxed_str()));
                }
            };
        }
        loop {
            let start = self.pos;
            // Plain text up to the next character that can start something.
            let rest = &self.bytes()[self.pos..];
            let run = rest
                .iter()
                .position(|&c| c == b'$' || c == b'#' || c == b'\\')
                .unwrap_or(rest.len());
            if run > 0 {
                text.push_str(&self.src[start..start + run]);
                self.pos += run;
            }
            let Some(c) = self.peek() else {
                flush!();
                return Ok((nodes, Terminator::Eof));
            };
            match c {
                b'\\' => {
                    let n = self.bytes()[self.pos..]
                        .iter()
                        .take_while(|&&b| b == b'\\')
                        .count();
                    let after = self.pos + n;
                    let save = self.pos;
                    self.pos = after;
                    if self.peek() == Some(b'$') {
                        if let Some(r) = self.reference()? {
                            flush!();
                            nodes.push(Node::EscapedRef {
                                backslashes: n,
                                reference: r,
                            });
                            run_start = 0;
                            continue;
                        }
                    } else if self.peek() == Some(b'#')
                        && let Some((name, end)) = self.directive_name()
                        && DIRECTIVES.contains(&name)
                    {
                        for _ in 0..n / 2 {
                            text.push('\\');
                        }
                        if n % 2 == 1 {
                            // Escaped: the directive's word is plain text.
                            text.push_str(&self.src[after..end]);
                            self.pos = end;
                        }
                        run_start = text.len();
                        continue;
                    }
                    self.pos = save + n;
                    text.push_str(&self.src[save..save + n]);
                }
                b'$' => match self.reference()? {
                    Some(r) => {
                        flush!();
                        nodes.push(Node::Ref(r));
                        run_start = 0;
                    }
                    None => {
                        text.push('$');
                        self.pos += 1;
                    }
                },
                _ => {
                    // '#'
                    match self.peek_at(1) {
                        Some(b'#') => {
                            // Line comment, including its newline.
                            let rest = &self.bytes()[self.pos..];
                            match rest.iter().position(|&c| c == b'\n') {
                                Some(i) => self.pos += i + 1,
                                None => self.pos = self.src.len(),
                            }
                            run_start = text.len();
                            continue;
                        }
                        Some(b'*') => {
                            let from = self.pos + 2;
                            // Velocity 1.7 lets an unterminated comment run to the end.
                            match self.src[from..].find("*#") {
                                Some(i) => self.pos = from + i + 2,
                                None => self.pos = self.src.len(),
                            }
                            run_start = text.len();
                            continue;
                        }
                        Some(b'[') if self.peek_at(2) == Some(b'[') => {
                            let from = self.pos + 3;
                            match self.src[from..].find("]]#") {
                                Some(i) => {
                                    text.push_str(&self.src[from..from + i]);
                                    self.pos = from + i + 3;
                                    run_start = text.len();
                                }
                                None => return Err(self.err("unterminated #[[ literal")),
                            }
                            continue;
                        }
                        _ => {}
                    }
                    let at = self.pos;
                    let Some((name, end)) = self.directive_name() else {
                        text.push('#');
                        self.pos += 1;
                        continue;
                    };
                    if !DIRECTIVES.contains(&name) {
                        text.push('#');
                        self.pos += 1;
                        continue;
                    }
                    if name == "set" && text[run_start..].bytes().all(|c| c == b' ' || c == b'\t') {
                        text.truncate(run_start);
                    }
                    flush!();
                    run_start = 0;
                    self.pos = end;
                    match name {
                        "end" => {
                            self.eat_line_end();
                            return Ok((nodes, Terminator::End(at)));
                        }
                        "else" => {
                            self.eat_line_end();
                            return Ok((nodes, Terminator::Else(at)));
                        }
                        "elseif" => {
                            let cond = self.paren_expr("#elseif")?;
                            self.eat_line_end();
                            return Ok((nodes, Terminator::ElseIf(cond, at)));
                        }
                        "break" => {
                            self.eat_line_end();
                            nodes.push(Node::Break);
                        }
                        "stop" => {
                            self.eat_line_end();
                            nodes.push(Node::Stop);
                        }
                        "set" => nodes.push(self.set_directive()?),
                        "if" => nodes.push(self.if_directive(at)?),
                        "foreach" => nodes.push(self.foreach_directive(at)?),
                        _ => unreachable!("DIRECTIVES is exhaustive"),
                    }
                }
            }
        }
    }

    /// At `#`: the directive word (`#name` or `#{name}`) and the offset after it.
    fn directive_name(&self) -> Option<(&'a str, usize)> {
        let b = self.bytes();
        let mut i = self.pos + 1;
        let braced = b.get(i) == Some(&b'{');
        if braced {
            i += 1;
        }
        let start = i;
        while i < b.len() && b[i].is_ascii_alphabetic() {
            i += 1;
        }
        if i == start {
            return None;
        }
        let name = &self.src[start..i];
        if braced {
            if b.get(i) != Some(&b'}') {
                return None;
            }
            i += 1;
        }
        Some((name, i))
    }

    /// Swallows `[ \t]*` followed by a newline, if that is what follows.
    fn eat_line_end(&mut self) {
        let b = self.bytes();
        let mut i = self.pos;
        while i < b.len() && (b[i] == b' ' || b[i] == b'\t') {
            i += 1;
        }
        if b.get(i) == Some(&b'\n') {
            self.pos = i + 1;
        } else if b.get(i) == Some(&b'\r') {
            self.pos = if b.get(i + 1) == Some(&b'\n') {
                i + 2
            } else {
                i + 1
            };
        }
    }

    fn skip_ws(&mut self) {
        while let Some(c) = self.peek() {
            if c == b' ' || c == b'\t' || c == b'\n' || c == b'\r' {
                self.pos += 1;
            } else {
                break;
            }
        }
    }

    fn expect(&mut self, c: u8, what: &str) -> Result<(), PErr> {
        self.skip_ws();
        if self.peek() == Some(c) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.unexpected(what))
        }
    }

    fn unexpected(&self, what: &str) -> PErr {
        match self.src[self.pos..].chars().next() {
            Some(ch) => self.err(format!("expected {what}, found {ch:?}")),
            None => self.err(format!("expected {what}, found end of template")),
        }
    }

    fn paren_expr(&mut self, directive: &str) -> Result<Expr, PErr> {
        self.skip_inline_ws();
        if self.peek() != Some(b'(') {
            return Err(self.unexpected(&format!("'(' after {directive}")));
        }
        self.pos += 1;
        let e = self.expr()?;
        self.expect(b')', "')'")?;
        Ok(e)
    }

    fn skip_inline_ws(&mut self) {
        while matches!(self.peek(), Some(b' ') | Some(b'\t')) {
            self.pos += 1;
        }
    }

    fn set_directive(&mut self) -> Result<Node, PErr> {
        self.skip_inline_ws();
        if self.peek() != Some(b'(') {
            return Err(self.unexpected("'(' after #set"));
        }
        self.pos += 1;
        self.skip_ws();
        if self.peek() != Some(b'$') {
            return Err(self.unexpected("a reference on the left of #set"));
        }
        let Some(target) = self.reference()? else {
            return Err(self.unexpected("a reference on the left of #set"));
        };
        if matches!(target.parts.last(), Some(Accessor::Method { .. })) {
            return Err(self.err_at(
                target.pos - self.base,
                "the left of #set must be a variable, property or index, not a method call",
            ));
        }
        self.expect(b'=', "'=' in #set")?;
        let value = self.expr()?;
        self.expect(b')', "')' closing #set")?;
        self.eat_line_end();
        Ok(Node::Set { target, value })
    }

    fn if_directive(&mut self, at: usize) -> Result<Node, PErr> {
        let mut cond = self.paren_expr("#if")?;
        self.eat_line_end();
        let mut branches = Vec::new();
        loop {
            let (body, term) = self.block()?;
            branches.push((cond, body));
            match term {
                Terminator::End(_) => {
                    return Ok(Node::If {
                        branches,
                        otherwise: None,
                    });
                }
                Terminator::ElseIf(c, _) => cond = c,
                Terminator::Else(_) => {
                    let (body, term) = self.block()?;
                    return match term {
                        Terminator::End(_) => Ok(Node::If {
                            branches,
                            otherwise: Some(body),
                        }),
                        Terminator::Eof => Err(self.err_at(at, "#if without a matching #end")),
                        Terminator::Else(p) | Terminator::ElseIf(_, p) => {
                            Err(self.err_at(p, "#else/#elseif after #else"))
                        }
                    };
                }
                Terminator::Eof => return Err(self.err_at(at, "#if without a matching #end")),
            }
        }
    }

    fn foreach_directive(&mut self, at: usize) -> Result<Node, PErr> {
        self.skip_inline_ws();
        if self.peek() != Some(b'(') {
            return Err(self.unexpected("'(' after #foreach"));
        }
        self.pos += 1;
        self.skip_ws();
        let var_pos = self.pos;
        let var = match self.reference()? {
            Some(r) if r.parts.is_empty() => r.root,
            _ => {
                return Err(self.err_at(var_pos, "expected a plain variable after #foreach("));
            }
        };
        self.skip_ws();
        if !self.src[self.pos..].starts_with("in") || self.peek_at(2).is_some_and(is_ident_char) {
            return Err(self.unexpected("'in' in #foreach"));
        }
        self.pos += 2;
        let iterable = self.expr()?;
        self.expect(b')', "')' closing #foreach")?;
        self.eat_line_end();
        let (body, term) = self.block()?;
        match term {
            Terminator::End(_) => Ok(Node::Foreach {
                var,
                iterable,
                body,
            }),
            Terminator::Eof => Err(self.err_at(at, "#foreach without a matching #end")),
            Terminator::Else(p) | Terminator::ElseIf(_, p) => {
                Err(self.err_at(p, "#else/#elseif inside #foreach without #if"))
            }
        }
    }

    /// At `$`: a reference, or `None` when what follows cannot start one (then `$` is text).
    fn reference(&mut self) -> Result<Option<Reference>, PErr> {
        let start = self.pos;
        let b = self.bytes();
        let mut i = start + 1;
        let quiet = b.get(i) == Some(&b'!');
        if quiet {
            i += 1;
        }
        let formal = b.get(i) == Some(&b'{');
        if formal {
            i += 1;
        }
        if !b.get(i).copied().is_some_and(is_ident_start) {
            return Ok(None);
        }
        let root_start = i;
        while i < b.len() && is_ident_char(b[i]) {
            i += 1;
        }
        let root: Box<str> = self.src[root_start..i].into();
        self.pos = i;
        let mut parts = Vec::new();
        loop {
            let here = self.pos;
            match self.peek() {
                Some(b'.') if self.peek_at(1).is_some_and(is_ident_start) => {
                    let ns = self.pos + 1;
                    let mut j = ns;
                    let bb = self.bytes();
                    while j < bb.len() && is_ident_char(bb[j]) {
                        j += 1;
                    }
                    let name: Box<str> = self.src[ns..j].into();
                    if bb.get(j) == Some(&b'(') {
                        self.pos = j + 1;
                        match self.args() {
                            Ok(args) => parts.push(Accessor::Method {
                                name,
                                args,
                                pos: self.abs(here),
                            }),
                            Err(e) if formal => return Err(e),
                            Err(_) => {
                                // `$a.b(` that is not a call: the reference ends before `.b`.
                                self.pos = here;
                                break;
                            }
                        }
                    } else {
                        self.pos = j;
                        parts.push(Accessor::Property(name));
                    }
                }
                Some(b'[') => {
                    self.pos += 1;
                    let r = self.expr().and_then(|e| {
                        self.expect(b']', "']'")?;
                        Ok(e)
                    });
                    match r {
                        Ok(index) => parts.push(Accessor::Index {
                            index,
                            pos: self.abs(here),
                        }),
                        Err(e) if formal => return Err(e),
                        Err(_) => {
                            self.pos = here;
                            break;
                        }
                    }
                }
                _ => break,
            }
        }
        if formal {
            if self.peek() != Some(b'}') {
                return Err(self.unexpected("'}' closing ${"));
            }
            self.pos += 1;
        }
        Ok(Some(Reference {
            root,
            quiet,
            parts,
            source: self.src[start..self.pos].into(),
            pos: self.abs(start),
        }))
    }

    /// After `(`: comma-separated arguments and the closing `)`.
    fn args(&mut self) -> Result<Vec<Expr>, PErr> {
        let mut args = Vec::new();
        self.skip_ws();
        if self.peek() == Some(b')') {
            self.pos += 1;
            return Ok(args);
        }
        loop {
            args.push(self.expr()?);
            self.skip_ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b')') => {
                    self.pos += 1;
                    return Ok(args);
                }
                _ => return Err(self.unexpected("',' or ')'")),
            }
        }
    }

    // ---- expressions: || < && < == != < relational < + - < * / % < unary ----

    fn expr(&mut self) -> Result<Expr, PErr> {
        self.enter()?;
        let r = self.or_expr();
        self.leave();
        r
    }

    /// A word operator (`and`, `or`, `not`, `eq`…) at the cursor, as a whole word.
    fn word(&mut self, w: &str) -> bool {
        if self.src[self.pos..].starts_with(w) && !self.peek_at(w.len()).is_some_and(is_ident_char)
        {
            self.pos += w.len();
            true
        } else {
            false
        }
    }

    fn sym(&mut self, s: &str) -> bool {
        if self.src[self.pos..].starts_with(s) {
            self.pos += s.len();
            true
        } else {
            false
        }
    }

    fn or_expr(&mut self) -> Result<Expr, PErr> {
        let mut l = self.and_expr()?;
        loop {
            self.skip_ws();
            if self.sym("||") || self.word("or") {
                let r = self.and_expr()?;
                l = Expr::Binary(BinOp::Or, Box::new(l), Box::new(r));
            } else {
                return Ok(l);
            }
        }
    }

    fn and_expr(&mut self) -> Result<Expr, PErr> {
        let mut l = self.eq_expr()?;
        loop {
            self.skip_ws();
            if self.sym("&&") || self.word("and") {
                let r = self.eq_expr()?;
                l = Expr::Binary(BinOp::And, Box::new(l), Box::new(r));
            } else {
                return Ok(l);
            }
        }
    }

    fn eq_expr(&mut self) -> Result<Expr, PErr> {
        let mut l = self.rel_expr()?;
        loop {
            self.skip_ws();
            let op = if self.sym("==") || self.word("eq") {
                BinOp::Eq
            } else if self.sym("!=") || self.word("ne") {
                BinOp::Ne
            } else {
                return Ok(l);
            };
            let r = self.rel_expr()?;
            l = Expr::Binary(op, Box::new(l), Box::new(r));
        }
    }

    fn rel_expr(&mut self) -> Result<Expr, PErr> {
        let mut l = self.add_expr()?;
        loop {
            self.skip_ws();
            let op = if self.sym("<=") || self.word("le") {
                BinOp::Le
            } else if self.sym(">=") || self.word("ge") {
                BinOp::Ge
            } else if self.sym("<") || self.word("lt") {
                BinOp::Lt
            } else if self.sym(">") || self.word("gt") {
                BinOp::Gt
            } else {
                return Ok(l);
            };
            let r = self.add_expr()?;
            l = Expr::Binary(op, Box::new(l), Box::new(r));
        }
    }

    fn add_expr(&mut self) -> Result<Expr, PErr> {
        let mut l = self.mul_expr()?;
        loop {
            self.skip_ws();
            let op = match self.peek() {
                Some(b'+') => BinOp::Add,
                // `..` belongs to a range, not to subtraction.
                Some(b'-') => BinOp::Sub,
                _ => return Ok(l),
            };
            self.pos += 1;
            let r = self.mul_expr()?;
            l = Expr::Binary(op, Box::new(l), Box::new(r));
        }
    }

    fn mul_expr(&mut self) -> Result<Expr, PErr> {
        let mut l = self.unary()?;
        loop {
            self.skip_ws();
            let op = match self.peek() {
                Some(b'*') => BinOp::Mul,
                Some(b'/') => BinOp::Div,
                Some(b'%') => BinOp::Mod,
                _ => return Ok(l),
            };
            self.pos += 1;
            let r = self.unary()?;
            l = Expr::Binary(op, Box::new(l), Box::new(r));
        }
    }

    fn unary(&mut self) -> Result<Expr, PErr> {
        self.enter()?;
        let r = self.unary_inner();
        self.leave();
        r
    }

    fn unary_inner(&mut self) -> Result<Expr, PErr> {
        self.skip_ws();
        if self.peek() == Some(b'!') && self.peek_at(1) != Some(b'=') {
            self.pos += 1;
            return Ok(Expr::Not(Box::new(self.unary()?)));
        }
        if self.word("not") {
            return Ok(Expr::Not(Box::new(self.unary()?)));
        }
        if self.peek() == Some(b'-') && !self.peek_at(1).is_some_and(|c| c.is_ascii_digit()) {
            self.pos += 1;
            return Ok(Expr::Neg(Box::new(self.unary()?)));
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<Expr, PErr> {
        self.skip_ws();
        let Some(c) = self.peek() else {
            return Err(self.unexpected("an expression"));
        };
        match c {
            b'$' => match self.reference()? {
                Some(r) => Ok(Expr::Ref(r)),
                None => Err(self.unexpected("a reference")),
            },
            b'"' => self.dq_string(),
            b'\'' => {
                let s = self.quoted(b'\'')?;
                Ok(Expr::Str(Arc::from(s)))
            }
            b'(' => {
                self.pos += 1;
                let e = self.expr()?;
                self.expect(b')', "')'")?;
                Ok(e)
            }
            b'[' => self.list_or_range(),
            b'{' => self.map_literal(),
            b'-' | b'0'..=b'9' => self.number(),
            _ => {
                if self.word("true") {
                    Ok(Expr::Bool(true))
                } else if self.word("false") {
                    Ok(Expr::Bool(false))
                } else {
                    Err(self.unexpected("an expression"))
                }
            }
        }
    }

    /// A quoted string; a doubled quote stands for one quote (Velocity has no backslash escapes).
    fn quoted(&mut self, q: u8) -> Result<String, PErr> {
        let open = self.pos;
        self.pos += 1;
        let mut out = String::new();
        loop {
            let rest = &self.src[self.pos..];
            match rest.bytes().position(|c| c == q) {
                None => return Err(self.err_at(open, "unterminated string literal")),
                Some(i) => {
                    out.push_str(&rest[..i]);
                    self.pos += i + 1;
                    if self.peek() == Some(q) {
                        out.push(q as char);
                        self.pos += 1;
                    } else {
                        return Ok(out);
                    }
                }
            }
        }
    }

    fn dq_string(&mut self) -> Result<Expr, PErr> {
        let open = self.pos;
        let s = self.quoted(b'"')?;
        if !s.contains(['$', '#']) {
            return Ok(Expr::Str(Arc::from(s)));
        }
        // The inside is a template of its own (Velocity interpolates references and
        // directives in double quotes).
        let mut inner = Parser {
            src: &s,
            base: self.abs(open + 1),
            pos: 0,
            depth: self.depth,
        };
        let (block, term) = inner.block()?;
        match term {
            Terminator::Eof => Ok(Expr::Interpolated(block)),
            Terminator::End(p) | Terminator::Else(p) | Terminator::ElseIf(_, p) => {
                Err(inner.err_at(p, "unbalanced directive in string"))
            }
        }
    }

    fn number(&mut self) -> Result<Expr, PErr> {
        let start = self.pos;
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        let b = self.bytes();
        let digits_start = self.pos;
        while self.pos < b.len() && b[self.pos].is_ascii_digit() {
            self.pos += 1;
        }
        if self.pos == digits_start {
            return Err(self.unexpected("a number"));
        }
        let mut float = false;
        if b.get(self.pos) == Some(&b'.') && b.get(self.pos + 1).is_some_and(u8::is_ascii_digit) {
            float = true;
            self.pos += 1;
            while self.pos < b.len() && b[self.pos].is_ascii_digit() {
                self.pos += 1;
            }
        }
        if matches!(b.get(self.pos), Some(b'e') | Some(b'E')) {
            let mut j = self.pos + 1;
            if matches!(b.get(j), Some(b'+') | Some(b'-')) {
                j += 1;
            }
            if b.get(j).is_some_and(u8::is_ascii_digit) {
                float = true;
                while j < b.len() && b[j].is_ascii_digit() {
                    j += 1;
                }
                self.pos = j;
            }
        }
        let text = &self.src[start..self.pos];
        if float {
            text.parse::<f64>()
                .map(Expr::Float)
                .map_err(|_| self.err_at(start, format!("invalid number {text}")))
        } else {
            text.parse::<i64>()
                .map(Expr::Int)
                .map_err(|_| self.err_at(start, format!("integer out of range: {text}")))
        }
    }

    fn list_or_range(&mut self) -> Result<Expr, PErr> {
        self.pos += 1; // [
        self.skip_ws();
        if self.peek() == Some(b']') {
            self.pos += 1;
            return Ok(Expr::List(Vec::new()));
        }
        let first = self.expr()?;
        self.skip_ws();
        if self.sym("..") {
            let last = self.expr()?;
            self.expect(b']', "']' closing range")?;
            return Ok(Expr::Range(Box::new(first), Box::new(last)));
        }
        let mut items = vec![first];
        loop {
            self.skip_ws();
            match self.peek() {
                Some(b',') => {
                    self.pos += 1;
                    items.push(self.expr()?);
                }
                Some(b']') => {
                    self.pos += 1;
                    return Ok(Expr::List(items));
                }
                _ => return Err(self.unexpected("',' or ']' in list")),
            }
        }
    }

    fn map_literal(&mut self) -> Result<Expr, PErr> {
        self.pos += 1; // {
        let mut entries = Vec::new();
        self.skip_ws();
        if self.peek() == Some(b'}') {
            self.pos += 1;
            return Ok(Expr::Map(entries));
        }
        loop {
            let k = self.expr()?;
            self.expect(b':', "':' in map literal")?;
            let v = self.expr()?;
            entries.push((k, v));
            self.skip_ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(Expr::Map(entries));
                }
                _ => return Err(self.unexpected("',' or '}' in map literal")),
            }
        }
    }
}
