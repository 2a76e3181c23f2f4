//! SVG bar charts (plotters): one drawing for every chart the CLI writes,
//! so that the tier distribution and a what-if's moves look alike.

use std::path::Path;

use plotters::prelude::*;

use crate::error::CliError;

/// A bar: its label under the axis and its height.
pub type Bar = (String, u64);

/// Draws `bars` as an SVG file at `path`.
pub fn write_bars(path: &Path, title: &str, y_desc: &str, bars: &[Bar]) -> Result<(), CliError> {
    let svg = render_bars(title, y_desc, bars).map_err(|source| CliError::WriteFile {
        path: path.display().to_string(),
        source,
    })?;
    std::fs::write(path, svg).map_err(|e| CliError::WriteFile {
        path: path.display().to_string(),
        source: e.into(),
    })
}

/// The SVG text: drawn into memory first, so that a file is written whole
/// or not at all.
pub fn render_bars(title: &str, y_desc: &str, bars: &[Bar]) -> anyhow::Result<String> {
    let n = bars.len().max(1) as u32;
    // Room for each label; a handful of tiers fits the default width.
    let width = (140 * n + 160).clamp(640, 4000);
    let max = bars.iter().map(|b| b.1).max().unwrap_or(0).max(1);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (width, 480)).into_drawing_area();
        let failed = |e: &dyn std::fmt::Display| anyhow::anyhow!("drawing the chart: {e}");
        root.fill(&WHITE).map_err(|e| failed(&e))?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 22))
            .margin(16)
            .x_label_area_size(40)
            .y_label_area_size(60)
            // Headroom above the tallest bar for its count.
            .build_cartesian_2d((0u32..n).into_segmented(), 0u64..(max + max / 8 + 1))
            .map_err(|e| failed(&e))?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .y_desc(y_desc)
            .x_labels(bars.len().max(1))
            .x_label_formatter(&|v| match v {
                SegmentValue::CenterOf(i) => bars
                    .get(*i as usize)
                    .map(|b| b.0.clone())
                    .unwrap_or_default(),
                _ => String::new(),
            })
            .draw()
            .map_err(|e| failed(&e))?;
        let color = RGBColor(0x2b, 0x6c, 0xb0);
        chart
            .draw_series(bars.iter().enumerate().map(|(i, (_, count))| {
                let i = i as u32;
                let mut bar = Rectangle::new(
                    [
                        (SegmentValue::Exact(i), 0),
                        (SegmentValue::Exact(i + 1), *count),
                    ],
                    color.filled(),
                );
                bar.set_margin(0, 0, 14, 14);
                bar
            }))
            .map_err(|e| failed(&e))?;
        chart
            .draw_series(bars.iter().enumerate().map(|(i, (_, count))| {
                Text::new(
                    count.to_string(),
                    (SegmentValue::CenterOf(i as u32), *count),
                    ("sans-serif", 14).into_font().color(&BLACK),
                )
            }))
            .map_err(|e| failed(&e))?;
        root.present().map_err(|e| failed(&e))?;
    }
    Ok(svg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chart_is_svg_with_its_labels() {
        let svg = render_bars(
            "Members per tier",
            "members",
            &[("金牌 Gold".into(), 3), ("junior".into(), 12)],
        )
        .unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..60]);
        assert!(svg.contains("金牌 Gold") && svg.contains("junior"));
        assert!(svg.contains("Members per tier"));
        assert!(svg.contains("<rect"));
    }

    #[test]
    fn no_bars_still_draws() {
        let svg = render_bars("Moves", "distributors", &[]).unwrap();
        assert!(svg.contains("</svg>"));
    }
}
