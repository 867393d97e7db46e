#!/usr/bin/env python3
"""Converts a Hugging Face BERT folder (config.json, vocab.txt, model.safetensors or
pytorch_model.bin, sharded or not; tokenizer_config.json optional) into a t3d text fragment: a
t3d model file holding the text.* tensors (HF BertModel names behind "text."; "bert." prefix
stripped; pooler and MLM/NSP heads dropped), the text config ("t3d.text_config") and the
WordPiece vocabulary ("t3d.vocab"). tools/t3d-assemble.py combines fragments into a model.
Not a general transformers converter: BERT with absolute positions and exact GELU only."""
import argparse
import json
import os
import sys


sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import t3d_safetensors as st  # noqa: E402


class ConvertError(Exception):
    pass


def text_config(cfg, tok_cfg, lowercase=None):
    """The t3d text config (core/model/modelconfig.h "model.text") from HF config.json (+ tokenizer)."""
    def need(key):
        if key not in cfg:
            raise ConvertError(f"config.json has no {key}")
        return cfg[key]
    mt = cfg.get("model_type", "bert")
    if mt != "bert":
        raise ConvertError(f"config.json model_type is {mt!r}; only BERT models convert")
    act = cfg.get("hidden_act", "gelu")
    if act != "gelu":
        raise ConvertError(f"hidden_act {act!r}: t3d's BERT uses the exact (erf) GELU, 'gelu' in HF")
    pe = cfg.get("position_embedding_type", "absolute")
    if pe != "absolute":
        raise ConvertError(f"position_embedding_type {pe!r}: only absolute positions are supported")
    if lowercase is None:
        lowercase = bool(tok_cfg.get("do_lower_case", True))  # BertTokenizer's default
    strip = tok_cfg.get("strip_accents")
    strip = lowercase if strip is None else bool(strip)     # HF: None follows do_lower_case
    tc = {"arch": "bert", "vocab_size": int(need("vocab_size")), "hidden": int(need("hidden_size")),
          "layers": int(need("num_hidden_layers")), "heads": int(need("num_attention_heads")),
          "intermediate": int(need("intermediate_size")),
          "max_positions": int(need("max_position_embeddings")),
          "type_vocab_size": int(cfg.get("type_vocab_size", 2)),
          "layer_norm_eps": float(cfg.get("layer_norm_eps", 1e-12)),
          "lowercase": lowercase, "strip_accents": strip}
    if tc["hidden"] % tc["heads"]:
        raise ConvertError(f"hidden_size {tc['hidden']} is not a multiple of num_attention_heads {tc['heads']}")
    return tc


def read_vocab(path, vocab_size):
    """vocab.txt as HF's load_vocab reads it (universal newlines, one token per line).
    A vocabulary shorter than vocab_size is padded with tokens that contain spaces, which
    WordPiece can never produce (so ids behave as in HF, where those rows are unreachable);
    earlier copies of a repeated token are replaced the same way."""
    with open(path, "r", encoding="utf-8") as f:
        tokens = [line.rstrip("\n") for line in f]
    if len(tokens) > vocab_size:
        raise ConvertError(f"{path} has {len(tokens)} tokens but config.json vocab_size is {vocab_size}")
    empty = [i for i, t in enumerate(tokens) if not t]
    if empty:
        raise ConvertError(f"{path}: line {empty[0] + 1} is an empty token")
    for i in range(len(tokens), vocab_size):
        tokens.append(f"[t3d unused {i}]")
    # A token listed twice maps to its last id in HF (load_vocab builds a dict); t3d model files
    # refuse repeats, so earlier copies become unreachable placeholders, which keeps every id.
    last = {t: i for i, t in enumerate(tokens)}
    for i, t in enumerate(tokens):
        if last[t] != i:
            tokens[i] = f"[t3d duplicate {i}]"
    return tokens


def load_weights(folder):
    """{name: float32 array} from model.safetensors / pytorch_model.bin (or their sharded index)."""
    def from_file(path):
        if path.endswith(".safetensors"):
            try:
                tensors, _ = st.read(path)
            except st.SafetensorsError as e:
                raise ConvertError(str(e)) from None
            return {k: st.as_float32(v) for k, v in tensors.items() if v.dtype.kind == "f"}
        import torch
        try:
            sd = torch.load(path, map_location="cpu")
        except Exception as e:  # torch raises many kinds for a corrupt file
            raise ConvertError(f"{path}: not a readable PyTorch checkpoint ({type(e).__name__}: {e})") from None
        if not isinstance(sd, dict):
            raise ConvertError(f"{path}: holds a {type(sd).__name__}, not a state_dict")
        return {k: st.as_float32(v) for k, v in sd.items() if hasattr(v, "is_floating_point") and v.is_floating_point()}

    for single, index in (("model.safetensors", "model.safetensors.index.json"),
                          ("pytorch_model.bin", "pytorch_model.bin.index.json")):
        if os.path.exists(os.path.join(folder, single)):
            return from_file(os.path.join(folder, single))
        if os.path.exists(os.path.join(folder, index)):
            with open(os.path.join(folder, index)) as f:
                shards = sorted(set(json.load(f)["weight_map"].values()))
            out = {}
            for s in shards:
                out.update(from_file(os.path.join(folder, s)))
            return out
    raise ConvertError(f"{folder}: no model.safetensors or pytorch_model.bin (nor a sharded index)")


def map_names(weights):
    """HF names -> t3d names: strip "bert.", keep embeddings.* and encoder.*, drop the rest."""
    out = {}
    for name, a in weights.items():
        n = name[5:] if name.startswith("bert.") else name
        if not (n.startswith("embeddings.") or n.startswith("encoder.")) or n.endswith("position_ids"):
            continue  # pooler.*, cls.* (MLM/NSP heads), buffers
        # checkpoints converted from TensorFlow name LayerNorm parameters gamma/beta
        n = n.replace("LayerNorm.gamma", "LayerNorm.weight").replace("LayerNorm.beta", "LayerNorm.bias")
        out["text." + n] = a
    return out


def expected_shapes(tc):
    h, i = tc["hidden"], tc["intermediate"]
    e = {"text.embeddings.word_embeddings.weight": (tc["vocab_size"], h),
         "text.embeddings.position_embeddings.weight": (tc["max_positions"], h),
         "text.embeddings.token_type_embeddings.weight": (tc["type_vocab_size"], h),
         "text.embeddings.LayerNorm.weight": (h,), "text.embeddings.LayerNorm.bias": (h,)}
    for layer in range(tc["layers"]):
        p = f"text.encoder.layer.{layer}."
        for m in ("attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense"):
            e[p + m + ".weight"], e[p + m + ".bias"] = (h, h), (h,)
        e[p + "intermediate.dense.weight"], e[p + "intermediate.dense.bias"] = (i, h), (i,)
        e[p + "output.dense.weight"], e[p + "output.dense.bias"] = (h, i), (h,)
        for m in ("attention.output.LayerNorm", "output.LayerNorm"):
            e[p + m + ".weight"], e[p + m + ".bias"] = (h,), (h,)
    return e


def convert(folder, output, lowercase=None):
    def load_json(name, required):
        path = os.path.join(folder, name)
        if not os.path.exists(path):
            if required:
                raise ConvertError(f"{folder}: no {name}")
            return {}
        try:
            with open(path, encoding="utf-8") as f:
                return json.load(f)
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise ConvertError(f"{path}: not valid JSON ({e})") from None
    tc = text_config(load_json("config.json", True), load_json("tokenizer_config.json", False), lowercase)
    vocab_path = os.path.join(folder, "vocab.txt")
    if not os.path.exists(vocab_path):
        raise ConvertError(f"{folder}: no vocab.txt")
    vocab = read_vocab(vocab_path, tc["vocab_size"])
    tensors = map_names(load_weights(folder))
    want = expected_shapes(tc)
    missing = [n for n in want if n not in tensors]
    if missing:
        raise ConvertError(f"{folder}: {len(missing)} BERT tensors missing, first {missing[0]} "
                           f"(expected shape {list(want[missing[0]])})")
    for n, shape in want.items():
        if tuple(tensors[n].shape) != shape:
            raise ConvertError(f"{folder}: tensor {n} has shape {list(tensors[n].shape)}, "
                               f"config.json implies {list(shape)}")
    extra = sorted(set(tensors) - set(want))
    if extra:
        raise ConvertError(f"{folder}: unexpected BERT tensor {extra[0]} (not a plain BertModel?)")
    st.write(output, tensors, {"t3d.fragment": "text", "t3d.text_config": st.json_meta(tc),
                               "t3d.vocab": st.json_meta(vocab), "t3d.source": os.path.abspath(folder)})
    return tc, len(tensors)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("folder", help="Hugging Face BERT folder")
    ap.add_argument("-o", "--output", required=True, help="text fragment to write (.safetensors)")
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--lowercase", dest="lowercase", action="store_true", default=None,
                   help="uncased vocabulary (default: tokenizer_config.json do_lower_case, else true)")
    g.add_argument("--cased", dest="lowercase", action="store_false", help="cased vocabulary")
    a = ap.parse_args()
    try:
        tc, n = convert(a.folder, a.output, a.lowercase)
    except (ConvertError, OSError) as e:
        print(f"convert-bert: {e}", file=sys.stderr)
        return 1
    print(f"convert-bert: {a.output}: {n} tensors, BERT {tc['layers']} layers, hidden {tc['hidden']}, "
          f"vocab {tc['vocab_size']}{', uncased' if tc['lowercase'] else ', cased'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
