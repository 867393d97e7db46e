"""Safetensors reading and writing for t3d's Python tools and test references, with numpy only
(no `safetensors` package needed): the format of core/model/modelfile.h -- the data section starts
on a 64-byte file offset (the header is padded with spaces), tensors lie back to back without gaps
(largest element size first, then by name, so each is aligned to its element size), as the
reference safetensors reader requires -- and the t3d metadata keys.
Not a model: it moves named arrays and string metadata in and out of files, nothing more."""
import json
import os
import struct
import tempfile

import numpy as np

FORMAT_VERSION = "1"
ALIGN = 64

# dtypes the t3d reader accepts, and how numpy stores them (BF16 is kept as raw uint16).
_T3D_DTYPES = {"F32": np.dtype("<f4"), "F16": np.dtype("<f2"), "BF16": np.dtype("<u2"),
               "I32": np.dtype("<i4"), "U8": np.dtype("u1")}
# Further dtypes other writers use; read (and converted by as_float32), never written.
_FOREIGN_DTYPES = {"F64": np.dtype("<f8"), "I64": np.dtype("<i8"), "I16": np.dtype("<i2"),
                   "I8": np.dtype("i1"), "BOOL": np.dtype("?"), "U16": np.dtype("<u2"),
                   "U32": np.dtype("<u4"), "U64": np.dtype("<u8")}


class SafetensorsError(Exception):
    """A file that is not valid safetensors (the message names the file and the problem)."""


def read(path):
    """Returns (tensors, metadata): {name: np.ndarray} (BF16 tensors as float32) and the
    __metadata__ dict ({} when absent). Raises SafetensorsError on a malformed file."""
    tensors, dtypes, metadata = read_raw(path)
    for name, dt in dtypes.items():
        if dt == "BF16":
            tensors[name] = bf16_to_float32(tensors[name])
    return tensors, metadata


def read_raw(path):
    """Like read, but BF16 tensors stay uint16; also returns {name: dtype string}."""
    with open(path, "rb") as f:
        blob = f.read()
    if len(blob) < 8:
        raise SafetensorsError(f"{path}: {len(blob)} bytes, too short for a safetensors file")
    (n,) = struct.unpack("<Q", blob[:8])
    if n > len(blob) - 8 or n > 100 << 20:
        raise SafetensorsError(f"{path}: header length {n} does not fit the file ({len(blob)} bytes)")
    try:
        header = json.loads(blob[8:8 + n].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise SafetensorsError(f"{path}: header is not JSON: {e}") from None
    if not isinstance(header, dict):
        raise SafetensorsError(f"{path}: header is not a JSON object")
    data = memoryview(blob)[8 + n:]
    metadata = header.pop("__metadata__", None) or {}
    tensors, dtypes = {}, {}
    for name, info in header.items():
        try:
            dt = info["dtype"]
            shape = [int(d) for d in info["shape"]]
            begin, end = (int(x) for x in info["data_offsets"])
        except (KeyError, TypeError, ValueError):
            raise SafetensorsError(f"{path}: tensor {name}: malformed entry {info!r}") from None
        npdt = _T3D_DTYPES.get(dt) or _FOREIGN_DTYPES.get(dt)
        if npdt is None:
            raise SafetensorsError(f"{path}: tensor {name}: unsupported dtype {dt}")
        count = int(np.prod(shape)) if shape else 1
        if not 0 <= begin <= end <= len(data) or end - begin != count * npdt.itemsize:
            raise SafetensorsError(f"{path}: tensor {name}: data_offsets [{begin}, {end}] do not fit "
                                   f"{dt}{shape} in a {len(data)}-byte data section")
        tensors[name] = np.frombuffer(data[begin:end], dtype=npdt).reshape(shape).copy()
        dtypes[name] = dt
    return tensors, dtypes, metadata


def bf16_to_float32(u16):
    return (np.asarray(u16, dtype=np.uint16).astype(np.uint32) << 16).view(np.float32)


def as_float32(a):
    """Any numeric array (or torch tensor) as a contiguous little-endian float32 array."""
    if hasattr(a, "detach"):  # torch.Tensor
        a = a.detach().cpu().float().contiguous().numpy()
    return np.ascontiguousarray(np.asarray(a, dtype=np.float32))


def _dtype_name(a):
    for name, kind, size in (("F32", "f", 4), ("F16", "f", 2), ("I32", "i", 4), ("U8", "u", 1)):
        if a.dtype.kind == kind and a.dtype.itemsize == size:
            return name
    raise ValueError(f"t3d model files hold F32, F16, I32 or U8 arrays, not {a.dtype}")


def write(path, tensors, metadata=None):
    """Writes {name: array} (float32/float16/int32/uint8 numpy arrays or torch tensors, which are
    stored as float32) with string metadata, t3d style: header padded with spaces so the data
    section starts on a 64-byte file offset, tensors back to back with no gaps, largest element
    size first and then in name order (each stays aligned to its element size; the reference
    safetensors reader refuses gaps). t3d.format_version is set when missing. Atomic: a
    temporary file renamed over path."""
    meta = {"t3d.format_version": FORMAT_VERSION}
    for k, v in (metadata or {}).items():
        if not isinstance(v, str):
            raise ValueError(f"metadata {k}: values must be strings (json.dumps them first)")
        meta[k] = v
    arrays = {}
    for name, a in tensors.items():
        a = as_float32(a) if hasattr(a, "detach") else np.ascontiguousarray(a)
        if a.dtype == np.float64:
            a = a.astype(np.float32)
        dt = _dtype_name(a)
        arrays[name] = (dt, a.astype(_T3D_DTYPES[dt], copy=False))
    header, chunks, offset = {"__metadata__": meta}, [], 0
    order = sorted(arrays, key=lambda s: (-arrays[s][1].dtype.itemsize, s.encode("utf-8")))
    for name in order:
        dt, a = arrays[name]
        raw = a.tobytes()
        header[name] = {"dtype": dt, "shape": list(a.shape), "data_offsets": [offset, offset + len(raw)]}
        chunks.append(raw)
        offset += len(raw)
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    text += b" " * ((-(8 + len(text))) % ALIGN)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".t3d-", dir=folder)
    umask = os.umask(0)
    os.umask(umask)
    os.fchmod(fd, 0o666 & ~umask)  # an ordinary file, not mkstemp's 0600
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(struct.pack("<Q", len(text)))
            f.write(text)
            for c in chunks:
                f.write(c)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def json_meta(value):
    """Compact JSON text for a t3d.* metadata value."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
