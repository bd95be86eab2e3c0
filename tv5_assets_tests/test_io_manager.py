"""The Parquet IO manager on a real instance: one file per asset, one file per partition of a partitioned
asset, a partition read by its own partition, and every partition read by an unpartitioned reader."""


import dagster as dg
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from tv5_assets.core.io_manager import PolarsParquetIOManager

DAYS = dg.DynamicPartitionsDefinition(name="io_test_days")


@dg.asset(partitions_def=DAYS)
def day_rows(context: dg.AssetExecutionContext) -> pl.DataFrame:
    return pl.DataFrame({"day": [context.partition_key] * 2, "n": [1, 2]})


@dg.asset(partitions_def=DAYS)
def day_total(day_rows: pl.LazyFrame) -> pl.DataFrame:
    return day_rows.select(pl.col("n").sum()).collect()


@dg.asset
def every_day(day_rows: dict[str, pl.DataFrame]) -> pl.DataFrame:
    return pl.concat([day_rows[key] for key in sorted(day_rows)])


def test_partitions_are_files_of_their_own_and_read_back_one_or_all(tmp_path):
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(DAYS.name, ["2024-03-01", "2024-03-02"])
    manager = PolarsParquetIOManager(base_dir=str(tmp_path))
    for day in ("2024-03-01", "2024-03-02"):
        assert dg.materialize([day_rows, day_total], partition_key=day, instance=instance,
                              resources={"io_manager": manager}).success
    assert sorted(p.name for p in (tmp_path / "day_rows").iterdir()) == ["2024-03-01.parquet", "2024-03-02.parquet"]
    assert pl.read_parquet(tmp_path / "day_total" / "2024-03-02.parquet")["n"].to_list() == [3]
    assert dg.materialize([day_rows, every_day], selection=[every_day], instance=instance,
                          resources={"io_manager": manager}).success
    assert_frame_equal(pl.read_parquet(tmp_path / "every_day.parquet"),
                       pl.DataFrame({"day": ["2024-03-01"] * 2 + ["2024-03-02"] * 2, "n": [1, 2, 1, 2]}))


def test_a_missing_partition_names_the_asset_the_partition_and_the_file(tmp_path):
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(DAYS.name, ["2024-03-01"])
    manager = PolarsParquetIOManager(base_dir=str(tmp_path))
    with pytest.raises(FileNotFoundError, match=r"day_rows partition 2024-03-01 has no stored value at .*2024-03-01"):
        dg.materialize([day_rows, day_total], selection=[day_total], partition_key="2024-03-01", instance=instance,
                       resources={"io_manager": manager})
