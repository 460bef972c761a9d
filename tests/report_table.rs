//! Table rendering: CSV quoting, markdown escaping and text alignment.

use llm2llm::report::table::{Align, Table};

fn sample_table() -> Table {
    let mut table = Table::new(&[("name", Align::Left), ("count", Align::Right)]);
    table.push(vec!["plain".to_string(), "7".to_string()]);
    table.push(vec!["a, \"quoted\" | cell".to_string(), "12".to_string()]);
    table
}

#[test]
fn csv_quotes_commas_and_quotes() {
    let csv = sample_table().to_csv();
    assert_eq!(
        csv,
        "name,count\nplain,7\n\"a, \"\"quoted\"\" | cell\",12\n"
    );
}

#[test]
fn markdown_escapes_pipes() {
    let markdown = sample_table().to_markdown();
    assert!(markdown.contains("a, \"quoted\" \\| cell"), "{markdown}");
}

#[test]
fn markdown_marks_right_alignment() {
    let markdown = sample_table().to_markdown();
    let alignment = markdown
        .lines()
        .nth(1)
        .expect("the table has an alignment row");
    assert!(alignment.starts_with("| ---"), "{alignment}");
    assert!(
        alignment.ends_with(":|") || alignment.ends_with(": |"),
        "{alignment}"
    );
}

#[test]
fn text_right_aligns_numbers() {
    let text = sample_table().to_text();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[2], "plain                   7");
    assert_eq!(lines[3], "a, \"quoted\" | cell     12");
}

#[test]
fn short_rows_are_padded() {
    let mut table = Table::new(&[("a", Align::Left), ("b", Align::Left)]);
    table.push(vec!["x".to_string()]);
    assert_eq!(table.to_csv(), "a,b\nx,\n");
}
