// The only C++ in libt3d: a thin layer that asks DCMTK for header attributes, DICOMDIR records
// and pixel bytes, and hands them to core/dicom/dicom.c as plain C structs. It makes no policy
// decisions (grouping, sorting, rescale, geometry) and never lets an exception or abort escape.
#include "dcmtk/config/osconfig.h"

#include "dcmtk/dcmdata/dcpixel.h"
#include "dcmtk/dcmdata/dcpixseq.h"
#include "dcmtk/dcmdata/dcpxitem.h"
#include "dcmtk/dcmdata/dcrledrg.h"
#include "dcmtk/dcmdata/dctk.h"
#include "dcmtk/dcmjpeg/djdecode.h"
#include "dcmtk/dcmjpls/djdecode.h"
#include "dcmtk/oflog/oflog.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <new>

extern "C" {
#include "core/dicom/dicom_internal.h"
#include "core/base/log.h"
}

namespace {

std::once_flag codecs_once;

// Decoders are process-wide in DCMTK; registering them once is all the set-up there is. DCMTK's
// own logging is turned down to fatal unless t3d logs at debug: our notes and errors say
// what went wrong, and a viewer's stderr should not fill with parser chatter.
void ensure_codecs()
{
  std::call_once(codecs_once, [] {
    DJDecoderRegistration::registerCodecs();
    DJLSDecoderRegistration::registerCodecs();
    DcmRLEDecoderRegistration::registerCodecs();
    OFLog::configure(t3d_log_get_level() == T3D_LOG_DEBUG ? OFLogger::WARN_LOG_LEVEL : OFLogger::FATAL_LOG_LEVEL);
  });
}

void copy_str(char *dst, size_t cap, const OFString &s)
{
  // Trailing spaces are DICOM padding; leading ones are not meaningful for our fields either.
  size_t b = 0, e = s.size();
  while (b < e && (s[b] == ' ' || s[b] == '\0'))
    b++;
  while (e > b && (s[e - 1] == ' ' || s[e - 1] == '\0'))
    e--;
  size_t n = e - b < cap - 1 ? e - b : cap - 1;
  memcpy(dst, s.data() + b, n);
  dst[n] = '\0';
}

void get_str(DcmItem *it, const DcmTagKey &tag, char *dst, size_t cap, bool all_values = false)
{
  OFString s;
  OFCondition c = all_values ? it->findAndGetOFStringArray(tag, s) : it->findAndGetOFString(tag, s);
  if (c.good())
    copy_str(dst, cap, s);
}

bool get_long(DcmItem *it, const DcmTagKey &tag, long *out)
{
  long v = 0;
  if (it->findAndGetLongInt(tag, v).bad())
    return false;
  *out = v;
  return true;
}

int get_int(DcmItem *it, const DcmTagKey &tag, int dflt)
{
  long v = 0;
  return get_long(it, tag, &v) ? (int)v : dflt;
}

bool get_f64s(DcmItem *it, const DcmTagKey &tag, double *out, int n)
{
  for (int i = 0; i < n; i++) {
    Float64 v = 0;
    if (it->findAndGetFloat64(tag, v, (unsigned long)i).bad())
      return false;
    out[i] = v;
  }
  return true;
}

DcmItem *sub_item(DcmItem *it, const DcmTagKey &seq)
{
  DcmItem *sub = NULL;
  if (!it || it->findAndGetSequenceItem(seq, sub, 0).bad())
    return NULL;
  return sub;
}

// Reads the attributes of one functional-group item into g (only those present override).
void read_groups(DcmItem *grp, t3d_dcm_geom *g)
{
  if (!grp)
    return;
  if (DcmItem *pp = sub_item(grp, DCM_PlanePositionSequence))
    if (get_f64s(pp, DCM_ImagePositionPatient, g->ipp, 3))
      g->has_ipp = 1;
  if (DcmItem *po = sub_item(grp, DCM_PlaneOrientationSequence))
    if (get_f64s(po, DCM_ImageOrientationPatient, g->iop, 6))
      g->has_iop = 1;
  if (DcmItem *pm = sub_item(grp, DCM_PixelMeasuresSequence))
    if (get_f64s(pm, DCM_PixelSpacing, g->pixel_spacing, 2))
      g->has_spacing = 1;
  if (DcmItem *pv = sub_item(grp, DCM_PixelValueTransformationSequence)) {
    double s = 0, i = 0;
    if (get_f64s(pv, DCM_RescaleSlope, &s, 1) && get_f64s(pv, DCM_RescaleIntercept, &i, 1)) {
      g->slope = s;
      g->intercept = i;
      g->has_rescale = 1;
    }
  }
}

t3d_status read_header(const char *path, t3d_dcm_header *h)
{
  DcmFileFormat ff;
  // Values longer than 4 KiB (Pixel Data above all) stay on disk: listing a folder of
  // thousands of slices reads only their headers.
  OFCondition c = ff.loadFile(path, EXS_Unknown, EGL_noChange, 4096, ERM_autoDetect);
  if (c.bad()) {
    // A file cut short in its Pixel Data still has a good header: keep it (marked damaged) so
    // that its series refuses to load instead of silently missing a slice.
    DcmFileFormat head;
    OFCondition c2 = head.loadFileUntilTag(path, EXS_Unknown, EGL_noChange, 4096, ERM_autoDetect, DCM_PixelData);
    if (c2.bad() || !head.getDataset()->tagExists(DCM_SOPInstanceUID) || !head.getDataset()->tagExists(DCM_Rows))
      return t3d_error(T3D_ERR_FORMAT, "%s: not readable as DICOM: %s", path, c.text());
    h->damaged = 1;
    snprintf(h->damage, sizeof h->damage, "%s", c.text());
    ff = head;
  }
  DcmDataset *ds = ff.getDataset();
  DcmMetaInfo *mi = ff.getMetaInfo();
  // Names and descriptions reach GTK and JSON, which want UTF-8. A failed conversion leaves the
  // bytes as they were; dicom.c then replaces whatever is still not UTF-8.
  OFString charset;
  if (ds->findAndGetOFStringArray(DCM_SpecificCharacterSet, charset).good() && !charset.empty() &&
      charset != "ISO_IR 192")
    ds->convertToUTF8();

  char media_class[T3D_UID_MAX] = "";
  if (mi)
    get_str(mi, DCM_MediaStorageSOPClassUID, media_class, sizeof media_class);
  // A DICOMDIR by its meta header, or by its records when a writer mislabelled the meta header.
  h->is_dicomdir = strcmp(media_class, UID_MediaStorageDirectoryStorage) == 0 || ds->tagExists(DCM_DirectoryRecordSequence);
  snprintf(h->transfer_syntax, sizeof h->transfer_syntax, "%s", DcmXfer(ds->getOriginalXfer()).getXferID());

  get_str(ds, DCM_SOPClassUID, h->sop_class_uid, sizeof h->sop_class_uid);
  if (!h->sop_class_uid[0])
    snprintf(h->sop_class_uid, sizeof h->sop_class_uid, "%s", media_class);
  get_str(ds, DCM_SOPInstanceUID, h->sop_instance_uid, sizeof h->sop_instance_uid);

  t3d_volume_meta *m = &h->meta;
  get_str(ds, DCM_PatientName, m->patient_name, sizeof m->patient_name);
  get_str(ds, DCM_PatientID, m->patient_id, sizeof m->patient_id);
  get_str(ds, DCM_PatientBirthDate, m->patient_birth_date, sizeof m->patient_birth_date);
  get_str(ds, DCM_PatientSex, m->patient_sex, sizeof m->patient_sex);
  get_str(ds, DCM_StudyInstanceUID, m->study_uid, sizeof m->study_uid);
  get_str(ds, DCM_StudyDate, m->study_date, sizeof m->study_date);
  get_str(ds, DCM_StudyTime, m->study_time, sizeof m->study_time);
  get_str(ds, DCM_StudyDescription, m->study_description, sizeof m->study_description);
  get_str(ds, DCM_AccessionNumber, m->accession_number, sizeof m->accession_number);
  get_str(ds, DCM_SeriesInstanceUID, m->series_uid, sizeof m->series_uid);
  get_str(ds, DCM_SeriesDescription, m->series_description, sizeof m->series_description);
  get_str(ds, DCM_SeriesNumber, m->series_number, sizeof m->series_number);
  get_str(ds, DCM_Modality, m->modality, sizeof m->modality);
  get_str(ds, DCM_BodyPartExamined, m->body_part, sizeof m->body_part);
  get_str(ds, DCM_FrameOfReferenceUID, m->frame_of_reference_uid, sizeof m->frame_of_reference_uid);
  get_str(ds, DCM_ImageType, h->image_type, sizeof h->image_type, true);
  get_str(ds, DCM_PhotometricInterpretation, h->photometric, sizeof h->photometric);

  long v = 0;
  h->has_instance_number = get_long(ds, DCM_InstanceNumber, &v);
  h->instance_number = (int)v;
  h->has_pixel_data = ds->tagExists(DCM_PixelData) || h->damaged ? 1 : 0;
  h->rows = get_int(ds, DCM_Rows, 0);
  h->cols = get_int(ds, DCM_Columns, 0);
  h->frames = get_int(ds, DCM_NumberOfFrames, 1);
  h->samples_per_pixel = get_int(ds, DCM_SamplesPerPixel, 1);
  h->bits_allocated = get_int(ds, DCM_BitsAllocated, 0);
  h->bits_stored = get_int(ds, DCM_BitsStored, h->bits_allocated);
  h->high_bit = get_int(ds, DCM_HighBit, h->bits_stored - 1);
  h->pixel_rep = get_int(ds, DCM_PixelRepresentation, 0);
  h->has_padding = get_long(ds, DCM_PixelPaddingValue, &h->padding_value);
  h->has_padding_range = get_long(ds, DCM_PixelPaddingRangeLimit, &h->padding_range_limit);
  get_f64s(ds, DCM_SliceThickness, &h->slice_thickness, 1);
  get_f64s(ds, DCM_SpacingBetweenSlices, &h->spacing_between_slices, 1);
  h->has_gantry_tilt = get_f64s(ds, DCM_GantryDetectorTilt, &h->gantry_tilt, 1);
  E_TransferSyntax oxfer = ds->getOriginalXfer();
  if (!h->damaged && (oxfer == EXS_LittleEndianExplicit || oxfer == EXS_LittleEndianImplicit) && ds->card() > 0) {
    DcmElement *last = ds->getElement(ds->card() - 1);
    Uint32 len = last ? last->getLengthField() : 0;
    if (last && last->getTag() == DCM_PixelData && len != DCM_UndefinedLength && len > 0) {
      h->native_pixel_length = len;
      h->native_explicit_vr = oxfer == EXS_LittleEndianExplicit;
    }
  }

  t3d_dcm_geom *g = &h->geom;
  g->has_ipp = get_f64s(ds, DCM_ImagePositionPatient, g->ipp, 3);
  g->has_iop = get_f64s(ds, DCM_ImageOrientationPatient, g->iop, 6);
  g->has_spacing = get_f64s(ds, DCM_PixelSpacing, g->pixel_spacing, 2);
  g->slope = 1.0;
  g->intercept = 0.0;
  if (get_f64s(ds, DCM_RescaleSlope, &g->slope, 1) && get_f64s(ds, DCM_RescaleIntercept, &g->intercept, 1))
    g->has_rescale = 1;
  else {
    g->slope = 1.0;
    g->intercept = 0.0;
  }

  // Enhanced multi-frame: shared groups apply to every frame, per-frame groups override.
  DcmItem *shared = sub_item(ds, DCM_SharedFunctionalGroupsSequence);
  DcmSequenceOfItems *per = NULL;
  if (ds->findAndGetSequence(DCM_PerFrameFunctionalGroupsSequence, per).bad())
    per = NULL;
  if (h->frames > 1000000)
    return t3d_error(T3D_ERR_FORMAT, "%s: Number of Frames %d is implausible", path, h->frames);
  if ((shared || per) && h->frames > 0) {
    h->frame_geom = (t3d_dcm_geom *)calloc((size_t)h->frames, sizeof *h->frame_geom);
    if (!h->frame_geom)
      return t3d_error(T3D_ERR_NOMEM, "%s: out of memory for %d frame descriptions", path, h->frames);
    h->n_frame_geom = h->frames;
    for (int f = 0; f < h->frames; f++) {
      t3d_dcm_geom *fg = &h->frame_geom[f];
      fg->slope = 1.0;
      read_groups(shared, fg);
      if (per && (unsigned long)f < per->card())
        read_groups(per->getItem((unsigned long)f), fg);
    }
  }

  DcmElement *grid = NULL;
  if (ds->findAndGetElement(DCM_GridFrameOffsetVector, grid).good() && grid && grid->getVM() > 0) {
    unsigned long n = grid->getVM();
    h->grid_offsets = (double *)calloc(n, sizeof(double));
    if (!h->grid_offsets)
      return t3d_error(T3D_ERR_NOMEM, "%s: out of memory for the grid frame offsets", path);
    h->n_grid_offsets = (int)n;
    for (unsigned long i = 0; i < n; i++) {
      Float64 d = 0;
      grid->getFloat64(d, i);
      h->grid_offsets[i] = d;
    }
  }
  return T3D_OK;
}

t3d_status read_dicomdir(const char *path, char ***files, size_t *nfiles)
{
  DcmFileFormat ff;
  OFCondition c = ff.loadFile(path, EXS_Unknown, EGL_noChange, 4096, ERM_autoDetect);
  if (c.bad())
    return t3d_error(T3D_ERR_FORMAT, "%s: DICOMDIR not readable: %s", path, c.text());
  DcmSequenceOfItems *seq = NULL;
  if (ff.getDataset()->findAndGetSequence(DCM_DirectoryRecordSequence, seq).bad() || !seq)
    return t3d_error(T3D_ERR_FORMAT, "%s: DICOMDIR has no Directory Record Sequence", path);
  unsigned long n = seq->card();
  char **list = (char **)calloc(n ? n : 1, sizeof *list);
  if (!list)
    return t3d_error(T3D_ERR_NOMEM, "%s: out of memory listing %lu DICOMDIR records", path, n);
  size_t k = 0;
  for (unsigned long i = 0; i < n; i++) {
    OFString id;
    if (seq->getItem(i)->findAndGetOFStringArray(DCM_ReferencedFileID, id).bad() || id.empty())
      continue;
    char *p = (char *)malloc(id.size() + 1);
    if (!p) {
      for (size_t j = 0; j < k; j++)
        free(list[j]);
      free(list);
      return t3d_error(T3D_ERR_NOMEM, "%s: out of memory listing DICOMDIR records", path);
    }
    copy_str(p, id.size() + 1, id);
    for (char *q = p; *q; q++)
      if (*q == '\\')
        *q = '/';
    list[k++] = p;
  }
  *files = list;
  *nfiles = k;
  return T3D_OK;
}

t3d_status read_pixels(const char *path, t3d_dcm_pixels *px)
{
  DcmFileFormat ff;
  OFCondition c = ff.loadFile(path);
  if (c.bad())
    return t3d_error(T3D_ERR_FORMAT, "%s: not readable as DICOM: %s", path, c.text());
  DcmDataset *ds = ff.getDataset();
  E_TransferSyntax xfer = ds->getOriginalXfer();
  DcmXfer x(xfer);
  DcmElement *el = NULL;
  if (ds->findAndGetElement(DCM_PixelData, el).bad() || !el)
    return t3d_error(T3D_ERR_FORMAT, "%s: no Pixel Data", path);
  if (el->ident() != EVR_PixelData) // e.g. declared with a VR that is not OB/OW
    return t3d_error(T3D_ERR_FORMAT, "%s: Pixel Data has VR %s, not OB/OW", path, DcmVR(el->getVR()).getVRName());
  DcmPixelData *pd = OFstatic_cast(DcmPixelData *, el);

  // JPEG 2000 (OpenJPEG) and RLE (dicom_rle.c) are decoded by us from the fragments.
  if (xfer == EXS_JPEG2000LosslessOnly || xfer == EXS_JPEG2000 || xfer == EXS_RLELossless) {
    DcmPixelSequence *seq = NULL;
    c = pd->getEncapsulatedRepresentation(xfer, NULL, seq);
    if (c.bad() || !seq)
      return t3d_error(T3D_ERR_FORMAT, "%s: %s Pixel Data is not encapsulated: %s", path, x.getXferName(), c.text());
    unsigned long n = seq->card();
    if (n < 2)
      return t3d_error(T3D_ERR_FORMAT, "%s: %s Pixel Data has no fragments", path, x.getXferName());
    px->is_rle = xfer == EXS_RLELossless;
    px->is_j2k = !px->is_rle;
    DcmPixelItem *item = NULL;
    Uint8 *bytes = NULL;
    if (seq->getItem(item, 0).good() && item && item->getLength() >= 4 && item->getUint8Array(bytes).good() && bytes) {
      px->noffsets = item->getLength() / 4;
      px->offsets = (uint32_t *)calloc(px->noffsets, sizeof(uint32_t));
      if (!px->offsets)
        return t3d_error(T3D_ERR_NOMEM, "%s: out of memory for the offset table", path);
      for (size_t i = 0; i < px->noffsets; i++) // always little-endian in the file
        px->offsets[i] = (uint32_t)bytes[4 * i] | (uint32_t)bytes[4 * i + 1] << 8 | (uint32_t)bytes[4 * i + 2] << 16 |
                         (uint32_t)bytes[4 * i + 3] << 24;
    }
    px->frags = (t3d_dcm_fragment *)calloc(n - 1, sizeof *px->frags);
    if (!px->frags)
      return t3d_error(T3D_ERR_NOMEM, "%s: out of memory for %lu fragments", path, n - 1);
    for (unsigned long i = 1; i < n; i++) {
      item = NULL;
      bytes = NULL;
      if (seq->getItem(item, i).bad() || !item)
        return t3d_error(T3D_ERR_FORMAT, "%s: %s fragment %lu unreadable", path, x.getXferName(), i);
      Uint32 len = item->getLength();
      t3d_dcm_fragment *f = &px->frags[px->nfrags++];
      f->data = (uint8_t *)malloc(len ? len : 1);
      if (!f->data)
        return t3d_error(T3D_ERR_NOMEM, "%s: out of memory for a %u-byte fragment", path, (unsigned)len);
      if (len && (item->getUint8Array(bytes).bad() || !bytes))
        return t3d_error(T3D_ERR_FORMAT, "%s: %s fragment %lu unreadable", path, x.getXferName(), i);
      if (len)
        memcpy(f->data, bytes, len);
      f->size = len;
    }
    return T3D_OK;
  }

  c = ds->chooseRepresentation(EXS_LittleEndianExplicit, NULL);
  if (c.bad() || !ds->canWriteXfer(EXS_LittleEndianExplicit))
    return t3d_error(T3D_ERR_UNSUPPORTED, "%s: transfer syntax %s (%s) cannot be decoded: %s", path, x.getXferID(),
                     x.getXferName(), c.bad() ? c.text() : "no codec registered for it");
  long ba = 0;
  if (!get_long(ds, DCM_BitsAllocated, &ba) || (ba != 8 && ba != 16))
    return t3d_error(T3D_ERR_UNSUPPORTED, "%s: Bits Allocated %ld after decoding; t3d reads 8 or 16", path, ba);
  px->bits_allocated = (int)ba;
  if (ba == 16) {
    Uint16 *w = NULL;
    if (pd->getUint16Array(w).bad() || !w)
      return t3d_error(T3D_ERR_FORMAT, "%s: Pixel Data unreadable (truncated file?)", path);
    px->raw_size = pd->getLength(EXS_LittleEndianExplicit) & ~(Uint32)1;
    px->raw = (uint8_t *)malloc(px->raw_size ? px->raw_size : 1);
    if (!px->raw)
      return t3d_error(T3D_ERR_NOMEM, "%s: out of memory for %zu bytes of pixels", path, px->raw_size);
    memcpy(px->raw, w, px->raw_size);
  } else {
    Uint8 *b = NULL;
    if (pd->getUint8Array(b).bad() || !b)
      return t3d_error(T3D_ERR_FORMAT, "%s: Pixel Data unreadable (truncated file?)", path);
    px->raw_size = pd->getLength(EXS_LittleEndianExplicit);
    px->raw = (uint8_t *)malloc(px->raw_size ? px->raw_size : 1);
    if (!px->raw)
      return t3d_error(T3D_ERR_NOMEM, "%s: out of memory for %zu bytes of pixels", path, px->raw_size);
    memcpy(px->raw, b, px->raw_size);
  }
  return T3D_OK;
}

} // namespace

extern "C" {

t3d_status t3d_dcm_read_header(const char *path, t3d_dcm_header *h)
{
  memset(h, 0, sizeof *h);
  try {
    ensure_codecs();
    t3d_status s = read_header(path, h);
    if (s != T3D_OK)
      t3d_dcm_header_clear(h);
    return s;
  } catch (const std::bad_alloc &) {
    t3d_dcm_header_clear(h);
    return t3d_error(T3D_ERR_NOMEM, "%s: out of memory reading the DICOM header", path);
  } catch (...) {
    t3d_dcm_header_clear(h);
    return t3d_error(T3D_ERR_FORMAT, "%s: DCMTK failed reading the DICOM header", path);
  }
}

void t3d_dcm_header_clear(t3d_dcm_header *h)
{
  if (!h)
    return;
  free(h->frame_geom);
  free(h->grid_offsets);
  h->frame_geom = NULL;
  h->grid_offsets = NULL;
  h->n_frame_geom = h->n_grid_offsets = 0;
}

t3d_status t3d_dcm_read_dicomdir(const char *path, char ***files, size_t *nfiles)
{
  *files = NULL;
  *nfiles = 0;
  try {
    ensure_codecs();
    return read_dicomdir(path, files, nfiles);
  } catch (const std::bad_alloc &) {
    return t3d_error(T3D_ERR_NOMEM, "%s: out of memory reading the DICOMDIR", path);
  } catch (...) {
    return t3d_error(T3D_ERR_FORMAT, "%s: DCMTK failed reading the DICOMDIR", path);
  }
}

t3d_status t3d_dcm_read_pixels(const char *path, t3d_dcm_pixels *px)
{
  memset(px, 0, sizeof *px);
  try {
    ensure_codecs();
    t3d_status s = read_pixels(path, px);
    if (s != T3D_OK)
      t3d_dcm_pixels_clear(px);
    return s;
  } catch (const std::bad_alloc &) {
    t3d_dcm_pixels_clear(px);
    return t3d_error(T3D_ERR_NOMEM, "%s: out of memory reading Pixel Data", path);
  } catch (...) {
    t3d_dcm_pixels_clear(px);
    return t3d_error(T3D_ERR_FORMAT, "%s: DCMTK failed reading Pixel Data", path);
  }
}

void t3d_dcm_pixels_clear(t3d_dcm_pixels *px)
{
  if (!px)
    return;
  free(px->raw);
  for (size_t i = 0; i < px->nfrags; i++)
    free(px->frags[i].data);
  free(px->frags);
  free(px->offsets);
  memset(px, 0, sizeof *px);
}

const char *t3d_dcm_xfer_name(const char *uid)
{
  try {
    DcmXfer x(uid);
    if (x.getXfer() == EXS_Unknown)
      return "unknown transfer syntax";
    return x.getXferName();
  } catch (...) {
    return "unknown transfer syntax";
  }
}

int t3d_dcm_xfer_is_native(const char *uid)
{
  try {
    DcmXfer x(uid);
    return x.getXfer() != EXS_Unknown && !x.isEncapsulated() && x.getXfer() != EXS_DeflatedLittleEndianExplicit;
  } catch (...) {
    return 0;
  }
}

int t3d_dcm_xfer_is_j2k(const char *uid)
{
  return strcmp(uid, UID_JPEG2000LosslessOnlyTransferSyntax) == 0 || strcmp(uid, UID_JPEG2000TransferSyntax) == 0;
}

} // extern "C"
