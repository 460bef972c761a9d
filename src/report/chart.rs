//! Accuracy-per-iteration charts as SVG or PNG, drawn with plotters.
//!
//! plotters' bitmap backend panics when it draws text without a registered
//! font, so DejaVu Sans (Bitstream Vera license, in `assets/fonts/`) is
//! compiled in and registered as "sans-serif" before any chart is drawn.

use std::path::Path;
use std::sync::OnceLock;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::FontStyle;

use super::ReportError;
use super::iterations::IterationRow;

static FONT: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");

/// Chart size in pixels (SVG user units).
const SIZE: (u32, u32) = (900, 560);

/// Y axis range in %, a little beyond 0 to 100.
const Y_MIN: f64 = -3.0;
const Y_MAX: f64 = 103.0;

const SEED_COLOR: RGBColor = RGBColor(31, 119, 180);
const TEST_COLOR: RGBColor = RGBColor(214, 39, 40);

/// One line of a chart: a label and its (x, accuracy in %) points.
#[derive(Debug, Clone)]
pub struct Series {
    pub label: String,
    pub points: Vec<(f64, f64)>,
    pub color: RGBColor,
}

/// Output format of a chart, from its file extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChartFormat {
    Svg,
    Png,
}

impl ChartFormat {
    /// Picks the format from a `.svg` or `.png` extension (any case).
    pub fn from_path(path: &Path) -> Result<ChartFormat, ReportError> {
        let extension = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        match extension.as_deref() {
            Some("svg") => Ok(ChartFormat::Svg),
            Some("png") => Ok(ChartFormat::Png),
            _ => Err(ReportError::ChartFormat {
                path: path.to_path_buf(),
            }),
        }
    }
}

fn register_font() -> Result<(), String> {
    static REGISTERED: OnceLock<Result<(), String>> = OnceLock::new();
    REGISTERED
        .get_or_init(|| {
            plotters::style::register_font("sans-serif", FontStyle::Normal, FONT)
                .map_err(|_| "the bundled DejaVu Sans font could not be parsed".to_string())
        })
        .clone()
}

/// Draws seed and test accuracy (in %) per iteration to `path`, as SVG or
/// PNG by its extension. Fails when no iteration has an accuracy yet.
pub fn draw_accuracy_chart(
    path: &Path,
    title: &str,
    rows: &[IterationRow],
) -> Result<(), ReportError> {
    let seed = Series {
        label: "seed accuracy".to_string(),
        points: rows
            .iter()
            .filter_map(|row| Some((row.iteration as f64, row.seed_accuracy? * 100.0)))
            .collect(),
        color: SEED_COLOR,
    };
    let test = Series {
        label: "test accuracy".to_string(),
        points: rows
            .iter()
            .filter_map(|row| Some((row.iteration as f64, row.test_accuracy? * 100.0)))
            .collect(),
        color: TEST_COLOR,
    };
    let series: Vec<Series> = [seed, test]
        .into_iter()
        .filter(|s| !s.points.is_empty())
        .collect();
    if series.is_empty() {
        return Err(ReportError::NothingToChart {
            path: path.to_path_buf(),
        });
    }
    draw_line_chart(path, title, "iteration", true, &series)
}

/// Draws accuracy lines (y in %, 0 to 100) against `x_label` to `path`, as
/// SVG or PNG by its extension. With `integer_x`, only whole x values get
/// tick labels (iterations).
pub fn draw_line_chart(
    path: &Path,
    title: &str,
    x_label: &str,
    integer_x: bool,
    series: &[Series],
) -> Result<(), ReportError> {
    let format = ChartFormat::from_path(path)?;
    let fail = |message: String| ReportError::Chart {
        path: path.to_path_buf(),
        message,
    };
    register_font().map_err(fail)?;
    if let Some(parent) = path
        .parent()
        .filter(|parent| !parent.as_os_str().is_empty())
    {
        std::fs::create_dir_all(parent)
            .map_err(|err| fail(format!("failed to create the folder: {err}")))?;
    }

    match format {
        ChartFormat::Svg => {
            let root = SVGBackend::new(path, SIZE).into_drawing_area();
            draw(&root, title, x_label, integer_x, series).map_err(fail)?;
            root.present().map_err(|err| fail(err.to_string()))
        }
        ChartFormat::Png => {
            let root = BitMapBackend::new(path, SIZE).into_drawing_area();
            draw(&root, title, x_label, integer_x, series).map_err(fail)?;
            root.present().map_err(|err| fail(err.to_string()))
        }
    }
}

fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    x_label: &str,
    integer_x: bool,
    series: &[Series],
) -> Result<(), String> {
    let error = |err: DrawingAreaErrorKind<DB::ErrorType>| err.to_string();
    root.fill(&WHITE).map_err(error)?;

    let xs = series.iter().flat_map(|s| s.points.iter().map(|(x, _)| *x));
    let x_min = xs.clone().fold(f64::INFINITY, f64::min);
    let x_max = xs.fold(f64::NEG_INFINITY, f64::max);
    // A margin keeps the end points off the frame; a single point still
    // gets a visible range.
    let margin = ((x_max - x_min) * 0.05).max(0.25);
    let x_range = (x_min - margin)..(x_max + margin);

    let mut chart = ChartBuilder::on(root)
        .caption(title, ("sans-serif", 24))
        .margin(16)
        .x_label_area_size(48)
        .y_label_area_size(64)
        .build_cartesian_2d(x_range, Y_MIN..Y_MAX)
        .map_err(error)?;

    let whole_numbers = |x: &f64| {
        if (x - x.round()).abs() < 1e-9 {
            format!("{}", x.round() as i64)
        } else {
            String::new()
        }
    };
    let plain = |x: &f64| format!("{x}");
    let x_formatter: &dyn Fn(&f64) -> String = if integer_x { &whole_numbers } else { &plain };
    // Labels only inside 0-100%: the axis extends a little beyond so points
    // at 0% and 100% are not drawn on the frame.
    let y_formatter = |y: &f64| {
        if (0.0..=100.0).contains(y) {
            format!("{y:.0}%")
        } else {
            String::new()
        }
    };
    chart
        .configure_mesh()
        .x_desc(x_label)
        .y_desc("accuracy (%)")
        .x_label_formatter(x_formatter)
        .y_label_formatter(&y_formatter)
        .label_style(("sans-serif", 16))
        .axis_desc_style(("sans-serif", 18))
        .light_line_style(RGBColor(244, 244, 244))
        .draw()
        .map_err(error)?;

    // Every other series is dashed with triangle markers, so a series that
    // coincides with an earlier one (seed and test both at 0%) still shows.
    for (index, line) in series.iter().enumerate() {
        let color = line.color;
        let style = color.stroke_width(2);
        let points = line.points.iter().copied();
        let alternate = index % 2 == 1;

        let drawn = if alternate {
            chart.draw_series(DashedLineSeries::new(points, 8, 5, style))
        } else {
            chart.draw_series(LineSeries::new(points, style))
        };
        drawn
            .map_err(error)?
            .label(line.label.as_str())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], style));

        if alternate {
            let markers = line
                .points
                .iter()
                .map(|&point| TriangleMarker::new(point, 6, color.filled()));
            chart.draw_series(markers).map_err(error)?;
        } else {
            let markers = line
                .points
                .iter()
                .map(|&point| Circle::new(point, 4, color.filled()));
            chart.draw_series(markers).map_err(error)?;
        }
    }

    // Accuracy usually rises, so the upper left corner is the emptiest.
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .label_font(("sans-serif", 16))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(error)?;
    Ok(())
}
