//! The subset of QuickBooks' query language the product uses (docs/vendors/quickbooks.md §3.4):
//!
//! `SELECT * | COUNT(*) FROM Customer|Attachable [WHERE cond AND cond …] [ORDERBY f [ASC|DESC]]
//! [STARTPOSITION n] [MAXRESULTS m]`, conditions `=`, `!=`, `<`, `>`, `<=`, `>=`, `IN (…)` and
//! `LIKE` (only `%` wildcards), string literals in single quotes with `\'` escapes. Keywords,
//! entity and field names are case-insensitive. No `OR`, joins or projections, as at Intuit.

use std::cmp::Ordering;

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, Utc};

/// The most rows one query answers (`MAXRESULTS` above it is refused).
pub const MAX_RESULTS_LIMIT: u64 = 1000;
/// Rows answered when the query has no `MAXRESULTS` (Intuit's default is UNCONFIRMED; 100 is
/// what the SDKs assume).
pub const DEFAULT_MAX_RESULTS: u64 = 100;

/// What a query selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Select {
    All,
    Count,
}

/// A query entity the sandbox serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entity {
    Customer,
    Attachable,
}

impl Entity {
    /// The entity's key in a `QueryResponse`.
    pub fn name(self) -> &'static str {
        match self {
            Entity::Customer => "Customer",
            Entity::Attachable => "Attachable",
        }
    }

    /// The filterable/sortable fields, as Intuit spells them.
    fn fields(self) -> &'static [&'static str] {
        match self {
            Entity::Customer => &[
                "Id",
                "DisplayName",
                "GivenName",
                "FamilyName",
                "CompanyName",
                "PrimaryEmailAddr",
                "Active",
                "MetaData.CreateTime",
                "MetaData.LastUpdatedTime",
            ],
            Entity::Attachable => &[
                "Id",
                "AttachableRef.EntityRef.Type",
                "AttachableRef.EntityRef.value",
                "MetaData.CreateTime",
                "MetaData.LastUpdatedTime",
            ],
        }
    }
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Lt,
    Gt,
    Le,
    Ge,
    In,
    Like,
}

/// A literal as written: quoted strings and bare words (numbers, `true`, `false`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Literal {
    Quoted(String),
    Bare(String),
}

impl Literal {
    fn text(&self) -> &str {
        match self {
            Literal::Quoted(s) | Literal::Bare(s) => s,
        }
    }
}

/// `field op value(s)`; `field` is the canonical spelling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition {
    pub field: &'static str,
    pub op: Op,
    pub values: Vec<Literal>,
}

/// A parsed, validated query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    pub select: Select,
    pub entity: Entity,
    pub conditions: Vec<Condition>,
    /// Field and whether descending.
    pub order_by: Option<(&'static str, bool)>,
    /// 1-based.
    pub start_position: u64,
    pub max_results: u64,
}

/// Why a query is refused: Intuit answers a syntax error with Fault 4000 (`QueryParserError`)
/// and an unknown entity/field or a bad limit with 4001 (`QueryValidationError`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    #[error("QueryParserError: {0}")]
    Parse(String),
    #[error("QueryValidationError: {0}")]
    Validation(String),
}

impl QueryError {
    /// Intuit's Fault code for it.
    pub fn code(&self) -> &'static str {
        match self {
            QueryError::Parse(_) => "4000",
            QueryError::Validation(_) => "4001",
        }
    }
}

/// What kind of value a filterable field holds (every entity spells its fields alike).
fn field_kind(field: &str) -> FieldValue {
    match field {
        "Id" => FieldValue::Number(0),
        "Active" => FieldValue::Bool(false),
        f if f.starts_with("MetaData.") => FieldValue::Time(DateTime::<Utc>::MIN_UTC),
        _ => FieldValue::Text(String::new()),
    }
}

impl Query {
    /// Refuses a condition whose value cannot be read as its field's kind (a time that is no
    /// time, a number that is none): such a condition could match nothing, and an empty answer
    /// would read as "no rows changed" — a sync would silently skip them. Fault 4001 instead.
    pub fn check_literals(&self, zone: FixedOffset) -> Result<(), QueryError> {
        for c in &self.conditions {
            if c.op == Op::Like {
                continue;
            }
            let kind = field_kind(c.field);
            if let Some(bad) = c.values.iter().find(|l| kind.coerce(l, zone).is_none()) {
                return Err(QueryError::Validation(format!(
                    "the value '{}' cannot be compared with {}",
                    bad.text(),
                    c.field
                )));
            }
        }
        Ok(())
    }

    /// Whether a condition names `field` (e.g. `Active`: then inactive customers are not
    /// filtered out implicitly).
    pub fn mentions(&self, field: &str) -> bool {
        self.conditions.iter().any(|c| c.field == field)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Word(String),
    Str(String),
    Sym(&'static str),
}

fn tokenize(input: &str) -> Result<Vec<Token>, QueryError> {
    let mut tokens = Vec::new();
    let mut chars = input.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
        } else if c == '\'' {
            chars.next();
            let mut s = String::new();
            loop {
                match chars.next() {
                    None => {
                        return Err(QueryError::Parse("unterminated string literal".to_string()));
                    }
                    Some('\\') => match chars.next() {
                        Some(escaped) => s.push(escaped),
                        None => {
                            return Err(QueryError::Parse(
                                "unterminated string literal".to_string(),
                            ));
                        }
                    },
                    Some('\'') => break,
                    Some(other) => s.push(other),
                }
            }
            tokens.push(Token::Str(s));
        } else if c.is_alphanumeric() || matches!(c, '_' | '.' | '-' | '+' | ':') {
            let mut s = String::new();
            while let Some(&c) = chars.peek() {
                if c.is_alphanumeric() || matches!(c, '_' | '.' | '-' | '+' | ':') {
                    s.push(c);
                    chars.next();
                } else {
                    break;
                }
            }
            tokens.push(Token::Word(s));
        } else {
            chars.next();
            let sym = match (c, chars.peek()) {
                ('<', Some('=')) => "<=",
                ('>', Some('=')) => ">=",
                ('!', Some('=')) => "!=",
                ('<', Some('>')) => "!=",
                ('<', _) => "<",
                ('>', _) => ">",
                ('=', _) => "=",
                ('(', _) => "(",
                (')', _) => ")",
                (',', _) => ",",
                ('*', _) => "*",
                _ => {
                    return Err(QueryError::Parse(format!(
                        "Encountered \"{c}\" which is not expected"
                    )));
                }
            };
            if sym.len() == 2 {
                chars.next();
            }
            tokens.push(Token::Sym(sym));
        }
    }
    Ok(tokens)
}

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos)
    }

    fn next(&mut self) -> Option<Token> {
        let t = self.tokens.get(self.pos).cloned();
        self.pos += 1;
        t
    }

    fn at_keyword(&self, kw: &str) -> bool {
        matches!(self.peek(), Some(Token::Word(w)) if w.eq_ignore_ascii_case(kw))
    }

    fn keyword(&mut self, kw: &str) -> Result<(), QueryError> {
        if self.at_keyword(kw) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.unexpected(kw))
        }
    }

    fn symbol(&mut self, sym: &str) -> Result<(), QueryError> {
        match self.peek() {
            Some(Token::Sym(s)) if *s == sym => {
                self.pos += 1;
                Ok(())
            }
            _ => Err(self.unexpected(sym)),
        }
    }

    fn word(&mut self, what: &str) -> Result<String, QueryError> {
        match self.next() {
            Some(Token::Word(w)) => Ok(w),
            _ => {
                self.pos -= 1;
                Err(self.unexpected(what))
            }
        }
    }

    fn unexpected(&self, expected: &str) -> QueryError {
        let found = match self.peek() {
            None => "<EOF>".to_string(),
            Some(Token::Word(w)) => w.clone(),
            Some(Token::Str(s)) => format!("'{s}'"),
            Some(Token::Sym(s)) => s.to_string(),
        };
        QueryError::Parse(format!(
            "Encountered \"{found}\" at token {}. Was expecting {expected}",
            self.pos + 1
        ))
    }

    fn literal(&mut self) -> Result<Literal, QueryError> {
        match self.next() {
            Some(Token::Str(s)) => Ok(Literal::Quoted(s)),
            Some(Token::Word(w)) => Ok(Literal::Bare(w)),
            _ => {
                self.pos -= 1;
                Err(self.unexpected("a value"))
            }
        }
    }

    fn number(&mut self, what: &str) -> Result<u64, QueryError> {
        let w = self.word(what)?;
        w.parse()
            .map_err(|_| QueryError::Parse(format!("{what} must be a number, not \"{w}\"")))
    }
}

fn field(entity: Entity, name: &str) -> Result<&'static str, QueryError> {
    entity
        .fields()
        .iter()
        .find(|f| f.eq_ignore_ascii_case(name))
        .copied()
        .ok_or_else(|| {
            QueryError::Validation(format!(
                "property '{name}' is not queryable for entity {}",
                entity.name()
            ))
        })
}

/// Parses and validates a query statement.
pub fn parse(statement: &str) -> Result<Query, QueryError> {
    let mut p = Parser {
        tokens: tokenize(statement)?,
        pos: 0,
    };
    p.keyword("SELECT")?;
    let select = if matches!(p.peek(), Some(Token::Sym("*"))) {
        p.pos += 1;
        Select::All
    } else if p.at_keyword("COUNT") {
        p.pos += 1;
        p.symbol("(")?;
        p.symbol("*")?;
        p.symbol(")")?;
        Select::Count
    } else {
        return Err(p.unexpected("\"*\" or \"COUNT(*)\""));
    };
    p.keyword("FROM")?;
    let entity_name = p.word("an entity")?;
    let entity = if entity_name.eq_ignore_ascii_case("Customer") {
        Entity::Customer
    } else if entity_name.eq_ignore_ascii_case("Attachable") {
        Entity::Attachable
    } else {
        return Err(QueryError::Validation(format!(
            "Entity {entity_name} is not supported by this sandbox (Customer, Attachable)"
        )));
    };
    let mut conditions = Vec::new();
    if p.at_keyword("WHERE") {
        p.pos += 1;
        loop {
            let name = p.word("a property")?;
            let f = field(entity, &name)?;
            let op = match p.next() {
                Some(Token::Sym("=")) => Op::Eq,
                Some(Token::Sym("!=")) => Op::Ne,
                Some(Token::Sym("<")) => Op::Lt,
                Some(Token::Sym(">")) => Op::Gt,
                Some(Token::Sym("<=")) => Op::Le,
                Some(Token::Sym(">=")) => Op::Ge,
                Some(Token::Word(w)) if w.eq_ignore_ascii_case("IN") => Op::In,
                Some(Token::Word(w)) if w.eq_ignore_ascii_case("LIKE") => Op::Like,
                _ => {
                    p.pos -= 1;
                    return Err(p.unexpected("an operator"));
                }
            };
            let values = if op == Op::In {
                p.symbol("(")?;
                let mut values = vec![p.literal()?];
                while matches!(p.peek(), Some(Token::Sym(","))) {
                    p.pos += 1;
                    values.push(p.literal()?);
                }
                p.symbol(")")?;
                values
            } else {
                vec![p.literal()?]
            };
            conditions.push(Condition {
                field: f,
                op,
                values,
            });
            if p.at_keyword("AND") {
                p.pos += 1;
            } else {
                break;
            }
        }
    }
    let mut order_by = None;
    if p.at_keyword("ORDERBY") || p.at_keyword("ORDER") {
        if p.at_keyword("ORDER") {
            p.pos += 1;
            p.keyword("BY")?;
        } else {
            p.pos += 1;
        }
        let name = p.word("a property")?;
        let f = field(entity, &name)?;
        let desc = if p.at_keyword("DESC") {
            p.pos += 1;
            true
        } else {
            if p.at_keyword("ASC") {
                p.pos += 1;
            }
            false
        };
        order_by = Some((f, desc));
    }
    let mut start_position = 1;
    if p.at_keyword("STARTPOSITION") {
        p.pos += 1;
        start_position = p.number("STARTPOSITION")?.max(1);
    }
    let mut max_results = DEFAULT_MAX_RESULTS;
    if p.at_keyword("MAXRESULTS") {
        p.pos += 1;
        max_results = p.number("MAXRESULTS")?;
        // Intuit's exact answer to an over-limit MAXRESULTS is UNCONFIRMED; refusing makes a
        // client that asks for more than it can get fail loudly here.
        if max_results == 0 || max_results > MAX_RESULTS_LIMIT {
            return Err(QueryError::Validation(format!(
                "MAXRESULTS must be between 1 and {MAX_RESULTS_LIMIT}, not {max_results}"
            )));
        }
    }
    if p.peek().is_some() {
        return Err(p.unexpected("<EOF>"));
    }
    Ok(Query {
        select,
        entity,
        conditions,
        order_by,
        start_position,
        max_results,
    })
}

/// A field's value on one row.
#[derive(Debug, Clone, PartialEq)]
pub enum FieldValue {
    Text(String),
    Number(i64),
    Bool(bool),
    Time(DateTime<Utc>),
}

impl FieldValue {
    /// Orders two values of the same kind (text case-insensitively); `None` across kinds.
    pub fn compare(&self, other: &FieldValue) -> Option<Ordering> {
        match (self, other) {
            (FieldValue::Text(a), FieldValue::Text(b)) => {
                Some(a.to_lowercase().cmp(&b.to_lowercase()))
            }
            (FieldValue::Number(a), FieldValue::Number(b)) => Some(a.cmp(b)),
            (FieldValue::Bool(a), FieldValue::Bool(b)) => Some(a.cmp(b)),
            (FieldValue::Time(a), FieldValue::Time(b)) => Some(a.cmp(b)),
            _ => None,
        }
    }

    /// The literal read as a value of this one's kind (times in `zone` when they carry none),
    /// `None` when it cannot be.
    fn coerce(&self, literal: &Literal, zone: FixedOffset) -> Option<FieldValue> {
        let text = literal.text();
        match self {
            FieldValue::Text(_) => Some(FieldValue::Text(text.to_string())),
            FieldValue::Number(_) => text.trim().parse().ok().map(FieldValue::Number),
            FieldValue::Bool(_) => match text.trim().to_ascii_lowercase().as_str() {
                "true" => Some(FieldValue::Bool(true)),
                "false" => Some(FieldValue::Bool(false)),
                _ => None,
            },
            FieldValue::Time(_) => parse_time(text, zone).map(FieldValue::Time),
        }
    }
}

/// A time as Intuit accepts it in a query literal or CDC's `changedSince`: RFC 3339 (Intuit
/// writes `-07:00`, `Z` or `-00:00`), with or without seconds (Intuit's own CDC example is
/// `2015-12-23T09:00-07:00`), zone-less (python-quickbooks sends `2026-12-07T14:00:36`), or a
/// bare date. A zone-less time or a date is read in the company's zone, `zone`, as Intuit reads
/// it.
pub fn parse_time(text: &str, zone: FixedOffset) -> Option<DateTime<Utc>> {
    let text = text.trim();
    const ZONED: [&str; 2] = ["%Y-%m-%dT%H:%M:%S%.f%:z", "%Y-%m-%dT%H:%M%:z"];
    const LOCAL: [&str; 2] = ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M"];
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Some(t.with_timezone(&Utc));
    }
    // chrono's %:z does not take `Z`; Intuit writes it, so read it as +00:00.
    let zoned = text
        .strip_suffix('Z')
        .or_else(|| text.strip_suffix('z'))
        .map(|t| format!("{t}+00:00"));
    let zoned = zoned.as_deref().unwrap_or(text);
    if let Some(t) = ZONED
        .iter()
        .find_map(|f| DateTime::parse_from_str(zoned, f).ok())
    {
        return Some(t.with_timezone(&Utc));
    }
    let local = LOCAL
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(text, f).ok())
        .or_else(|| {
            NaiveDate::parse_from_str(text, "%Y-%m-%d")
                .ok()
                .and_then(|d| d.and_hms_opt(0, 0, 0))
        })?;
    // A fixed offset has exactly one reading of every local time.
    local
        .and_local_timezone(zone)
        .single()
        .map(|t| t.with_timezone(&Utc))
}

/// Whether `value` matches a `LIKE` pattern (`%` = any run of characters), case-insensitively.
fn like(value: &str, pattern: &str) -> bool {
    let value = value.to_lowercase();
    let pattern = pattern.to_lowercase();
    let parts: Vec<&str> = pattern.split('%').collect();
    if parts.len() == 1 {
        return value == pattern;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !value.starts_with(first) || value.len() < first.len() + last.len() {
        return false;
    }
    let mut rest = &value[first.len()..];
    for part in &parts[1..parts.len() - 1] {
        match rest.find(part) {
            Some(i) => rest = &rest[i + part.len()..],
            None => return false,
        }
    }
    rest.ends_with(last)
}

impl Condition {
    /// Whether any of the row's values for the field satisfies the condition. Text compares
    /// case-insensitively (Intuit's collation is UNCONFIRMED; case-insensitive is the safer
    /// assumption for e-mail lookups).
    /// Zone-less time literals are read in `zone`, the company's.
    pub fn matches(&self, values: &[FieldValue], zone: FixedOffset) -> bool {
        values.iter().any(|v| self.matches_one(v, zone))
    }

    fn matches_one(&self, value: &FieldValue, zone: FixedOffset) -> bool {
        if self.op == Op::Like {
            return match (value, self.values.first()) {
                (FieldValue::Text(t), Some(p)) => like(t, p.text()),
                _ => false,
            };
        }
        let cmp = |lit: &Literal| value.coerce(lit, zone).and_then(|l| value.compare(&l));
        match self.op {
            Op::In => self.values.iter().any(|l| cmp(l) == Some(Ordering::Equal)),
            op => self.values.first().and_then(cmp).is_some_and(|o| match op {
                Op::Eq => o == Ordering::Equal,
                Op::Ne => o != Ordering::Equal,
                Op::Lt => o == Ordering::Less,
                Op::Gt => o == Ordering::Greater,
                Op::Le => o != Ordering::Greater,
                Op::Ge => o != Ordering::Less,
                Op::In | Op::Like => false,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_products_queries() {
        let q = parse(
            "SELECT * FROM Customer WHERE PrimaryEmailAddr = 'o\\'neil@example.com' AND Active IN (true, false)",
        )
        .unwrap();
        assert_eq!(q.select, Select::All);
        assert_eq!(q.entity, Entity::Customer);
        assert_eq!(q.conditions.len(), 2);
        assert_eq!(
            q.conditions[0].values,
            vec![Literal::Quoted("o'neil@example.com".into())]
        );
        assert_eq!(q.conditions[1].op, Op::In);
        assert!(q.mentions("Active"));
        assert_eq!((q.start_position, q.max_results), (1, DEFAULT_MAX_RESULTS));

        let q = parse("select count(*) from customer where metadata.lastupdatedtime > '2026-03-01T00:00:00-00:00' orderby Id desc startposition 3 maxresults 1000").unwrap();
        assert_eq!(q.select, Select::Count);
        assert_eq!(q.conditions[0].field, "MetaData.LastUpdatedTime");
        assert_eq!(q.order_by, Some(("Id", true)));
        assert_eq!((q.start_position, q.max_results), (3, 1000));

        let q = parse("SELECT * FROM Attachable WHERE AttachableRef.EntityRef.Type = 'customer' AND AttachableRef.EntityRef.value = '58'").unwrap();
        assert_eq!(q.entity, Entity::Attachable);
        assert_eq!(q.conditions[1].field, "AttachableRef.EntityRef.value");
    }

    #[test]
    fn refuses_what_intuit_refuses() {
        for (q, code) in [
            ("SELECT * FROM Customer WHERE", "4000"),
            ("SELECT Id FROM Customer", "4000"),
            (
                "SELECT * FROM Customer WHERE Active = true OR Id = '1'",
                "4000",
            ),
            (
                "SELECT * FROM Customer WHERE DisplayName = 'unterminated",
                "4000",
            ),
            ("SELECT * FROM Customer MAXRESULTS 1001", "4001"),
            ("SELECT * FROM Customer WHERE Balance > '0'", "4001"),
            ("SELECT * FROM Invoice", "4001"),
            ("", "4000"),
        ] {
            assert_eq!(parse(q).unwrap_err().code(), code, "{q}");
        }
    }

    #[test]
    fn conditions_compare_by_the_fields_kind() {
        let z = FixedOffset::east_opt(0).unwrap();
        let cond = |s: &str| {
            parse(&format!("SELECT * FROM Customer WHERE {s}"))
                .unwrap()
                .conditions[0]
                .clone()
        };
        assert!(cond("Id = '58'").matches(&[FieldValue::Number(58)], z));
        assert!(cond("Id > '9'").matches(&[FieldValue::Number(58)], z));
        assert!(cond("Id IN ('1', '58')").matches(&[FieldValue::Number(58)], z));
        assert!(!cond("Id IN ('1', '2')").matches(&[FieldValue::Number(58)], z));
        assert!(
            cond("PrimaryEmailAddr = 'JANE@example.com'")
                .matches(&[FieldValue::Text("jane@example.com".into())], z)
        );
        assert!(cond("Active = false").matches(&[FieldValue::Bool(false)], z));
        let t = parse_time("2026-03-01T10:00:00Z", z).unwrap();
        assert!(
            cond("MetaData.LastUpdatedTime > '2026-03-01T02:59:59-07:00'")
                .matches(&[FieldValue::Time(t)], z)
        );
        assert!(
            !cond("MetaData.LastUpdatedTime > '2026-03-01T03:00:00-07:00'")
                .matches(&[FieldValue::Time(t)], z)
        );
        assert!(
            cond("MetaData.LastUpdatedTime >= '2026-03-01'").matches(&[FieldValue::Time(t)], z)
        );
        assert!(
            cond("DisplayName LIKE '%oe%'").matches(&[FieldValue::Text("Joe Bloggs".into())], z)
        );
        assert!(
            cond("DisplayName LIKE 'jo%'").matches(&[FieldValue::Text("Joe Bloggs".into())], z)
        );
        assert!(
            !cond("DisplayName LIKE '%x%'").matches(&[FieldValue::Text("Joe Bloggs".into())], z)
        );
        assert!(
            !cond("DisplayName LIKE 'Joe'").matches(&[FieldValue::Text("Joe Bloggs".into())], z)
        );
        // A literal that is not of the field's kind matches nothing.
        assert!(!cond("Id = 'abc'").matches(&[FieldValue::Number(1)], z));
    }

    #[test]
    fn times_in_every_form_intuit_accepts() {
        let pacific = FixedOffset::west_opt(7 * 3600).unwrap();
        let at = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
        for (text, want) in [
            ("2026-12-07T14:00:36Z", "2026-12-07T14:00:36Z"),
            ("2026-12-07T14:00:36.250-07:00", "2026-12-07T21:00:36.250Z"),
            // Intuit's CDC example: no seconds.
            ("2015-12-23T09:00-07:00", "2015-12-23T16:00:00Z"),
            ("2015-12-23T09:00Z", "2015-12-23T09:00:00Z"),
            // python-quickbooks: zone-less, read in the company's zone.
            ("2026-12-07T14:00:36", "2026-12-07T21:00:36Z"),
            ("2026-12-07T14:00", "2026-12-07T21:00:00Z"),
            ("2026-12-07", "2026-12-07T07:00:00Z"),
        ] {
            assert_eq!(parse_time(text, pacific), Some(at(want)), "{text}");
        }
        for bad in [
            "yesterday",
            "2026-13-07",
            "2026-12-07T25:00",
            "",
            "2026-12-07 14:00:36x",
        ] {
            assert_eq!(parse_time(bad, pacific), None, "{bad}");
        }
    }

    #[test]
    fn a_condition_that_cannot_be_evaluated_is_refused() {
        let z = FixedOffset::east_opt(0).unwrap();
        let check = |s: &str| {
            parse(&format!("SELECT * FROM Customer WHERE {s}"))
                .unwrap()
                .check_literals(z)
        };
        assert!(check("MetaData.LastUpdatedTime > '2026-12-07T14:00:36'").is_ok());
        assert!(check("Id IN ('1', '2')").is_ok());
        assert!(check("DisplayName LIKE '%x%'").is_ok());
        for bad in [
            "MetaData.LastUpdatedTime > 'last week'",
            "Id = 'abc'",
            "Id IN ('1', 'x')",
            "Active = 'maybe'",
        ] {
            let e = check(bad).unwrap_err();
            assert_eq!(e.code(), "4001", "{bad}");
        }
    }
}
