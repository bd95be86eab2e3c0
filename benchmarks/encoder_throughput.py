"""Benchmark: encoder throughput (texts/s) by model, backend, batch size and precision, and int8 quality.

Run: `python -m benchmarks.encoder_throughput [--texts 1000] [--batch-sizes 16,32,64,128,256]
[--backends torch,onnx,openvino]`. The texts are the content_vectors texts (template of
tv5_assets.embeddings.texts) of the ml-25m-shaped benchmark release: 62,423 movies, 13,816 with
Tag Genome tags, so lengths are those of production; a seeded sample of `--texts` of them on CPU.

fp32 against int8 (the CPU default), each measured in the same run on the same texts:

- `--compare N`: torch fp32 and OpenVINO int8 (and OpenVINO fp32 with `--with-ov-fp32`) encode the
  same N sampled benchmark texts, chunk by chunk in alternating order, so a shared machine's load
  falls on both alike; prints texts/s, the int8/fp32 ratio and 62,423 texts extrapolated.
- `--full`: int8 encodes all 62,423 benchmark texts in one call (the content_vectors call), timed.
- `--quality DIR`: the real catalogue of a MovieLens release directory (e.g. ml-latest-small: the
  movies, plus Tag Genome tags when the release has them, through movie_texts as content_vectors
  does) encoded by torch fp32 and by int8: cosine min/mean and top-10 neighbour agreement
  (tv5_assets.embeddings.agreement).

- CPU, torch, all-MiniLM-L6-v2 (packaged) at each batch size; baseline, measured in the same run:
  sentence-transformers' default call (batch 32) and one text per call (batch 1, on 100 texts).
- paraphrase-multilingual-MiniLM-L12-v2 when its weights are available offline (local directory
  via TV5_L12_MODEL, or the Hugging Face cache); otherwise the reason is printed.
- `--backends`: openvino is the project's own export (fp32 here); onnx is sentence-transformers'
  backend, which needs optimum-onnx (it pins transformers < 4.58: not installable beside the
  project's transformers 5); when it cannot load, the reason is printed.
- With a CUDA GPU: fp32 vs fp16 on all 62,423 texts (L12 if available, else L6), card recorded;
  without one, a note says so.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np
import polars as pl

from benchmarks.common import BENCH_DIR, ml25m_tables, report
from tv5_assets.embeddings.agreement import agreement
from tv5_assets.embeddings.encoding import TextEncoder, load_encoder
from tv5_assets.embeddings.model_source import OFFLINE_MODEL, PRODUCTION_MODEL, ModelUnavailableError, resolve_model
from tv5_assets.embeddings.texts import movie_texts

GPU_TARGET_S = 20.0


def benchmark_texts() -> list[str]:
    tables = BENCH_DIR / "tables"
    if not (tables / "movies.parquet").exists():
        ml25m_tables()
    movies = pl.read_parquet(tables / "movies.parquet")
    genome = pl.read_parquet(tables / "genome.parquet")
    return movie_texts(movies, genome)["text"].to_list()


class Rate(float):
    """texts per wall second, carrying texts per CPU second (all threads): the figure that a busy shared
    machine disturbs least; on an idle machine wall texts/s approaches it times the cores used."""

    cpu: float

    def __str__(self) -> str:
        return f"{self:,.1f} texts/s ({self.cpu:,.1f} per CPU-s)"


def throughput(encoder: TextEncoder, texts: list[str], batch_size: int) -> Rate:
    """Throughput of one encode call at `batch_size`, after a warm-up batch."""
    encoder.batch_size = batch_size
    encoder.encode(texts[:batch_size])
    wall, cpu = time.perf_counter(), time.process_time()
    encoder.encode(texts)
    rate = Rate(len(texts) / (time.perf_counter() - wall))
    rate.cpu = len(texts) / (time.process_time() - cpu)
    return rate


def torch_threads() -> int:
    import torch

    return torch.get_num_threads()


def l12_location() -> tuple[str | None, str]:
    candidate = os.environ.get("TV5_L12_MODEL", PRODUCTION_MODEL)
    try:
        resolve_model(candidate)
        return candidate, "available offline"
    except ModelUnavailableError as error:
        return None, str(error).split(". Provide it")[0]


def cpu_section(texts: list[str], batch_sizes: list[int], backends: list[str]) -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = []
    l6 = load_encoder(OFFLINE_MODEL, device="cpu", precision="fp32", backend="torch")
    per_call = throughput(l6, texts[:100], 1)
    default = throughput(l6, texts, 32)
    rows.append(("baseline L6 torch, one text per call", str(per_call)))
    rows.append(("baseline L6 torch, sentence-transformers default (batch 32)", str(default)))
    best = (Rate(0.0), 0)
    best[0].cpu = 0.0
    for size in batch_sizes:
        rate = throughput(l6, texts, size)
        best = max(best, (rate, size), key=lambda pair: pair[0].cpu)
        rows.append((f"L6 torch fp32, batch {size}", f"{rate} = {rate.cpu / default.cpu:.2f}x default, "
                                                     f"{rate.cpu / per_call.cpu:.1f}x one-per-call (CPU-s)"))
    rows.append(("best L6 torch", f"batch {best[1]}: {best[0]} -> 62,423 texts in {62_423 / best[0] / 60:.1f} min "
                                  f"at this load, ~{62_423 / best[0].cpu / torch_threads() / 60:.1f} min idle"))
    location, why = l12_location()
    if location is None:
        rows.append(("L12 multilingual", f"not measured: {why} (its weights are not on PyPI)"))
    else:
        l12 = load_encoder(location, device="cpu", precision="fp32", backend="torch")
        for size in batch_sizes:
            rate = throughput(l12, texts, size)
            rows.append((f"L12 torch fp32, batch {size}", f"{rate} = {rate.cpu / default.cpu:.2f}x L6 default"))
    for backend in [b for b in backends if b != "torch"]:
        try:
            other = load_encoder(OFFLINE_MODEL, device="cpu", backend=backend, precision="fp32")
        except Exception as error:  # an optional backend: report why it cannot run here
            rows.append((f"L6 {backend}", f"not measured: {type(error).__name__}: {str(error).splitlines()[0][:200]}"))
            continue
        reference = l6.encode(texts[:50])
        agreement = float(np.min(np.sum(reference * other.encode(texts[:50]), axis=1)))
        for size in batch_sizes:
            rate = throughput(other, texts, size)
            rows.append((f"L6 {backend} fp32, batch {size}", f"{rate} = {rate.cpu / default.cpu:.2f}x torch default "
                                                             f"(CPU-s); min cosine to torch {agreement:.5f}"))
    return rows


def gpu_section(all_texts: list[str]) -> list[tuple[str, str]]:
    import torch

    if not torch.cuda.is_available():
        return [("GPU", "no CUDA GPU on this machine: fp16 vs fp32 figures not measured (run this module on a "
                        "GPU machine; target <= 20 s for 62,423 texts on an H100)")]
    card = torch.cuda.get_device_name(0)
    location, _ = l12_location()
    model = location or OFFLINE_MODEL
    rows = [("GPU", f"{card}; model {model}")]
    for precision in ("fp32", "fp16"):
        encoder = load_encoder(model, device="cuda", precision=precision)
        encoder.encode(all_texts[:encoder.batch_size])
        torch.cuda.synchronize()
        started = time.perf_counter()
        encoder.encode(all_texts)
        torch.cuda.synchronize()
        seconds = time.perf_counter() - started
        rows.append((f"GPU {precision}, batch {encoder.batch_size}", f"{len(all_texts):,} texts in {seconds:.1f} s, "
                     f"{len(all_texts) / seconds:,.0f} texts/s ({'met' if seconds <= GPU_TARGET_S else 'MISSED'} "
                     f"<= {GPU_TARGET_S:.0f} s)"))
        encoder.close()
    return rows


def timed(encoder: TextEncoder, texts: list[str]) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    encoder.encode(texts)
    return time.perf_counter() - wall, time.process_time() - cpu


def compare_section(texts: list[str], with_ov_fp32: bool, chunk: int = 1_024) -> list[tuple[str, str]]:
    """torch fp32 vs OpenVINO int8 (vs OpenVINO fp32) on the same texts, interleaved chunk by chunk."""
    encoders = {"torch fp32": load_encoder(OFFLINE_MODEL, device="cpu", precision="fp32", backend="torch"),
                "openvino int8": load_encoder(OFFLINE_MODEL, device="cpu", precision="int8")}
    if with_ov_fp32:
        encoders["openvino fp32"] = load_encoder(OFFLINE_MODEL, device="cpu", precision="fp32", backend="openvino")
    for encoder in encoders.values():
        encoder.encode(texts[:encoder.batch_size])  # warm-up, untimed
    spent = {name: [0.0, 0.0] for name in encoders}
    names = list(encoders)
    for number, begin in enumerate(range(0, len(texts), chunk)):
        part = texts[begin:begin + chunk]
        for name in names if number % 2 == 0 else names[::-1]:
            wall, cpu = timed(encoders[name], part)
            spent[name][0] += wall
            spent[name][1] += cpu
    base_wall, base_cpu = spent["torch fp32"]
    rows = []
    for name, (wall, cpu) in spent.items():
        rate = len(texts) / wall
        rows.append((f"compare {name}, batch {encoders[name].batch_size}",
                     f"{rate:,.1f} texts/s ({len(texts) / cpu:,.1f} per CPU-s) = {base_wall / wall:.2f}x torch fp32 "
                     f"wall ({base_cpu / cpu:.2f}x CPU); 62,423 texts -> {62_423 / rate:,.0f} s at this load"))
    return rows


def full_section(all_texts: list[str]) -> list[tuple[str, str]]:
    encoder = load_encoder(OFFLINE_MODEL, device="cpu", precision="int8")
    encoder.encode(all_texts[:encoder.batch_size])
    wall, cpu = timed(encoder, all_texts)
    return [("full int8 encode", f"{len(all_texts):,} texts in {wall:.1f} s ({len(all_texts) / wall:,.1f} texts/s, "
                                 f"{cpu:.1f} CPU-s; target <= 120 s: {'met' if wall <= 120 else 'MISSED'} at this load)")]


def release_texts(directory: str) -> list[str]:
    """The content_vectors texts of a MovieLens release directory, as the assets build them."""
    from pathlib import Path

    from tv5_assets.ingestion import movielens

    root = Path(directory)
    movies = movielens.parse_movies(root / "movies.csv", root / "links.csv").kept
    genome = movielens.parse_genome(root / "genome-scores.csv", root / "genome-tags.csv", 0.5, 10).kept \
        if (root / "genome-scores.csv").exists() else \
        pl.DataFrame(schema={"movie_id": pl.Int32, "tag_id": pl.Int32, "tag": pl.String, "relevance": pl.Float32,
                             "rank": pl.Int32})
    return movie_texts(movies, genome)["text"].to_list()


def quality_section(directory: str) -> list[tuple[str, str]]:
    texts = release_texts(directory)
    reference = load_encoder(OFFLINE_MODEL, device="cpu", precision="fp32", backend="torch")
    int8 = load_encoder(OFFLINE_MODEL, device="cpu", precision="int8")
    fp32_vectors = reference.encode(texts)
    rows = [("quality reference", f"torch fp32 on {len(texts):,} texts of {directory}: "
                                  f"{reference.last.texts_per_s:,.1f} texts/s")]
    int8_vectors = int8.encode(texts)
    rows.append(("quality int8", f"{int8.describe()['recipe']}: {int8.last.texts_per_s:,.1f} texts/s; "
                                 f"{agreement(fp32_vectors, int8_vectors)}"))
    again = int8.encode(texts)
    rows.append(("int8 determinism", f"a second encode of the same texts is bit-identical: "
                                     f"{bool(np.array_equal(again, int8_vectors))}"))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--texts", type=int, default=1_000, help="texts per CPU measurement")
    parser.add_argument("--batch-sizes", default="16,32,64,128,256")
    parser.add_argument("--backends", default="torch,onnx,openvino")
    parser.add_argument("--skip-cpu", action="store_true", help="skip the batch-size/backends sweep")
    parser.add_argument("--skip-gpu", action="store_true")
    parser.add_argument("--compare", type=int, default=0, help="texts for the interleaved fp32 vs int8 comparison")
    parser.add_argument("--with-ov-fp32", action="store_true", help="add OpenVINO fp32 to --compare")
    parser.add_argument("--full", action="store_true", help="time int8 on all 62,423 benchmark texts")
    parser.add_argument("--quality", default="", help="MovieLens release directory for the fp32 vs int8 quality")
    args = parser.parse_args()
    import torch

    all_texts = benchmark_texts()
    rng = np.random.default_rng(0)
    texts = [all_texts[i] for i in rng.choice(len(all_texts), size=min(args.texts, len(all_texts)), replace=False)]
    lengths = np.array([len(t) for t in texts])
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch "
          f"{torch.__version__} ({torch.get_num_threads()} threads), load average {os.getloadavg()[0]:.1f}")
    print(f"texts: {len(texts):,} of {len(all_texts):,} (characters: median {np.median(lengths):.0f}, "
          f"max {lengths.max()})")
    rows = [] if args.skip_cpu else cpu_section(texts, [int(b) for b in args.batch_sizes.split(",")],
                                                args.backends.split(","))
    if args.compare:
        sample = [all_texts[i] for i in rng.choice(len(all_texts), size=min(args.compare, len(all_texts)),
                                                   replace=False)]
        rows += compare_section(sample, args.with_ov_fp32)
    if args.full:
        rows += full_section(all_texts)
    if args.quality:
        rows += quality_section(args.quality)
    if not args.skip_gpu:
        rows += gpu_section(all_texts)
    report(rows)
    print(f"load average at the end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
