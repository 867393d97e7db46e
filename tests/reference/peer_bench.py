#!/usr/bin/env python3
"""ONNX peers of `t3d bench`: exports the PyTorch reference networks (t3d_reference.py: MONAI
ResNet + our decoder; Hugging Face BertModel + projection) with the weights of the t3d model file
to ONNX, then times OpenVINO or ONNX Runtime on one of them per process and scores its output
against PyTorch fp32 on the same input t3d ran. Not a test by itself, and not a trainer.

  export --config C --model M --shape N,C,D,H,W --io DIR   ONNX files + PyTorch fp32 outputs
  run --engine openvino|onnxruntime --precision f32|bf16 --row R --io DIR   one timed row (JSON)
  agree --io DIR --row R                                   t3d's output (DIR/t3d-R.f32) vs PyTorch

Rows: encoder (pooled layer-4 feature), segment (decoder logits), text (normalised embedding of
the token ids t3d wrote to DIR/ids.i32). Every command prints one JSON line; a missing package
gives {"skip": reason} and exit status 0, so the caller can say so in its table."""
import argparse
import json
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROWS = ("encoder", "segment", "text")
OPSET = 14
# The versions tools/requirements-test.txt pins, for the skip notes.
PINS = {"openvino": "openvino==2026.4.1", "onnxruntime": "onnxruntime==1.32.0"}


def more_runs(times, a):
    """Whether to time another run: at least --repeat, more while the timed ms add up to less than
    --min-ms, at most --max-runs (the values and the rule of `t3d bench`, cli/bench_peers.h)."""
    return len(times) < a.repeat or (len(times) < a.max_runs and sum(times) < a.min_ms)


def say(obj):
    print(json.dumps(obj), flush=True)


def vmhwm_kib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def agreement(out, ref):
    """Cosine similarity and max |out - ref| / max |ref| over all elements, in float64."""
    a = np.asarray(out, dtype=np.float64).ravel()
    b = np.asarray(ref, dtype=np.float64).ravel()
    if a.size != b.size:
        return {"cosine": None, "max_rel_err": None, "error": "%d values, PyTorch has %d" % (a.size, b.size)}
    den = np.linalg.norm(a) * np.linalg.norm(b)
    cos = float(a @ b / den) if den > 0 else (1.0 if np.array_equal(a, b) else 0.0)
    scale = float(np.abs(b).max()) if b.size else 0.0
    rel = float(np.abs(a - b).max() / scale) if scale > 0 else float(np.abs(a - b).max(initial=0.0))
    return {"cosine": cos, "max_rel_err": rel}


def inputs_for(row, io):
    """The engine inputs of row as numpy arrays, in the ONNX graph's input order."""
    if row == "text":
        ids = np.fromfile(os.path.join(io, "ids.i32"), dtype=np.int32).astype(np.int64)[None, :]
        return {"input_ids": ids, "attention_mask": np.ones_like(ids)}
    shape = [int(v) for v in open(os.path.join(io, "shape.txt")).read().split(",")]
    return {"x": np.fromfile(os.path.join(io, "input.f32"), dtype=np.float32).reshape(shape)}


# ---- export (needs torch, monai, transformers) ---------------------------------------------------

def load_into(module, tensors, prefix):
    """Copies the t3d model file's tensors named prefix + key into module's state dict
    (shapes as PyTorch has them: the segmentation head is stored 5-D already)."""
    import torch
    state = module.state_dict()
    for k, v in state.items():
        if k.endswith("num_batches_tracked") or k.endswith("position_ids") or k.endswith("token_type_ids"):
            continue
        name = prefix + k
        if name not in tensors:
            raise KeyError("the t3d model file has no tensor %s" % name)
        state[k] = torch.from_numpy(np.ascontiguousarray(tensors[name])).reshape(v.shape)
    module.load_state_dict(state)


def cmd_export(a):
    try:
        import torch
        import torch.nn as nn
        import torch.nn.functional as F
        import monai  # noqa: F401
        import transformers  # noqa: F401
    except ImportError as e:
        say({"skip": "the PyTorch reference cannot be exported: %s" % e})
        return
    sys.path.insert(0, HERE)
    sys.path.insert(0, os.path.join(HERE, "..", "..", "tools"))
    import t3d_reference as ref
    import t3d_safetensors as st

    torch.set_num_threads(a.threads)
    cfg = json.load(open(a.config))["model"]
    tensors, _ = st.read(a.model)
    rows = a.rows.split(",")
    done, failed = {}, {}
    with open(os.path.join(a.io, "shape.txt"), "w") as f:
        f.write(a.shape)

    def export(module, args, names, path):
        torch.onnx.export(module, args, path, input_names=names, output_names=["y"], opset_version=OPSET,
                          do_constant_folding=True)

    if "encoder" in rows or "segment" in rows:
        model = ref.T3DVision(cfg, bias_downsample="vision.layer1.0.downsample.0.bias" in tensors).eval()
        load_into(model, tensors, "")
        x = torch.from_numpy(inputs_for("encoder", a.io)["x"])

        class Encoder(nn.Module):
            def __init__(self, m):
                super().__init__()
                self.m = m

            def forward(self, x):
                return self.m.pyramid(x)[5].mean(dim=(2, 3, 4))

        class Segment(Encoder):
            def forward(self, x):
                return self.m.seg(self.m.pyramid(x))

        for row, cls in (("encoder", Encoder), ("segment", Segment)):
            if row not in rows:
                continue
            try:  # one row that cannot be exported (e.g. out of memory) leaves the others
                mod = cls(model).eval()
                with torch.no_grad():
                    y = mod(x)
                    export(mod, (x,), ["x"], os.path.join(a.io, row + ".onnx"))
                y.numpy().astype(np.float32).tofile(os.path.join(a.io, "ref-%s.f32" % row))
                done[row] = list(y.shape)
                del mod, y
            except (RuntimeError, MemoryError) as e:
                failed[row] = str(e)[:200]
                print("peer_bench: %s not exported: %s" % (row, e), file=sys.stderr)
        del model
    if "text" in rows and not os.path.exists(os.path.join(a.io, "ids.i32")):
        failed["text"] = "no token ids from the t3d text row"
    elif "text" in rows:
        t = cfg["text"]
        sys.path.insert(0, HERE)
        from text_reference import bert_config
        bert = transformers.BertModel(bert_config(t), add_pooling_layer=False).eval()
        load_into(bert, tensors, "text.")
        proj = ref.projection(t["hidden"], cfg["projection"]["hidden"], cfg["projection"]["dim"]).eval()
        load_into(proj, tensors, "text_proj.")

        class Text(nn.Module):
            def __init__(self):
                super().__init__()
                self.bert, self.proj = bert, proj

            def forward(self, input_ids, attention_mask):
                h = self.bert(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state[:, 0]
                return F.normalize(self.proj(h), dim=-1)

        inp = inputs_for("text", a.io)
        ids, mask = torch.from_numpy(inp["input_ids"]), torch.from_numpy(inp["attention_mask"])
        mod = Text().eval()
        with torch.no_grad():
            y = mod(ids, mask)
            export(mod, (ids, mask), ["input_ids", "attention_mask"], os.path.join(a.io, "text.onnx"))
        y.numpy().astype(np.float32).tofile(os.path.join(a.io, "ref-text.f32"))
        done["text"] = list(y.shape)
    say({"torch": torch.__version__.split("+")[0], "opset": OPSET, "rows": done, "failed": failed})


# ---- one timed row in this process ---------------------------------------------------------------

def describe_openvino(core, compiled):
    """(precision that ran, kernels): the compiled model's inference precision, checked against
    the runtime precision of its convolutions / matrix products, and the CPU plugin's primitive
    types and output layouts of those (e.g. brgconv_avx2_f32 in acdeb = NDHWC)."""
    hint = compiled.get_property("INFERENCE_PRECISION_HINT")
    hint = hint.get_type_name() if hasattr(hint, "get_type_name") else str(hint)
    kinds, bf16_nodes = {}, 0

    def rt_str(rt, key):
        return rt[key].astype(str) if key in rt else ""

    for op in compiled.get_runtime_model().get_ops():
        rt = op.get_rt_info()
        if rt_str(rt, "layerType") in ("Convolution", "Deconvolution", "FullyConnected", "MatMul"):
            k = "%s/%s" % (rt_str(rt, "primitiveType"), rt_str(rt, "outputLayouts"))
            kinds[k] = kinds.get(k, 0) + 1
            bf16_nodes += rt_str(rt, "runtimePrecision").lower() == "bf16"
    caps = core.get_property("CPU", "OPTIMIZATION_CAPABILITIES")
    ran = "bf16" if (hint.lower() == "bf16" and bf16_nodes > 0) else "f32"
    top = sorted(kinds.items(), key=lambda kv: -kv[1])[:3]
    return ran, "caps %s; %s" % ("/".join(caps), ", ".join("%s x%d" % kv for kv in top))


def cmd_run(a):
    try:
        if a.engine == "openvino":
            import openvino as ov
            version = ov.__version__.split("-")[0]
        else:
            import onnxruntime as ort
            version = ort.__version__
    except ImportError:
        say({"skip": "python module %s not importable (pip install %s, see tools/requirements-test.txt)"
             % (a.engine, PINS[a.engine])})
        return
    onnx = os.path.join(a.io, a.row + ".onnx")
    if not os.path.exists(onnx):
        say({"skip": "this row was not exported to ONNX (see the export note)"})
        return
    feeds = inputs_for(a.row, a.io)
    if a.engine == "openvino":
        core = ov.Core()
        cfg = {"INFERENCE_NUM_THREADS": a.threads, "INFERENCE_PRECISION_HINT": a.precision,
               "PERFORMANCE_HINT": "LATENCY", "NUM_STREAMS": 1}
        compiled = core.compile_model(core.read_model(onnx), "CPU", cfg)
        req = compiled.create_infer_request()
        ran, isa = describe_openvino(core, compiled)

        def infer():
            return req.infer(feeds)[compiled.output(0)]
    else:
        if a.precision != "f32":
            say({"skip": "ONNX Runtime's CPU provider runs this graph in f32 only"})
            return
        so = ort.SessionOptions()
        so.intra_op_num_threads = a.threads
        so.inter_op_num_threads = 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        sess = ort.InferenceSession(onnx, so, providers=["CPUExecutionProvider"])
        ran = "f32"
        isa = "%s (MLAS picks its kernels at run time; ORT does not report the ISA)" % ",".join(sess.get_providers())

        def infer():
            return sess.run(None, feeds)[0]
    times, cpu = [], []
    out = None
    warm = 1 if a.row == "text" else 0  # as the t3d side: the text row's first run is not timed
    i = 0
    while i < warm or more_runs(times, a):
        c0, t0 = time.process_time(), time.perf_counter()
        out = infer()
        if i >= warm:
            times.append((time.perf_counter() - t0) * 1000)
            cpu.append((time.process_time() - c0) * 1000)
        i += 1
    hwm = vmhwm_kib()  # before the reference is read
    best = times.index(min(times))
    res = {"engine": a.engine, "version": version, "asked": a.precision, "ran": ran, "ms": times[best],
           "cpu_ms": cpu[best], "vmhwm_kib": hwm, "threads": a.threads, "isa": isa}
    ref = np.fromfile(os.path.join(a.io, "ref-%s.f32" % a.row), dtype=np.float32)
    res.update(agreement(np.asarray(out), ref))
    say(res)


def cmd_agree(a):
    if not os.path.exists(os.path.join(a.io, "ref-%s.f32" % a.row)):
        say({"error": "no PyTorch reference for this row (see the export note)"})
        return
    out = np.fromfile(os.path.join(a.io, "t3d-%s.f32" % a.row), dtype=np.float32)
    ref = np.fromfile(os.path.join(a.io, "ref-%s.f32" % a.row), dtype=np.float32)
    say(agreement(out, ref))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    e = sub.add_parser("export", help="ONNX files and PyTorch fp32 outputs into --io")
    e.add_argument("--config", required=True, help="config JSON file ({\"model\": ...})")
    e.add_argument("--model", required=True, help="t3d model file with the weights")
    e.add_argument("--shape", required=True, help="vision input N,C,D,H,W (DIR/input.f32)")
    e.add_argument("--io", required=True)
    e.add_argument("--rows", default=",".join(ROWS))
    e.add_argument("--threads", type=int, default=1)
    r = sub.add_parser("run", help="time one engine on one row; prints JSON")
    r.add_argument("--engine", required=True, choices=("openvino", "onnxruntime"))
    r.add_argument("--precision", default="f32", choices=("f32", "bf16"))
    r.add_argument("--row", required=True, choices=ROWS)
    r.add_argument("--io", required=True)
    r.add_argument("--threads", type=int, default=1)
    r.add_argument("--repeat", type=int, default=1)
    r.add_argument("--min-ms", type=float, default=0.0, help="more runs while the timed ones add up to less")
    r.add_argument("--max-runs", type=int, default=20, help="the most timed runs --min-ms adds up to")
    g = sub.add_parser("agree", help="t3d's output of a row against PyTorch; prints JSON")
    g.add_argument("--io", required=True)
    g.add_argument("--row", required=True, choices=ROWS)
    a = ap.parse_args()
    {"export": cmd_export, "run": cmd_run, "agree": cmd_agree}[a.cmd](a)


if __name__ == "__main__":
    main()
