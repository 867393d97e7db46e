/* t3d_slice_view: an orthogonal slice of a volume in a GtkGLArea (OpenGL 3.3 core via libepoxy).
 * The slice is resliced on the CPU into a 2-D float texture (window/level in the shader), labels
 * into an 8-bit integer texture looked up in a 256-entry colour table; text and crosshair are
 * drawn with cairo into a texture blended on top. Not a volume renderer, and no GPU reslicing. */
#include "config.h"

#include "ui/slice-view.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include <epoxy/gl.h>
#include <glib/gi18n.h>

struct t3d_slice_view {
  GtkWidget *area;
  t3d_view_plane plane;
  t3d_slice_view_callbacks cb;
  void *user_data;

  const t3d_volume *vol;
  int axes[3], flip[2];
  int64_t cross[3];
  double wl_center, wl_width;
  const uint8_t *labels;
  uint8_t lut[256][4];
  char *corners[4];
  double zoom, pan_x, pan_y; /* pan in widget pixels */

  /* GL state (valid between realize and unrealize) */
  gboolean gl_ok;
  GLuint prog, vao, vbo, tex_hu, tex_lab, tex_lut, tex_text;
  GLint u_rect, u_mode, u_lo, u_hi, u_has_lab, u_hu, u_lab, u_lut, u_rgba;
  gboolean slice_dirty, lut_dirty;
  int tex_w, tex_h;
  float *slice_buf;
  uint8_t *label_buf;

  /* pointer interaction */
  int drag_button;
  gboolean drag_moved, drag_pan;
  double drag_x0, drag_y0, drag_c0, drag_w0, drag_px0, drag_py0, drag_zoom0;

  char *shot_path;
  char renderer[128];
  char error[256];
  unsigned frames;
};

/* ---- geometry ------------------------------------------------------------------------ */

void t3d_slice_view_axes(const t3d_volume *v, t3d_view_plane plane, int axes[3], int flip[2])
{
  /* Match volume axes to patient axes greedily by the largest |cosine|, so that an oblique
   * volume still maps each patient axis to exactly one volume axis. */
  int axis_of[3] = {-1, -1, -1}, sign_of[3] = {1, 1, 1};
  int used_axis[3] = {0, 0, 0};
  for (int round = 0; round < 3; round++) {
    double best = -1;
    int br = 0, bc = 0;
    for (int r = 0; r < 3; r++) {
      if (axis_of[r] >= 0)
        continue;
      for (int c = 0; c < 3; c++) {
        if (used_axis[c])
          continue;
        double m = fabs(v->dir[r][c]);
        if (m > best) {
          best = m;
          br = r;
          bc = c;
        }
      }
    }
    axis_of[br] = bc;
    used_axis[bc] = 1;
    sign_of[br] = v->dir[br][bc] < 0 ? -1 : 1;
  }
  /* Screen x and y as (patient axis, direction of increasing screen coordinate): L=0, P=1, S=2. */
  static const int screen[3][2][2] = {
    [T3D_VIEW_AXIAL] = {{0, +1}, {1, +1}},    /* right = left, down = posterior */
    [T3D_VIEW_CORONAL] = {{0, +1}, {2, -1}},  /* right = left, down = inferior */
    [T3D_VIEW_SAGITTAL] = {{1, +1}, {2, -1}}, /* right = posterior, down = inferior */
  };
  static const int normal[3] = {[T3D_VIEW_AXIAL] = 2, [T3D_VIEW_CORONAL] = 1, [T3D_VIEW_SAGITTAL] = 0};
  for (int s = 0; s < 2; s++) {
    int r = screen[plane][s][0];
    axes[s] = axis_of[r];
    flip[s] = sign_of[r] * screen[plane][s][1] < 0;
  }
  axes[2] = axis_of[normal[plane]];
}

static int64_t dim_of(const t3d_volume *v, int axis)
{
  return axis == 0 ? v->nx : axis == 1 ? v->ny : v->nz;
}

/* The image rectangle in widget pixels. */
static void image_rect(const t3d_slice_view *sv, double *x0, double *y0, double *w, double *h)
{
  int W = gtk_widget_get_allocated_width(sv->area), H = gtk_widget_get_allocated_height(sv->area);
  double pw = (double)dim_of(sv->vol, sv->axes[0]) * sv->vol->spacing[sv->axes[0]];
  double ph = (double)dim_of(sv->vol, sv->axes[1]) * sv->vol->spacing[sv->axes[1]];
  double scale = fmin(W / pw, H / ph) * sv->zoom;
  *w = pw * scale;
  *h = ph * scale;
  *x0 = (W - *w) / 2 + sv->pan_x;
  *y0 = (H - *h) / 2 + sv->pan_y;
}

/* Widget pixel -> fractional voxel; FALSE outside the image. */
static gboolean pixel_to_voxel(const t3d_slice_view *sv, double x, double y, double voxel[3])
{
  if (!sv->vol)
    return FALSE;
  double x0, y0, w, h;
  image_rect(sv, &x0, &y0, &w, &h);
  double fx = (x - x0) / w, fy = (y - y0) / h;
  if (fx < 0 || fx >= 1 || fy < 0 || fy >= 1)
    return FALSE;
  int64_t nu = dim_of(sv->vol, sv->axes[0]), nv = dim_of(sv->vol, sv->axes[1]);
  double u = fx * nu - 0.5, v = fy * nv - 0.5; /* texel-centre coordinates */
  voxel[sv->axes[0]] = sv->flip[0] ? (double)(nu - 1) - u : u;
  voxel[sv->axes[1]] = sv->flip[1] ? (double)(nv - 1) - v : v;
  voxel[sv->axes[2]] = (double)sv->cross[sv->axes[2]];
  return TRUE;
}

/* Voxel index along a screen axis -> widget pixel (texel centre). */
static double index_to_pixel(const t3d_slice_view *sv, int s, int64_t index)
{
  double x0, y0, w, h;
  image_rect(sv, &x0, &y0, &w, &h);
  int64_t n = dim_of(sv->vol, sv->axes[s]);
  double u = sv->flip[s] ? (double)(n - 1 - index) : (double)index;
  return s == 0 ? x0 + (u + 0.5) / n * w : y0 + (u + 0.5) / n * h;
}

/* ---- reslicing ------------------------------------------------------------------------ */

static void reslice(t3d_slice_view *sv)
{
  const t3d_volume *v = sv->vol;
  int64_t stride[3] = {1, v->nx, v->nx * v->ny};
  int64_t nu = dim_of(v, sv->axes[0]), nv = dim_of(v, sv->axes[1]);
  int64_t base = sv->cross[sv->axes[2]] * stride[sv->axes[2]];
  int64_t su = stride[sv->axes[0]], sv_ = stride[sv->axes[1]];
  for (int64_t y = 0; y < nv; y++) {
    int64_t jv = sv->flip[1] ? nv - 1 - y : y;
    for (int64_t x = 0; x < nu; x++) {
      int64_t iu = sv->flip[0] ? nu - 1 - x : x;
      int64_t off = base + jv * sv_ + iu * su;
      sv->slice_buf[y * nu + x] = v->data[off];
      if (sv->labels)
        sv->label_buf[y * nu + x] = sv->labels[off];
    }
  }
}

/* ---- GL ------------------------------------------------------------------------------- */

static const char *vertex_src =
  "#version 330 core\n"
  "layout(location = 0) in vec2 corner;\n"
  "uniform vec4 rect; /* NDC x0, y0 (top), x1, y1 (bottom) */\n"
  "out vec2 tc;\n"
  "void main() {\n"
  "  tc = corner;\n"
  "  gl_Position = vec4(mix(rect.x, rect.z, corner.x), mix(rect.y, rect.w, corner.y), 0.0, 1.0);\n"
  "}\n";

static const char *fragment_src =
  "#version 330 core\n"
  "in vec2 tc;\n"
  "out vec4 color;\n"
  "uniform int mode; /* 0: HU slice + labels, 1: premultiplied RGBA texture */\n"
  "uniform sampler2D hu;\n"
  "uniform usampler2D lab;\n"
  "uniform sampler2D lut;\n"
  "uniform sampler2D rgba;\n"
  "uniform float lo, hi;\n"
  "uniform int has_lab;\n"
  "void main() {\n"
  "  if (mode == 1) { color = texture(rgba, tc); return; }\n"
  "  float g = clamp((texture(hu, tc).r - lo) / (hi - lo), 0.0, 1.0);\n"
  "  vec3 c = vec3(g);\n"
  "  if (has_lab != 0) {\n"
  "    uint l = texture(lab, tc).r;\n"
  "    vec4 o = texelFetch(lut, ivec2(int(l), 0), 0);\n"
  "    c = mix(c, o.rgb, o.a);\n"
  "  }\n"
  "  color = vec4(c, 1.0);\n"
  "}\n";

static GLuint compile(t3d_slice_view *sv, GLenum type, const char *src)
{
  GLuint s = glCreateShader(type);
  glShaderSource(s, 1, &src, NULL);
  glCompileShader(s);
  GLint ok = 0;
  glGetShaderiv(s, GL_COMPILE_STATUS, &ok);
  if (!ok) {
    char log[200] = "";
    glGetShaderInfoLog(s, sizeof log, NULL, log);
    snprintf(sv->error, sizeof sv->error, "shader: %s", log);
    glDeleteShader(s);
    return 0;
  }
  return s;
}

static void new_texture(GLuint *tex, GLint filter)
{
  glGenTextures(1, tex);
  glBindTexture(GL_TEXTURE_2D, *tex);
  glTexParameteri(GL_TEXTURE_2D, GL_TEXTURE_MIN_FILTER, filter);
  glTexParameteri(GL_TEXTURE_2D, GL_TEXTURE_MAG_FILTER, filter);
  glTexParameteri(GL_TEXTURE_2D, GL_TEXTURE_WRAP_S, GL_CLAMP_TO_EDGE);
  glTexParameteri(GL_TEXTURE_2D, GL_TEXTURE_WRAP_T, GL_CLAMP_TO_EDGE);
}

static void on_realize(GtkGLArea *area, t3d_slice_view *sv)
{
  gtk_gl_area_make_current(area);
  if (gtk_gl_area_get_error(area)) {
    snprintf(sv->error, sizeof sv->error, "%s", gtk_gl_area_get_error(area)->message);
    return;
  }
  snprintf(sv->renderer, sizeof sv->renderer, "%s", (const char *)glGetString(GL_RENDERER));
  GLuint vs = compile(sv, GL_VERTEX_SHADER, vertex_src), fs = compile(sv, GL_FRAGMENT_SHADER, fragment_src);
  if (!vs || !fs) {
    glDeleteShader(vs);
    glDeleteShader(fs);
    return;
  }
  sv->prog = glCreateProgram();
  glAttachShader(sv->prog, vs);
  glAttachShader(sv->prog, fs);
  glLinkProgram(sv->prog);
  glDeleteShader(vs);
  glDeleteShader(fs);
  GLint ok = 0;
  glGetProgramiv(sv->prog, GL_LINK_STATUS, &ok);
  if (!ok) {
    snprintf(sv->error, sizeof sv->error, "shader program did not link");
    return;
  }
  sv->u_rect = glGetUniformLocation(sv->prog, "rect");
  sv->u_mode = glGetUniformLocation(sv->prog, "mode");
  sv->u_lo = glGetUniformLocation(sv->prog, "lo");
  sv->u_hi = glGetUniformLocation(sv->prog, "hi");
  sv->u_has_lab = glGetUniformLocation(sv->prog, "has_lab");
  sv->u_hu = glGetUniformLocation(sv->prog, "hu");
  sv->u_lab = glGetUniformLocation(sv->prog, "lab");
  sv->u_lut = glGetUniformLocation(sv->prog, "lut");
  sv->u_rgba = glGetUniformLocation(sv->prog, "rgba");

  static const float quad[8] = {0, 0, 1, 0, 0, 1, 1, 1};
  glGenVertexArrays(1, &sv->vao);
  glBindVertexArray(sv->vao);
  glGenBuffers(1, &sv->vbo);
  glBindBuffer(GL_ARRAY_BUFFER, sv->vbo);
  glBufferData(GL_ARRAY_BUFFER, sizeof quad, quad, GL_STATIC_DRAW);
  glEnableVertexAttribArray(0);
  glVertexAttribPointer(0, 2, GL_FLOAT, GL_FALSE, 0, NULL);
  glBindVertexArray(0);

  new_texture(&sv->tex_hu, GL_LINEAR);
  new_texture(&sv->tex_lab, GL_NEAREST); /* labels never blend, and integer textures need it */
  new_texture(&sv->tex_lut, GL_NEAREST);
  new_texture(&sv->tex_text, GL_NEAREST);
  sv->gl_ok = TRUE;
  sv->slice_dirty = sv->lut_dirty = TRUE;
}

static void on_unrealize(GtkGLArea *area, t3d_slice_view *sv)
{
  gtk_gl_area_make_current(area);
  if (!gtk_gl_area_get_error(area) && sv->gl_ok) {
    GLuint tex[4] = {sv->tex_hu, sv->tex_lab, sv->tex_lut, sv->tex_text};
    glDeleteTextures(4, tex);
    glDeleteBuffers(1, &sv->vbo);
    glDeleteVertexArrays(1, &sv->vao);
    glDeleteProgram(sv->prog);
  }
  sv->gl_ok = FALSE;
}

static void upload_slice(t3d_slice_view *sv)
{
  int64_t nu = dim_of(sv->vol, sv->axes[0]), nv = dim_of(sv->vol, sv->axes[1]);
  if (nu != sv->tex_w || nv != sv->tex_h) {
    g_free(sv->slice_buf);
    g_free(sv->label_buf);
    sv->slice_buf = g_new(float, (size_t)(nu * nv));
    sv->label_buf = g_new0(uint8_t, (size_t)(nu * nv));
    sv->tex_w = (int)nu;
    sv->tex_h = (int)nv;
  }
  reslice(sv);
  glPixelStorei(GL_UNPACK_ALIGNMENT, 1); /* rows of odd widths are not 4-byte aligned */
  glBindTexture(GL_TEXTURE_2D, sv->tex_hu);
  glTexImage2D(GL_TEXTURE_2D, 0, GL_R32F, sv->tex_w, sv->tex_h, 0, GL_RED, GL_FLOAT, sv->slice_buf);
  if (sv->labels) {
    glBindTexture(GL_TEXTURE_2D, sv->tex_lab);
    glTexImage2D(GL_TEXTURE_2D, 0, GL_R8UI, sv->tex_w, sv->tex_h, 0, GL_RED_INTEGER, GL_UNSIGNED_BYTE,
                 sv->label_buf);
  }
}

/* Crosshair, orientation letters and corner texts, drawn with cairo at framebuffer size. */
static void draw_text_layer(t3d_slice_view *sv, int fbw, int fbh, int scale)
{
  cairo_surface_t *surf = cairo_image_surface_create(CAIRO_FORMAT_ARGB32, fbw, fbh);
  cairo_t *cr = cairo_create(surf);
  cairo_scale(cr, scale, scale);
  int W = fbw / scale, H = fbh / scale;

  if (sv->vol) {
    double x0, y0, w, h;
    image_rect(sv, &x0, &y0, &w, &h);
    double cx = index_to_pixel(sv, 0, sv->cross[sv->axes[0]]);
    double cy = index_to_pixel(sv, 1, sv->cross[sv->axes[1]]);
    cairo_set_line_width(cr, 1);
    cairo_set_source_rgba(cr, 0.2, 0.8, 1.0, 0.55);
    cairo_move_to(cr, floor(cx) + 0.5, y0);
    cairo_line_to(cr, floor(cx) + 0.5, y0 + h);
    cairo_move_to(cr, x0, floor(cy) + 0.5);
    cairo_line_to(cr, x0 + w, floor(cy) + 0.5);
    cairo_stroke(cr);
  }

  PangoLayout *layout = pango_cairo_create_layout(cr);
  PangoFontDescription *font = pango_font_description_from_string("Sans 9");
  pango_layout_set_font_description(layout, font);
  pango_font_description_free(font);
  /* Edge letters: the patient direction each screen edge faces. Translators: one-letter
   * patient directions R(ight), L(eft), A(nterior), P(osterior), S(uperior), I(nferior). */
  const char *edges[3][4] = {
    /* left, right, top, bottom */
    [T3D_VIEW_AXIAL] = {C_("direction", "R"), C_("direction", "L"), C_("direction", "A"), C_("direction", "P")},
    [T3D_VIEW_CORONAL] = {C_("direction", "R"), C_("direction", "L"), C_("direction", "S"), C_("direction", "I")},
    [T3D_VIEW_SAGITTAL] = {C_("direction", "A"), C_("direction", "P"), C_("direction", "S"), C_("direction", "I")},
  };
  for (int e = 0; e < 4 && sv->vol; e++) {
    pango_layout_set_text(layout, edges[sv->plane][e], -1);
    int tw, th;
    pango_layout_get_pixel_size(layout, &tw, &th);
    double x = e == 0 ? 4 : e == 1 ? W - tw - 4 : (W - tw) / 2.0;
    double y = e == 2 ? 4 : e == 3 ? H - th - 4 : (H - th) / 2.0;
    cairo_set_source_rgba(cr, 1, 0.85, 0.3, 0.9);
    cairo_move_to(cr, x, y);
    pango_cairo_show_layout(cr, layout);
  }
  for (int c = 0; c < 4; c++) {
    if (!sv->corners[c] || !*sv->corners[c])
      continue;
    /* Narrow views keep the first line of each corner,
     * very narrow ones only the slice number, so texts never overlap each other or edge letters. */
    if (W < 300 && c != 2)
      continue;
    const char *newline = W < 450 ? strchr(sv->corners[c], '\n') : NULL;
    pango_layout_set_text(layout, sv->corners[c], newline ? (int)(newline - sv->corners[c]) : -1);
    pango_layout_set_alignment(layout, c % 2 ? PANGO_ALIGN_RIGHT : PANGO_ALIGN_LEFT);
    int tw, th;
    pango_layout_get_pixel_size(layout, &tw, &th);
    double x = c % 2 ? W - tw - 18 : 18, y = c < 2 ? 4 : H - th - 4;
    cairo_set_source_rgba(cr, 0, 0, 0, 0.8); /* shadow keeps text readable on bright tissue */
    cairo_move_to(cr, x + 1, y + 1);
    pango_cairo_show_layout(cr, layout);
    cairo_set_source_rgba(cr, 1, 1, 1, 0.95);
    cairo_move_to(cr, x, y);
    pango_cairo_show_layout(cr, layout);
  }
  g_object_unref(layout);
  cairo_destroy(cr);
  cairo_surface_flush(surf);

  glPixelStorei(GL_UNPACK_ALIGNMENT, 1);
  glPixelStorei(GL_UNPACK_ROW_LENGTH, cairo_image_surface_get_stride(surf) / 4);
  glBindTexture(GL_TEXTURE_2D, sv->tex_text);
  /* Cairo ARGB32 is B, G, R, A bytes in memory (little endian), premultiplied. */
  glTexImage2D(GL_TEXTURE_2D, 0, GL_RGBA8, fbw, fbh, 0, GL_BGRA, GL_UNSIGNED_BYTE,
               cairo_image_surface_get_data(surf));
  glPixelStorei(GL_UNPACK_ROW_LENGTH, 0);
  cairo_surface_destroy(surf);
}

static void save_screenshot(t3d_slice_view *sv, int fbw, int fbh)
{
  guchar *pixels = g_malloc((size_t)fbw * fbh * 4);
  glPixelStorei(GL_PACK_ALIGNMENT, 1);
  glReadPixels(0, 0, fbw, fbh, GL_RGBA, GL_UNSIGNED_BYTE, pixels);
  /* GL rows run bottom-up; PNG rows top-down. */
  size_t row = (size_t)fbw * 4;
  guchar *tmp = g_malloc(row);
  for (int y = 0; y < fbh / 2; y++) {
    memcpy(tmp, pixels + y * row, row);
    memcpy(pixels + y * row, pixels + (fbh - 1 - y) * row, row);
    memcpy(pixels + (fbh - 1 - y) * row, tmp, row);
  }
  g_free(tmp);
  for (size_t i = 0; i < (size_t)fbw * fbh; i++)
    pixels[i * 4 + 3] = 255;
  GdkPixbuf *pb = gdk_pixbuf_new_from_data(pixels, GDK_COLORSPACE_RGB, TRUE, 8, fbw, fbh, (int)row, NULL, NULL);
  GError *err = NULL;
  if (!gdk_pixbuf_save(pb, sv->shot_path, "png", &err, NULL)) {
    snprintf(sv->error, sizeof sv->error, "%s: %s", sv->shot_path, err->message);
    g_error_free(err);
  }
  g_object_unref(pb);
  g_free(pixels);
  g_clear_pointer(&sv->shot_path, g_free);
}

static gboolean on_render(GtkGLArea *area, GdkGLContext *context, t3d_slice_view *sv)
{
  int scale = gtk_widget_get_scale_factor(sv->area);
  int fbw = gtk_widget_get_allocated_width(sv->area) * scale;
  int fbh = gtk_widget_get_allocated_height(sv->area) * scale;
  glViewport(0, 0, fbw, fbh);
  glClearColor(0, 0, 0, 1);
  glClear(GL_COLOR_BUFFER_BIT);
  if (!sv->gl_ok || fbw <= 0 || fbh <= 0)
    goto done;

  glUseProgram(sv->prog);
  glBindVertexArray(sv->vao);
  glUniform1i(sv->u_hu, 0);
  glUniform1i(sv->u_lab, 1);
  glUniform1i(sv->u_lut, 2);
  glUniform1i(sv->u_rgba, 3);
  if (sv->vol) {
    if (sv->slice_dirty) {
      upload_slice(sv);
      sv->slice_dirty = FALSE;
    }
    if (sv->lut_dirty) {
      glPixelStorei(GL_UNPACK_ALIGNMENT, 1);
      glBindTexture(GL_TEXTURE_2D, sv->tex_lut);
      glTexImage2D(GL_TEXTURE_2D, 0, GL_RGBA8, 256, 1, 0, GL_RGBA, GL_UNSIGNED_BYTE, sv->lut);
      sv->lut_dirty = FALSE;
    }
    double x0, y0, w, h;
    image_rect(sv, &x0, &y0, &w, &h);
    int W = fbw / scale, H = fbh / scale;
    glUniform4f(sv->u_rect, (float)(2 * x0 / W - 1), (float)(1 - 2 * y0 / H), (float)(2 * (x0 + w) / W - 1),
                (float)(1 - 2 * (y0 + h) / H));
    glUniform1i(sv->u_mode, 0);
    glUniform1f(sv->u_lo, (float)(sv->wl_center - sv->wl_width / 2));
    glUniform1f(sv->u_hi, (float)(sv->wl_center + sv->wl_width / 2));
    glUniform1i(sv->u_has_lab, sv->labels != NULL);
    glActiveTexture(GL_TEXTURE0);
    glBindTexture(GL_TEXTURE_2D, sv->tex_hu);
    glActiveTexture(GL_TEXTURE1);
    glBindTexture(GL_TEXTURE_2D, sv->tex_lab);
    glActiveTexture(GL_TEXTURE2);
    glBindTexture(GL_TEXTURE_2D, sv->tex_lut);
    glDrawArrays(GL_TRIANGLE_STRIP, 0, 4);
  }
  /* text and crosshair layer over the whole view */
  glActiveTexture(GL_TEXTURE3);
  draw_text_layer(sv, fbw, fbh, scale);
  glBindTexture(GL_TEXTURE_2D, sv->tex_text);
  glActiveTexture(GL_TEXTURE0);
  glUniform4f(sv->u_rect, -1, 1, 1, -1);
  glUniform1i(sv->u_mode, 1);
  glEnable(GL_BLEND);
  glBlendFunc(GL_ONE, GL_ONE_MINUS_SRC_ALPHA);
  glDrawArrays(GL_TRIANGLE_STRIP, 0, 4);
  glDisable(GL_BLEND);
  glBindVertexArray(0);
  glUseProgram(0);

  GLenum e = glGetError();
  if (e != GL_NO_ERROR)
    snprintf(sv->error, sizeof sv->error, "GL error 0x%x", e);
done:
  if (sv->shot_path)
    save_screenshot(sv, fbw, fbh);
  sv->frames++;
  if (sv->cb.rendered)
    sv->cb.rendered(sv, sv->user_data);
  return TRUE;
}

/* ---- interaction -------------------------------------------------------------------------- */

static void move_slice(t3d_slice_view *sv, int64_t delta)
{
  if (!sv->vol)
    return;
  int64_t voxel[3] = {sv->cross[0], sv->cross[1], sv->cross[2]};
  int a = sv->axes[2];
  voxel[a] = CLAMP(voxel[a] + delta, 0, dim_of(sv->vol, a) - 1);
  if (voxel[a] != sv->cross[a] && sv->cb.crosshair_changed)
    sv->cb.crosshair_changed(sv, voxel, sv->user_data);
}

static gboolean on_scroll(GtkWidget *w, GdkEventScroll *ev, t3d_slice_view *sv)
{
  double dy = 0;
  if (ev->direction == GDK_SCROLL_UP)
    dy = -1;
  else if (ev->direction == GDK_SCROLL_DOWN)
    dy = 1;
  else if (ev->direction == GDK_SCROLL_SMOOTH)
    dy = ev->delta_y > 0 ? 1 : ev->delta_y < 0 ? -1 : 0;
  if (dy == 0)
    return FALSE;
  if (ev->state & GDK_CONTROL_MASK) {
    t3d_slice_view_set_zoom(sv, sv->zoom * (dy < 0 ? 1.15 : 1 / 1.15));
  } else {
    move_slice(sv, (int64_t)dy);
  }
  return TRUE;
}

static gboolean on_press(GtkWidget *w, GdkEventButton *ev, t3d_slice_view *sv)
{
  gtk_widget_grab_focus(w);
  if (ev->type != GDK_BUTTON_PRESS)
    return FALSE;
  sv->drag_button = (int)ev->button;
  sv->drag_moved = FALSE;
  sv->drag_pan = ev->button == 2 || (ev->button == 1 && (ev->state & GDK_SHIFT_MASK));
  sv->drag_x0 = ev->x;
  sv->drag_y0 = ev->y;
  sv->drag_c0 = sv->wl_center;
  sv->drag_w0 = sv->wl_width;
  sv->drag_px0 = sv->pan_x;
  sv->drag_py0 = sv->pan_y;
  sv->drag_zoom0 = sv->zoom;
  return TRUE;
}

static gboolean on_release(GtkWidget *w, GdkEventButton *ev, t3d_slice_view *sv)
{
  if (sv->drag_button == 1 && !sv->drag_moved && !sv->drag_pan) {
    double voxel[3];
    if (pixel_to_voxel(sv, ev->x, ev->y, voxel) && sv->cb.crosshair_changed) {
      int64_t v[3];
      for (int a = 0; a < 3; a++)
        v[a] = CLAMP((int64_t)llround(voxel[a]), 0, dim_of(sv->vol, a) - 1);
      sv->cb.crosshair_changed(sv, v, sv->user_data);
    }
  }
  sv->drag_button = 0;
  return TRUE;
}

static gboolean on_motion(GtkWidget *w, GdkEventMotion *ev, t3d_slice_view *sv)
{
  double voxel[3];
  gboolean inside = pixel_to_voxel(sv, ev->x, ev->y, voxel);
  if (sv->cb.pointer_moved)
    sv->cb.pointer_moved(sv, inside, voxel, sv->user_data);
  if (!sv->drag_button)
    return FALSE;
  double dx = ev->x - sv->drag_x0, dy = ev->y - sv->drag_y0;
  if (fabs(dx) + fabs(dy) > 3)
    sv->drag_moved = TRUE;
  if (!sv->drag_moved)
    return TRUE;
  if (sv->drag_pan) {
    sv->pan_x = sv->drag_px0 + dx;
    sv->pan_y = sv->drag_py0 + dy;
    gtk_gl_area_queue_render(GTK_GL_AREA(sv->area));
  } else if (sv->drag_button == 3) {
    t3d_slice_view_set_zoom(sv, sv->drag_zoom0 * exp(-dy / 200));
  } else if (sv->drag_button == 1) {
    /* Right widens the window, down raises the level; faster for wide windows. */
    double k = fmax(1.0, sv->drag_w0 / 256);
    double width = fmax(1.0, sv->drag_w0 + dx * 2 * k), center = sv->drag_c0 + dy * k;
    if (sv->cb.window_changed)
      sv->cb.window_changed(sv, center, width, sv->user_data);
  }
  return TRUE;
}

static gboolean on_leave(GtkWidget *w, GdkEventCrossing *ev, t3d_slice_view *sv)
{
  double voxel[3] = {0, 0, 0};
  if (sv->cb.pointer_moved)
    sv->cb.pointer_moved(sv, FALSE, voxel, sv->user_data);
  return FALSE;
}

static gboolean on_key(GtkWidget *w, GdkEventKey *ev, t3d_slice_view *sv)
{
  switch (ev->keyval) {
  case GDK_KEY_Up: move_slice(sv, -1); return TRUE;
  case GDK_KEY_Down: move_slice(sv, 1); return TRUE;
  case GDK_KEY_Page_Up: move_slice(sv, -10); return TRUE;
  case GDK_KEY_Page_Down: move_slice(sv, 10); return TRUE;
  case GDK_KEY_plus: case GDK_KEY_KP_Add: t3d_slice_view_set_zoom(sv, sv->zoom * 1.25); return TRUE;
  case GDK_KEY_minus: case GDK_KEY_KP_Subtract: t3d_slice_view_set_zoom(sv, sv->zoom / 1.25); return TRUE;
  case GDK_KEY_Home: t3d_slice_view_fit(sv); return TRUE;
  default: return FALSE;
  }
}

/* ---- life cycle and setters ------------------------------------------------------------------ */

static void on_destroy(GtkWidget *w, t3d_slice_view *sv)
{
  for (int c = 0; c < 4; c++)
    g_free(sv->corners[c]);
  g_free(sv->slice_buf);
  g_free(sv->label_buf);
  g_free(sv->shot_path);
  g_free(sv);
}

t3d_slice_view *t3d_slice_view_new(t3d_view_plane plane, const t3d_slice_view_callbacks *callbacks, void *user_data)
{
  t3d_slice_view *sv = g_new0(t3d_slice_view, 1);
  sv->plane = plane;
  if (callbacks)
    sv->cb = *callbacks;
  sv->user_data = user_data;
  sv->zoom = 1;
  sv->wl_center = 40;
  sv->wl_width = 400;
  sv->area = gtk_gl_area_new();
  gtk_gl_area_set_required_version(GTK_GL_AREA(sv->area), 3, 3);
  gtk_gl_area_set_has_alpha(GTK_GL_AREA(sv->area), FALSE);
  gtk_widget_set_can_focus(sv->area, TRUE);
  gtk_widget_set_hexpand(sv->area, TRUE);
  gtk_widget_set_vexpand(sv->area, TRUE);
  gtk_widget_set_size_request(sv->area, 160, 160);
  gtk_widget_add_events(sv->area, GDK_BUTTON_PRESS_MASK | GDK_BUTTON_RELEASE_MASK | GDK_POINTER_MOTION_MASK |
                                    GDK_SCROLL_MASK | GDK_LEAVE_NOTIFY_MASK | GDK_KEY_PRESS_MASK);
  static const char *names[3] = {"t3d-view-axial", "t3d-view-coronal", "t3d-view-sagittal"};
  gtk_widget_set_name(sv->area, names[plane]);
  g_signal_connect(sv->area, "realize", G_CALLBACK(on_realize), sv);
  g_signal_connect(sv->area, "unrealize", G_CALLBACK(on_unrealize), sv);
  g_signal_connect(sv->area, "render", G_CALLBACK(on_render), sv);
  g_signal_connect(sv->area, "scroll-event", G_CALLBACK(on_scroll), sv);
  g_signal_connect(sv->area, "button-press-event", G_CALLBACK(on_press), sv);
  g_signal_connect(sv->area, "button-release-event", G_CALLBACK(on_release), sv);
  g_signal_connect(sv->area, "motion-notify-event", G_CALLBACK(on_motion), sv);
  g_signal_connect(sv->area, "leave-notify-event", G_CALLBACK(on_leave), sv);
  g_signal_connect(sv->area, "key-press-event", G_CALLBACK(on_key), sv);
  g_signal_connect(sv->area, "destroy", G_CALLBACK(on_destroy), sv);
  return sv;
}

GtkWidget *t3d_slice_view_widget(t3d_slice_view *sv) { return sv->area; }
t3d_view_plane t3d_slice_view_plane(const t3d_slice_view *sv) { return sv->plane; }
const char *t3d_slice_view_renderer(const t3d_slice_view *sv) { return sv->renderer; }
const char *t3d_slice_view_error(const t3d_slice_view *sv) { return sv->error; }
unsigned t3d_slice_view_frames(const t3d_slice_view *sv) { return sv->frames; }

static void redraw(t3d_slice_view *sv) { gtk_gl_area_queue_render(GTK_GL_AREA(sv->area)); }

void t3d_slice_view_set_volume(t3d_slice_view *sv, const t3d_volume *volume)
{
  sv->vol = volume;
  sv->labels = NULL;
  sv->zoom = 1;
  sv->pan_x = sv->pan_y = 0;
  if (volume) {
    t3d_slice_view_axes(volume, sv->plane, sv->axes, sv->flip);
    sv->cross[0] = volume->nx / 2;
    sv->cross[1] = volume->ny / 2;
    sv->cross[2] = volume->nz / 2;
  }
  sv->slice_dirty = TRUE;
  redraw(sv);
}

void t3d_slice_view_set_crosshair(t3d_slice_view *sv, const int64_t voxel[3])
{
  if (sv->vol && voxel[sv->axes[2]] != sv->cross[sv->axes[2]])
    sv->slice_dirty = TRUE;
  for (int a = 0; a < 3; a++)
    sv->cross[a] = voxel[a];
  redraw(sv);
}

void t3d_slice_view_set_window(t3d_slice_view *sv, double center, double width)
{
  sv->wl_center = center;
  sv->wl_width = width > 1 ? width : 1;
  redraw(sv);
}

void t3d_slice_view_set_overlay(t3d_slice_view *sv, const uint8_t *labels, const uint8_t lut[256][4])
{
  sv->labels = labels;
  if (lut)
    memcpy(sv->lut, lut, sizeof sv->lut);
  sv->slice_dirty = sv->lut_dirty = TRUE;
  redraw(sv);
}

void t3d_slice_view_set_annotations(t3d_slice_view *sv, const char *const corners[4])
{
  for (int c = 0; c < 4; c++) {
    g_free(sv->corners[c]);
    sv->corners[c] = g_strdup(corners[c]);
  }
  redraw(sv);
}

void t3d_slice_view_set_zoom(t3d_slice_view *sv, double zoom)
{
  sv->zoom = CLAMP(zoom, 0.1, 40);
  redraw(sv);
}

void t3d_slice_view_fit(t3d_slice_view *sv)
{
  sv->pan_x = sv->pan_y = 0;
  t3d_slice_view_set_zoom(sv, 1);
}

void t3d_slice_view_request_screenshot(t3d_slice_view *sv, const char *path)
{
  g_free(sv->shot_path);
  sv->shot_path = g_strdup(path);
  redraw(sv);
}
