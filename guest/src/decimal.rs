//! Decimal text to `f64`, as `str::parse::<f64>` reads it, for numbers that
//! sources send as strings (`"1250499"`, `"87.5"`).
//!
//! Hand-written because of the component's size budget: core's parser
//! brings about 17 KB (code and a 10 KB table of powers of five) for a few
//! fields. This one is exact in the same way, with less speed on the rare
//! slow path: Clinger's fast path when the digits and the power of ten are
//! both exact in an `f64`, otherwise exact big-integer arithmetic, rounding
//! half to even. The unit tests hold it to core's parser.

use crate::prelude::*;

/// Significant digits kept; past them only "something non-zero follows"
/// matters, which a final `1` records. 800 is more than the 767 that an
/// `f64` halfway point can need.
const MAX_DIGITS: usize = 800;

/// A finite number written as `str::parse::<f64>` accepts it (sign, digits,
/// optional fraction and exponent); None for anything else, and for what
/// parses to an infinity or NaN.
pub(crate) fn parse_f64(text: &str) -> Option<f64> {
    let bytes = text.as_bytes();
    let (negative, mut at) = match bytes.first() {
        Some(b'-') => (true, 1),
        Some(b'+') => (false, 1),
        _ => (false, 0),
    };
    let mut digits: Vec<u8> = Vec::new();
    // Value = 0.digits x 10^point, less the leading zeros skipped.
    let mut point: i64 = 0;
    let mut any_digit = false;
    let mut in_fraction = false;
    let mut truncated_nonzero = false;
    while let Some(&byte) = bytes.get(at) {
        match byte {
            b'0'..=b'9' => {
                any_digit = true;
                let digit = byte - b'0';
                if digits.is_empty() && digit == 0 {
                    // A leading zero: before the point it is nothing; after
                    // it, it moves the point.
                    if in_fraction {
                        point -= 1;
                    }
                } else {
                    if !in_fraction {
                        point += 1;
                    }
                    if digits.len() < MAX_DIGITS {
                        digits.push(digit);
                    } else if digit != 0 {
                        truncated_nonzero = true;
                    }
                }
            }
            b'.' if !in_fraction => in_fraction = true,
            _ => break,
        }
        at += 1;
    }
    if !any_digit {
        return None;
    }
    if let Some(b'e' | b'E') = bytes.get(at) {
        at += 1;
        let negative_exponent = match bytes.get(at) {
            Some(b'-') => {
                at += 1;
                true
            }
            Some(b'+') => {
                at += 1;
                false
            }
            _ => false,
        };
        let start = at;
        let mut exponent: i64 = 0;
        while let Some(&byte) = bytes.get(at).filter(|byte| byte.is_ascii_digit()) {
            // Saturating: a huge exponent is an overflow or a zero either way.
            exponent = (exponent * 10 + i64::from(byte - b'0')).min(1 << 40);
            at += 1;
        }
        if at == start {
            return None;
        }
        point += if negative_exponent {
            -exponent
        } else {
            exponent
        };
    }
    if at != bytes.len() {
        return None;
    }
    if truncated_nonzero {
        digits.push(1);
    }
    let magnitude = magnitude(&digits, point)?;
    Some(if negative { -magnitude } else { magnitude })
}

/// `0.digits x 10^point` (no leading zeros in `digits`) rounded to the
/// nearest `f64`; None when that is infinite.
fn magnitude(digits: &[u8], point: i64) -> Option<f64> {
    let Some(&last) = digits.last() else {
        return Some(0.0);
    };
    debug_assert!(last <= 9);
    // Past these bounds the value is below half the smallest subnormal
    // (rounds to zero) or above the largest finite f64.
    if point < -324 {
        return Some(0.0);
    }
    if point > 310 {
        return None;
    }
    // Now `digits.len()` <= 801 and |point| <= 324: the exponent of ten on
    // the integer `digits` fits comfortably.
    let exponent = point - digits.len() as i64;
    if let Some(fast) = fast_path(digits, exponent) {
        return Some(fast);
    }
    slow_path(digits, exponent)
}

/// Exact when the digits fit in 53 bits and 10^|exponent| is itself exact
/// (up to 10^22): one correctly rounded operation.
fn fast_path(digits: &[u8], exponent: i64) -> Option<f64> {
    if digits.len() > 15 || !(-22..=22).contains(&exponent) {
        return None;
    }
    let mut value: u64 = 0;
    for &digit in digits {
        value = value * 10 + u64::from(digit);
    }
    let mut power = 1.0f64;
    for _ in 0..exponent.unsigned_abs() {
        power *= 10.0;
    }
    // Below 10^15 < 2^53: exact.
    let value = value as f64;
    Some(if exponent < 0 {
        value / power
    } else {
        value * power
    })
}

/// `digits x 10^exponent` by exact rational arithmetic: numerator over
/// denominator, scaled by a power of two so the quotient has 54 bits (53
/// and a rounding bit), then rounded half to even with the remainder as the
/// sticky bit. Subnormals keep fewer bits.
fn slow_path(digits: &[u8], exponent: i64) -> Option<f64> {
    let mut numerator = Big::from_digits(digits);
    let mut denominator = Big::one();
    if exponent >= 0 {
        numerator.mul_pow10(exponent.unsigned_abs());
    } else {
        denominator.mul_pow10(exponent.unsigned_abs());
    }
    // floor(log2(value)): the bit lengths give it within one.
    let mut log2 = numerator.bits() as i64 - denominator.bits() as i64;
    if compare_scaled(&numerator, &denominator, log2) == core::cmp::Ordering::Less {
        log2 -= 1;
    }
    // The weight of the last of 53 bits, but never below 2^-1074.
    let lsb = (log2 - 52).max(-1074);
    // quotient = floor(value x 2^(1 - lsb)): 53 bits and a rounding bit.
    let shift = 1 - lsb;
    if shift >= 0 {
        numerator.shl(shift.unsigned_abs());
    } else {
        denominator.shl(shift.unsigned_abs());
    }
    let (quotient, exact) = numerator.div_small_quotient(&denominator);
    let mut mantissa = quotient >> 1;
    let half = quotient & 1 == 1;
    if half && (!exact || mantissa & 1 == 1) {
        mantissa += 1;
    }
    let mut lsb = lsb;
    if mantissa == 1 << 53 {
        mantissa >>= 1;
        lsb += 1;
    }
    if mantissa < 1 << 52 {
        // Subnormal (lsb is -1074), or zero.
        return Some(f64::from_bits(mantissa));
    }
    let biased = lsb + 1075;
    if biased >= 2047 {
        return None;
    }
    Some(f64::from_bits(
        (biased.unsigned_abs() << 52) | (mantissa & ((1 << 52) - 1)),
    ))
}

/// Compares `a` with `b x 2^shift` (either sign of shift).
fn compare_scaled(a: &Big, b: &Big, shift: i64) -> core::cmp::Ordering {
    let (mut a, mut b) = (a.clone(), b.clone());
    if shift >= 0 {
        b.shl(shift.unsigned_abs());
    } else {
        a.shl(shift.unsigned_abs());
    }
    a.compare(&b)
}

/// An unsigned big integer, little-endian 32-bit limbs, no trailing zero
/// limbs.
#[derive(Clone)]
struct Big(Vec<u32>);

impl Big {
    fn one() -> Big {
        Big(vec![1])
    }

    fn from_digits(digits: &[u8]) -> Big {
        let mut big = Big(Vec::new());
        for &digit in digits {
            big.mul_add(10, u32::from(digit));
        }
        big
    }

    fn mul_add(&mut self, factor: u32, addend: u32) {
        let mut carry = u64::from(addend);
        for limb in &mut self.0 {
            let product = u64::from(*limb) * u64::from(factor) + carry;
            // The low half.
            *limb = product as u32;
            carry = product >> 32;
        }
        if carry > 0 {
            // Below 2^32 by construction.
            self.0.push(carry as u32);
        }
    }

    fn mul_pow10(&mut self, mut power: u64) {
        while power > 0 {
            let step = power.min(9);
            self.mul_add(10u32.pow(step as u32), 0);
            power -= step;
        }
    }

    fn shl(&mut self, bits: u64) {
        if self.0.is_empty() {
            return;
        }
        let limbs = (bits / 32) as usize;
        let bits = (bits % 32) as u32;
        if bits > 0 {
            let mut carry = 0;
            for limb in &mut self.0 {
                let next = *limb >> (32 - bits);
                *limb = (*limb << bits) | carry;
                carry = next;
            }
            if carry > 0 {
                self.0.push(carry);
            }
        }
        if limbs > 0 {
            let mut shifted = vec![0; limbs];
            shifted.extend_from_slice(&self.0);
            self.0 = shifted;
        }
    }

    fn bits(&self) -> u64 {
        match self.0.last() {
            Some(&top) => self.0.len() as u64 * 32 - u64::from(top.leading_zeros()),
            None => 0,
        }
    }

    fn compare(&self, other: &Big) -> core::cmp::Ordering {
        self.0
            .len()
            .cmp(&other.0.len())
            .then_with(|| self.0.iter().rev().cmp(other.0.iter().rev()))
    }

    fn sub(&mut self, other: &Big) {
        let mut borrow = 0i64;
        for (index, limb) in self.0.iter_mut().enumerate() {
            let subtrahend = i64::from(other.0.get(index).copied().unwrap_or(0));
            let mut difference = i64::from(*limb) - subtrahend - borrow;
            borrow = i64::from(difference < 0);
            if difference < 0 {
                difference += 1 << 32;
            }
            // In 0..2^32 after the correction.
            *limb = difference as u32;
        }
        while self.0.last() == Some(&0) {
            self.0.pop();
        }
    }

    fn shr1(&mut self) {
        let mut carry = 0;
        for limb in self.0.iter_mut().rev() {
            let next = *limb << 31;
            *limb = (*limb >> 1) | carry;
            carry = next;
        }
        while self.0.last() == Some(&0) {
            self.0.pop();
        }
    }

    /// `self / divisor` for a quotient below 2^55, by binary long
    /// division, and whether it divided exactly.
    fn div_small_quotient(mut self, divisor: &Big) -> (u64, bool) {
        let mut shifted = divisor.clone();
        shifted.shl(55);
        let mut quotient = 0u64;
        for bit in (0..=55).rev() {
            if self.compare(&shifted) != core::cmp::Ordering::Less {
                self.sub(&shifted);
                quotient |= 1 << bit;
            }
            shifted.shr1();
        }
        (quotient, self.0.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn same(text: &str) {
        let expected = text.parse::<f64>().ok().filter(|value| value.is_finite());
        let actual = parse_f64(text);
        assert_eq!(
            actual.map(f64::to_bits),
            expected.map(f64::to_bits),
            "{text:?}: {actual:?} vs {expected:?}"
        );
    }

    #[test]
    fn the_spellings_core_accepts_and_refuses() {
        for text in [
            "0",
            "-0",
            "+0",
            "1",
            "+1",
            "-1",
            "01",
            "1.",
            ".5",
            "1.e5",
            ".e5",
            ".",
            "",
            "-",
            "+",
            "e5",
            "1e",
            "1e+",
            "1e-5",
            "1E5",
            "1.5e+3",
            "1_000",
            " 1",
            "1 ",
            "inf",
            "NaN",
            "infinity",
            "0x10",
            "1e308",
            "1.7976931348623157e308",
            "1.7976931348623159e308",
            "2e308",
            "4.9e-324",
            "2.4703282292062327e-324",
            "2.4703282292062328e-324",
            "1e-400",
            "2.2250738585072011e-308",
            "2.2250738585072014e-308",
            "9007199254740993",
            "9007199254740993.000000000000000000001",
            "0.1",
            "0.30000000000000004",
            "123456789012345678901234567890",
            "1e22",
            "1e23",
            "8.98846567431158e307",
            "1250499",
            "87.5",
            "1..2",
            "1.2.3",
            "--1",
            "1e99999999999999999999",
            "1e-99999999999999999999",
            "0e99999999999999999999",
        ] {
            same(text);
        }
    }

    #[test]
    fn long_digit_strings_round_like_core() {
        // A halfway point between two f64s, then just above and below it.
        let halfway = "9007199254740993";
        same(halfway);
        same(&format!("{halfway}{}", "0".repeat(900)));
        same(&format!("{halfway}.{}1", "0".repeat(900)));
        same(&format!("0.{}1e-300", "0".repeat(900)));
        same(&format!("{}e-700", "7".repeat(1000)));
    }

    proptest! {
        #[test]
        fn any_f64_written_shortest_or_long_reads_back(bits in any::<u64>()) {
            let value = f64::from_bits(bits);
            same(&format!("{value}"));
            same(&format!("{value:e}"));
            same(&format!("{value:.30e}"));
        }

        #[test]
        fn random_decimal_text_reads_like_core(
            text in "[+-]?[0-9]{0,25}(\\.[0-9]{0,25})?([eE][+-]?[0-9]{1,3})?"
        ) {
            same(&text);
        }

        #[test]
        fn random_text_is_refused_like_core(text in "[0-9eE.+-]{0,8}") {
            same(&text);
        }
    }
}
