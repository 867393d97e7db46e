// Test helper: reads an exported SEG or SR back through DCMTK (dcmseg, dcmsr) and prints what
// it finds in lines test-report-cli.sh / report-check-dicom.py compare with highdicom's reading.
// Not part of libt3d.
//   report-readback seg FILE   -> "segment N LABEL TYPE_CODE CATEGORY_CODE", then per frame
//                                 "frame I SEG REF_SOP_INSTANCE Z_MM PIXELS_ON" (PIXELS_ON "-" when
//                                 rows*columns is not a multiple of 8: DCMTK 3.6.7 unpacks those
//                                 frames wrongly, highdicom checks them instead)
//   report-readback sr FILE    -> "TEXT CONCEPT|VALUE" and "NUM CONCEPT|VALUE UNIT" per item, and
//                                 "EVIDENCE N" (instances in Current Requested Procedure Evidence)
#include <cstdio>
#include <cstring>
#include <string>

#include "dcmtk/config/osconfig.h"
#include "dcmtk/dcmdata/dctk.h"
#include "dcmtk/dcmfg/fgderimg.h"
#include "dcmtk/dcmfg/fgfracon.h"
#include "dcmtk/dcmfg/fgplanpo.h"
#include "dcmtk/dcmseg/segdoc.h"
#include "dcmtk/dcmseg/segment.h"
#include "dcmtk/dcmsr/dsrdoc.h"
#include "dcmtk/oflog/oflog.h"

static std::string oneline(const OFString &s)
{
  std::string o(s.c_str());
  for (char &c : o)
    if (c == '\n' || c == '\r') c = '~';
  return o;
}

static int seg(const char *path)
{
  DcmSegmentation *s = NULL;
  OFCondition c = DcmSegmentation::loadFile(path, s);
  if (c.bad() || !s) {
    std::fprintf(stderr, "dcmseg cannot load %s: %s\n", path, c.text());
    return 1;
  }
  Uint16 rows = 0, cols = 0;
  DcmFileFormat ff;
  if (ff.loadFile(path).bad() || ff.getDataset()->findAndGetUint16(DCM_Rows, rows).bad() ||
      ff.getDataset()->findAndGetUint16(DCM_Columns, cols).bad()) {
    std::fprintf(stderr, "cannot read Rows/Columns of %s\n", path);
    return 1;
  }
  std::printf("size %u %u\n", rows, cols);
  for (size_t n = 1; n <= s->getNumberOfSegments(); n++) {
    DcmSegment *g = s->getSegment(n);
    OFString label, type, cat;
    g->getSegmentLabel(label);
    g->getSegmentedPropertyTypeCode().getCodeValue(type);
    g->getSegmentedPropertyCategoryCode().getCodeValue(cat);
    std::printf("segment %zu %s %s %s\n", n, label.c_str(), type.c_str(), cat.c_str());
  }
  FGInterface &fg = s->getFunctionalGroups();
  bool pixels = (size_t(rows) * cols) % 8 == 0;
  for (size_t f = 0; f < s->getNumberOfFrames(); f++) {
    FGFrameContent *fc = OFstatic_cast(FGFrameContent *, fg.get((Uint32)f, DcmFGTypes::EFG_FRAMECONTENT));
    FGDerivationImage *di = OFstatic_cast(FGDerivationImage *, fg.get((Uint32)f, DcmFGTypes::EFG_DERIVATIONIMAGE));
    FGPlanePosPatient *pp = OFstatic_cast(FGPlanePosPatient *, fg.get((Uint32)f, DcmFGTypes::EFG_PLANEPOSPATIENT));
    Uint32 segno = 0;
    OFString ref = "none";
    Float64 x = 0, y = 0, z = 0;
    if (fc) fc->getDimensionIndexValues(segno, 0);
    if (di && !di->getDerivationImageItems().empty() &&
        !di->getDerivationImageItems()[0]->getSourceImageItems().empty())
      di->getDerivationImageItems()[0]->getSourceImageItems()[0]->getImageSOPInstanceReference()
          .getReferencedSOPInstanceUID(ref);
    if (pp) pp->getImagePositionPatient(x, y, z);
    std::printf("frame %zu %u %s %.4f %.4f %.4f ", f, segno, ref.c_str(), x, y, z);
    if (pixels) {
      const DcmIODTypes::Frame *fr = s->getFrame(f);
      size_t on = 0;
      for (size_t p = 0; fr && p < size_t(rows) * cols; p++) on += (fr->pixData[p / 8] >> (p % 8)) & 1;
      std::printf("%zu\n", on);
    } else {
      std::printf("-\n");
    }
  }
  delete s;
  return 0;
}

static void walk(DSRDocumentTree &t)
{
  if (!t.gotoRoot()) return;
  do {
    DSRContentItem &ci = t.getCurrentContentItem();
    OFString concept = ci.getConceptName().getCodeMeaning();
    if (ci.getValueType() == DSRTypes::VT_Text) {
      std::printf("TEXT %s|%s\n", concept.c_str(), oneline(ci.getStringValue()).c_str());
    } else if (ci.getValueType() == DSRTypes::VT_Num && ci.getNumericValuePtr()) {
      DSRNumericMeasurementValue *v = ci.getNumericValuePtr();
      std::printf("NUM %s|%s %s\n", concept.c_str(), v->getNumericValue().c_str(),
                  v->getMeasurementUnit().getCodeValue().c_str());
    }
  } while (t.iterate());
}

static int sr(const char *path)
{
  DcmFileFormat ff;
  OFCondition c = ff.loadFile(path);
  DSRDocument doc;
  if (c.good()) c = doc.read(*ff.getDataset());
  if (c.bad()) {
    std::fprintf(stderr, "dcmsr cannot read %s: %s\n", path, c.text());
    return 1;
  }
  walk(doc.getTree());
  std::printf("EVIDENCE %zu\n", doc.getCurrentRequestedProcedureEvidence().getNumberOfInstances());
  OFString flag;
  std::printf("VERIFICATION %s\n", DSRTypes::verificationFlagToEnumeratedValue(doc.getVerificationFlag()));
  return 0;
}

int main(int argc, char **argv)
{
  if (argc != 3) {
    std::fprintf(stderr, "usage: report-readback seg|sr FILE\n");
    return 2;
  }
  // dcmseg warns that its VR checker skips ISO_IR 192 (UTF-8) values: noise here, errors still show.
  OFLog::configure(OFLogger::ERROR_LOG_LEVEL);
  if (std::strcmp(argv[1], "seg") == 0) return seg(argv[2]);
  if (std::strcmp(argv[1], "sr") == 0) return sr(argv[2]);
  return 2;
}
