# The `t3d` command.
bin_PROGRAMS += t3d
t3d_SOURCES = cli/t3d.c cli/commands.h cli/cmd_devices.c
t3d_CFLAGS = $(AM_CFLAGS) $(JANSSON_CFLAGS)
t3d_LDADD = libt3d.la $(JANSSON_LIBS) $(LIBINTL) -lm
