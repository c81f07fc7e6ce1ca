"""Run every benchmark in one go (``make bench``); pass --quick for a smoke run."""

import sys

import bench_bounds
import bench_grad
import bench_gram
import bench_hinf
import bench_memory
import bench_train

if __name__ == "__main__":
    quick = "--quick" in sys.argv
    for mod in (bench_gram, bench_train, bench_grad, bench_hinf, bench_memory, bench_bounds):
        mod.main(quick)
