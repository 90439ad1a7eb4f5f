//! Time-boxed property fuzzing of everything a caller's input reaches before
//! any data is stored: key validation, config canonicalisation, options and
//! the import of foreign Arrow arrays.
//!
//! `FSTORE_FUZZ_SECONDS` (default 5) is split evenly between the targets;
//! each runs rounds of fresh random inputs until its share is spent and
//! prints how many inputs it ran (`--nocapture` shows it). A failing input is
//! shrunk to a minimal one and reported with the seed that reproduces the run
//! (`FSTORE_FUZZ_SEED`).

mod hostile_arrow;

use std::collections::BTreeMap;
use std::ffi::{CStr, CString};
use std::fmt::Debug;
use std::ptr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use fstore::arrow::array::{make_array, Array, ArrayData, ArrayRef, Float64Array, RecordBatch, RecordBatchIterator};
use fstore::arrow::buffer::Buffer;
use fstore::arrow::datatypes::{DataType, Field, Schema};
use fstore::arrow::ffi_stream::{RecordBatchStreamReader, FFI_ArrowArrayStream};
use fstore::ffi::*;
use fstore::{Options, Status};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed, TestCaseResult, TestRunner};

// ---- the time box ------------------------------------------------------

/// The fuzz targets below; `FSTORE_FUZZ_SECONDS` is split evenly between them.
const TARGETS: f64 = 6.0;
const DEFAULT_TOTAL_SECONDS: f64 = 5.0;
/// Inputs per proptest run; a target runs as many runs as its time allows.
const ROUND_CASES: u32 = 32;

fn share() -> Duration {
    let total = match std::env::var("FSTORE_FUZZ_SECONDS") {
        Ok(text) => text.parse::<f64>().unwrap_or_else(|_| panic!("FSTORE_FUZZ_SECONDS={text:?} is not a number")),
        Err(_) => DEFAULT_TOTAL_SECONDS,
    };
    Duration::from_secs_f64(total.max(0.0) / TARGETS)
}

fn seed() -> u64 {
    match std::env::var("FSTORE_FUZZ_SEED") {
        Ok(text) => text.parse().unwrap_or_else(|_| panic!("FSTORE_FUZZ_SEED={text:?} is not a u64")),
        Err(_) => SystemTime::now().duration_since(UNIX_EPOCH).map_or(1, |d| d.as_nanos() as u64),
    }
}

/// Runs `property` on inputs of `strategy` for this target's share of the
/// time (at least one round) and reports how many ran.
fn fuzz<S>(target: &str, strategy: S, property: impl Fn(S::Value) -> TestCaseResult)
where
    S: Strategy,
    S::Value: Debug,
{
    let (share, seed) = (share(), seed());
    let started = Instant::now();
    let mut rounds = 0u64;
    loop {
        let config = Config {
            cases: ROUND_CASES,
            failure_persistence: None,
            rng_seed: RngSeed::Fixed(seed.wrapping_add(rounds)),
            ..Config::default()
        };
        if let Err(failure) = TestRunner::new(config).run(&strategy, &property) {
            panic!("fuzz {target}: {failure}\n(round {rounds} of FSTORE_FUZZ_SEED={seed})");
        }
        rounds += 1;
        if started.elapsed() >= share {
            break;
        }
    }
    let inputs = rounds * u64::from(ROUND_CASES);
    println!("fuzz {target}: {inputs} inputs in {:.1} s (FSTORE_FUZZ_SEED={seed})", started.elapsed().as_secs_f64());
}

// ---- JSON values and their many spellings --------------------------------

/// A JSON value as the fuzzer means it. A number is exactly
/// `digits x 10^exponent` (digits may have leading or trailing zeros).
#[derive(Clone, Debug)]
enum Json {
    Null,
    Bool(bool),
    Number { negative: bool, digits: String, exponent: i128 },
    String(String),
    Array(Vec<Json>),
    /// Unique names.
    Object(Vec<(String, Json)>),
}

/// Largest decimal exponent of a generated number's last digit plus its
/// digit count: keeps every number far inside the double range.
const MAGNITUDE_LIMIT: i128 = 300;

fn number(digits: String, exponent: i128, negative: bool) -> Json {
    let significant = digits.trim_start_matches('0').len() as i128;
    let exponent = exponent.min(MAGNITUDE_LIMIT - significant);
    Json::Number { negative, digits, exponent }
}

/// Numbers of every kind: long digit strings (beyond double precision),
/// exponents small, large and far beyond any machine integer.
fn any_number() -> impl Strategy<Value = Json> {
    let exponent = prop_oneof![
        4 => -30i128..30,
        2 => -400i128..300,
        1 => -(10i128.pow(30))..-(10i128.pow(19)),
    ];
    ("[0-9]{1,40}", exponent, any::<bool>()).prop_map(|(d, e, n)| number(d, e, n))
}

/// Doubles, as an RFC 8785 serialiser writes them: their shortest round-trip
/// digits, the even ones where two tie (Rust's own formatting may pick the
/// other, which is another exact value).
fn double_number() -> impl Strategy<Value = Json> {
    let double = prop_oneof![
        any::<u64>().prop_map(f64::from_bits).prop_filter("finite", |d| d.is_finite()),
        any::<i64>().prop_map(|i| i as f64),
        (-1e6f64..1e6),
        prop::sample::select(vec![
            0.0, -0.0, 5e-324, f64::MAX, f64::MIN_POSITIVE, 9007199254740992.0, 9007199254740993.0, 1e21, 1e-7,
            0.000001, 333333333.3333333, 1e23, 0.1, 0.3,
        ]),
    ];
    double.prop_map(|d| {
        let shortest = serde_jcs::to_string(&d).expect("a finite double"); // e.g. "-1.2345e-7", "0.001"
        let (mantissa, exponent) = shortest.split_once('e').unwrap_or((&shortest, "0"));
        let negative = mantissa.starts_with('-');
        let mantissa = mantissa.trim_start_matches('-');
        let fraction = mantissa.split_once('.').map_or("", |(_, f)| f);
        let digits = mantissa.replace('.', "");
        let exponent = exponent.parse::<i128>().unwrap() - fraction.len() as i128;
        Json::Number { negative, digits, exponent }
    })
}

fn any_char() -> impl Strategy<Value = char> {
    prop_oneof![
        4 => prop::char::range(' ', '~'),
        2 => prop::char::range('\0', '\u{1f}'),
        2 => prop::sample::select(vec!['"', '\\', '/', '\u{7f}', '\u{80}', '\u{e9}', '\u{20ac}', '\u{fb01}', '\u{ffff}', '\u{1f600}']),
        1 => prop::char::range('\u{80}', '\u{ffff}'),
        1 => prop::char::range('\u{10000}', '\u{10ffff}'),
    ]
}

fn any_text() -> impl Strategy<Value = String> {
    prop::collection::vec(any_char(), 0..8).prop_map(String::from_iter)
}

fn json_with(numbers: impl Strategy<Value = Json> + Clone + 'static) -> impl Strategy<Value = Json> {
    let leaf = prop_oneof![
        1 => Just(Json::Null),
        1 => any::<bool>().prop_map(Json::Bool),
        3 => numbers,
        3 => any_text().prop_map(Json::String),
    ];
    leaf.prop_recursive(4, 40, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Json::Array),
            prop::collection::btree_map(any_text(), inner, 0..6).prop_map(|m| Json::Object(m.into_iter().collect())),
        ]
    })
}

/// Choices of spelling, drawn from a seed (xorshift).
struct Spelling(u64);

impl Spelling {
    fn pick(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }

    fn space(&mut self, out: &mut String) {
        out.push_str(["", "", " ", "\n", "\t", "\r\n  "][self.pick(6)]);
    }
}

/// One of the many texts of `value`: member order, whitespace, string escapes
/// and number notation all vary with `seed`.
fn spell(value: &Json, seed: u64) -> String {
    let mut out = String::new();
    let mut spelling = Spelling(seed | 1);
    spelling.space(&mut out);
    spell_value(value, &mut spelling, &mut out);
    spelling.space(&mut out);
    out
}

fn spell_value(value: &Json, s: &mut Spelling, out: &mut String) {
    match value {
        Json::Null => out.push_str("null"),
        Json::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Json::Number { negative, digits, exponent } => spell_number(*negative, digits, *exponent, s, out),
        Json::String(text) => spell_string(text, s, out),
        Json::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                s.space(out);
                spell_value(item, s, out);
                s.space(out);
            }
            out.push(']');
        }
        Json::Object(members) => {
            let mut order: Vec<&(String, Json)> = members.iter().collect();
            for i in (1..order.len()).rev() {
                order.swap(i, s.pick(i + 1));
            }
            out.push('{');
            for (i, (name, item)) in order.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                s.space(out);
                spell_string(name, s, out);
                s.space(out);
                out.push(':');
                s.space(out);
                spell_value(item, s, out);
                s.space(out);
            }
            out.push('}');
        }
    }
}

/// `digits x 10^exponent` in one of JSON's notations, value unchanged.
fn spell_number(negative: bool, digits: &str, exponent: i128, s: &mut Spelling, out: &mut String) {
    let significant = digits.trim_start_matches('0');
    if significant.is_empty() {
        out.push_str(["0", "-0", "0.0", "0e0", "-0.000E+12", "0e-99999999999999999999"][s.pick(6)]);
        return;
    }
    if negative {
        out.push('-');
    }
    let padding = s.pick(3);
    let digits = format!("{significant}{}", "0".repeat(padding));
    let exponent = exponent - padding as i128;
    let count = digits.len() as i128;
    // Written as INT.FRAC x 10^written.
    let (int, frac, written) = match s.pick(3) {
        0 if (0..=25).contains(&exponent) => (format!("{digits}{}", "0".repeat(exponent as usize)), String::new(), 0),
        1 => {
            let zeros = s.pick(4);
            ("0".to_string(), format!("{}{digits}", "0".repeat(zeros)), exponent + count + zeros as i128)
        }
        _ => {
            let point = 1 + s.pick(digits.len());
            (digits[..point].to_string(), digits[point..].to_string(), exponent + count - point as i128)
        }
    };
    out.push_str(&int);
    if !frac.is_empty() {
        out.push('.');
        out.push_str(&frac);
    }
    if written != 0 || s.pick(3) == 0 {
        out.push(['e', 'E'][s.pick(2)]);
        out.push_str(if written < 0 { "-" } else { ["", "+"][s.pick(2)] });
        out.push_str(&"0".repeat(s.pick(3)));
        out.push_str(&written.unsigned_abs().to_string());
    }
}

fn spell_string(text: &str, s: &mut Spelling, out: &mut String) {
    out.push('"');
    for c in text.chars() {
        let short = match c {
            '"' => Some("\\\""),
            '\\' => Some("\\\\"),
            '/' => Some("\\/"),
            '\u{8}' => Some("\\b"),
            '\u{c}' => Some("\\f"),
            '\n' => Some("\\n"),
            '\r' => Some("\\r"),
            '\t' => Some("\\t"),
            _ => None,
        };
        let must_escape = c == '"' || c == '\\' || (c as u32) < 0x20;
        match s.pick(3) {
            0 if !must_escape => out.push(c),
            1 if short.is_some() => out.push_str(short.unwrap()),
            _ => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    let hex = format!("{unit:04x}");
                    out.push_str("\\u");
                    out.push_str(&if s.pick(2) == 0 { hex.to_uppercase() } else { hex });
                }
            }
        }
    }
    out.push('"');
}

/// A text that is equal exactly when the values are: numbers reduced to
/// significant digits and exponent, members sorted.
fn normal(value: &Json) -> String {
    match value {
        Json::Null => "null".into(),
        Json::Bool(b) => b.to_string(),
        Json::Number { negative, digits, exponent } => {
            let significant = digits.trim_start_matches('0');
            let trimmed = significant.trim_end_matches('0');
            if trimmed.is_empty() {
                return "N0".into();
            }
            let shift = (significant.len() - trimmed.len()) as i128;
            format!("N{}{trimmed}e{}", if *negative { "-" } else { "+" }, exponent + shift)
        }
        Json::String(text) => format!("S{text:?}"),
        Json::Array(items) => format!("[{}]", items.iter().map(normal).collect::<Vec<_>>().join(",")),
        Json::Object(members) => {
            let sorted: BTreeMap<&String, String> = members.iter().map(|(n, v)| (n, normal(v))).collect();
            format!("{sorted:?}")
        }
    }
}

/// `value` as serde_json sees it, every number as the nearest double.
fn as_serde(value: &Json) -> serde_json::Value {
    use serde_json::Value as V;
    match value {
        Json::Null => V::Null,
        Json::Bool(b) => V::Bool(*b),
        Json::Number { negative, digits, exponent } => {
            let nearest: f64 = format!("{}{digits}e{exponent}", if *negative { "-" } else { "" }).parse().unwrap();
            V::from(nearest)
        }
        Json::String(text) => V::String(text.clone()),
        Json::Array(items) => V::Array(items.iter().map(as_serde).collect()),
        Json::Object(members) => V::Object(members.iter().map(|(n, v)| (n.clone(), as_serde(v))).collect()),
    }
}

/// serde_json equality with every number compared as a double (serde_json
/// keeps integers and floats apart: 1 and 1.0).
fn same_json(a: &serde_json::Value, b: &serde_json::Value) -> bool {
    use serde_json::Value as V;
    match (a, b) {
        (V::Number(x), V::Number(y)) => x.as_f64() == y.as_f64(),
        (V::Array(x), V::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same_json(x, y)),
        (V::Object(x), V::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same_json(v, w)))
        }
        _ => a == b,
    }
}

/// Every number as a double, so that serde_jcs prints it the RFC 8785 way
/// (it prints serde_json's integers as they are).
fn numbers_as_doubles(value: serde_json::Value) -> serde_json::Value {
    use serde_json::Value as V;
    match value {
        V::Number(n) => V::from(n.as_f64().expect("a finite number")),
        V::Array(items) => V::Array(items.into_iter().map(numbers_as_doubles).collect()),
        V::Object(members) => V::Object(members.into_iter().map(|(k, v)| (k, numbers_as_doubles(v))).collect()),
        other => other,
    }
}

/// Changes leaf `index` (modulo the leaf count) of `value`, `how` selecting
/// the change; numbers change by less than a double can tell apart.
fn mutate(value: &Json, index: usize, how: u8) -> Json {
    fn leaves(value: &Json) -> usize {
        match value {
            Json::Array(items) => items.iter().map(leaves).sum(),
            Json::Object(members) => members.iter().map(|(_, v)| leaves(v)).sum(),
            _ => 1,
        }
    }
    fn walk(value: &Json, target: &mut usize, how: u8) -> Json {
        match value {
            Json::Array(items) => Json::Array(items.iter().map(|v| walk(v, target, how)).collect()),
            Json::Object(members) => Json::Object(members.iter().map(|(n, v)| (n.clone(), walk(v, target, how))).collect()),
            leaf if *target != 0 => {
                *target -= 1;
                leaf.clone()
            }
            leaf => {
                *target = usize::MAX;
                match leaf {
                    Json::Number { negative, digits, exponent } => match how % 3 {
                        0 => Json::Number { negative: *negative, digits: format!("{digits}1"), exponent: exponent - 1 },
                        1 => Json::Number { negative: *negative, digits: format!("{digits}00000000000000000001"), exponent: exponent - 20 },
                        _ => Json::Number { negative: !negative, digits: digits.clone(), exponent: *exponent },
                    },
                    Json::String(text) => Json::String(format!("{text}{}", ['\u{0}', 'a', '\u{1f600}'][how as usize % 3])),
                    Json::Bool(b) => Json::Bool(!b),
                    _ => Json::Bool(false),
                }
            }
        }
    }
    match leaves(value) {
        0 => value.clone(), // empty containers only: nothing to change
        count => walk(value, &mut (index % count), how),
    }
}

fn canonical(text: &str) -> String {
    fstore::canonical_config(text).unwrap_or_else(|e| panic!("{text:?} was refused: {e:?}"))
}

// ---- canonical configs ---------------------------------------------------

/// Equal values give one output whatever their spelling; different values
/// (strings, exact numbers) never share one; the output is a fixed point and
/// parses, with serde_json, to the same value.
#[test]
fn fuzz_canonical_configs() {
    let inputs = (json_with(any_number().boxed()), any::<u64>(), any::<u64>(), any::<usize>(), any::<u8>());
    fuzz("canonical configs", inputs, |(value, seed_a, seed_b, index, how)| {
        let (a, b) = (spell(&value, seed_a), spell(&value, seed_b));
        let canonical_a = canonical(&a);
        prop_assert_eq!(&canonical_a, &canonical(&b), "two spellings of one value: {} and {}", a, b);
        prop_assert_eq!(&canonical(&canonical_a), &canonical_a, "not a fixed point");
        let parsed: serde_json::Value = serde_json::from_str(&canonical_a).expect("serde_json reads the output");
        prop_assert!(same_json(&parsed, &as_serde(&value)), "{} reads as {:?}", canonical_a, parsed);

        let changed = mutate(&value, index, how);
        if normal(&changed) != normal(&value) {
            let other = canonical(&spell(&changed, seed_b));
            prop_assert_ne!(&other, &canonical_a, "different values share an output");
        }
        Ok(())
    });
}

/// For configs whose numbers are doubles, the output is exactly what an
/// independent RFC 8785 implementation (serde_jcs) gives.
#[test]
fn fuzz_canonical_configs_match_rfc8785_for_doubles() {
    fuzz("RFC 8785 agreement", (json_with(double_number().boxed()), any::<u64>()), |(value, seed)| {
        let text = spell(&value, seed);
        let parsed: serde_json::Value = serde_json::from_str(&text).expect("serde_json reads the input");
        let reference = serde_jcs::to_string(&numbers_as_doubles(parsed)).expect("serde_jcs writes it");
        prop_assert_eq!(canonical(&text), reference, "input {}", text);
        Ok(())
    });
}

/// Pieces of JSON and near-JSON, run together into texts that are mostly
/// wrong in interesting ways.
fn json_soup() -> impl Strategy<Value = String> {
    let token = prop::sample::select(vec![
        "{", "}", "[", "]", ",", ":", " ", "\"a\"", "\"", "\\", "\\u", "d83d", "de00", "\\ud800", "1", "-", "0", ".",
        "e", "E", "+", "9", "1e400", "1e-400", "true", "fals", "null", "nul", "\u{1}", "\u{e9}", "\"\\n\"", "\"\\x\"",
        "00", "1e99999999999999999999", "[[[[", "]]]]",
    ]);
    prop_oneof![
        prop::collection::vec(token, 0..24).prop_map(|t| t.concat()),
        any::<String>(),
        (json_with(any_number().boxed()), any::<u64>(), any::<usize>()).prop_map(|(v, seed, cut)| {
            let text = spell(&v, seed);
            let mut cut = cut % (text.len() + 1);
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            text[..cut].to_string()
        }),
    ]
}

/// Any text: a canonical output that serde_json agrees with, or
/// INVALID_ARGUMENT with a message; never a panic.
#[test]
fn fuzz_config_texts() {
    fuzz("config texts", json_soup(), |text| {
        match fstore::canonical_config(&text) {
            Ok(out) => {
                prop_assert_eq!(&canonical(&out), &out, "not a fixed point");
                let input: serde_json::Value = serde_json::from_str(&text).expect("serde_json reads an accepted input");
                let output: serde_json::Value = serde_json::from_str(&out).expect("serde_json reads the output");
                prop_assert!(same_json(&input, &output), "{:?} became {:?}", text, out);
            }
            Err(e) => {
                prop_assert_eq!(e.status(), Status::InvalidArgument);
                prop_assert!(e.message().starts_with("invalid config JSON"), "{}", e.message());
            }
        }
        Ok(())
    });
}

// ---- symbols and lock keys -----------------------------------------------

fn any_symbol_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..40),
        any::<String>().prop_map(String::into_bytes),
        (1020usize..1030, any::<u8>()).prop_map(|(n, b)| vec![b.max(1); n]),
        Just(Vec::new()),
    ]
}

/// A symbol is 1 to 1,024 bytes of UTF-8 without NUL: anything else is
/// INVALID_ARGUMENT with a message, through Rust and through C, which agree,
/// and a failed C call leaves its output alone.
#[test]
fn fuzz_symbols_and_lock_keys() {
    fuzz("symbols and lock keys", any_symbol_bytes(), |bytes| {
        let valid = std::str::from_utf8(&bytes).ok().filter(|s| (1..=1024).contains(&s.len()) && !s.contains('\0'));
        if let Ok(symbol) = std::str::from_utf8(&bytes) {
            match fstore::lock_key(symbol) {
                Ok(_) => prop_assert!(valid.is_some(), "{:?} accepted", symbol),
                Err(e) => {
                    prop_assert!(valid.is_none(), "{:?} refused: {}", symbol, e.message());
                    prop_assert_eq!(e.status(), Status::InvalidArgument);
                    prop_assert!(e.message().contains("symbol"), "{}", e.message());
                }
            }
        }
        if bytes.contains(&0) {
            return Ok(()); // C strings end at the first NUL
        }
        let c_symbol = CString::new(bytes.clone()).unwrap();
        let mut error = unsafe { std::mem::zeroed::<fstore_error>() };
        let mut out = 42i64;
        let status = unsafe { fstore_lock_key(c_symbol.as_ptr(), &mut out, &mut error) };
        let message = c_message(&error);
        unsafe { fstore_error_release(&mut error) };
        match valid {
            Some(symbol) => {
                prop_assert_eq!(status, FSTORE_STATUS_OK, "{}", message);
                prop_assert_eq!(out, fstore::lock_key(symbol).unwrap());
            }
            None => {
                prop_assert_eq!(status, FSTORE_STATUS_INVALID_ARGUMENT);
                prop_assert!(message.contains("symbol"), "{}", message);
                prop_assert_eq!(out, 42, "output written on failure");
            }
        }
        Ok(())
    });
}

fn c_message(error: &fstore_error) -> String {
    if error.message.is_null() {
        return String::new();
    }
    unsafe { CStr::from_ptr(error.message) }.to_string_lossy().into_owned()
}

// ---- options -------------------------------------------------------------

fn any_option() -> impl Strategy<Value = (String, String)> {
    let name = prop_oneof![
        4 => prop::sample::select(fstore::OPTION_NAMES.to_vec()).prop_map(String::from),
        1 => "[a-z._]{0,20}",
        1 => any::<String>(),
    ];
    let value = prop_oneof![
        prop::sample::select(vec![
            "", " ", "true", "false", "1", "0", "yes", "symbol", "entry", "auto", "postgres", "duckdb", "1e3", "0x10",
            "-1", "18446744073709551616", "1073741824", "1073741825", "65535", "65536", "fstore", "a-b", "x\u{e9}",
        ])
        .prop_map(String::from),
        "-?[0-9]{1,25}",
        "[a-zA-Z_][a-zA-Z0-9_$]{0,70}",
        any::<String>(),
    ];
    (name, value)
}

/// Options take a value or refuse it with INVALID_ARGUMENT naming the
/// option (never echoing a password), changing nothing when they refuse;
/// the C function agrees and refuses what is not UTF-8.
#[test]
fn fuzz_options() {
    fuzz("options", (any_option(), prop::collection::vec(any::<u8>(), 0..6)), |((name, value), junk)| {
        let mut options = Options::default();
        let before = format!("{options:?}");
        match options.set(&name, &value) {
            Ok(()) => {
                let after = format!("{options:?}");
                prop_assert!(options.set(&name, &value).is_ok());
                prop_assert_eq!(&format!("{options:?}"), &after, "setting twice is setting once");
                if name == "postgres.password" {
                    let mut other = Options::default();
                    other.set(&name, "another secret").unwrap();
                    prop_assert_eq!(&format!("{other:?}"), &after, "the password shows");
                }
            }
            Err(e) => {
                prop_assert_eq!(e.status(), Status::InvalidArgument);
                prop_assert!(e.message().contains(&name), "{:?} not named in {}", name, e.message());
                prop_assert_eq!(format!("{options:?}"), before, "a refused value changed the options");
            }
        }
        if name.contains('\0') || value.contains('\0') {
            return Ok(());
        }
        // Through C, with the value possibly followed by bytes that are not UTF-8.
        let mut value_bytes = value.clone().into_bytes();
        value_bytes.extend(junk.iter().filter(|b| **b != 0));
        let utf8 = std::str::from_utf8(&value_bytes).is_ok();
        let expected = utf8 && Options::default().set(&name, std::str::from_utf8(&value_bytes).unwrap()).is_ok();
        let (c_name, c_value) = (CString::new(name.clone()).unwrap(), CString::new(value_bytes).unwrap());
        let mut error = unsafe { std::mem::zeroed::<fstore_error>() };
        let status = unsafe {
            let mut c_options = fstore_options_new();
            let status = fstore_options_set(c_options, c_name.as_ptr(), c_value.as_ptr(), &mut error);
            fstore_options_free(&mut c_options);
            status
        };
        let message = c_message(&error);
        unsafe { fstore_error_release(&mut error) };
        if expected {
            prop_assert_eq!(status, FSTORE_STATUS_OK, "{}", message);
        } else {
            prop_assert_eq!(status, FSTORE_STATUS_INVALID_ARGUMENT);
            prop_assert!(!message.is_empty());
        }
        Ok(())
    });
}

// ---- foreign Arrow arrays ------------------------------------------------

/// The shape of one hostile column: its type, declared length and offset,
/// and a seed for every byte in its (honestly sized) buffers.
#[derive(Clone, Debug)]
struct HostileColumn {
    kind: u8,
    len: usize,
    offset: usize,
    seed: u64,
    /// A change to what the exported batch declares, if any.
    tamper: Option<(u8, u64)>,
}

fn any_hostile_column() -> impl Strategy<Value = HostileColumn> {
    (0u8..11, 0usize..7, 0usize..3, any::<u64>(), prop::option::weighted(0.3, (0u8..6, any::<u64>())))
        .prop_map(|(kind, len, offset, seed, tamper)| HostileColumn { kind, len, offset, seed, tamper })
}

/// Random bytes and choices for one column, drawn from its seed.
struct Bytes(Spelling);

impl Bytes {
    fn below(&mut self, n: usize) -> usize {
        self.0.pick(n.max(1))
    }
    fn chance(&mut self, one_in: usize) -> bool {
        self.0.pick(one_in) == 0
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.0.pick(256) as u8).collect()
    }
    /// Mostly ASCII letters, now and then any byte (so now and then not UTF-8).
    fn text(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| if self.chance(8) { self.0.pick(256) as u8 } else { b'a' + self.0.pick(26) as u8 }).collect()
    }
    /// `slots + 1` offsets, in order now and then broken, and the largest.
    fn offsets(&mut self, slots: usize) -> Vec<i64> {
        let mut offsets = vec![0i64];
        for _ in 0..slots {
            let last = *offsets.last().unwrap();
            offsets.push(last + self.below(4) as i64);
        }
        if self.chance(3) {
            let at = self.below(offsets.len());
            offsets[at] = self.below(14) as i64 - 3;
        }
        offsets
    }
}

fn unchecked(builder: fstore::arrow::array::ArrayDataBuilder) -> ArrayData {
    // The point: a producer that skipped every check.
    unsafe { builder.build_unchecked() }
}

/// Builds the column: every buffer holds as many bytes as the declared
/// lengths say (a consumer can rely on nothing more), contents arbitrary.
fn build_column(spec: &HostileColumn) -> ArrayData {
    let mut r = Bytes(Spelling(spec.seed | 1));
    let slots = spec.len + spec.offset;
    let base = |data_type: DataType| ArrayData::builder(data_type).len(spec.len).offset(spec.offset);
    let with_nulls = |builder: fstore::arrow::array::ArrayDataBuilder, r: &mut Bytes| {
        if !r.chance(2) {
            return builder;
        }
        let builder = builder.null_bit_buffer(Some(Buffer::from_slice_ref(r.bytes(slots.div_ceil(8)))));
        if r.chance(2) {
            builder.null_count(r.below(spec.len + 2))
        } else {
            builder
        }
    };
    let fixed = |width: usize, data_type: DataType, r: &mut Bytes| {
        let builder = base(data_type).add_buffer(Buffer::from_slice_ref(r.bytes(slots * width)));
        unchecked(with_nulls(builder, r))
    };
    let variable = |large: bool, data_type: DataType, r: &mut Bytes| {
        let offsets = r.offsets(slots);
        // Values for the largest offset, not the last: a tamper that
        // shortens the array makes an earlier offset the last, and the
        // buffers must stay honestly sized (no consumer can detect a values
        // buffer smaller than its offsets say).
        let size = offsets.iter().copied().max().unwrap().max(0) as usize + r.below(3);
        let offsets = if large {
            Buffer::from_vec(offsets)
        } else {
            Buffer::from_vec(offsets.iter().map(|o| *o as i32).collect::<Vec<_>>())
        };
        let builder = base(data_type).add_buffer(offsets).add_buffer(Buffer::from_slice_ref(r.text(size)));
        unchecked(with_nulls(builder, r))
    };
    match spec.kind {
        0 => fixed(4, DataType::Int32, &mut r),
        1 => fixed(8, DataType::Float64, &mut r),
        2 => fixed(4, DataType::Date32, &mut r),
        3 => fixed(2, DataType::FixedSizeBinary(2), &mut r),
        4 => {
            let builder = base(DataType::Boolean).add_buffer(Buffer::from_slice_ref(r.bytes(slots.div_ceil(8))));
            unchecked(with_nulls(builder, &mut r))
        }
        5 => variable(false, DataType::Utf8, &mut r),
        6 => variable(false, DataType::Binary, &mut r),
        7 => variable(true, DataType::LargeUtf8, &mut r),
        8 => {
            let offsets = r.offsets(slots).iter().map(|o| *o as i32).collect::<Vec<_>>();
            let values = build_column(&HostileColumn { kind: 0, len: r.below(10), offset: 0, seed: spec.seed ^ 1, tamper: None });
            let item = Arc::new(Field::new("item", DataType::Int32, true));
            let builder = base(DataType::List(item)).add_buffer(Buffer::from_vec(offsets)).add_child_data(values);
            unchecked(with_nulls(builder, &mut r))
        }
        9 => {
            let keys: Vec<i8> = (0..slots).map(|_| r.below(8) as i8 - 2).collect();
            let values = build_column(&HostileColumn { kind: 5, len: r.below(4), offset: 0, seed: spec.seed ^ 2, tamper: None });
            let data_type = DataType::Dictionary(Box::new(DataType::Int8), Box::new(DataType::Utf8));
            let builder = base(data_type).add_buffer(Buffer::from_vec(keys)).add_child_data(values);
            unchecked(with_nulls(builder, &mut r))
        }
        _ => {
            let child = build_column(&HostileColumn { kind: 0, len: slots, offset: 0, seed: spec.seed ^ 3, tamper: None });
            let data_type = DataType::Struct(vec![Field::new("a", DataType::Int32, true)].into());
            unchecked(with_nulls(base(data_type).add_child_data(child), &mut r))
        }
    }
}

/// `data` as the import reads it: arrays of no elements (at any depth) are
/// the empty arrays of their types.
fn emptied(data: &ArrayData) -> ArrayData {
    if data.is_empty() {
        return ArrayData::new_empty(data.data_type());
    }
    let children = data.child_data().iter().map(emptied).collect();
    unchecked(data.clone().into_builder().child_data(children))
}

/// A dictionary column as the values it stands for: Parquet may move a
/// null from the dictionary into the keys, which changes nothing a reader sees.
fn plain(column: &ArrayRef) -> ArrayRef {
    match column.data_type() {
        DataType::Dictionary(_, values) => fstore::arrow::compute::cast(column, values).unwrap(),
        _ => Arc::clone(column),
    }
}

fn null_counts_fit(data: &ArrayData) -> bool {
    data.null_count() <= data.len() && data.child_data().iter().all(null_counts_fit)
}

fn hostile_batch(column: ArrayData) -> RecordBatch {
    let rows = column.len();
    let schema = Schema::new(vec![
        Field::new("price", DataType::Float64, true),
        Field::new("hostile", column.data_type().clone(), true),
    ]);
    let price = Float64Array::from((0..rows).map(|i| i as f64).collect::<Vec<_>>());
    RecordBatch::try_new(Arc::new(schema), vec![Arc::new(price), make_array(column)]).unwrap()
}

/// Changes what the exported batch declares, never to more than it holds:
/// a null count, a shorter column (or child of one), a later offset within
/// the length, a NULL buffer, fewer buffers or fewer columns.
fn tamper(batch: &mut hostile_arrow::RawArray, how: u8, seed: u64) {
    let mut r = Bytes(Spelling(seed | 1));
    let column = batch.child(1);
    match how {
        0 => column.null_count = r.below(column.length as usize + 4) as i64 - 2,
        1 if column.n_children > 0 && r.chance(2) => {
            let child = column.child(0);
            child.length -= r.below(child.length as usize + 1) as i64;
        }
        1 => column.length -= r.below(column.length as usize + 1) as i64,
        2 => {
            let shift = r.below(column.length as usize + 1) as i64;
            column.offset += shift;
            column.length -= shift;
        }
        3 if column.n_buffers > 0 => {
            let index = r.below(column.n_buffers as usize);
            hostile_arrow::set_buffer(column, index, ptr::null());
        }
        4 if column.n_buffers > 0 => column.n_buffers -= 1,
        _ => batch.n_children = 1,
    }
}

/// Hostile but honestly sized arrays through `fstore_store_put`: stored and
/// read back unchanged exactly when every value is valid, otherwise
/// INVALID_DATA with a message; never a crash, never another status.
#[test]
fn fuzz_foreign_arrays() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open_store(dir.path());
    let symbol = c"FUZZ";
    let key = fstore_key {
        feature_set: c"hostile".as_ptr(),
        symbol: symbol.as_ptr(),
        start_date: 1,
        end_date: 2,
        config: ptr::null(),
        reserved: [ptr::null(); 4],
    };
    let (stored, refused) = (AtomicUsize::new(0), AtomicUsize::new(0));
    fuzz("foreign arrays", any_hostile_column(), |spec| {
        let column = build_column(&spec);
        let batch = hostile_batch(column.clone());
        let schema = batch.schema();
        let exported = FFI_ArrowArrayStream::new(Box::new(RecordBatchIterator::new(vec![Ok(batch.clone())], schema)));
        let mut stream = match spec.tamper {
            Some((how, seed)) => hostile_arrow::tampered_stream(exported, move |b| tamper(b, how, seed)),
            None => exported,
        };
        let mut error = unsafe { std::mem::zeroed::<fstore_error>() };
        let status = unsafe { fstore_store_put(store, &key, &mut stream, &mut error) };
        let message = c_message(&error);
        unsafe { fstore_error_release(&mut error) };
        prop_assert!(
            status == FSTORE_STATUS_OK || status == FSTORE_STATUS_INVALID_DATA,
            "status {} ({})",
            status,
            message
        );
        let outcome = if status == FSTORE_STATUS_OK { &stored } else { &refused };
        outcome.fetch_add(1, Ordering::Relaxed);
        if status == FSTORE_STATUS_INVALID_DATA {
            prop_assert!(message.contains("column 'hostile'") || message.contains("the batch"), "{}", message);
        }
        if spec.tamper.is_none() {
            // What the exporter hands over (it may re-slice children, which
            // drops a lie outside the slice). A null count beyond the length
            // is refused anywhere; otherwise an array of no elements is read
            // as the empty array of its type.
            let exported = batch.column(1).to_data();
            let valid = null_counts_fit(&exported) && emptied(&exported).validate_full().is_ok();
            prop_assert_eq!(status == FSTORE_STATUS_OK, valid, "{}", message);
        }
        if status == FSTORE_STATUS_OK {
            let mut out = FFI_ArrowArrayStream::empty();
            let status = unsafe { fstore_store_get(store, &key, ptr::null(), &mut out, &mut error) };
            prop_assert_eq!(status, FSTORE_STATUS_OK, "{}", c_message(&error));
            let read: Vec<RecordBatch> = RecordBatchStreamReader::try_new(out).unwrap().collect::<Result<_, _>>().unwrap();
            if spec.tamper.is_none() {
                let rows: usize = read.iter().map(RecordBatch::num_rows).sum();
                prop_assert_eq!(rows, batch.num_rows());
                if let Some(first) = read.first() {
                    let read = fstore::arrow::compute::concat_batches(&first.schema(), &read).unwrap();
                    prop_assert_eq!(
                        read.columns().iter().map(plain).collect::<Vec<_>>(),
                        batch.columns().iter().map(plain).collect::<Vec<_>>(),
                        "stored data differs from what was put"
                    );
                }
            }
        }
        Ok(())
    });
    println!("fuzz foreign arrays: {} stored and read back, {} refused", stored.into_inner(), refused.into_inner());
    unsafe { fstore_store_close(&mut store) };
}

fn open_store(dir: &std::path::Path) -> *mut fstore_store {
    let path = CString::new(dir.to_str().unwrap()).unwrap();
    let mut error = unsafe { std::mem::zeroed::<fstore_error>() };
    let mut store = ptr::null_mut();
    unsafe {
        let mut options = fstore_options_new();
        assert_eq!(fstore_options_set(options, c"cache_dir".as_ptr(), path.as_ptr(), &mut error), FSTORE_STATUS_OK);
        let status = fstore_store_open(options, &mut store, &mut error);
        fstore_options_free(&mut options);
        assert_eq!(status, FSTORE_STATUS_OK, "{}", c_message(&error));
    }
    store
}
