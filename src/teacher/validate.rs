//! Checks on generated examples: the final answer is a number, every
//! calculator annotation `<<expr=value>>` evaluates to its stated value, the
//! final answer appears in the solution, and the question is not a near copy
//! of a question already in the run.
//!
//! Near copies are found with ROUGE-L F1 over word tokens (lowercased,
//! split on every character that is not a letter or digit), the measure the
//! LLM2LLM reference implementation uses with a 0.95 threshold. `Validator`
//! keeps every admitted question, so it is built once per run.

use std::collections::HashMap;
use std::fmt;

use rayon::prelude::*;

/// Why a parsed item or a whole reply was rejected. `as_str` is the value
/// stored in `rejected_items.reason` and in the per-call counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RejectReason {
    /// The reply had no text.
    EmptyReply,
    /// The model declined the task or its output was filtered.
    Refusal,
    /// The reply has text but no item in the requested format.
    NoItems,
    /// The item was cut off by the `max_tokens` limit.
    Truncated,
    /// No question text could be found in the item.
    MissingQuestion,
    /// The item has a question but no solution steps.
    MissingSolution,
    /// The item has no `#### <answer>` line.
    MissingFinalAnswer,
    /// The text after `####` is not a plain number.
    FinalAnswerNotNumber,
    /// An annotation could not be evaluated (unknown operator, no `=`).
    InvalidAnnotation,
    /// An annotation evaluates to a value other than the stated one.
    WrongAnnotation,
    /// The final answer does not occur among the numbers of the solution.
    AnswerNotInSolution,
    /// ROUGE-L F1 against a question already in the run is above the
    /// threshold.
    NearCopy,
}

impl RejectReason {
    pub fn as_str(self) -> &'static str {
        match self {
            RejectReason::EmptyReply => "empty_reply",
            RejectReason::Refusal => "refusal",
            RejectReason::NoItems => "no_items",
            RejectReason::Truncated => "truncated",
            RejectReason::MissingQuestion => "missing_question",
            RejectReason::MissingSolution => "missing_solution",
            RejectReason::MissingFinalAnswer => "missing_final_answer",
            RejectReason::FinalAnswerNotNumber => "final_answer_not_number",
            RejectReason::InvalidAnnotation => "invalid_annotation",
            RejectReason::WrongAnnotation => "wrong_annotation",
            RejectReason::AnswerNotInSolution => "answer_not_in_solution",
            RejectReason::NearCopy => "near_copy",
        }
    }
}

impl fmt::Display for RejectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Parses a final answer such as `72`, `-3.5`, `1,200` or `$15.` into a
/// number. Thousands separators, a leading `$` and a trailing period are
/// accepted because models add them despite the prompt; anything else
/// (units, fractions, words) is rejected.
pub fn parse_final_answer(text: &str) -> Option<f64> {
    let trimmed = text.trim().trim_end_matches('.').trim();
    let trimmed = trimmed.strip_prefix('$').unwrap_or(trimmed);
    let (sign, digits) = match trimmed.strip_prefix('-') {
        Some(rest) => (-1.0, rest.strip_prefix('$').unwrap_or(rest)),
        None => (1.0, trimmed),
    };
    let plain: String = digits.chars().filter(|&c| c != ',').collect();
    let valid = !plain.is_empty()
        && plain.chars().all(|c| c.is_ascii_digit() || c == '.')
        && plain.chars().filter(|&c| c == '.').count() <= 1
        && plain.chars().any(|c| c.is_ascii_digit());
    if !valid {
        return None;
    }
    plain.parse::<f64>().ok().map(|value| sign * value)
}

/// Checks one generated math example: `solution` is the worked solution
/// without the `####` line and `final_answer` the text after `####`.
pub fn check_math_example(solution: &str, final_answer: &str) -> Result<(), RejectReason> {
    let answer = parse_final_answer(final_answer).ok_or(RejectReason::FinalAnswerNotNumber)?;
    check_annotations(solution)?;
    let appears = numbers_in(solution).any(|value| numbers_equal(value, answer));
    if !appears {
        return Err(RejectReason::AnswerNotInSolution);
    }
    Ok(())
}

/// Checks every `<<expr=value>>` annotation in `text`.
pub fn check_annotations(text: &str) -> Result<(), RejectReason> {
    let mut rest = text;
    while let Some(start) = rest.find("<<") {
        let after = &rest[start + 2..];
        let end = after.find(">>").ok_or(RejectReason::InvalidAnnotation)?;
        check_annotation(&after[..end])?;
        rest = &after[end + 2..];
    }
    Ok(())
}

/// Checks the inside of one annotation, e.g. `48/2=24`.
fn check_annotation(annotation: &str) -> Result<(), RejectReason> {
    let (expression, stated) = annotation
        .rsplit_once('=')
        .ok_or(RejectReason::InvalidAnnotation)?;
    let stated_value = parse_final_answer(stated).ok_or(RejectReason::InvalidAnnotation)?;
    let value = evaluate(expression).ok_or(RejectReason::InvalidAnnotation)?;
    if annotation_matches(value, stated_value, stated) {
        Ok(())
    } else {
        Err(RejectReason::WrongAnnotation)
    }
}

/// Whether an evaluated annotation equals its stated value. A stated value
/// with d decimals may be rounded to d decimals (`10/3=3.33`), while an
/// integer must be exact up to float error, so `10/3=3` is wrong.
fn annotation_matches(value: f64, stated: f64, stated_text: &str) -> bool {
    let decimals = stated_text
        .trim()
        .split_once('.')
        .map(|(_, fraction)| fraction.chars().take_while(char::is_ascii_digit).count())
        .unwrap_or(0);
    let rounding = if decimals == 0 {
        0.0
    } else {
        0.5 * 10f64.powi(-(decimals as i32))
    };
    let float_error = 1e-9 * value.abs().max(1.0);
    (value - stated).abs() <= rounding + float_error
}

fn numbers_equal(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

/// Iterates over the numbers written in `text` (`1,200`, `3.5`, `.5`), with
/// a leading minus sign only where it cannot be a subtraction.
fn numbers_in(text: &str) -> impl Iterator<Item = f64> + '_ {
    let bytes = text.as_bytes();
    let mut i = 0;
    std::iter::from_fn(move || {
        while i < bytes.len() {
            let starts_number = bytes[i].is_ascii_digit()
                || (bytes[i] == b'.' && bytes.get(i + 1).is_some_and(u8::is_ascii_digit));
            if !starts_number {
                i += 1;
                continue;
            }
            let start = i;
            while i < bytes.len() {
                let c = bytes[i];
                let digit_follows = bytes.get(i + 1).is_some_and(u8::is_ascii_digit);
                if c.is_ascii_digit() || ((c == b'.' || c == b',') && digit_follows) {
                    i += 1;
                } else {
                    break;
                }
            }
            let plain: String = text[start..i].chars().filter(|&c| c != ',').collect();
            let negative = start > 0
                && bytes[start - 1] == b'-'
                && (start == 1 || !bytes[start - 2].is_ascii_alphanumeric());
            if let Ok(value) = plain.parse::<f64>() {
                return Some(if negative { -value } else { value });
            }
        }
        None
    })
}

/// Evaluates an arithmetic expression with `+ - * /`, parentheses, decimal
/// numbers (thousands separators allowed) and unary minus. `x`, `×` and `÷`
/// count as operators because models write them inside annotations.
/// Returns `None` for anything else, including division by zero.
pub fn evaluate(expression: &str) -> Option<f64> {
    let tokens = tokenize_expression(expression)?;
    let mut parser = ExpressionParser { tokens, position: 0 };
    let value = parser.sum()?;
    if parser.position != parser.tokens.len() || !value.is_finite() {
        return None;
    }
    Some(value)
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum ExprToken {
    Number(f64),
    Operator(char),
    Open,
    Close,
}

fn tokenize_expression(expression: &str) -> Option<Vec<ExprToken>> {
    let chars: Vec<char> = expression.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            ' ' | '\t' | '$' => i += 1,
            '(' => {
                tokens.push(ExprToken::Open);
                i += 1;
            }
            ')' => {
                tokens.push(ExprToken::Close);
                i += 1;
            }
            '+' | '-' | '*' | '/' => {
                tokens.push(ExprToken::Operator(c));
                i += 1;
            }
            'x' | 'X' | '×' => {
                tokens.push(ExprToken::Operator('*'));
                i += 1;
            }
            '÷' => {
                tokens.push(ExprToken::Operator('/'));
                i += 1;
            }
            _ if c.is_ascii_digit() || c == '.' => {
                let start = i;
                while i < chars.len() {
                    let next_is_digit = chars.get(i + 1).is_some_and(char::is_ascii_digit);
                    if chars[i].is_ascii_digit() || chars[i] == '.' || (chars[i] == ',' && next_is_digit) {
                        i += 1;
                    } else {
                        break;
                    }
                }
                let text: String = chars[start..i].iter().filter(|&&c| c != ',').collect();
                if text.chars().filter(|&c| c == '.').count() > 1 {
                    return None;
                }
                tokens.push(ExprToken::Number(text.parse().ok()?));
            }
            _ => return None,
        }
    }
    Some(tokens)
}

/// Recursive-descent parser: sum = product (('+'|'-') product)*,
/// product = factor (('*'|'/') factor)*, factor = ('-'|'+') factor | number |
/// '(' sum ')'.
struct ExpressionParser {
    tokens: Vec<ExprToken>,
    position: usize,
}

impl ExpressionParser {
    fn peek(&self) -> Option<ExprToken> {
        self.tokens.get(self.position).copied()
    }

    fn sum(&mut self) -> Option<f64> {
        let mut value = self.product()?;
        while let Some(ExprToken::Operator(op @ ('+' | '-'))) = self.peek() {
            self.position += 1;
            let right = self.product()?;
            value = if op == '+' { value + right } else { value - right };
        }
        Some(value)
    }

    fn product(&mut self) -> Option<f64> {
        let mut value = self.factor()?;
        while let Some(ExprToken::Operator(op @ ('*' | '/'))) = self.peek() {
            self.position += 1;
            let right = self.factor()?;
            if op == '*' {
                value *= right;
            } else {
                if right == 0.0 {
                    return None;
                }
                value /= right;
            }
        }
        Some(value)
    }

    fn factor(&mut self) -> Option<f64> {
        let token = self.peek()?;
        self.position += 1;
        match token {
            ExprToken::Operator('-') => self.factor().map(|value| -value),
            ExprToken::Operator('+') => self.factor(),
            ExprToken::Number(value) => Some(value),
            ExprToken::Open => {
                let value = self.sum()?;
                if self.peek() != Some(ExprToken::Close) {
                    return None;
                }
                self.position += 1;
                Some(value)
            }
            _ => None,
        }
    }
}

/// ROUGE-L F1 between two texts: 2·LCS / (len(a) + len(b)) over word
/// tokens. Returns 0 when either text has no tokens.
pub fn rouge_l_f1(a: &str, b: &str) -> f64 {
    let mut vocabulary = Vocabulary::default();
    let a = vocabulary.intern(a);
    let b = vocabulary.intern(b);
    if a.is_empty() || b.is_empty() {
        return 0.0;
    }
    let pattern = LcsPattern::new(&a);
    let lcs = pattern.with_slots(|slots| pattern.lcs_len(&b, slots));
    2.0 * lcs as f64 / (a.len() + b.len()) as f64
}

/// Maps word tokens to dense u32 ids, so comparisons are integer compares.
#[derive(Debug, Default)]
struct Vocabulary {
    ids: HashMap<String, u32>,
}

impl Vocabulary {
    fn intern(&mut self, text: &str) -> Vec<u32> {
        let lowered = text.to_lowercase();
        lowered
            .split(|c: char| !c.is_alphanumeric())
            .filter(|word| !word.is_empty())
            .map(|word| {
                let next = self.ids.len() as u32;
                *self.ids.entry(word.to_owned()).or_insert(next)
            })
            .collect()
    }
}

/// Bit-parallel LCS (Allison–Dix / Hyyrö): one bit per token of the pattern,
/// so each token of the other text costs one pass over ⌈m/64⌉ words.
struct LcsPattern {
    len: usize,
    words: usize,
    /// Distinct token ids of the pattern, in first-occurrence order.
    tokens: Vec<u32>,
    /// For each distinct token, the bit mask of its positions (`words`
    /// u64s per token).
    masks: Vec<u64>,
}

thread_local! {
    /// Token id -> 1 + index into `LcsPattern::tokens`, 0 when absent.
    /// Kept per thread and cleared after each use, so a lookup is one array
    /// read instead of a search.
    static SLOTS: std::cell::RefCell<Vec<u32>> = const { std::cell::RefCell::new(Vec::new()) };
}

impl LcsPattern {
    fn new(pattern: &[u32]) -> Self {
        let words = pattern.len().div_ceil(64).max(1);
        let mut tokens: Vec<u32> = Vec::new();
        let mut masks: Vec<u64> = Vec::new();
        for (position, &token) in pattern.iter().enumerate() {
            let slot = match tokens.iter().position(|&known| known == token) {
                Some(slot) => slot,
                None => {
                    tokens.push(token);
                    masks.extend(std::iter::repeat_n(0, words));
                    tokens.len() - 1
                }
            };
            masks[slot * words + position / 64] |= 1u64 << (position % 64);
        }
        Self {
            len: pattern.len(),
            words,
            tokens,
            masks,
        }
    }

    /// Runs `body` with this thread's slot table filled for the pattern.
    fn with_slots<R>(&self, body: impl FnOnce(&[u32]) -> R) -> R {
        SLOTS.with(|cell| {
            let mut slots = cell.borrow_mut();
            let needed = self.tokens.iter().map(|&token| token as usize + 1).max().unwrap_or(0);
            if slots.len() < needed {
                slots.resize(needed, 0);
            }
            for (slot, &token) in self.tokens.iter().enumerate() {
                slots[token as usize] = slot as u32 + 1;
            }
            let result = body(&slots);
            for &token in &self.tokens {
                slots[token as usize] = 0;
            }
            result
        })
    }

    /// LCS length between the pattern and `other`, with `slots` from
    /// `with_slots`.
    fn lcs_len(&self, other: &[u32], slots: &[u32]) -> usize {
        let slot_of = |token: u32| slots.get(token as usize).copied().unwrap_or(0);
        if self.words == 1 {
            let mut v = u64::MAX;
            for &token in other {
                let slot = slot_of(token);
                if slot != 0 {
                    let m = self.masks[slot as usize - 1];
                    v = v.wrapping_add(v & m) | (v & !m);
                }
            }
            let valid = if self.len == 64 { u64::MAX } else { (1u64 << self.len) - 1 };
            return (!v & valid).count_ones() as usize;
        }
        let words = self.words;
        let mut v = vec![u64::MAX; words];
        for &token in other {
            let slot = slot_of(token);
            if slot == 0 {
                continue;
            }
            let offset = (slot as usize - 1) * words;
            let mask = &self.masks[offset..offset + words];
            let mut carry = 0u64;
            for (word, &m) in v.iter_mut().zip(mask) {
                let u = *word & m;
                let (sum, c1) = word.overflowing_add(u);
                let (sum, c2) = sum.overflowing_add(carry);
                carry = u64::from(c1 || c2);
                *word = sum | (*word & !m);
            }
        }
        let mut zeros = 0;
        for (index, word) in v.iter().enumerate() {
            let bits_here = (self.len - index * 64).min(64);
            let valid = if bits_here == 64 { u64::MAX } else { (1u64 << bits_here) - 1 };
            zeros += (!word & valid).count_ones() as usize;
        }
        zeros
    }
}

/// Token sequences with an inverted index over their rarest tokens, for the
/// near-copy search (prefix filtering, as in set-similarity joins).
///
/// Each token occurrence is an element `(token, k)` (the k-th occurrence of
/// the token), so LCS ≤ |X ∩ Y| over elements. F1 > t needs an overlap of
/// at least `o = ⌊t(m + n)/2⌋ + 1`, and two sets sharing o elements share
/// one among their first `len - o + 1` elements in any fixed order. Ordering
/// elements rarest first makes those prefixes short and their posting lists
/// small, so only a few pairs reach the exact LCS.
#[derive(Debug, Default)]
struct PrefixIndex {
    questions: Vec<Vec<u32>>,
    /// Element key (see `element_key`) -> indices of the questions with the
    /// element in their prefix.
    postings: HashMap<u64, Vec<usize>>,
}

/// Token order for prefixes: document frequency in the questions known when
/// the validator was built (tokens first seen later count as 0), then token
/// id. It never changes afterwards, which the prefix filter relies on.
#[derive(Debug, Default)]
struct TokenRanks {
    frequency: Vec<u32>,
}

impl TokenRanks {
    fn from_questions(questions: &[Vec<u32>]) -> Self {
        let mut frequency: Vec<u32> = Vec::new();
        for tokens in questions {
            let mut distinct = tokens.clone();
            distinct.sort_unstable();
            distinct.dedup();
            for token in distinct {
                let index = token as usize;
                if frequency.len() <= index {
                    frequency.resize(index + 1, 0);
                }
                frequency[index] += 1;
            }
        }
        Self { frequency }
    }

    /// The first `len` elements of `tokens` in rank order, as element keys.
    fn prefix(&self, tokens: &[u32], len: usize) -> Vec<u64> {
        let mut seen: HashMap<u32, u32> = HashMap::new();
        let mut elements: Vec<(u32, u32, u32)> = tokens
            .iter()
            .map(|&token| {
                let occurrence = seen.entry(token).or_insert(0);
                *occurrence += 1;
                let frequency = self.frequency.get(token as usize).copied().unwrap_or(0);
                (frequency, token, *occurrence)
            })
            .collect();
        elements.sort_unstable();
        elements
            .into_iter()
            .take(len)
            .map(|(_, token, occurrence)| element_key(token, occurrence))
            .collect()
    }
}

fn element_key(token: u32, occurrence: u32) -> u64 {
    (u64::from(token) << 32) | u64::from(occurrence)
}

/// Shortest partner length that can reach F1 > `threshold` with a question
/// of `len` tokens: 2·n' > t(len + n') gives n' > t·len/(2 - t). Rounded
/// down, which only widens the search.
fn shortest_partner(len: usize, threshold: f64) -> usize {
    let bound = threshold * len as f64 / (2.0 - threshold) - 1e-9;
    (bound.max(0.0).floor() as usize + 1).max(1)
}

/// Prefix length for a question of `len` tokens: `len - o + 1` with `o` the
/// overlap needed against its shortest possible partner.
fn prefix_len(len: usize, threshold: f64) -> usize {
    let partner = shortest_partner(len, threshold);
    let overlap = (threshold * (len + partner) as f64 / 2.0 - 1e-9).max(0.0).floor() as usize + 1;
    (len + 1).saturating_sub(overlap)
}

impl PrefixIndex {
    fn insert(&mut self, tokens: Vec<u32>, ranks: &TokenRanks, threshold: f64) {
        let index = self.questions.len();
        for key in ranks.prefix(&tokens, prefix_len(tokens.len(), threshold)) {
            self.postings.entry(key).or_default().push(index);
        }
        self.questions.push(tokens);
    }

    /// Indices of the questions, among those `keep` accepts, whose ROUGE-L
    /// F1 with `tokens` is above `threshold`, in ascending order.
    /// `first_only` stops at the first match.
    fn near_copies(
        &self,
        tokens: &[u32],
        ranks: &TokenRanks,
        threshold: f64,
        keep: impl Fn(usize) -> bool,
        first_only: bool,
    ) -> Vec<usize> {
        let m = tokens.len();
        let mut candidates: Vec<usize> = ranks
            .prefix(tokens, prefix_len(m, threshold))
            .iter()
            .filter_map(|key| self.postings.get(key))
            .flatten()
            .copied()
            .filter(|&index| keep(index))
            .collect();
        candidates.sort_unstable();
        candidates.dedup();
        let pattern = LcsPattern::new(tokens);
        pattern.with_slots(|slots| {
            let mut found = Vec::new();
            for index in candidates {
                let other = &self.questions[index];
                let n = other.len();
                // LCS ≤ min(m, n), so F1 ≤ 2·min(m, n)/(m + n).
                if 2.0 * m.min(n) as f64 <= threshold * (m + n) as f64 {
                    continue;
                }
                let lcs = pattern.lcs_len(other, slots);
                if 2.0 * lcs as f64 > threshold * (m + n) as f64 {
                    found.push(index);
                    if first_only {
                        break;
                    }
                }
            }
            found
        })
    }
}

/// The near-copy check for one run: every question admitted so far (seed
/// and generated).
pub struct Validator {
    threshold: f64,
    vocabulary: Vocabulary,
    ranks: TokenRanks,
    known: PrefixIndex,
}

impl Validator {
    /// Builds the check from the questions already in the run. A question
    /// counts as a near copy when its ROUGE-L F1 against any of them is
    /// above `threshold` (the reference implementation uses 0.95).
    pub fn new<I, S>(threshold: f64, existing: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut vocabulary = Vocabulary::default();
        let tokenized: Vec<Vec<u32>> = existing
            .into_iter()
            .map(|question| vocabulary.intern(question.as_ref()))
            .collect();
        let ranks = TokenRanks::from_questions(&tokenized);
        let mut known = PrefixIndex::default();
        for tokens in tokenized {
            known.insert(tokens, &ranks, threshold);
        }
        Self {
            threshold,
            vocabulary,
            ranks,
            known,
        }
    }

    /// Questions known to the check, existing and admitted.
    pub fn len(&self) -> usize {
        self.known.questions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.known.questions.is_empty()
    }

    /// Admits `question` unless it is a near copy of a known question; an
    /// admitted question is compared against all later ones.
    pub fn admit(&mut self, question: &str) -> Result<(), RejectReason> {
        let tokens = self.vocabulary.intern(question);
        if tokens.is_empty() {
            return Err(RejectReason::MissingQuestion);
        }
        let near = self.known.near_copies(&tokens, &self.ranks, self.threshold, |_| true, true);
        if !near.is_empty() {
            return Err(RejectReason::NearCopy);
        }
        self.known.insert(tokens, &self.ranks, self.threshold);
        Ok(())
    }

    /// Admits a batch with the same result as calling `admit` on each
    /// question in order, using all cores: each question is compared in
    /// parallel against the known questions and against the earlier
    /// questions of the batch, then a sequential pass admits a question
    /// unless one of its near copies earlier in the batch was admitted.
    pub fn admit_all<S: AsRef<str>>(&mut self, questions: &[S]) -> Vec<Result<(), RejectReason>> {
        let threshold = self.threshold;
        let mut batch = PrefixIndex::default();
        for question in questions {
            let tokens = self.vocabulary.intern(question.as_ref());
            batch.insert(tokens, &self.ranks, threshold);
        }
        let known = &self.known;
        let ranks = &self.ranks;
        let batch_ref = &batch;
        let verdicts: Vec<Result<Vec<usize>, RejectReason>> = batch
            .questions
            .par_iter()
            .enumerate()
            .map(|(position, tokens)| {
                if tokens.is_empty() {
                    return Err(RejectReason::MissingQuestion);
                }
                if !known.near_copies(tokens, ranks, threshold, |_| true, true).is_empty() {
                    return Err(RejectReason::NearCopy);
                }
                Ok(batch_ref.near_copies(tokens, ranks, threshold, |earlier| earlier < position, false))
            })
            .collect();

        let mut admitted = vec![false; verdicts.len()];
        let mut results = Vec::with_capacity(verdicts.len());
        for (position, verdict) in verdicts.into_iter().enumerate() {
            let result = verdict.and_then(|earlier| {
                if earlier.iter().any(|&index| admitted[index]) {
                    Err(RejectReason::NearCopy)
                } else {
                    Ok(())
                }
            });
            admitted[position] = result.is_ok();
            results.push(result);
        }
        for (tokens, admitted) in batch.questions.into_iter().zip(admitted) {
            if admitted {
                self.known.insert(tokens, &self.ranks, threshold);
            }
        }
        results
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evaluates_precedence_and_parentheses() {
        assert_eq!(evaluate("2+3*4"), Some(14.0));
        assert_eq!(evaluate("(2+3)*4"), Some(20.0));
        assert_eq!(evaluate("-3+10/4"), Some(-0.5));
        assert_eq!(evaluate("1,200/4"), Some(300.0));
        assert_eq!(evaluate(".5*40"), Some(20.0));
    }

    #[test]
    fn rejects_malformed_expressions() {
        assert_eq!(evaluate("2+"), None);
        assert_eq!(evaluate("(2+3"), None);
        assert_eq!(evaluate("4/0"), None);
        assert_eq!(evaluate("a+1"), None);
        assert_eq!(evaluate("1.2.3"), None);
    }

    #[test]
    fn annotation_rounding_follows_stated_decimals() {
        assert_eq!(check_annotations("<<10/3=3.33>>"), Ok(()));
        assert_eq!(check_annotations("<<10/3=3>>"), Err(RejectReason::WrongAnnotation));
        assert_eq!(check_annotations("<<48/2=25>>"), Err(RejectReason::WrongAnnotation));
        assert_eq!(check_annotations("<<48/2>>"), Err(RejectReason::InvalidAnnotation));
        assert_eq!(check_annotations("<<48/2=24"), Err(RejectReason::InvalidAnnotation));
    }

    #[test]
    fn final_answer_formats() {
        assert_eq!(parse_final_answer(" 1,200 "), Some(1200.0));
        assert_eq!(parse_final_answer("$15."), Some(15.0));
        assert_eq!(parse_final_answer("-2.5"), Some(-2.5));
        assert_eq!(parse_final_answer("15 apples"), None);
        assert_eq!(parse_final_answer("3/4"), None);
        assert_eq!(parse_final_answer(""), None);
    }

    #[test]
    fn math_example_checks() {
        let good = "Natalia sold 48/2 = <<48/2=24>>24 clips in May.\nShe sold 48+24 = <<48+24=72>>72 clips.";
        assert_eq!(check_math_example(good, "72"), Ok(()));
        assert_eq!(check_math_example(good, "73"), Err(RejectReason::AnswerNotInSolution));
        assert_eq!(check_math_example(good, "seventy"), Err(RejectReason::FinalAnswerNotNumber));
    }

    #[test]
    fn rouge_l_matches_hand_computed_value() {
        // LCS("the cat sat on the mat", "the cat lay on a mat") = the cat on mat = 4.
        let f1 = rouge_l_f1("The cat sat on the mat.", "the cat lay on a mat");
        assert!((f1 - 8.0 / 12.0).abs() < 1e-12, "{f1}");
    }

    #[test]
    fn lcs_spans_several_words() {
        let long: Vec<u32> = (0..150).map(|i| i % 7).collect();
        let other: Vec<u32> = (0..150).rev().map(|i| (i * 3) % 11).collect();
        let pattern = LcsPattern::new(&long);
        let (same, different) =
            pattern.with_slots(|slots| (pattern.lcs_len(&long, slots), pattern.lcs_len(&other, slots)));
        assert_eq!(same, 150);
        assert_eq!(different, lcs_reference(&long, &other));
    }

    #[test]
    fn lcs_fits_one_word() {
        let a: Vec<u32> = vec![1, 2, 3, 4, 5, 1, 2];
        let b: Vec<u32> = vec![2, 9, 3, 5, 1, 1, 2];
        let pattern = LcsPattern::new(&a);
        assert_eq!(pattern.with_slots(|slots| pattern.lcs_len(&b, slots)), lcs_reference(&a, &b));
    }

    fn lcs_reference(a: &[u32], b: &[u32]) -> usize {
        let mut table = vec![vec![0usize; b.len() + 1]; a.len() + 1];
        for i in 0..a.len() {
            for j in 0..b.len() {
                table[i + 1][j + 1] = if a[i] == b[j] {
                    table[i][j] + 1
                } else {
                    table[i][j + 1].max(table[i + 1][j])
                };
            }
        }
        table[a.len()][b.len()]
    }

    #[test]
    fn validator_rejects_near_copies_and_remembers_admitted() {
        let mut validator = Validator::new(0.95, ["Tom has 3 apples and buys 4 more. How many apples does he have now?"]);
        assert_eq!(
            validator.admit("Tom has 3 apples and buys 4 more. How many apples does he have now"),
            Err(RejectReason::NearCopy)
        );
        assert_eq!(validator.admit("Sara reads 12 pages a day for 5 days. How many pages?"), Ok(()));
        assert_eq!(
            validator.admit("Sara reads 12 pages a day for 5 days. How many pages?"),
            Err(RejectReason::NearCopy)
        );
        assert_eq!(validator.len(), 2);
    }

    #[test]
    fn prefix_filter_finds_every_near_copy() {
        // Random small-vocabulary texts, many of them near each other, checked
        // against an all-pairs scan.
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let words = ["a", "b", "c", "d", "e", "f", "g", "h"];
        let base: Vec<String> = (0..40)
            .map(|_| {
                let len = rng.random_range(1..30);
                (0..len).map(|_| words[rng.random_range(0..words.len())]).collect::<Vec<_>>().join(" ")
            })
            .collect();
        let mut texts = base.clone();
        for text in &base {
            let mut tokens: Vec<&str> = text.split(' ').collect();
            let edit = rng.random_range(0..tokens.len());
            if rng.random_bool(0.5) {
                tokens.remove(edit);
            } else {
                tokens.insert(edit, "z");
            }
            texts.push(tokens.join(" "));
        }
        for threshold in [0.5, 0.8, 0.9, 0.95] {
            let mut validator = Validator::new(threshold, &texts[..20]);
            let mut admitted: Vec<&str> = texts[..20].iter().map(String::as_str).collect();
            for text in &texts[20..] {
                let brute = admitted
                    .iter()
                    .any(|known| rouge_l_f1(text, known) > threshold && !text.trim().is_empty());
                let expected = if text.split(' ').all(str::is_empty) {
                    Err(RejectReason::MissingQuestion)
                } else if brute {
                    Err(RejectReason::NearCopy)
                } else {
                    Ok(())
                };
                assert_eq!(validator.admit(text), expected, "{text} at {threshold}");
                if expected.is_ok() {
                    admitted.push(text);
                }
            }
        }
    }

    #[test]
    fn admit_all_matches_admit_in_order() {
        let existing = ["a b c d e f g h i j", "k l m n o p q r s t"];
        let batch = [
            "a b c d e f g h i j",
            "u v w x y z 1 2 3 4",
            "u v w x y z 1 2 3 4",
            "",
            "k l m n o p q r s t u",
        ];
        let mut one_by_one = Validator::new(0.9, existing);
        let expected: Vec<_> = batch.iter().map(|q| one_by_one.admit(q)).collect();
        let mut batched = Validator::new(0.9, existing);
        assert_eq!(batched.admit_all(&batch), expected);
        assert_eq!(expected[1], Ok(()));
        assert_eq!(expected[2], Err(RejectReason::NearCopy));
    }
}
