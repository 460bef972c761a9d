//! WordNet reader against the real WordNet 3.0 files from Debian's
//! `wordnet-base` (`.ci/run` installs it), plus small hand-written databases
//! for the error cases.

use std::path::Path;

use llm2llm::baseline::wordnet::{
    DEFAULT_WORDNET_DIR, Pos, WordNet, WordNetError, resolve_wordnet_dir,
};

fn wordnet() -> WordNet {
    WordNet::open(Path::new(DEFAULT_WORDNET_DIR))
        .expect("WordNet 3.0 must be installed for these tests: apt-get install wordnet-base")
}

#[test]
fn synonyms_include_other_lemmas_of_the_synsets() {
    let synonyms = wordnet().synonyms("car").unwrap();
    assert!(synonyms.contains(&"automobile".to_string()), "{synonyms:?}");
}

#[test]
fn synonyms_write_underscores_as_spaces() {
    let synonyms = wordnet().synonyms("car").unwrap();
    assert!(
        synonyms.contains(&"railway car".to_string()),
        "{synonyms:?}"
    );
    assert!(synonyms.iter().all(|s| !s.contains('_')), "{synonyms:?}");
}

#[test]
fn synonyms_exclude_the_word_itself() {
    let synonyms = wordnet().synonyms("car").unwrap();
    assert!(!synonyms.contains(&"car".to_string()), "{synonyms:?}");
}

#[test]
fn synonyms_are_lowercase() {
    // "dog" has the lemma "Canis_familiaris".
    let synonyms = wordnet().synonyms("Dog").unwrap();
    assert!(
        synonyms.contains(&"canis familiaris".to_string()),
        "{synonyms:?}"
    );
    assert!(
        synonyms.iter().all(|s| s.to_lowercase() == *s),
        "{synonyms:?}"
    );
}

#[test]
fn synonyms_cover_every_part_of_speech() {
    let wordnet = wordnet();
    let cases = [
        ("fast", "fasting"),    // noun
        ("fast", "quick"),      // adjective
        ("quickly", "rapidly"), // adverb
        ("buy", "purchase"),    // verb
    ];
    for (word, expected) in cases {
        let synonyms = wordnet.synonyms(word).unwrap();
        assert!(
            synonyms.contains(&expected.to_string()),
            "{expected} missing from {word}: {synonyms:?}"
        );
    }
}

#[test]
fn synonyms_drop_adjective_markers() {
    // data.adj writes "galore(ip)".
    let synonyms = wordnet().synonyms("abundant").unwrap();
    assert!(synonyms.iter().all(|s| !s.contains('(')), "{synonyms:?}");
}

#[test]
fn regular_plural_reaches_its_base_form() {
    let synonyms = wordnet().synonyms("cars").unwrap();
    assert!(synonyms.contains(&"automobile".to_string()), "{synonyms:?}");
}

#[test]
fn irregular_past_tense_uses_the_exception_list() {
    let wordnet = wordnet();
    assert_eq!(
        wordnet.base_forms("bought", Pos::Verb),
        vec!["buy".to_string()]
    );
    let synonyms = wordnet.synonyms("bought").unwrap();
    assert!(synonyms.contains(&"purchase".to_string()), "{synonyms:?}");
}

#[test]
fn base_form_is_not_offered_as_a_synonym() {
    let synonyms = wordnet().synonyms("cars").unwrap();
    assert!(!synonyms.contains(&"car".to_string()), "{synonyms:?}");
}

#[test]
fn unknown_word_has_no_synonyms() {
    assert!(wordnet().synonyms("qzxv").unwrap().is_empty());
}

#[test]
fn missing_database_error_says_how_to_install() {
    let dir = tempfile::tempdir().unwrap();
    let err = WordNet::open(dir.path()).unwrap_err();
    assert!(matches!(err, WordNetError::NotFound { .. }), "{err:?}");
    let message = err.to_string();
    assert!(
        message.contains("apt-get install wordnet-base"),
        "{message}"
    );
    assert!(
        message.contains(&dir.path().display().to_string()),
        "{message}"
    );
}

/// Writes a one-synset database: "alpha" and "beta" are synonyms.
fn write_tiny_database(dir: &Path, index_offset: &str) {
    let data_line = "00000000 03 n 02 alpha 0 Beta_Gamma 0 000 | a test synset\n";
    std::fs::write(dir.join("data.noun"), data_line).unwrap();
    std::fs::write(
        dir.join("index.noun"),
        format!("  1 licence line\nalpha n 1 0 1 0 {index_offset}\n"),
    )
    .unwrap();
    for pos in ["verb", "adj", "adv"] {
        std::fs::write(dir.join(format!("data.{pos}")), "").unwrap();
        std::fs::write(dir.join(format!("index.{pos}")), "").unwrap();
    }
}

#[test]
fn tiny_database_reads_lemmas() {
    let dir = tempfile::tempdir().unwrap();
    write_tiny_database(dir.path(), "00000000");
    let synonyms = WordNet::open(dir.path())
        .unwrap()
        .synonyms("alpha")
        .unwrap();
    assert_eq!(synonyms, vec!["beta gamma".to_string()]);
}

#[test]
fn index_offset_without_synset_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    write_tiny_database(dir.path(), "00000007");
    let err = WordNet::open(dir.path())
        .unwrap()
        .synonyms("alpha")
        .unwrap_err();
    assert!(
        matches!(err, WordNetError::BadOffset { offset: 7, .. }),
        "{err:?}"
    );
}

#[test]
fn malformed_index_line_names_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    write_tiny_database(dir.path(), "00000000");
    std::fs::write(
        dir.path().join("index.noun"),
        "  1 licence\nalpha n x 0 1 0 00000000\n",
    )
    .unwrap();
    let err = WordNet::open(dir.path()).unwrap_err();
    let message = err.to_string();
    assert!(message.contains("index.noun, line 2"), "{message}");
}

#[test]
fn explicit_setting_is_used_as_is() {
    let chosen = resolve_wordnet_dir(Some(Path::new("/opt/wn")));
    assert_eq!(chosen, Path::new("/opt/wn"));
}
