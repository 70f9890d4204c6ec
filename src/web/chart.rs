//! The page's outcome chart as numbers a template can draw: stacked bars in an inline SVG, one per
//! day, laid out here in whole SVG units so the page needs no script or library to show it.

use chrono_tz::Tz;
use serde::Serialize;

use crate::domain::outcomes::{DayOutcomes, Outcome};

/// How many days the chart shows.
pub const DAYS: u32 = 7;
/// The drawing's size in SVG units. It scales to the width it is given, text included, so it is
/// kept narrow enough that the labels stay readable on a phone.
const WIDTH: u32 = 420;
const HEIGHT: u32 = 232;
/// The tallest bar reaches this far below the top, leaving room for its total above it.
const PLOT_TOP: u32 = 26;
/// Where bars stand; day labels go below.
const BASELINE: u32 = 182;
/// Where the weekday goes; the day of the month goes on the line below it.
const LABEL_Y: u32 = 204;
/// Room the total above a bar takes.
const TOTAL_GAP: u32 = 6;

/// The whole chart.
#[derive(Debug, Serialize)]
pub struct Chart {
    zone: &'static str,
    width: u32,
    height: u32,
    baseline: u32,
    label_y: u32,
    middle_x: u32,
    middle_y: u32,
    bar_width: u32,
    total: u32,
    days: Vec<Column>,
    legend: Vec<LegendKey>,
}

/// One day's bar.
#[derive(Debug, Serialize)]
struct Column {
    weekday: String,
    day_of_month: String,
    long_label: String,
    center: u32,
    bar_x: u32,
    total: u32,
    total_y: u32,
    segments: Vec<Segment>,
    counts: Vec<u32>,
}

/// One outcome's part of a bar.
#[derive(Debug, Serialize)]
struct Segment {
    outcome: &'static str,
    y: u32,
    height: u32,
    count: u32,
}

/// One outcome in the legend, with its total over the days shown.
#[derive(Debug, Serialize)]
struct LegendKey {
    outcome: &'static str,
    total: u32,
}

impl Chart {
    /// Lays out `days` (oldest first), whose dates are in `zone`.
    pub fn new(days: &[DayOutcomes], zone: Tz) -> Self {
        let slot = WIDTH / u32::try_from(days.len().max(1)).unwrap_or(u32::MAX);
        let bar_width = slot * 11 / 20;
        let tallest = days.iter().map(DayOutcomes::total).max().unwrap_or(0).max(1);
        let columns =
            days.iter().zip(0..).map(|(day, index)| column(day, slot * index + slot / 2, bar_width, tallest)).collect();
        let legend = Outcome::ALL
            .iter()
            .map(|o| LegendKey { outcome: o.as_str(), total: days.iter().map(|d| d.count(*o)).sum() })
            .collect();
        Self {
            zone: zone.name(),
            width: WIDTH,
            height: HEIGHT,
            baseline: BASELINE,
            label_y: LABEL_Y,
            middle_x: WIDTH / 2,
            middle_y: (PLOT_TOP + BASELINE) / 2,
            bar_width,
            total: days.iter().map(DayOutcomes::total).sum(),
            days: columns,
            legend,
        }
    }
}

/// The bar of one day centred on `center`, scaled so `tallest` fills the plot.
fn column(day: &DayOutcomes, center: u32, bar_width: u32, tallest: u32) -> Column {
    let plot = BASELINE - PLOT_TOP;
    // Rounding the running sum, not each part, keeps the stacked parts exactly as tall as the bar.
    let top_of = |sum: u32| BASELINE - (u64::from(sum) * u64::from(plot) / u64::from(tallest)) as u32;
    let mut below = 0;
    let segments = Outcome::ALL
        .iter()
        .filter_map(|outcome| {
            let count = day.count(*outcome);
            let (bottom, top) = (top_of(below), top_of(below + count));
            below += count;
            (count > 0).then(|| Segment { outcome: outcome.as_str(), y: top, height: bottom - top, count })
        })
        .collect();
    Column {
        weekday: day.day.format("%a").to_string(),
        day_of_month: day.day.format("%-d").to_string(),
        long_label: day.day.format("%A %-d %B").to_string(),
        center,
        bar_x: center - bar_width / 2,
        total: day.total(),
        total_y: top_of(day.total()) - TOTAL_GAP,
        segments,
        counts: Outcome::ALL.iter().map(|o| day.count(*o)).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    fn day(date: &str, counts: [u32; 5]) -> DayOutcomes {
        DayOutcomes { day: date.parse::<NaiveDate>().expect("valid date"), counts }
    }

    #[test]
    fn the_busiest_day_fills_the_plot_and_its_parts_stack_without_gaps() {
        let days = [day("2026-01-01", [1, 0, 0, 0, 0]), day("2026-01-02", [2, 1, 0, 0, 1])];

        let chart = Chart::new(&days, chrono_tz::UTC);

        let busiest = &chart.days[1];
        assert_eq!(busiest.segments.first().map(|s| s.y + s.height), Some(BASELINE));
        assert_eq!(busiest.segments.last().map(|s| s.y), Some(PLOT_TOP));
        for pair in busiest.segments.windows(2) {
            assert_eq!(pair[1].y + pair[1].height, pair[0].y, "{pair:?}");
        }
        assert_eq!(chart.days[0].segments[0].height, (BASELINE - PLOT_TOP) / 4);
    }

    #[test]
    fn outcomes_without_calls_draw_nothing_but_keep_their_place_in_the_legend() {
        let chart = Chart::new(&[day("2026-01-01", [0, 0, 3, 0, 0])], chrono_tz::UTC);

        let drawn: Vec<&str> = chart.days[0].segments.iter().map(|s| s.outcome).collect();
        assert_eq!(drawn, ["busy"]);
        let legend: Vec<(&str, u32)> = chart.legend.iter().map(|k| (k.outcome, k.total)).collect();
        assert_eq!(legend, [("completed", 0), ("no_answer", 0), ("busy", 3), ("rejected", 0), ("failed", 0)]);
    }

    #[test]
    fn days_are_labelled_by_weekday_and_date() {
        let chart = Chart::new(&[day("2026-01-01", [0; 5])], chrono_tz::UTC);

        let column = &chart.days[0];
        assert_eq!((column.weekday.as_str(), column.day_of_month.as_str()), ("Thu", "1"));
        assert_eq!(column.long_label, "Thursday 1 January");
        assert_eq!(chart.total, 0);
    }
}
