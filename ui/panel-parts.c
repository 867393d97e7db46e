/* Parts shared by the panels (see panel-parts.h). Not a dialog: nothing here blocks. */
#include "config.h"

#include "ui/panel-parts.h"

static void on_response(GtkInfoBar *bar, gint response, gpointer data)
{
  if (response == GTK_RESPONSE_CLOSE) gtk_widget_hide(GTK_WIDGET(bar));
}

GtkWidget *t3d_ui_infobar_new(const char *name)
{
  GtkWidget *bar = gtk_info_bar_new();
  GtkWidget *label = gtk_label_new(NULL);
  gtk_label_set_line_wrap(GTK_LABEL(label), TRUE);
  gtk_label_set_xalign(GTK_LABEL(label), 0);
  gtk_label_set_selectable(GTK_LABEL(label), TRUE);
  gtk_container_add(GTK_CONTAINER(gtk_info_bar_get_content_area(GTK_INFO_BAR(bar))), label);
  gtk_info_bar_set_show_close_button(GTK_INFO_BAR(bar), TRUE);
  g_signal_connect(bar, "response", G_CALLBACK(on_response), NULL);
  g_object_set_data(G_OBJECT(bar), "t3d-label", label);
  if (name) gtk_widget_set_name(bar, name);
  gtk_widget_set_no_show_all(bar, TRUE);
  return bar;
}

void t3d_ui_infobar_show(GtkWidget *bar, GtkMessageType type, const char *text)
{
  GtkWidget *label = g_object_get_data(G_OBJECT(bar), "t3d-label");
  g_return_if_fail(label != NULL);
  gtk_info_bar_set_message_type(GTK_INFO_BAR(bar), type);
  gtk_label_set_text(GTK_LABEL(label), text ? text : "");
  gtk_widget_show(label);
  gtk_widget_show(bar);
}

const char *t3d_ui_infobar_text(GtkWidget *bar)
{
  GtkWidget *label = g_object_get_data(G_OBJECT(bar), "t3d-label");
  return label && gtk_widget_get_visible(bar) ? gtk_label_get_text(GTK_LABEL(label)) : "";
}

GtkWidget *t3d_ui_heading_new(const char *text)
{
  GtkWidget *l = gtk_label_new(NULL);
  char *m = g_markup_printf_escaped("<b>%s</b>", text);
  gtk_label_set_markup(GTK_LABEL(l), m);
  g_free(m);
  gtk_widget_set_halign(l, GTK_ALIGN_START);
  return l;
}
