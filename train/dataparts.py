"""Phantoms and their training cache made by several processes at once: `t3d phantom` and
`t3d preprocess` each run single-threaded over their cases, so on a many-core machine (a GPU
server's 16 cores) the recipe's data step is split into --jobs contiguous seed ranges, one
`t3d phantom` and one `t3d preprocess` process per range, and the parts are merged into exactly
what one process writes: case i has seed S+i and is named case-%05d of i (its folder and its
manifest paths), the manifest keeps case order, and the cache's tensors are the parts' in order.
tests/test-train-dataparts.sh compares the merge with one process's output.

  python -m train.dataparts --t3d T3D --count N --seed S --out DIR --jobs J \\
      [--model FILE --cache CACHE] [-- PHANTOM OPTIONS...]
"""
import argparse
import json
import os
import shutil
import subprocess
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tools"))
import t3d_safetensors as st  # noqa: E402  (numpy only: no torch needed to make data)

PATH_FIELDS = ("series", "labels", "report_file")


def ranges(count, jobs):
    """[(first, n)] of jobs contiguous ranges covering 0..count-1 (none empty)."""
    jobs = max(1, min(jobs, count))
    base, extra = divmod(count, jobs)
    out, first = [], 0
    for k in range(jobs):
        n = base + (1 if k < extra else 0)
        out.append((first, n))
        first += n
    return out


def run_all(cmds, what):
    """Runs the commands at once (one thread each), fails with the first one's error."""
    env = dict(os.environ, OMP_NUM_THREADS="1")
    procs = [subprocess.Popen(c, env=env) for c in cmds]
    rcs = [p.wait() for p in procs]
    bad = [(c, rc) for c, rc in zip(cmds, rcs) if rc != 0]
    if bad:
        sys.exit(f"{what} failed (exit {bad[0][1]}): {' '.join(bad[0][0])}")


def renamed(record, new):
    """A manifest record with its case name and the paths under its folder moved to `new`."""
    old = record["case"]
    out = dict(record, case=new)
    for f in PATH_FIELDS:
        v = record.get(f)
        if isinstance(v, str) and (v == old or v.startswith(old + "/")):
            out[f] = new + v[len(old):]
    return out


def merge(parts, out_dir, cache_path):
    """Moves the parts' case folders into out_dir under their global names, writes the manifest
    (last, through a temporary file: a half-merged folder has none) and the merged cache."""
    os.makedirs(out_dir, exist_ok=True)
    labels_json = None
    lines, inputs, labels, cases, meta0 = [], [], [], [], None
    for first, n, part in parts:
        with open(os.path.join(part, "labels.json"), encoding="utf-8") as f:
            lj = f.read()
        if labels_json is None:
            labels_json = lj
        elif lj != labels_json:
            sys.exit(f"{part}/labels.json differs from the first part's")
        with open(os.path.join(part, "manifest.jsonl"), encoding="utf-8") as f:
            raw = [line.rstrip("\n") for line in f if line.strip()]
        records = [json.loads(line) for line in raw]
        if len(records) != n:
            sys.exit(f"{part}: {len(records)} cases in its manifest, {n} expected")
        names = {}
        for i, r in enumerate(records):
            new = f"case-{first + i:05d}"
            names[r["case"]] = new
            dst = os.path.join(out_dir, new)
            if os.path.exists(dst):
                shutil.rmtree(dst)
            os.replace(os.path.join(part, r["case"]), dst)
            # the line as t3d wrote it, its name swapped where it is a JSON string or starts a path
            line = raw[i].replace(f'"{r["case"]}"', f'"{new}"').replace(f'"{r["case"]}/', f'"{new}/')
            if json.loads(line) != renamed(r, new):
                sys.exit(f"{part}: cannot rename {r['case']} in its manifest line")
            lines.append(line)
        if cache_path:
            t, m = st.read(os.path.join(part, "cache.safetensors"))
            meta0 = meta0 or m
            for k, v in m.items():
                if k != "t3d.cases" and v != meta0[k]:
                    sys.exit(f"{part}: cache metadata {k} differs from the first part's")
            inputs.append(t["input"])
            labels.append(t["labels"])
            cases += [names[c] for c in json.loads(m["t3d.cases"])]
    with open(os.path.join(out_dir, "labels.json"), "w", encoding="utf-8") as f:
        f.write(labels_json)
    tmp = os.path.join(out_dir, "manifest.jsonl.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write("".join(line + "\n" for line in lines))
    os.replace(tmp, os.path.join(out_dir, "manifest.jsonl"))
    if cache_path:
        meta = dict(meta0)
        meta["t3d.cases"] = json.dumps(cases, separators=(",", ":"))
        st.write(cache_path, {"input": np.concatenate(inputs), "labels": np.concatenate(labels)}, meta)  # atomic


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--t3d", required=True, help="the t3d command")
    ap.add_argument("--count", type=int, required=True)
    ap.add_argument("--seed", type=int, required=True, help="seed of case 0 (case i: seed + i)")
    ap.add_argument("--out", required=True, help="phantom folder to write")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--model", help="model file whose preprocessing the cache uses")
    ap.add_argument("--cache", help="training cache to write (needs --model)")
    ap.add_argument("phantom_opts", nargs="*", help="options for t3d phantom (after --)")
    a = ap.parse_args(argv)
    if a.count < 1:
        sys.exit("--count must be at least 1")
    if bool(a.cache) != bool(a.model):
        sys.exit("--cache and --model go together")
    work = os.path.normpath(a.out) + ".parts"
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    parts = [(first, n, os.path.join(work, str(k))) for k, (first, n) in enumerate(ranges(a.count, a.jobs))]
    run_all([[a.t3d, "phantom", "--count", str(n), "--seed", str(a.seed + first), "--out", part, "--quiet"]
             + a.phantom_opts for first, n, part in parts], "t3d phantom")
    if a.cache:
        run_all([[a.t3d, "preprocess", "--data", part, "--model", a.model, "-o", os.path.join(part, "cache.safetensors")]
                 for _, _, part in parts], "t3d preprocess")
    merge(parts, a.out, a.cache)
    shutil.rmtree(work, ignore_errors=True)
    print(f"{a.out}: {a.count} cases from seed {a.seed} in {len(parts)} parts"
          + (f", cache {a.cache}" if a.cache else ""), file=sys.stderr)


if __name__ == "__main__":
    main()
