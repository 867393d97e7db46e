#!/usr/bin/env python3
"""Writes core/model/unicode_tables.h: the Unicode data core/model/tokenizer.c needs to behave like
Hugging Face's BertTokenizer, taken from the running Python's unicodedata (whose Unicode
version the header records). Not run by the build: the generated header is committed.

Usage: tools/gen-unicode-tables.py > core/model/unicode_tables.h

Tables (all sorted, searched by binary search in tokenizer.c):
  char classes   run-length: (first code point << 3 | class); a run lasts until the next entry.
  lowercase      Python str.lower() of one character: simple pairs, plus the few full mappings
                 that give more than one character.
  ccc            run-length canonical combining class: (first << 8 | ccc).
  decomposition  full canonical decomposition (NFD) of each character that has one, Hangul
                 syllables excluded (computed arithmetically): (cp, offset << 8 | length) into a pool.
  composition    primary composites: ((first << 21 | second), composite), sorted by key.
"""
import sys
import unicodedata as ud

MAX_CP = 0x110000
HANGUL_FIRST, HANGUL_LAST = 0xAC00, 0xD7A3

# Character classes, in the order HF's BasicTokenizer tests them.
C_OTHER, C_SPACE, C_CONTROL, C_CJK, C_PUNCT, C_MN = range(6)
CLASS_NAMES = ["OTHER", "SPACE", "CONTROL", "CJK", "PUNCT", "MN"]

# transformers.models.bert.tokenization_bert.BasicTokenizer._is_chinese_char
CJK_RANGES = [(0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x2A6DF), (0x2A700, 0x2B73F),
              (0x2B740, 0x2B81F), (0x2B820, 0x2CEAF), (0xF900, 0xFAFF), (0x2F800, 0x2FA1F)]


def char_class(cp):
    c = chr(cp)
    cat = ud.category(c)
    # _is_whitespace: " ", \t, \n, \r and Zs become " " in _clean_text.
    if c in " \t\n\r" or cat == "Zs":
        return C_SPACE
    # _is_control: any C* category (Cc, Cf, Cn, Co, Cs) is dropped by _clean_text.
    if cat.startswith("C"):
        return C_CONTROL
    # What survives cleaning but str.split() still splits on (U+2028, U+2029).
    if c.isspace():
        return C_SPACE
    if any(lo <= cp <= hi for lo, hi in CJK_RANGES):
        return C_CJK
    # _is_punctuation: all non-alphanumeric printable ASCII, and every P* category.
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126 or cat.startswith("P"):
        return C_PUNCT
    # _run_strip_accents drops Mn after NFD.
    if cat == "Mn":
        return C_MN
    return C_OTHER


def runs(values):
    out, prev = [], None
    for cp, v in enumerate(values):
        if v != prev:
            out.append((cp, v))
            prev = v
    return out


def emit_array(name, ctype, items, per_line=8, comment=None):
    lines = []
    if comment:
        lines.append("/* %s */" % comment)
    lines.append("static const %s %s[] = {" % (ctype, name))
    for i in range(0, len(items), per_line):
        lines.append("  " + ", ".join(items[i:i + per_line]) + ",")
    lines.append("};")
    return "\n".join(lines)


def main():
    classes = runs([char_class(cp) for cp in range(MAX_CP)])
    ccc = runs([ud.combining(chr(cp)) for cp in range(MAX_CP)])

    lower_simple, lower_full = [], []
    for cp in range(MAX_CP):
        low = chr(cp).lower()
        if low == chr(cp):
            continue
        # The per-character lowering HF applies must be idempotent for its second pass
        # (BasicTokenizer lowers each token again) to be a no-op.
        assert low.lower() == low, hex(cp)
        if len(low) == 1:
            lower_simple.append((cp, ord(low)))
        else:
            assert len(low) <= 3, hex(cp)
            lower_full.append((cp, [ord(x) for x in low]))

    # HF lowers before NFC (per character) and BasicTokenizer lowers again after it; that second
    # lowering is skipped in C, which holds when normalising never yields an uppercase letter.
    for cp in range(MAX_CP):
        c = chr(cp)
        if c.lower() == c:
            for form in ("NFC", "NFD"):
                n = ud.normalize(form, c)
                assert n.lower() == n, (form, hex(cp))

    decomp, pool = [], []
    for cp in range(MAX_CP):
        if HANGUL_FIRST <= cp <= HANGUL_LAST:
            continue
        d = ud.normalize("NFD", chr(cp))
        if d == chr(cp):
            continue
        assert len(d) < 256 and len(pool) < (1 << 24)
        decomp.append((cp, len(pool), len(d)))
        pool.extend(ord(x) for x in d)

    comp = []
    for cp in range(MAX_CP):
        d = ud.decomposition(chr(cp))
        if not d or d.startswith("<"):
            continue
        parts = [int(x, 16) for x in d.split()]
        # A primary composite: a two-character canonical mapping that NFC keeps.
        if len(parts) == 2 and ud.normalize("NFC", chr(cp)) == chr(cp):
            comp.append(((parts[0] << 21) | parts[1], cp))
            # Composing lowercase parts must not give an uppercase character, or the
            # lowering before NFC would differ from HF's lowering after it.
            if chr(parts[0]).lower() == chr(parts[0]):
                assert chr(cp).lower() == chr(cp), hex(cp)
    comp.sort()

    out = sys.stdout
    out.write("/* Generated by tools/gen-unicode-tables.py from Python %s's unicodedata (Unicode %s).\n"
              " * Do not edit: rerun the script. Data for core/model/tokenizer.c only; not a general\n"
              " * Unicode library. */\n" % (sys.version.split()[0], ud.unidata_version))
    out.write("#ifndef T3D_UNICODE_TABLES_H\n#define T3D_UNICODE_TABLES_H\n\n#include <stdint.h>\n\n")
    out.write('#define T3D_UNICODE_VERSION "%s"\n\n' % ud.unidata_version)
    for i, n in enumerate(CLASS_NAMES):
        out.write("#define T3D_UC_%s %d\n" % (n, i))
    out.write("\n")
    out.write(emit_array("t3d_uc_class_runs", "uint32_t",
                         ["0x%x" % (cp << 3 | k) for cp, k in classes],
                         comment="(first code point << 3) | T3D_UC_* class, one entry per run") + "\n\n")
    out.write(emit_array("t3d_uc_lower", "uint32_t",
                         ["0x%x,0x%x" % p for p in lower_simple], per_line=6,
                         comment="pairs: code point, its one-character lowercase (Python str.lower)") + "\n\n")
    out.write(emit_array("t3d_uc_lower_full", "uint32_t",
                         ["0x%x,%d,%s" % (cp, len(m), ",".join("0x%x" % x for x in (m + [0, 0, 0])[:3]))
                          for cp, m in lower_full], per_line=2,
                         comment="code point, length, up to 3 code points: multi-character lowercase") + "\n\n")
    out.write(emit_array("t3d_uc_ccc_runs", "uint32_t",
                         ["0x%x" % (cp << 8 | k) for cp, k in ccc],
                         comment="(first code point << 8) | canonical combining class, one entry per run") + "\n\n")
    out.write(emit_array("t3d_uc_decomp", "uint32_t",
                         ["0x%x,0x%x" % (cp, off << 8 | n) for cp, off, n in decomp], per_line=6,
                         comment="pairs: code point, (offset into t3d_uc_decomp_pool << 8) | length") + "\n\n")
    out.write(emit_array("t3d_uc_decomp_pool", "uint32_t", ["0x%x" % x for x in pool], per_line=10) + "\n\n")
    out.write(emit_array("t3d_uc_comp", "uint64_t",
                         ["UINT64_C(0x%x),0x%x" % p for p in comp], per_line=4,
                         comment="pairs: (first << 21) | second, composite; sorted by key") + "\n\n")
    out.write("#endif\n")


if __name__ == "__main__":
    main()
