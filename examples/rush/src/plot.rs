//! `--plot FILE`: the rush at a glance, as an SVG drawn from the report's timeline.
//!
//! Two panels against wall-clock seconds: users (joined, done) above; users admitted,
//! holds made and units sold below. The timeline is the simulator's live counters sampled
//! every 100 ms (the correctness figures come from the store, see [`crate::checks`]).

use std::path::Path;

use plotters::prelude::*;

use crate::error::RushError;
use crate::report::Report;

fn plot_error<E: std::fmt::Display>(e: E) -> RushError {
    RushError::Plot(e.to_string())
}

/// One line of a panel.
struct Line<'a> {
    label: &'a str,
    color: RGBColor,
    points: Vec<(f64, f64)>,
}

/// Draws the report's timeline to `path` as an SVG of 1000 × 720 pixels.
pub fn write_svg(report: &Report, path: &Path) -> Result<(), RushError> {
    let timeline = &report.timeline;
    let t_max = timeline
        .iter()
        .map(|p| p.t_s)
        .fold(0.0_f64, f64::max)
        .max(0.001);
    let series = |f: &dyn Fn(&crate::progress::Point) -> f64| -> Vec<(f64, f64)> {
        timeline.iter().map(|p| (p.t_s, f(p))).collect()
    };
    let c = &report.config;
    let root = SVGBackend::new(path, (1000, 720)).into_drawing_area();
    root.fill(&WHITE).map_err(plot_error)?;
    let root = root
        .titled(
            &format!(
                "rush: {} users for {} units on {}{} · {:.2} s · sold {} of {} · {} violations",
                c.users,
                c.units,
                c.store.as_str(),
                if c.sim_clock {
                    " (simulated clock)"
                } else {
                    ""
                },
                report.stages.total_s,
                report.units.sold,
                report.units.capacity,
                report.checks.violations()
            ),
            ("sans-serif", 18),
        )
        .map_err(plot_error)?;
    let (top, bottom) = root.split_vertically(330);
    panel(
        &top,
        "users",
        t_max,
        f64::from(c.users),
        vec![
            Line {
                label: "joined",
                color: BLUE,
                points: series(&|p| p.joined as f64),
            },
            Line {
                label: "done (bought, left, gave up…)",
                color: BLACK,
                points: series(&|p| p.done as f64),
            },
        ],
    )?;
    let admitted = series(&|p| p.admitted as f64);
    let top_of = |v: &[(f64, f64)]| v.iter().map(|(_, y)| *y).fold(0.0_f64, f64::max);
    let y_max = top_of(&admitted).max(f64::from(c.units)) * 1.05;
    panel(
        &bottom,
        "admitted, holds, units sold",
        t_max,
        y_max,
        vec![
            Line {
                label: "users admitted",
                color: GREEN,
                points: admitted,
            },
            Line {
                label: "holds made",
                color: MAGENTA,
                points: series(&|p| p.holds as f64),
            },
            Line {
                label: "units sold (net of cancellations)",
                color: RED,
                points: series(&|p| p.sold_units as f64),
            },
        ],
    )?;
    root.present().map_err(plot_error)
}

fn panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    title: &str,
    t_max: f64,
    y_max: f64,
    lines: Vec<Line<'_>>,
) -> Result<(), RushError>
where
    DB::ErrorType: 'static,
{
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 16))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(80)
        .build_cartesian_2d(0.0..t_max, 0.0..y_max.max(1.0))
        .map_err(plot_error)?;
    chart
        .configure_mesh()
        .x_desc("seconds since the start")
        .y_label_formatter(&|y| format!("{y:.0}"))
        .draw()
        .map_err(plot_error)?;
    for line in lines {
        let color = line.color;
        chart
            .draw_series(LineSeries::new(line.points, color.stroke_width(2)))
            .map_err(plot_error)?
            .label(line.label)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .border_style(BLACK)
        .background_style(WHITE.mix(0.85))
        .draw()
        .map_err(plot_error)
}
