#!/usr/bin/env python3
"""Reference ids for tests/test-tokenizer-parity.sh: builds a cased and an uncased WordPiece
vocabulary, writes them as vocab.txt files, makes >= 500 report-like sentences (a fixed list of
edge cases plus seeded random ones), and records the ids of transformers' BertTokenizer (slow,
the reference) and BertTokenizerFast for each, max_length 256 with truncation.
Not a benchmark and not a vocabulary for a real model: the vocabularies only exercise the rules.

Usage: tokenizer_reference.py OUTDIR   (writes OUTDIR/vocab-uncased.txt, vocab-cased.txt,
reference.json). Exit 77 when transformers cannot be imported.
"""
import json
import os
import random
import sys
import time
import unicodedata

SEED = 20231201
MAX_LENGTH = 256
SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]

WORDS = """
the a an and or of in on at to with without from for by is are was were be been no not
there this that these those which as than then it its into over under within between
right left bilateral lower upper middle lobe lobes lung lungs pulmonary pleural effusion
effusions nodule nodules nodular mass masses lesion lesions opacity opacities consolidation
atelectasis emphysema fibrosis ground glass groundglass pneumothorax pneumonia edema
cardiomegaly heart cardiac pericardial aorta aortic ascending descending arch calcification
calcified calcifications vessel vessels artery arteries vein veins embolism thrombus
liver hepatic kidney kidneys renal spleen splenic pancreas pancreatic gallbladder bladder
adrenal bowel colon stomach esophagus trachea bronchus bronchi bronchial airway airways
lymph node nodes lymphadenopathy mediastinal mediastinum hilar axillary supraclavicular
bone bones osseous vertebra vertebral spine spinal rib ribs fracture fractures sclerotic
lytic metastasis metastases metastatic tumor tumour malignant benign cyst cysts cystic
hypodense hyperdense hypoattenuating enhancing enhancement contrast noncontrast phase
arterial venous portal delayed axial coronal sagittal image images series slice slices
size measuring measures measured approximately about mm cm hu unit units diameter
stable unchanged increased decreased new interval prior previous comparison study exam
ct scan chest abdomen pelvis head neck brain thorax thoracic abdominal pelvic findings
impression recommend recommended follow up followup months year years suggest suggests
suspicious likely consistent compatible possible probable small large moderate severe mild
minimal trace focal diffuse multifocal scattered patchy linear segmental subsegmental
apical basal basilar posterior anterior lateral medial superior inferior peripheral central
wall thickening dilation dilated narrowing stenosis occlusion patent normal abnormal
appearance evidence seen noted identified demonstrated visualized measuring density
attenuation volume volumes tree bud branching micronodules reticular honeycombing
fetoprotein alpha beta gamma protein level levels patient history cough fever pain
dyspnea smoker smoking cancer carcinoma adenocarcinoma lymphoma sarcoidosis tuberculosis
granuloma granulomas granulomatous hamartoma infection inflammatory inflammation
postoperative surgical surgery resection lobectomy stent catheter tube line port device
pacemaker leads clips sutures artifact artifacts motion noise dose kv mas reconstruction
kernel thickness spacing one two three four five six seven eight nine ten first second
third date dated report reported reviewed dr doctor radiologist signed electronically
cafe naive angstrom muller hounsfield dicom pet mri ultrasound xray radiograph
""".split()

# Sub-words: enough to split most unknown words into known pieces but not all.
PREFIXES = """hypo hyper peri para sub supra inter intra trans pre post re un non anti pseudo
micro macro neo multi bi tri hemi pan poly mono broncho pneumo cardio hepato nephro osteo""".split()
SUFFIXES = """##s ##es ##ed ##ing ##ly ##al ##ic ##ous ##ity ##ia ##osis ##itis ##oma ##omas
##ectomy ##ostomy ##ogram ##graphy ##ular ##ation ##ations ##ment ##ness ##ive ##ary ##ate
##ated ##ize ##ized ##er ##ers ##est ##ion ##ions ##al ##ally ##ial ##ular ##ure ##ures
##ph ##th ##ch ##sh ##ng ##nd ##st ##tr ##pl ##gr ##cl ##tion ##sion ##able ##ible""".split()

ACCENTED = list("éèêëàâäáãåçñöóòôõüúùûíìîïýÿßæøœ") + ["Å", "É", "Ö", "Ü", "Ç", "Ñ"]
GREEK = [chr(c) for c in range(0x3B1, 0x3CA)] + [chr(c) for c in range(0x391, 0x3AA) if c != 0x3A2]
CYRILLIC = [chr(c) for c in range(0x430, 0x450)] + [chr(c) for c in range(0x410, 0x430)]
CJK = list("右左肺结节肝肾囊肿上下叶胸腔积液未见异常影像检查报告心脏")
HANGUL = list("한국폐결절") + [chr(c) for c in range(0x1100, 0x1113)] + [chr(c) for c in range(0x1161, 0x1176)] \
    + [chr(c) for c in range(0x11A8, 0x11C3)]
OTHER = ["μ", "°", "±", "×", "Ω", "²", "³", "½", "€", "£", "©", "®", "™", "•", "…", "—", "–", "“", "”",
         "‘", "’", "«", "»", "¿", "¡", "§", "¶", "←", "→", "≥", "≤", "≈", "∼", "％", "（", "）", "，", "。",
         "ǅ", "ǆ", "ᾈ", "ﬁ", "Ⅷ", "①", "İ", "ı", "ς", "σ", "Σ", "ẞ", "ǰ", "ŉ"]


def build_vocab(cased):
    vocab = list(SPECIALS)
    seen = set(vocab)

    def add(tok):
        if tok and tok not in seen:
            seen.add(tok)
            vocab.append(tok)

    for c in range(33, 127):
        add(chr(c))
        add("##" + chr(c))
    for d in range(0, 1000, 7):
        add(str(d))
        add("##" + str(d))
    for w in WORDS:
        add(w)
        if cased:
            add(w.capitalize())
            if len(w) <= 4:
                add(w.upper())
        # Fragments so that unseen inflections and compounds split into pieces.
        for k in (3, 4, 5):
            if len(w) > k + 1:
                add(w[:k])
                add("##" + w[k:])
                add("##" + w[-k:])
    for p in PREFIXES:
        add(p)
        if cased:
            add(p.capitalize())
    for s in SUFFIXES:
        add(s)
    for ch in ACCENTED + GREEK + CYRILLIC + CJK + HANGUL + OTHER:
        if not cased and ch.lower() != ch:
            continue  # an uncased vocabulary has no uppercase entries
        add(ch)
        add("##" + ch)
    # Precomposed Latin and Greek letters, so that NFC (composition and its ordering) shows in ids.
    for lo, hi in ((0xC0, 0x250), (0x1E00, 0x1F00), (0x1F00, 0x2000)):
        for cp in range(lo, hi):
            ch = chr(cp)
            if unicodedata.category(ch).startswith("L") and (cased or ch.lower() == ch):
                add(ch)
                add("##" + ch)
    # Whole accented words: only the cased vocabulary keeps accents.
    for w in ["café", "naïve", "Müller", "Ångström", "Köln", "São", "Zürich", "résumé", "α-fetoprotein"]:
        if cased:
            add(w)
        else:
            add(w.lower())
    add("cafe")
    add("naive")
    add("##ström")
    add("ångström")
    return vocab


FIXED = [
    "",
    " ",
    "     ",
    "\t\n\r ",
    "No acute cardiopulmonary abnormality.",
    "Right lower lobe nodule measuring 5 mm, stable since 2019-03-14.",
    "3.2x4.1 cm mass in the left upper lobe (series 3, image 45).",
    "Density: 45 HU; post-contrast 120 HU.",
    "Ångström naïve café Müller",
    "ANGSTRÖM NAÏVE CAFÉ MÜLLER",
    "α-fetoprotein elevated; β-hCG normal.",
    "右肺结节",
    "右肺上叶见结节影，大小约5mm。",
    "Mixed: 右肺 nodule 5 mm, α-FP, Ω, café.",
    "Supercalifragilisticexpialidocioussupercalifragilisticexpialidocioussupercalifragilisticexpialidociousx",
    "a" * 100,
    "a" * 101,
    "nodule" * 17,
    "pneumonoultramicroscopicsilicovolcanoconiosis is a long word",
    "Tabs\tand\nnewlines\r\nand\x0bvertical\x0cfeeds",
    "control\x01chars\x02inside\x7fwords\x1b[0m",
    "zero\u200bwidth\u200cjoin\u200dhere soft\u00adhyphen",
    "emoji 😀 report 🫁 lungs ❤️ 👨‍⚕️ done",
    "NBSP\u00a0between\u2003em\u3000ideographic\u2028line\u2029para",
    "Decomposed: cafe\u0301 nai\u0308ve Mu\u0308ller A\u030angstro\u0308m",
    "Signs: \u212b \u2126 \u212a (Angstrom, Ohm, Kelvin signs)",
    "Combining order: a\u0323\u0302 vs a\u0302\u0323 and q\u0307\u0323",
    "Hangul: 한국 폐결절 and jamo \u1112\u1161\u11ab",
    "Greek: ΑΣ ΟΔΟΣ Σ σ ς ΣΑΣ",
    "Turkish: İstanbul ISTANBUL ıi",
    "German: STRASSE Straße ẞ",
    "Ligature ﬁbrosis and ǅ digraph ᾈ",
    "Fullwidth ＡＢＣ １２３ ％",
    "CJK compat 﨑 豈 and ext 𠀀 𪜀",
    "Cyrillic: Правое лёгкое без очаговых изменений.",
    "[CLS] already here [SEP] and [MASK] and [PAD] [UNK]",
    "lowercase [cls] [sep] [mask] are text",
    "glued[SEP]tokens[CLS]",
    "weird ## hashes ##ing ###",
    "Dates 01/02/2023, 2023-01-02T10:30:00Z, 10:30 a.m.",
    "Numbers 1,234.56 -7 +8 1e-3 3½ 5×5 ±2 ≥10 ≤3",
    "Dr. O'Brien's report: \"no change\" — see ‘prior’ «exam».",
    "e-mail: rad@hospital.org, url: https://pacs.local/study?id=42&x=1",
    "...!!!???;;;:::---___",
    "A.B.C.D",
    "μg/mL 38.5°C 120/80 mmHg",
    "Ünïcödé ÀÉÎÕÜ àéîõü ÿŸ",
    "unknownwordxyz qqqq zzzz",
    "ß ǰ ŉ ﬃ",
    "\u0301\u0301 leading marks \u0308",
    "tibetan \u0f71\u0f72 thai \u0e31\u0e34 devanagari नमस्ते arabic مرحبا hebrew שלום",
    "private use \ue000\uf8ff and noncharacter \ufdd0 and unassigned \u0378",
    "musical \U0001d15e\U0001d165 math \U0001d400\U0001d41a",
    "replacement \ufffd char",
]

# Byte strings that are not valid UTF-8; HF receives them as bytes.decode("utf-8", "replace").
FIXED_BYTES = [
    b"lu\xffng nodule",
    b"truncated \xe2\x82",
    b"surrogate \xed\xa0\x80 here",
    b"overlong \xc0\xaf slash",
    b"too big \xf4\x90\x80\x80 cp",
    b"\x80\x80\x80 continuation only",
    b"mixed \xe5\x8f\xb3\xff\xe8\x82\xba",
]

FINDINGS = ["nodule", "mass", "opacity", "consolidation", "effusion", "lesion", "cyst", "calcification",
            "ground-glass opacity", "pneumothorax", "atelectasis", "lymphadenopathy", "fracture", "metastasis",
            "emphysema", "hypodense lesion", "granuloma", "thickening", "stenosis"]
LOCATIONS = ["right upper lobe", "right middle lobe", "right lower lobe", "left upper lobe", "left lower lobe",
             "lingula", "liver segment VII", "left kidney", "spleen", "mediastinum", "T7 vertebral body",
             "pancreatic head", "adrenal gland", "subcarinal station", "apical segment"]
MODIFIERS = ["small", "large", "new", "stable", "increased", "decreased", "subtle", "spiculated", "well-defined",
             "ill-defined", "calcified", "partly solid", "subsolid", "enhancing"]
EXTRAS = ["café", "naïve", "Müller", "Ångström", "α-fetoprotein", "β", "右肺结节", "肝囊肿", "한국", "ΟΔΟΣ",
          "Straße", "İ", "😀", "\t", "\n", "\u00a0", "\u200b", "\x07", "  ", "...", "(!)", "[SEP]",
          "e\u0301", "\u212b", "Ω", "°C", "±", "x" * 120, "qwxz", "3.2x4.1", "HU", "mm²", "½", "ﬁ", "ǅ",
          "Правое", "مرحبا", "नमस्ते", "\ue000", "\U0001d41a"]


def random_sentence(rng):
    kind = rng.randrange(8)
    size = "%s%s" % (rng.choice([str(rng.randint(1, 99)), "%.1f" % rng.uniform(0.5, 12),
                                  "%.1fx%.1f" % (rng.uniform(1, 9), rng.uniform(1, 9))]),
                     rng.choice(["mm", "cm", " mm", " cm", " x 3 cm"]))
    if kind == 0:
        s = "%s %s in the %s measuring %s." % (rng.choice(MODIFIERS).capitalize(), rng.choice(FINDINGS),
                                                rng.choice(LOCATIONS), size)
    elif kind == 1:
        s = "Impression: %s %s, %s; follow-up CT in %d months recommended." % (
            rng.choice(MODIFIERS), rng.choice(FINDINGS), rng.choice(LOCATIONS), rng.choice([3, 6, 12, 24]))
    elif kind == 2:
        s = "Compared with %04d-%02d-%02d, the %s (%d HU) is %s." % (
            rng.randint(1990, 2030), rng.randint(1, 12), rng.randint(1, 28), rng.choice(FINDINGS),
            rng.randint(-1000, 3000), rng.choice(MODIFIERS))
    elif kind == 3:
        words = [rng.choice(WORDS + FINDINGS + EXTRAS) for _ in range(rng.randint(1, 40))]
        s = " ".join(words)
    elif kind == 4:
        # Long reports that truncate at 256.
        s = " ".join("%s %s in the %s, %s." % (rng.choice(MODIFIERS), rng.choice(FINDINGS), rng.choice(LOCATIONS),
                                                 size) for _ in range(rng.randint(10, 40)))
    elif kind == 5:
        # Unicode soup from a pool of tricky code points.
        pool = EXTRAS + ACCENTED + GREEK + CJK + HANGUL + OTHER + list("\u0300\u0301\u0308\u0323\u0327\u030a"
                                                                       "\u0345\u0f71\u093c\u05b0")
        s = "".join(rng.choice(pool + list("abc .,-")) for _ in range(rng.randint(1, 30)))
    elif kind == 6:
        # Letters with stacks of combining marks: NFC composition, canonical order, blocking.
        bases = "aeiouycnsAEIOUYCNSωαηΩΑ" + "\u1100\u1161\u11a8"
        marks = "\u0300\u0301\u0302\u0303\u0308\u030a\u030c\u0323\u0327\u0328\u0331\u0345\u0313\u0314\u0342"
        s = rng.choice(["", " "]).join(
            rng.choice(bases) + "".join(rng.choice(marks) for _ in range(rng.randint(0, 3)))
            for _ in range(rng.randint(1, 12)))
    else:
        # Code points from anywhere (surrogates excluded: they cannot be UTF-8).
        cps = []
        while len(cps) < rng.randint(1, 40):
            cp = rng.choice([rng.randrange(0x80, 0x3000), rng.randrange(0x3000, 0x10000),
                             rng.randrange(0x10000, 0x110000), rng.randrange(0x20, 0x80)])
            if not 0xD800 <= cp <= 0xDFFF:
                cps.append(cp)
        s = "".join(map(chr, cps))
    # Random case changes and noise so that both vocabularies see mixed input.
    r = rng.random()
    if r < 0.15:
        s = s.upper()
    elif r < 0.25:
        s = s.lower()
    if rng.random() < 0.3:
        pos = rng.randrange(len(s) + 1)
        s = s[:pos] + rng.choice(EXTRAS) + s[pos:]
    return s


def main():
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    outdir = sys.argv[1]
    try:
        import transformers
        from transformers import BertTokenizer, BertTokenizerFast
    except ImportError as e:
        print("tokenizer_reference: transformers not importable (%s): skip" % e, file=sys.stderr)
        return 77
    os.makedirs(outdir, exist_ok=True)

    rng = random.Random(SEED)
    cases = [s.encode("utf-8") for s in FIXED] + list(FIXED_BYTES)
    while len(cases) < 700:
        cases.append(random_sentence(rng).encode("utf-8"))

    out = {"transformers": transformers.__version__, "unicode": unicodedata.unidata_version,
           "max_length": MAX_LENGTH, "configs": [], "cases": []}
    toks = {}
    sizes = {}
    for vname, cased in (("uncased", False), ("cased", True)):
        vocab = build_vocab(cased)
        sizes[vname] = len(vocab)
        with open(os.path.join(outdir, "vocab-%s.txt" % vname), "w", encoding="utf-8", newline="\n") as f:
            f.write("\n".join(vocab) + "\n")
    # The two standard set-ups, then the other settings of strip_accents and tokenize_chinese_chars.
    for name, vname, lower, strip, cjk in (("uncased", "uncased", True, None, True),
                                           ("cased", "cased", False, None, True),
                                           ("uncased-keep-accents", "uncased", True, False, True),
                                           ("cased-strip-no-cjk", "cased", False, True, False)):
        path = os.path.join(outdir, "vocab-%s.txt" % vname)
        kw = dict(do_lower_case=lower, strip_accents=strip, tokenize_chinese_chars=cjk)
        toks[name] = (BertTokenizer(path, **kw), BertTokenizerFast(path, **kw))
        out["configs"].append(dict(name=name, vocab=os.path.basename(path), vocab_size=sizes[vname], **kw))

    fast_diffs = []
    t_slow = 0.0
    for raw in cases:
        text = raw.decode("utf-8", "replace")
        case = {"hex": raw.hex()}
        for name, (slow, fast) in toks.items():
            t0 = time.perf_counter()
            ids = slow(text, max_length=MAX_LENGTH, truncation=True)["input_ids"]
            t_slow += time.perf_counter() - t0
            fids = fast(text, max_length=MAX_LENGTH, truncation=True)["input_ids"]
            case[name] = ids
            if fids != ids:
                case[name + "_fast"] = fids
                fast_diffs.append((name, text, slow.convert_ids_to_tokens(ids), fast.convert_ids_to_tokens(fids)))
        out["cases"].append(case)

    with open(os.path.join(outdir, "reference.json"), "w", encoding="utf-8") as f:
        json.dump(out, f, ensure_ascii=True, indent=0)
    n = len(cases) * len(toks)
    print("tokenizer_reference: %d sentences x %d vocabularies, transformers %s, slow tokenizer %.0f us/sentence"
          % (len(cases), len(toks), transformers.__version__, 1e6 * t_slow / n), file=sys.stderr)
    print("tokenizer_reference: BertTokenizerFast differs from BertTokenizer on %d of %d encodings"
          % (len(fast_diffs), n), file=sys.stderr)
    for name, text, a, b in fast_diffs[:40]:
        i = next((k for k in range(min(len(a), len(b))) if a[k] != b[k]), min(len(a), len(b)))
        print("  [%s] %r\n    slow[%d:]: %s\n    fast[%d:]: %s" % (name, text[:80], i, a[i:i + 6], i, b[i:i + 6]),
              file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
