//! Relations as CSV files with a typed header: the way users bring data to the engine and
//! take results away (issue 4).
//!
//! The header names each column `name:type` (types `u16 u32 u64 i16 i32 i64 f32 char(N)`);
//! an empty field is null. Every error names the file, the line and the column. Writing
//! goes to a temporary file renamed at the end, so a failed write leaves no partial file.
use crate::relation::{FieldType, Relation, Schema, Value};
use anyhow::{bail, Context, Result};
use std::path::Path;

/// Parse one CSV field of type `ty` (empty: null).
pub fn parse_value(text: &str, ty: FieldType) -> Result<Value> {
    if text.is_empty() {
        return Ok(Value::Null);
    }
    let t = text.trim();
    Ok(match ty {
        FieldType::U16 | FieldType::U32 | FieldType::U64 => {
            let v: u64 = t
                .parse()
                .with_context(|| format!("'{text}' is not an unsigned integer"))?;
            let max = match ty {
                FieldType::U16 => u16::MAX as u64,
                FieldType::U32 => u32::MAX as u64,
                _ => u64::MAX,
            };
            if v > max {
                bail!("{v} is out of range for {ty} (at most {max})");
            }
            Value::Unsigned(v)
        }
        FieldType::I16 | FieldType::I32 | FieldType::I64 => {
            let v: i64 = t
                .parse()
                .with_context(|| format!("'{text}' is not an integer"))?;
            let (min, max) = match ty {
                FieldType::I16 => (i16::MIN as i64, i16::MAX as i64),
                FieldType::I32 => (i32::MIN as i64, i32::MAX as i64),
                _ => (i64::MIN, i64::MAX),
            };
            if v < min || v > max {
                bail!("{v} is out of range for {ty} ({min}..={max})");
            }
            Value::Signed(v)
        }
        FieldType::F32 => Value::Float(
            t.parse()
                .with_context(|| format!("'{text}' is not a number"))?,
        ),
        FieldType::Char(n) => {
            if text.len() > n {
                bail!("'{text}' is {} bytes, longer than {ty}", text.len());
            }
            if text.as_bytes().contains(&0) {
                bail!("a {ty} value may not contain a NUL byte");
            }
            Value::Text(text.to_string())
        }
    })
}

/// Read a relation named `name` from CSV text (`origin` names the source in errors).
pub fn parse_csv(name: &str, origin: &str, text: &str) -> Result<Relation> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .from_reader(text.as_bytes());
    let header = reader
        .headers()
        .with_context(|| format!("{origin}: reading the header"))?
        .clone();
    if header.is_empty() || (header.len() == 1 && header[0].is_empty()) {
        bail!("{origin}: line 1: the header is empty (expected name:type columns)");
    }
    let mut fields = Vec::with_capacity(header.len());
    for (i, column) in header.iter().enumerate() {
        let (field, ty) = column.split_once(':').with_context(|| {
            format!(
                "{origin}: line 1, column {}: '{column}' has no type (expected name:type)",
                i + 1
            )
        })?;
        let ty = FieldType::parse(ty)
            .with_context(|| format!("{origin}: line 1, column {} ('{field}')", i + 1))?;
        if field.trim().is_empty() {
            bail!("{origin}: line 1, column {}: the column has no name", i + 1);
        }
        fields.push((field.trim().to_string(), ty));
    }
    let names: Vec<(&str, FieldType)> = fields.iter().map(|(n, t)| (n.as_str(), *t)).collect();
    let schema = Schema::new(&names).with_context(|| format!("{origin}: line 1 (header)"))?;
    let mut tuples = Vec::new();
    for record in reader.records() {
        let record = record.with_context(|| format!("{origin}: malformed CSV"))?;
        let line = record.position().map(|p| p.line()).unwrap_or(0);
        if record.len() != fields.len() {
            bail!(
                "{origin}: line {line}: {} fields, the header has {}",
                record.len(),
                fields.len()
            );
        }
        let mut tuple = Vec::with_capacity(fields.len());
        for (text, (field, ty)) in record.iter().zip(&fields) {
            tuple.push(
                parse_value(text, *ty)
                    .with_context(|| format!("{origin}: line {line}, column '{field}'"))?,
            );
        }
        tuples.push(tuple);
    }
    Relation::new(name, schema, tuples).with_context(|| format!("{origin}"))
}

/// Read `path` as a relation named after the file (its stem).
pub fn read_csv(path: &Path) -> Result<Relation> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let name = path
        .file_stem()
        .and_then(|s| s.to_str())
        .with_context(|| format!("{}: no usable file name", path.display()))?;
    parse_csv(name, &path.display().to_string(), &text)
}

/// The relation as CSV text with a typed header.
pub fn to_csv(relation: &Relation) -> Result<String> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer.write_record(
        relation
            .schema
            .fields
            .iter()
            .map(|f| format!("{}:{}", f.name, f.ty)),
    )?;
    for t in &relation.tuples {
        writer.write_record(t.iter().map(|v| v.to_string()))?;
    }
    Ok(String::from_utf8(writer.into_inner()?)?)
}

/// Write the relation to `path` atomically (a temporary file, then a rename).
pub fn write_csv(relation: &Relation, path: &Path) -> Result<()> {
    let text = to_csv(relation)?;
    let tmp = path.with_extension("csv.partial");
    let written = std::fs::write(&tmp, text)
        .with_context(|| format!("writing {}", tmp.display()))
        .and_then(|()| {
            std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))
        });
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::demo_data;

    #[test]
    fn demo_relations_round_trip_through_csv() {
        for r in [
            demo_data::photos(40, 1).unwrap(),
            demo_data::users(2).unwrap(),
            demo_data::cameras().unwrap(),
        ] {
            let text = to_csv(&r).unwrap();
            let back = parse_csv(&r.name, "test", &text).unwrap();
            assert_eq!(back, r, "{}", r.name);
        }
    }

    #[test]
    fn every_type_and_null_parse() {
        let text =
            "a:u16,b:i32,c:f32,d:char(5),e:u64\n65535,-7,1.5,\"x,y\",\n,,,,18446744073709551615\n";
        let r = parse_csv("t", "t.csv", text).unwrap();
        assert_eq!(
            r.tuples[0],
            vec![
                Value::Unsigned(65535),
                Value::Signed(-7),
                Value::Float(1.5),
                Value::Text("x,y".into()),
                Value::Null
            ]
        );
        assert_eq!(
            r.tuples[1][..4],
            [Value::Null, Value::Null, Value::Null, Value::Null]
        );
    }

    fn error(text: &str) -> String {
        format!("{:#}", parse_csv("t", "t.csv", text).unwrap_err())
    }

    #[test]
    fn bad_input_names_file_line_and_column() {
        let e = error("a:u16\n70000\n");
        assert!(
            e.contains("t.csv: line 2, column 'a'") && e.contains("out of range"),
            "{e}"
        );
        let e = error("a:i16,b:u8\n1,2\n");
        assert!(
            e.contains("line 1, column 2 ('b')") && e.contains("unknown type"),
            "{e}"
        );
        let e = error("a\n1\n");
        assert!(e.contains("has no type"), "{e}");
        let e = error("a:u16,b:u16\n1,2\n3\n");
        assert!(e.contains("line 3: 1 fields, the header has 2"), "{e}");
        let e = error("a:char(3)\nabcd\n");
        assert!(
            e.contains("line 2, column 'a'") && e.contains("longer than char(3)"),
            "{e}"
        );
        let e = error("a:u32\nx1\n");
        assert!(e.contains("not an unsigned integer"), "{e}");
        let e = error("a:char(4000),b:char(200)\n");
        assert!(e.contains("line 1 (header)"), "{e}");
        let e = error("a:u16,a:u16\n");
        assert!(e.contains("line 1 (header)"), "{e}");
    }

    #[test]
    fn writing_is_atomic_and_reads_back() {
        let dir = std::env::temp_dir().join(format!("rdbe_csv_{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let r = demo_data::users(5).unwrap();
        let path = dir.join("users.csv");
        write_csv(&r, &path).unwrap();
        assert_eq!(read_csv(&path).unwrap(), r);
        assert!(!dir.join("users.csv.partial").exists());
        // A directory where the file should go: the write fails and leaves nothing.
        let blocked = dir.join("blocked.csv");
        std::fs::create_dir_all(&blocked).unwrap();
        assert!(write_csv(&r, &blocked).is_err());
        assert!(
            !dir.join("blocked.csv.partial").exists(),
            "no partial file is left"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
