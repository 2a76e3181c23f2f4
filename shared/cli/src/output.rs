//! Output: human tables on stdout by default, the API's JSON with `--json`;
//! progress and spinners on stderr, and only on a terminal, so that piped
//! output stays clean.

use std::time::Duration;

use comfy_table::{ContentArrangement, Table, presets};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::Value;

#[derive(Debug, Clone, Copy)]
pub struct Out {
    pub json: bool,
}

impl Out {
    /// `--json`: the value, pretty-printed; otherwise what `human` writes.
    pub fn emit(&self, value: &Value, human: impl FnOnce() -> String) {
        if self.json {
            println!(
                "{}",
                serde_json::to_string_pretty(value).expect("JSON values print")
            );
        } else {
            let text = human();
            if !text.is_empty() {
                println!("{}", text.trim_end());
            }
        }
    }

    /// A bar over `len` steps, drawn on stderr (hidden when it is not a
    /// terminal, and with `--json`).
    pub fn bar(&self, len: u64, template: &str) -> ProgressBar {
        let bar = ProgressBar::with_draw_target(Some(len), self.target());
        bar.set_style(
            ProgressStyle::with_template(template)
                .expect("the templates are constant")
                .progress_chars("█▉▊▋▌▍▎▏ "),
        );
        bar
    }

    /// A spinner with a message, drawn as [`Out::bar`] is.
    pub fn spinner(&self, message: impl Into<String>) -> ProgressBar {
        let s = ProgressBar::with_draw_target(None, self.target());
        s.set_style(
            ProgressStyle::with_template("{spinner} {msg} ({elapsed})")
                .expect("the templates are constant"),
        );
        s.set_message(message.into());
        s.enable_steady_tick(Duration::from_millis(120));
        s
    }

    fn target(&self) -> ProgressDrawTarget {
        if self.json {
            ProgressDrawTarget::hidden()
        } else {
            ProgressDrawTarget::stderr()
        }
    }
}

/// A table with a header row, as every listing prints.
pub fn table<I, S>(header: I) -> Table
where
    I: IntoIterator<Item = S>,
    S: Into<comfy_table::Cell>,
{
    let mut t = Table::new();
    t.load_style(presets::UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header(header);
    t
}

/// A JSON field as table text: strings bare, null as `-`.
pub fn cell(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        Value::Bool(b) => if *b { "yes" } else { "no" }.into(),
        other => other.to_string(),
    }
}

/// `v[key]` as table text.
pub fn field(v: &Value, key: &str) -> String {
    cell(v.get(key).unwrap_or(&Value::Null))
}

/// A text bar for a share of 0 to 1 (clamped): `█████░░░░░`.
pub fn text_bar(share: f64, width: usize) -> String {
    let share = if share.is_finite() {
        share.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let full = (share * width as f64).floor() as usize;
    format!("{}{}", "█".repeat(full), "░".repeat(width - full))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn bars_are_clamped_and_sized() {
        assert_eq!(text_bar(0.5, 10), "█████░░░░░");
        assert_eq!(text_bar(2.0, 4), "████");
        assert_eq!(text_bar(f64::NAN, 3), "░░░");
        assert_eq!(text_bar(-1.0, 2), "░░");
    }

    #[test]
    fn cells_read_as_text() {
        assert_eq!(cell(&json!(null)), "-");
        assert_eq!(cell(&json!("a")), "a");
        assert_eq!(cell(&json!(3)), "3");
        assert_eq!(field(&json!({"x": true}), "x"), "yes");
        assert_eq!(field(&json!({}), "x"), "-");
    }
}
