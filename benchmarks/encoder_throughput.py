"""Benchmark: encoder throughput (texts/s) by model, backend, batch size and, on a GPU, precision.

Run: `python -m benchmarks.encoder_throughput [--texts 1000] [--batch-sizes 16,32,64,128,256]
[--backends torch,onnx,openvino]`. The texts are the content_vectors texts (template of
tv5_assets.embeddings.texts) of the ml-25m-shaped benchmark release: 62,423 movies, 13,816 with
Tag Genome tags, so lengths are those of production; a seeded sample of `--texts` of them on CPU.

- CPU, torch, all-MiniLM-L6-v2 (packaged) at each batch size; baseline, measured in the same run:
  sentence-transformers' default call (batch 32) and one text per call (batch 1, on 100 texts).
- paraphrase-multilingual-MiniLM-L12-v2 when its weights are available offline (local directory
  via TV5_L12_MODEL, or the Hugging Face cache); otherwise the reason is printed.
- The ONNX and OpenVINO backends of sentence-transformers when their packages import here
  (they need optimum-onnx / optimum-intel, which pin other transformers releases than the
  project's: run this module from a separate venv holding them); otherwise the reason is printed.
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
    l6 = load_encoder(OFFLINE_MODEL, device="cpu")
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
        l12 = load_encoder(location, device="cpu")
        for size in batch_sizes:
            rate = throughput(l12, texts, size)
            rows.append((f"L12 torch fp32, batch {size}", f"{rate} = {rate.cpu / default.cpu:.2f}x L6 default"))
    for backend in [b for b in backends if b != "torch"]:
        try:
            other = load_encoder(OFFLINE_MODEL, device="cpu", backend=backend)
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--texts", type=int, default=1_000, help="texts per CPU measurement")
    parser.add_argument("--batch-sizes", default="16,32,64,128,256")
    parser.add_argument("--backends", default="torch,onnx,openvino")
    parser.add_argument("--skip-cpu", action="store_true")
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
    rows += gpu_section(all_texts)
    report(rows)
    print(f"load average at the end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
