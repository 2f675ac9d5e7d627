//! A sweep's scores presented: the Markdown summary (policy × budget tables) and the
//! score-vs-budget plot.

use crate::passkey::Protocol;
use crate::plot::{LinePlot, Series};
use crate::sweep::{average, Cell, Table};

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

/// A score as a table cell: one decimal, `-` when missing.
fn score_cell(x: Option<f64>) -> String {
    x.map_or("-".into(), |s| format!("{s:.1}"))
}

/// Per length: the task-averaged table (policy × budget, full-cache row first), then one table
/// per task.
pub fn markdown(
    table: &Table,
    cells: &[Cell],
    lengths: &[usize],
    budgets: &[usize],
    protocol: Protocol,
) -> String {
    let mut s = String::new();
    let protocol = match protocol {
        Protocol::QueryAgnostic => "query-agnostic: the question is read after compression",
        Protocol::QueryAware => "query-aware: the question is compressed with the context",
    };
    // With the full cache alone, one score column.
    let budgets = if cells.len() == 1 { &[][..] } else { budgets };
    let head: Vec<String> = match budgets {
        [] => vec!["score".into()],
        _ => budgets.iter().map(|b| format!("budget {b}")).collect(),
    };
    let header = format!(
        "| policy | {} |\n|---|{}\n",
        head.join(" | "),
        "---|".repeat(head.len())
    );
    let row = |s: &mut String, name: &str, score: &dyn Fn(Option<usize>) -> Option<f64>| {
        let cols: Vec<String> = if name == "full" {
            vec![score_cell(score(None)); budgets.len().max(1)]
        } else {
            budgets
                .iter()
                .map(|&b| score_cell(score(Some(b))))
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
            row(&mut s, p, &|b| {
                average(
                    table,
                    length,
                    &Cell {
                        policy: p.into(),
                        budget: b,
                    },
                )
            });
        }
        for (task, scores) in tasks {
            s.push_str(&format!("\n### {task} ({length} tokens)\n\n"));
            s.push_str(&header);
            for p in policies(cells) {
                row(&mut s, p, &|b| {
                    scores
                        .get(&Cell {
                            policy: p.into(),
                            budget: b,
                        })
                        .map(|x| x.0)
                });
            }
        }
        s.push('\n');
    }
    s
}

/// Task-averaged score against budget at `length`, one line per policy; the full cache is flat.
pub fn plot(table: &Table, cells: &[Cell], length: usize, budgets: &[usize]) -> LinePlot {
    let series = policies(cells)
        .into_iter()
        .map(|p| Series {
            name: p.to_string(),
            points: budgets
                .iter()
                .map(|&b| {
                    let budget = (p != "full").then_some(b);
                    let cell = Cell {
                        policy: p.into(),
                        budget,
                    };
                    (b as f64, average(table, length, &cell).unwrap_or(f64::NAN))
                })
                .collect(),
        })
        .collect();
    LinePlot {
        title: format!("RULER at {length} tokens: score against KV budget"),
        x_label: "budget (tokens per KV head)".into(),
        y_label: "score (mean over tasks)".into(),
        series,
        x_at_data: true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sweep::{table, Outcome};

    fn snapkv(budget: usize) -> Cell {
        Cell {
            policy: "snapkv".into(),
            budget: Some(budget),
        }
    }

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
            &[64, 128],
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
            &[64, 128],
            Protocol::QueryAware,
        );
        assert!(text.contains("query-aware"), "{text}");
        assert!(
            text.contains("| policy | score |\n|---|---|\n| full | 100.0 |\n"),
            "{text}"
        );
    }

    #[test]
    fn plot_has_a_flat_full_cache_and_gaps_where_scores_are_missing() {
        let outcomes = [
            Outcome::scored("vt", "full", None, 100.0),
            Outcome::scored("vt", "snapkv", Some(64), 50.0),
        ];
        let cells = [Cell::full(), snapkv(64), snapkv(128)];
        let plot = plot(&table(&outcomes), &cells, 1024, &[64, 128]);
        let names: Vec<&str> = plot.series.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["full", "snapkv"]);
        assert_eq!(plot.series[0].points, [(64.0, 100.0), (128.0, 100.0)]);
        assert_eq!(plot.series[1].points[0], (64.0, 50.0));
        assert!(plot.series[1].points[1].1.is_nan());
    }
}
