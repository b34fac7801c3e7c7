//! Seconds as decimal text, without std's float formatting and parsing: those are general
//! (any precision, exponents, shortest round-trip) and cost ~30 KiB of the static binary
//! (code and tables), where `analyze` and the stage marks only need `{:.N}` and plain
//! `12.345` numbers. Both functions give exactly what std gives (see the tests).

/// `format!("{v:.N}")` with N = `decimals` (at most 3): the exact binary value rounded
/// to N decimals, ties to even; `-` for a negative value even when it rounds to zero.
pub fn fixed(v: f64, decimals: u32) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    let sign = if v.is_sign_negative() { "-" } else { "" };
    if v.is_infinite() {
        return format!("{sign}inf");
    }
    // v = m × 2^e exactly (IEEE 754 double: 52-bit fraction, exponent biased by 1075).
    let bits = v.to_bits();
    let exp = ((bits >> 52) & 0x7ff) as i32;
    let frac = bits & ((1 << 52) - 1);
    let (m, e) = if exp == 0 { (frac, -1074) } else { (frac | 1 << 52, exp - 1075) };
    let pow = 10u128.pow(decimals);
    let scaled = m as u128 * pow; // below 2^63
    let n = if e >= 0 {
        // An integer: only out of u128 far beyond any time or coordinate (saturates).
        scaled.checked_shl(e as u32).filter(|n| n >> e == scaled).unwrap_or(u128::MAX)
    } else if e <= -127 {
        0 // below 2^-64: rounds to zero
    } else {
        let (q, r, half) = (scaled >> -e, scaled & ((1 << -e) - 1), 1u128 << (-e - 1));
        q + (r > half || (r == half && q % 2 == 1)) as u128
    };
    // As u64: printing a u128 would link its own formatting code.
    let (int, frac) = (u64::try_from(n / pow).unwrap_or(u64::MAX), (n % pow) as u64);
    if decimals == 0 {
        return format!("{sign}{int}");
    }
    format!("{sign}{int}.{frac:0w$}", w = decimals as usize)
}

/// `s.parse::<f64>()` for plain decimals (`12`, `12.`, `.5`, `2.830`: digits, at most one
/// point); None for anything else. Exact (the division of two exactly represented numbers
/// is rounded once, as parse rounds) up to 15 significant digits and 22 decimals, which
/// covers every mark kiss-s6 writes; longer numbers are within a few units of the last place.
pub fn parse(s: &str) -> Option<f64> {
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    if int.is_empty() && frac.is_empty() || !(int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit())) {
        return None;
    }
    let mut mant = 0f64;
    for b in int.bytes().chain(frac.bytes()) {
        mant = mant * 10.0 + f64::from(b - b'0');
    }
    let mut scale = 1f64;
    for _ in 0..frac.len() {
        scale *= 10.0;
    }
    Some(mant / scale)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small xorshift: the same values every run.
    fn values() -> impl Iterator<Item = f64> {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let special = [0.0, -0.0, 0.25, 0.125, 0.0005, 0.0015, 2.5, 0.15, 1e-300, 5e-324, -0.0004, 1e18, 9.9995, 479.25];
        let random: Vec<f64> = (0..200_000)
            .map(|i| match i % 4 {
                // Times with up to 6 decimals, ties included.
                0 => (next() % 100_000_000) as f64 / 1e6,
                1 => (next() % 1_000_000) as f64 / 8.0,
                2 => f64::from_bits(next() >> 1) % 1e18, // any magnitude up to there, subnormals too
                _ => -((next() % 10_000_000) as f64 / 1e4),
            })
            .collect();
        special.into_iter().chain(random)
    }

    #[test]
    fn fixed_is_what_std_formats() {
        for v in values() {
            for d in 0..=3 {
                assert_eq!(fixed(v, d), format!("{:.*}", d as usize, v), "{v:e} with {d} decimals");
            }
        }
        assert_eq!(fixed(f64::NAN, 3), format!("{:.3}", f64::NAN));
        assert_eq!(fixed(f64::INFINITY, 3), format!("{:.3}", f64::INFINITY));
        assert_eq!(fixed(f64::NEG_INFINITY, 1), format!("{:.1}", f64::NEG_INFINITY));
    }

    #[test]
    fn parse_is_what_std_parses() {
        for s in ["0", "12", "12.", ".5", "2.830", "2.912", "21.08", "0.000", "123456.789", "4.300", "99999.999999"] {
            assert_eq!(parse(s), s.parse().ok(), "{s}");
        }
        for v in values().filter(|v| v.is_sign_positive() && *v < 1e9) {
            let s = fixed(v, 3);
            assert_eq!(parse(&s), s.parse().ok(), "{s}");
        }
        for s in ["", ".", "1.2.3", "-1", "1e3", " 1", "a"] {
            assert_eq!(parse(s), None, "{s:?}");
        }
    }
}
