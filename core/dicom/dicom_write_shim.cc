// DCMTK side of the DICOM writer: builds one data set from attribute strings and pixels,
// compresses it with DCMTK's encoders (or wraps an OpenJPEG codestream) and saves it.
// The only C++ in t3d. Decides no attribute values (core/dicom/dicomwrite.c does); never throws.
#include "core/dicom/dicom_write_shim.h"

#include <mutex>
#include <new>
#include <string>

#include "dcmtk/config/osconfig.h"
#include "dcmtk/dcmdata/dcfilefo.h"
#include "dcmtk/dcmdata/dcdeftag.h"
#include "dcmtk/dcmdata/dcpixel.h"
#include "dcmtk/dcmdata/dcpixseq.h"
#include "dcmtk/dcmdata/dcpxitem.h"
#include "dcmtk/dcmdata/dcrleerg.h"
#include "dcmtk/dcmdata/dcxfer.h"
#include "dcmtk/dcmjpeg/djencode.h"
#include "dcmtk/dcmjpeg/djrplol.h"
#include "dcmtk/dcmjpls/djencode.h"
#include "dcmtk/dcmjpls/djrparam.h"

namespace {

std::once_flag codecs_once;

// Encoders are process-wide in DCMTK; registered once, never unregistered (other threads may
// be encoding; DCMTK's cleanup is not thread-safe).
void register_codecs()
{
  DcmRLEEncoderRegistration::registerCodecs();
  // EUC_never: lossless coding must not replace our SOP Instance UIDs.
  DJEncoderRegistration::registerCodecs(ECC_lossyYCbCr, EUC_never);
  // Raw (not "cooked") encoding: compress the stored values as they are, without DicomImage.
  DJLSEncoderRegistration::registerCodecs(0, 0, 0, 0, OFFalse, 0, OFTrue, EJLSUC_never);
}

E_TransferSyntax xfer_of(t3d_dicom_syntax s)
{
  switch (s) {
  case T3D_DICOM_SYNTAX_EXPLICIT_LE: return EXS_LittleEndianExplicit;
  case T3D_DICOM_SYNTAX_IMPLICIT_LE: return EXS_LittleEndianImplicit;
  case T3D_DICOM_SYNTAX_DEFLATED: return EXS_DeflatedLittleEndianExplicit;
  case T3D_DICOM_SYNTAX_RLE: return EXS_RLELossless;
  case T3D_DICOM_SYNTAX_JPEG_LOSSLESS: return EXS_JPEGProcess14SV1;
  case T3D_DICOM_SYNTAX_JPEGLS_LOSSLESS: return EXS_JPEGLSLossless;
  case T3D_DICOM_SYNTAX_J2K_LOSSLESS: return EXS_JPEG2000LosslessOnly;
  default: return EXS_Unknown;
  }
}

t3d_status write_file(const t3d_dcmw_image *img, const char *path)
{
  std::call_once(codecs_once, register_codecs);
  E_TransferSyntax xfer = xfer_of(img->syntax);
  if (xfer == EXS_Unknown)
    return t3d_error(T3D_ERR_INVALID_ARG, "%s: unknown transfer syntax %d", path, (int)img->syntax);

  DcmFileFormat ff;
  DcmDataset *ds = ff.getDataset();
  for (size_t i = 0; i < img->nattrs; i++) {
    const t3d_dcmw_attr *a = &img->attrs[i];
    DcmTag tag((Uint16)(a->tag >> 16), (Uint16)(a->tag & 0xffff));
    DcmItem *parent = ds;
    OFCondition c = EC_Normal;
    for (int d = 0; d < a->depth && d < T3D_DCMW_MAX_DEPTH && c.good(); d++) {
      DcmItem *sub = NULL;
      c = parent->findOrCreateSequenceItem(DcmTag((Uint16)(a->seq[d] >> 16), (Uint16)(a->seq[d] & 0xffff)), sub,
                                           a->item[d]);
      if (c.good() && !sub)
        c = EC_IllegalCall;
      parent = sub;
    }
    if (c.good())
      c = a->value ? parent->putAndInsertString(tag, a->value) : parent->insertEmptyElement(tag);
    if (c.bad())
      return t3d_error(T3D_ERR_INTERNAL, "%s: cannot set (%04x,%04x) (depth %d) to \"%s\": %s", path,
                       (unsigned)(a->tag >> 16), (unsigned)(a->tag & 0xffff), a->depth, a->value ? a->value : "",
                       c.text());
  }

  OFCondition c;
  if (img->encapsulated) {
    // Empty basic offset table item, then each frame's codestream as one fragment (even length).
    DcmPixelSequence *seq = new DcmPixelSequence(DCM_PixelSequenceTag);
    seq->insert(new DcmPixelItem(DCM_PixelItemTag));
    for (size_t f = 0; f < img->nframes && c.good(); f++) {
      DcmPixelItem *frag = new DcmPixelItem(DCM_PixelItemTag);
      seq->insert(frag);
      std::string bytes(reinterpret_cast<const char *>(img->encapsulated[f]), img->encapsulated_len[f]);
      if (bytes.size() % 2)
        bytes.push_back('\0');
      c = frag->putUint8Array(reinterpret_cast<const Uint8 *>(bytes.data()), (unsigned long)bytes.size());
    }
    DcmPixelData *pd = new DcmPixelData(DCM_PixelData);
    pd->putOriginalRepresentation(xfer, NULL, seq);
    ds->insert(pd, OFTrue);
  } else if (img->bits_allocated == 8) {
    c = ds->putAndInsertUint8Array(DCM_PixelData, static_cast<const Uint8 *>(img->pixels),
                                   (unsigned long)img->npixels);
  } else {
    c = ds->putAndInsertUint16Array(DCM_PixelData, static_cast<const Uint16 *>(img->pixels),
                                    (unsigned long)img->npixels);
  }
  if (c.bad())
    return t3d_error(T3D_ERR_INTERNAL, "%s: cannot store pixel data: %s", path, c.text());

  if (!img->encapsulated && DcmXfer(xfer).isEncapsulated()) {
    DJ_RPLossless jpeg_param(1, 0); // predictor 1 (selection value 1), no point transform
    DJLSRepresentationParameter jls_param(0, OFTrue);
    const DcmRepresentationParameter *param = NULL;
    if (xfer == EXS_JPEGProcess14SV1)
      param = &jpeg_param;
    else if (xfer == EXS_JPEGLSLossless)
      param = &jls_param;
    c = ds->chooseRepresentation(xfer, param);
    if (c.bad() || !ds->canWriteXfer(xfer))
      return t3d_error(T3D_ERR_UNSUPPORTED, "%s: DCMTK cannot encode these pixels as %s: %s", path,
                       DcmXfer(xfer).getXferName(), c.bad() ? c.text() : "no encoder for this syntax");
  }

  c = ff.saveFile(path, xfer, EET_ExplicitLength, EGL_recalcGL, EPD_noChange, 0, 0, EWM_fileformat);
  if (c.bad())
    return t3d_error(T3D_ERR_IO, "cannot write %s: %s", path, c.text());
  return T3D_OK;
}

} // namespace

extern "C" t3d_status t3d_dcmw_write_file(const t3d_dcmw_image *img, const char *path)
{
  try {
    return write_file(img, path);
  } catch (const std::bad_alloc &) {
    return t3d_error(T3D_ERR_NOMEM, "%s: out of memory in DCMTK", path);
  } catch (const std::exception &e) {
    return t3d_error(T3D_ERR_INTERNAL, "%s: DCMTK threw: %s", path, e.what());
  } catch (...) {
    return t3d_error(T3D_ERR_INTERNAL, "%s: DCMTK threw an unknown exception", path);
  }
}
