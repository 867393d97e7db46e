# Vision encoder, segmentation decoder, model load and analyze
