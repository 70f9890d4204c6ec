//! The report: every figure in a JSON file, the same as Markdown tables with each target and how
//! far the measurement is from it, and PNG plots of the latency and lateness distributions.

use std::fmt::Write as _;
use std::path::Path;

use plotters::prelude::*;
use serde_json::{Map, Value, json};

/// A latency (or lateness) distribution, in microseconds.
#[derive(Debug, Clone, Copy, Default)]
pub struct Latency {
    /// Median.
    pub p50_us: u32,
    /// 99th percentile.
    pub p99_us: u32,
    /// Largest.
    pub max_us: u32,
}

impl Latency {
    /// The distribution of `samples`.
    pub fn of(samples: &[u32]) -> Self {
        let sorted = sorted(samples);
        Latency { p50_us: at(&sorted, 0.50), p99_us: at(&sorted, 0.99), max_us: at(&sorted, 1.0) }
    }
}

fn sorted(samples: &[u32]) -> Vec<u32> {
    let mut sorted = samples.to_vec();
    sorted.sort_unstable();
    sorted
}

/// The value at quantile `q` (0..=1) of sorted samples (nearest rank).
fn at(sorted: &[u32], q: f64) -> u32 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// Milliseconds, for display.
pub fn ms(us: u32) -> f64 {
    f64::from(us) / 1000.0
}

/// One named figure.
struct Figure {
    key: String,
    value: Value,
    unit: &'static str,
}

/// A titled group of figures.
pub struct Section {
    title: &'static str,
    figures: Vec<Figure>,
}

impl Section {
    /// An empty section.
    pub fn new(title: &'static str) -> Self {
        Section { title, figures: Vec::new() }
    }

    /// Adds a number.
    pub fn figure(&mut self, key: impl Into<String>, value: f64, unit: &'static str) {
        let value = (value * 1000.0).round() / 1000.0;
        self.figures.push(Figure { key: key.into(), value: json!(value), unit });
    }

    /// Adds a yes/no fact.
    pub fn flag(&mut self, key: impl Into<String>, value: bool) {
        self.figures.push(Figure { key: key.into(), value: json!(value), unit: "" });
    }

    /// The figures as a JSON object.
    pub fn to_json(&self) -> Value {
        Value::Object(self.figures.iter().map(|f| (f.key.clone(), f.value.clone())).collect())
    }

    /// Adds p50, p99 and max of a distribution, in milliseconds.
    pub fn latency(&mut self, prefix: impl Into<String>, latency: &Latency) {
        let prefix = prefix.into();
        self.figure(format!("{prefix}_p50_ms"), ms(latency.p50_us), "ms");
        self.figure(format!("{prefix}_p99_ms"), ms(latency.p99_us), "ms");
        self.figure(format!("{prefix}_max_ms"), ms(latency.max_us), "ms");
    }
}

/// A target from the issue and how the run did against it.
pub struct Target {
    /// What is measured.
    pub what: String,
    /// The goal, as text.
    pub goal: String,
    /// The measurement, as text.
    pub measured: String,
    /// Whether the goal was met.
    pub met: bool,
    /// How far from the goal (e.g. "62% of it", "3.1 ms over").
    pub distance: String,
}

/// Everything one `make bench` run produced.
pub struct Report {
    /// When and where.
    pub context: Vec<(&'static str, String)>,
    /// Figure groups.
    pub sections: Vec<Section>,
    /// Targets.
    pub targets: Vec<Target>,
    /// Plot files (relative to the report) and their captions.
    pub plots: Vec<(String, String)>,
}

impl Report {
    /// Writes `report.json` and `report.md` into `dir`.
    pub fn write(&self, dir: &Path) -> std::io::Result<()> {
        std::fs::write(dir.join("report.json"), serde_json::to_string_pretty(&self.json())?)?;
        std::fs::write(dir.join("report.md"), self.markdown())
    }

    fn json(&self) -> Value {
        let mut root = Map::new();
        let context: Map<_, _> = self.context.iter().map(|(k, v)| ((*k).to_owned(), json!(v))).collect();
        root.insert("context".into(), Value::Object(context));
        for section in &self.sections {
            root.insert(section.title.to_lowercase().replace(' ', "_"), section.to_json());
        }
        let targets = self.targets.iter().map(
            |t| json!({ "what": t.what, "goal": t.goal, "measured": t.measured, "met": t.met, "distance": t.distance }),
        );
        root.insert("targets".into(), Value::Array(targets.collect()));
        Value::Object(root)
    }

    fn markdown(&self) -> String {
        let mut md = String::from("# Dial-A-Joke benchmark report\n\n");
        for (key, value) in &self.context {
            let _ = writeln!(md, "- {key}: {value}");
        }
        md.push_str("\n## Targets\n\n| What | Goal | Measured | Met | Distance |\n|---|---|---|---|---|\n");
        for t in &self.targets {
            let met = if t.met { "yes" } else { "no" };
            let _ = writeln!(md, "| {} | {} | {} | {met} | {} |", t.what, t.goal, t.measured, t.distance);
        }
        for section in &self.sections {
            let _ = write!(md, "\n## {}\n\n| Figure | Value | Unit |\n|---|---|---|\n", section.title);
            for f in &section.figures {
                let _ = writeln!(md, "| {} | {} | {} |", f.key, f.value, f.unit);
            }
        }
        md.push_str("\n## Plots\n\n");
        for (file, caption) in &self.plots {
            let _ = writeln!(md, "![{caption}]({file})\n");
        }
        md
    }
}

/// A series of samples for a percentile plot.
pub struct Series<'a> {
    /// Legend text.
    pub label: String,
    /// Samples in microseconds.
    pub samples: &'a [u32],
}

const FONT: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";

/// Makes the plots' font available (the DejaVu font of Debian's fonts-dejavu-core).
pub fn load_font() -> Result<(), String> {
    let bytes = std::fs::read(FONT).map_err(|e| format!("{FONT}: {e} (install fonts-dejavu-core)"))?;
    plotters::style::register_font("sans-serif", FontStyle::Normal, Box::leak(bytes.into_boxed_slice()))
        .map_err(|_| format!("{FONT} is not a usable font"))
}

/// Draws latency against percentile (log scale), one line per series.
pub fn percentile_plot(path: &Path, title: &str, y_label: &str, series: &[Series<'_>]) -> Result<(), String> {
    let curves: Vec<(String, Vec<(f64, f64)>)> = series.iter().map(|s| (s.label.clone(), curve(s.samples))).collect();
    let top = curves.iter().flat_map(|(_, c)| c.iter().map(|p| p.1)).fold(0.1f64, f64::max) * 1.5;
    let root = BitMapBackend::new(path, (1000, 560)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 24))
        .margin(16)
        .x_label_area_size(44)
        .y_label_area_size(70)
        .build_cartesian_2d(0f64..100f64, (0.01f64..top).log_scale())
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .x_desc("percentile")
        .y_desc(y_label)
        .label_style(("sans-serif", 15))
        .draw()
        .map_err(|e| e.to_string())?;
    for (i, (label, points)) in curves.into_iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        chart
            .draw_series(LineSeries::new(points, color.stroke_width(2)))
            .map_err(|e| e.to_string())?
            .label(label)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], color.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .label_font(("sans-serif", 15))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(|e| e.to_string())?;
    root.present().map_err(|e| e.to_string())
}

/// (percentile, milliseconds) at 0.1-percentile steps.
fn curve(samples: &[u32]) -> Vec<(f64, f64)> {
    let sorted = sorted(samples);
    (0..=1000).map(|i| f64::from(i) / 10.0).map(|p| (p, ms(at(&sorted, p / 100.0)).max(0.01))).collect()
}
