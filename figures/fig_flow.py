"""L̄(t) and λmin(H(t))/λ0 vs t across widths, from `ntkflow flow --out DIR` results.

Usage: python figures/fig_flow.py DIR
"""

import sys

from ntkflow.reporting.plots import fig_flow

if __name__ == "__main__":
    print("\n".join(str(p) for p in fig_flow(sys.argv[1])))
