/* Default vocabulary, findings and class names for new model files (t3d model-init).
 * Data only: written for t3d, small on purpose; real models carry their own in the file. */
#include "core/model/modeldefaults.h"

/* Special tokens, punctuation, radiology words, common suffix pieces, then single letters and
 * digits (whole-word and ## forms) so WordPiece can spell any lower-case ASCII word. */
static const char *const vocab[] = {
  "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ".", ",", ";", ":", "(", ")", "-", "/", "%", "+", "=", "'",
  "\"", "[", "]", "?", "the", "a", "an", "of", "and", "or", "in", "on", "at", "to", "with", "without", "no",
  "not", "is", "are", "was", "were", "be", "been", "has", "have", "had", "this", "that", "these", "there",
  "which", "from", "by", "for", "as", "per", "than", "also", "into", "within", "along", "about", "both",
  "ct", "scan", "image", "images", "study", "exam", "examination", "series", "slice", "slices", "axial",
  "coronal", "sagittal", "contrast", "enhanced", "enhancement", "unenhanced", "noncontrast", "phase",
  "arterial", "venous", "portal", "delayed", "showing", "shows", "shown", "demonstrates", "seen", "noted",
  "identified", "evidence", "findings", "finding", "impression", "normal", "abnormal", "unremarkable",
  "stable", "new", "unchanged", "increased", "decreased", "interval", "prior", "previous", "comparison",
  "compared", "since", "mild", "moderate", "severe", "small", "large", "tiny", "minimal", "marked",
  "extensive", "diffuse", "focal", "multifocal", "multiple", "single", "few", "several", "scattered",
  "bilateral", "unilateral", "left", "right", "upper", "lower", "middle", "mid", "anterior", "posterior",
  "medial", "lateral", "superior", "inferior", "central", "peripheral", "proximal", "distal", "basal",
  "apical", "dependent", "lung", "lungs", "lobe", "lobes", "pulmonary", "pleural", "pleura", "airway",
  "airways", "bronchus", "bronchi", "bronchial", "trachea", "tracheal", "hilar", "hilum", "mediastinum",
  "mediastinal", "chest", "thorax", "thoracic", "heart", "cardiac", "pericardial", "pericardium", "aorta",
  "aortic", "artery", "arteries", "vein", "veins", "vessel", "vessels", "liver", "hepatic", "gallbladder",
  "biliary", "bile", "duct", "ducts", "pancreas", "pancreatic", "spleen", "splenic", "kidney", "kidneys",
  "renal", "adrenal", "ureter", "bladder", "bowel", "colon", "stomach", "gastric", "abdomen", "abdominal",
  "pelvis", "pelvic", "peritoneal", "retroperitoneal", "mesenteric", "bone", "bones", "osseous", "spine",
  "spinal", "vertebral", "vertebra", "rib", "ribs", "sternum", "soft", "tissue", "tissues", "wall", "fat",
  "fluid", "air", "gas", "blood", "nodule", "nodules", "mass", "masses", "lesion", "lesions", "tumor",
  "tumour", "cyst", "cysts", "cystic", "solid", "effusion", "effusions", "pneumothorax", "consolidation",
  "atelectasis", "opacity", "opacities", "ground", "glass", "emphysema", "emphysematous", "fibrosis",
  "scarring", "nodular", "reticular", "cardiomegaly", "enlarged", "enlargement", "splenomegaly",
  "hepatomegaly", "ascites", "lymph", "node", "nodes", "lymphadenopathy", "adenopathy", "calcification",
  "calcified", "calcifications", "fracture", "fractures", "metastasis", "metastases", "metastatic",
  "malignant", "benign", "suspicious", "infection", "infectious", "inflammatory", "inflammation", "edema",
  "hemorrhage", "thrombus", "embolism", "stone", "stones", "calculus", "calculi", "hydronephrosis",
  "obstruction", "dilated", "dilatation", "thickening", "thickened", "density", "densities", "attenuation",
  "hypodense", "hyperdense", "hypoattenuating", "hyperattenuating", "homogeneous", "heterogeneous",
  "measuring", "measures", "measure", "size", "diameter", "cm", "mm", "volume", "likely", "possible",
  "possibly", "probable", "consistent", "suggestive", "concerning", "compatible", "represent", "recommend",
  "recommended", "follow", "up", "further", "evaluation", "clinical", "correlation", "patient", "history",
  "male", "female", "year", "old", "age", "present", "absent", "resolved", "persistent", "residual", "trace",
  "organ", "organs", "segment", "segments", "region", "regions", "area", "areas", "structure", "phantom",
  "sphere", "synthetic", "##s", "##es", "##ed", "##ing", "##ly", "##al", "##ic", "##ous", "##ity", "##ion",
  "##ation", "##ment", "##ness", "##ive", "##ar", "##ary", "##er", "##or", "##ist", "##itis", "##osis",
  "##oma", "##omegaly", "##ectomy", "##graphy", "##gram", "##scopic", "##plasty", "##pathy", "##trophy",
  "##lysis", "##emia", "##uria", "##ium", "##ia", "##ial", "##iac", "##ular", "##ate", "##ated", "##iform",
  "##oid", "##ectasis", "##ceral", "##lobar", "##segmental", "##pleural", "##thorax", "##nephr", "##hepat",
  "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l", "m", "n", "o", "p", "q", "r", "s", "t", "u", "v",
  "w", "x", "y", "z", "0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "##a", "##b", "##c", "##d", "##e",
  "##f", "##g", "##h", "##i", "##j", "##k", "##l", "##m", "##n", "##o", "##p", "##q", "##r", "##t", "##u",
  "##v", "##w", "##x", "##y", "##z", "##0", "##1", "##2", "##3", "##4", "##5", "##6", "##7", "##8", "##9",
};

/* uncalibrated (0, slope 1, intercept 0, no held-out AUROC): the probability is the prompts' softmax */
static const t3d_finding findings[] = {
  {"pulmonary nodule", "a ct scan showing a pulmonary nodule", "a ct scan with no pulmonary nodule", 0, 1.0, 0.0, 0, 0.0},
  {"pleural effusion", "a ct scan showing a pleural effusion", "a ct scan with no pleural effusion", 0, 1.0, 0.0, 0, 0.0},
  {"pneumothorax", "a ct scan showing a pneumothorax", "a ct scan with no pneumothorax", 0, 1.0, 0.0, 0, 0.0},
  {"consolidation", "a ct scan showing consolidation of the lung", "a ct scan with no consolidation of the lung", 0,
   1.0, 0.0, 0, 0.0},
  {"emphysema", "a ct scan showing emphysema", "a ct scan with no emphysema", 0, 1.0, 0.0, 0, 0.0},
  {"cardiomegaly", "a ct scan showing an enlarged heart", "a ct scan showing a normal heart size", 0, 1.0, 0.0, 0, 0.0},
  {"liver lesion", "a ct scan showing a lesion in the liver", "a ct scan showing a normal liver", 0, 1.0, 0.0, 0, 0.0},
  {"renal cyst", "a ct scan showing a renal cyst", "a ct scan with no renal cyst", 0, 1.0, 0.0, 0, 0.0},
  {"splenomegaly", "a ct scan showing an enlarged spleen", "a ct scan showing a normal spleen size", 0, 1.0, 0.0, 0, 0.0},
  {"ascites", "a ct scan showing ascites", "a ct scan with no ascites", 0, 1.0, 0.0, 0, 0.0},
  {"lymphadenopathy", "a ct scan showing enlarged lymph nodes", "a ct scan with no enlarged lymph nodes", 0, 1.0, 0.0, 0, 0.0},
};

/* The label ids of the phantom generator (docs: the phantom contract of issue 7), in order. */
static const char *const classes[] = {"background", "body", "lung", "heart", "liver", "spleen", "kidney", "bone", "lesion"};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

const char *const *t3d_default_vocab(size_t *count)
{
  *count = COUNT(vocab);
  return vocab;
}

size_t t3d_default_vocab_size(void) { return COUNT(vocab); }

const t3d_finding *t3d_default_findings(size_t *count)
{
  *count = COUNT(findings);
  return findings;
}

const char *const *t3d_default_classes(size_t *count)
{
  *count = COUNT(classes);
  return classes;
}
