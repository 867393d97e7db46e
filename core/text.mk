# BERT text encoder, projections, zero-shot prompts, converters
