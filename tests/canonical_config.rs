//! Canonical configs against RFC 8785's published examples, and the one
//! deliberate difference: numbers keep their exact value, so configs that a
//! double cannot tell apart still name different entries.

mod common;

use common::{reader, sample};
use fstore::{canonical_config, Key, Options, Status, Store};

fn canonical(text: &str) -> String {
    canonical_config(text).unwrap_or_else(|e| panic!("{text:?}: {e:?}"))
}

/// RFC 8785 Appendix B, "Number Serialization Samples": IEEE 754 bit
/// patterns and their JSON text (the NaN and Infinity rows cannot be written
/// in JSON; `1e400` below stands for them).
const APPENDIX_B: &[(u64, &str)] = &[
    (0x0000000000000000, "0"),
    (0x8000000000000000, "0"),
    (0x0000000000000001, "5e-324"),
    (0x8000000000000001, "-5e-324"),
    (0x7fefffffffffffff, "1.7976931348623157e+308"),
    (0xffefffffffffffff, "-1.7976931348623157e+308"),
    (0x4340000000000000, "9007199254740992"),
    (0xc340000000000000, "-9007199254740992"),
    (0x4430000000000000, "295147905179352830000"),
    (0x44b52d02c7e14af5, "9.999999999999997e+22"),
    (0x44b52d02c7e14af6, "1e+23"),
    (0x44b52d02c7e14af7, "1.0000000000000001e+23"),
    (0x444b1ae4d6e2ef4e, "999999999999999700000"),
    (0x444b1ae4d6e2ef4f, "999999999999999900000"),
    (0x444b1ae4d6e2ef50, "1e+21"),
    (0x3eb0c6f7a0b5ed8c, "9.999999999999997e-7"),
    (0x3eb0c6f7a0b5ed8d, "0.000001"),
    (0x41b3de4355555553, "333333333.3333332"),
    (0x41b3de4355555554, "333333333.33333325"),
    (0x41b3de4355555555, "333333333.3333333"),
    (0x41b3de4355555556, "333333333.3333334"),
    (0x41b3de4355555557, "333333333.33333343"),
    (0xbecbf647612f3696, "-0.0000033333333333333333"),
    (0x43143ff3c1cb0959, "1424953923781206.2"),
];

/// The row whose double has two shortest round-trip spellings
/// (1424953923781206.25 lies halfway between ...206.2 and ...206.3):
/// ECMAScript picks the even digit, Rust's formatting the other one.
const ROUND_TO_EVEN_ROW: u64 = 0x43143ff3c1cb0959;

/// Every sample's text, in any notation, is its own canonical form; the
/// same double as Rust writes it (its shortest round-trip digits) gives the
/// RFC's text too, except where two shortest spellings tie: there the other
/// spelling is another exact value, kept as written.
#[test]
fn appendix_b_number_samples() {
    for &(bits, want) in APPENDIX_B {
        assert_eq!(canonical(want), want);
        assert_eq!(canonical(&want.to_uppercase()), want);
        let double = f64::from_bits(bits);
        for text in [format!("{double:e}"), format!("{double:E}"), format!("{double}")] {
            let expected = if bits == ROUND_TO_EVEN_ROW { "1424953923781206.3" } else { want };
            assert_eq!(canonical(&text), expected, "{bits:016x} written as {text}");
        }
    }
    let err = canonical_config("1e400").unwrap_err();
    assert_eq!(err.status(), Status::InvalidArgument);
    assert!(err.message().contains("double range"), "{}", err.message());
}

/// RFC 8785 section 3.2.2's input and section 3.2.3's canonical output. The
/// one difference is deliberate: `333333333.33333329` is not the shortest
/// form of a double, so it keeps its digits here where JCS rounds it to
/// `333333333.3333333`; written in that shortest form the output is the RFC's
/// byte for byte.
#[test]
fn section_3_2_3_canonical_example() {
    let input = r#"{
       "numbers": [333333333.33333329, 1E30, 4.50,
                   2e-3, 0.000000000000000000000000001],
       "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
       "literals": [null, true, false]
     }"#;
    let rfc_output = r#"{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"string":"€$\u000f\nA'B\"\\\\\"/"}"#;
    assert_eq!(canonical(input), rfc_output.replace("333333333.3333333", "333333333.33333329"));
    assert_eq!(canonical(&input.replace("333333333.33333329", "333333333.3333333")), rfc_output);
}

/// RFC 8785 section 3.2.3's sorting example: names sort by UTF-16 code units.
#[test]
fn section_3_2_3_sorting_example() {
    let input = r#"{
       "\u20ac": "Euro Sign",
       "\r": "Carriage Return",
       "\ufb33": "Hebrew Letter Dalet With Dagesh",
       "1": "One",
       "\ud83d\ude00": "Emoji: Grinning Face",
       "\u0080": "Control",
       "\u00f6": "Latin Small Letter O With Diaeresis"
     }"#;
    let want = concat!(
        "{\"\\r\":\"Carriage Return\",\"1\":\"One\",\"\u{80}\":\"Control\",",
        "\"\u{f6}\":\"Latin Small Letter O With Diaeresis\",\"\u{20ac}\":\"Euro Sign\",",
        "\"\u{1f600}\":\"Emoji: Grinning Face\",\"\u{fb33}\":\"Hebrew Letter Dalet With Dagesh\"}"
    );
    assert_eq!(canonical(input), want);
}

/// RFC 8785 section 3.2.4: the output is UTF-8, with no Unicode normalisation.
#[test]
fn section_3_2_4_utf8_example() {
    let want: [u8; 30] = [
        0x7b, 0x22, 0x55, 0x6e, 0x6e, 0x6f, 0x72, 0x6d, 0x61, 0x6c, 0x69, 0x7a, 0x65, 0x64, 0x20, 0x55, 0x6e, 0x69,
        0x63, 0x6f, 0x64, 0x65, 0x22, 0x3a, 0x22, 0x41, 0xcc, 0x8a, 0x22, 0x7d,
    ];
    assert_eq!(canonical(r#"{"Unnormalized Unicode":"A\u030a"}"#).as_bytes(), want);
}

/// Two configs that one double cannot tell apart name two entries: the
/// features stored for one are never served for the other, while every
/// spelling of one value finds the same entry.
#[test]
fn configs_that_differ_beyond_double_precision_name_different_entries() {
    let dir = tempfile::tempdir().unwrap();
    let mut options = Options::default();
    options.set("cache_dir", dir.path().to_str().unwrap()).unwrap();
    let store = Store::open(options).unwrap();
    let key = |config: &str| Key::new("returns", "AAPL", 19000, 19010, config);
    for (stored, twin, same) in [
        (r#"{"as_of_ns": 1700000000000000001}"#, r#"{"as_of_ns": 1700000000000000000}"#, r#"{"as_of_ns": 1.700000000000000001e18}"#),
        (r#"{"id": 9007199254740993}"#, r#"{"id": 9007199254740992}"#, r#"{"id": 9007199254740993.0}"#),
        (r#"{"eps": 1e-400}"#, r#"{"eps": 0}"#, r#"{"eps": 0.1e-399}"#),
    ] {
        let k = key(stored);
        store.put(&k, &mut reader(sample(&k, 1))).unwrap();
        assert!(store.contains(&key(same)).unwrap(), "{same} is {stored}");
        assert!(!store.contains(&key(twin)).unwrap(), "{twin} is not {stored}");
    }
}
