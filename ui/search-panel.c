/* T3dSearchPanel (see search-panel.h): entry, result rows with thumbnails, info bar.
 * Not the index: results come from the caller. */
#include "config.h"

#include "ui/search-panel.h"

#include <glib/gi18n-lib.h>

#include "ui/panel-parts.h"

#define THUMB_PX 64

struct _T3dSearchPanel {
  GtkBox parent;
  GtkWidget *infobar, *entry, *button, *spinner, *list, *placeholder;
  size_t nresults;
  GPtrArray *images; /* GtkImage per result, by rank (borrowed: the rows own them) */
};

G_DEFINE_TYPE(T3dSearchPanel, t3d_search_panel, GTK_TYPE_BOX)

enum { SIG_SEARCH, SIG_OPEN, N_SIGNALS };
static guint signals[N_SIGNALS];

static void t3d_search_panel_finalize(GObject *o)
{
  g_ptr_array_unref(T3D_SEARCH_PANEL(o)->images);
  G_OBJECT_CLASS(t3d_search_panel_parent_class)->finalize(o);
}

static void t3d_search_panel_class_init(T3dSearchPanelClass *klass)
{
  G_OBJECT_CLASS(klass)->finalize = t3d_search_panel_finalize;
  signals[SIG_SEARCH] = g_signal_new("search", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL,
                                     G_TYPE_NONE, 1, G_TYPE_STRING);
  signals[SIG_OPEN] = g_signal_new("open-case", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL,
                                   G_TYPE_NONE, 1, G_TYPE_INT);
}

static void do_search(T3dSearchPanel *s)
{
  const char *text = gtk_entry_get_text(GTK_ENTRY(s->entry));
  char *t = g_strstrip(g_strdup(text));
  if (*t) g_signal_emit(s, signals[SIG_SEARCH], 0, t);
  else t3d_search_panel_show_message(s, GTK_MESSAGE_INFO, _("Type findings to search for, for example "
                                                            "\"right lower lobe nodule with pleural effusion\"."));
  g_free(t);
}

static void on_activate(GtkEntry *e, gpointer data) { do_search(data); }
static void on_clicked(GtkButton *b, gpointer data) { do_search(data); }

static void on_row(GtkListBox *box, GtkListBoxRow *row, gpointer data)
{
  g_signal_emit(data, signals[SIG_OPEN], 0, gtk_list_box_row_get_index(row));
}

static void t3d_search_panel_init(T3dSearchPanel *s)
{
  GtkBox *box = GTK_BOX(s);
  s->images = g_ptr_array_new();
  gtk_orientable_set_orientation(GTK_ORIENTABLE(s), GTK_ORIENTATION_VERTICAL);
  gtk_box_set_spacing(box, 6);
  gtk_container_set_border_width(GTK_CONTAINER(s), 6);
  gtk_box_pack_start(box, t3d_ui_heading_new(_("Similar cases")), FALSE, FALSE, 0);

  s->infobar = t3d_ui_infobar_new("t3d-search-infobar");
  gtk_box_pack_start(box, s->infobar, FALSE, FALSE, 0);

  GtkWidget *row = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 6);
  s->entry = gtk_search_entry_new();
  gtk_widget_set_name(s->entry, "t3d-search-entry");
  gtk_entry_set_placeholder_text(GTK_ENTRY(s->entry), _("Findings, e.g. right lung nodule"));
  g_signal_connect(s->entry, "activate", G_CALLBACK(on_activate), s);
  s->button = gtk_button_new_with_mnemonic(_("_Search"));
  gtk_widget_set_name(s->button, "t3d-search-button");
  g_signal_connect(s->button, "clicked", G_CALLBACK(on_clicked), s);
  s->spinner = gtk_spinner_new();
  gtk_widget_set_no_show_all(s->spinner, TRUE);
  gtk_box_pack_start(GTK_BOX(row), s->entry, TRUE, TRUE, 0);
  gtk_box_pack_start(GTK_BOX(row), s->spinner, FALSE, FALSE, 0);
  gtk_box_pack_start(GTK_BOX(row), s->button, FALSE, FALSE, 0);
  gtk_box_pack_start(box, row, FALSE, FALSE, 0);

  GtkWidget *scroll = gtk_scrolled_window_new(NULL, NULL);
  gtk_scrolled_window_set_policy(GTK_SCROLLED_WINDOW(scroll), GTK_POLICY_NEVER, GTK_POLICY_AUTOMATIC);
  gtk_scrolled_window_set_min_content_height(GTK_SCROLLED_WINDOW(scroll), 160);
  s->list = gtk_list_box_new();
  gtk_widget_set_name(s->list, "t3d-search-results");
  gtk_list_box_set_activate_on_single_click(GTK_LIST_BOX(s->list), FALSE);
  s->placeholder = gtk_label_new(_("No cases yet."));
  gtk_widget_set_sensitive(s->placeholder, FALSE);
  gtk_widget_show(s->placeholder);
  gtk_list_box_set_placeholder(GTK_LIST_BOX(s->list), s->placeholder);
  g_signal_connect(s->list, "row-activated", G_CALLBACK(on_row), s);
  gtk_container_add(GTK_CONTAINER(scroll), s->list);
  gtk_box_pack_start(box, scroll, TRUE, TRUE, 0);
}

GtkWidget *t3d_search_panel_new(void) { return g_object_new(T3D_TYPE_SEARCH_PANEL, NULL); }

void t3d_search_panel_set_busy(T3dSearchPanel *s, gboolean busy)
{
  g_return_if_fail(T3D_IS_SEARCH_PANEL(s));
  gtk_widget_set_visible(s->spinner, busy);
  if (busy) gtk_spinner_start(GTK_SPINNER(s->spinner));
  else gtk_spinner_stop(GTK_SPINNER(s->spinner));
  gtk_widget_set_sensitive(s->button, !busy);
}

void t3d_search_panel_clear(T3dSearchPanel *s)
{
  g_return_if_fail(T3D_IS_SEARCH_PANEL(s));
  GList *rows = gtk_container_get_children(GTK_CONTAINER(s->list));
  for (GList *l = rows; l; l = l->next) gtk_widget_destroy(l->data);
  g_list_free(rows);
  s->nresults = 0;
  g_ptr_array_set_size(s->images, 0);
  gtk_widget_hide(s->infobar);
}

void t3d_search_panel_add_result(T3dSearchPanel *s, const char *title, const char *detail, double score,
                                 GdkPixbuf *thumb)
{
  g_return_if_fail(T3D_IS_SEARCH_PANEL(s));
  GtkWidget *row = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 8);
  GtkWidget *img = gtk_image_new();
  gtk_widget_set_size_request(img, THUMB_PX, THUMB_PX);
  g_ptr_array_add(s->images, img);
  t3d_search_panel_set_thumbnail(s, s->nresults, thumb);
  GtkWidget *text = gtk_label_new(NULL);
  char *m = g_markup_printf_escaped("<b>%zu. %s</b>\n%s\n<small>%s %.3f</small>", s->nresults + 1, title ? title : "",
                                    detail ? detail : "", _("similarity"), score);
  gtk_label_set_markup(GTK_LABEL(text), m);
  g_free(m);
  gtk_label_set_xalign(GTK_LABEL(text), 0);
  gtk_label_set_ellipsize(GTK_LABEL(text), PANGO_ELLIPSIZE_END);
  gtk_box_pack_start(GTK_BOX(row), img, FALSE, FALSE, 0);
  gtk_box_pack_start(GTK_BOX(row), text, TRUE, TRUE, 0);
  gtk_widget_set_tooltip_text(row, _("Double-click or press Enter to open this case"));
  gtk_widget_show_all(row);
  gtk_container_add(GTK_CONTAINER(s->list), row);
  s->nresults++;
}

void t3d_search_panel_set_thumbnail(T3dSearchPanel *s, size_t rank, GdkPixbuf *thumb)
{
  g_return_if_fail(T3D_IS_SEARCH_PANEL(s));
  if (rank >= s->images->len) return;
  GtkImage *img = g_ptr_array_index(s->images, rank);
  if (!thumb) {
    gtk_image_set_from_icon_name(img, "image-x-generic", GTK_ICON_SIZE_DIALOG);
    return;
  }
  int w = gdk_pixbuf_get_width(thumb), h = gdk_pixbuf_get_height(thumb);
  double k = (double)THUMB_PX / MAX(w, h);
  GdkPixbuf *small = gdk_pixbuf_scale_simple(thumb, MAX(1, (int)(w * k)), MAX(1, (int)(h * k)), GDK_INTERP_BILINEAR);
  gtk_image_set_from_pixbuf(img, small);
  g_object_unref(small);
}

size_t t3d_search_panel_result_count(T3dSearchPanel *s) { return s->nresults; }

void t3d_search_panel_show_message(T3dSearchPanel *s, GtkMessageType type, const char *text)
{
  g_return_if_fail(T3D_IS_SEARCH_PANEL(s));
  t3d_ui_infobar_show(s->infobar, type, text);
}

const char *t3d_search_panel_message(T3dSearchPanel *s) { return t3d_ui_infobar_text(s->infobar); }
