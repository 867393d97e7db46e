// Test-only DICOM generator: builds CT-like images with DCMTK, compresses them with DCMTK's
// encoders (JPEG lossless, JPEG-LS, RLE, deflate) or OpenJPEG (JPEG 2000, wrapped by hand into
// encapsulated Pixel Data). Test code: not a conforming DICOM writer (see core/dicomwrite).
#include "dcmtk/config/osconfig.h"

#include "dcmtk/dcmdata/dcpixel.h"
#include "dcmtk/dcmdata/dcpixseq.h"
#include "dcmtk/dcmdata/dcpxitem.h"
#include "dcmtk/dcmdata/dcrleerg.h"
#include "dcmtk/dcmdata/dcrlerp.h"
#include "dcmtk/dcmdata/dctk.h"
#include "dcmtk/dcmjpeg/djencode.h"
#include "dcmtk/dcmjpeg/djrplol.h"
#include "dcmtk/dcmjpls/djencode.h"
#include "dcmtk/dcmjpls/djrparam.h"

#include <openjpeg.h>

#include <cstdio>
#include <cstring>
#include <mutex>
#include <string>
#include <vector>

extern "C" {
#include "tests/dicom-testgen.h"
}

namespace {

std::once_flag enc_once;

void ensure_encoders()
{
  std::call_once(enc_once, [] {
    DJEncoderRegistration::registerCodecs();
    DJLSEncoderRegistration::registerCodecs();
    DcmRLEEncoderRegistration::registerCodecs();
  });
}

std::string ds(double v)
{
  char b[32];
  snprintf(b, sizeof b, "%.10g", v);
  return b;
}

std::string ds_multi(const double *v, int n)
{
  std::string s;
  for (int i = 0; i < n; i++) {
    if (i)
      s += "\\";
    s += ds(v[i]);
  }
  return s;
}

struct membuf {
  std::vector<unsigned char> data;
  size_t pos = 0;
};

OPJ_SIZE_T mw_write(void *src, OPJ_SIZE_T n, void *user)
{
  membuf *m = (membuf *)user;
  if (m->pos + n > m->data.size())
    m->data.resize(m->pos + n);
  memcpy(m->data.data() + m->pos, src, n);
  m->pos += n;
  return n;
}
OPJ_OFF_T mw_skip(OPJ_OFF_T n, void *user)
{
  membuf *m = (membuf *)user;
  m->pos += (size_t)n;
  if (m->pos > m->data.size())
    m->data.resize(m->pos);
  return n;
}
OPJ_BOOL mw_seek(OPJ_OFF_T n, void *user)
{
  ((membuf *)user)->pos = (size_t)n;
  return OPJ_TRUE;
}
void quiet(const char *, void *) {}

// One frame of stored values -> J2K codestream (reversible 5/3 or irreversible 9/7).
bool j2k_encode(const int32_t *vals, int rows, int cols, int prec, int sgnd, bool lossy, std::vector<unsigned char> &out)
{
  opj_image_cmptparm_t cp;
  memset(&cp, 0, sizeof cp);
  cp.dx = cp.dy = 1;
  cp.w = (OPJ_UINT32)cols;
  cp.h = (OPJ_UINT32)rows;
  cp.prec = (OPJ_UINT32)prec;
  cp.sgnd = (OPJ_UINT32)sgnd;
  opj_image_t *img = opj_image_create(1, &cp, OPJ_CLRSPC_GRAY);
  if (!img)
    return false;
  img->x1 = (OPJ_UINT32)cols;
  img->y1 = (OPJ_UINT32)rows;
  for (int i = 0; i < rows * cols; i++)
    img->comps[0].data[i] = vals[i];
  opj_cparameters_t par;
  opj_set_default_encoder_parameters(&par);
  par.tcp_numlayers = 1;
  par.cp_disto_alloc = 1;
  par.tcp_rates[0] = lossy ? 4.0f : 0.0f;
  par.irreversible = lossy ? 1 : 0;
  int minside = rows < cols ? rows : cols, res = 1;
  while (res < 6 && (1 << res) <= minside)
    res++;
  par.numresolution = res;
  opj_codec_t *codec = opj_create_compress(OPJ_CODEC_J2K);
  opj_set_error_handler(codec, quiet, NULL);
  opj_set_warning_handler(codec, quiet, NULL);
  opj_set_info_handler(codec, quiet, NULL);
  membuf m;
  opj_stream_t *st = opj_stream_create(1 << 16, OPJ_FALSE);
  opj_stream_set_user_data(st, &m, NULL);
  opj_stream_set_write_function(st, mw_write);
  opj_stream_set_skip_function(st, mw_skip);
  opj_stream_set_seek_function(st, mw_seek);
  bool ok = opj_setup_encoder(codec, &par, img) && opj_start_compress(codec, img, st) && opj_encode(codec, st) &&
            opj_end_compress(codec, st);
  opj_stream_destroy(st);
  opj_destroy_codec(codec);
  opj_image_destroy(img);
  if (ok)
    out = m.data;
  return ok;
}

void put(DcmItem *it, const DcmTagKey &tag, const std::string &v) { it->putAndInsertString(tag, v.c_str()); }

DcmItem *sub(DcmItem *parent, const DcmTagKey &seq)
{
  DcmItem *it = NULL;
  parent->findOrCreateSequenceItem(seq, it, 0);
  return it;
}

int fail(char *err, size_t n, const char *what, const OFCondition &c)
{
  snprintf(err, n, "%s: %s", what, c.text());
  return 1;
}

} // namespace

extern "C" void tg_defaults(tg_image *g)
{
  memset(g, 0, sizeof *g);
  g->rows = 8;
  g->cols = 10;
  g->frames = 1;
  g->bits_allocated = 16;
  g->bits_stored = 12;
  g->high_bit = 11;
  g->has_rescale = 1;
  g->slope = 1.0;
  g->intercept = -1024.0;
  g->iop[0] = 1;
  g->iop[4] = 1;
  g->pixel_spacing[0] = g->pixel_spacing[1] = 0.5;
  g->slice_thickness = 2.5;
  g->series_uid = "1.2.826.0.1.3680043.10.1.1";
  g->study_uid = "1.2.826.0.1.3680043.10.1";
  g->for_uid = "1.2.826.0.1.3680043.10.9";
  g->modality = "CT";
  g->image_type = "ORIGINAL\\PRIMARY\\AXIAL";
  g->photometric = "MONOCHROME2";
  g->patient_name = "Test^Patient";
  g->patient_id = "T3D-0001";
  g->study_date = "20240102";
  g->series_description = "test series";
  g->body_part = "CHEST";
  g->series_number = 1;
  g->instance_number = 1;
  g->syntax = "ele";
}

extern "C" int tg_write(const char *path, const tg_image *g, char *err, size_t errlen)
{
  try {
    ensure_encoders();
    DcmFileFormat ff;
    DcmDataset *d = ff.getDataset();
    char uid[100];
    bool enhanced = g->enhanced && g->frames >= 1;
    put(d, DCM_SOPClassUID, enhanced ? UID_EnhancedCTImageStorage : UID_CTImageStorage);
    put(d, DCM_SOPInstanceUID, g->sop_uid ? g->sop_uid : dcmGenerateUniqueIdentifier(uid, SITE_INSTANCE_UID_ROOT));
    if (g->charset)
      put(d, DCM_SpecificCharacterSet, g->charset);
    put(d, DCM_PatientName, g->patient_name);
    put(d, DCM_PatientID, g->patient_id);
    put(d, DCM_StudyInstanceUID, g->study_uid);
    put(d, DCM_StudyDate, g->study_date);
    if (g->series_uid)
      put(d, DCM_SeriesInstanceUID, g->series_uid);
    put(d, DCM_SeriesDescription, g->series_description);
    put(d, DCM_SeriesNumber, std::to_string(g->series_number));
    put(d, DCM_InstanceNumber, std::to_string(g->instance_number));
    put(d, DCM_Modality, g->modality);
    put(d, DCM_BodyPartExamined, g->body_part);
    put(d, DCM_FrameOfReferenceUID, g->for_uid);
    put(d, DCM_ImageType, g->image_type);
    put(d, DCM_PhotometricInterpretation, g->photometric);
    d->putAndInsertUint16(DCM_Rows, (Uint16)g->rows);
    d->putAndInsertUint16(DCM_Columns, (Uint16)g->cols);
    d->putAndInsertUint16(DCM_SamplesPerPixel, 1);
    d->putAndInsertUint16(DCM_BitsAllocated, (Uint16)g->bits_allocated);
    d->putAndInsertUint16(DCM_BitsStored, (Uint16)g->bits_stored);
    d->putAndInsertUint16(DCM_HighBit, (Uint16)g->high_bit);
    d->putAndInsertUint16(DCM_PixelRepresentation, (Uint16)g->pixel_rep);
    if (g->frames > 1 || enhanced)
      put(d, DCM_NumberOfFrames, std::to_string(g->frames));
    if (g->slice_thickness > 0 && !enhanced)
      put(d, DCM_SliceThickness, ds(g->slice_thickness));
    if (g->spacing_between_slices > 0)
      put(d, DCM_SpacingBetweenSlices, ds(g->spacing_between_slices));
    if (g->has_padding) {
      if (g->pixel_rep)
        d->putAndInsertSint16(DCM_PixelPaddingValue, (Sint16)g->padding_value);
      else
        d->putAndInsertUint16(DCM_PixelPaddingValue, (Uint16)g->padding_value);
    }
    if (!enhanced) {
      put(d, DCM_ImagePositionPatient, ds_multi(g->ipp, 3));
      put(d, DCM_ImageOrientationPatient, ds_multi(g->iop, 6));
      put(d, DCM_PixelSpacing, ds_multi(g->pixel_spacing, 2));
      if (g->has_rescale) {
        put(d, DCM_RescaleSlope, ds(g->slope));
        put(d, DCM_RescaleIntercept, ds(g->intercept));
      }
    } else {
      DcmItem *sh = sub(d, DCM_SharedFunctionalGroupsSequence);
      DcmItem *pm = sub(sh, DCM_PixelMeasuresSequence);
      put(pm, DCM_PixelSpacing, ds_multi(g->pixel_spacing, 2));
      put(pm, DCM_SliceThickness, ds(g->slice_thickness));
      put(sub(sh, DCM_PlaneOrientationSequence), DCM_ImageOrientationPatient, ds_multi(g->iop, 6));
      if (g->has_rescale && !g->frame_slope) {
        DcmItem *pv = sub(sh, DCM_PixelValueTransformationSequence);
        put(pv, DCM_RescaleSlope, ds(g->slope));
        put(pv, DCM_RescaleIntercept, ds(g->intercept));
        put(pv, DCM_RescaleType, "HU");
      }
      for (int f = 0; f < g->frames; f++) {
        DcmItem *pf = NULL;
        d->findOrCreateSequenceItem(DCM_PerFrameFunctionalGroupsSequence, pf, -2);
        const double *p = g->frame_ipp ? g->frame_ipp + 3 * f : g->ipp;
        put(sub(pf, DCM_PlanePositionSequence), DCM_ImagePositionPatient, ds_multi(p, 3));
        if (g->frame_slope) {
          DcmItem *pv = sub(pf, DCM_PixelValueTransformationSequence);
          put(pv, DCM_RescaleSlope, ds(g->frame_slope[f]));
          put(pv, DCM_RescaleIntercept, ds(g->frame_intercept[f]));
          put(pv, DCM_RescaleType, "HU");
        }
      }
    }

    // Native pixel words: the stored value sits at high_bit, two's complement within bits_stored;
    // signed values with high_bit at the top of bits_stored are sign-extended over the unused
    // bits, as scanners write them (and as DCMTK's JPEG-LS encoder expects).
    size_t npix = (size_t)g->rows * g->cols * g->frames;
    int shift = g->high_bit + 1 - g->bits_stored;
    uint32_t mask = (g->bits_stored >= 32) ? 0xFFFFFFFFu : ((1u << g->bits_stored) - 1);
    if (g->pixel_rep && shift == 0)
      mask = 0xFFFFFFFFu;
    std::string syn = g->syntax ? g->syntax : "ele";
    bool j2k = syn == "j2k" || syn == "j2k-lossy", mpeg = syn == "mpeg2";
    if (!j2k && !mpeg) {
      if (g->bits_allocated == 8) {
        std::vector<Uint8> w(npix);
        for (size_t i = 0; i < npix; i++)
          w[i] = (Uint8)((((uint32_t)g->values[i]) & mask) << shift);
        d->putAndInsertUint8Array(DCM_PixelData, w.data(), (unsigned long)npix);
      } else {
        std::vector<Uint16> w(npix);
        for (size_t i = 0; i < npix; i++)
          w[i] = (Uint16)((((uint32_t)g->values[i]) & mask) << shift);
        d->putAndInsertUint16Array(DCM_PixelData, w.data(), (unsigned long)npix);
      }
    } else {
      E_TransferSyntax xs = mpeg ? EXS_MPEG2MainProfileAtMainLevel
                                 : (syn == "j2k" ? EXS_JPEG2000LosslessOnly : EXS_JPEG2000);
      DcmPixelSequence *seq = new DcmPixelSequence(DcmTag(DCM_PixelData, EVR_OB));
      seq->insert(new DcmPixelItem(DcmTag(DCM_Item, EVR_OB))); // empty basic offset table
      size_t fpix = (size_t)g->rows * g->cols;
      for (int f = 0; f < g->frames; f++) {
        std::vector<unsigned char> cs;
        if (mpeg) {
          cs.assign(64, 0x5A);
        } else if (!j2k_encode(g->values + f * fpix, g->rows, g->cols, g->bits_stored, g->pixel_rep,
                               syn == "j2k-lossy", cs)) {
          snprintf(err, errlen, "OpenJPEG encoding failed");
          delete seq;
          return 1;
        }
        if (cs.size() & 1)
          cs.push_back(0);
        DcmPixelItem *it = new DcmPixelItem(DcmTag(DCM_Item, EVR_OB));
        it->putUint8Array(cs.data(), (unsigned long)cs.size());
        seq->insert(it);
      }
      DcmPixelData *pd = new DcmPixelData(DCM_PixelData);
      pd->putOriginalRepresentation(xs, NULL, seq);
      d->insert(pd, OFTrue);
      OFCondition c = ff.saveFile(path, xs);
      return c.good() ? 0 : fail(err, errlen, path, c);
    }

    E_TransferSyntax xs = EXS_LittleEndianExplicit;
    OFCondition c;
    if (syn == "ile")
      xs = EXS_LittleEndianImplicit;
    else if (syn == "ebe")
      xs = EXS_BigEndianExplicit;
    else if (syn == "deflate")
      xs = EXS_DeflatedLittleEndianExplicit;
    else if (syn == "rle") {
      xs = EXS_RLELossless;
      DcmRLERepresentationParameter rp;
      c = d->chooseRepresentation(xs, &rp);
    } else if (syn == "jpeg-ll") {
      xs = EXS_JPEGProcess14SV1;
      DJ_RPLossless rp;
      c = d->chooseRepresentation(xs, &rp);
    } else if (syn == "jpegls") {
      xs = EXS_JPEGLSLossless;
      DJLSRepresentationParameter rp(0, OFTrue);
      c = d->chooseRepresentation(xs, &rp);
    } else if (syn != "ele") {
      snprintf(err, errlen, "unknown syntax %s", syn.c_str());
      return 1;
    }
    if (c.bad())
      return fail(err, errlen, "chooseRepresentation", c);
    if (!d->canWriteXfer(xs)) {
      snprintf(err, errlen, "cannot write %s", syn.c_str());
      return 1;
    }
    c = ff.saveFile(path, xs);
    return c.good() ? 0 : fail(err, errlen, path, c);
  } catch (...) {
    snprintf(err, errlen, "exception");
    return 1;
  }
}

extern "C" int tg_write_dicomdir(const char *dir, const char *const *rel, size_t n, char *err, size_t errlen)
{
  try {
    DcmFileFormat ff;
    DcmDataset *d = ff.getDataset();
    put(d, DCM_FileSetID, "T3DTEST");
    for (size_t i = 0; i < n; i++) {
      DcmItem *rec = NULL;
      d->findOrCreateSequenceItem(DCM_DirectoryRecordSequence, rec, -2);
      put(rec, DCM_DirectoryRecordType, "IMAGE");
      std::string id = rel[i];
      for (auto &ch : id)
        if (ch == '/')
          ch = '\\';
      put(rec, DCM_ReferencedFileID, id);
    }
    DcmMetaInfo *mi = ff.getMetaInfo();
    put(mi, DCM_MediaStorageSOPClassUID, UID_MediaStorageDirectoryStorage);
    char uid[100];
    put(mi, DCM_MediaStorageSOPInstanceUID, dcmGenerateUniqueIdentifier(uid, SITE_INSTANCE_UID_ROOT));
    std::string path = std::string(dir) + "/DICOMDIR";
    OFCondition c = ff.saveFile(path.c_str(), EXS_LittleEndianExplicit);
    return c.good() ? 0 : fail(err, errlen, path.c_str(), c);
  } catch (...) {
    snprintf(err, errlen, "exception");
    return 1;
  }
}
