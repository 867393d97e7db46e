// DCMTK side of the report exports: reads source headers, builds the TID 1500 SR (dcmsr/cmr)
// and the binary SEG (dcmseg), and saves them. Not public API; never throws: every C++
// exception and every DCMTK error becomes a t3d_status with a message.
#include "config.h"

#include "core/report/report_internal.h"

#include <cstdio>
#include <cstring>
#include <exception>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include "dcmtk/config/osconfig.h"
#include "dcmtk/dcmdata/dctk.h"
#include "dcmtk/dcmfg/fgderimg.h"
#include "dcmtk/dcmfg/fgfracon.h"
#include "dcmtk/dcmfg/fgpixmsr.h"
#include "dcmtk/dcmfg/fgplanor.h"
#include "dcmtk/dcmfg/fgplanpo.h"
#include "dcmtk/dcmiod/iodreferences.h"
#include "dcmtk/dcmseg/segdoc.h"
#include "dcmtk/dcmseg/segment.h"
#include "dcmtk/dcmsr/cmr/tid1500.h"
#include "dcmtk/dcmsr/dsrdoc.h"

#include "core/dicom/dicomwrite.h"

namespace {

// A DCMTK failure carried out of the builders as an exception and turned into a status once.
struct dcm_fail {
  t3d_status status;
  std::string what;
};

void need(const OFCondition &c, const char *what)
{
  if (c.bad()) throw dcm_fail{T3D_ERR_FORMAT, std::string(what) + ": " + c.text()};
}

std::string num(int decimals, double v)
{
  char b[64];
  return t3d_report_fmt(b, sizeof b, decimals, v);
}

t3d_status run_guarded(const char *what, void (*fn)(void *), void *arg)
{
  try {
    fn(arg);
    return T3D_OK;
  } catch (const dcm_fail &e) {
    return t3d_error(e.status, "%s: %s", what, e.what.c_str());
  } catch (const std::bad_alloc &) {
    return t3d_error(T3D_ERR_NOMEM, "%s: out of memory", what);
  } catch (const std::exception &e) {
    return t3d_error(T3D_ERR_INTERNAL, "%s: %s", what, e.what());
  } catch (...) {
    return t3d_error(T3D_ERR_INTERNAL, "%s: unknown C++ exception", what);
  }
}

// Loads a source file's header (values over 4 KiB, Pixel Data above all, stay on disk).
void load_header(DcmFileFormat &ff, const char *path)
{
  OFCondition c = ff.loadFile(path, EXS_Unknown, EGL_noChange, 4096);
  if (c.bad()) throw dcm_fail{T3D_ERR_IO, std::string(path) + ": " + c.text()};
}

bool is_ascii(const OFString &v)
{
  for (size_t i = 0; i < v.length(); i++)
    if ((unsigned char)v[i] >= 0x80) return false;
  return true;
}

// The Patient and General Study module attributes in UTF-8 (ISO_IR 192), since the SR's own
// text may hold any UTF-8 (neighbour sentences): from the volume's meta (already converted to
// UTF-8 by the reader), and Referring Physician / Study ID from the source converted by DCMTK
// (or as they are when plain ASCII; empty otherwise).
void put_patient_study(DcmDataset &src, const t3d_volume_meta &m, DcmItem &dst)
{
  need(dst.putAndInsertString(DCM_SpecificCharacterSet, "ISO_IR 192"), "SR character set");
  const struct {
    DcmTagKey tag;
    const char *value;
  } from_meta[] = {{DCM_PatientName, m.patient_name},         {DCM_PatientID, m.patient_id},
                   {DCM_PatientBirthDate, m.patient_birth_date}, {DCM_PatientSex, m.patient_sex},
                   {DCM_StudyInstanceUID, m.study_uid},       {DCM_StudyDate, m.study_date},
                   {DCM_StudyTime, m.study_time},             {DCM_AccessionNumber, m.accession_number},
                   {DCM_StudyDescription, m.study_description}};
  for (const auto &f : from_meta) need(dst.putAndInsertString(f.tag, f.value), "SR patient/study attribute");
  OFString cs;
  src.findAndGetOFStringArray(DCM_SpecificCharacterSet, cs);
  bool utf8 = cs == "ISO_IR 192" || (cs != "" && src.convertToUTF8().good());
  for (const DcmTagKey &t : {DCM_ReferringPhysicianName, DCM_StudyID}) {
    OFString v;
    if (src.findAndGetOFStringArray(t, v).bad() || !(utf8 || is_ascii(v))) v.clear();
    need(dst.putAndInsertOFStringArray(t, v), "SR patient/study attribute");
  }
}

// YYYYMMDDHHMMSS from the params, or false.
bool split_timestamp(const char *ts, std::string &date, std::string &time)
{
  if (!ts || std::strlen(ts) != 14 || std::strspn(ts, "0123456789") != 14) return false;
  date.assign(ts, 8);
  time.assign(ts + 8, 6);
  return true;
}

void set_times(DcmItem &ds, const t3d_report *r)
{
  std::string d, t;
  if (!split_timestamp(r->timestamp, d, t)) return;
  const DcmTagKey dates[] = {DCM_ContentDate, DCM_InstanceCreationDate, DCM_SeriesDate};
  const DcmTagKey times[] = {DCM_ContentTime, DCM_InstanceCreationTime, DCM_SeriesTime};
  for (int i = 0; i < 3; i++) {
    need(ds.putAndInsertString(dates[i], d.c_str()), "setting a date");
    need(ds.putAndInsertString(times[i], t.c_str()), "setting a time");
  }
}

void save(DcmFileFormat &ff, const char *path)
{
  OFCondition c = ff.saveFile(path, EXS_LittleEndianExplicit, EET_UndefinedLength, EGL_recalcGL, EPD_noChange, 0, 0,
                              EWM_createNewMeta);
  if (c.bad()) throw dcm_fail{T3D_ERR_IO, std::string("cannot write ") + path + ": " + c.text()};
}

// ---- coded anatomy (see report.h) ----

struct anatomy {
  const char *name, *code, *meaning;
};
const anatomy organs[] = {{"liver", "10200004", "Liver"},   {"lung", "39607008", "Lung"},
                          {"spleen", "78961009", "Spleen"}, {"kidney", "64033007", "Kidney"},
                          {"heart", "80891009", "Heart"},   {"bone", "272673000", "Bone structure"},
                          {"body", "38266002", "Entire body"}};

void codes_for(const char *name, CodeSequenceMacro &category, CodeSequenceMacro &type)
{
  if (strcasecmp(name, "lesion") == 0) {
    category.set("49755003", "SCT", "Morphologically abnormal structure");
    type.set("52988006", "SCT", "Lesion");
    return;
  }
  category.set("123037004", "SCT", "Anatomical structure");
  for (const anatomy &a : organs)
    if (strcasecmp(name, a.name) == 0) {
      type.set(a.code, "SCT", a.meaning);
      return;
    }
  type.set("91723000", "SCT", "Anatomical structure");
}

// ---- SR ----

struct sr_job {
  const t3d_report *r;
  const t3d_report_source *src;
  const char *series_uid, *instance_uid, *path;
  int series_number;
};

void build_sr(void *arg)
{
  const sr_job &j = *static_cast<sr_job *>(arg);
  const t3d_report *r = j.r;
  const DSRCodedEntryValue finding_c("121071", "DCM", "Finding"), impression_c("121073", "DCM", "Impression"),
      findings_c("121070", "DCM", "Findings"), comment_c("121106", "DCM", "Comment");

  TID1500_MeasurementReport report(CMR_CID7021::ImagingMeasurementReport);
  need(report.setLanguage(CID5000_Languages::English), "SR language");
  need(report.getObservationContext().addDeviceObserver(r->device_uid, r->model_name, "t3d", r->model_name),
       "SR device observer");
  need(report.addProcedureReported(CMR_CID100::CTUnspecifiedBodyRegion), "SR procedure reported");

  DSRDocument doc(DSRTypes::DT_ComprehensiveSR); // setTreeFromRootTemplate settles on Enhanced SR
  need(report.getImageLibrary().createNewImageLibrary(), "SR image library");
  need(report.getImageLibrary().addImageGroup(), "SR image group");
  for (size_t i = 0; i < j.src->n; i++) {
    const t3d_report_instance &in = j.src->inst[i];
    DcmFileFormat ff;
    load_header(ff, in.path);
    need(report.getImageLibrary().addImageEntry(*ff.getDataset(), TID1600_ImageLibrary::withoutDescriptors),
         "SR image library entry");
    need(doc.getCurrentRequestedProcedureEvidence().addItem(in.study_uid, in.series_uid, in.sop_class_uid,
                                                            in.sop_instance_uid),
         "SR evidence");
  }

  for (size_t c = 1; r->volumes_ml && c < r->nclasses; c++) {
    CodeSequenceMacro cat, type;
    codes_for(r->class_names[c], cat, type);
    OFString code, scheme, meaning;
    type.getCodeValue(code);
    type.getCodingSchemeDesignator(scheme);
    type.getCodeMeaning(meaning);
    char uid[T3D_UID_MAX];
    if (t3d_dicom_new_uid(NULL, uid) != T3D_OK) throw dcm_fail{T3D_ERR_INTERNAL, t3d_error_detail()};
    need(report.addIndividualMeasurements(OFFalse), "SR measurement group");
    auto &g = report.getIndividualMeasurements();
    need(g.setTrackingIdentifier(std::string(r->class_names[c]) + " volume"), "SR tracking identifier");
    need(g.setTrackingUniqueIdentifier(uid), "SR tracking UID");
    need(g.setFinding(DSRCodedEntryValue(code, scheme, meaning)), "SR finding");
    need(g.addMeasurement(CID7469_GenericIntensityAndSizeMeasurements::Volume,
                          CMR_TID1501_in_TID1500::MeasurementValue(
                              num(1, r->volumes_ml[c]).c_str(),
                              CID7181_AbstractMultiDimensionalImageModelComponentUnits::CubicCentimeter)),
         "SR volume measurement");
  }
  if (r->lesion_class >= 0 && r->nlesions > 0) {
    char uid[T3D_UID_MAX];
    if (t3d_dicom_new_uid(NULL, uid) != T3D_OK) throw dcm_fail{T3D_ERR_INTERNAL, t3d_error_detail()};
    need(report.addIndividualMeasurements(OFFalse), "SR lesion group");
    auto &g = report.getIndividualMeasurements();
    need(g.setTrackingIdentifier("largest lesion"), "SR tracking identifier");
    need(g.setTrackingUniqueIdentifier(uid), "SR tracking UID");
    need(g.setFinding(DSRCodedEntryValue("52988006", "SCT", "Lesion")), "SR finding");
    need(g.addMeasurement(CID7469_GenericIntensityAndSizeMeasurements::Diameter,
                          CMR_TID1501_in_TID1500::MeasurementValue(
                              num(1, r->lesion_max_diameter_mm).c_str(),
                              CID7181_AbstractMultiDimensionalImageModelComponentUnits::Millimeter)),
         "SR diameter measurement");
  }

  for (size_t i = 0; i < r->nfindings; i++) {
    const t3d_report_finding &f = r->findings[i];
    std::string t = std::string(f.name) + ": probability " + num(3, f.probability) +
                    (f.unfamiliar ? ", not assessed (series unlike the training cases)"
                     : !f.assessed ? ", not assessed (held-out AUROC " + num(2, f.auroc) + ")"
                     : f.present ? ", present (threshold " + num(2, r->threshold) + ")"
                                 : ", below threshold (" + num(2, r->threshold) + ")");
    need(report.addQualitativeEvaluation(finding_c, t.c_str()), "SR finding text");
  }
  if (r->lesion_class >= 0) {
    std::string t = "lesion count: " + std::to_string(r->nlesions);
    need(report.addQualitativeEvaluation(finding_c, t.c_str()), "SR lesion count");
  }
  need(report.addQualitativeEvaluation(findings_c, r->findings_text), "SR findings text");
  need(report.addQualitativeEvaluation(impression_c, r->impression_text), "SR impression text");
  need(report.addQualitativeEvaluation(comment_c, r->notice), "SR draft notice");
  if (*r->grid.geometry_note)
    need(report.addQualitativeEvaluation(comment_c, r->grid.geometry_note), "SR geometry note");

  if (!report.isValid()) throw dcm_fail{T3D_ERR_FORMAT, "DCMTK finds the TID 1500 report incomplete"};
  need(doc.setTreeFromRootTemplate(report, OFTrue), "SR document tree");
  need(doc.setManufacturer("t3d"), "SR manufacturer");
  need(doc.setManufacturerModelName(r->model_name), "SR model name");
  need(doc.setSeriesDescription("T3D machine draft report (unverified)"), "SR series description");
  need(doc.setSeriesNumber(std::to_string(j.series_number).c_str()), "SR series number");

  DcmFileFormat out;
  DcmDataset &ds = *out.getDataset();
  need(doc.write(ds), "SR encoding");
  DcmFileFormat first;
  load_header(first, j.src->inst[0].path);
  put_patient_study(*first.getDataset(), r->grid.meta, ds);
  need(ds.putAndInsertString(DCM_SeriesInstanceUID, j.series_uid), "SR series UID");
  need(ds.putAndInsertString(DCM_SOPInstanceUID, j.instance_uid), "SR instance UID");
  set_times(ds, r);
  save(out, j.path);
}

// ---- SEG ----

struct seg_job {
  const t3d_report *r;
  const t3d_report_source *src;
  const char *series_uid, *instance_uid, *path;
  int series_number;
};

// Each frame is the source slice's own pixel grid, which readers (highdicom) need stated:
// Spatial Locations Preserved "YES" in every Source Image Sequence item (DCMTK 3.6.7 has no setter).
void mark_spatial_locations_preserved(DcmDataset &ds)
{
  DcmSequenceOfItems *per = NULL;
  if (ds.findAndGetSequence(DCM_PerFrameFunctionalGroupsSequence, per).bad() || !per) return;
  for (unsigned long f = 0; f < per->card(); f++) {
    DcmSequenceOfItems *der = NULL;
    if (per->getItem(f)->findAndGetSequence(DCM_DerivationImageSequence, der).bad() || !der) continue;
    for (unsigned long d = 0; d < der->card(); d++) {
      DcmSequenceOfItems *srcs = NULL;
      if (der->getItem(d)->findAndGetSequence(DCM_SourceImageSequence, srcs).bad() || !srcs) continue;
      for (unsigned long i = 0; i < srcs->card(); i++)
        need(srcs->getItem(i)->putAndInsertString(DCM_SpatialLocationsPreserved, "YES"),
             "SEG spatial locations preserved");
    }
  }
}

void build_seg(void *arg)
{
  const seg_job &j = *static_cast<seg_job *>(arg);
  const t3d_report *r = j.r;
  const t3d_volume &g = r->grid;
  const size_t nx = (size_t)g.nx, ny = (size_t)g.ny, nz = (size_t)g.nz, plane = nx * ny;
  if (nx > 65535 || ny > 65535) throw dcm_fail{T3D_ERR_UNSUPPORTED, "slices larger than 65535 pixels"};

  IODGeneralEquipmentModule::EquipmentInfo eq("t3d", r->model_name, "-", PACKAGE_VERSION);
  ContentIdentificationMacro ci("1", "T3D_SEG", "T3D machine draft segmentation (unverified)", "T3D^Model");
  DcmSegmentation *raw = NULL;
  need(DcmSegmentation::createBinarySegmentation(raw, (Uint16)ny, (Uint16)nx, eq, ci), "SEG create");
  std::unique_ptr<DcmSegmentation> seg(raw);
  need(seg->importFromSourceImage(j.src->inst[j.src->slice_inst[0]].path), "SEG import patient/study");
  need(seg->getSeries().setSeriesInstanceUID(j.series_uid), "SEG series UID");
  need(seg->getSeries().setSeriesNumber(std::to_string(j.series_number).c_str()), "SEG series number");
  need(seg->getSeries().setSeriesDescription("T3D machine draft segmentation"), "SEG series description");
  need(seg->getSOPCommon().setSOPInstanceUID(j.instance_uid), "SEG instance UID");

  FGPixelMeasures pm;
  need(pm.setPixelSpacing((num(6, g.spacing[1]) + "\\" + num(6, g.spacing[0])).c_str()), "SEG pixel spacing");
  need(pm.setSliceThickness(num(6, g.spacing[2]).c_str()), "SEG slice thickness");
  need(pm.setSpacingBetweenSlices(num(6, g.spacing[2]).c_str()), "SEG spacing between slices");
  need(seg->addForAllFrames(pm), "SEG pixel measures");
  std::unique_ptr<FGPlaneOrientationPatient> po(FGPlaneOrientationPatient::createMinimal(
      num(8, g.dir[0][0]).c_str(), num(8, g.dir[1][0]).c_str(), num(8, g.dir[2][0]).c_str(),
      num(8, g.dir[0][1]).c_str(), num(8, g.dir[1][1]).c_str(), num(8, g.dir[2][1]).c_str()));
  if (!po) throw std::bad_alloc();
  need(seg->addForAllFrames(*po), "SEG plane orientation");

  char dim_uid[T3D_UID_MAX];
  if (t3d_dicom_new_uid(NULL, dim_uid) != T3D_OK) throw dcm_fail{T3D_ERR_INTERNAL, t3d_error_detail()};
  need(seg->getDimensions().addDimensionIndex(DCM_ReferencedSegmentNumber, dim_uid,
                                              DCM_SegmentIdentificationSequence, "ReferencedSegmentNumber"),
       "SEG dimension segment");
  need(seg->getDimensions().addDimensionIndex(DCM_ImagePositionPatient, dim_uid, DCM_PlanePositionSequence,
                                              "ImagePositionPatient"),
       "SEG dimension position");

  // Frames: (segment, slice) with voxels; our own bit packing collects them in order.
  std::vector<uint8_t> frame(plane), bits;
  size_t nframes = 0;
  for (size_t c = 1; c < r->nclasses; c++) {
    CodeSequenceMacro cat, type;
    codes_for(r->class_names[c], cat, type);
    DcmSegment *s = NULL;
    need(DcmSegment::create(s, r->class_names[c], cat, type, DcmSegTypes::SAT_AUTOMATIC, r->model_name),
         "SEG segment");
    Uint16 segno = 0;
    OFCondition added = seg->addSegment(s, segno);
    if (added.bad()) {
      delete s;
      need(added, "SEG add segment");
    }
    std::vector<size_t> slices;
    for (size_t k = 0; k < nz; k++) {
      const uint8_t *lab = r->labels + k * plane;
      size_t v = 0;
      while (v < plane && lab[v] != c) v++;
      if (v < plane) slices.push_back(k);
    }
    if (slices.empty()) slices.push_back(0); // an empty segment still gets one (empty) frame
    for (size_t k : slices) {
      const uint8_t *lab = r->labels + k * plane;
      for (size_t v = 0; v < plane; v++) frame[v] = lab[v] == c;
      double p[3];
      t3d_volume_index_to_lps(&g, 0, 0, (double)k, p);
      std::unique_ptr<FGPlanePosPatient> pp(
          FGPlanePosPatient::createMinimal(num(6, p[0]).c_str(), num(6, p[1]).c_str(), num(6, p[2]).c_str()));
      FGFrameContent fc;
      need(fc.setDimensionIndexValues(segno, 0), "SEG frame content");
      need(fc.setDimensionIndexValues((Uint32)(k + 1), 1), "SEG frame content");
      const t3d_report_instance &in = j.src->inst[j.src->slice_inst[k]];
      ImageSOPInstanceReferenceMacro *ref = NULL;
      need(ImageSOPInstanceReferenceMacro::create(in.sop_class_uid, in.sop_instance_uid, ref), "SEG source ref");
      OFVector<ImageSOPInstanceReferenceMacro> refs;
      refs.push_back(*ref);
      delete ref;
      std::unique_ptr<FGDerivationImage> di(
          DcmSegmentation::createDerivationImageFG(refs, "Segmentation by the T3D model"));
      if (!pp || !di) throw dcm_fail{T3D_ERR_FORMAT, "SEG per-frame groups could not be built"};
      OFVector<FGBase *> per;
      per.push_back(pp.get());
      per.push_back(&fc);
      per.push_back(di.get());
      need(seg->addFrame(frame.data(), segno, per), "SEG add frame");
      // Pack this frame into the running bit stream: pixel n of the whole Pixel Data is bit
      // n % 8 of byte n / 8 (PS3.5 8.1.1), frames back to back.
      size_t base = nframes * plane;
      bits.resize((base + plane + 7) / 8, 0);
      for (size_t v = 0; v < plane; v++)
        if (frame[v]) bits[(base + v) / 8] |= (uint8_t)(1u << ((base + v) % 8));
      nframes++;
    }
  }

  IODReferences refs;
  for (size_t i = 0; i < j.src->n; i++) {
    const t3d_report_instance &in = j.src->inst[i];
    refs.add(new IODImageReference(g.meta.patient_id, in.study_uid, in.series_uid, in.sop_instance_uid,
                                   in.sop_class_uid));
  }
  seg->getCommonInstanceReference().addReferences(refs);

  DcmFileFormat out;
  DcmDataset &ds = *out.getDataset();
  need(seg->writeDataset(ds), "SEG encoding");
  mark_spatial_locations_preserved(ds);
  if (bits.size() % 2) bits.push_back(0);
  need(ds.putAndInsertUint8Array(DCM_PixelData, bits.data(), (unsigned long)bits.size()), "SEG pixel data");
  set_times(ds, r);
  save(out, j.path);
}

struct header_job {
  const char *path;
  t3d_report_instance *out;
};

void read_header(void *arg)
{
  header_job &j = *static_cast<header_job *>(arg);
  t3d_report_instance &o = *j.out;
  DcmFileFormat ff;
  load_header(ff, j.path);
  DcmDataset &ds = *ff.getDataset();
  std::snprintf(o.path, sizeof o.path, "%s", j.path);
  struct {
    DcmTagKey tag;
    char *dst;
    const char *name;
  } uids[] = {{DCM_SOPClassUID, o.sop_class_uid, "SOP Class UID"},
              {DCM_SOPInstanceUID, o.sop_instance_uid, "SOP Instance UID"},
              {DCM_StudyInstanceUID, o.study_uid, "Study Instance UID"},
              {DCM_SeriesInstanceUID, o.series_uid, "Series Instance UID"}};
  for (auto &u : uids) {
    OFString v;
    if (ds.findAndGetOFString(u.tag, v).bad() || v.empty() || v.length() >= T3D_UID_MAX)
      throw dcm_fail{T3D_ERR_FORMAT, std::string(j.path) + ": no valid " + u.name};
    std::snprintf(u.dst, T3D_UID_MAX, "%s", v.c_str());
  }
  o.has_ipp = 1;
  for (unsigned long i = 0; i < 3; i++)
    if (ds.findAndGetFloat64(DCM_ImagePositionPatient, o.ipp[i], i).bad()) o.has_ipp = 0;
  long frames = 1;
  if (ds.findAndGetLongInt(DCM_NumberOfFrames, frames).bad() || frames < 1) frames = 1;
  o.nframes = frames;
}

} // namespace

extern "C" t3d_status t3d_report_shim_read_header(const char *path, t3d_report_instance *out)
{
  header_job j{path, out};
  std::memset(out, 0, sizeof *out);
  return run_guarded("reading a source header", read_header, &j);
}

extern "C" t3d_status t3d_report_shim_write_sr(const t3d_report *r, const t3d_report_source *src,
                                               const char *series_uid, const char *instance_uid, int series_number,
                                               const char *path)
{
  sr_job j{r, src, series_uid, instance_uid, path, series_number};
  return run_guarded("DICOM SR", build_sr, &j);
}

extern "C" t3d_status t3d_report_shim_write_seg(const t3d_report *r, const t3d_report_source *src,
                                                const char *series_uid, const char *instance_uid, int series_number,
                                                const char *path)
{
  seg_job j{r, src, series_uid, instance_uid, path, series_number};
  return run_guarded("DICOM SEG", build_seg, &j);
}
