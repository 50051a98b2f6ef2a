//! Relations as CSV files with a typed header: the way users bring data to the engine and
//! take results away (issue 4).
//!
//! The header names each column `name:type` (types `u16 u32 u64 i16 i32 i64 f32 char(N)`);
//! an empty field is null. Every error names the file, the line and the column. A file is
//! read as a stream of records, so a relation beyond the HM's capacity is refused at the
//! line that overflows it, without reading the rest. Writing goes to a temporary file
//! renamed at the end, so a failed write leaves no partial file.
use crate::control_program::{tuples_per_page, PAGE_BYTES};
use crate::relation::{FieldType, Relation, Schema, Value, HM_CAPACITY_PAGES};
use anyhow::{bail, Context, Result};
use std::io::Read;
use std::path::Path;

/// Parse one CSV field of type `ty` (empty: null).
pub fn parse_value(text: &str, ty: FieldType) -> Result<Value> {
    if text.is_empty() {
        return Ok(Value::Null);
    }
    let t = text.trim();
    Ok(match ty {
        FieldType::U16 | FieldType::U32 | FieldType::U64 => {
            let max = match ty {
                FieldType::U16 => u16::MAX as u64,
                FieldType::U32 => u32::MAX as u64,
                _ => u64::MAX,
            };
            let v: u64 = match t.parse() {
                Ok(v) => v,
                // Digits that overflow u64: out of range, not malformed.
                Err(_) if is_integer(t) && !t.starts_with('-') => {
                    bail!("{t} is out of range for {ty} (at most {max})")
                }
                Err(_) if is_integer(t) => {
                    bail!("{t} is out of range for {ty} (unsigned: at least 0)")
                }
                Err(_) => bail!("'{text}' is not an unsigned integer"),
            };
            if v > max {
                bail!("{v} is out of range for {ty} (at most {max})");
            }
            Value::Unsigned(v)
        }
        FieldType::I16 | FieldType::I32 | FieldType::I64 => {
            let (min, max) = match ty {
                FieldType::I16 => (i16::MIN as i64, i16::MAX as i64),
                FieldType::I32 => (i32::MIN as i64, i32::MAX as i64),
                _ => (i64::MIN, i64::MAX),
            };
            let v: i64 = match t.parse() {
                Ok(v) => v,
                Err(_) if is_integer(t) => bail!("{t} is out of range for {ty} ({min}..={max})"),
                Err(_) => bail!("'{text}' is not an integer"),
            };
            if v < min || v > max {
                bail!("{v} is out of range for {ty} ({min}..={max})");
            }
            Value::Signed(v)
        }
        FieldType::F32 => {
            let v: f32 = t
                .parse()
                .map_err(|_| anyhow::anyhow!("'{text}' is not a number"))?;
            if v.is_nan() {
                bail!("'{text}' is not a number an f32 field can hold (NaN has no order)");
            }
            if v.is_infinite() {
                bail!(
                    "'{text}' is out of range for f32 (magnitude at most {:e})",
                    f32::MAX
                );
            }
            Value::Float(v)
        }
        FieldType::Char(n) => {
            if text.len() > n {
                let shown: String = text.chars().take(40).collect();
                let more = if shown.len() < text.len() { "…" } else { "" };
                bail!("'{shown}{more}' is {} bytes, longer than {ty}", text.len());
            }
            if text.as_bytes().contains(&0) {
                bail!("a {ty} value may not contain a NUL byte");
            }
            Value::Text(text.to_string())
        }
    })
}

/// An optional sign and at least one digit, nothing else.
fn is_integer(t: &str) -> bool {
    let digits = t.strip_prefix(['-', '+']).unwrap_or(t);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
}

/// A CSV field as UTF-8; the error gives the byte where the text stops being UTF-8.
fn utf8<'a>(bytes: &'a [u8], at: &str) -> Result<&'a str> {
    std::str::from_utf8(bytes).map_err(|e| {
        anyhow::anyhow!(
            "{at}: not UTF-8 text (byte {} of the field is 0x{:02x}: binary data?)",
            e.valid_up_to() + 1,
            bytes[e.valid_up_to()]
        )
    })
}

/// Read a relation named `name` from CSV text (`origin` names the source in errors),
/// within the default HM capacity ([HM_CAPACITY_PAGES]; [parse_csv_from] takes another).
pub fn parse_csv(name: &str, origin: &str, text: &str) -> Result<Relation> {
    parse_csv_from(name, origin, text.as_bytes(), HM_CAPACITY_PAGES)
}

/// Read a relation from CSV bytes (not necessarily UTF-8: binary data is an error that
/// names its line and column), within the default HM capacity ([HM_CAPACITY_PAGES]).
pub fn parse_csv_bytes(name: &str, origin: &str, bytes: &[u8]) -> Result<Relation> {
    parse_csv_from(name, origin, bytes, HM_CAPACITY_PAGES)
}

/// Read a relation from a CSV stream; refuse it, at the line that overflows, when it needs
/// more than `max_pages` HM pages.
pub fn parse_csv_from<R: Read>(
    name: &str,
    origin: &str,
    input: R,
    max_pages: usize,
) -> Result<Relation> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .from_reader(input);
    let header = reader
        .byte_headers()
        .map_err(|e| csv_error(origin, &e))?
        .clone();
    if header.is_empty() || (header.len() == 1 && header[0].is_empty()) {
        bail!("{origin}: line 1: the header is empty (expected name:type columns)");
    }
    let mut fields = Vec::with_capacity(header.len());
    for (i, column) in header.iter().enumerate() {
        let at = format!("{origin}: line 1, column {}", i + 1);
        let column = utf8(column, &at)?;
        // A byte-order mark some editors write before the first column.
        let column = if i == 0 {
            column.strip_prefix('\u{feff}').unwrap_or(column)
        } else {
            column
        };
        let (field, ty) = column
            .split_once(':')
            .with_context(|| format!("{at}: '{column}' has no type (expected name:type)"))?;
        let ty = FieldType::parse(ty).with_context(|| format!("{at} ('{}')", field.trim()))?;
        if field.trim().is_empty() {
            bail!("{at}: the column has no name");
        }
        // A byte-order mark is only one at the start of the file: elsewhere it would make
        // a name that reads like another (and writes back as a BOM).
        if let Some(c) = field
            .trim()
            .chars()
            .find(|&c| c.is_control() || c == '\u{feff}')
        {
            bail!(
                "{at}: the column name {:?} holds the character {c:?} (U+{:04X})",
                field.trim(),
                c as u32
            );
        }
        fields.push((field.trim().to_string(), ty));
    }
    let names: Vec<(&str, FieldType)> = fields.iter().map(|(n, t)| (n.as_str(), *t)).collect();
    let schema = Schema::new(&names).with_context(|| format!("{origin}: line 1 (header)"))?;
    let per_page = tuples_per_page(schema.tuple_words());
    let max_tuples = max_pages.saturating_mul(per_page);
    let mut tuples = Vec::new();
    let mut record = csv::ByteRecord::new();
    loop {
        match reader.read_byte_record(&mut record) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => return Err(csv_error(origin, &e)),
        }
        let line = record.position().map(|p| p.line()).unwrap_or(0);
        if record.len() != fields.len() {
            let (n, h) = (record.len(), fields.len());
            let what = if n < h {
                format!("column {} ('{}') is missing", n + 1, fields[n].0)
            } else {
                format!("column {} is one too many", h + 1)
            };
            bail!(
                "{origin}: line {line}: {n} field{}, the header has {h}: {what}",
                if n == 1 { "" } else { "s" }
            );
        }
        if tuples.len() == max_tuples {
            bail!(
                "{origin}: line {line}: relation '{name}' does not fit the HM: {max_pages} \
                 pages of {PAGE_BYTES} bytes are free, {per_page} of its {}-byte tuples a page",
                schema.tuple_bytes()
            );
        }
        let mut tuple = Vec::with_capacity(fields.len());
        for (i, (bytes, (field, ty))) in record.iter().zip(&fields).enumerate() {
            let at = format!("{origin}: line {line}, column {} ('{field}')", i + 1);
            let text = utf8(bytes, &at)?;
            let value = match parse_value(text, *ty) {
                Ok(v) => v,
                // A quoted field may hold line breaks; one that does and is no valid value
                // is most likely a quote left open, which swallows the lines after it.
                Err(_) if text.contains('\n') => bail!(
                    "{at}: a quoted field runs from here over {} line break(s) and is no {ty} \
                     value (is a '\"' not closed?)",
                    text.matches('\n').count()
                ),
                Err(e) => return Err(e.context(at)),
            };
            tuple.push(value);
        }
        tuples.push(tuple);
    }
    Relation::new(name, schema, tuples).with_context(|| origin.to_string())
}

/// A CSV reader's error with the line it happened on.
fn csv_error(origin: &str, e: &csv::Error) -> anyhow::Error {
    if e.is_io_error() {
        return anyhow::anyhow!("{origin}: reading: {e}");
    }
    match e.position() {
        Some(p) => anyhow::anyhow!("{origin}: line {}: malformed CSV: {e}", p.line()),
        None => anyhow::anyhow!("{origin}: malformed CSV: {e}"),
    }
}

/// Read `path` as a relation named after the file (its stem), streaming it: a relation
/// beyond the HM's default capacity ([HM_CAPACITY_PAGES]; [read_csv_within] takes another)
/// stops the reading at the line that overflows.
pub fn read_csv(path: &Path) -> Result<Relation> {
    read_csv_within(path, HM_CAPACITY_PAGES)
}

/// [read_csv], refusing a relation that needs more than `max_pages` HM pages.
pub fn read_csv_within(path: &Path, max_pages: usize) -> Result<Relation> {
    let name = path
        .file_stem()
        .and_then(|s| s.to_str())
        .with_context(|| format!("{}: no usable file name", path.display()))?;
    let file = std::fs::File::open(path).with_context(|| format!("reading {}", path.display()))?;
    parse_csv_from(
        name,
        &path.display().to_string(),
        std::io::BufReader::new(file),
        max_pages,
    )
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
            e.contains("t.csv: line 2, column 1 ('a')") && e.contains("out of range"),
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
        assert!(
            e.contains("line 3: 1 field, the header has 2: column 2 ('b') is missing"),
            "{e}"
        );
        let e = error("a:char(3)\nabcd\n");
        assert!(
            e.contains("line 2, column 1 ('a')") && e.contains("longer than char(3)"),
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
    fn numbers_beyond_their_type_are_out_of_range_not_malformed() {
        let e = error("a:u64\n18446744073709551616\n");
        assert!(
            e.contains("line 2, column 1 ('a'): 18446744073709551616 is out of range for u64"),
            "{e}"
        );
        let e = error("a:i64\n-9223372036854775809\n");
        assert!(e.contains("out of range for i64"), "{e}");
        let e = error("a:u16\n-1\n");
        assert!(e.contains("-1 is out of range for u16"), "{e}");
        let e = error("a:f32\n1e39\n");
        assert!(e.contains("'1e39' is out of range for f32"), "{e}");
        for bad in ["nan", "inf", "-infinity"] {
            let e = error(&format!("a:f32\n{bad}\n"));
            assert!(e.contains("line 2, column 1 ('a')"), "{bad}: {e}");
        }
        // Tiny values round to zero: precision, not range.
        assert!(parse_csv("t", "t.csv", "a:f32\n1e-50\n").is_ok());
    }

    #[test]
    fn binary_data_and_open_quotes_are_located() {
        let e = format!(
            "{:#}",
            parse_csv_bytes("t", "t.csv", b"a:u16,b:char(4)\n1,x\n2,\xff\xfe\n").unwrap_err()
        );
        assert!(
            e.contains(
                "t.csv: line 3, column 2 ('b'): not UTF-8 text (byte 1 of the field is 0xff"
            ),
            "{e}"
        );
        let e = format!(
            "{:#}",
            parse_csv_bytes("t", "t.csv", b"\x00\x9f\x92").unwrap_err()
        );
        assert!(e.contains("t.csv: line 1, column 1: not UTF-8"), "{e}");
        let e = error("a:u16,b:char(4)\n1,\"ab\n2,x\n3,y\n");
        assert!(
            e.contains(
                "line 2, column 2 ('b'): a quoted field runs from here over 3 line break(s)"
            ) && e.contains("not closed"),
            "{e}"
        );
        // A quoted line break that fits is a value like any other, and survives a round trip.
        let r = parse_csv("t", "t.csv", "a:char(4)\n\"a\nb\"\n").unwrap();
        assert_eq!(r.tuples, vec![vec![Value::Text("a\nb".into())]]);
        assert_eq!(parse_csv("t", "t.csv", &to_csv(&r).unwrap()).unwrap(), r);
    }

    #[test]
    fn a_relation_beyond_the_hm_is_refused_at_the_line_that_overflows() {
        // char(2000): 2 tuples a page; 2 pages hold 4 tuples, the fifth (line 6) overflows.
        let text = format!("a:char(2000)\n{}", "x\n".repeat(5));
        let e = format!(
            "{:#}",
            parse_csv_from("t", "t.csv", text.as_bytes(), 2).unwrap_err()
        );
        assert!(
            e.contains("t.csv: line 6: relation 't' does not fit the HM: 2 pages"),
            "{e}"
        );
        assert_eq!(
            parse_csv_from("t", "t.csv", &text.as_bytes()[..text.len() - 2], 2)
                .unwrap()
                .tuples
                .len(),
            4
        );
    }

    #[test]
    fn a_column_name_with_a_byte_order_mark_or_control_character_is_refused() {
        // Found by fuzzing (fuzz/regressions/csv/bom_after_space_in_name.csv): a BOM after
        // a space stayed in the name, and the CSV written back lost it (a leading BOM is
        // stripped), so the round trip changed the schema.
        let e = error(" \u{feff}k:u32,v:char(3)\n1,abc\n");
        assert!(
            e.contains(
                "t.csv: line 1, column 1: the column name \"\\u{feff}k\" holds the character \
                 '\\u{feff}' (U+FEFF)"
            ),
            "{e}"
        );
        let e = error("a:u16,b\u{7}:u16\n");
        assert!(e.contains("line 1, column 2: the column name"), "{e}");
        // At the very start of the file it is a BOM, and dropped.
        let r = parse_csv("t", "t.csv", "\u{feff}k:u32\n1\n").unwrap();
        assert_eq!(r.schema.fields[0].name, "k");
    }

    #[test]
    fn single_column_nulls_and_odd_text_round_trip() {
        for text in [
            "a:u16\n\"\"\n7\n",
            "a:char(5)\n\" x \"\n\"a\"\"b\"\n",
            "\u{feff}a:I16, b : char( 3 )\n-5,\n,abc\n",
        ] {
            let r = parse_csv("t", "t.csv", text).unwrap();
            let back = parse_csv("t", "t.csv", &to_csv(&r).unwrap()).unwrap();
            assert_eq!(back, r, "{text:?}");
        }
        let r = parse_csv("t", "t.csv", "a:u16\n\"\"\n").unwrap();
        assert_eq!(r.tuples, vec![vec![Value::Null]]);
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
