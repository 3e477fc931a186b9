//! PNG line charts of the iteration summaries (plotters, bitmap backend).
//!
//! plotters draws text with a TrueType font that it must be given: we register DejaVu Sans (or
//! the file named by `CONSIST_FONT`). Without a font the charts are drawn without text.

use std::path::Path;
use std::sync::OnceLock;

use plotters::prelude::*;
use plotters::style::FontStyle;

type PlotResult<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// Where Debian, Fedora, Arch and macOS keep DejaVu Sans or a similar font.
const FONT_CANDIDATES: &[&str] = &[
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu-sans-fonts/DejaVuSans.ttf",
    "/Library/Fonts/Arial.ttf",
    "/System/Library/Fonts/Supplemental/Arial.ttf",
];

/// Register a font once; `false` when none was found (charts then carry no text).
pub fn fonts_available() -> bool {
    static FOUND: OnceLock<bool> = OnceLock::new();
    *FOUND.get_or_init(|| {
        let custom = std::env::var("CONSIST_FONT").ok();
        let candidates = custom.iter().map(String::as_str).chain(FONT_CANDIDATES.iter().copied());
        for path in candidates {
            if let Ok(bytes) = std::fs::read(path) {
                let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
                if plotters::style::register_font("sans-serif", FontStyle::Normal, bytes).is_ok() {
                    return true;
                }
            }
        }
        false
    })
}

/// Colours of the series, in order.
const PALETTE: [RGBColor; 4] = [RGBColor(31, 119, 180), RGBColor(255, 127, 14), RGBColor(44, 160, 44), RED];

/// One named line: (x, y) points.
pub struct Series<'a> {
    pub name: &'a str,
    pub points: Vec<(f64, f64)>,
}

/// Draw `series` into `area` with a title and axis labels (text only when a font is available).
fn draw_lines<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    title: &str,
    y_label: &str,
    series: &[Series<'_>],
) -> PlotResult<()>
where
    DB::ErrorType: 'static,
{
    let text = fonts_available();
    let points = series.iter().flat_map(|s| s.points.iter());
    let (mut x_max, mut y_min, mut y_max) = (1.0f64, f64::INFINITY, f64::NEG_INFINITY);
    for &(x, y) in points {
        x_max = x_max.max(x);
        y_min = y_min.min(y);
        y_max = y_max.max(y);
    }
    let pad = ((y_max - y_min) * 0.1).max(1e-3);
    let mut builder = ChartBuilder::on(area);
    builder.margin(12).x_label_area_size(if text { 36 } else { 8 }).y_label_area_size(if text { 56 } else { 8 });
    if text {
        builder.caption(title, ("sans-serif", 20));
    }
    let mut chart = builder.build_cartesian_2d(0.0..x_max, (y_min - pad)..(y_max + pad))?;
    let mut mesh = chart.configure_mesh();
    if text {
        mesh.x_desc("iteration")
            .y_desc(y_label)
            .label_style(("sans-serif", 13))
            .x_labels(x_max as usize + 1)
            .x_label_formatter(&|x| format!("{x:.0}"));
    } else {
        mesh.disable_x_axis().disable_y_axis();
    }
    mesh.draw()?;
    for (s, colour) in series.iter().zip(PALETTE.iter().cycle()) {
        chart.draw_series(s.points.iter().map(|&p| Circle::new(p, 3, colour.filled())))?;
        let line = chart.draw_series(LineSeries::new(s.points.clone(), colour.stroke_width(2)))?;
        if text {
            line.label(s.name).legend(move |(x, y)| PathElement::new([(x, y), (x + 16, y)], colour.stroke_width(2)));
        }
    }
    if text && series.len() > 1 {
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .label_font(("sans-serif", 13))
            .draw()?;
    }
    Ok(())
}

/// One chart per file.
pub fn line_chart(path: &Path, title: &str, y_label: &str, series: &[Series<'_>]) -> PlotResult<()> {
    let root = BitMapBackend::new(path, (800, 420)).into_drawing_area();
    root.fill(&WHITE)?;
    draw_lines(&root, title, y_label, series)?;
    root.present()?;
    Ok(())
}

/// Two charts side by side in one file.
pub fn side_by_side(
    path: &Path,
    left: (&str, &str, &[Series<'_>]),
    right: (&str, &str, &[Series<'_>]),
) -> PlotResult<()> {
    let root = BitMapBackend::new(path, (1000, 420)).into_drawing_area();
    root.fill(&WHITE)?;
    let (l, r) = root.split_horizontally(500);
    draw_lines(&l, left.0, left.1, left.2)?;
    draw_lines(&r, right.0, right.1, right.2)?;
    root.present()?;
    Ok(())
}
