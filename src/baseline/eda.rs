//! EDA, "Easy Data Augmentation" (Wei and Zou, 2019), adapted to math word
//! problems: synonym replacement (SR), random insertion (RI), random swap
//! (RS) and random deletion (RD) applied to a question, never to its answer.
//!
//! The original lowercases the text and strips everything but letters, which
//! deletes every number of a math problem. This version keeps the text as
//! written and protects what carries the problem's quantities:
//!
//! - a token containing a digit (`5`, `3.5`, `1,000`, `10%`, `$3`, `5kg`,
//!   `2nd`, `3:30`), a currency sign or a math symbol (`+ - × ÷ * / = < > % ^`);
//! - number words (`two`, `twenty-five`, `half`, `third`, `dozen`, `twice`)
//!   and the words that relate or ask for quantities (`more`, `fewer`,
//!   `than`, `many`, `times`, `per`, `each`, `percent`, `total`, ...);
//! - unit words anywhere (`dollars`, `kg`, `hours`, `miles`, ...), and, as
//!   the unit rule, the word right after a number or number word, so the
//!   counted noun stays with its count (`5 apples`, `3 hours`, `two cats`).
//!
//! Protected tokens are never replaced, deleted, moved by a swap or used as
//! an insertion anchor. No insertion lands between two protected tokens, and
//! no synonym that would itself be protected (one with a digit or a number
//! word) is ever inserted. So the sequence of protected tokens, and with it
//! every number, is the same before and after. Punctuation stays where it
//! was. The rates follow the original: SR, RI and RS each change
//! `max(1, floor(alpha * n))` words, where `n` counts the eligible words
//! (words that are neither protected nor punctuation), and RD deletes each
//! eligible word with probability `p_rd`.

use std::collections::HashSet;

use rand::seq::{IndexedRandom, SliceRandom};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::wordnet::{WordNet, WordNetError};

/// EDA settings, as in the original: the share of words each operation
/// changes and how many augmented questions each seed question yields.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct EdaConfig {
    /// Synonym replacement: share of eligible words replaced (0 disables).
    pub alpha_sr: f64,
    /// Random insertion: synonyms inserted per eligible word (0 disables).
    pub alpha_ri: f64,
    /// Random swap: swaps per eligible word (0 disables).
    pub alpha_rs: f64,
    /// Random deletion: probability of deleting each eligible word
    /// (0 disables).
    pub p_rd: f64,
    /// Augmented questions per seed question.
    pub n_aug: usize,
}

impl Default for EdaConfig {
    /// Returns the values Wei and Zou recommend for training sets of 500
    /// examples or fewer: every alpha 0.1 and 9 augmentations per example.
    fn default() -> Self {
        EdaConfig {
            alpha_sr: 0.1,
            alpha_ri: 0.1,
            alpha_rs: 0.1,
            p_rd: 0.1,
            n_aug: 9,
        }
    }
}

/// Invalid EDA settings.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum EdaConfigError {
    #[error("invalid EDA setting {name} = {value}: it must be a number from 0 to 1")]
    OutOfRange { name: &'static str, value: f64 },
    #[error(
        "invalid EDA settings: alpha_sr, alpha_ri, alpha_rs and p_rd are all 0, so no \
         operation is enabled; set at least one above 0"
    )]
    NothingEnabled,
}

impl EdaConfig {
    /// Checks that every rate is in [0, 1] and at least one is above 0.
    pub fn validate(&self) -> Result<(), EdaConfigError> {
        let rates = [
            ("alpha_sr", self.alpha_sr),
            ("alpha_ri", self.alpha_ri),
            ("alpha_rs", self.alpha_rs),
            ("p_rd", self.p_rd),
        ];
        for (name, value) in rates {
            if !(0.0..=1.0).contains(&value) {
                return Err(EdaConfigError::OutOfRange { name, value });
            }
        }
        if self.enabled_operations().is_empty() {
            return Err(EdaConfigError::NothingEnabled);
        }
        Ok(())
    }

    fn enabled_operations(&self) -> Vec<Operation> {
        let mut operations = Vec::new();
        if self.alpha_sr > 0.0 {
            operations.push(Operation::SynonymReplacement);
        }
        if self.alpha_ri > 0.0 {
            operations.push(Operation::RandomInsertion);
        }
        if self.alpha_rs > 0.0 {
            operations.push(Operation::RandomSwap);
        }
        if self.p_rd > 0.0 {
            operations.push(Operation::RandomDeletion);
        }
        operations
    }
}

/// The four EDA operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    SynonymReplacement,
    RandomInsertion,
    RandomSwap,
    RandomDeletion,
}

/// A source of synonyms for EDA: WordNet in use, a fixed table in tests that
/// need exact counts.
pub trait SynonymSource {
    /// Synonyms of `word` (any case), lowercase, never `word` itself.
    fn synonyms(&self, word: &str) -> Result<Vec<String>, WordNetError>;
}

impl SynonymSource for WordNet {
    fn synonyms(&self, word: &str) -> Result<Vec<String>, WordNetError> {
        WordNet::synonyms(self, word)
    }
}

/// The role of a token in EDA.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// An eligible word: EDA may replace, delete, swap or anchor on it.
    Word,
    /// A number, unit, number word, math symbol or currency: never touched.
    Protected,
    /// Punctuation: never touched and never moved.
    Punct,
}

/// A token of a question with the whitespace before it, so the text is
/// rebuilt as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    pub text: String,
    pub kind: TokenKind,
    pub space_before: String,
}

/// Characters that make a token protected wherever they appear in it.
const MATH_AND_CURRENCY: &[char] = &[
    '+', '×', '÷', '*', '/', '=', '<', '>', '≤', '≥', '%', '^', '±', '$', '€', '£', '¥', '¢', '₹',
];

/// Punctuation split off the start and end of a whitespace-separated chunk.
/// `$` and `-` are not here: `$3` and `-5` stay whole (and protected).
const LEADING_PUNCT: &[char] = &['"', '\'', '(', '[', '{', '“', '‘'];
const TRAILING_PUNCT: &[char] = &[
    '.', ',', ';', ':', '!', '?', '"', '\'', ')', ']', '}', '”', '’',
];

const NUMBER_WORDS: &[&str] = &[
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
    "twenty",
    "thirty",
    "forty",
    "fifty",
    "sixty",
    "seventy",
    "eighty",
    "ninety",
    "hundred",
    "hundreds",
    "thousand",
    "thousands",
    "million",
    "millions",
    "billion",
    "billions",
    "first",
    "second",
    "third",
    "thirds",
    "fourth",
    "fourths",
    "fifth",
    "fifths",
    "sixth",
    "sixths",
    "seventh",
    "sevenths",
    "eighth",
    "eighths",
    "ninth",
    "ninths",
    "tenth",
    "tenths",
    "half",
    "halves",
    "quarter",
    "quarters",
    "twice",
    "thrice",
    "double",
    "doubled",
    "triple",
    "tripled",
    "quadruple",
    "dozen",
    "dozens",
    "pair",
    "pairs",
    "once",
    "none",
];

const QUANTITY_RELATION_WORDS: &[&str] = &[
    "more",
    "less",
    "fewer",
    "most",
    "least",
    "many",
    "much",
    "than",
    "times",
    "per",
    "each",
    "every",
    "percent",
    "percentage",
    "total",
    "altogether",
];

const UNIT_WORDS: &[&str] = &[
    "dollar",
    "dollars",
    "cent",
    "cents",
    "penny",
    "pennies",
    "nickel",
    "nickels",
    "dime",
    "dimes",
    "euro",
    "euros",
    "pound",
    "pounds",
    "ounce",
    "ounces",
    "oz",
    "lb",
    "lbs",
    "ton",
    "tons",
    "gram",
    "grams",
    "g",
    "kg",
    "kilogram",
    "kilograms",
    "mg",
    "meter",
    "meters",
    "metre",
    "metres",
    "m",
    "km",
    "kilometer",
    "kilometers",
    "cm",
    "centimeter",
    "centimeters",
    "mm",
    "mile",
    "miles",
    "foot",
    "feet",
    "ft",
    "inch",
    "inches",
    "yard",
    "yards",
    "liter",
    "liters",
    "litre",
    "litres",
    "l",
    "ml",
    "gallon",
    "gallons",
    "quart",
    "quarts",
    "pint",
    "pints",
    "cup",
    "cups",
    "second",
    "seconds",
    "minute",
    "minutes",
    "hour",
    "hours",
    "day",
    "days",
    "week",
    "weeks",
    "month",
    "months",
    "year",
    "years",
    "mph",
    "degree",
    "degrees",
];

/// Words synonym replacement skips, as the original does with its stop
/// word list: function words have no useful synonyms.
const STOP_WORDS: &[&str] = &[
    "i",
    "me",
    "my",
    "myself",
    "we",
    "our",
    "ours",
    "ourselves",
    "you",
    "your",
    "yours",
    "yourself",
    "he",
    "him",
    "his",
    "himself",
    "she",
    "her",
    "hers",
    "herself",
    "it",
    "its",
    "itself",
    "they",
    "them",
    "their",
    "theirs",
    "themselves",
    "what",
    "which",
    "who",
    "whom",
    "this",
    "that",
    "these",
    "those",
    "am",
    "is",
    "are",
    "was",
    "were",
    "be",
    "been",
    "being",
    "have",
    "has",
    "had",
    "having",
    "do",
    "does",
    "did",
    "doing",
    "a",
    "an",
    "the",
    "and",
    "but",
    "if",
    "or",
    "because",
    "as",
    "until",
    "while",
    "of",
    "at",
    "by",
    "for",
    "with",
    "about",
    "against",
    "between",
    "into",
    "through",
    "during",
    "before",
    "after",
    "above",
    "below",
    "to",
    "from",
    "up",
    "down",
    "in",
    "out",
    "on",
    "off",
    "over",
    "under",
    "again",
    "further",
    "then",
    "here",
    "there",
    "when",
    "where",
    "why",
    "how",
    "all",
    "any",
    "both",
    "few",
    "most",
    "other",
    "some",
    "such",
    "no",
    "nor",
    "not",
    "only",
    "own",
    "same",
    "so",
    "too",
    "very",
    "can",
    "will",
    "just",
    "should",
    "now",
    "would",
    "could",
    "many",
    "much",
];

/// Splits a question into tokens and marks protected ones (rules in the
/// module documentation).
pub fn tokenize(text: &str) -> Vec<Token> {
    let mut tokens = Vec::new();
    let mut space = String::new();
    let mut chunk = String::new();
    for c in text.chars() {
        if c.is_whitespace() {
            if !chunk.is_empty() {
                push_chunk(
                    &mut tokens,
                    &std::mem::take(&mut chunk),
                    std::mem::take(&mut space),
                );
            }
            space.push(c);
        } else {
            chunk.push(c);
        }
    }
    if !chunk.is_empty() {
        push_chunk(&mut tokens, &chunk, std::mem::take(&mut space));
    }
    if !space.is_empty() {
        // Trailing whitespace rides on an empty punctuation token so that
        // `render(tokenize(t)) == t`.
        tokens.push(Token {
            text: String::new(),
            kind: TokenKind::Punct,
            space_before: space,
        });
    }
    mark_units_after_numbers(&mut tokens);
    tokens
}

/// Splits one whitespace-free chunk into leading punctuation, a core and
/// trailing punctuation.
fn push_chunk(tokens: &mut Vec<Token>, chunk: &str, space_before: String) {
    let core_start = chunk
        .find(|c| !LEADING_PUNCT.contains(&c))
        .unwrap_or(chunk.len());
    let core_end = chunk[core_start..]
        .rfind(|c| !TRAILING_PUNCT.contains(&c))
        .map(|i| {
            core_start
                + i
                + chunk[core_start + i..]
                    .chars()
                    .next()
                    .map_or(0, char::len_utf8)
        })
        .unwrap_or(core_start);

    let mut space = Some(space_before);
    let mut push = |text: &str, kind: TokenKind| {
        let space_before = space.take().unwrap_or_default();
        tokens.push(Token {
            text: text.to_string(),
            kind,
            space_before,
        });
    };
    for c in chunk[..core_start].chars() {
        push(c.encode_utf8(&mut [0; 4]), TokenKind::Punct);
    }
    if core_end > core_start {
        let core = &chunk[core_start..core_end];
        push(core, classify(core));
    }
    for c in chunk[core_end..].chars() {
        push(c.encode_utf8(&mut [0; 4]), TokenKind::Punct);
    }
}

fn classify(core: &str) -> TokenKind {
    if core
        .chars()
        .any(|c| c.is_ascii_digit() || MATH_AND_CURRENCY.contains(&c))
    {
        return TokenKind::Protected;
    }
    if !core.chars().any(char::is_alphabetic) {
        // A lone `-`, `−`, `&` or similar: a minus sign or a symbol.
        return TokenKind::Protected;
    }
    if is_protected_word(core) {
        return TokenKind::Protected;
    }
    TokenKind::Word
}

/// Number, quantity and unit words, alone or as part of a hyphenated word
/// (`twenty-five`, `one-third`, `ten-year`).
fn is_protected_word(word: &str) -> bool {
    let lower = word.to_lowercase();
    lower.split(['-', '–']).any(|part| {
        NUMBER_WORDS.contains(&part)
            || QUANTITY_RELATION_WORDS.contains(&part)
            || UNIT_WORDS.contains(&part)
    })
}

fn is_number_like(token: &Token) -> bool {
    token.kind == TokenKind::Protected
        && (token.text.chars().any(|c| c.is_ascii_digit())
            || token
                .text
                .to_lowercase()
                .split(['-', '–'])
                .any(|p| NUMBER_WORDS.contains(&p)))
}

/// Applies the unit rule: protects the word right after a number or number
/// word (`5 apples`, `3 hours`). Only that one word: in `5 red apples`,
/// `red` is protected and `apples` is not.
fn mark_units_after_numbers(tokens: &mut [Token]) {
    for i in 1..tokens.len() {
        if tokens[i].kind == TokenKind::Word && is_number_like(&tokens[i - 1]) {
            tokens[i].kind = TokenKind::Protected;
        }
    }
}

/// Rebuilds the text from tokens.
pub fn render(tokens: &[Token]) -> String {
    let mut text = String::new();
    for token in tokens {
        text.push_str(&token.space_before);
        text.push_str(&token.text);
    }
    text
}

fn eligible_positions(tokens: &[Token]) -> Vec<usize> {
    (0..tokens.len())
        .filter(|&i| tokens[i].kind == TokenKind::Word)
        .collect()
}

/// Number of eligible words an operation with rate `alpha` changes:
/// `max(1, floor(alpha * eligible))`, as the original computes it with
/// Python's `int()`.
pub fn words_to_change(alpha: f64, eligible: usize) -> usize {
    ((alpha * eligible as f64).floor() as usize).max(1)
}

/// Synonyms of `word` that EDA may use: no protected ones (a digit, a number
/// or unit word), so inserting or substituting one never adds a quantity.
fn usable_synonyms<S: SynonymSource>(source: &S, word: &str) -> Result<Vec<String>, WordNetError> {
    let mut synonyms = source.synonyms(word)?;
    synonyms.retain(|synonym| {
        synonym
            .split_whitespace()
            .all(|part| classify(part) == TokenKind::Word)
            && !synonym.eq_ignore_ascii_case(word)
    });
    Ok(synonyms)
}

/// Writes a synonym with the capital of the word it stands for.
fn match_capital(synonym: &str, like: &str) -> String {
    let capital = like.chars().next().is_some_and(char::is_uppercase);
    let mut chars = synonym.chars();
    match chars.next() {
        Some(first) if capital => first.to_uppercase().chain(chars).collect(),
        _ => synonym.to_string(),
    }
}

/// SR: picks distinct eligible non-stop words in random order and replaces
/// every occurrence of each by a random synonym, until `n` words have been
/// replaced or no candidate is left. A multi-word synonym becomes one token.
pub fn synonym_replacement<S: SynonymSource, R: Rng>(
    tokens: &[Token],
    n: usize,
    source: &S,
    rng: &mut R,
) -> Result<Vec<Token>, WordNetError> {
    let mut out = tokens.to_vec();
    let mut candidates: Vec<String> = Vec::new();
    for i in eligible_positions(tokens) {
        let lower = tokens[i].text.to_lowercase();
        if !STOP_WORDS.contains(&lower.as_str()) && !candidates.contains(&lower) {
            candidates.push(lower);
        }
    }
    candidates.shuffle(rng);

    let mut replaced = 0;
    for word in candidates {
        if replaced >= n {
            break;
        }
        let synonyms = usable_synonyms(source, &word)?;
        let Some(synonym) = synonyms.choose(rng) else {
            continue;
        };
        for token in out.iter_mut() {
            if token.kind == TokenKind::Word && token.text.to_lowercase() == word {
                token.text = match_capital(synonym, &token.text);
            }
        }
        replaced += 1;
    }
    Ok(out)
}

/// RI: `n` times, picks a random eligible word with synonyms (up to 10
/// tries, as the original) and inserts one of its synonyms at a random
/// position that is not between two protected tokens.
pub fn random_insertion<S: SynonymSource, R: Rng>(
    tokens: &[Token],
    n: usize,
    source: &S,
    rng: &mut R,
) -> Result<Vec<Token>, WordNetError> {
    let mut out = tokens.to_vec();
    for _ in 0..n {
        let anchors = eligible_positions(&out);
        if anchors.is_empty() {
            break;
        }
        let mut synonym = None;
        for _ in 0..10 {
            let Some(&anchor) = anchors.choose(rng) else {
                break;
            };
            let synonyms = usable_synonyms(source, &out[anchor].text)?;
            if let Some(choice) = synonyms.choose(rng) {
                synonym = Some(choice.clone());
                break;
            }
        }
        let Some(synonym) = synonym else { continue };

        let slots: Vec<usize> = (0..=out.len())
            .filter(|&slot| insertion_allowed(&out, slot))
            .collect();
        let Some(&slot) = slots.choose(rng) else {
            continue;
        };
        insert_word(&mut out, slot, synonym);
    }
    Ok(out)
}

/// Tells whether a word may go before token `slot` (`tokens.len()` is the
/// end). Inserting between two protected tokens could split `5 kg` or
/// `3 : 30`, and inserting after the trailing-whitespace token would put
/// text after it.
fn insertion_allowed(tokens: &[Token], slot: usize) -> bool {
    let before = slot.checked_sub(1).map(|i| &tokens[i]);
    let after = tokens.get(slot);
    let between_protected = matches!(
        (before, after),
        (Some(a), Some(b)) if a.kind == TokenKind::Protected && b.kind == TokenKind::Protected
    );
    let after_trailing_space = before.is_some_and(|t| t.text.is_empty());
    !between_protected && !after_trailing_space
}

fn insert_word(tokens: &mut Vec<Token>, slot: usize, word: String) {
    let mut token = Token {
        text: word,
        kind: TokenKind::Word,
        space_before: " ".to_string(),
    };
    if slot == 0 {
        if let Some(first) = tokens.first_mut() {
            token.space_before = std::mem::replace(&mut first.space_before, " ".to_string());
        } else {
            token.space_before = String::new();
        }
    }
    tokens.insert(slot, token);
}

/// RS: `n` times, swaps the text of two different eligible words (picking the
/// second up to 3 times, as the original). Protected tokens and punctuation
/// keep their positions.
pub fn random_swap<R: Rng>(tokens: &[Token], n: usize, rng: &mut R) -> Vec<Token> {
    let mut out = tokens.to_vec();
    let positions = eligible_positions(&out);
    if positions.len() < 2 {
        return out;
    }
    for _ in 0..n {
        let first = positions[rng.random_range(0..positions.len())];
        let mut second = first;
        for _ in 0..3 {
            second = positions[rng.random_range(0..positions.len())];
            if second != first {
                break;
            }
        }
        if first != second {
            let text = std::mem::take(&mut out[first].text);
            out[first].text = std::mem::replace(&mut out[second].text, text);
        }
    }
    out
}

/// RD: deletes each eligible word with probability `p`. A question with one
/// eligible word is left alone; if every eligible word would go, one random
/// eligible word stays, as in the original.
pub fn random_deletion<R: Rng>(tokens: &[Token], p: f64, rng: &mut R) -> Vec<Token> {
    let positions = eligible_positions(tokens);
    if positions.len() <= 1 {
        return tokens.to_vec();
    }
    let mut delete: HashSet<usize> = positions
        .iter()
        .copied()
        .filter(|_| rng.random_bool(p))
        .collect();
    if delete.len() == positions.len()
        && let Some(keep) = positions.choose(rng)
    {
        delete.remove(keep);
    }

    let mut out: Vec<Token> = Vec::with_capacity(tokens.len());
    let mut carried_space: Option<String> = None;
    for (i, token) in tokens.iter().enumerate() {
        if delete.contains(&i) {
            // The first token's leading whitespace (usually none) passes to
            // the next kept token, so a deleted first word leaves no space.
            if out.is_empty() && carried_space.is_none() {
                carried_space = Some(token.space_before.clone());
            }
            continue;
        }
        let mut token = token.clone();
        if let Some(space) = carried_space.take() {
            token.space_before = space;
        }
        out.push(token);
    }
    out
}

/// Applies one operation with the configured rate.
pub fn apply<S: SynonymSource, R: Rng>(
    operation: Operation,
    tokens: &[Token],
    config: &EdaConfig,
    source: &S,
    rng: &mut R,
) -> Result<Vec<Token>, WordNetError> {
    let eligible = eligible_positions(tokens).len();
    Ok(match operation {
        Operation::SynonymReplacement => synonym_replacement(
            tokens,
            words_to_change(config.alpha_sr, eligible),
            source,
            rng,
        )?,
        Operation::RandomInsertion => random_insertion(
            tokens,
            words_to_change(config.alpha_ri, eligible),
            source,
            rng,
        )?,
        Operation::RandomSwap => {
            random_swap(tokens, words_to_change(config.alpha_rs, eligible), rng)
        }
        Operation::RandomDeletion => random_deletion(tokens, config.p_rd, rng),
    })
}

/// Returns `count` augmented versions of `question`, as the original: each
/// enabled operation produces `count / enabled + 1` candidates, which are
/// shuffled and cut to `count`. Candidates may repeat each other or the
/// question (the original keeps them too).
pub fn augment_question<S: SynonymSource, R: Rng>(
    question: &str,
    count: usize,
    config: &EdaConfig,
    source: &S,
    rng: &mut R,
) -> Result<Vec<String>, WordNetError> {
    let operations = config.enabled_operations();
    if count == 0 || operations.is_empty() {
        return Ok(Vec::new());
    }
    let tokens = tokenize(question);
    let per_operation = count / operations.len() + 1;
    let mut candidates = Vec::with_capacity(per_operation * operations.len());
    for &operation in &operations {
        for _ in 0..per_operation {
            candidates.push(render(&apply(operation, &tokens, config, source, rng)?));
        }
    }
    candidates.shuffle(rng);
    candidates.truncate(count);
    Ok(candidates)
}

/// The random generator for one seed example: a ChaCha8 stream chosen by the
/// example's position, so each example's augmentations depend only on the
/// run seed and that position, not on how many examples came before.
pub fn example_rng(seed: u64, example_index: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(example_index);
    rng
}

/// An augmented question with its seed's answer, kept as is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AugmentedExample {
    /// Position of the seed example in the slice passed to
    /// [`augment_examples`].
    pub seed_index: usize,
    pub question: String,
    pub answer: String,
}

/// Augments each seed example `(question, answer)` `counts[i]` times,
/// seeding example `i`'s generator with [`example_rng`]`(seed, i)`. Only
/// questions change; every augmented example carries its seed's answer.
pub fn augment_examples<S: SynonymSource>(
    seeds: &[(String, String)],
    counts: &[usize],
    config: &EdaConfig,
    seed: u64,
    source: &S,
) -> Result<Vec<AugmentedExample>, WordNetError> {
    let mut out = Vec::with_capacity(counts.iter().sum());
    for (seed_index, ((question, answer), &count)) in seeds.iter().zip(counts).enumerate() {
        let mut rng = example_rng(seed, seed_index as u64);
        for augmented in augment_question(question, count, config, source, &mut rng)? {
            out.push(AugmentedExample {
                seed_index,
                question: augmented,
                answer: answer.clone(),
            });
        }
    }
    Ok(out)
}
