//! The control program's expression compiler (paper §5.2): "The operations which need data
//! processing by the CPU are (1) selection with complicated conditions, (2) arithmetic
//! operations, (3) aggregate operations. The RDBE has a compiler which generates the native
//! object code for data processing into the main memory in order to improve the efficiency."
//!
//! This is the model of that compiler. Delta's CPU emitted machine code once per command and
//! then ran it over every tuple; here a single recursive-descent pass parses an expression,
//! resolves column names to field indices, checks kinds (int, float, text, bool) and emits a
//! flat [`Program`] of stack-machine ops: the "object code". Literal-only subexpressions are
//! folded to one constant, AND/OR/coalesce short-circuit with forward jumps, and evaluation is
//! a single loop over the ops with a reusable stack: no tree is walked per tuple.
//!
//! Semantics follow SQL: NULL propagates through arithmetic and functions, comparisons with
//! NULL are unknown (NULL), AND/OR use three-valued logic, `IS [NOT] NULL` is never NULL and a
//! WHERE condition keeps a tuple only when it is TRUE. Integers are i128 while evaluating (so
//! u64 and i64 mix freely, overflow is an error), floats f64, text compares byte-wise without
//! its trailing NUL padding. Errors, at compile or run time, name the expression and the
//! 1-based character column, e.g. `expression 'price * ' at column 9: expected a value, found
//! end of input`.
use crate::relation::{FieldType, Schema, Value};
use anyhow::{anyhow, bail, ensure, Result};
use std::cmp::Ordering;
use std::fmt;

/// Static type of an expression.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Int,
    Float,
    Text,
    Bool,
    /// Type of the bare `NULL` literal (and of expressions built only from it): fits any kind.
    Null,
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::Int => "int",
            Kind::Float => "float",
            Kind::Text => "text",
            Kind::Bool => "bool",
            Kind::Null => "null",
        })
    }
}

fn numeric(k: Kind) -> bool {
    matches!(k, Kind::Int | Kind::Float | Kind::Null)
}

/// The kind two operands share (Int with Float gives Float, NULL fits anything), if any.
fn unify(a: Kind, b: Kind) -> Option<Kind> {
    match (a, b) {
        (Kind::Null, k) | (k, Kind::Null) => Some(k),
        _ if a == b => Some(a),
        (Kind::Int, Kind::Float) | (Kind::Float, Kind::Int) => Some(Kind::Float),
        _ => None,
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Relop {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl Relop {
    fn holds(self, o: Ordering) -> bool {
        match self {
            Relop::Eq => o.is_eq(),
            Relop::Ne => o.is_ne(),
            Relop::Lt => o.is_lt(),
            Relop::Le => o.is_le(),
            Relop::Gt => o.is_gt(),
            Relop::Ge => o.is_ge(),
        }
    }
    fn symbol(self) -> &'static str {
        ["=", "<>", "<", "<=", ">", ">="][self as usize]
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Arith {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
}

/// A value on the evaluation stack.
#[derive(Clone, Debug, Default, PartialEq)]
enum Val {
    #[default]
    Null,
    Bool(bool),
    Int(i128),
    Float(f64),
    Text(String),
}

impl Val {
    fn kind(&self) -> Kind {
        match self {
            Val::Null => Kind::Null,
            Val::Bool(_) => Kind::Bool,
            Val::Int(_) => Kind::Int,
            Val::Float(_) => Kind::Float,
            Val::Text(_) => Kind::Text,
        }
    }
}

impl fmt::Display for Val {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Val::Null => write!(f, "NULL"),
            Val::Bool(b) => write!(f, "{}", if *b { "TRUE" } else { "FALSE" }),
            Val::Int(i) => write!(f, "{i}"),
            Val::Float(x) => write!(f, "{x:?}"),
            Val::Text(s) => write!(f, "'{}'", s.replace('\'', "''")),
        }
    }
}

/// One stack-machine instruction. Jumps skip the given number of following ops and leave
/// the tested value on the stack.
#[derive(Clone, Debug, PartialEq)]
enum Op {
    Column(usize, Kind),
    Push(Val),
    Pop,
    Neg,
    Abs,
    ToFloat,
    Arith(Arith),
    Cmp(Relop),
    Not,
    And,
    Or,
    IsNull,
    Between,
    In(usize),
    Length,
    Lower,
    Upper,
    JumpIfFalse(usize),
    JumpIfTrue(usize),
    JumpIfNotNull(usize),
}

fn load(v: Option<&Value>, k: Kind) -> Result<Val, String> {
    Ok(match (v.ok_or("row is too short")?, k) {
        (Value::Null, _) => Val::Null,
        (Value::Unsigned(x), Kind::Int) => Val::Int(*x as i128),
        (Value::Signed(x), Kind::Int) => Val::Int(*x as i128),
        (Value::Float(x), Kind::Float) => Val::Float(*x as f64),
        (Value::Text(s), Kind::Text) => Val::Text(s.trim_end_matches('\0').to_string()),
        (v, k) => return Err(format!("row holds '{v}' where {k} was expected")),
    })
}

fn num(v: &Val) -> Result<f64, String> {
    match v {
        Val::Int(i) => Ok(*i as f64),
        Val::Float(x) => Ok(*x),
        v => Err(format!("{} is not a number", v.kind())),
    }
}

fn compare(l: &Val, r: &Val) -> Result<Option<Ordering>, String> {
    Ok(match (l, r) {
        (Val::Null, _) | (_, Val::Null) => None,
        (Val::Int(a), Val::Int(b)) => Some(a.cmp(b)),
        (Val::Text(a), Val::Text(b)) => Some(a.as_bytes().cmp(b.as_bytes())),
        (Val::Bool(a), Val::Bool(b)) => Some(a.cmp(b)),
        _ => num(l)?.partial_cmp(&num(r)?),
    })
}

fn arith(op: Arith, l: Val, r: Val) -> Result<Val, String> {
    use Arith::*;
    let by_zero = matches!(op, Div | Mod);
    match (l, r) {
        (Val::Null, _) | (_, Val::Null) => Ok(Val::Null),
        (Val::Int(_), Val::Int(0)) if by_zero => Err("division by zero".into()),
        (Val::Int(a), Val::Int(b)) => match op {
            Add => a.checked_add(b),
            Sub => a.checked_sub(b),
            Mul => a.checked_mul(b),
            Div => a.checked_div(b),
            Mod => a.checked_rem(b),
        }
        .map(Val::Int)
        .ok_or_else(|| "integer overflow".into()),
        (l, r) => {
            let (a, b) = (num(&l)?, num(&r)?);
            ensure_ok(!(by_zero && b == 0.0), "division by zero")?;
            Ok(Val::Float(match op {
                Add => a + b,
                Sub => a - b,
                Mul => a * b,
                Div => a / b,
                Mod => a % b,
            }))
        }
    }
}

fn ensure_ok(cond: bool, msg: &str) -> Result<(), String> {
    cond.then_some(()).ok_or_else(|| msg.to_string())
}

fn truth(v: &Val) -> Result<Option<bool>, String> {
    match v {
        Val::Null => Ok(None),
        Val::Bool(b) => Ok(Some(*b)),
        v => Err(format!("{} is not true or false", v.kind())),
    }
}

fn and3(a: Option<bool>, b: Option<bool>) -> Option<bool> {
    match (a, b) {
        (Some(false), _) | (_, Some(false)) => Some(false),
        (Some(true), Some(true)) => Some(true),
        _ => None,
    }
}

fn from_truth(t: Option<bool>) -> Val {
    t.map_or(Val::Null, Val::Bool)
}

fn unary(op: &Op, v: Val) -> Result<Val, String> {
    Ok(match (op, v) {
        (Op::IsNull, v) => Val::Bool(v == Val::Null),
        (_, Val::Null) => Val::Null,
        (Op::Neg, Val::Int(i)) => Val::Int(i.checked_neg().ok_or("integer overflow")?),
        (Op::Neg, Val::Float(x)) => Val::Float(-x),
        (Op::Abs, Val::Int(i)) => Val::Int(i.checked_abs().ok_or("integer overflow")?),
        (Op::Abs, Val::Float(x)) => Val::Float(x.abs()),
        (Op::ToFloat, v) => Val::Float(num(&v)?),
        (Op::Not, Val::Bool(b)) => Val::Bool(!b),
        (Op::Length, Val::Text(s)) => Val::Int(s.chars().count() as i128),
        (Op::Lower, Val::Text(s)) => Val::Text(s.to_lowercase()),
        (Op::Upper, Val::Text(s)) => Val::Text(s.to_uppercase()),
        (op, v) => return Err(format!("{op:?} cannot take {}", v.kind())),
    })
}

/// Run `code` over one row; an error carries the source column of the failing op.
fn exec(code: &[(Op, usize)], row: &[Value], st: &mut Vec<Val>) -> Result<Val, (usize, String)> {
    st.clear();
    let mut pc = 0;
    while let Some((op, pos)) = code.get(pc) {
        pc += 1;
        let fail = |m: String| (*pos, m);
        let mut pop = || st.pop().expect("stack underflow");
        let v = match op {
            Op::Column(i, k) => load(row.get(*i), *k).map_err(fail)?,
            Op::Push(v) => v.clone(),
            Op::Pop => {
                pop();
                continue;
            }
            Op::JumpIfFalse(n) | Op::JumpIfTrue(n) | Op::JumpIfNotNull(n) => {
                let top = st.last().expect("stack underflow");
                let taken = match op {
                    Op::JumpIfFalse(_) => *top == Val::Bool(false),
                    Op::JumpIfTrue(_) => *top == Val::Bool(true),
                    _ => *top != Val::Null,
                };
                if taken {
                    pc += n;
                }
                continue;
            }
            Op::Arith(a) => {
                let (r, l) = (pop(), pop());
                arith(*a, l, r).map_err(fail)?
            }
            Op::Cmp(rel) => {
                let (r, l) = (pop(), pop());
                from_truth(compare(&l, &r).map_err(fail)?.map(|o| rel.holds(o)))
            }
            Op::And | Op::Or => {
                let (r, l) = (pop(), pop());
                let (a, b) = (truth(&l).map_err(fail)?, truth(&r).map_err(fail)?);
                from_truth(if *op == Op::And {
                    and3(a, b)
                } else {
                    and3(a.map(|x| !x), b.map(|x| !x)).map(|x| !x)
                })
            }
            Op::Between => {
                let (b, a, x) = (pop(), pop(), pop());
                let ge = compare(&x, &a).map_err(fail)?.map(Ordering::is_ge);
                let le = compare(&x, &b).map_err(fail)?.map(Ordering::is_le);
                from_truth(and3(ge, le))
            }
            Op::In(n) => {
                let list = st.split_off(st.len() - n);
                let x = st.pop().expect("stack underflow");
                let mut found = Some(false);
                for y in &list {
                    match compare(&x, y).map_err(fail)? {
                        Some(Ordering::Equal) => {
                            found = Some(true);
                            break;
                        }
                        None => found = None,
                        _ => {}
                    }
                }
                from_truth(found)
            }
            op => unary(op, pop()).map_err(fail)?,
        };
        st.push(v);
    }
    Ok(st.pop().expect("empty program"))
}

fn at(src: &str, pos: usize, msg: impl fmt::Display) -> anyhow::Error {
    // A long expression is shown by its start: the column says where.
    let shown: String = src.chars().take(60).collect();
    let more = if shown.len() < src.len() { "…" } else { "" };
    anyhow!("expression '{shown}{more}' at column {pos}: {msg}")
}

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Int(i128),
    Float(f64),
    Str(String),
    Name(String),
    Quoted(String),
    Sym(&'static str),
    End,
}

#[derive(Clone, Debug)]
struct Token {
    tok: Tok,
    pos: usize,
    text: String,
}

const SYMS: [&str; 15] = [
    "<=", ">=", "<>", "!=", "+", "-", "*", "/", "%", "=", "<", ">", "(", ")", ",",
];

fn lex(src: &str) -> Result<Vec<Token>> {
    let cs: Vec<char> = src.chars().collect();
    let (mut i, mut toks) = (0, Vec::new());
    let digit = |j: usize| cs.get(j).is_some_and(char::is_ascii_digit);
    while i < cs.len() {
        let start = i;
        let c = cs[i];
        let tok = if c.is_whitespace() {
            i += 1;
            continue;
        } else if c.is_ascii_digit() || (c == '.' && digit(i + 1)) {
            let mut float = false;
            while digit(i) {
                i += 1;
            }
            if cs.get(i) == Some(&'.') && digit(i + 1) {
                float = true;
                i += 1;
                while digit(i) {
                    i += 1;
                }
            }
            if matches!(cs.get(i), Some('e' | 'E'))
                && (digit(i + 1) || matches!(cs.get(i + 1), Some('+' | '-')) && digit(i + 2))
            {
                float = true;
                i += 2;
                while digit(i) {
                    i += 1;
                }
            }
            let text: String = cs[start..i].iter().collect();
            let word = cs[i..]
                .iter()
                .take_while(|c| c.is_alphanumeric() || **c == '_');
            if let Some(bad) = Some(word.collect::<String>()).filter(|w| !w.is_empty()) {
                return Err(at(
                    src,
                    start + 1,
                    format!("malformed number '{text}{bad}'"),
                ));
            }
            match text.parse::<i128>() {
                _ if float => Tok::Float(text.parse()?),
                Ok(n) if n <= u64::MAX as i128 => Tok::Int(n),
                _ => return Err(at(src, start + 1, format!("integer '{text}' exceeds u64"))),
            }
        } else if c.is_alphabetic() || c == '_' {
            while cs
                .get(i)
                .is_some_and(|c| c.is_alphanumeric() || "_.".contains(*c))
            {
                i += 1;
            }
            Tok::Name(cs[start..i].iter().collect())
        } else if c == '\'' || c == '"' {
            let mut s = String::new();
            loop {
                i += 1;
                match cs.get(i) {
                    None => return Err(at(src, start + 1, "unterminated quote")),
                    Some(&q) if q == c && cs.get(i + 1) == Some(&c) => {
                        s.push(c);
                        i += 1;
                    }
                    Some(&q) if q == c => break,
                    Some(&q) => s.push(q),
                }
            }
            i += 1;
            if c == '\'' {
                Tok::Str(s)
            } else {
                Tok::Quoted(s)
            }
        } else if let Some(s) = SYMS.iter().find(|s| {
            s.chars()
                .enumerate()
                .all(|(k, sc)| cs.get(i + k) == Some(&sc))
        }) {
            i += s.len();
            Tok::Sym(if *s == "!=" { "<>" } else { s })
        } else {
            return Err(at(src, start + 1, format!("unexpected character '{c}'")));
        };
        let text = cs[start..i].iter().collect();
        toks.push(Token {
            tok,
            pos: start + 1,
            text,
        });
    }
    let (pos, text) = (cs.len() + 1, String::new());
    toks.push(Token {
        tok: Tok::End,
        pos,
        text,
    });
    Ok(toks)
}

/// Compiled code of a subexpression with its kind, whether it reads no column, and the
/// longest text it can yield (for choosing a `char(n)` result field).
struct Frag {
    code: Vec<(Op, usize)>,
    kind: Kind,
    konst: bool,
    len: usize,
}

impl Frag {
    fn lit(v: Val, pos: usize) -> Frag {
        let len = if let Val::Text(s) = &v { s.len() } else { 0 };
        let kind = v.kind();
        let code = vec![(Op::Push(v), pos)];
        Frag {
            code,
            kind,
            konst: true,
            len,
        }
    }
    fn boolean(parts: Vec<Frag>, ops: Vec<Op>, pos: usize) -> Frag {
        Frag::build(parts, ops, pos, Kind::Bool, 0)
    }
    /// Concatenate `parts` and `ops` (at `pos`), folding the result if it reads no column.
    fn build(parts: Vec<Frag>, ops: Vec<Op>, pos: usize, kind: Kind, len: usize) -> Frag {
        let konst = parts.iter().all(|p| p.konst);
        let mut code: Vec<_> = parts.into_iter().flat_map(|p| p.code).collect();
        code.extend(ops.into_iter().map(|o| (o, pos)));
        if konst && code.len() > 1 {
            // A constant that fails (1/0) stays code: it must fail only if it is reached.
            if let Ok(v) = exec(&code, &[], &mut Vec::new()) {
                code = vec![(Op::Push(v), pos)];
            }
        }
        Frag {
            code,
            kind,
            konst,
            len,
        }
    }
}

struct Parser<'a> {
    src: &'a str,
    schema: &'a Schema,
    toks: Vec<Token>,
    at: usize,
    /// Levels of parentheses, calls, NOT and signs open: bounded, so that no expression
    /// can exhaust the stack of this recursive-descent parser.
    depth: usize,
}

/// How deep an expression may nest (parentheses, function calls, NOT, unary signs).
pub const MAX_NESTING: usize = 100;

impl Parser<'_> {
    fn err(&self, pos: usize, msg: impl fmt::Display) -> anyhow::Error {
        at(self.src, pos, msg)
    }
    fn peek(&self) -> &Token {
        &self.toks[self.at]
    }
    fn unexpected(&self, wanted: &str) -> anyhow::Error {
        let t = self.peek();
        let found = match t.tok {
            Tok::End => "end of input".to_string(),
            Tok::Str(_) => t.text.clone(),
            _ => format!("'{}'", t.text),
        };
        self.err(t.pos, format!("expected {wanted}, found {found}"))
    }
    fn eat(&mut self, want: impl Fn(&Tok) -> bool) -> Option<usize> {
        let pos = self.peek().pos;
        want(&self.peek().tok).then(|| self.at += 1).map(|_| pos)
    }
    fn sym(&mut self, s: &'static str) -> Option<usize> {
        self.eat(|t| *t == Tok::Sym(s))
    }
    fn kw(&mut self, k: &str) -> Option<usize> {
        self.eat(|t| matches!(t, Tok::Name(n) if n.eq_ignore_ascii_case(k)))
    }
    fn expect(&mut self, found: Option<usize>, wanted: &str) -> Result<usize> {
        found.ok_or_else(|| self.unexpected(wanted))
    }

    /// Run `f` one nesting level deeper; refuse beyond [MAX_NESTING].
    fn nested<T>(&mut self, f: impl FnOnce(&mut Self) -> Result<T>) -> Result<T> {
        if self.depth >= MAX_NESTING {
            let pos = self.peek().pos;
            return Err(self.err(
                pos,
                format!("the expression nests deeper than {MAX_NESTING} levels"),
            ));
        }
        self.depth += 1;
        let r = f(self);
        self.depth -= 1;
        r
    }
    fn or(&mut self) -> Result<Frag> {
        self.nested(Self::or_inner)
    }
    fn or_inner(&mut self) -> Result<Frag> {
        let mut l = self.and()?;
        while let Some(pos) = self.kw("OR") {
            let r = self.and()?;
            l = self.logic(l, r, pos, true)?;
        }
        Ok(l)
    }
    fn and(&mut self) -> Result<Frag> {
        let mut l = self.not()?;
        while let Some(pos) = self.kw("AND") {
            let r = self.not()?;
            l = self.logic(l, r, pos, false)?;
        }
        Ok(l)
    }
    /// `l AND r` is `l; JumpIfFalse; r; And` (OR likewise with JumpIfTrue).
    fn logic(&self, l: Frag, r: Frag, pos: usize, or: bool) -> Result<Frag> {
        let name = if or { "OR" } else { "AND" };
        for k in [l.kind, r.kind] {
            if !matches!(k, Kind::Bool | Kind::Null) {
                return Err(self.err(pos, format!("{name} needs true/false operands, found {k}")));
            }
        }
        let skip = r.code.len() + 1;
        let (jump, op) = match or {
            true => (Op::JumpIfTrue(skip), Op::Or),
            false => (Op::JumpIfFalse(skip), Op::And),
        };
        let jump = Frag {
            code: vec![(jump, pos)],
            kind: Kind::Bool,
            konst: true,
            len: 0,
        };
        Ok(Frag::boolean(vec![l, jump, r], vec![op], pos))
    }
    fn not(&mut self) -> Result<Frag> {
        let Some(pos) = self.kw("NOT") else {
            return self.predicate();
        };
        let x = self.nested(Self::not)?;
        if !matches!(x.kind, Kind::Bool | Kind::Null) {
            return Err(self.err(
                pos,
                format!("NOT needs a true/false operand, found {}", x.kind),
            ));
        }
        Ok(Frag::boolean(vec![x], vec![Op::Not], pos))
    }
    fn comparable(&self, a: &Frag, b: &Frag, pos: usize) -> Result<()> {
        match unify(a.kind, b.kind) {
            Some(_) => Ok(()),
            None => Err(self.err(pos, format!("cannot compare {} with {}", a.kind, b.kind))),
        }
    }
    fn predicate(&mut self) -> Result<Frag> {
        let x = self.additive()?;
        let relop = |t: &Tok| {
            let ops = ["=", "<>", "<", "<=", ">", ">="];
            let k = ops.iter().position(|s| *t == Tok::Sym(s))?;
            Some(
                [
                    Relop::Eq,
                    Relop::Ne,
                    Relop::Lt,
                    Relop::Le,
                    Relop::Gt,
                    Relop::Ge,
                ][k],
            )
        };
        if let Some(rel) = relop(&self.peek().tok) {
            let pos = self.eat(|_| true).unwrap();
            let y = self.additive()?;
            self.comparable(&x, &y, pos)?;
            return Ok(Frag::boolean(vec![x, y], vec![Op::Cmp(rel)], pos));
        }
        if let Some(pos) = self.kw("IS") {
            let negate = self.kw("NOT").is_some();
            let null = self.kw("NULL");
            self.expect(null, "NULL")?;
            let ops = [vec![Op::IsNull], vec![Op::IsNull, Op::Not]][negate as usize].clone();
            return Ok(Frag::boolean(vec![x], ops, pos));
        }
        let negate = self.kw("NOT").is_some();
        let tail = if negate { vec![Op::Not] } else { vec![] };
        if let Some(pos) = self.kw("BETWEEN") {
            let lo = self.additive()?;
            let and = self.kw("AND");
            self.expect(and, "AND")?;
            let hi = self.additive()?;
            self.comparable(&x, &lo, pos)?;
            self.comparable(&x, &hi, pos)?;
            let ops = [vec![Op::Between], tail].concat();
            Ok(Frag::boolean(vec![x, lo, hi], ops, pos))
        } else if let Some(pos) = self.kw("IN") {
            let open = self.sym("(");
            self.expect(open, "'('")?;
            let mut parts = vec![x];
            loop {
                let y = self.or()?;
                self.comparable(&parts[0], &y, pos)?;
                parts.push(y);
                if self.sym(",").is_none() {
                    break;
                }
            }
            let close = self.sym(")");
            self.expect(close, "',' or ')'")?;
            let ops = [vec![Op::In(parts.len() - 1)], tail].concat();
            Ok(Frag::boolean(parts, ops, pos))
        } else if negate {
            Err(self.unexpected("BETWEEN or IN after NOT"))
        } else {
            Ok(x)
        }
    }
    fn arith(&self, l: Frag, r: Frag, op: Arith, pos: usize) -> Result<Frag> {
        let sym = ["+", "-", "*", "/", "%"][op as usize];
        match unify(l.kind, r.kind).filter(|k| numeric(*k)) {
            Some(kind) if numeric(l.kind) && numeric(r.kind) => {
                Ok(Frag::build(vec![l, r], vec![Op::Arith(op)], pos, kind, 0))
            }
            _ => Err(self.err(
                pos,
                format!("'{sym}' needs numbers, found {} and {}", l.kind, r.kind),
            )),
        }
    }
    fn additive(&mut self) -> Result<Frag> {
        let mut l = self.multiplicative()?;
        loop {
            let op = if let Some(pos) = self.sym("+") {
                (Arith::Add, pos)
            } else if let Some(pos) = self.sym("-") {
                (Arith::Sub, pos)
            } else {
                return Ok(l);
            };
            let r = self.multiplicative()?;
            l = self.arith(l, r, op.0, op.1)?;
        }
    }
    fn multiplicative(&mut self) -> Result<Frag> {
        let mut l = self.unary()?;
        loop {
            let op = [("*", Arith::Mul), ("/", Arith::Div), ("%", Arith::Mod)]
                .into_iter()
                .find_map(|(s, op)| self.sym(s).map(|pos| (op, pos)));
            let Some((op, pos)) = op else { return Ok(l) };
            let r = self.unary()?;
            l = self.arith(l, r, op, pos)?;
        }
    }
    fn unary(&mut self) -> Result<Frag> {
        let (pos, neg) = match self.sym("-") {
            Some(pos) => (pos, true),
            None => match self.sym("+") {
                Some(pos) => (pos, false),
                None => return self.primary(),
            },
        };
        let x = self.nested(Self::unary)?;
        if !numeric(x.kind) {
            return Err(self.err(pos, format!("unary minus needs a number, found {}", x.kind)));
        }
        let (kind, ops) = (x.kind, if neg { vec![Op::Neg] } else { vec![] });
        Ok(Frag::build(vec![x], ops, pos, kind, 0))
    }
    fn primary(&mut self) -> Result<Frag> {
        let Token { tok, pos, .. } = self.peek().clone();
        let lit = |v| Ok(Frag::lit(v, pos));
        if matches!(&tok, Tok::Name(n) if ["AND", "OR", "NOT", "IS", "BETWEEN", "IN"]
            .iter().any(|k| n.eq_ignore_ascii_case(k)))
            || matches!(tok, Tok::End | Tok::Sym(_)) && tok != Tok::Sym("(")
        {
            return Err(self.unexpected("a value"));
        }
        self.at += 1;
        match tok {
            Tok::Int(i) => lit(Val::Int(i)),
            Tok::Float(x) => lit(Val::Float(x)),
            Tok::Str(s) => lit(Val::Text(s)),
            Tok::Quoted(n) => self.column(&n, pos),
            Tok::Name(n) => match n.to_ascii_uppercase().as_str() {
                "NULL" => lit(Val::Null),
                "TRUE" => lit(Val::Bool(true)),
                "FALSE" => lit(Val::Bool(false)),
                _ if self.sym("(").is_some() => self.call(&n, pos),
                _ => self.column(&n, pos),
            },
            _ => {
                let x = self.or()?;
                let close = self.sym(")");
                self.expect(close, "')'")?;
                Ok(x)
            }
        }
    }
    fn column(&self, name: &str, pos: usize) -> Result<Frag> {
        let fields = &self.schema.fields;
        let low = name.to_lowercase();
        let suffix = format!(".{low}");
        let list = |ix: &mut dyn Iterator<Item = usize>| {
            ix.map(|i| fields[i].name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let i = match fields.iter().position(|f| f.name == name) {
            Some(i) => i,
            None => {
                let cands: Vec<usize> = (0..fields.len())
                    .filter(|&i| {
                        let f = fields[i].name.to_lowercase();
                        f == low || f.ends_with(&suffix)
                    })
                    .collect();
                match cands[..] {
                    [i] => i,
                    [] => {
                        let all = list(&mut (0..fields.len()));
                        return Err(
                            self.err(pos, format!("unknown column '{name}' (columns: {all})"))
                        );
                    }
                    _ => {
                        let c = list(&mut cands.into_iter());
                        return Err(self.err(
                            pos,
                            format!("column '{name}' is ambiguous (candidates: {c})"),
                        ));
                    }
                }
            }
        };
        let (kind, len) = match fields[i].ty {
            FieldType::F32 => (Kind::Float, 0),
            FieldType::Char(n) => (Kind::Text, n),
            _ => (Kind::Int, 0),
        };
        Ok(Frag {
            code: vec![(Op::Column(i, kind), pos)],
            kind,
            konst: false,
            len,
        })
    }
    fn call(&mut self, name: &str, pos: usize) -> Result<Frag> {
        let mut args = vec![self.or()?];
        while self.sym(",").is_some() {
            args.push(self.or()?);
        }
        let close = self.sym(")");
        self.expect(close, "',' or ')'")?;
        let lname = name.to_lowercase();
        if lname == "coalesce" {
            ensure!(
                args.len() >= 2,
                self.err(pos, "coalesce() needs at least 2 arguments")
            );
            let mut kind = Kind::Null;
            for a in &args {
                kind = unify(kind, a.kind).ok_or_else(|| {
                    self.err(pos, format!("coalesce() mixes {kind} with {}", a.kind))
                })?;
            }
            // a; JumpIfNotNull(past the rest); Pop; b; ... — later arguments run only if needed.
            let len = args.iter().map(|a| a.len).max().unwrap_or(0);
            let konst = args.iter().all(|a| a.konst);
            let mut code = Vec::new();
            for a in args.into_iter().rev() {
                let mut c = a.code;
                if kind == Kind::Float && a.kind == Kind::Int {
                    c.push((Op::ToFloat, pos));
                }
                if !code.is_empty() {
                    c.extend([(Op::JumpIfNotNull(code.len() + 1), pos), (Op::Pop, pos)]);
                }
                c.append(&mut code);
                code = c;
            }
            let f = Frag {
                code,
                kind,
                konst,
                len,
            };
            return Ok(Frag::build(vec![f], vec![], pos, kind, len));
        }
        let (op, text_arg, kind) = match lname.as_str() {
            "abs" => (Op::Abs, false, args[0].kind),
            "length" => (Op::Length, true, Kind::Int),
            "lower" => (Op::Lower, true, Kind::Text),
            "upper" => (Op::Upper, true, Kind::Text),
            _ => bail!(self.err(
                pos,
                format!(
                    "unknown function '{name}' (functions: abs, length, lower, upper, coalesce)"
                )
            )),
        };
        ensure!(
            args.len() == 1,
            self.err(
                pos,
                format!("{lname}() takes 1 argument, found {}", args.len())
            )
        );
        let a = args.pop().unwrap();
        let (ok, want) = match text_arg {
            true => (matches!(a.kind, Kind::Text | Kind::Null), "text"),
            false => (numeric(a.kind), "a number"),
        };
        ensure!(
            ok,
            self.err(pos, format!("{lname}() needs {want}, found {}", a.kind))
        );
        let len = a.len;
        Ok(Frag::build(vec![a], vec![op], pos, kind, len))
    }
}

/// A compiled expression: flat stack-machine code with column indices resolved.
#[derive(Clone, Debug)]
pub struct Program {
    src: String,
    code: Vec<(Op, usize)>,
    kind: Kind,
    text_len: usize,
    depth: usize,
    names: Vec<String>,
}

/// Evaluates one program over many rows, reusing its stack.
pub struct Evaluator<'p> {
    program: &'p Program,
    stack: Vec<Val>,
}

impl Program {
    /// Parse, type-check and compile `src` over the columns of `schema`.
    pub fn compile(src: &str, schema: &Schema) -> Result<Program> {
        let mut p = Parser {
            src,
            schema,
            toks: lex(src)?,
            at: 0,
            depth: 0,
        };
        let f = p.or()?;
        if p.peek().tok != Tok::End {
            return Err(p.unexpected("an operator or end of input"));
        }
        let (mut depth, mut d) = (0, 0i64);
        for (op, _) in &f.code {
            d += match op {
                Op::Column(..) | Op::Push(_) => 1,
                Op::Arith(_) | Op::Cmp(_) | Op::And | Op::Or | Op::Pop => -1,
                Op::Between => -2,
                Op::In(n) => -(*n as i64),
                _ => 0,
            };
            depth = depth.max(d as usize);
        }
        let names = schema.fields.iter().map(|f| f.name.clone()).collect();
        let (code, kind, text_len) = (f.code, f.kind, f.len);
        Ok(Program {
            src: src.into(),
            code,
            kind,
            text_len,
            depth,
            names,
        })
    }
    /// Compile a WHERE condition: the expression must be true/false.
    pub fn compile_condition(src: &str, schema: &Schema) -> Result<Program> {
        let p = Program::compile(src, schema)?;
        ensure!(
            matches!(p.kind, Kind::Bool | Kind::Null),
            "expression '{src}': a condition must be true or false, found {}",
            p.kind
        );
        Ok(p)
    }
    pub fn source(&self) -> &str {
        &self.src
    }
    pub fn kind(&self) -> Kind {
        self.kind
    }
    /// Number of ops.
    pub fn len(&self) -> usize {
        self.code.len()
    }
    pub fn is_empty(&self) -> bool {
        self.code.is_empty()
    }
    /// Longest text the expression can produce (for its `char(n)` result field).
    pub fn text_len(&self) -> usize {
        self.text_len
    }
    /// The field type that stores this expression's results.
    pub fn field_type(&self) -> FieldType {
        result_field_type(self.kind, self.text_len)
    }
    /// Schema indices of the columns read, ascending.
    pub fn columns_used(&self) -> Vec<usize> {
        let mut v: Vec<usize> = self
            .code
            .iter()
            .filter_map(|(op, _)| match op {
                Op::Column(i, _) => Some(*i),
                _ => None,
            })
            .collect();
        v.sort_unstable();
        v.dedup();
        v
    }
    pub fn evaluator(&self) -> Evaluator<'_> {
        Evaluator {
            program: self,
            stack: Vec::with_capacity(self.depth),
        }
    }
    /// Evaluate over one row (ints as Signed, or Unsigned above i64; floats as f32; bools 0/1).
    pub fn eval(&self, row: &[Value]) -> Result<Value> {
        self.evaluator().eval(row)
    }
    /// SQL WHERE: true only when the condition is TRUE (NULL, i.e. unknown, is false).
    pub fn eval_condition(&self, row: &[Value]) -> Result<bool> {
        self.evaluator().eval_condition(row)
    }
    fn run(&self, row: &[Value], stack: &mut Vec<Val>) -> Result<Val> {
        exec(&self.code, row, stack).map_err(|(pos, m)| at(&self.src, pos, m))
    }
}

impl Evaluator<'_> {
    pub fn eval(&mut self, row: &[Value]) -> Result<Value> {
        Ok(match self.program.run(row, &mut self.stack)? {
            Val::Null => Value::Null,
            Val::Bool(b) => Value::Unsigned(b as u64),
            Val::Int(i) => match (i64::try_from(i), u64::try_from(i)) {
                (Ok(s), _) => Value::Signed(s),
                (_, Ok(u)) => Value::Unsigned(u),
                _ => bail!(
                    "expression '{}': result {i} does not fit 64 bits",
                    self.program.src
                ),
            },
            Val::Float(x) if x.is_finite() && !(x as f32).is_finite() => {
                bail!(
                    "expression '{}': result {x} does not fit f32",
                    self.program.src
                )
            }
            Val::Float(x) => Value::Float(x as f32),
            Val::Text(s) => Value::Text(s),
        })
    }
    pub fn eval_condition(&mut self, row: &[Value]) -> Result<bool> {
        match self.program.run(row, &mut self.stack)? {
            Val::Bool(b) => Ok(b),
            Val::Null => Ok(false),
            v => bail!(
                "expression '{}' is not a condition: it gave {}",
                self.program.src,
                v.kind()
            ),
        }
    }
}

impl fmt::Display for Program {
    /// Disassembly, one op per line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (pc, (op, _)) in self.code.iter().enumerate() {
            let target = |n: &usize| pc + 1 + n;
            let text = match op {
                Op::Column(i, k) => format!("column   {i} ({}: {k})", self.names[*i]),
                Op::Push(v) => format!("push     {v}"),
                Op::Arith(a) => format!("{a:?}").to_lowercase(),
                Op::Cmp(r) => format!("cmp      {}", r.symbol()),
                Op::In(n) => format!("in       {n}"),
                Op::JumpIfFalse(n) => format!("jump_if_false    {}", target(n)),
                Op::JumpIfTrue(n) => format!("jump_if_true     {}", target(n)),
                Op::JumpIfNotNull(n) => format!("jump_if_not_null {}", target(n)),
                Op::IsNull => "is_null".into(),
                Op::ToFloat => "to_float".into(),
                op => format!("{op:?}").to_lowercase(),
            };
            writeln!(f, "{pc:4}  {text}")?;
        }
        Ok(())
    }
}

/// Storage type for results of `kind`: Int → i64, Float → f32, Text → char(text_len),
/// Bool → u16 holding 0/1 (a bare NULL also takes u16).
pub fn result_field_type(kind: Kind, text_len: usize) -> FieldType {
    match kind {
        Kind::Int => FieldType::I64,
        Kind::Float => FieldType::F32,
        Kind::Text => FieldType::Char(text_len.max(1)),
        Kind::Bool | Kind::Null => FieldType::U16,
    }
}

/// Convert an evaluation result into a value storable in a field of type `ty`.
pub fn to_value(v: &Value, ty: FieldType) -> Result<Value> {
    use FieldType::*;
    let int = match v {
        Value::Unsigned(u) => Some(*u as i128),
        Value::Signed(s) => Some(*s as i128),
        _ => None,
    };
    Ok(match (v, ty, int) {
        (Value::Null, ..) => Value::Null,
        (Value::Float(x), F32, _) => Value::Float(*x),
        (_, F32, Some(i)) => Value::Float(i as f32),
        (Value::Text(s), Char(n), _) => {
            let s = s.trim_end_matches('\0');
            ensure!(
                s.len() <= n && !s.contains('\0'),
                "text '{s}' does not fit {ty}"
            );
            Value::Text(s.into())
        }
        (_, Char(_), _) | (_, _, None) => bail!("value '{v}' cannot be stored as {ty}"),
        (_, _, Some(i)) => {
            let (lo, hi) = match ty {
                U16 => (0, u16::MAX as i128),
                U32 => (0, u32::MAX as i128),
                U64 => (0, u64::MAX as i128),
                I16 => (i16::MIN as i128, i16::MAX as i128),
                I32 => (i32::MIN as i128, i32::MAX as i128),
                _ => (i64::MIN as i128, i64::MAX as i128),
            };
            ensure!((lo..=hi).contains(&i), "value {i} does not fit {ty}");
            match ty {
                U16 | U32 | U64 => Value::Unsigned(i as u64),
                _ => Value::Signed(i as i64),
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn schema() -> Schema {
        Schema::new(&[
            ("id", FieldType::U32),
            ("price", FieldType::F32),
            ("qty", FieldType::I32),
            ("name", FieldType::Char(6)),
            ("photos.user_id", FieldType::U64),
            ("users.user_id", FieldType::I64),
            ("users.age", FieldType::I16),
        ])
        .unwrap()
    }
    fn row() -> Vec<Value> {
        use Value::*;
        let name = Text("Ab\0\0".into());
        vec![
            Unsigned(7),
            Float(2.5),
            Signed(-3),
            name,
            Unsigned(u64::MAX),
            Null,
            Signed(40),
        ]
    }
    fn ev(src: &str) -> Value {
        Program::compile(src, &schema())
            .and_then(|p| p.eval(&row()))
            .unwrap_or_else(|e| panic!("{e:#}"))
    }
    fn cond(src: &str) -> Option<bool> {
        match ev(src) {
            Value::Null => None,
            Value::Unsigned(b) => Some(b == 1),
            v => panic!("{src} gave {v:?}"),
        }
    }
    fn compile_err(src: &str) -> String {
        Program::compile(src, &schema()).unwrap_err().to_string()
    }
    fn eval_err(src: &str) -> String {
        Program::compile(src, &schema())
            .unwrap()
            .eval(&row())
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn arithmetic_operators_and_literals() {
        use Value::*;
        assert_eq!(ev("1 + 2 * 3"), Signed(7));
        assert_eq!(ev("(1 + 2) * 3"), Signed(9));
        assert_eq!(ev("2 - 3 - 4"), Signed(-5));
        assert_eq!(ev("8 / 4 / 2"), Signed(1));
        assert_eq!(ev("7 / 2"), Signed(3));
        assert_eq!(ev("-7 % 3"), Signed(-1));
        assert_eq!(ev("7.0 / 2"), Float(3.5));
        assert_eq!(ev("2e3 + 1"), Float(2001.0));
        assert_eq!(ev(".5 + 1.5E-1"), Float(0.65));
        assert_eq!(ev("qty * 2 + id"), Signed(1));
        assert_eq!(ev("-qty"), Signed(3));
        assert_eq!(ev("+qty"), Signed(-3));
        assert_eq!(ev("price * qty"), Float(-7.5));
        assert_eq!(ev("photos.user_id"), Unsigned(u64::MAX));
        assert_eq!(ev("photos.user_id - 1 + qty"), Unsigned(u64::MAX - 4));
        assert_eq!(ev("'it''s'"), Text("it's".into()));
        assert_eq!(ev("TRUE"), Unsigned(1));
        assert_eq!(ev("name"), Text("Ab".into()));
    }

    #[test]
    fn comparisons_mix_signedness_and_strip_padding() {
        let cases = "1 = 1; 1 <> 2; 1 != 2; 1 < 2; 2 <= 2; 3 > 2; NOT 2 >= 3; id > qty; \
            photos.user_id > qty; 1 = 1.0; price < 3; name = 'Ab'; name < 'Ab '; name > 'AB'; \
            'b' > 'a'; TRUE > FALSE; id BETWEEN 7 AND 8; NOT qty NOT BETWEEN -3 AND 0; \
            qty IN (1, -3); name NOT IN ('x', 'y'); age in (40.0)";
        for src in cases.split("; ") {
            assert_eq!(cond(src), Some(true), "{src}");
        }
    }

    #[test]
    fn three_valued_logic_tables() {
        let t = [Some(true), Some(false), None];
        let lit = |v: Option<bool>| v.map_or("NULL".to_string(), |b| b.to_string());
        for a in t {
            assert_eq!(cond(&format!("NOT {}", lit(a))), a.map(|x| !x));
            for b in t {
                let and = match (a, b) {
                    (Some(false), _) | (_, Some(false)) => Some(false),
                    (Some(true), Some(true)) => Some(true),
                    _ => None,
                };
                let or = match (a, b) {
                    (Some(true), _) | (_, Some(true)) => Some(true),
                    (Some(false), Some(false)) => Some(false),
                    _ => None,
                };
                assert_eq!(cond(&format!("{} AND {}", lit(a), lit(b))), and);
                assert_eq!(cond(&format!("{} OR {}", lit(a), lit(b))), or);
            }
        }
    }

    #[test]
    fn null_rules() {
        assert_eq!(ev("users.user_id + 1"), Value::Null);
        assert_eq!(ev("abs(NULL) * 2.5"), Value::Null);
        for (src, want) in [
            ("NULL = NULL", None),
            ("users.user_id < 1", None),
            ("NULL IS NULL", Some(true)),
            ("users.user_id IS NULL", Some(true)),
            ("users.user_id is not null", Some(false)),
            ("(NULL + 1) IS NULL", Some(true)),
            ("NULL IN (1)", None),
            ("1 IN (2, NULL)", None),
            ("1 IN (NULL, 1)", Some(true)),
            ("NULL BETWEEN 1 AND 2", None),
            ("3 BETWEEN NULL AND 2", Some(false)),
            ("1 BETWEEN NULL AND 2", None),
            ("users.user_id > 0 OR id = 7", Some(true)),
            ("NOT users.user_id = 1", None),
        ] {
            assert_eq!(cond(src), want, "{src}");
        }
        let p = Program::compile_condition("users.user_id = 1", &schema()).unwrap();
        assert!(
            !p.eval_condition(&row()).unwrap(),
            "unknown is not kept by WHERE"
        );
        assert!(
            !Program::compile_condition("NOT (users.user_id = 1)", &schema())
                .unwrap()
                .eval_condition(&row())
                .unwrap()
        );
    }

    #[test]
    fn precedence_follows_sql() {
        assert_eq!(cond("1 + 2 * 3 = 7"), Some(true));
        assert_eq!(cond("NOT 1 = 2"), Some(true), "NOT binds looser than =");
        assert_eq!(cond("NOT qty = 3 AND id = 7"), Some(true));
        assert_eq!(
            cond("NOT TRUE AND FALSE"),
            Some(false),
            "(NOT TRUE) AND FALSE"
        );
        assert_eq!(
            cond("TRUE OR TRUE AND FALSE"),
            Some(true),
            "TRUE OR (TRUE AND FALSE)"
        );
        assert_eq!(cond("NOT NOT TRUE"), Some(true));
        assert_eq!(ev("-2 * -3"), Value::Signed(6));
        assert_eq!(cond("qty + 3 BETWEEN 0 AND 1 AND id IN (7)"), Some(true));
    }

    #[test]
    fn functions_and_column_resolution() {
        use Value::*;
        assert_eq!(ev("length(name)"), Signed(2));
        assert_eq!(ev("length('héllo')"), Signed(5));
        assert_eq!(
            ev("LOWER(name) || 'x'".split(" ||").next().unwrap()),
            Text("ab".into())
        );
        assert_eq!(ev("upper(name)"), Text("AB".into()));
        assert_eq!(ev("abs(qty)"), Signed(3));
        assert_eq!(ev("abs(-2.5)"), Float(2.5));
        assert_eq!(ev("coalesce(users.user_id, 3)"), Signed(3));
        assert_eq!(ev("coalesce(qty, 1.5)"), Float(-3.0));
        assert_eq!(ev("coalesce(NULL, NULL, 'z')"), Text("z".into()));
        assert_eq!(ev("age + \"users.age\""), Signed(80));
        assert_eq!(ev("USERS.AGE"), Signed(40));
        let e = compile_err("user_id + 1");
        assert!(
            e.contains("column 1") && e.contains("'user_id' is ambiguous"),
            "{e}"
        );
        assert!(e.contains("photos.user_id, users.user_id"), "{e}");
        let e = compile_err("qty + nope");
        assert!(
            e.contains("at column 7: unknown column 'nope' (columns: id, price"),
            "{e}"
        );
        let p = Program::compile("age * qty + age", &schema()).unwrap();
        assert_eq!(p.columns_used(), vec![2, 6]);
        assert_eq!(p.field_type(), FieldType::I64);
        assert_eq!(
            Program::compile("upper(name)", &schema())
                .unwrap()
                .field_type(),
            FieldType::Char(6)
        );
        assert_eq!(
            Program::compile("qty > 1", &schema()).unwrap().kind(),
            Kind::Bool
        );
    }

    #[test]
    fn syntax_and_type_errors_give_positions() {
        for (src, want) in [
            (
                "price * ",
                "expression 'price * ' at column 9: expected a value, found end of input",
            ),
            ("(1 + 2", "at column 7: expected ')', found end of input"),
            (
                "1 2",
                "at column 3: expected an operator or end of input, found '2'",
            ),
            (
                "qty = 1 = 2",
                "at column 9: expected an operator or end of input, found '='",
            ),
            ("'abc", "at column 1: unterminated quote"),
            ("1 # 2", "at column 3: unexpected character '#'"),
            ("12ab", "at column 1: malformed number '12ab'"),
            ("1 AND", "at column 6: expected a value, found end of input"),
            (
                "qty BETWEEN 1 OR 2",
                "at column 15: expected AND, found 'OR'",
            ),
            (
                "qty NOT 3",
                "at column 9: expected BETWEEN or IN after NOT, found '3'",
            ),
            ("qty IS 3", "at column 8: expected NULL, found '3'"),
            ("foo(1)", "at column 1: unknown function 'foo'"),
            ("abs(1, 2)", "abs() takes 1 argument, found 2"),
            (
                "'a' + 1",
                "at column 5: '+' needs numbers, found text and int",
            ),
            ("name = 1", "at column 6: cannot compare text with int"),
            (
                "1 AND 2",
                "at column 3: AND needs true/false operands, found int",
            ),
            (
                "NOT qty",
                "at column 1: NOT needs a true/false operand, found int",
            ),
            (
                "-name",
                "at column 1: unary minus needs a number, found text",
            ),
            ("length(qty)", "at column 1: length() needs text, found int"),
            ("coalesce(qty, name)", "coalesce() mixes int with text"),
            (
                "qty IN (1, 'a')",
                "at column 5: cannot compare int with text",
            ),
        ] {
            let e = compile_err(src);
            assert!(e.contains(want), "{src}: got {e}");
        }
        let e = Program::compile_condition("qty + 1", &schema()).unwrap_err();
        assert!(
            e.to_string().contains("must be true or false, found int"),
            "{e}"
        );
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_stack_overflow() {
        // Thousands of '(' in a script's condition recursed until the stack ran out: an
        // abort (SIGSEGV), not an error.
        for (open, close) in [("(", ")"), ("NOT ", ""), ("- ", ""), ("abs(", ")")] {
            let deep = format!("{}1{}", open.repeat(10_000), close.repeat(10_000));
            let e = compile_err(&deep);
            assert!(e.contains("nests deeper than 100 levels"), "{open}: {e}");
        }
        let ok = format!("{}qty{} = 1", "(".repeat(90), ")".repeat(90));
        assert!(Program::compile_condition(&ok, &schema()).is_ok());
        let ok = format!("{}qty = 1", "NOT ".repeat(90));
        assert!(Program::compile_condition(&ok, &schema()).is_ok());
    }

    #[test]
    fn evaluation_errors_name_the_expression() {
        let e = eval_err("id / (qty + 3)");
        assert_eq!(
            e,
            "expression 'id / (qty + 3)' at column 4: division by zero"
        );
        assert!(eval_err("price % (qty + 3)").contains("column 7: division by zero"));
        let e = eval_err("photos.user_id * photos.user_id * 4");
        assert!(e.contains("column 16: integer overflow"), "{e}");
        let e = eval_err("photos.user_id + 1");
        assert!(e.contains("does not fit 64 bits"), "{e}");
        assert!(eval_err("price * 1e300").contains("does not fit f32"));
        assert!(compile_err("1 + 'x").contains("column 5: unterminated quote"));
        assert!(compile_err("1 'x'").contains("found 'x'"));
        let p = Program::compile("qty + 1", &schema()).unwrap();
        let e = p
            .eval(&[Value::Null, Value::Null, Value::Text("x".into())])
            .unwrap_err();
        assert!(
            e.to_string().contains("column 1: row holds 'x' where int"),
            "{e}"
        );
        let p = Program::compile("qty = 1", &schema()).unwrap();
        assert!(p.eval_condition(&row()).is_ok() && p.eval(&row()).is_ok());
        assert!(Program::compile("qty", &schema())
            .unwrap()
            .eval_condition(&row())
            .is_err());
    }

    #[test]
    fn constant_folding_and_short_circuits() {
        let p = Program::compile("1 + 2 * 3", &schema()).unwrap();
        assert_eq!(p.len(), 1);
        assert_eq!(p.to_string(), "   0  push     7\n");
        assert_eq!(
            Program::compile("qty + 2 * 3 - (1 - 1)", &schema())
                .unwrap()
                .len(),
            5
        );
        assert_eq!(
            Program::compile("upper('a') = 'A' AND NULL IS NULL", &schema())
                .unwrap()
                .len(),
            1
        );
        assert_eq!(
            Program::compile("coalesce(NULL, 2.5)", &schema())
                .unwrap()
                .len(),
            1
        );
        // A failing constant is left to fail at run time, and only where it is reached.
        let p = Program::compile("1 / 0", &schema()).unwrap();
        assert_eq!(p.len(), 3);
        assert_eq!(cond("FALSE AND 1 / 0 = 1"), Some(false));
        assert_eq!(cond("qty < 0 OR 1 / 0 = 1"), Some(true));
        assert_eq!(ev("coalesce(qty, 1 / 0)"), Value::Signed(-3));
        assert!(eval_err("users.user_id IS NULL AND 1 / 0 = 1").contains("column 29: division"));
    }

    #[test]
    fn disassembly_shows_resolved_columns_and_jump_targets() {
        let p = Program::compile("qty > 0 AND name = 'Ab' OR age IN (1, 2)", &schema()).unwrap();
        let text = p.to_string();
        assert_eq!(text.lines().count(), p.len());
        assert_eq!(
            text,
            "   0  column   2 (qty: int)\n   1  push     0\n   2  cmp      >\n   \
             3  jump_if_false    8\n   4  column   3 (name: text)\n   5  push     'Ab'\n   \
             6  cmp      =\n   7  and\n   8  jump_if_true     14\n   9  column   6 (users.age: int)\n  \
             10  push     1\n  11  push     2\n  12  in       2\n  13  or\n"
        );
    }

    #[test]
    fn storage_types_and_conversion() {
        use Value::*;
        assert_eq!(result_field_type(Kind::Int, 0), FieldType::I64);
        assert_eq!(result_field_type(Kind::Float, 0), FieldType::F32);
        assert_eq!(result_field_type(Kind::Text, 9), FieldType::Char(9));
        assert_eq!(result_field_type(Kind::Bool, 0), FieldType::U16);
        assert_eq!(to_value(&Signed(5), FieldType::U16).unwrap(), Unsigned(5));
        assert_eq!(to_value(&Unsigned(5), FieldType::I16).unwrap(), Signed(5));
        assert_eq!(to_value(&Signed(-5), FieldType::F32).unwrap(), Float(-5.0));
        assert_eq!(to_value(&Null, FieldType::Char(1)).unwrap(), Null);
        assert_eq!(
            to_value(&Text("ab\0".into()), FieldType::Char(2)).unwrap(),
            Text("ab".into())
        );
        assert!(to_value(&Signed(-1), FieldType::U64).is_err());
        assert!(to_value(&Unsigned(40000), FieldType::I16).is_err());
        assert!(to_value(&Unsigned(u64::MAX), FieldType::I64).is_err());
        assert!(to_value(&Text("abc".into()), FieldType::Char(2)).is_err());
        assert!(to_value(&Float(1.0), FieldType::I32).is_err());
        assert!(to_value(&Signed(1), FieldType::Char(4)).is_err());
    }

    /// Expression trees for the property test, rendered fully parenthesised.
    #[derive(Clone, Debug)]
    enum T {
        Col(usize),
        Lit(Val),
        Un(&'static str, Box<T>),
        Bin(&'static str, Box<T>, Box<T>),
        Between(Box<T>, Box<T>, Box<T>),
        In(Box<T>, Vec<T>),
    }
    const COLS: [(&str, FieldType, Kind); 4] = [
        ("a", FieldType::I32, Kind::Int),
        ("b", FieldType::U64, Kind::Int),
        ("f", FieldType::F32, Kind::Float),
        ("s", FieldType::Char(4), Kind::Text),
    ];
    const RELOPS: &[&str] = &["=", "<>", "<", "<=", ">", ">="];

    fn render(t: &T) -> String {
        match t {
            T::Col(i) => COLS[*i].0.into(),
            T::Lit(Val::Int(i)) if *i < 0 => format!("(-{})", -i),
            T::Lit(Val::Float(x)) if x.is_sign_negative() => format!("(-{:?})", -x),
            T::Lit(v) => v.to_string(),
            T::Un(op @ ("-" | "NOT"), x) => format!("({op} {})", render(x)),
            T::Un(op @ ("IS NULL" | "IS NOT NULL"), x) => format!("({} {op})", render(x)),
            T::Un(f, x) => format!("{f}({})", render(x)),
            T::Bin("coalesce", l, r) => format!("coalesce({}, {})", render(l), render(r)),
            T::Bin(op, l, r) => format!("({} {op} {})", render(l), render(r)),
            T::Between(x, a, b) => {
                format!("({} BETWEEN {} AND {})", render(x), render(a), render(b))
            }
            T::In(x, l) => {
                let items: Vec<_> = l.iter().map(render).collect();
                format!("({} IN ({}))", render(x), items.join(", "))
            }
        }
    }

    fn kind_of(t: &T) -> Kind {
        match t {
            T::Col(i) => COLS[*i].2,
            T::Lit(v) => v.kind(),
            T::Un("-" | "abs", x) => kind_of(x),
            T::Un("length", _) => Kind::Int,
            T::Un("lower" | "upper", _) => Kind::Text,
            T::Bin(op, l, r) if !RELOPS.contains(op) && !["AND", "OR"].contains(op) => {
                unify(kind_of(l), kind_of(r)).unwrap()
            }
            _ => Kind::Bool,
        }
    }

    /// The tree-walking reference: SQL semantics written directly over the tree.
    fn reference(t: &T, row: &[Value]) -> Result<Val, ()> {
        use Val::*;
        let ev = |t: &T| reference(t, row);
        let f = |v: &Val| match v {
            Int(i) => *i as f64,
            Float(x) => *x,
            _ => unreachable!(),
        };
        let cmp = |l: &Val, r: &Val| match (l, r) {
            (Null, _) | (_, Null) => None,
            (Int(a), Int(b)) => Some(a.cmp(b)),
            (Text(a), Text(b)) => Some(a.as_bytes().cmp(b.as_bytes())),
            (Bool(a), Bool(b)) => Some(a.cmp(b)),
            _ => f(l).partial_cmp(&f(r)),
        };
        let tv = |v: Val| match v {
            Null => None,
            Bool(b) => Some(b),
            _ => unreachable!(),
        };
        let both = |a: Option<bool>, b: Option<bool>, dominant: bool| match (a, b) {
            (Some(x), _) | (_, Some(x)) if x == dominant => Bool(dominant),
            (Some(_), Some(_)) => Bool(!dominant),
            _ => Null,
        };
        Ok(match t {
            T::Col(i) => match &row[*i] {
                Value::Null => Null,
                Value::Signed(x) => Int(*x as i128),
                Value::Unsigned(x) => Int(*x as i128),
                Value::Float(x) => Float(*x as f64),
                Value::Text(s) => Text(s.trim_end_matches('\0').into()),
            },
            T::Lit(v) => v.clone(),
            T::Un(op, x) => match (*op, ev(x)?) {
                ("IS NULL", v) => Bool(v == Null),
                ("IS NOT NULL", v) => Bool(v != Null),
                (_, Null) => Null,
                ("-", Int(i)) => Int(i.checked_neg().ok_or(())?),
                ("-", Float(x)) => Float(-x),
                ("abs", Int(i)) => Int(i.checked_abs().ok_or(())?),
                ("abs", Float(x)) => Float(x.abs()),
                ("NOT", Bool(b)) => Bool(!b),
                ("length", Text(s)) => Int(s.chars().count() as i128),
                ("lower", Text(s)) => Text(s.to_lowercase()),
                ("upper", Text(s)) => Text(s.to_uppercase()),
                other => unreachable!("{other:?}"),
            },
            T::Bin(op @ ("AND" | "OR"), l, r) => {
                let dominant = *op == "OR";
                match tv(ev(l)?) {
                    Some(x) if x == dominant => Bool(x),
                    a => both(a, tv(ev(r)?), dominant),
                }
            }
            T::Bin("coalesce", l, r) => match (kind_of(t), ev(l)?) {
                (_, Null) => match (kind_of(t), ev(r)?) {
                    (Kind::Float, Int(i)) => Float(i as f64),
                    (_, v) => v,
                },
                (Kind::Float, Int(i)) => Float(i as f64),
                (_, v) => v,
            },
            T::Bin(op, l, r) if RELOPS.contains(op) => match cmp(&ev(l)?, &ev(r)?) {
                None => Null,
                Some(o) => Bool(match *op {
                    "=" => o.is_eq(),
                    "<>" => o.is_ne(),
                    "<" => o.is_lt(),
                    "<=" => o.is_le(),
                    ">" => o.is_gt(),
                    _ => o.is_ge(),
                }),
            },
            T::Bin(op, l, r) => match (ev(l)?, ev(r)?) {
                (Null, _) | (_, Null) => Null,
                (Int(a), Int(b)) => Int(match *op {
                    "+" => a.checked_add(b),
                    "-" => a.checked_sub(b),
                    "*" => a.checked_mul(b),
                    "/" => a.checked_div(b),
                    _ => a.checked_rem(b),
                }
                .ok_or(())?),
                (_, b) if f(&b) == 0.0 && (*op == "/" || *op == "%") => return Err(()),
                (a, b) => Float(match *op {
                    "+" => f(&a) + f(&b),
                    "-" => f(&a) - f(&b),
                    "*" => f(&a) * f(&b),
                    "/" => f(&a) / f(&b),
                    _ => f(&a) % f(&b),
                }),
            },
            T::Between(x, a, b) => {
                let (x, a, b) = (ev(x)?, ev(a)?, ev(b)?);
                let ge = cmp(&x, &a).map(|o| o.is_ge());
                both(ge, cmp(&x, &b).map(|o| o.is_le()), false)
            }
            T::In(x, list) => {
                let x = ev(x)?;
                let items = list.iter().map(ev).collect::<Result<Vec<_>, _>>()?;
                if items.iter().any(|y| cmp(&x, y) == Some(Ordering::Equal)) {
                    Bool(true)
                } else if x == Null || items.contains(&Null) {
                    Null
                } else {
                    Bool(false)
                }
            }
        })
    }

    /// Well-typed trees of depth ≤ `depth`: [numeric, text, bool].
    fn trees(depth: usize) -> [BoxedStrategy<T>; 3] {
        let num_lit = prop_oneof![
            (-9i128..10).prop_map(Val::Int),
            any::<i64>().prop_map(|i| Val::Int(i as i128)),
            any::<u64>().prop_map(|i| Val::Int(i as i128)),
            (-1e3f64..1e3).prop_map(Val::Float),
            (-9i32..10).prop_map(|i| Val::Float(i as f64 / 4.0)),
            Just(Val::Null),
        ];
        let mut level = [
            prop_oneof![(0usize..3).prop_map(T::Col), num_lit.prop_map(T::Lit)].boxed(),
            prop_oneof![
                Just(T::Col(3)),
                "[aAb']{0,3}".prop_map(|s| T::Lit(Val::Text(s))),
                Just(T::Lit(Val::Null)),
            ]
            .boxed(),
            prop_oneof![
                any::<bool>().prop_map(|b| T::Lit(Val::Bool(b))),
                Just(T::Lit(Val::Null))
            ]
            .boxed(),
        ];
        let bin = |ops: &'static [&'static str], l: &BoxedStrategy<T>, r: &BoxedStrategy<T>| {
            (prop::sample::select(ops), l.clone(), r.clone())
                .prop_map(|(op, l, r)| T::Bin(op, Box::new(l), Box::new(r)))
        };
        let un = |ops: &'static [&'static str], x: &BoxedStrategy<T>| {
            (prop::sample::select(ops), x.clone()).prop_map(|(op, x)| T::Un(op, Box::new(x)))
        };
        for _ in 0..depth {
            let [n, t, b] = level.clone();
            let between = (n.clone(), n.clone(), n.clone())
                .prop_map(|(x, a, b)| T::Between(Box::new(x), Box::new(a), Box::new(b)));
            let list = (n.clone(), prop::collection::vec(n.clone(), 1..4))
                .prop_map(|(x, l)| T::In(Box::new(x), l));
            level = [
                prop_oneof![
                    n.clone(),
                    bin(&["+", "-", "*", "/", "%", "coalesce"], &n, &n),
                    un(&["-", "abs"], &n),
                    un(&["length"], &t),
                ]
                .boxed(),
                prop_oneof![
                    t.clone(),
                    un(&["lower", "upper"], &t),
                    bin(&["coalesce"], &t, &t)
                ]
                .boxed(),
                prop_oneof![
                    b.clone(),
                    bin(RELOPS, &n, &n),
                    bin(RELOPS, &t, &t),
                    bin(&["AND", "OR", "coalesce"], &b, &b),
                    un(&["NOT", "IS NULL", "IS NOT NULL"], &b),
                    un(&["IS NULL", "IS NOT NULL"], &n),
                    between,
                    list,
                ]
                .boxed(),
            ];
        }
        level
    }

    fn rows() -> impl Strategy<Value = Vec<Vec<Value>>> {
        let null_or = |s: BoxedStrategy<Value>| prop_oneof![1 => Just(Value::Null), 3 => s];
        let row = (
            null_or(
                prop_oneof![-5i64..5, any::<i32>().prop_map(i64::from)]
                    .prop_map(Value::Signed)
                    .boxed(),
            ),
            null_or(
                prop_oneof![0u64..5, any::<u64>()]
                    .prop_map(Value::Unsigned)
                    .boxed(),
            ),
            null_or((-100f32..100.0).prop_map(Value::Float).boxed()),
            null_or(r"[aAb]{0,3}\x00?".prop_map(Value::Text).boxed()),
        )
            .prop_map(|(a, b, f, s)| vec![a, b, f, s]);
        prop::collection::vec(row, 1..6)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1000))]
        #[test]
        fn compiled_program_matches_tree_walker(
            t in { let [n, t, b] = trees(4); prop_oneof![n, t, b] },
            rows in rows(),
        ) {
            let fields: Vec<_> = COLS.iter().map(|(n, ty, _)| (*n, *ty)).collect();
            let src = render(&t);
            let p = Program::compile(&src, &Schema::new(&fields).unwrap())
                .map_err(|e| TestCaseError::fail(format!("{e:#}")))?;
            prop_assert_eq!(p.kind(), kind_of(&t), "{}", src);
            let mut stack = Vec::new();
            for row in &rows {
                let got = p.run(row, &mut stack).ok();
                let want = reference(&t, row).ok();
                prop_assert_eq!(&got, &want, "{} over {:?}\n{}", src, row, p);
                if let Some(v) = got {
                    prop_assert!(v == Val::Null || v.kind() == p.kind(), "{} gave {:?}", src, v);
                }
            }
        }
    }
}
