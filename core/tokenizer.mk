# WordPiece tokenizer
