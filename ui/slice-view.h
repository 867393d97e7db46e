/* t3d_slice_view: one orthogonal view (axial, coronal or sagittal) of a t3d_volume drawn with
 * OpenGL 3.3 core (GtkGLArea + libepoxy): the HU slice with window/level in the fragment shader,
 * a label overlay through a colour table (nearest sampling), crosshair, orientation letters and
 * corner annotations. Knows nothing of plugins or of the viewer's windows: the owner feeds it
 * state and hears about user actions through callbacks.
 *
 * Display orientation is radiological whatever the acquisition: each volume axis is matched to
 * the patient axis (L, P, S) it runs closest to (direction cosines), and
 *   axial    screen right = patient left,      screen down = posterior (anterior up),
 *   coronal  screen right = patient left,      screen down = inferior  (superior up),
 *   sagittal screen right = posterior,         screen down = inferior  (anterior left).
 * Oblique acquisitions are shown in the nearest orthogonal plane without resampling. */
#ifndef T3D_UI_SLICE_VIEW_H
#define T3D_UI_SLICE_VIEW_H

#include <stdint.h>

#include <gtk/gtk.h>

#include "core/base/volume.h"

G_BEGIN_DECLS

typedef enum {
  T3D_VIEW_AXIAL = 0,
  T3D_VIEW_CORONAL = 1,
  T3D_VIEW_SAGITTAL = 2
} t3d_view_plane;

typedef struct t3d_slice_view t3d_slice_view;

typedef struct {
  /* The user moved the crosshair (click) or the slice (scroll, keys): voxel (i, j, k). */
  void (*crosshair_changed)(t3d_slice_view *view, const int64_t voxel[3], void *user_data);
  /* The user dragged window/level: centre and width in HU. */
  void (*window_changed)(t3d_slice_view *view, double center, double width, void *user_data);
  /* The pointer moved: inside = FALSE when it left the image; voxel: fractional index. */
  void (*pointer_moved)(t3d_slice_view *view, gboolean inside, const double voxel[3], void *user_data);
  /* A frame was drawn (tests count them). */
  void (*rendered)(t3d_slice_view *view, void *user_data);
} t3d_slice_view_callbacks;

/* A new view; its widget (t3d_slice_view_widget) owns it: the view is freed when the widget is
 * destroyed. callbacks is copied; user_data is passed back. */
t3d_slice_view *t3d_slice_view_new(t3d_view_plane plane, const t3d_slice_view_callbacks *callbacks,
                                   void *user_data);
GtkWidget *t3d_slice_view_widget(t3d_slice_view *view);
t3d_view_plane t3d_slice_view_plane(const t3d_slice_view *view);

/* Borrowed: the volume must outlive the view or be replaced (NULL clears). Resets zoom and pan
 * and drops the overlay. */
void t3d_slice_view_set_volume(t3d_slice_view *view, const t3d_volume *volume);
void t3d_slice_view_set_crosshair(t3d_slice_view *view, const int64_t voxel[3]);
void t3d_slice_view_set_window(t3d_slice_view *view, double center, double width);
/* labels: nx*ny*nz bytes on the volume grid, borrowed (NULL removes the overlay). lut: 256
 * RGBA entries (non-premultiplied), alpha already scaled by opacity and visibility; copied. */
void t3d_slice_view_set_overlay(t3d_slice_view *view, const uint8_t *labels, const uint8_t lut[256][4]);
/* Corner texts (top-left, top-right, bottom-left, bottom-right), any may be NULL; copied. */
void t3d_slice_view_set_annotations(t3d_slice_view *view, const char *const corners[4]);
void t3d_slice_view_set_zoom(t3d_slice_view *view, double zoom); /* 1 = fit */
/* Zoom 1 and no pan: the whole image fitted and centred (the Home key). */
void t3d_slice_view_fit(t3d_slice_view *view);
/* The next frame drawn is written as a PNG to path (the GL framebuffer read back exactly). */
void t3d_slice_view_request_screenshot(t3d_slice_view *view, const char *path);
/* GL_RENDERER of the view's context, or "" before the first frame. */
const char *t3d_slice_view_renderer(const t3d_slice_view *view);
/* Last GL or screenshot error ("" when none). */
const char *t3d_slice_view_error(const t3d_slice_view *view);
/* Number of frames drawn so far. */
unsigned t3d_slice_view_frames(const t3d_slice_view *view);

/* Pure geometry, exposed for tests: for plane, the volume axis shown along screen x, screen y
 * and through the slice (axes[0..2]), and whether index order is reversed along screen x / y
 * (flip[0..1]). */
void t3d_slice_view_axes(const t3d_volume *volume, t3d_view_plane plane, int axes[3], int flip[2]);

G_END_DECLS
#endif
