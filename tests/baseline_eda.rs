//! EDA on math word problems: numbers, units and answers survive, output is
//! reproducible from its seed, and each operation changes words at its
//! configured rate. Synonyms come from the real WordNet 3.0 files where the
//! property does not depend on them, and from a fixed table where exact
//! counts do.

use std::collections::HashMap;
use std::path::Path;
use std::sync::OnceLock;

use llm2llm::baseline::eda::{
    EdaConfig, EdaConfigError, SynonymSource, TokenKind, augment_examples, augment_question,
    example_rng, random_deletion, random_insertion, random_swap, render, synonym_replacement,
    tokenize, words_to_change,
};
use llm2llm::baseline::split_evenly;
use llm2llm::baseline::wordnet::{DEFAULT_WORDNET_DIR, WordNet, WordNetError};

fn wordnet() -> &'static WordNet {
    static WORDNET: OnceLock<WordNet> = OnceLock::new();
    WORDNET.get_or_init(|| {
        WordNet::open(Path::new(DEFAULT_WORDNET_DIR))
            .expect("WordNet 3.0 must be installed for these tests: apt-get install wordnet-base")
    })
}

/// Math problems written for these tests, with numbers in many forms.
const PROBLEMS: &[(&str, &str)] = &[
    (
        "Lena buys 3 notebooks for $2.50 each and a backpack that costs 4 times as much as one notebook. How much does she spend in total?",
        "Notebooks: 3*2.50=<<3*2.50=7.5>>7.5\nBackpack: 4*2.50=<<4*2.50=10>>10\nTotal: 7.5+10=<<7.5+10=17.5>>17.5\n#### 17.5",
    ),
    (
        "A farmer harvests 1,200 kg of potatoes. He sells 25% of them at the market and gives two dozen kilograms to his neighbor. How many kilograms does he keep?",
        "Sold: 1200*0.25=<<1200*0.25=300>>300\nKept: 1200-300-24=<<1200-300-24=876>>876\n#### 876",
    ),
    (
        "Omar walks 5 km every morning and twice that distance on Sundays. How far does he walk in a week with one Sunday?",
        "Weekdays: 6*5=<<6*5=30>>30\nSunday: 2*5=<<2*5=10>>10\n#### 40",
    ),
    (
        "A train leaves at 3:30 and travels for 2.5 hours at 80 miles per hour. If the temperature drops from 12 to -4 degrees, what distance does the train cover?",
        "80*2.5=<<80*2.5=200>>200\n#### 200",
    ),
    (
        "The bakery made twenty-five loaves on Monday, 1/3 of which were sold before noon. The remaining loaves were packed in boxes of 5. How many boxes were needed?",
        "#### 4",
    ),
];

/// Every number in the text, in order: maximal runs of digits with the
/// `.`, `,`, `/` and `:` between digits.
fn numbers(text: &str) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut current = String::new();
    for (i, &c) in chars.iter().enumerate() {
        let joins = matches!(c, '.' | ',' | '/' | ':')
            && !current.is_empty()
            && chars.get(i + 1).is_some_and(char::is_ascii_digit);
        if c.is_ascii_digit() || joins {
            current.push(c);
        } else if !current.is_empty() {
            out.push(std::mem::take(&mut current));
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

/// Number words and quantity words of the text, in order.
fn quantity_words(text: &str) -> Vec<String> {
    const WORDS: &[&str] = &[
        "twice",
        "two",
        "dozen",
        "twenty-five",
        "times",
        "each",
        "per",
        "one",
    ];
    text.split(|c: char| c.is_whitespace() || ",.?".contains(c))
        .map(str::to_lowercase)
        .filter(|w| WORDS.contains(&w.as_str()))
        .collect()
}

fn strong_config() -> EdaConfig {
    EdaConfig {
        alpha_sr: 0.3,
        alpha_ri: 0.3,
        alpha_rs: 0.3,
        p_rd: 0.3,
        n_aug: 12,
    }
}

fn all_augmentations(
    config: &EdaConfig,
    seeds: std::ops::Range<u64>,
) -> Vec<(usize, String, String)> {
    let seed_set: Vec<(String, String)> = PROBLEMS
        .iter()
        .map(|(q, a)| (q.to_string(), a.to_string()))
        .collect();
    let counts = vec![config.n_aug; seed_set.len()];
    let mut out = Vec::new();
    for seed in seeds {
        for example in augment_examples(&seed_set, &counts, config, seed, wordnet()).unwrap() {
            out.push((example.seed_index, example.question, example.answer));
        }
    }
    out
}

#[test]
fn eda_keeps_every_number_in_order() {
    for (index, question, _) in all_augmentations(&strong_config(), 0..20) {
        assert_eq!(
            numbers(&question),
            numbers(PROBLEMS[index].0),
            "augmented: {question}"
        );
    }
}

#[test]
fn eda_keeps_number_and_quantity_words() {
    for (index, question, _) in all_augmentations(&strong_config(), 0..20) {
        assert_eq!(
            quantity_words(&question),
            quantity_words(PROBLEMS[index].0),
            "augmented: {question}"
        );
    }
}

#[test]
fn eda_keeps_the_answer_as_is() {
    for (index, _, answer) in all_augmentations(&strong_config(), 0..5) {
        assert_eq!(answer, PROBLEMS[index].1);
    }
}

#[test]
fn eda_keeps_units_next_to_their_numbers() {
    for (index, question, _) in all_augmentations(&strong_config(), 0..20) {
        for pair in ["5 km", "2.5 hours", "80 miles", "1,200 kg", "-4 degrees"] {
            if PROBLEMS[index].0.contains(pair) {
                assert!(question.contains(pair), "lost {pair:?}: {question}");
            }
        }
    }
}

#[test]
fn eda_changes_the_questions() {
    let changed = all_augmentations(&strong_config(), 0..2)
        .iter()
        .filter(|(index, question, _)| question != PROBLEMS[*index].0)
        .count();
    assert!(changed > 0);
}

#[test]
fn eda_yields_n_aug_questions_per_example() {
    let one_operation = EdaConfig {
        alpha_sr: 0.0,
        alpha_ri: 0.0,
        alpha_rs: 0.1,
        p_rd: 0.0,
        n_aug: 0,
    };
    for config in [EdaConfig::default(), one_operation] {
        for count in [0, 1, 4, 9, 10] {
            let mut rng = example_rng(7, 0);
            let out = augment_question(PROBLEMS[0].0, count, &config, wordnet(), &mut rng).unwrap();
            assert_eq!(out.len(), count, "{config:?}");
        }
    }
}

#[test]
fn same_seed_gives_same_output() {
    let first = all_augmentations(&EdaConfig::default(), 3..4);
    let second = all_augmentations(&EdaConfig::default(), 3..4);
    assert_eq!(first, second);
}

#[test]
fn different_seed_gives_different_output() {
    let first = all_augmentations(&EdaConfig::default(), 3..4);
    let second = all_augmentations(&EdaConfig::default(), 4..5);
    assert_ne!(first, second);
}

#[test]
fn example_output_does_not_depend_on_other_examples() {
    let seeds: Vec<(String, String)> = PROBLEMS
        .iter()
        .map(|(q, a)| (q.to_string(), a.to_string()))
        .collect();
    let config = EdaConfig::default();
    let all = augment_examples(&seeds, &[9, 9, 9, 9, 9], &config, 11, wordnet()).unwrap();
    let fewer = augment_examples(&seeds, &[0, 9, 9, 9, 9], &config, 11, wordnet()).unwrap();
    assert_eq!(all[9..], fewer[..]);
}

#[test]
fn tokenize_then_render_is_identity() {
    for text in
        PROBLEMS
            .iter()
            .map(|(q, _)| *q)
            .chain(["  Two (big) dogs?\n", "", "\"Hi,\" she said."])
    {
        assert_eq!(render(&tokenize(text)), text);
    }
}

#[test]
fn tokenize_protects_numbers_units_and_symbols() {
    let text = "He paid $3 for 5 kg, 10% off, twenty-five red apples + half a dozen = 2x per day.";
    let tokens = tokenize(text);
    let kind = |word: &str| tokens.iter().find(|t| t.text == word).map(|t| t.kind);
    // "off" and "red" follow a number, so the unit rule protects them.
    for word in [
        "$3",
        "5",
        "kg",
        "10%",
        "off",
        "twenty-five",
        "red",
        "+",
        "half",
        "dozen",
        "=",
        "2x",
        "per",
        "day",
    ] {
        assert_eq!(kind(word), Some(TokenKind::Protected), "{word}");
    }
    for word in ["He", "paid", "apples"] {
        assert_eq!(kind(word), Some(TokenKind::Word), "{word}");
    }
    assert_eq!(kind(","), Some(TokenKind::Punct));
}

/// Every word has exactly one synonym: the word with "zz" in front. Count
/// changes exactly by looking for that prefix.
struct PrefixSynonyms;

impl SynonymSource for PrefixSynonyms {
    fn synonyms(&self, word: &str) -> Result<Vec<String>, WordNetError> {
        Ok(vec![format!("zz{}", word.to_lowercase())])
    }
}

/// Twenty distinct eligible words, none a stop word.
const TWENTY_WORDS: &str = "Maria baked cookies Peter painted fences quiet gardens ancient churches golden skies summer evenings bright lanterns glowing rivers gentle winds";

fn marked_words(text: &str) -> usize {
    text.split_whitespace()
        .filter(|w| w.to_lowercase().starts_with("zz"))
        .count()
}

#[test]
fn rate_rounds_down_with_a_minimum_of_one() {
    assert_eq!(words_to_change(0.1, 20), 2);
    assert_eq!(words_to_change(0.1, 19), 1);
    assert_eq!(words_to_change(0.01, 20), 1);
    assert_eq!(words_to_change(0.25, 20), 5);
}

#[test]
fn synonym_replacement_replaces_alpha_share_of_words() {
    let tokens = tokenize(TWENTY_WORDS);
    for (alpha, expected) in [(0.1, 2), (0.25, 5), (0.01, 1)] {
        for seed in 0..50 {
            let n = words_to_change(alpha, 20);
            let out = synonym_replacement(&tokens, n, &PrefixSynonyms, &mut example_rng(seed, 0))
                .unwrap();
            let text = render(&out);
            assert_eq!(marked_words(&text), expected, "alpha {alpha}: {text}");
            assert_eq!(out.len(), tokens.len(), "alpha {alpha}: {text}");
        }
    }
}

#[test]
fn synonym_replacement_skips_words_without_synonyms() {
    struct OnlyRivers;
    impl SynonymSource for OnlyRivers {
        fn synonyms(&self, word: &str) -> Result<Vec<String>, WordNetError> {
            Ok(if word == "rivers" {
                vec!["streams".to_string()]
            } else {
                Vec::new()
            })
        }
    }
    let out = synonym_replacement(
        &tokenize(TWENTY_WORDS),
        2,
        &OnlyRivers,
        &mut example_rng(1, 0),
    )
    .unwrap();
    assert_eq!(render(&out), TWENTY_WORDS.replace("rivers", "streams"));
}

#[test]
fn random_insertion_adds_alpha_share_of_words() {
    let tokens = tokenize(TWENTY_WORDS);
    for (alpha, expected) in [(0.1, 2), (0.25, 5)] {
        for seed in 0..50 {
            let out = random_insertion(
                &tokens,
                words_to_change(alpha, 20),
                &PrefixSynonyms,
                &mut example_rng(seed, 0),
            )
            .unwrap();
            let text = render(&out);
            assert_eq!(
                text.split_whitespace().count(),
                20 + expected,
                "alpha {alpha}: {text}"
            );
            assert_eq!(marked_words(&text), expected, "alpha {alpha}: {text}");
        }
    }
}

#[test]
fn random_insertion_never_anchors_on_protected_words() {
    let question = "Sam rides 12 miles in 3 hours, then rests for half an hour.";
    let tokens = tokenize(question);
    for seed in 0..100 {
        let text = render(
            &random_insertion(&tokens, 5, &PrefixSynonyms, &mut example_rng(seed, 0)).unwrap(),
        );
        for forbidden in ["zzmiles", "zzhours", "zzhalf", "zzhour"] {
            assert!(!text.contains(forbidden), "{text}");
        }
    }
}

/// Minimum number of swaps that turns `before` into `after` (distinct
/// words): length minus the number of cycles of the permutation.
fn swaps_between(before: &[&str], after: &[&str]) -> usize {
    let position: HashMap<&str, usize> = before.iter().enumerate().map(|(i, w)| (*w, i)).collect();
    let permutation: Vec<usize> = after.iter().map(|w| position[w]).collect();
    let mut seen = vec![false; permutation.len()];
    let mut cycles = 0;
    for start in 0..permutation.len() {
        if !seen[start] {
            cycles += 1;
            let mut i = start;
            while !seen[i] {
                seen[i] = true;
                i = permutation[i];
            }
        }
    }
    permutation.len() - cycles
}

#[test]
fn random_swap_swaps_alpha_share_of_words() {
    let before: Vec<&str> = TWENTY_WORDS.split(' ').collect();
    let tokens = tokenize(TWENTY_WORDS);
    let n = words_to_change(0.1, 20);
    let mut exactly_n = 0;
    for seed in 0..200 {
        let text = render(&random_swap(&tokens, n, &mut example_rng(seed, 0)));
        let after: Vec<&str> = text.split(' ').collect();
        let swaps = swaps_between(&before, &after);
        assert!(swaps <= n, "{swaps} swaps: {text}");
        exactly_n += usize::from(swaps == n);
    }
    // Two random swaps of 20 words touch four different words unless they
    // share one (about 1 in 5) or undo each other; both cases are rarer than
    // a quarter of the draws.
    assert!(
        exactly_n >= 150,
        "only {exactly_n} of 200 had {n} effective swaps"
    );
}

#[test]
fn random_swap_leaves_protected_tokens_in_place() {
    let question =
        "Ana has 4 red apples and Ben has 7 green pears, so together they have 11 fruits.";
    let tokens = tokenize(question);
    for seed in 0..50 {
        let out = random_swap(&tokens, 10, &mut example_rng(seed, 0));
        for (before, after) in tokens.iter().zip(&out) {
            if before.kind != TokenKind::Word {
                assert_eq!(before.text, after.text, "{}", render(&out));
            }
        }
    }
}

#[test]
fn random_deletion_deletes_at_rate_p() {
    let tokens = tokenize(TWENTY_WORDS);
    let mut deleted = 0;
    let trials = 500;
    for seed in 0..trials {
        let text = render(&random_deletion(&tokens, 0.1, &mut example_rng(seed, 0)));
        deleted += 20 - text.split_whitespace().count();
    }
    let rate = deleted as f64 / (trials as f64 * 20.0);
    // 10,000 draws at p = 0.1 have a standard deviation of 0.003.
    assert!((0.09..=0.11).contains(&rate), "deletion rate {rate}");
}

#[test]
fn random_deletion_keeps_one_word() {
    // Eligible: "Please", "compute", "the", "sum" and "of". The unit rule
    // protects "and" because it follows 5.
    let question = "Please compute the sum of 5 and 3.";
    for seed in 0..20 {
        let text = render(&random_deletion(
            &tokenize(question),
            1.0,
            &mut example_rng(seed, 0),
        ));
        assert!(text.ends_with(" 5 and 3."), "{text}");
        assert_eq!(text.split_whitespace().count(), 4, "{text}");
    }
}

#[test]
fn config_rejects_rates_out_of_range() {
    let config = EdaConfig {
        p_rd: 1.5,
        ..EdaConfig::default()
    };
    assert_eq!(
        config.validate(),
        Err(EdaConfigError::OutOfRange {
            name: "p_rd",
            value: 1.5
        })
    );
}

#[test]
fn config_rejects_all_operations_disabled() {
    let config = EdaConfig {
        alpha_sr: 0.0,
        alpha_ri: 0.0,
        alpha_rs: 0.0,
        p_rd: 0.0,
        n_aug: 4,
    };
    assert_eq!(config.validate(), Err(EdaConfigError::NothingEnabled));
}

#[test]
fn split_evenly_matches_the_total() {
    assert_eq!(split_evenly(10, 4), vec![3, 3, 2, 2]);
    assert_eq!(split_evenly(3, 5), vec![1, 1, 1, 0, 0]);
    assert_eq!(split_evenly(7, 0), Vec::<usize>::new());
}
