"""Tables that fit their width, and configs that read short."""

from __future__ import annotations

from promptlooper_tui.domain.config_text import compact_configs
from promptlooper_tui.tui.widgets.fitted_table import ColumnSpec, fit_columns

COLUMNS = (
    ColumnSpec("rank", "#"),
    ColumnSpec("config", "config", flexible=True),
    ColumnSpec("score", "score"),
    ColumnSpec("p50", "p50", drop=1),
    ColumnSpec("error", "error", flexible=True),
)
NATURAL = {"rank": 2, "config": 30, "score": 5, "p50": 6, "error": 20}


def test_wide_tables_show_everything_and_the_last_flexible_column_takes_the_rest() -> None:
    widths = fit_columns(COLUMNS, NATURAL, 100, 2)
    assert widths == {"rank": 2, "config": 30, "score": 5, "p50": 6, "error": 47}


def test_narrow_tables_drop_columns_for_the_config_then_cut_it() -> None:
    # 2+2 + 5+2 + 6+2 fixed, 2+2 padding of the flexible ones: 30 left, the config's width;
    # the error column would get none, so it is left out and its padding goes to the config.
    assert fit_columns(COLUMNS, NATURAL, 53, 2) == {"rank": 2, "config": 32, "score": 5, "p50": 6}
    # One cell less and p50 goes; that leaves room for some of the errors.
    assert fit_columns(COLUMNS, NATURAL, 52, 2) == {"rank": 2, "config": 30, "score": 5, "error": 7}
    assert fit_columns(COLUMNS, NATURAL, 40, 2) == {"rank": 2, "config": 27, "score": 5}


def test_configs_read_bare_where_a_value_belongs_to_one_parameter() -> None:
    configs = [
        {"model": "large-model", "prompt": "plain", "temperature": 0.5},
        {"model": "small-model", "prompt": "terse", "temperature": 1.0},
    ]
    assert compact_configs(configs) == [
        "large-model plain temperature=0.5",
        "small-model terse temperature=1.0",
    ]
    # The same word for two parameters, or a number written as a string, keeps its key.
    assert compact_configs([{"a": "x", "b": "x", "c": "0.5"}]) == ["a=x b=x c=0.5"]
    assert compact_configs([{}]) == ["(fixed)"]
