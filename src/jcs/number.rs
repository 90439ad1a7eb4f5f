//! Exact JSON numbers in ECMAScript notation.
//!
//! RFC 8785 serialises numbers as IEEE doubles, so two configs that differ
//! only beyond double precision (nanosecond timestamps, 64-bit ids) would
//! name one entry. Here a number keeps its exact decimal value: its
//! significant digits and exponent are read from the text (no binary floating
//! point anywhere) and printed the way ECMAScript's `Number.prototype.toString`
//! prints (RFC 8785 section 3.2.2.3). A shortest round-trip double, which is
//! what JSON serialisers emit, has exactly the digits ECMAScript would print
//! (where two shortest spellings tie, ECMAScript's is the even one), so its
//! output is RFC 8785's; any other number keeps all of its digits.

use std::cmp::Ordering;

/// The significant digits of 2^1024 - 2^970, the smallest magnitude that
/// rounds to infinity as a double (the midpoint above the largest double,
/// where ties-to-even rounds up), as 0.DIGITS x 10^309.
const DOUBLE_OVERFLOW_DIGITS: &str = "179769313486231580793728971405303415079934132710037826936173778980444968292764750946649017977587207096330286416692887910946555547851940402630657488671505820681908902000708383676273854845817711531764475730270069855571366959622842914819860834936475292719074168444365510704342711559699508093042880177904174497792";

/// The decimal exponent of that bound's leading digit.
const DOUBLE_OVERFLOW_EXPONENT: i128 = 308;

/// Exponents with more digits than this are added to digit by digit; shorter
/// ones fit an `i128` with room for any offset a text can produce.
const SMALL_EXPONENT_DIGITS: usize = 36;

/// The number is too large in magnitude for a double (I-JSON refuses it).
#[derive(Debug, PartialEq, Eq)]
pub(super) struct OutOfDoubleRange;

/// The exponent of a number's leading digit: value = d.ddd x 10^exponent.
#[derive(Debug, PartialEq, Eq)]
enum Exponent {
    Small(i128),
    /// Beyond 10^35 in magnitude: far outside every threshold below.
    Big { negative: bool, digits: String },
}

/// The canonical text of `text`, a number that already matched the JSON
/// grammar (`-? int frac? exp?`).
pub(super) fn canonical(text: &str) -> Result<String, OutOfDoubleRange> {
    let (negative, unsigned) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (mantissa, exponent) = match unsigned.find(['e', 'E']) {
        Some(at) => (&unsigned[..at], &unsigned[at + 1..]),
        None => (unsigned, "0"),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits: Vec<u8> = int.bytes().chain(frac.bytes()).collect();
    let Some(first) = digits.iter().position(|&d| d != b'0') else {
        return Ok("0".into()); // also -0 and 0e99999999999999999999
    };
    let last = digits.iter().rposition(|&d| d != b'0').expect("a non-zero digit");
    let trailing_zeros = digits.len() - 1 - last;
    let significant = std::str::from_utf8(&digits[first..=last]).expect("ASCII digits");
    // value = significant x 10^(written exponent - frac digits + trailing zeros)
    //       = s.sss x 10^(that + digits - 1); every length fits an i128.
    let shift = trailing_zeros as i128 + significant.len() as i128 - 1 - frac.len() as i128;
    let exponent = leading_exponent(exponent, shift);
    if exceeds_double_range(significant, &exponent) {
        return Err(OutOfDoubleRange);
    }
    let mut out = String::with_capacity(significant.len() + 8);
    if negative {
        out.push('-');
    }
    write_ecmascript(significant, &exponent, &mut out);
    Ok(out)
}

/// `written` (an optionally signed run of digits) plus `shift`, exactly.
fn leading_exponent(written: &str, shift: i128) -> Exponent {
    let (negative, digits) = match written.as_bytes().first() {
        Some(b'-') => (true, &written[1..]),
        Some(b'+') => (false, &written[1..]),
        _ => (false, written),
    };
    let digits = digits.trim_start_matches('0');
    if digits.len() <= SMALL_EXPONENT_DIGITS {
        let magnitude: i128 = if digits.is_empty() { 0 } else { digits.parse().expect("at most 36 digits") };
        return Exponent::Small(if negative { -magnitude } else { magnitude } + shift);
    }
    // |written| >= 10^36 > |shift|, so the sign stays and only digits change.
    let toward_zero = if negative { shift } else { -shift };
    Exponent::Big { negative, digits: add_to_decimal(digits, -toward_zero) }
}

/// `magnitude + delta` for a decimal `magnitude` larger than `|delta|`,
/// carried digit by digit from the right (linear in the digits).
fn add_to_decimal(magnitude: &str, delta: i128) -> String {
    let mut digits: Vec<u8> = magnitude.bytes().map(|d| d - b'0').collect();
    let mut carry = delta;
    for digit in digits.iter_mut().rev() {
        if carry == 0 {
            break;
        }
        let sum = i128::from(*digit) + carry;
        *digit = sum.rem_euclid(10) as u8;
        carry = sum.div_euclid(10);
    }
    let mut out = if carry > 0 { carry.to_string() } else { String::new() };
    out.extend(digits.iter().map(|d| char::from(b'0' + d)));
    out.trim_start_matches('0').to_string()
}

/// Whether s.sss x 10^exponent rounds to infinity as a double.
fn exceeds_double_range(significant: &str, exponent: &Exponent) -> bool {
    match exponent {
        Exponent::Big { negative, .. } => !negative,
        Exponent::Small(e) => match e.cmp(&DOUBLE_OVERFLOW_EXPONENT) {
            Ordering::Less => false,
            Ordering::Greater => true,
            // Same leading exponent: compare digit strings, a prefix being smaller.
            Ordering::Equal => significant.as_bytes() >= DOUBLE_OVERFLOW_DIGITS.trim_end_matches('0').as_bytes(),
        },
    }
}

/// ECMAScript's Number::toString for the value 0.DIGITS x 10^n, with
/// n = exponent + 1 (ECMA-262, Number::toString, steps for radix 10).
fn write_ecmascript(significant: &str, exponent: &Exponent, out: &mut String) {
    let k = significant.len() as i128;
    if let Exponent::Small(e) = *exponent {
        let n = e + 1;
        if k <= n && n <= 21 {
            out.push_str(significant);
            out.extend(std::iter::repeat_n('0', (n - k) as usize));
            return;
        }
        if 0 < n && n <= 21 {
            let (whole, fraction) = significant.split_at(n as usize);
            out.push_str(whole);
            out.push('.');
            out.push_str(fraction);
            return;
        }
        if -6 < n && n <= 0 {
            out.push_str("0.");
            out.extend(std::iter::repeat_n('0', (-n) as usize));
            out.push_str(significant);
            return;
        }
    }
    let (first, rest) = significant.split_at(1);
    out.push_str(first);
    if !rest.is_empty() {
        out.push('.');
        out.push_str(rest);
    }
    out.push('e');
    match exponent {
        Exponent::Small(e) => {
            out.push(if *e < 0 { '-' } else { '+' });
            out.push_str(&e.unsigned_abs().to_string());
        }
        Exponent::Big { negative, digits } => {
            out.push(if *negative { '-' } else { '+' });
            out.push_str(digits);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canon(text: &str) -> String {
        canonical(text).unwrap_or_else(|_| panic!("{text} was refused"))
    }

    #[test]
    fn spellings_of_one_value_agree() {
        for spelling in ["1", "1.0", "1e0", "10e-1", "0.1e1", "1.000E+0", "100e-2", "0.00001e5"] {
            assert_eq!(canon(spelling), "1", "{spelling}");
        }
        for zero in ["0", "-0", "0.0", "-0.000e-7", "0e99999999999999999999", "-0E+400"] {
            assert_eq!(canon(zero), "0", "{zero}");
        }
        assert_eq!(canon("-12.50e1"), "-125");
    }

    #[test]
    fn ecmascript_notation_thresholds() {
        for (text, want) in [
            ("1e20", "100000000000000000000"),
            ("1e21", "1e+21"),
            ("123456789012345678901", "123456789012345678901"),
            ("1234567890123456789012", "1.234567890123456789012e+21"),
            ("0.000001", "0.000001"),
            ("0.0000012345", "0.0000012345"),
            ("1e-7", "1e-7"),
            ("1.5e-7", "1.5e-7"),
            ("12.345", "12.345"),
            ("0.5", "0.5"),
            ("-1E30", "-1e+30"),
        ] {
            assert_eq!(canon(text), want, "{text}");
        }
    }

    #[test]
    fn digits_beyond_double_precision_are_kept() {
        assert_eq!(canon("1700000000000000001"), "1700000000000000001");
        assert_eq!(canon("1700000000000000000"), "1700000000000000000");
        assert_eq!(canon("9007199254740993"), "9007199254740993"); // 2^53 + 1
        assert_eq!(canon("0.1000000000000000055511151231257827"), "0.1000000000000000055511151231257827");
        assert_eq!(canon("1e-400"), "1e-400");
        assert_eq!(canon("-2.5e-324"), "-2.5e-324");
    }

    #[test]
    fn exponents_of_any_length_are_exact() {
        assert_eq!(canon("1e-99999999999999999999"), "1e-99999999999999999999");
        assert_eq!(canon("12.5e-99999999999999999999"), "1.25e-99999999999999999998");
        assert_eq!(canon("0.001e-1000000000000000000000000000000000000000"), "1e-1000000000000000000000000000000000000003");
        assert_eq!(canon("1000e-1000000000000000000000000000000000000000"), "1e-999999999999999999999999999999999999997");
        let long = format!("1e-{}", "9".repeat(10_000));
        assert_eq!(canon(&long), long);
        assert_eq!(canon("1e-000000000000000000000000000000000000000000000005"), "0.00001");
    }

    #[test]
    fn magnitudes_beyond_a_double_are_refused() {
        for huge in ["1e400", "-1e309", "1e99999999999999999999", "1.8e308", "0.00018e312"] {
            assert_eq!(canonical(huge), Err(OutOfDoubleRange), "{huge}");
        }
        let bound = format!("0.{DOUBLE_OVERFLOW_DIGITS}e309");
        assert_eq!(canonical(&bound), Err(OutOfDoubleRange));
        assert_eq!(canon("1.7976931348623157e308"), "1.7976931348623157e+308");
        // Above the largest double but below the midpoint: rounds to it, accepted.
        assert_eq!(canon("1.7976931348623158e308"), "1.7976931348623158e+308");
        let below = format!("0.{}e309", DOUBLE_OVERFLOW_DIGITS.trim_end_matches('0').strip_suffix('2').unwrap().to_owned() + "1");
        assert!(canonical(&below).is_ok());
    }

    /// The bound agrees with the platform's correctly rounded parser right
    /// around the edge, and its digits are 2^1024 - 2^970.
    #[test]
    fn the_overflow_bound_is_the_rounding_midpoint() {
        let mut power = vec![1u8]; // little-endian decimal digits of 2^k
        let mut powers = Vec::new();
        for k in 0..=1024 {
            if k == 970 || k == 1024 {
                powers.push(power.clone());
            }
            let mut carry = 0;
            for d in power.iter_mut() {
                let v = *d * 2 + carry;
                *d = v % 10;
                carry = v / 10;
            }
            if carry > 0 {
                power.push(carry);
            }
        }
        let (small, big) = (&powers[0], &powers[1]);
        let mut difference = big.clone();
        let mut borrow = 0i8;
        for (i, d) in difference.iter_mut().enumerate() {
            let v = *d as i8 - small.get(i).copied().unwrap_or(0) as i8 - borrow;
            borrow = i8::from(v < 0);
            *d = v.rem_euclid(10) as u8;
        }
        let text: String = difference.iter().rev().map(|d| char::from(b'0' + d)).collect();
        assert_eq!(text.trim_start_matches('0'), DOUBLE_OVERFLOW_DIGITS);
        for text in [
            format!("{DOUBLE_OVERFLOW_DIGITS}"),
            format!("{DOUBLE_OVERFLOW_DIGITS}.0000000001"),
            format!("{}1", &DOUBLE_OVERFLOW_DIGITS[..DOUBLE_OVERFLOW_DIGITS.len() - 1]),
            format!("{}91", &DOUBLE_OVERFLOW_DIGITS[..DOUBLE_OVERFLOW_DIGITS.len() - 1]),
            "1.797693134862315807e308".to_string(),
            "1.797693134862315808e308".to_string(),
        ] {
            let infinite = text.parse::<f64>().unwrap().is_infinite();
            assert_eq!(canonical(&text).is_err(), infinite, "{text}");
        }
    }

    #[test]
    fn big_exponent_arithmetic_carries_and_borrows() {
        assert_eq!(add_to_decimal("1000000000000000000000000000000000000000", -1), "999999999999999999999999999999999999999");
        assert_eq!(add_to_decimal("9999999999999999999999999999999999999999", 1), "10000000000000000000000000000000000000000");
        assert_eq!(add_to_decimal("5", 0), "5");
    }
}
