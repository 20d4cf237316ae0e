"""pgbench TPS over time on each bench/slowdisk target, from a results directory.

    python3 bench/slowdisk-plot.py DIR [OUT.png]     (bench/slowdisk --plot-only DIR does this)

One panel per pgbench workload (pgbench, pgbench-steady): TPS per second (pgbench -P 1) for
the slow disk alone, writeboost over it and the unthrottled file, on a symmetric log scale
(the targets differ by orders of magnitude and a stalled second shows as 0), and, for
writeboost, the share of ring slots awaiting writeback (right axis) from its status samples:
where the ring fills is where its TPS should be read.
"""
import csv
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

d = sys.argv[1]
out = sys.argv[2] if len(sys.argv) > 2 else os.path.join(d, "pgbench-tps.png")
targets = [("slow", "slow disk alone", "tab:red"), ("wb", "writeboost over it", "tab:blue"),
           ("fast", "unthrottled file", "tab:green")]
workloads = [w for w in ("pgbench", "pgbench-steady")
             if any(os.path.exists(f"{d}/{w}-progress-{t}.tsv") for t, _, _ in targets)]
if not workloads:
    sys.exit(f"slowdisk-plot: no pgbench progress logs in {d}")


def rows(path):
    with open(path) as f:
        return list(csv.DictReader(f, delimiter="\t"))


def num(x):
    try:
        return float(x)
    except (TypeError, ValueError):
        return float("nan")


fig, axes = plt.subplots(len(workloads), 1, figsize=(12, 5 * len(workloads)), squeeze=False)
for ax, w in zip(axes[:, 0], workloads):
    for t, label, color in targets:
        p = f"{d}/{w}-progress-{t}.tsv"
        if not os.path.exists(p):
            continue
        r = rows(p)
        tps = [num(x["tps"]) for x in r]
        mean = sum(tps) / len(tps) if tps else 0
        ax.plot([num(x["seconds"]) for x in r], tps, color=color, lw=1.5, label=f"{label} (mean of the seconds {mean:,.0f} TPS)")
    ax.set_yscale("symlog", linthresh=10)
    ax.set_xlabel("seconds of the pgbench run (before 0: initdb and pgbench -i on writeboost)")
    ax.set_ylabel("TPS (symmetric log scale)")
    ax.grid(True, which="both", alpha=0.3)
    ring = f"{d}/ring-{w}.tsv"
    start = f"{d}/{w}-wb.start"
    handles, labels = ax.get_legend_handles_labels()
    if os.path.exists(ring) and os.path.exists(start):
        t0 = float(open(start).read())
        r = [x for x in rows(ring) if x["segments"] not in ("", None)]
        xs = [num(x["epoch"]) - t0 for x in r]
        ys = [100 * num(x["segments_awaiting_writeback"]) / num(x["segments"]) for x in r]
        # From the start of the turn (negative seconds: initdb and pgbench -i), so that a ring
        # already full when the measured run starts shows as such.
        keep = list(zip(xs, ys))
        if keep:
            ax.axvline(0, color="grey", lw=1, ls=":")
            ax2 = ax.twinx()
            ax2.plot([k[0] for k in keep], [k[1] for k in keep], color="tab:blue", lw=1, ls="--",
                     label="writeboost: ring slots awaiting writeback (%, right axis)")
            ax2.set_ylim(0, 105)
            ax2.set_ylabel("ring slots awaiting writeback (%)")
            h2, l2 = ax2.get_legend_handles_labels()
            handles, labels = handles + h2, labels + l2
    ax.set_title(f"{w}: TPS per second", loc="left")
    ax.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=2, fontsize=9)
fig.tight_layout()
fig.savefig(out, dpi=100)
print(f"slowdisk-plot: {out}", file=sys.stderr)
