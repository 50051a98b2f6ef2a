//! The Delta command language (the text form of the commands the control processor sends
//! the RDBE, paper §3, Fig. 3): one command per line, each naming its result. The grammar
//! is documented in `docs/COMMANDS.md`; this module turns a script into [Statement]s and
//! reports every syntax error with its line and column.
//!
//! Conditions (RESTRICT … WHERE, aggregate arguments) stay as token ranges here: request
//! analysis (`control_program`) decides which parts the engine core evaluates and compiles
//! the rest for the CPU (`expr`).
use anyhow::{bail, Result};
use rdbe_rtl::merger::Relop;
use std::fmt;

/// One lexical token with its position (1-based line and column).
#[derive(Clone, Debug, PartialEq)]
pub struct Token {
    pub kind: TokenKind,
    pub text: String,
    pub line: usize,
    pub column: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenKind {
    /// A name; dotted names (`photos.user_id`) are one token.
    Name,
    Number,
    /// A single-quoted string (`text` holds it with the quotes).
    Str,
    /// Punctuation and operators: `= , ( ) * <> != < <= > >= + - / %`.
    Symbol,
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "'{}'", self.text)
    }
}

impl Token {
    pub fn is_keyword(&self, word: &str) -> bool {
        self.kind == TokenKind::Name && self.text.eq_ignore_ascii_case(word)
    }
    pub fn is_symbol(&self, s: &str) -> bool {
        self.kind == TokenKind::Symbol && self.text == s
    }
    pub fn at(&self) -> String {
        format!("line {}, column {}", self.line, self.column)
    }
}

/// Split one line into tokens; `--` and `#` start a comment.
pub fn tokenize(line_text: &str, line: usize) -> Result<Vec<Token>> {
    let chars: Vec<char> = line_text.chars().collect();
    let mut tokens = vec![];
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let column = i + 1;
        let start = i;
        let kind = if c.is_whitespace() {
            i += 1;
            continue;
        } else if c == '#' || (c == '-' && chars.get(i + 1) == Some(&'-')) {
            break;
        } else if c.is_ascii_alphabetic() || c == '_' {
            while i < chars.len()
                && (chars[i].is_ascii_alphanumeric() || chars[i] == '_' || chars[i] == '.')
            {
                i += 1;
            }
            TokenKind::Name
        } else if c.is_ascii_digit()
            || (c == '.' && chars.get(i + 1).is_some_and(|d| d.is_ascii_digit()))
        {
            while i < chars.len()
                && (chars[i].is_ascii_alphanumeric()
                    || chars[i] == '.'
                    || ((chars[i] == '-' || chars[i] == '+') && matches!(chars[i - 1], 'e' | 'E')))
            {
                i += 1;
            }
            TokenKind::Number
        } else if c == '\'' {
            i += 1;
            loop {
                match chars.get(i) {
                    None => bail!("line {line}, column {column}: string not closed"),
                    Some('\'') if chars.get(i + 1) == Some(&'\'') => i += 2,
                    Some('\'') => {
                        i += 1;
                        break;
                    }
                    _ => i += 1,
                }
            }
            TokenKind::Str
        } else {
            let two: String = chars[i..(i + 2).min(chars.len())].iter().collect();
            if ["<>", "!=", "<=", ">="].contains(&two.as_str()) {
                i += 2;
            } else if "=,()*<>+-/%".contains(c) {
                i += 1;
            } else {
                bail!("line {line}, column {column}: unexpected character {c:?}");
            }
            TokenKind::Symbol
        };
        tokens.push(Token {
            kind,
            text: chars[start..i].iter().collect(),
            line,
            column,
        });
    }
    Ok(tokens)
}

/// A column reference as written: `field` or `relation.field`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ColumnRef {
    pub name: String,
    pub line: usize,
    pub column: usize,
}

impl ColumnRef {
    /// The part after the relation name, if the reference is qualified by `relation`.
    pub fn field_of<'a>(&'a self, relation: &str) -> Option<&'a str> {
        match self.name.split_once('.') {
            Some((r, f)) if r == relation => Some(f),
            Some(_) => None,
            None => Some(&self.name),
        }
    }
    pub fn at(&self) -> String {
        format!("line {}, column {}", self.line, self.column)
    }
}

/// A relation named in a command, with where it was named.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RelationRef {
    pub name: String,
    pub line: usize,
    pub column: usize,
}

impl RelationRef {
    pub fn at(&self) -> String {
        format!("line {}, column {}", self.line, self.column)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SetOperation {
    Union,
    Intersection,
    Difference,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AggregateFunction {
    Count,
    Sum,
    Avg,
    Max,
    Min,
}

/// One aggregate of an AGGREGATE command: `FUNC(expression) [AS name]`; `COUNT(*)` has
/// no expression.
#[derive(Clone, Debug, PartialEq)]
pub struct AggregateItem {
    pub function: AggregateFunction,
    pub argument: Option<Vec<Token>>,
    pub name: String,
}

/// What a command computes.
#[derive(Clone, Debug, PartialEq)]
pub enum Operation {
    Pass {
        relation: RelationRef,
        project: Option<Vec<ColumnRef>>,
    },
    /// No `on`: the Cartesian product.
    Join {
        left: RelationRef,
        right: RelationRef,
        on: Option<(ColumnRef, Relop, ColumnRef)>,
        project: Option<Vec<ColumnRef>>,
    },
    Restrict {
        relation: RelationRef,
        condition: Vec<Token>,
        project: Option<Vec<ColumnRef>>,
    },
    Sort {
        relation: RelationRef,
        /// Keys, most significant first, each with `descending`.
        keys: Vec<(ColumnRef, bool)>,
    },
    Aggregate {
        relation: RelationRef,
        by: Option<ColumnRef>,
        items: Vec<AggregateItem>,
    },
    Unique {
        relation: RelationRef,
        /// None: whole tuples.
        by: Option<ColumnRef>,
    },
    Set {
        operation: SetOperation,
        left: RelationRef,
        right: RelationRef,
    },
    /// EQUAL (same set of tuples) or CONTAIN (left ⊇ right): a one-tuple result.
    Equal {
        left: RelationRef,
        right: RelationRef,
    },
    Contain {
        left: RelationRef,
        right: RelationRef,
    },
    /// COMPARE ATTRIBUTES: tuples where `a op b` (or every/null/non-null variant).
    Compare {
        relation: RelationRef,
        a: ColumnRef,
        op: Relop,
        b: ColumnRef,
    },
    ZoneSort {
        relation: RelationRef,
        by: ColumnRef,
        /// Tuples per zone; None: an HM page's worth.
        zone: Option<usize>,
    },
    /// `DELETE FROM r WHERE f IN (v, …)`: rewrites `r`.
    Delete {
        relation: RelationRef,
        field: ColumnRef,
        values: Vec<Token>,
    },
}

impl Operation {
    pub fn name(&self) -> &'static str {
        match self {
            Operation::Pass { .. } => "PASS",
            Operation::Join { on: None, .. } => "JOIN (Cartesian product)",
            Operation::Join { .. } => "JOIN",
            Operation::Restrict { .. } => "RESTRICT",
            Operation::Sort { .. } => "SORT",
            Operation::Aggregate { .. } => "AGGREGATE",
            Operation::Unique { .. } => "UNIQUE",
            Operation::Set {
                operation: SetOperation::Union,
                ..
            } => "UNION",
            Operation::Set {
                operation: SetOperation::Intersection,
                ..
            } => "INTERSECTION",
            Operation::Set {
                operation: SetOperation::Difference,
                ..
            } => "DIFFERENCE",
            Operation::Equal { .. } => "EQUAL",
            Operation::Contain { .. } => "CONTAIN",
            Operation::Compare { .. } => "COMPARE",
            Operation::ZoneSort { .. } => "ZONE-SORT",
            Operation::Delete { .. } => "DELETE",
        }
    }
}

/// One line of a script.
#[derive(Clone, Debug, PartialEq)]
pub struct Statement {
    pub line: usize,
    /// The result's name (for DELETE: the relation rewritten).
    pub target: String,
    pub operation: Operation,
}

/// Parse a script given as bytes (as read from its file): text that is not UTF-8 (binary
/// data) is refused with the line and column of the first byte that is not.
pub fn parse_script_bytes(origin: &str, bytes: &[u8]) -> Result<Vec<Statement>> {
    match std::str::from_utf8(bytes) {
        Ok(text) => parse_script(origin, text),
        Err(e) => {
            let good = &bytes[..e.valid_up_to()];
            let line = 1 + good.iter().filter(|&&b| b == b'\n').count();
            let line_start = good.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
            // The text before the bad byte is valid UTF-8: count its characters.
            let column =
                1 + std::str::from_utf8(&good[line_start..]).map_or(0, |t| t.chars().count());
            bail!(
                "{origin}: line {line}, column {column}: not UTF-8 text (byte 0x{:02x}): \
                 is this a script?",
                bytes[e.valid_up_to()]
            )
        }
    }
}

/// Parse a whole script; `origin` names it in errors (e.g. its file name). A script without
/// any command (empty, or only blank lines and comments) is an error.
pub fn parse_script(origin: &str, text: &str) -> Result<Vec<Statement>> {
    let mut statements = vec![];
    for (i, line_text) in text.lines().enumerate() {
        let line = i + 1;
        let tokens = tokenize(line_text, line).map_err(|e| anyhow::anyhow!("{origin}: {e}"))?;
        if tokens.is_empty() {
            continue;
        }
        let mut p = Parser {
            tokens,
            next: 0,
            line,
            line_end: line_text.chars().count() + 1,
        };
        let s = p
            .statement()
            .map_err(|e| anyhow::anyhow!("{origin}: {e}"))?;
        statements.push(s);
    }
    if statements.is_empty() {
        bail!(
            "{origin}: the script has no command ({}, expected `name = COMMAND …` lines)",
            match text.lines().count() {
                0 => "it is empty".to_string(),
                n => format!("its {n} line(s) are blank or comments"),
            }
        );
    }
    Ok(statements)
}

struct Parser {
    tokens: Vec<Token>,
    next: usize,
    line: usize,
    line_end: usize,
}

const RESERVED: &[&str] = &[
    "pass",
    "join",
    "restrict",
    "sort",
    "aggregate",
    "unique",
    "union",
    "intersection",
    "difference",
    "equal",
    "contain",
    "compare",
    "zonesort",
    "delete",
    "on",
    "where",
    "project",
    "by",
    "compute",
    "as",
    "asc",
    "desc",
    "zone",
    "from",
    "in",
    "and",
];

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.next)
    }
    fn here(&self) -> String {
        match self.peek() {
            Some(t) => t.at(),
            None => format!("line {}, column {}", self.line, self.line_end),
        }
    }
    fn found(&self) -> String {
        match self.peek() {
            Some(t) => format!("found {t}"),
            None => "found the end of the line".into(),
        }
    }
    fn error<T>(&self, expected: &str) -> Result<T> {
        bail!("{}: expected {expected}, {}", self.here(), self.found())
    }
    fn keyword(&mut self, word: &str) -> bool {
        if self.peek().is_some_and(|t| t.is_keyword(word)) {
            self.next += 1;
            true
        } else {
            false
        }
    }
    fn expect_keyword(&mut self, word: &str) -> Result<()> {
        if self.keyword(word) {
            Ok(())
        } else {
            self.error(word)
        }
    }
    fn symbol(&mut self, s: &str) -> bool {
        if self.peek().is_some_and(|t| t.is_symbol(s)) {
            self.next += 1;
            true
        } else {
            false
        }
    }
    fn expect_symbol(&mut self, s: &str) -> Result<()> {
        if self.symbol(s) {
            Ok(())
        } else {
            self.error(&format!("'{s}'"))
        }
    }
    fn name(&mut self, what: &str) -> Result<Token> {
        match self.peek() {
            Some(t)
                if t.kind == TokenKind::Name
                    && !RESERVED.contains(&t.text.to_ascii_lowercase().as_str()) =>
            {
                let t = t.clone();
                self.next += 1;
                Ok(t)
            }
            _ => self.error(what),
        }
    }
    fn relation(&mut self) -> Result<RelationRef> {
        let t = self.name("a relation name")?;
        if t.text.contains('.') {
            bail!("{}: a relation name has no '.': {t}", t.at());
        }
        Ok(RelationRef {
            name: t.text,
            line: t.line,
            column: t.column,
        })
    }
    fn column(&mut self) -> Result<ColumnRef> {
        let t = self.name("a column name")?;
        Ok(ColumnRef {
            name: t.text,
            line: t.line,
            column: t.column,
        })
    }
    fn columns(&mut self) -> Result<Vec<ColumnRef>> {
        let mut cols = vec![self.column()?];
        while self.symbol(",") {
            cols.push(self.column()?);
        }
        Ok(cols)
    }
    fn project(&mut self) -> Result<Option<Vec<ColumnRef>>> {
        if self.keyword("project") {
            Ok(Some(self.columns()?))
        } else {
            Ok(None)
        }
    }
    fn relop(&mut self) -> Result<Relop> {
        let op = match self.peek().map(|t| t.text.as_str()) {
            Some("=") => Relop::Eq,
            Some("<>") | Some("!=") => Relop::Ne,
            Some("<") => Relop::Lt,
            Some("<=") => Relop::Le,
            Some(">") => Relop::Gt,
            Some(">=") => Relop::Ge,
            _ => return self.error("a comparison (= <> < <= > >=)"),
        };
        self.next += 1;
        Ok(op)
    }
    fn end(&self) -> Result<()> {
        if self.peek().is_some() {
            self.error("the end of the command")
        } else {
            Ok(())
        }
    }
    /// Tokens up to the end of the line or a top-level `stop` keyword.
    fn tokens_until(&mut self, stop: &str) -> Vec<Token> {
        let mut depth = 0i32;
        let start = self.next;
        while let Some(t) = self.peek() {
            if depth == 0 && t.is_keyword(stop) {
                break;
            }
            if t.is_symbol("(") {
                depth += 1;
            } else if t.is_symbol(")") {
                depth -= 1;
            }
            self.next += 1;
        }
        self.tokens[start..self.next].to_vec()
    }
    fn two_relations(&mut self) -> Result<(RelationRef, RelationRef)> {
        let a = self.relation()?;
        self.expect_symbol(",")?;
        let b = self.relation()?;
        Ok((a, b))
    }

    fn statement(&mut self) -> Result<Statement> {
        let line = self.line;
        if self.keyword("delete") {
            self.expect_keyword("from")?;
            let relation = self.relation()?;
            self.expect_keyword("where")?;
            let field = self.column()?;
            let values = if self.symbol("=") {
                let t = self.peek().cloned();
                match t {
                    Some(t) if matches!(t.kind, TokenKind::Number | TokenKind::Str) => {
                        self.next += 1;
                        vec![t]
                    }
                    Some(t) if t.is_symbol("-") => {
                        self.next += 1;
                        match self.peek().cloned() {
                            Some(n) if n.kind == TokenKind::Number => {
                                self.next += 1;
                                vec![Token {
                                    text: format!("-{}", n.text),
                                    ..t
                                }]
                            }
                            _ => return self.error("a number"),
                        }
                    }
                    _ => return self.error("a value"),
                }
            } else {
                self.expect_keyword("in")?;
                self.value_list()?
            };
            self.end()?;
            return Ok(Statement {
                line,
                target: relation.name.clone(),
                operation: Operation::Delete {
                    relation,
                    field,
                    values,
                },
            });
        }
        let target = self.name("a result name (`name = COMMAND …`) or DELETE")?;
        if target.text.contains('.') {
            bail!("{}: a result name has no '.': {target}", target.at());
        }
        self.expect_symbol("=")?;
        let command = match self.peek() {
            Some(t) if t.kind == TokenKind::Name => t.text.to_ascii_lowercase(),
            _ => return self.error("a command (PASS, JOIN, RESTRICT, SORT, …)"),
        };
        self.next += 1;
        let operation = match command.as_str() {
            "pass" => {
                let relation = self.relation()?;
                let project = self.project()?;
                Operation::Pass { relation, project }
            }
            "join" => {
                let (left, right) = self.two_relations()?;
                let on = if self.keyword("on") {
                    let a = self.column()?;
                    let op = self.relop()?;
                    let b = self.column()?;
                    Some((a, op, b))
                } else {
                    None
                };
                let project = self.project()?;
                Operation::Join {
                    left,
                    right,
                    on,
                    project,
                }
            }
            "restrict" => {
                let relation = self.relation()?;
                self.expect_keyword("where")?;
                let condition = self.tokens_until("project");
                if condition.is_empty() {
                    return self.error("a condition");
                }
                let project = self.project()?;
                Operation::Restrict {
                    relation,
                    condition,
                    project,
                }
            }
            "sort" => {
                let relation = self.relation()?;
                self.expect_keyword("by")?;
                let mut keys = vec![];
                loop {
                    let c = self.column()?;
                    let descending = if self.keyword("desc") {
                        true
                    } else {
                        self.keyword("asc");
                        false
                    };
                    keys.push((c, descending));
                    if !self.symbol(",") {
                        break;
                    }
                }
                Operation::Sort { relation, keys }
            }
            "aggregate" => {
                let relation = self.relation()?;
                let by = if self.keyword("by") {
                    Some(self.column()?)
                } else {
                    None
                };
                self.expect_keyword("compute")?;
                let mut items = vec![];
                loop {
                    items.push(self.aggregate_item()?);
                    if !self.symbol(",") {
                        break;
                    }
                }
                Operation::Aggregate {
                    relation,
                    by,
                    items,
                }
            }
            "unique" => {
                let relation = self.relation()?;
                let by = if self.keyword("by") {
                    Some(self.column()?)
                } else {
                    None
                };
                Operation::Unique { relation, by }
            }
            "union" | "intersection" | "difference" => {
                let (left, right) = self.two_relations()?;
                let operation = match command.as_str() {
                    "union" => SetOperation::Union,
                    "intersection" => SetOperation::Intersection,
                    _ => SetOperation::Difference,
                };
                Operation::Set {
                    operation,
                    left,
                    right,
                }
            }
            "equal" => {
                let (left, right) = self.two_relations()?;
                Operation::Equal { left, right }
            }
            "contain" => {
                let (left, right) = self.two_relations()?;
                Operation::Contain { left, right }
            }
            "compare" => {
                let relation = self.relation()?;
                self.expect_keyword("where")?;
                let a = self.column()?;
                let op = self.relop()?;
                let b = self.column()?;
                Operation::Compare { relation, a, op, b }
            }
            "zonesort" => {
                let relation = self.relation()?;
                self.expect_keyword("by")?;
                let by = self.column()?;
                let zone = if self.keyword("zone") {
                    Some(self.count("a zone size in tuples")?)
                } else {
                    None
                };
                Operation::ZoneSort { relation, by, zone }
            }
            _ => {
                self.next -= 1;
                return self.error(
                    "a command: PASS JOIN RESTRICT SORT AGGREGATE UNIQUE UNION INTERSECTION \
                     DIFFERENCE EQUAL CONTAIN COMPARE ZONESORT",
                );
            }
        };
        self.end()?;
        Ok(Statement {
            line,
            target: target.text,
            operation,
        })
    }

    fn count(&mut self, what: &str) -> Result<usize> {
        match self.peek() {
            Some(t) if t.kind == TokenKind::Number => match t.text.parse::<usize>() {
                Ok(n) if n >= 1 => {
                    self.next += 1;
                    Ok(n)
                }
                _ => bail!("{}: {what} must be a whole number ≥ 1, not {t}", t.at()),
            },
            _ => self.error(what),
        }
    }

    fn value_list(&mut self) -> Result<Vec<Token>> {
        self.expect_symbol("(")?;
        let mut values = vec![];
        loop {
            let negative = self.symbol("-");
            match self.peek().cloned() {
                Some(t) if t.kind == TokenKind::Number => {
                    self.next += 1;
                    values.push(Token {
                        text: if negative {
                            format!("-{}", t.text)
                        } else {
                            t.text
                        },
                        ..t
                    });
                }
                Some(t) if t.kind == TokenKind::Str && !negative => {
                    self.next += 1;
                    values.push(t);
                }
                _ => return self.error("a value"),
            }
            if !self.symbol(",") {
                break;
            }
        }
        self.expect_symbol(")")?;
        Ok(values)
    }

    fn aggregate_item(&mut self) -> Result<AggregateItem> {
        let t = match self.peek() {
            Some(t) if t.kind == TokenKind::Name => t.clone(),
            _ => return self.error("an aggregate: COUNT SUM AVG MAX MIN"),
        };
        let function = match t.text.to_ascii_lowercase().as_str() {
            "count" => AggregateFunction::Count,
            "sum" => AggregateFunction::Sum,
            "avg" => AggregateFunction::Avg,
            "max" => AggregateFunction::Max,
            "min" => AggregateFunction::Min,
            _ => return self.error("an aggregate: COUNT SUM AVG MAX MIN"),
        };
        self.next += 1;
        self.expect_symbol("(")?;
        let argument = if function == AggregateFunction::Count && self.symbol("*") {
            None
        } else {
            let start = self.next;
            let mut depth = 0;
            while let Some(t) = self.peek() {
                if t.is_symbol(")") {
                    if depth == 0 {
                        break;
                    }
                    depth -= 1;
                } else if t.is_symbol("(") {
                    depth += 1;
                }
                self.next += 1;
            }
            if self.next == start {
                return self.error("an expression");
            }
            Some(self.tokens[start..self.next].to_vec())
        };
        self.expect_symbol(")")?;
        let name = if self.keyword("as") {
            self.name("a result column name")?.text
        } else {
            let f = t.text.to_ascii_lowercase();
            match &argument {
                None => f,
                Some(tokens) => {
                    let inner: String = tokens
                        .iter()
                        .map(|t| t.text.rsplit('.').next().unwrap_or(&t.text))
                        .filter(|s| s.chars().all(|c| c.is_alphanumeric() || c == '_'))
                        .collect::<Vec<_>>()
                        .join("_");
                    format!("{f}_{inner}")
                }
            }
        };
        Ok(AggregateItem {
            function,
            argument,
            name,
        })
    }
}

/// The source text of a token range, re-joined with single spaces (for expressions).
pub fn tokens_text(tokens: &[Token]) -> String {
    tokens
        .iter()
        .map(|t| t.text.as_str())
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(text: &str) -> Statement {
        parse_script("test", text).unwrap().remove(0)
    }

    fn err(text: &str) -> String {
        format!("{:#}", parse_script("s.rdbe", text).unwrap_err())
    }

    #[test]
    fn the_issue_example_parses() {
        let s = one("r = JOIN photos, users ON photos.user_id = users.user_id \
             PROJECT photos.photo_id, photos.path, users.photos_total");
        assert_eq!(s.target, "r");
        match s.operation {
            Operation::Join {
                left,
                right,
                on: Some((a, op, b)),
                project: Some(p),
            } => {
                assert_eq!(
                    (left.name.as_str(), right.name.as_str()),
                    ("photos", "users")
                );
                assert_eq!(
                    (a.name.as_str(), op, b.name.as_str()),
                    ("photos.user_id", Relop::Eq, "users.user_id")
                );
                assert_eq!(p.len(), 3);
                assert_eq!(p[2].field_of("users"), Some("photos_total"));
                assert_eq!(p[2].field_of("photos"), None);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn every_command_parses() {
        let script = "\
# comment line
a = PASS r PROJECT x, y
b = JOIN r, s            -- Cartesian product
c = JOIN r, s ON r.k <= s.k
d = RESTRICT r WHERE x = 5 AND (y > 2 OR z IS NULL) PROJECT x
e = SORT r BY x DESC, y ASC, z
f = AGGREGATE r BY g COMPUTE count(*), sum(price * 2) AS total, avg(x), max(x), min(y)
g = UNIQUE r
h = UNIQUE r BY x
i = UNION r, s
j = INTERSECTION r, s
k = DIFFERENCE r, s
l = EQUAL r, s
m = CONTAIN r, s
n = COMPARE r WHERE x < y
o = ZONESORT r BY x ZONE 8
DELETE FROM r WHERE x IN (1, -2, 3)
DELETE FROM r WHERE name = 'bob'
";
        let s = parse_script("t", script).unwrap();
        let names: Vec<_> = s.iter().map(|s| s.operation.name()).collect();
        assert_eq!(
            names,
            [
                "PASS",
                "JOIN (Cartesian product)",
                "JOIN",
                "RESTRICT",
                "SORT",
                "AGGREGATE",
                "UNIQUE",
                "UNIQUE",
                "UNION",
                "INTERSECTION",
                "DIFFERENCE",
                "EQUAL",
                "CONTAIN",
                "COMPARE",
                "ZONE-SORT",
                "DELETE",
                "DELETE"
            ]
        );
        assert_eq!(s[0].line, 2);
        match &s[5].operation {
            Operation::Aggregate { items, .. } => {
                let n: Vec<_> = items.iter().map(|i| i.name.as_str()).collect();
                assert_eq!(n, ["count", "total", "avg_x", "max_x", "min_y"]);
                assert_eq!(
                    tokens_text(items[1].argument.as_ref().unwrap()),
                    "price * 2"
                );
            }
            o => panic!("{o:?}"),
        }
        match &s[3].operation {
            Operation::Restrict {
                condition, project, ..
            } => {
                assert_eq!(tokens_text(condition), "x = 5 AND ( y > 2 OR z IS NULL )");
                assert_eq!(project.as_ref().unwrap().len(), 1);
            }
            o => panic!("{o:?}"),
        }
        match &s[15].operation {
            Operation::Delete { values, .. } => {
                let v: Vec<_> = values.iter().map(|t| t.text.as_str()).collect();
                assert_eq!(v, ["1", "-2", "3"]);
            }
            o => panic!("{o:?}"),
        }
    }

    #[test]
    fn errors_name_the_line_and_column() {
        assert_eq!(
            err("a = PASS r\nb = JOIN r s"),
            "s.rdbe: line 2, column 12: expected ',', found 's'"
        );
        assert_eq!(
            err("x = FROB r"),
            "s.rdbe: line 1, column 5: expected a command: PASS JOIN RESTRICT SORT AGGREGATE \
             UNIQUE UNION INTERSECTION DIFFERENCE EQUAL CONTAIN COMPARE ZONESORT, found 'FROB'"
        );
        assert!(err("a = SORT r BY")
            .contains("line 1, column 14: expected a column name, found the end of the line"));
        assert!(err("a = PASS r extra").contains("expected the end of the command, found 'extra'"));
        assert!(err("a = RESTRICT r WHERE x = 'open").contains("column 26: string not closed"));
        assert!(err("a = PASS r ; b").contains("unexpected character ';'"));
        assert!(err("a = ZONESORT r BY x ZONE 0")
            .contains("zone size in tuples must be a whole number"));
        assert!(err("a.b = PASS r").contains("a result name has no '.'"));
        assert!(err("a = RESTRICT r WHERE").contains("expected a condition"));
        assert!(err("DELETE FROM r WHERE x IN (1,").contains("expected a value"));
        assert!(err("a = PASS r\0").contains("column 11: unexpected character '\\0'"));
    }

    #[test]
    fn an_empty_script_and_binary_data_are_errors() {
        assert_eq!(
            err(""),
            "s.rdbe: the script has no command (it is empty, expected `name = COMMAND …` lines)"
        );
        assert!(err("# only\n\n-- comments\n").contains("its 3 line(s) are blank or comments"));
        let e = format!(
            "{:#}",
            parse_script_bytes("s.rdbe", b"a = PASS r\nb = P\xc3\xa9\xffSS r\n").unwrap_err()
        );
        assert_eq!(
            e,
            "s.rdbe: line 2, column 7: not UTF-8 text (byte 0xff): is this a script?"
        );
        assert_eq!(
            parse_script_bytes("s", b"a = PASS r").unwrap(),
            parse_script("s", "a = PASS r").unwrap()
        );
    }
}
