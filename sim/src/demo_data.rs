//! The demo workloads, from the lecture on processing large data sets (seed 000): the
//! photos / users / cameras relations of its relational-model slide, and a web server's
//! access log for its `sort | uniq -c | sort -rn` pipeline. Generated deterministically.
use crate::relation::{FieldType, Relation, Schema, Value};
use anyhow::Result;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const ACCOUNTS: [&str; 8] = [
    "ckaestne", "alice", "bob", "carol", "dave", "erin", "frank", "grace",
];

/// photos(photo_id, user_id, path, upload_date, size, camera_id); a few photos have no
/// known user (null user_id) or camera.
pub fn photos(count: usize, seed: u64) -> Result<Relation> {
    let schema = Schema::new(&[
        ("photo_id", FieldType::U32),
        ("user_id", FieldType::U32),
        ("path", FieldType::Char(20)),
        ("upload_date", FieldType::U32),
        ("size", FieldType::U32),
        ("camera_id", FieldType::U16),
    ])?;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let tuples = (0..count)
        .map(|i| {
            let user = rng.gen_range(0..ACCOUNTS.len() as u64);
            vec![
                Value::Unsigned(133_422_100 + i as u64 * 7 + rng.gen_range(0..7)),
                if rng.gen_bool(0.1) {
                    Value::Null
                } else {
                    Value::Unsigned(54_351 + user)
                },
                Value::Text(format!(
                    "/st/u{:03}/{:06x}.jpg",
                    rng.gen_range(0..1000),
                    rng.gen::<u32>() & 0xff_ffff
                )),
                Value::Unsigned(20_170_501 + rng.gen_range(0..400)),
                Value::Unsigned(rng.gen_range(80_000..9_000_000)),
                if rng.gen_bool(0.15) {
                    Value::Null
                } else {
                    Value::Unsigned(rng.gen_range(1..6))
                },
            ]
        })
        .collect();
    Relation::new("photos", schema, tuples)
}

/// users(user_id, account_name, photos_total, last_login).
pub fn users(seed: u64) -> Result<Relation> {
    let schema = Schema::new(&[
        ("user_id", FieldType::U32),
        ("account_name", FieldType::Char(12)),
        ("photos_total", FieldType::U32),
        ("last_login", FieldType::U32),
    ])?;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let tuples = ACCOUNTS
        .iter()
        .enumerate()
        .map(|(i, name)| {
            vec![
                Value::Unsigned(54_351 + i as u64),
                Value::Text(name.to_string()),
                Value::Unsigned(rng.gen_range(1..5000)),
                Value::Unsigned(20_190_601 + rng.gen_range(0..30)),
            ]
        })
        .collect();
    Relation::new("users", schema, tuples)
}

/// cameras(camera_id, manufacturer, print_name).
pub fn cameras() -> Result<Relation> {
    let schema = Schema::new(&[
        ("camera_id", FieldType::U16),
        ("manufacturer", FieldType::Char(10)),
        ("print_name", FieldType::Char(16)),
    ])?;
    let rows = [
        (1, "Canon", "EOS 80D"),
        (2, "Nikon", "D7500"),
        (3, "Sony", "Alpha 7 III"),
        (4, "Apple", "iPhone XS"),
        (5, "Fujifilm", "X-T3"),
    ];
    let tuples = rows
        .iter()
        .map(|(id, m, p)| {
            vec![
                Value::Unsigned(*id),
                Value::Text(m.to_string()),
                Value::Text(p.to_string()),
            ]
        })
        .collect();
    Relation::new("cameras", schema, tuples)
}

/// access_log(path): the requested path of each line of an nginx access log, with a
/// skewed (Zipf-like) popularity so the top-5 is meaningful.
pub fn access_log(lines: usize, seed: u64) -> Result<Relation> {
    const PATHS: [&str; 12] = [
        "/index.html",
        "/photos",
        "/login",
        "/api/upload",
        "/static/app.js",
        "/static/app.css",
        "/user/ckaestne",
        "/favicon.ico",
        "/search",
        "/about",
        "/api/like",
        "/logout",
    ];
    let schema = Schema::new(&[("path", FieldType::Char(16))])?;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let weights: Vec<f64> = (1..=PATHS.len()).map(|r| 1.0 / r as f64).collect();
    let total: f64 = weights.iter().sum();
    let tuples = (0..lines)
        .map(|_| {
            let mut x = rng.gen::<f64>() * total;
            let mut pick = 0;
            for (i, w) in weights.iter().enumerate() {
                if x < *w {
                    pick = i;
                    break;
                }
                x -= w;
            }
            vec![Value::Text(PATHS[pick].to_string())]
        })
        .collect();
    Relation::new("access_log", schema, tuples)
}
