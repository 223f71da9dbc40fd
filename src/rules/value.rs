//! A rule file as a plain tree in which every key and value knows where it was written, so that every validation
//! error can name its line and column. Built from `toml_edit`'s span-keeping parse: serde's `Spanned` cannot
//! span dotted keys (`when.from = …`) or implicit tables, and one serde error would hide all the others.

use std::ops::Range;

use toml_edit::{ImDocument, Item, Value};

#[derive(Debug, Clone)]
pub(crate) struct Node {
    pub span: Range<usize>,
    pub kind: Kind,
}

#[derive(Debug, Clone)]
pub(crate) enum Kind {
    Str(String),
    Int(i64),
    Float,
    Bool(bool),
    Datetime,
    Array(Vec<Node>),
    Table(Vec<Entry>),
}

#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub key: String,
    pub key_span: Range<usize>,
    pub value: Node,
}

impl Node {
    /// What an admin would call this kind of value, for "expected …, found …" messages.
    pub fn type_name(&self) -> &'static str {
        match self.kind {
            Kind::Str(_) => "a string",
            Kind::Int(_) => "an integer",
            Kind::Float => "a number",
            Kind::Bool(_) => "true/false",
            Kind::Datetime => "a date",
            Kind::Array(_) => "a list",
            Kind::Table(_) => "a table",
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match &self.kind {
            Kind::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self.kind {
            Kind::Bool(b) => Some(b),
            _ => None,
        }
    }

    pub fn as_table(&self) -> Option<&[Entry]> {
        match &self.kind {
            Kind::Table(t) => Some(t),
            _ => None,
        }
    }
}

/// Parses TOML text; on a syntax error, the byte span and toml's message on one line.
pub(crate) fn parse(text: &str) -> Result<Node, (Range<usize>, String)> {
    let doc = ImDocument::parse(text).map_err(|e| {
        let span = e.span().unwrap_or(0..0);
        let lines: Vec<&str> = e.message().lines().map(str::trim).filter(|l| !l.is_empty()).collect();
        (span, lines.join("; "))
    })?;
    Ok(table(doc.as_table().iter().map(|(k, _)| k), |k| doc.as_table().get_key_value(k), 0..0))
}

fn table<'a>(
    keys: impl Iterator<Item = &'a str>,
    get: impl Fn(&str) -> Option<(&'a toml_edit::Key, &'a Item)>,
    span: Range<usize>,
) -> Node {
    let entries = keys
        .filter_map(|k| {
            let (key, item) = get(k)?;
            let key_span = key.span().unwrap_or_else(|| span.clone());
            let value = item_node(item, key_span.clone())?;
            Some(Entry { key: k.to_string(), key_span, value })
        })
        .collect();
    Node { span, kind: Kind::Table(entries) }
}

/// `fallback` is the span of the key naming this item: implicit tables (`[a.b]` creating `a`, dotted keys) have none.
fn item_node(item: &Item, fallback: Range<usize>) -> Option<Node> {
    Some(match item {
        Item::None => return None,
        Item::Value(v) => value_node(v, fallback),
        Item::Table(t) => {
            let span = t.span().unwrap_or(fallback);
            table(t.iter().map(|(k, _)| k), |k| t.get_key_value(k), span)
        }
        Item::ArrayOfTables(a) => {
            let span = a.span().unwrap_or(fallback);
            let items = a
                .iter()
                .map(|t| {
                    let s = t.span().unwrap_or_else(|| span.clone());
                    table(t.iter().map(|(k, _)| k), |k| t.get_key_value(k), s)
                })
                .collect();
            Node { span, kind: Kind::Array(items) }
        }
    })
}

fn value_node(v: &Value, fallback: Range<usize>) -> Node {
    let span = v.span().unwrap_or(fallback);
    let kind = match v {
        Value::String(s) => Kind::Str(s.value().clone()),
        Value::Integer(i) => Kind::Int(*i.value()),
        Value::Float(_) => Kind::Float,
        Value::Boolean(b) => Kind::Bool(*b.value()),
        Value::Datetime(_) => Kind::Datetime,
        Value::Array(a) => Kind::Array(a.iter().map(|v| value_node(v, span.clone())).collect()),
        Value::InlineTable(t) => return table(t.iter().map(|(k, _)| k), |k| t.get_key_value(k), span),
    };
    Node { span, kind }
}
