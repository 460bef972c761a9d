//! A plain table rendered as aligned text, GitHub markdown or CSV (RFC 4180).

/// Horizontal alignment of a column in text and markdown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Align {
    Left,
    Right,
}

/// Rows of string cells under named columns.
#[derive(Debug, Clone, Default)]
pub struct Table {
    pub headers: Vec<String>,
    pub aligns: Vec<Align>,
    pub rows: Vec<Vec<String>>,
}

impl Table {
    /// Creates an empty table with the given columns.
    pub fn new(columns: &[(&str, Align)]) -> Table {
        Table {
            headers: columns.iter().map(|(name, _)| name.to_string()).collect(),
            aligns: columns.iter().map(|(_, align)| *align).collect(),
            rows: Vec::new(),
        }
    }

    /// Adds a column after the existing ones; rows added earlier get an
    /// empty cell.
    pub fn add_column(&mut self, name: &str, align: Align) {
        self.headers.push(name.to_string());
        self.aligns.push(align);
        for row in &mut self.rows {
            row.push(String::new());
        }
    }

    /// Appends a row; missing trailing cells are empty.
    pub fn push(&mut self, mut row: Vec<String>) {
        row.resize(self.headers.len(), String::new());
        self.rows.push(row);
    }

    fn widths(&self) -> Vec<usize> {
        (0..self.headers.len())
            .map(|column| {
                std::iter::once(&self.headers[column])
                    .chain(self.rows.iter().map(|row| &row[column]))
                    .map(|cell| cell.chars().count())
                    .max()
                    .unwrap_or(0)
            })
            .collect()
    }

    /// Renders columns separated by two spaces, with a dashed rule under the
    /// header.
    pub fn to_text(&self) -> String {
        let widths = self.widths();
        let rule: Vec<String> = widths.iter().map(|width| "-".repeat(*width)).collect();
        let mut out = String::new();
        for row in std::iter::once(&self.headers)
            .chain(std::iter::once(&rule))
            .chain(&self.rows)
        {
            let cells: Vec<String> = row
                .iter()
                .zip(&widths)
                .zip(&self.aligns)
                .map(|((cell, width), align)| pad(cell, *width, *align))
                .collect();
            out.push_str(cells.join("  ").trim_end());
            out.push('\n');
        }
        out
    }

    /// Renders a GitHub-flavoured markdown table.
    pub fn to_markdown(&self) -> String {
        let widths = self.widths();
        let mut out = String::new();
        let line = |cells: Vec<String>| format!("| {} |\n", cells.join(" | "));
        let escape = |cell: &str| cell.replace('|', "\\|");
        out.push_str(&line(
            self.headers
                .iter()
                .zip(&widths)
                .zip(&self.aligns)
                .map(|((h, w), a)| pad(&escape(h), *w, *a))
                .collect(),
        ));
        out.push_str(&line(
            widths
                .iter()
                .zip(&self.aligns)
                .map(|(width, align)| match align {
                    Align::Left => "-".repeat((*width).max(3)),
                    Align::Right => format!("{}:", "-".repeat((*width).max(3) - 1)),
                })
                .collect(),
        ));
        for row in &self.rows {
            out.push_str(&line(
                row.iter()
                    .zip(&widths)
                    .zip(&self.aligns)
                    .map(|((c, w), a)| pad(&escape(c), *w, *a))
                    .collect(),
            ));
        }
        out
    }

    /// Renders CSV with a header line; cells containing a comma, quote or
    /// line break are quoted.
    pub fn to_csv(&self) -> String {
        let mut out = String::new();
        for row in std::iter::once(&self.headers).chain(&self.rows) {
            let cells: Vec<String> = row.iter().map(|cell| csv_cell(cell)).collect();
            out.push_str(&cells.join(","));
            out.push('\n');
        }
        out
    }
}

fn pad(cell: &str, width: usize, align: Align) -> String {
    match align {
        Align::Left => format!("{cell:<width$}"),
        Align::Right => format!("{cell:>width$}"),
    }
}

fn csv_cell(cell: &str) -> String {
    if cell.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", cell.replace('"', "\"\""))
    } else {
        cell.to_string()
    }
}
