//! Parsing of teacher replies into items, for both reply formats the
//! prompts in `configs/prompts/` ask for.
//!
//! LLM2LLM replies hold items of the form `Question N: …`, `Solution N:`,
//! solution lines, `#### <number>`. Models stray from that, so the parser
//! accepts numbered or unnumbered labels, markdown emphasis and headings,
//! code fences, prose before and after the items, and Windows line endings.
//! AugGPT replies hold `Question N: …` entries or a numbered list. The
//! checks on item content live in `validate`.

use super::validate::{RejectReason, check_math_example};

/// The finish reason that means the reply hit `max_tokens`.
pub const FINISH_LENGTH: &str = "length";

/// A parsed and checked item: a question and a GSM8K-style answer (solution
/// lines, then `#### <number>`).
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedItem {
    pub question: String,
    pub answer: String,
}

/// Items that passed, and rejected items with their reason and text.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ParsedReply {
    pub items: Vec<ParsedItem>,
    pub rejected: Vec<(RejectReason, String)>,
}

/// Parses an LLM2LLM reply and checks each item with
/// `validate::check_math_example`.
pub fn parse_math_reply(text: &str, finish_reason: Option<&str>) -> ParsedReply {
    let lines = clean_lines(text);
    if let Some(rejected) = reject_whole_reply(&lines, finish_reason) {
        return rejected;
    }
    let mut chunks = split_math_items(&lines);
    let mut reply = ParsedReply::default();
    if chunks.is_empty() {
        let reason = classify_itemless(&lines, finish_reason);
        reply.rejected.push((reason, lines.join("\n")));
        return reply;
    }
    if finish_reason == Some(FINISH_LENGTH)
        && let Some(last) = chunks.pop()
    {
        reply
            .rejected
            .push((RejectReason::Truncated, last.join("\n")));
    }
    for chunk in chunks {
        match read_math_item(&chunk) {
            Ok(item) => reply.items.push(item),
            Err(reason) => reply.rejected.push((reason, chunk.join("\n"))),
        }
    }
    reply
}

/// Parses an AugGPT reply: each item is a rephrased question, and every
/// item gets `seed_answer` as its answer.
pub fn parse_rephrase_reply(
    text: &str,
    finish_reason: Option<&str>,
    seed_answer: &str,
) -> ParsedReply {
    let lines = clean_lines(text);
    if let Some(rejected) = reject_whole_reply(&lines, finish_reason) {
        return rejected;
    }
    let mut chunks = split_rephrase_items(&lines);
    let mut reply = ParsedReply::default();
    if chunks.is_empty() {
        let reason = classify_itemless(&lines, finish_reason);
        reply.rejected.push((reason, lines.join("\n")));
        return reply;
    }
    if finish_reason == Some(FINISH_LENGTH)
        && let Some(last) = chunks.pop()
    {
        reply
            .rejected
            .push((RejectReason::Truncated, last.join("\n")));
    }
    for chunk in chunks {
        let question = join_paragraph(&chunk);
        if question.is_empty() {
            reply
                .rejected
                .push((RejectReason::MissingQuestion, chunk.join("\n")));
        } else {
            reply.items.push(ParsedItem {
                question,
                answer: seed_answer.trim().to_owned(),
            });
        }
    }
    reply
}

/// Normalises line endings and drops code-fence lines, keeping everything
/// else (blank lines separate paragraphs).
fn clean_lines(text: &str) -> Vec<String> {
    text.replace("\r\n", "\n")
        .replace('\r', "\n")
        .lines()
        .filter(|line| {
            let trimmed = line.trim_start();
            !(trimmed.starts_with("```") || trimmed.starts_with("~~~"))
        })
        .map(|line| line.trim_end().to_owned())
        .collect()
}

fn reject_whole_reply(lines: &[String], finish_reason: Option<&str>) -> Option<ParsedReply> {
    let reason = if lines.iter().all(|line| line.trim().is_empty()) {
        RejectReason::EmptyReply
    } else if finish_reason == Some("content_filter") {
        RejectReason::Refusal
    } else {
        return None;
    };
    Some(ParsedReply {
        items: Vec::new(),
        rejected: vec![(reason, lines.join("\n"))],
    })
}

/// Classifies a non-empty reply in which no item was found.
fn classify_itemless(lines: &[String], finish_reason: Option<&str>) -> RejectReason {
    const REFUSAL_OPENINGS: [&str; 8] = [
        "i'm sorry",
        "i am sorry",
        "sorry,",
        "i can't",
        "i cannot",
        "i can not",
        "i won't",
        "as an ai",
    ];
    let opening = lines
        .iter()
        .map(|line| strip_markdown(line).to_lowercase())
        .find(|line| !line.is_empty())
        .unwrap_or_default()
        .replace('’', "'");
    if REFUSAL_OPENINGS
        .iter()
        .any(|phrase| opening.starts_with(phrase))
    {
        RejectReason::Refusal
    } else if finish_reason == Some(FINISH_LENGTH) {
        RejectReason::Truncated
    } else {
        RejectReason::NoItems
    }
}

/// Removes markdown decoration around a line: blockquote marks, heading
/// marks, list bullets, bold and italic markers.
fn strip_markdown(line: &str) -> String {
    let mut text = line.trim();
    loop {
        let before = text;
        text = text.trim_start_matches('>').trim_start();
        text = text.trim_start_matches('#').trim_start();
        if let Some(rest) = text.strip_prefix("- ").or_else(|| text.strip_prefix("• ")) {
            text = rest.trim_start();
        }
        if before == text {
            break;
        }
    }
    text.replace("**", "").replace("__", "").trim().to_owned()
}

/// Label kinds that open the parts of an item.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Label {
    Question,
    Solution,
}

/// Recognises a label at the start of a line: an optional list number,
/// then `Question`/`Problem`/`Q` or `Solution`/`Answer`/`A`, an optional
/// number, then `:` (or `.`/`)` after a number). Returns the label and the
/// text after it.
fn read_label(line: &str) -> Option<(Label, String)> {
    const NAMES: [(&str, Label); 8] = [
        ("worked solution", Label::Solution),
        ("new problem", Label::Question),
        ("question", Label::Question),
        ("problem", Label::Question),
        ("solution", Label::Solution),
        ("answer", Label::Solution),
        ("q", Label::Question),
        ("a", Label::Solution),
    ];
    let stripped = strip_markdown(line);
    let text = strip_list_number(&stripped);
    for (name, label) in NAMES {
        let Some(head) = text.get(..name.len()) else {
            continue;
        };
        if !head.eq_ignore_ascii_case(name) {
            continue;
        }
        let rest = text[name.len()..].trim_start_matches(' ');
        let after_number = rest
            .trim_start_matches(|c: char| c.is_ascii_digit() || c == '#')
            .trim_start();
        let numbered = after_number.len() < rest.len();
        // "A." or "Q)" without a number reads as prose ("A. Smith"), so those
        // separators count only after a number.
        let tail = after_number.strip_prefix(':').or_else(|| {
            numbered
                .then(|| {
                    after_number
                        .strip_prefix('.')
                        .or_else(|| after_number.strip_prefix(')'))
                })
                .flatten()
        });
        if let Some(tail) = tail {
            return Some((label, tail.trim().to_owned()));
        }
        // A label alone on its line, such as "### Problem 3" or "Solution".
        // Nothing else may follow, so "Questions are" stays prose.
        if after_number.is_empty() && name.len() > 1 {
            return Some((label, String::new()));
        }
    }
    None
}

fn strip_list_number(text: &str) -> &str {
    let digits = text.len() - text.trim_start_matches(|c: char| c.is_ascii_digit()).len();
    if digits == 0 {
        return text;
    }
    let rest = &text[digits..];
    match rest.strip_prefix(". ").or_else(|| rest.strip_prefix(") ")) {
        Some(after) => after.trim_start(),
        None => text,
    }
}

fn is_final_answer_line(line: &str) -> Option<String> {
    let text = line.trim().replace("**", "");
    let text = text.trim();
    text.strip_prefix("####")
        .filter(|rest| !rest.starts_with('#'))
        .map(|rest| rest.trim().to_owned())
}

/// Splits an LLM2LLM reply into item chunks. With question labels, an item
/// runs from one question label to the next; without any, each chunk ends
/// at a `####` line. Prose before the first item is dropped here, prose
/// after an item's `####` line when the item is read.
fn split_math_items(lines: &[String]) -> Vec<Vec<String>> {
    let starts: Vec<usize> = lines
        .iter()
        .enumerate()
        .filter(|(_, line)| matches!(read_label(line), Some((Label::Question, _))))
        .map(|(index, _)| index)
        .collect();
    if !starts.is_empty() {
        let mut chunks = Vec::new();
        for (n, &start) in starts.iter().enumerate() {
            let end = starts.get(n + 1).copied().unwrap_or(lines.len());
            chunks.push(lines[start..end].to_vec());
        }
        return chunks;
    }
    let mut chunks = Vec::new();
    let mut current = Vec::new();
    for line in lines {
        let is_end = is_final_answer_line(line).is_some();
        current.push(line.clone());
        if is_end {
            chunks.push(std::mem::take(&mut current));
        }
    }
    // Text after the last `####` line is trailing prose.
    chunks
}

/// Reads one chunk into a question and a GSM8K-style answer, then checks it.
fn read_math_item(chunk: &[String]) -> Result<ParsedItem, RejectReason> {
    let mut question_lines: Vec<String> = Vec::new();
    let mut solution_lines: Vec<String> = Vec::new();
    let mut final_answer: Option<String> = None;
    let mut in_solution = false;
    let mut first = true;
    for line in chunk {
        if let Some(answer) = is_final_answer_line(line) {
            final_answer = Some(answer);
            break;
        }
        let label = read_label(line);
        match label {
            Some((Label::Question, rest)) if first => {
                question_lines.push(rest);
            }
            Some((Label::Solution, rest)) if !in_solution => {
                in_solution = true;
                solution_lines.push(rest);
            }
            _ if in_solution => solution_lines.push(strip_markdown(line)),
            _ => {
                let text = strip_markdown(line);
                // An unlabelled item may open with its list number ("2. A tank...").
                let opens_item = question_lines.iter().all(|line| line.trim().is_empty());
                let text = if opens_item {
                    strip_list_number(&text).to_owned()
                } else {
                    text
                };
                question_lines.push(text);
            }
        }
        first = false;
    }
    if !in_solution {
        // No solution label: the first paragraph is the question, the rest
        // the solution.
        let blank = question_lines
            .iter()
            .enumerate()
            .skip_while(|(_, line)| line.trim().is_empty())
            .find(|(_, line)| line.trim().is_empty())
            .map(|(index, _)| index);
        if let Some(index) = blank {
            solution_lines = question_lines.split_off(index);
        }
    }
    let question = join_paragraph(&question_lines);
    if question.is_empty() {
        return Err(RejectReason::MissingQuestion);
    }
    let final_answer = final_answer.ok_or(RejectReason::MissingFinalAnswer)?;
    let solution: Vec<&str> = solution_lines
        .iter()
        .map(|line| line.trim())
        .filter(|line| !line.is_empty())
        .collect();
    if solution.is_empty() {
        return Err(RejectReason::MissingSolution);
    }
    let solution = solution.join("\n");
    check_math_example(&solution, &final_answer)?;
    let number: String = final_answer
        .trim()
        .trim_end_matches('.')
        .chars()
        .filter(|&c| c != ',' && c != '$')
        .collect();
    Ok(ParsedItem {
        question,
        answer: format!("{solution}\n#### {number}"),
    })
}

/// Splits an AugGPT reply into entries: at question labels if there are
/// any, else at numbered-list lines, else at blank lines.
fn split_rephrase_items(lines: &[String]) -> Vec<Vec<String>> {
    let labelled: Vec<usize> = lines
        .iter()
        .enumerate()
        .filter(|(_, line)| matches!(read_label(line), Some((Label::Question, _))))
        .map(|(index, _)| index)
        .collect();
    let numbered: Vec<usize> = lines
        .iter()
        .enumerate()
        .filter(|(_, line)| {
            let text = strip_markdown(line);
            strip_list_number(&text).len() < text.len()
        })
        .map(|(index, _)| index)
        .collect();
    let starts = if !labelled.is_empty() {
        labelled
    } else {
        numbered
    };
    if starts.is_empty() {
        return lines
            .split(|line| line.trim().is_empty())
            .filter(|paragraph| !paragraph.is_empty())
            .map(<[String]>::to_vec)
            .collect();
    }
    let mut chunks = Vec::new();
    for (n, &start) in starts.iter().enumerate() {
        let end = starts.get(n + 1).copied().unwrap_or(lines.len());
        // An entry ends at its first blank line; what follows is prose.
        let entry: Vec<String> = lines[start..end]
            .iter()
            .take_while(|line| !line.trim().is_empty())
            .map(|line| match read_label(line) {
                Some((Label::Question, rest)) => rest,
                _ => strip_list_number(&strip_markdown(line)).to_owned(),
            })
            .collect();
        chunks.push(entry);
    }
    chunks
}

/// Joins lines into one paragraph, dropping blank lines at either end.
fn join_paragraph(lines: &[String]) -> String {
    lines
        .iter()
        .map(|line| line.trim())
        .filter(|line| !line.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    const TWO_ITEMS: &str = "Question 1: Sam has 3 boxes with 4 pens each. How many pens?\n\
Solution 1:\n\
He has 3*4 = <<3*4=12>>12 pens.\n\
#### 12\n\
\n\
Question 2: A tank holds 50 liters and loses 15. How much is left?\n\
Solution 2:\n\
50-15 = <<50-15=35>>35 liters are left.\n\
#### 35\n";

    #[test]
    fn reads_the_requested_format() {
        let reply = parse_math_reply(TWO_ITEMS, Some("stop"));
        assert_eq!(reply.rejected, vec![]);
        assert_eq!(reply.items.len(), 2);
        assert_eq!(
            reply.items[0].question,
            "Sam has 3 boxes with 4 pens each. How many pens?"
        );
        assert_eq!(
            reply.items[0].answer,
            "He has 3*4 = <<3*4=12>>12 pens.\n#### 12"
        );
    }

    #[test]
    fn survives_markdown_fences_prose_and_crlf() {
        let text = format!(
            "Sure! Here are two new problems:\r\n\r\n```\r\n{}```\r\nLet me know if you need more.",
            TWO_ITEMS
                .replace("Question 1:", "**Question 1:**")
                .replace("Solution 2:", "### Solution 2")
                .replace('\n', "\r\n")
        );
        let reply = parse_math_reply(&text, Some("stop"));
        assert_eq!(reply.rejected, vec![]);
        assert_eq!(reply.items.len(), 2);
        assert_eq!(
            reply.items[1].answer,
            "50-15 = <<50-15=35>>35 liters are left.\n#### 35"
        );
    }

    #[test]
    fn reads_numbered_items_without_labels() {
        let text = "1. Sam has 3 boxes with 4 pens each. How many pens?\n\n\
He has 3*4 = <<3*4=12>>12 pens.\n#### 12\n\n\
2. A tank holds 50 liters and loses 15. How much is left?\n\n\
50-15 = <<50-15=35>>35 liters.\n#### 35";
        let reply = parse_math_reply(text, None);
        assert_eq!(reply.rejected, vec![]);
        assert_eq!(reply.items.len(), 2);
        assert_eq!(
            reply.items[1].question,
            "A tank holds 50 liters and loses 15. How much is left?"
        );
    }

    #[test]
    fn length_cut_drops_the_last_item() {
        let cut = &TWO_ITEMS[..TWO_ITEMS.len() - 20];
        let reply = parse_math_reply(cut, Some(FINISH_LENGTH));
        assert_eq!(reply.items.len(), 1);
        assert_eq!(reply.rejected.len(), 1);
        assert_eq!(reply.rejected[0].0, RejectReason::Truncated);
    }

    #[test]
    fn refusal_and_empty_replies() {
        let refusal = parse_math_reply("I'm sorry, but I can't help with that.", Some("stop"));
        assert_eq!(refusal.rejected[0].0, RejectReason::Refusal);
        let empty = parse_math_reply(" \n ", Some("stop"));
        assert_eq!(empty.rejected[0].0, RejectReason::EmptyReply);
        let prose = parse_math_reply("Here is some text without problems.", Some("stop"));
        assert_eq!(prose.rejected[0].0, RejectReason::NoItems);
    }

    #[test]
    fn item_without_final_answer_is_rejected() {
        let text = TWO_ITEMS.replace("#### 35\n", "");
        let reply = parse_math_reply(&text, Some("stop"));
        assert_eq!(reply.items.len(), 1);
        assert_eq!(reply.rejected[0].0, RejectReason::MissingFinalAnswer);
    }

    #[test]
    fn prose_starting_with_label_words_is_not_a_label() {
        assert_eq!(read_label("Questions like this are common."), None);
        assert_eq!(read_label("A farmer has 3 cows."), None);
        assert_eq!(read_label("Answering takes time"), None);
        assert!(matches!(
            read_label("Q: How many?"),
            Some((Label::Question, _))
        ));
        assert!(matches!(
            read_label("### Problem 3"),
            Some((Label::Question, _))
        ));
        assert!(matches!(
            read_label("Problem 3. How many?"),
            Some((Label::Question, _))
        ));
    }

    #[test]
    fn rephrase_reply_keeps_seed_answer() {
        let text = "Here you go:\n\nQuestion 1: How many pens does Sam have in 3 boxes of 4?\n\
Question 2: Sam owns 3 boxes, each with 4 pens. What is the pen count?\n";
        let reply = parse_rephrase_reply(text, Some("stop"), "3*4 = <<3*4=12>>12\n#### 12");
        assert_eq!(reply.items.len(), 2);
        assert_eq!(reply.items[1].answer, "3*4 = <<3*4=12>>12\n#### 12");
        assert_eq!(
            reply.items[0].question,
            "How many pens does Sam have in 3 boxes of 4?"
        );
    }

    #[test]
    fn rephrase_reply_reads_numbered_list() {
        let text = "1. First rephrasing?\n2) Second rephrasing?\n\nThanks!";
        let reply = parse_rephrase_reply(text, None, "#### 1");
        let questions: Vec<_> = reply
            .items
            .iter()
            .map(|item| item.question.as_str())
            .collect();
        assert_eq!(questions, ["First rephrasing?", "Second rephrasing?"]);
    }
}
