//! Answer extraction and scoring: every case where simple scorers go wrong.

use llm2llm::data::score::{Number, Rule, extract_answer, score};

fn ratio(numerator: i128, denominator: i128) -> Number {
    Number::ratio(numerator, denominator).expect("test denominators are non-zero")
}

/// (output, expected value, expected rule)
fn extraction_cases() -> Vec<(&'static str, Option<Number>, Rule)> {
    vec![
        (
            "She has 26 left.\n#### 26",
            Some(Number::integer(26)),
            Rule::HashMarker,
        ),
        ("#### -7", Some(Number::integer(-7)), Rule::HashMarker),
        ("#### −7", Some(Number::integer(-7)), Rule::HashMarker),
        ("#### +7", Some(Number::integer(7)), Rule::HashMarker),
        ("#### 1,200", Some(Number::integer(1200)), Rule::HashMarker),
        (
            "#### 2,520,000",
            Some(Number::integer(2_520_000)),
            Rule::HashMarker,
        ),
        (
            "#### $1,200.50",
            Some(ratio(240_100, 200)),
            Rule::HashMarker,
        ),
        ("#### -$5", Some(Number::integer(-5)), Rule::HashMarker),
        ("#### $-5", Some(Number::integer(-5)), Rule::HashMarker),
        ("#### €12", Some(Number::integer(12)), Rule::HashMarker),
        ("#### 18 cm", Some(Number::integer(18)), Rule::HashMarker),
        ("#### 25%", Some(Number::integer(25)), Rule::HashMarker),
        ("#### 5.0", Some(Number::integer(5)), Rule::HashMarker),
        ("#### 5.", Some(Number::integer(5)), Rule::HashMarker),
        ("#### 1,200.", Some(Number::integer(1200)), Rule::HashMarker),
        ("#### 3/4", Some(ratio(3, 4)), Rule::HashMarker),
        ("#### .5", Some(ratio(1, 2)), Rule::HashMarker),
        ("####72", Some(Number::integer(72)), Rule::HashMarker),
        (
            "#### The answer is 9 apples.",
            Some(Number::integer(9)),
            Rule::HashMarker,
        ),
        // The first marker with a number wins: later ones answer questions the
        // student invented after its answer.
        ("#### 4\n#### 9", Some(Number::integer(4)), Rule::HashMarker),
        ("####\n#### 9", Some(Number::integer(9)), Rule::HashMarker),
        // An invented follow-up question is cut off before extraction.
        (
            "So 6 in all.\n#### 6\nQuestion: Tom has 3 pens.\nAnswer: #### 3",
            Some(Number::integer(6)),
            Rule::HashMarker,
        ),
        (
            "Tom has 5 + 7 = 12 apples.",
            Some(Number::integer(12)),
            Rule::LastNumber,
        ),
        (
            "So the answer is 12.",
            Some(Number::integer(12)),
            Rule::LastNumber,
        ),
        (
            "so 30-4 = <<30-4=26>>26",
            Some(Number::integer(26)),
            Rule::LastNumber,
        ),
        (
            "the result is 10 - 3",
            Some(Number::integer(3)),
            Rule::LastNumber,
        ),
        (
            "it drops to -3 degrees",
            Some(Number::integer(-3)),
            Rule::LastNumber,
        ),
        (
            "He pays 1,5 then 7",
            Some(Number::integer(7)),
            Rule::LastNumber,
        ),
        ("Counts: 1,2,3", Some(Number::integer(3)), Rule::LastNumber),
        ("call B12 now", None, Rule::None),
        ("ends with x.5", None, Rule::None),
        (
            "25x.4=<<25*.4=10>>10",
            Some(Number::integer(10)),
            Rule::LastNumber,
        ),
        ("#### unknown", None, Rule::None),
        ("I do not know.", None, Rule::None),
        ("", None, Rule::None),
        (
            "6 so far\nQuestion: Ann has 2 cats.",
            Some(Number::integer(6)),
            Rule::LastNumber,
        ),
        (
            "#### 1234,567",
            Some(Number::integer(1234)),
            Rule::HashMarker,
        ),
    ]
}

#[test]
fn extraction_matches_every_case() {
    for (output, value, rule) in extraction_cases() {
        let extraction = extract_answer(output);
        assert_eq!(extraction.value, value, "value of {output:?}");
        assert_eq!(extraction.rule, rule, "rule of {output:?}");
    }
}

#[test]
fn extraction_keeps_matched_text() {
    let extraction = extract_answer("#### $1,200.");
    assert_eq!(extraction.matched.as_deref(), Some("$1,200"));
}

/// (output, reference, expected verdict)
fn scoring_cases() -> Vec<(&'static str, Number, bool)> {
    vec![
        ("#### 5", Number::integer(5), true),
        ("#### 5.0", Number::integer(5), true),
        ("#### 5.00 dollars.", Number::integer(5), true),
        ("#### 0.75", ratio(3, 4), true),
        ("#### 3/4", ratio(3, 4), true),
        ("#### 6/8", ratio(3, 4), true),
        ("#### 0.33", ratio(1, 3), false),
        ("#### 72.0001", Number::integer(72), false),
        ("#### -7", Number::integer(-7), true),
        ("#### 7", Number::integer(-7), false),
        ("#### 1,080", Number::integer(1080), true),
        ("#### $1080", Number::integer(1080), true),
        ("#### 10\n#### 7", Number::integer(7), false),
        ("The total is 42.", Number::integer(42), true),
        ("no idea", Number::integer(42), false),
    ]
}

#[test]
fn scoring_matches_every_case() {
    for (output, reference, correct) in scoring_cases() {
        assert_eq!(
            score(output, reference).correct,
            correct,
            "verdict of {output:?} against {reference}"
        );
    }
}

#[test]
fn verdict_records_canonical_text_and_rule() {
    let verdict = score("The total is 1,200.50 dollars.", Number::integer(1200));
    assert_eq!(verdict.extracted.as_deref(), Some("1200.5"));
    assert_eq!(verdict.rule.as_str(), "last_number");
}

#[test]
fn verdict_without_number_has_rule_none() {
    let verdict = score("I cannot tell.", Number::integer(3));
    assert_eq!(verdict.extracted, None);
    assert_eq!(verdict.rule.as_str(), "none");
}

#[test]
fn rule_names_match_database_column() {
    assert_eq!(Rule::HashMarker.as_str(), "hash_marker");
    assert_eq!(Rule::LastNumber.as_str(), "last_number");
    assert_eq!(Rule::None.as_str(), "none");
}

#[test]
fn number_display_is_canonical() {
    let cases = [
        (Number::integer(-12), "-12"),
        (ratio(3, 4), "0.75"),
        (ratio(-1, 8), "-0.125"),
        (ratio(1, 3), "1/3"),
        (ratio(10, 4), "2.5"),
        (ratio(-2, -4), "0.5"),
    ];
    for (number, text) in cases {
        assert_eq!(number.to_string(), text);
    }
}

#[test]
fn number_parse_rejects_leading_words() {
    assert_eq!(Number::parse("about 5"), None);
    assert_eq!(Number::parse("five"), None);
    assert_eq!(Number::parse(" $5 "), Some(Number::integer(5)));
}

#[test]
fn overlong_number_is_not_recognized() {
    let digits = "9".repeat(40);
    assert_eq!(Number::parse(&digits), None);
}

#[test]
fn zero_denominator_is_not_a_fraction() {
    assert_eq!(extract_answer("#### 3/0").value, Some(Number::integer(3)));
}
