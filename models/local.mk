# Model files the build makes or ships.
