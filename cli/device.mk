# --device for the commands that compute (cli/device_cli.c): backend choice with CPU fallback.
t3d_SOURCES += cli/device_cli.c
