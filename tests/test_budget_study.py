"""studies/budget.py: the budget study's tables and figure, from sweep points' metrics files."""

from studies import budget
from tests.test_learning_rate_study import page_rows_not_generated, write_run

LR_SEEDS = "optimizer\ttrain.schedule\ttrain.label_smoothing\tlr\tseed\tepochs\n"
BUDGET = "model\toptimizer\tlr\ttrain.nesterov\ttrain.schedule\tseed\tepochs\n"


def write_study(root, adam_30=(0.93, 0.94), sgd_30=(0.95, 0.95)):
    """conv2 with two seeds of each: the defaults at 10 epochs, and Adam and SGD at 30 (final validation, test)."""
    (root / "lr_seeds.tsv").write_text(LR_SEEDS + "".join(f"adam\tcosine\t0.1\t0.003\t{seed}\t10\n" for seed in (1, 2)))
    rows = [("adam", "0.003", "false"), ("sgd", "0.03", "true")]
    (root / "budget.tsv").write_text(BUDGET + "".join(f"conv2\t{optimizer}\t{lr}\t{nesterov}\tcosine\t{seed}\t30\n"
                                                      for optimizer, lr, nesterov in rows for seed in (1, 2)))
    for seed in (1, 2):
        write_run(root, "lr_seeds", f"optimizer~adam_train.schedule~cosine_train.label_smoothing~0.1_lr~0.003"
                  f"_seed~{seed}_epochs~10", "conv2", [0.90 + seed / 100] * 10, test=0.91)
        write_run(root, "budget", f"model~conv2_optimizer~adam_lr~0.003_train.nesterov~false_train.schedule~cosine"
                  f"_seed~{seed}_epochs~30", "conv2", [0.90] * 29 + [adam_30[0]], test=adam_30[1])
        write_run(root, "budget", f"model~conv2_optimizer~sgd_lr~0.03_train.nesterov~true_train.schedule~cosine"
                  f"_seed~{seed}_epochs~30", "conv2", [0.90] * 29 + [sgd_30[0] + seed / 1000], test=sgd_30[1])


def test_each_technique_is_named_with_its_budget_and_the_best_is_chosen_on_validation(tmp_path):
    write_study(tmp_path, adam_30=(0.93, 0.96), sgd_30=(0.95, 0.92))  # SGD best on validation, Adam on test
    cells = budget.labelled_cells(budget.budget_runs(tmp_path))
    assert sorted(cell.technique for cell in cells) == ["Adam, 10 epochs", "Adam, 30 epochs",
                                                        "SGD+Nesterov, 30 epochs"]
    assert budget.best_per_depth(cells)[2:] == [
        "| conv2 | SGD+Nesterov, 30 epochs | 0.9515 ± 0.0007 | 0.9200 ± 0.0000 |"]


def test_only_the_defaults_are_taken_from_the_learning_rate_study(tmp_path):
    write_study(tmp_path)
    with (tmp_path / "lr_seeds.tsv").open("a") as table:
        table.write("rmsprop\tcosine\t0.1\t0.001\t1\t10\n")
    write_run(tmp_path, "lr_seeds", "optimizer~rmsprop_train.schedule~cosine_train.label_smoothing~0.1_lr~0.001"
              "_seed~1_epochs~10", "conv2", [0.99] * 10, test=0.99)
    assert {run.settings["optimizer"] for run in budget.budget_runs(tmp_path)} == {"adam", "sgd"}


def test_main_writes_the_tables_and_figure(tmp_path):
    (tmp_path / "sweeps").mkdir()
    write_study(tmp_path / "sweeps")
    budget.main(tmp_path / "sweeps", tmp_path / "out")
    text = (tmp_path / "out" / "results.md").read_text()
    assert "Step 1" not in text  # no screen table in this tree
    assert "| Adam, 10 epochs | 0.9100 ± 0.0000 |" in text
    assert "| SGD+Nesterov, 30 epochs | **0.9500 ± 0.0000** |" in text
    assert (tmp_path / "out" / "results.png").read_bytes()[:4] == b"\x89PNG"


def test_the_study_page_quotes_its_budget_numbers_from_the_generated_tables():
    # As for the learning-rate study: a rerun of the budget study that changed a number must not
    # leave the page's section behind.
    count, missing = page_rows_not_generated("## At three times the budget", "## Appendix", "budget/results.md")
    assert count >= 9, "the page's budget tables were not found"
    assert missing == []
