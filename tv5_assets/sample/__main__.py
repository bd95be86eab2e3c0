"""`python -m tv5_assets.sample --out DIR [--ml25m] [--seed N ...]`: write a sample release."""

from tv5_assets.sample.generator import main

main()
