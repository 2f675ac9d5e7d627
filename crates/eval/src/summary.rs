//! A sweep's scores presented: the Markdown summary (policy × budget or compression ratio tables)
//! and the score-vs-budget and score-vs-compression plots.

use crate::passkey::Protocol;
use crate::plot::{LinePlot, Series};
use crate::ruler::Pipeline;
use crate::sweep::{average, Cell, Column, Table};

/// The policies of `cells` in order, without repeats.
fn policies(cells: &[Cell]) -> Vec<&str> {
    let mut out: Vec<&str> = Vec::new();
    for c in cells {
        if !out.contains(&c.policy.as_str()) {
            out.push(&c.policy);
        }
    }
    out
}

/// `policy` in `column`: the full cache whatever the column.
fn cell(policy: &str, column: Column) -> Cell {
    if policy == "full" {
        Cell::full()
    } else {
        column.cell(policy)
    }
}

/// A score as a table cell: one decimal, `-` when missing.
fn score_cell(x: Option<f64>) -> String {
    x.map_or("-".into(), |s| format!("{s:.1}"))
}

/// How the sweep put its samples to the model, for the summary's headings.
fn describe(pipeline: Pipeline, protocol: Protocol) -> String {
    let question = match protocol {
        Protocol::QueryAgnostic => "the question is read after compression",
        Protocol::QueryAware => "the question is compressed with the context",
    };
    format!("{}: {question}", pipeline.protocol_name(protocol))
}

/// Per length: the task-averaged table (policy × column, full-cache row first), then one table
/// per task.
pub fn markdown(
    table: &Table,
    cells: &[Cell],
    lengths: &[usize],
    columns: &[Column],
    pipeline: Pipeline,
    protocol: Protocol,
) -> String {
    let mut s = String::new();
    let protocol = describe(pipeline, protocol);
    // With the full cache alone, one score column.
    let columns = if cells.len() == 1 { &[][..] } else { columns };
    let head: Vec<String> = match columns {
        [] => vec!["score".into()],
        _ => columns.iter().map(Column::to_string).collect(),
    };
    let header = format!(
        "| policy | {} |\n|---|{}\n",
        head.join(" | "),
        "---|".repeat(head.len())
    );
    let row = |s: &mut String, name: &str, score: &dyn Fn(&Cell) -> Option<f64>| {
        let cols: Vec<String> = if name == "full" {
            vec![score_cell(score(&Cell::full())); columns.len().max(1)]
        } else {
            columns
                .iter()
                .map(|&c| score_cell(score(&c.cell(name))))
                .collect()
        };
        s.push_str(&format!("| {name} | {} |\n", cols.join(" | ")));
    };
    for &length in lengths {
        let Some(tasks) = table.get(&length) else {
            continue;
        };
        let n = tasks
            .values()
            .flat_map(|c| c.get(&Cell::full()).map(|x| x.1))
            .max()
            .unwrap_or(0);
        s.push_str(&format!(
            "## {length} tokens: mean over {} tasks ({n} samples each; {protocol})\n\n",
            tasks.len()
        ));
        s.push_str(&header);
        for p in policies(cells) {
            row(&mut s, p, &|c: &Cell| average(table, length, c));
        }
        for (task, scores) in tasks {
            s.push_str(&format!("\n### {task} ({length} tokens)\n\n"));
            s.push_str(&header);
            for p in policies(cells) {
                row(&mut s, p, &|c: &Cell| scores.get(c).map(|x| x.0));
            }
        }
        s.push('\n');
    }
    s
}

/// Task-averaged score against `columns` (all budgets or all compression ratios) at `length`, one
/// line per policy; the full cache is flat.
pub fn plot(table: &Table, cells: &[Cell], length: usize, columns: &[Column]) -> LinePlot {
    let series = policies(cells)
        .into_iter()
        .map(|p| Series {
            name: p.to_string(),
            points: columns
                .iter()
                .map(|&c| {
                    let score = average(table, length, &cell(p, c));
                    (c.x(), score.unwrap_or(f64::NAN))
                })
                .collect(),
        })
        .collect();
    let (what, x_label) = match columns.first() {
        Some(Column::Compression(_)) => (
            "compression ratio",
            "compression ratio (fraction of the context removed)",
        ),
        _ => ("KV budget", "budget (tokens per KV head)"),
    };
    LinePlot {
        title: format!("RULER at {length} tokens: score against {what}"),
        x_label: x_label.into(),
        y_label: "score (mean over tasks)".into(),
        series,
        x_at_data: true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sweep::{table, Outcome, Ratio};

    fn snapkv(budget: usize) -> Cell {
        Column::Budget(budget).cell("snapkv")
    }

    const BUDGETS: [Column; 2] = [Column::Budget(64), Column::Budget(128)];

    #[test]
    fn summary_has_a_mean_table_then_one_per_task() {
        let outcomes = [
            Outcome::scored("vt", "full", None, 100.0),
            Outcome::scored("fwe", "full", None, 50.0),
            Outcome::scored("vt", "snapkv", Some(64), 100.0),
            Outcome::scored("fwe", "snapkv", Some(64), 0.0),
            Outcome::scored("vt", "snapkv", Some(128), 100.0),
        ];
        let cells = [Cell::full(), snapkv(64), snapkv(128)];
        let text = markdown(
            &table(&outcomes),
            &cells,
            &[1024, 2048],
            &BUDGETS,
            Pipeline::Default,
            Protocol::QueryAgnostic,
        );
        assert_eq!(
            text,
            "## 1024 tokens: mean over 2 tasks (1 samples each; query-agnostic: the question is \
             read after compression)\n\n\
             | policy | budget 64 | budget 128 |\n|---|---|---|\n\
             | full | 75.0 | 75.0 |\n\
             | snapkv | 50.0 | - |\n\
             \n### fwe (1024 tokens)\n\n\
             | policy | budget 64 | budget 128 |\n|---|---|---|\n\
             | full | 50.0 | 50.0 |\n\
             | snapkv | 0.0 | - |\n\
             \n### vt (1024 tokens)\n\n\
             | policy | budget 64 | budget 128 |\n|---|---|---|\n\
             | full | 100.0 | 100.0 |\n\
             | snapkv | 100.0 | 100.0 |\n\n"
        );
    }

    #[test]
    fn summary_of_the_full_cache_alone_has_one_score_column() {
        let outcomes = [Outcome::scored("vt", "full", None, 100.0)];
        let text = markdown(
            &table(&outcomes),
            &[Cell::full()],
            &[1024],
            &BUDGETS,
            Pipeline::Default,
            Protocol::QueryAware,
        );
        assert!(text.contains("query-aware"), "{text}");
        assert!(
            text.contains("| policy | score |\n|---|---|\n| full | 100.0 |\n"),
            "{text}"
        );
    }

    #[test]
    fn compression_ratios_head_their_own_columns_and_plot() {
        let half = Column::Compression(Ratio::new(0.5).unwrap());
        let outcomes = [
            Outcome::scored("vt", "full", None, 100.0),
            Outcome {
                compression: Some(Ratio::new(0.5).unwrap()),
                ..Outcome::scored("vt", "knorm", None, 50.0)
            },
            Outcome::scored("vt", "knorm", Some(64), 0.0),
        ];
        let cells = [Cell::full(), half.cell("knorm"), BUDGETS[0].cell("knorm")];
        let text = markdown(
            &table(&outcomes),
            &cells,
            &[1024],
            &[half, BUDGETS[0]],
            Pipeline::Kvpress,
            Protocol::QueryAgnostic,
        );
        assert!(
            text.contains(
                "(1 samples each; kvpress query-agnostic: the question is read after compression)"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "| policy | compression 0.5 | budget 64 |\n|---|---|---|\n\
                 | full | 100.0 | 100.0 |\n| knorm | 50.0 | 0.0 |\n"
            ),
            "{text}"
        );
        let plot = plot(&table(&outcomes), &cells, 1024, &[half]);
        assert!(plot.title.ends_with("score against compression ratio"));
        assert_eq!(plot.series[1].points, [(0.5, 50.0)]);
    }

    #[test]
    fn plot_has_a_flat_full_cache_and_gaps_where_scores_are_missing() {
        let outcomes = [
            Outcome::scored("vt", "full", None, 100.0),
            Outcome::scored("vt", "snapkv", Some(64), 50.0),
        ];
        let cells = [Cell::full(), snapkv(64), snapkv(128)];
        let plot = plot(&table(&outcomes), &cells, 1024, &BUDGETS);
        let names: Vec<&str> = plot.series.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["full", "snapkv"]);
        assert_eq!(plot.series[0].points, [(64.0, 100.0), (128.0, 100.0)]);
        assert_eq!(plot.series[1].points[0], (64.0, 50.0));
        assert!(plot.series[1].points[1].1.is_nan());
    }
}
