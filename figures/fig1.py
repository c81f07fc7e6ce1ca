"""Figure 1a/1b (and every other figure a results directory supports) from a sweep.

Usage: python figures/fig1.py DIR     (same as `ntkflow figures DIR`)
"""

import sys

from ntkflow.reporting.plots import figures

if __name__ == "__main__":
    print("\n".join(str(p) for p in figures(sys.argv[1])))
