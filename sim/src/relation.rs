//! Relations as the hierarchical memory (HM) holds them (paper §3.3): fixed-length tuples
//! of typed fields, each field with a null tag, encoded in the HM compact format that the
//! IN module reads (see `rdbe_rtl::in_module`): one tag word (bit *j* set when field *j* is
//! null) followed by the field values, big-endian, each padded to an even number of bytes.
use anyhow::{bail, ensure, Context, Result};
use std::fmt;

/// Largest tuple the engine takes: "each tuple … has the same length less than 4Kbytes".
pub const MAX_TUPLE_BYTES: usize = 4094;
/// Fields per relation: one tag word holds 16 null flags.
pub const MAX_FIELDS: usize = 16;

/// What the modelled HM holds: 128 MB (32 768 pages of 4 KB). The simulator keeps the HM in
/// RAM, so it is bounded; the figure is this model's choice, in the order of the
/// semiconductor memory Delta's HM had in front of its disks. A relation that does not fit
/// is refused at the CSV line that overflows it, and a script whose results outgrow it
/// fails at the command that did.
pub const HM_CAPACITY_BYTES: usize = 128 << 20;

/// [HM_CAPACITY_BYTES] in pages of [PAGE_BYTES](crate::control_program::PAGE_BYTES): the
/// HM's default capacity. `rdbe run --hm-pages N` (or, without the flag, the environment
/// variable `RDBE_HM_PAGES`) sets another; library callers pass theirs explicitly
/// ([crate::run::RunOptions::hm_pages], [crate::csv_io::parse_csv_from],
/// [crate::csv_io::read_csv_within]).
pub const HM_CAPACITY_PAGES: usize = HM_CAPACITY_BYTES / crate::control_program::PAGE_BYTES;

/// Field data types (§3.3: unsigned and signed integers, single floats; plus fixed-length
/// character strings, compared byte-wise).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldType {
    U16,
    U32,
    U64,
    I16,
    I32,
    I64,
    F32,
    /// Fixed-length string of N bytes, padded with zero bytes.
    Char(usize),
}

impl FieldType {
    /// Bytes the value occupies in a tuple (char(N) rounds up to an even count).
    pub fn bytes(self) -> usize {
        match self {
            FieldType::U16 | FieldType::I16 => 2,
            FieldType::U32 | FieldType::I32 | FieldType::F32 => 4,
            FieldType::U64 | FieldType::I64 => 8,
            FieldType::Char(n) => n + (n & 1),
        }
    }
    pub fn words(self) -> usize {
        self.bytes() / 2
    }
    /// How the IN module transforms this type when it is the key.
    pub fn key_type(self) -> rdbe_rtl::in_module::KeyType {
        use rdbe_rtl::in_module::KeyType;
        match self {
            FieldType::I16 | FieldType::I32 | FieldType::I64 => KeyType::Signed,
            FieldType::F32 => KeyType::Float,
            _ => KeyType::Unsigned,
        }
    }
    pub fn parse(text: &str) -> Result<FieldType> {
        let t = text.trim().to_ascii_lowercase();
        Ok(match t.as_str() {
            "u16" => FieldType::U16,
            "u32" => FieldType::U32,
            "u64" => FieldType::U64,
            "i16" => FieldType::I16,
            "i32" => FieldType::I32,
            "i64" => FieldType::I64,
            "f32" => FieldType::F32,
            _ => {
                if let Some(n) = t.strip_prefix("char(").and_then(|r| r.strip_suffix(')')) {
                    let n: usize = n
                        .trim()
                        .parse()
                        .with_context(|| format!("char length in type '{text}' is not a number"))?;
                    ensure!(n >= 1, "char length in type '{text}' must be at least 1");
                    ensure!(
                        n <= MAX_TUPLE_BYTES - 2,
                        "char length in type '{text}' exceeds a tuple"
                    );
                    FieldType::Char(n)
                } else {
                    bail!("unknown type '{text}' (expected u16 u32 u64 i16 i32 i64 f32 char(N))")
                }
            }
        })
    }
}

impl fmt::Display for FieldType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FieldType::U16 => write!(f, "u16"),
            FieldType::U32 => write!(f, "u32"),
            FieldType::U64 => write!(f, "u64"),
            FieldType::I16 => write!(f, "i16"),
            FieldType::I32 => write!(f, "i32"),
            FieldType::I64 => write!(f, "i64"),
            FieldType::F32 => write!(f, "f32"),
            FieldType::Char(n) => write!(f, "char({n})"),
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Null,
    Unsigned(u64),
    Signed(i64),
    Float(f32),
    Text(String),
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Null => Ok(()),
            Value::Unsigned(v) => write!(f, "{v}"),
            Value::Signed(v) => write!(f, "{v}"),
            Value::Float(v) => write!(f, "{v}"),
            Value::Text(s) => write!(f, "{s}"),
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Field {
    pub name: String,
    pub ty: FieldType,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Schema {
    pub fields: Vec<Field>,
}

impl Schema {
    pub fn new(fields: &[(&str, FieldType)]) -> Result<Schema> {
        let s = Schema {
            fields: fields
                .iter()
                .map(|(n, t)| Field {
                    name: n.to_string(),
                    ty: *t,
                })
                .collect(),
        };
        s.validate()?;
        Ok(s)
    }
    pub fn validate(&self) -> Result<()> {
        ensure!(
            !self.fields.is_empty(),
            "a relation needs at least one field"
        );
        ensure!(
            self.fields.len() <= MAX_FIELDS,
            "{} fields: at most {MAX_FIELDS} fit one tag word",
            self.fields.len()
        );
        for (i, f) in self.fields.iter().enumerate() {
            ensure!(!f.name.is_empty(), "field {} has an empty name", i + 1);
            ensure!(
                !self.fields[..i].iter().any(|g| g.name == f.name),
                "field name '{}' appears twice",
                f.name
            );
        }
        ensure!(
            self.tuple_bytes() <= MAX_TUPLE_BYTES,
            "tuple of {} bytes (tag included) exceeds the engine's {MAX_TUPLE_BYTES}-byte limit",
            self.tuple_bytes()
        );
        Ok(())
    }
    /// Bytes per tuple in HM compact format, tag word included.
    pub fn tuple_bytes(&self) -> usize {
        2 + self.fields.iter().map(|f| f.ty.bytes()).sum::<usize>()
    }
    pub fn tuple_words(&self) -> usize {
        self.tuple_bytes() / 2
    }
    pub fn field_index(&self, name: &str) -> Result<usize> {
        self.fields
            .iter()
            .position(|f| f.name == name)
            .with_context(|| {
                let names: Vec<_> = self.fields.iter().map(|f| f.name.as_str()).collect();
                format!("no field '{name}' (fields: {})", names.join(", "))
            })
    }
    /// Word offset of field `index` in a compact tuple (the tag word is word 0).
    pub fn word_offset(&self, index: usize) -> usize {
        1 + self.fields[..index]
            .iter()
            .map(|f| f.ty.words())
            .sum::<usize>()
    }
}

/// A relation: a schema and its tuples (each a value per field).
#[derive(Clone, Debug, PartialEq)]
pub struct Relation {
    pub name: String,
    pub schema: Schema,
    pub tuples: Vec<Vec<Value>>,
}

fn check_value(f: &Field, v: &Value) -> Result<()> {
    let ok = match (f.ty, v) {
        (_, Value::Null) => true,
        (FieldType::U16, Value::Unsigned(x)) => *x <= u16::MAX as u64,
        (FieldType::U32, Value::Unsigned(x)) => *x <= u32::MAX as u64,
        (FieldType::U64, Value::Unsigned(_)) => true,
        (FieldType::I16, Value::Signed(x)) => i16::try_from(*x).is_ok(),
        (FieldType::I32, Value::Signed(x)) => i32::try_from(*x).is_ok(),
        (FieldType::I64, Value::Signed(_)) => true,
        (FieldType::F32, Value::Float(_)) => true,
        (FieldType::Char(n), Value::Text(s)) => s.len() <= n && !s.as_bytes().contains(&0),
        _ => false,
    };
    ensure!(
        ok,
        "value '{v}' does not fit field '{}' of type {}",
        f.name,
        f.ty
    );
    Ok(())
}

/// Encode one tuple into HM compact format words.
pub fn encode_tuple(schema: &Schema, values: &[Value]) -> Result<Vec<u16>> {
    ensure!(
        values.len() == schema.fields.len(),
        "tuple has {} values, schema has {} fields",
        values.len(),
        schema.fields.len()
    );
    let mut tag = 0u16;
    let mut bytes = Vec::with_capacity(schema.tuple_bytes());
    for (j, (f, v)) in schema.fields.iter().zip(values).enumerate() {
        check_value(f, v)?;
        let n = f.ty.bytes();
        match v {
            Value::Null => {
                tag |= 1 << j;
                bytes.extend(std::iter::repeat_n(0, n));
            }
            Value::Unsigned(x) => bytes.extend_from_slice(&x.to_be_bytes()[8 - n..]),
            Value::Signed(x) => bytes.extend_from_slice(&x.to_be_bytes()[8 - n..]),
            Value::Float(x) => bytes.extend_from_slice(&x.to_bits().to_be_bytes()),
            Value::Text(s) => {
                bytes.extend_from_slice(s.as_bytes());
                bytes.extend(std::iter::repeat_n(0, n - s.len()));
            }
        }
    }
    let mut words = vec![tag];
    words.extend(bytes.chunks(2).map(|c| u16::from_be_bytes([c[0], c[1]])));
    Ok(words)
}

/// Decode HM compact format words back into values.
pub fn decode_tuple(schema: &Schema, words: &[u16]) -> Result<Vec<Value>> {
    ensure!(
        words.len() == schema.tuple_words(),
        "tuple has {} words, schema needs {}",
        words.len(),
        schema.tuple_words()
    );
    let tag = words[0];
    let bytes: Vec<u8> = words[1..].iter().flat_map(|w| w.to_be_bytes()).collect();
    let mut at = 0;
    let mut out = Vec::with_capacity(schema.fields.len());
    for (j, f) in schema.fields.iter().enumerate() {
        let n = f.ty.bytes();
        let b = &bytes[at..at + n];
        at += n;
        if tag & (1 << j) != 0 {
            out.push(Value::Null);
            continue;
        }
        let mut wide = [0u8; 8];
        if n <= 8 {
            wide[8 - n..].copy_from_slice(b);
        }
        out.push(match f.ty {
            FieldType::U16 | FieldType::U32 | FieldType::U64 => {
                Value::Unsigned(u64::from_be_bytes(wide))
            }
            FieldType::I16 => Value::Signed(i16::from_be_bytes([b[0], b[1]]) as i64),
            FieldType::I32 => Value::Signed(i32::from_be_bytes([b[0], b[1], b[2], b[3]]) as i64),
            FieldType::I64 => Value::Signed(i64::from_be_bytes(wide)),
            FieldType::F32 => {
                Value::Float(f32::from_bits(u32::from_be_bytes([b[0], b[1], b[2], b[3]])))
            }
            FieldType::Char(len) => {
                let s = &b[..len];
                let end = s.iter().position(|&c| c == 0).unwrap_or(len);
                Value::Text(String::from_utf8_lossy(&s[..end]).into_owned())
            }
        });
    }
    Ok(out)
}

impl Relation {
    pub fn new(name: &str, schema: Schema, tuples: Vec<Vec<Value>>) -> Result<Relation> {
        let r = Relation {
            name: name.into(),
            schema,
            tuples,
        };
        for (i, t) in r.tuples.iter().enumerate() {
            encode_tuple(&r.schema, t)
                .with_context(|| format!("relation '{name}', tuple {}", i + 1))?;
        }
        Ok(r)
    }
    /// All tuples in HM compact format.
    pub fn encode(&self) -> Result<Vec<Vec<u16>>> {
        self.tuples
            .iter()
            .map(|t| encode_tuple(&self.schema, t))
            .collect()
    }
    /// Print as an aligned text table.
    pub fn to_table(&self) -> String {
        let headers: Vec<String> = self
            .schema
            .fields
            .iter()
            .map(|f| format!("{}:{}", f.name, f.ty))
            .collect();
        let cells: Vec<Vec<String>> = self
            .tuples
            .iter()
            .map(|t| {
                t.iter()
                    .map(|v| {
                        if *v == Value::Null {
                            "NULL".into()
                        } else {
                            v.to_string()
                        }
                    })
                    .collect()
            })
            .collect();
        let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
        for row in &cells {
            for (w, c) in widths.iter_mut().zip(row) {
                *w = (*w).max(c.chars().count());
            }
        }
        let line = |row: &[String]| -> String {
            row.iter()
                .zip(&widths)
                .map(|(c, w)| format!("{c:<w$}"))
                .collect::<Vec<_>>()
                .join(" | ")
                .trim_end()
                .to_string()
        };
        let mut out = format!(
            "{} ({} tuples)\n{}\n",
            self.name,
            self.tuples.len(),
            line(&headers)
        );
        out += &widths
            .iter()
            .map(|w| "-".repeat(*w))
            .collect::<Vec<_>>()
            .join("-+-");
        out += "\n";
        for row in &cells {
            out += &line(row);
            out += "\n";
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_decode_round_trip_with_nulls_and_padding() {
        let schema = Schema::new(&[
            ("id", FieldType::U32),
            ("delta", FieldType::I16),
            ("score", FieldType::F32),
            ("name", FieldType::Char(5)),
            ("big", FieldType::I64),
        ])
        .unwrap();
        assert_eq!(schema.tuple_bytes(), 2 + 4 + 2 + 4 + 6 + 8);
        assert_eq!(schema.word_offset(2), 4);
        let t = vec![
            Value::Unsigned(0xdead_beef),
            Value::Signed(-2),
            Value::Null,
            Value::Text("abc".into()),
            Value::Signed(i64::MIN),
        ];
        let w = encode_tuple(&schema, &t).unwrap();
        assert_eq!(w[0], 0b100, "tag: field 2 null");
        assert_eq!(&w[1..4], &[0xdead, 0xbeef, 0xfffe]);
        assert_eq!(decode_tuple(&schema, &w).unwrap(), t);
    }

    #[test]
    fn bad_values_and_schemas_are_refused_with_names() {
        let schema = Schema::new(&[("n", FieldType::U16), ("s", FieldType::Char(2))]).unwrap();
        let e = encode_tuple(&schema, &[Value::Unsigned(70000), Value::Null]).unwrap_err();
        assert!(e.to_string().contains("'n'"), "{e}");
        let e = encode_tuple(&schema, &[Value::Null, Value::Text("abc".into())]).unwrap_err();
        assert!(e.to_string().contains("'s'"), "{e}");
        assert!(Schema::new(&[("a", FieldType::Char(4093))]).is_err());
        assert!(Schema::new(&[("a", FieldType::U16), ("a", FieldType::U16)]).is_err());
        assert!(FieldType::parse("float")
            .unwrap_err()
            .to_string()
            .contains("unknown type"));
        assert_eq!(FieldType::parse("char(12)").unwrap(), FieldType::Char(12));
    }
}
