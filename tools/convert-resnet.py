#!/usr/bin/env python3
"""Converts a 3-D ResNet state_dict from MONAI (monai.networks.nets.ResNet) or MedicalNet
(.pt/.pth; possibly wrapped as {"state_dict": ...} and with DataParallel "module." prefixes) into
a t3d vision fragment: a t3d model file with the vision.* tensors (the same names behind
"vision.") and the vision config ("t3d.vision_config"), which tools/t3d-assemble.py combines
with a text fragment. Block type, blocks per stage, widths, input channels, conv1 kernel and
whether the downsample convolutions have a bias are read from the tensor names and shapes.
Not detectable from weights, so given as options: conv1 stride (default 2, MedicalNet's and
t3d's) and the max-pool (default on). MedicalNet runs layer3/layer4 dilated at stride 1; t3d
runs them as MONAI does (stride 2), so MedicalNet features differ from MedicalNet's own network.
Not a trainer; the classification head (MONAI fc.*) and MedicalNet's segmentation head
(conv_seg.*) are dropped."""
import argparse
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import t3d_safetensors as st  # noqa: E402


class ConvertError(Exception):
    pass


def load_state_dict(path):
    import torch
    try:
        obj = torch.load(path, map_location="cpu")
    except Exception as e:  # torch raises many kinds for a corrupt file
        raise ConvertError(f"{path}: not a readable PyTorch checkpoint ({type(e).__name__}: {e})") from None
    for key in ("state_dict", "model_state_dict", "model"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
            break
    if not isinstance(obj, dict) or not obj:
        raise ConvertError(f"{path}: holds a {type(obj).__name__}, not a (non-empty) state_dict")
    out = {}
    for k, v in obj.items():
        if not hasattr(v, "is_floating_point"):
            continue
        while k.startswith("module."):
            k = k[len("module."):]
        if k.startswith(("fc.", "conv_seg.")) or k.endswith("num_batches_tracked"):
            continue
        out[k] = v
    return out


def detect(sd, conv1_stride, maxpool):
    """The t3d vision config ("model.vision") implied by the tensor names and shapes."""
    if "conv1.weight" not in sd:
        raise ConvertError("no conv1.weight: not a MONAI/MedicalNet 3-D ResNet state_dict "
                           f"(first keys: {', '.join(list(sd)[:4])})")
    w = sd["conv1.weight"]
    if w.dim() != 5 or w.shape[2] != w.shape[3] or w.shape[3] != w.shape[4]:
        raise ConvertError(f"conv1.weight has shape {list(w.shape)}; expected [out, in, k, k, k] (3-D, cubic)")
    block = "bottleneck" if "layer1.0.conv3.weight" in sd else "basic"
    layers, widths = [], []
    for s in range(1, 5):
        blocks = {int(m.group(1)) for k in sd for m in [re.match(rf"layer{s}\.(\d+)\.conv1\.weight$", k)] if m}
        if not blocks or blocks != set(range(len(blocks))):
            raise ConvertError(f"layer{s}: blocks {sorted(blocks)} are not 0..n-1")
        layers.append(len(blocks))
        widths.append(int(sd[f"layer{s}.0.conv1.weight"].shape[0]))
    vc = {"arch": "resnet", "block": block, "layers": layers, "widths": widths,
          "in_channels": int(w.shape[1]), "conv1_kernel": int(w.shape[2]), "conv1_stride": conv1_stride,
          "maxpool": maxpool}
    if vc["conv1_kernel"] % 2 == 0:
        raise ConvertError(f"conv1 kernel {vc['conv1_kernel']} is even; t3d pads kernel/2 and needs it odd")
    if int(w.shape[0]) != widths[0]:
        raise ConvertError(f"conv1 has {w.shape[0]} outputs but layer1 starts with {widths[0]} planes")
    return vc


def expected(vc):
    """Names and shapes of the vision tensors (mirrors t3d_model_config_tensors)."""
    exp = 4 if vc["block"] == "bottleneck" else 1
    e = {}

    def conv(name, cout, cin, k):
        e[name + ".weight"] = (cout, cin, k, k, k)

    def bn(name, c):
        for p in ("weight", "bias", "running_mean", "running_var"):
            e[f"{name}.{p}"] = (c,)
    w0 = vc["widths"][0]
    conv("conv1", w0, vc["in_channels"], vc["conv1_kernel"])
    bn("bn1", w0)
    cin = w0
    for s in range(4):
        planes = vc["widths"][s]
        cout = planes * exp
        for b in range(vc["layers"][s]):
            p = f"layer{s + 1}.{b}."
            if exp == 1:
                conv(p + "conv1", planes, cin, 3), bn(p + "bn1", planes)
                conv(p + "conv2", planes, planes, 3), bn(p + "bn2", planes)
            else:
                conv(p + "conv1", planes, cin, 1), bn(p + "bn1", planes)
                conv(p + "conv2", planes, planes, 3), bn(p + "bn2", planes)
                conv(p + "conv3", cout, planes, 1), bn(p + "bn3", cout)
            if b == 0 and (s > 0 or cin != cout):
                conv(p + "downsample.0", cout, cin, 1), bn(p + "downsample.1", cout)
            cin = cout
    return e


def convert(path, output, conv1_stride=2, maxpool=True):
    sd = load_state_dict(path)
    vc = detect(sd, conv1_stride, maxpool)
    want = expected(vc)
    tensors = {}
    for name, shape in want.items():
        if name not in sd:
            raise ConvertError(f"{path}: tensor {name} missing (expected shape {list(shape)}) for a "
                               f"{vc['block']} ResNet with layers {vc['layers']}")
        if tuple(sd[name].shape) != shape:
            raise ConvertError(f"{path}: tensor {name} has shape {list(sd[name].shape)}, expected {list(shape)}")
        tensors["vision." + name] = st.as_float32(sd[name])
    # MONAI's bias_downsample=True adds a bias to each downsample convolution; t3d uses it.
    for name in want:
        if name.endswith("downsample.0.weight"):
            bias = name[:-len("weight")] + "bias"
            if bias in sd:
                tensors["vision." + bias] = st.as_float32(sd[bias])
    unused = sorted(set(sd) - set(want) - {n[len("vision."):] for n in tensors})
    if unused:
        raise ConvertError(f"{path}: tensor {unused[0]} is not part of a MONAI/MedicalNet ResNet "
                           f"({len(unused)} such); refusing to drop weights silently")
    st.write(output, tensors, {"t3d.fragment": "vision", "t3d.vision_config": st.json_meta(vc),
                               "t3d.source": os.path.abspath(path)})
    return vc, len(tensors)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("checkpoint", help="state_dict .pt/.pth (MONAI or MedicalNet)")
    ap.add_argument("-o", "--output", required=True, help="vision fragment to write (.safetensors)")
    ap.add_argument("--conv1-stride", type=int, choices=(1, 2), default=2,
                    help="stride of conv1 (MedicalNet and t3d: 2; MONAI's default: 1)")
    ap.add_argument("--no-maxpool", action="store_true", help="the network has no max-pool after the stem")
    a = ap.parse_args()
    try:
        vc, n = convert(a.checkpoint, a.output, a.conv1_stride, not a.no_maxpool)
    except (ConvertError, OSError) as e:
        print(f"convert-resnet: {e}", file=sys.stderr)
        return 1
    print(f"convert-resnet: {a.output}: {n} tensors, {vc['block']} ResNet layers {vc['layers']} "
          f"widths {vc['widths']}, conv1 {vc['conv1_kernel']}^3 stride {vc['conv1_stride']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
