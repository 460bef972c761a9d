//! Answer extraction and scoring for GSM8K-style answers.
//!
//! A reference answer ends with a line `#### N`; a student's output should
//! too, but often does not. [`extract_answer`] finds the final number of a
//! text and records which rule decided ([`Rule`]); [`score`] compares it with
//! the reference as an exact rational ([`Number`]).
//!
//! Decisions, each covered by a test in `tests/data_score.rs`:
//! - Text from the first `\nQuestion:` on is dropped before extraction. The
//!   prompt format ends an answer at its `####` line, so a student that keeps
//!   generating writes a new, invented question, whose numbers are not its
//!   answer.
//! - With several `####` markers, the first one followed by a number wins,
//!   for the same reason: later markers answer invented follow-up questions.
//! - Without a usable marker, the last number of the text is the answer.
//! - Numbers may carry a sign (`-`, `+`, `−`), a currency sign (`$`, `€`,
//!   `£`), comma thousands separators in groups of three (`1,200`), a decimal
//!   part (`5.0`), a simple fraction (`3/4`), and trailing units, `%` or a
//!   sentence period, which are ignored. `1,5` reads as 1 followed by 5, not
//!   as a decimal comma.
//! - Values compare exactly as reduced fractions, so `5.0` equals `5` and
//!   `0.75` equals `3/4`, but `0.33` differs from `1/3`. GSM8K's final
//!   answers are integers or short decimals, so exact comparison loses
//!   nothing; a tolerance would accept `72.0001` for `72`.
//!
//! NOTE: mixed numbers (`1 1/2`), scientific notation and numbers written in
//! words are not recognized; `1 1/2` reads as `1/2`.

use std::fmt;

/// The rule that decided a prediction's extracted answer, as stored in the
/// `rule` column of `predictions`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    /// The number after the first `####` marker that has one.
    HashMarker,
    /// No marker with a number: the last number of the text.
    LastNumber,
    /// No number at all.
    None,
}

impl Rule {
    /// Returns the name stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Rule::HashMarker => "hash_marker",
            Rule::LastNumber => "last_number",
            Rule::None => "none",
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An exact rational number: `numerator / denominator`, reduced, with a
/// positive denominator, so equal values have equal fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Number {
    numerator: i128,
    denominator: i128,
}

/// Digits allowed in a numerator or denominator. 10^36 fits an i128 with
/// room to spare; longer numbers are not recognized.
const MAX_DIGITS: usize = 36;

impl Number {
    /// Builds `numerator / denominator` in lowest terms; `None` when the
    /// denominator is zero.
    pub fn ratio(numerator: i128, denominator: i128) -> Option<Number> {
        if denominator == 0 {
            return None;
        }
        let divisor = gcd(numerator.unsigned_abs(), denominator.unsigned_abs()).max(1) as i128;
        let sign = if denominator < 0 { -1 } else { 1 };
        Some(Number {
            numerator: sign * numerator / divisor,
            denominator: sign * denominator / divisor,
        })
    }

    /// Builds an integer.
    pub fn integer(value: i128) -> Number {
        Number {
            numerator: value,
            denominator: 1,
        }
    }

    /// Parses a whole text as one number, allowing what [`extract_answer`]
    /// allows around it (currency sign, separators, units, a trailing
    /// period) but nothing before it except spaces and a currency sign.
    pub fn parse(text: &str) -> Option<Number> {
        let chars: Vec<char> = text.trim().chars().collect();
        let token = scan_numbers(&chars).into_iter().next()?;
        let leading_ok = chars[..token.start]
            .iter()
            .all(|c| c.is_whitespace() || is_currency(*c));
        leading_ok.then_some(token.value)
    }

    /// Returns the value as f64, for charts and summaries only.
    pub fn to_f64(self) -> f64 {
        self.numerator as f64 / self.denominator as f64
    }
}

impl fmt::Display for Number {
    /// Writes an integer as is, a value with a terminating decimal expansion
    /// as a decimal, and any other value as `a/b`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.denominator == 1 {
            return write!(f, "{}", self.numerator);
        }
        match decimal_places(self.denominator) {
            Some(places) => {
                let scale = 10i128.pow(places);
                let scaled = self.numerator * (scale / self.denominator);
                let sign = if scaled < 0 { "-" } else { "" };
                let magnitude = scaled.unsigned_abs();
                let scale = scale as u128;
                let fraction = magnitude % scale;
                write!(
                    f,
                    "{sign}{}.{fraction:0width$}",
                    magnitude / scale,
                    width = places as usize
                )
            }
            None => write!(f, "{}/{}", self.numerator, self.denominator),
        }
    }
}

impl serde::Serialize for Number {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// Decimal places of `1/denominator` when it terminates (denominator of the
/// form 2^a·5^b) and stays within i128 when scaled.
fn decimal_places(denominator: i128) -> Option<u32> {
    let mut rest = denominator;
    let (mut twos, mut fives) = (0u32, 0u32);
    while rest % 2 == 0 {
        rest /= 2;
        twos += 1;
    }
    while rest % 5 == 0 {
        rest /= 5;
        fives += 1;
    }
    let places = twos.max(fives);
    (rest == 1 && places <= 18).then_some(places)
}

fn gcd(mut a: u128, mut b: u128) -> u128 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// The final answer found in a text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extraction {
    /// The number, or `None` when the rule is [`Rule::None`].
    pub value: Option<Number>,
    /// The text of the number as written (`$1,200.`), for logs and reports.
    pub matched: Option<String>,
    pub rule: Rule,
}

/// A prediction's verdict, as stored in `predictions`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// The extracted value in canonical form (`1200`, `-7`, `0.75`, `1/3`).
    pub extracted: Option<String>,
    pub rule: Rule,
    pub correct: bool,
}

/// Finds the final answer of `text` (a student output or a reference
/// answer) by the rules in this module's documentation.
pub fn extract_answer(text: &str) -> Extraction {
    let text = match text.find("\nQuestion:") {
        Some(end) => &text[..end],
        None => text,
    };

    for (marker, _) in text.match_indices("####") {
        let after = &text[marker + "####".len()..];
        let line = after.split('\n').next().unwrap_or_default();
        let chars: Vec<char> = line.chars().collect();
        if let Some(token) = scan_numbers(&chars).into_iter().next() {
            return Extraction {
                value: Some(token.value),
                matched: Some(chars[token.start..token.end].iter().collect()),
                rule: Rule::HashMarker,
            };
        }
    }

    let chars: Vec<char> = text.chars().collect();
    match scan_numbers(&chars).pop() {
        Some(token) => Extraction {
            value: Some(token.value),
            matched: Some(chars[token.start..token.end].iter().collect()),
            rule: Rule::LastNumber,
        },
        None => Extraction {
            value: None,
            matched: None,
            rule: Rule::None,
        },
    }
}

/// Scores a student output against the reference value.
pub fn score(output: &str, reference: Number) -> Verdict {
    let extraction = extract_answer(output);
    Verdict {
        extracted: extraction.value.map(|value| value.to_string()),
        rule: extraction.rule,
        correct: extraction.value == Some(reference),
    }
}

/// Counts the `####` markers in a text; reference answers should have one.
pub fn count_markers(text: &str) -> usize {
    text.matches("####").count()
}

/// A number found by [`scan_numbers`]: its value and its char range.
#[derive(Debug)]
struct Token {
    value: Number,
    start: usize,
    end: usize,
}

fn is_currency(c: char) -> bool {
    matches!(c, '$' | '€' | '£')
}

fn is_minus(c: char) -> bool {
    matches!(c, '-' | '−')
}

/// Finds every number in `chars`, left to right, without overlaps.
fn scan_numbers(chars: &[char]) -> Vec<Token> {
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let starts_number = chars[i].is_ascii_digit()
            || (chars[i] == '.' && chars.get(i + 1).is_some_and(|c| c.is_ascii_digit()));
        if !starts_number {
            i += 1;
            continue;
        }
        // Digits right after a letter belong to a word (`x2`, `B12`, `x.4`),
        // so the whole word is skipped. The first step always advances,
        // because a leading `.` is not alphanumeric.
        if i > 0 && chars[i - 1].is_alphabetic() {
            i += 1;
            while i < chars.len() && chars[i].is_alphanumeric() {
                i += 1;
            }
            continue;
        }
        match scan_one(chars, i) {
            Some(token) => {
                i = token.end;
                tokens.push(token);
            }
            None => i += 1,
        }
    }
    tokens
}

/// Reads the number whose first digit (or leading `.`) is at `digits_at`,
/// with the sign and currency sign before it.
fn scan_one(chars: &[char], digits_at: usize) -> Option<Token> {
    let (negative, start) = sign_before(chars, digits_at);
    let (numerator, denominator, mut end) = scan_decimal(chars, digits_at)?;

    let mut value = Number::ratio(if negative { -numerator } else { numerator }, denominator)?;

    // A simple fraction: `3/4`, with an integer or decimal on each side.
    let slash_then_digit =
        chars.get(end) == Some(&'/') && chars.get(end + 1).is_some_and(|c| c.is_ascii_digit());
    if slash_then_digit
        && let Some((below_numerator, below_denominator, below_end)) = scan_decimal(chars, end + 1)
    {
        // (a/b) / (c/d) = (a·d) / (b·c); an overflow or a zero denominator
        // leaves the number before the slash alone.
        let combined = value
            .numerator
            .checked_mul(below_denominator)
            .zip(value.denominator.checked_mul(below_numerator))
            .and_then(|(top, bottom)| Number::ratio(top, bottom));
        if let Some(combined) = combined {
            value = combined;
            end = below_end;
        }
    }
    Some(Token { value, start, end })
}

/// Looks left of the digits for a sign and currency sign (`-5`, `-$5`,
/// `$-5`) and returns whether the number is negative and where it starts. A
/// hyphen right after a letter, digit or `)` is a subtraction or a word
/// hyphen (`30-4`, `x-2`), not a sign.
fn sign_before(chars: &[char], digits_at: usize) -> (bool, usize) {
    let mut start = digits_at;
    let currency_first = start > 0 && is_currency(chars[start - 1]);
    if currency_first {
        start -= 1;
    }
    let Some(sign_at) = start
        .checked_sub(1)
        .filter(|&i| is_minus(chars[i]) || chars[i] == '+')
    else {
        return (false, start);
    };
    let attached = sign_at
        .checked_sub(1)
        .is_some_and(|i| chars[i].is_alphanumeric() || chars[i] == ')');
    if attached {
        return (false, start);
    }
    start = sign_at;
    if !currency_first && start > 0 && is_currency(chars[start - 1]) {
        start -= 1;
    }
    (is_minus(chars[sign_at]), start)
}

/// Reads `1,234.5` or `.5` starting at `at` as `numerator / 10^places`.
/// Returns `None` past [`MAX_DIGITS`] digits.
fn scan_decimal(chars: &[char], at: usize) -> Option<(i128, i128, usize)> {
    let mut digits = String::new();
    let mut i = at;
    while i < chars.len() && chars[i].is_ascii_digit() {
        digits.push(chars[i]);
        i += 1;
    }

    // Thousands separators: only when the first group has 1 to 3 digits and
    // every later group exactly 3, so `1,5` and `1234,567` stay apart.
    if (1..=3).contains(&digits.len()) {
        while chars.get(i) == Some(&',')
            && (1..=3).all(|k| chars.get(i + k).is_some_and(|c| c.is_ascii_digit()))
            && !chars.get(i + 4).is_some_and(|c| c.is_ascii_digit())
        {
            digits.extend(&chars[i + 1..i + 4]);
            i += 4;
        }
    }

    let mut places = 0u32;
    if chars.get(i) == Some(&'.') && chars.get(i + 1).is_some_and(|c| c.is_ascii_digit()) {
        i += 1;
        while i < chars.len() && chars[i].is_ascii_digit() {
            digits.push(chars[i]);
            places += 1;
            i += 1;
        }
    }

    let significant = digits.trim_start_matches('0');
    if significant.len() > MAX_DIGITS || places as usize > MAX_DIGITS {
        return None;
    }
    let numerator: i128 = if significant.is_empty() {
        0
    } else {
        significant.parse().ok()?
    };
    Some((numerator, 10i128.pow(places), i))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_writes_terminating_decimals() {
        assert_eq!(
            Number::ratio(3, 4).map(|n| n.to_string()).as_deref(),
            Some("0.75")
        );
        assert_eq!(
            Number::ratio(-1, 8).map(|n| n.to_string()).as_deref(),
            Some("-0.125")
        );
        assert_eq!(
            Number::ratio(1, 3).map(|n| n.to_string()).as_deref(),
            Some("1/3")
        );
    }
}
