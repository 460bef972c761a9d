//! A reader for the WordNet 3.0 database files (format in wndb(5WN)), used
//! for EDA's synonyms.
//!
//! It reads the four `index.<pos>` files into a lemma → synset offsets map,
//! keeps the four `data.<pos>` files in memory as bytes and parses a synset
//! line only when a lookup reaches it, and reads the `<pos>.exc`
//! morphological exception lists. Inflected forms are reduced to base forms
//! the way WordNet's own `morphy` does: exception list first, then its
//! suffix-detachment rules. Glosses, pointers and verb frames are not read.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// The database folder used when neither a flag, the configuration nor the
/// environment names one: where Debian's `wordnet-base` installs it.
pub const DEFAULT_WORDNET_DIR: &str = "/usr/share/wordnet";

/// Environment variable naming the database folder itself (WordNet's own name
/// for it).
pub const WNSEARCHDIR_ENV: &str = "WNSEARCHDIR";

/// Environment variable naming a WordNet installation; its database is in
/// `$WNHOME/dict` (WordNet's layout) or directly in `$WNHOME`.
pub const WNHOME_ENV: &str = "WNHOME";

/// Errors reading the WordNet database.
#[derive(Debug, thiserror::Error)]
pub enum WordNetError {
    #[error(
        "WordNet database not found: {path} has no {file} ({source}). Install it with \
         `apt-get install wordnet-base` (Debian, Ubuntu), or point --wordnet-dir, the \
         `wordnet_dir` setting or the {WNSEARCHDIR_ENV} environment variable at a folder \
         holding WordNet 3.0's index.noun, data.noun, ... files"
    )]
    NotFound {
        path: PathBuf,
        file: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to read the WordNet file {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid WordNet file {path}, line {line}: {what}")]
    Malformed {
        path: PathBuf,
        line: usize,
        what: String,
    },
    #[error(
        "invalid WordNet file {path}: no synset starts at byte offset {offset}, which \
         the index refers to (are the index and data files from different releases?)"
    )]
    BadOffset { path: PathBuf, offset: usize },
}

/// Part of speech, in the order the database files are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pos {
    Noun,
    Verb,
    Adj,
    Adv,
}

impl Pos {
    pub const ALL: [Pos; 4] = [Pos::Noun, Pos::Verb, Pos::Adj, Pos::Adv];

    /// File name suffix: `index.noun`, `noun.exc`, ...
    fn file_suffix(self) -> &'static str {
        match self {
            Pos::Noun => "noun",
            Pos::Verb => "verb",
            Pos::Adj => "adj",
            Pos::Adv => "adv",
        }
    }

    /// WordNet's suffix-detachment rules (morphy(7WN)): (inflected ending,
    /// base ending). Adverbs have none.
    fn detachment_rules(self) -> &'static [(&'static str, &'static str)] {
        match self {
            Pos::Noun => &[
                ("s", ""),
                ("ses", "s"),
                ("xes", "x"),
                ("zes", "z"),
                ("ches", "ch"),
                ("shes", "sh"),
                ("men", "man"),
                ("ies", "y"),
            ],
            Pos::Verb => &[
                ("s", ""),
                ("ies", "y"),
                ("es", "e"),
                ("es", ""),
                ("ed", "e"),
                ("ed", ""),
                ("ing", "e"),
                ("ing", ""),
            ],
            Pos::Adj => &[("er", ""), ("est", ""), ("er", "e"), ("est", "e")],
            Pos::Adv => &[],
        }
    }
}

/// One part of speech: its index, data bytes and exceptions.
struct PosDb {
    pos: Pos,
    data_path: PathBuf,
    data: Vec<u8>,
    /// Lemma (lowercase, underscores for spaces) → byte offsets in `data`.
    index: HashMap<String, Vec<usize>>,
    /// Inflected form → base forms.
    exceptions: HashMap<String, Vec<String>>,
}

/// The WordNet database, loaded from one folder.
pub struct WordNet {
    dir: PathBuf,
    parts: Vec<PosDb>,
}

impl std::fmt::Debug for WordNet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WordNet")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

/// Picks the database folder: the explicit setting (flag or configuration)
/// first, then `$WNSEARCHDIR`, then `$WNHOME/dict` (or `$WNHOME` when it contains
/// the files itself), then [`DEFAULT_WORDNET_DIR`].
pub fn resolve_wordnet_dir(setting: Option<&Path>) -> PathBuf {
    if let Some(dir) = setting {
        return dir.to_path_buf();
    }
    if let Some(dir) = std::env::var_os(WNSEARCHDIR_ENV).filter(|v| !v.is_empty()) {
        return PathBuf::from(dir);
    }
    if let Some(home) = std::env::var_os(WNHOME_ENV).filter(|v| !v.is_empty()) {
        let home = PathBuf::from(home);
        let dict = home.join("dict");
        if dict.join("index.noun").is_file() {
            return dict;
        }
        return home;
    }
    PathBuf::from(DEFAULT_WORDNET_DIR)
}

impl WordNet {
    /// Loads the index, data and exception files of all four parts of speech
    /// from `dir`. A missing `index.<pos>` or `data.<pos>` is
    /// [`WordNetError::NotFound`] with installation advice; a missing
    /// exception list is allowed (adverbs have almost none).
    pub fn open(dir: &Path) -> Result<WordNet, WordNetError> {
        let mut parts = Vec::with_capacity(Pos::ALL.len());
        for pos in Pos::ALL {
            parts.push(load_pos(dir, pos)?);
        }
        tracing::debug!(dir = %dir.display(), "loaded WordNet");
        Ok(WordNet {
            dir: dir.to_path_buf(),
            parts,
        })
    }

    /// Checks that `dir` contains every index and data file, without reading
    /// them, so a missing WordNet fails before any work starts.
    pub fn check_installed(dir: &Path) -> Result<(), WordNetError> {
        for pos in Pos::ALL {
            for file in [index_file_name(pos), data_file_name(pos)] {
                if let Err(source) = std::fs::metadata(dir.join(file)) {
                    return Err(WordNetError::NotFound {
                        path: dir.to_path_buf(),
                        file,
                        source,
                    });
                }
            }
        }
        Ok(())
    }

    /// Returns the folder the database was read from.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Returns the base forms of `word` that the index of `pos` contains:
    /// the word itself, its exception-list bases and the results of the
    /// suffix rules, lowercased, with spaces written as underscores, in that
    /// order and without repeats.
    pub fn base_forms(&self, word: &str, pos: Pos) -> Vec<String> {
        let key = index_key(word);
        let part = self.part(pos);
        let mut forms: Vec<String> = Vec::new();
        let mut push = |form: String| {
            if part.index.contains_key(&form) && !forms.contains(&form) {
                forms.push(form);
            }
        };
        push(key.clone());
        if let Some(bases) = part.exceptions.get(&key) {
            for base in bases {
                push(base.clone());
            }
        }
        for (ending, replacement) in pos.detachment_rules() {
            if let Some(stem) = key.strip_suffix(ending)
                && !stem.is_empty()
            {
                push(format!("{stem}{replacement}"));
            }
        }
        forms
    }

    /// Returns the synonyms of `word`: the lemmas of every synset of every
    /// base form of `word`, in all parts of speech, in index order (most
    /// frequent sense first). They are lowercased, with spaces for
    /// underscores and without adjective markers such as `(a)`. Repeats,
    /// `word` and its base forms are left out. An unknown word has none.
    pub fn synonyms(&self, word: &str) -> Result<Vec<String>, WordNetError> {
        let key = index_key(word);
        let mut excluded: Vec<String> = vec![key.replace('_', " ")];
        let mut synonyms: Vec<String> = Vec::new();
        for part in &self.parts {
            let forms = self.base_forms(word, part.pos);
            excluded.extend(forms.iter().map(|form| form.replace('_', " ")));
            for form in &forms {
                for &offset in part.index.get(form).map(Vec::as_slice).unwrap_or(&[]) {
                    for lemma in part.synset_lemmas(offset)? {
                        if !synonyms.contains(&lemma) {
                            synonyms.push(lemma);
                        }
                    }
                }
            }
        }
        synonyms.retain(|lemma| !excluded.contains(lemma));
        Ok(synonyms)
    }

    fn part(&self, pos: Pos) -> &PosDb {
        // `open` pushes one part per `Pos::ALL` entry, in that order.
        &self.parts[pos as usize]
    }
}

/// Lowercases and joins words with underscores, as index lemmas are written.
fn index_key(word: &str) -> String {
    word.trim()
        .to_lowercase()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join("_")
}

impl PosDb {
    /// Parses the lemmas of the synset whose line starts at `offset`:
    /// `offset lex_filenum ss_type w_cnt word lex_id [word lex_id...] ...`,
    /// with `w_cnt` in hexadecimal.
    fn synset_lemmas(&self, offset: usize) -> Result<Vec<String>, WordNetError> {
        let bad_offset = || WordNetError::BadOffset {
            path: self.data_path.clone(),
            offset,
        };
        let rest = self.data.get(offset..).ok_or_else(bad_offset)?;
        let end = rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
        let line = std::str::from_utf8(&rest[..end]).map_err(|_| bad_offset())?;
        let mut fields = line.split(' ');

        let stated_offset = fields.next().and_then(|f| f.parse::<usize>().ok());
        if stated_offset != Some(offset) {
            return Err(bad_offset());
        }
        let word_count = fields
            .nth(2)
            .and_then(|f| usize::from_str_radix(f, 16).ok())
            .ok_or_else(bad_offset)?;

        let mut lemmas = Vec::with_capacity(word_count);
        for _ in 0..word_count {
            let word = fields.next().ok_or_else(bad_offset)?;
            let _lex_id = fields.next().ok_or_else(bad_offset)?;
            lemmas.push(display_lemma(word));
        }
        Ok(lemmas)
    }
}

/// Turns a data-file word into text: drops an adjective syntactic marker
/// (`(a)`, `(p)`, `(ip)`), lowercases and writes spaces for underscores.
fn display_lemma(word: &str) -> String {
    let word = match word.find('(') {
        Some(start) if word.ends_with(')') => &word[..start],
        _ => word,
    };
    word.to_lowercase().replace('_', " ")
}

fn load_pos(dir: &Path, pos: Pos) -> Result<PosDb, WordNetError> {
    let suffix = pos.file_suffix();
    let index_name = index_file_name(pos);
    let data_name = data_file_name(pos);
    let index_path = dir.join(index_name);
    let data_path = dir.join(data_name);

    let index_text = read_required(&index_path, index_name)?;
    let data = std::fs::read(&data_path).map_err(|source| match source.kind() {
        std::io::ErrorKind::NotFound => WordNetError::NotFound {
            path: dir.to_path_buf(),
            file: data_name,
            source,
        },
        _ => WordNetError::Read {
            path: data_path.clone(),
            source,
        },
    })?;
    let index = parse_index(&index_path, &index_text)?;

    let exc_path = dir.join(format!("{suffix}.exc"));
    let exceptions = match std::fs::read_to_string(&exc_path) {
        Ok(text) => parse_exceptions(&text),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => HashMap::new(),
        Err(source) => {
            return Err(WordNetError::Read {
                path: exc_path,
                source,
            });
        }
    };

    Ok(PosDb {
        pos,
        data_path,
        data,
        index,
        exceptions,
    })
}

fn index_file_name(pos: Pos) -> &'static str {
    match pos {
        Pos::Noun => "index.noun",
        Pos::Verb => "index.verb",
        Pos::Adj => "index.adj",
        Pos::Adv => "index.adv",
    }
}

fn data_file_name(pos: Pos) -> &'static str {
    match pos {
        Pos::Noun => "data.noun",
        Pos::Verb => "data.verb",
        Pos::Adj => "data.adj",
        Pos::Adv => "data.adv",
    }
}

fn read_required(path: &Path, file: &'static str) -> Result<String, WordNetError> {
    std::fs::read_to_string(path).map_err(|source| match source.kind() {
        std::io::ErrorKind::NotFound => WordNetError::NotFound {
            path: path.parent().unwrap_or(Path::new("")).to_path_buf(),
            file,
            source,
        },
        _ => WordNetError::Read {
            path: path.to_path_buf(),
            source,
        },
    })
}

/// Parses index lines `lemma pos synset_cnt p_cnt [ptr...] sense_cnt
/// tagsense_cnt offset...`: the offsets are the last `synset_cnt` fields.
/// Licence lines start with two spaces and are skipped.
fn parse_index(path: &Path, text: &str) -> Result<HashMap<String, Vec<usize>>, WordNetError> {
    let mut index = HashMap::new();
    for (number, line) in text.lines().enumerate() {
        if line.starts_with("  ") || line.trim().is_empty() {
            continue;
        }
        let malformed = |what: &str| WordNetError::Malformed {
            path: path.to_path_buf(),
            line: number + 1,
            what: what.to_string(),
        };
        let fields: Vec<&str> = line.split_whitespace().collect();
        let synset_count: usize = fields
            .get(2)
            .and_then(|f| f.parse().ok())
            .ok_or_else(|| malformed("synset_cnt (third field) is not a number"))?;
        if fields.len() < 4 + synset_count {
            return Err(malformed("fewer synset offsets than synset_cnt says"));
        }
        let offsets = fields[fields.len() - synset_count..]
            .iter()
            .map(|f| f.parse::<usize>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| malformed("a synset offset is not a number"))?;
        index.insert(fields[0].to_string(), offsets);
    }
    Ok(index)
}

/// Parses exception lines `inflected base [base...]`.
fn parse_exceptions(text: &str) -> HashMap<String, Vec<String>> {
    let mut exceptions: HashMap<String, Vec<String>> = HashMap::new();
    for line in text.lines() {
        let mut fields = line.split_whitespace();
        let Some(inflected) = fields.next() else {
            continue;
        };
        exceptions
            .entry(inflected.to_string())
            .or_default()
            .extend(fields.map(str::to_string));
    }
    exceptions
}
