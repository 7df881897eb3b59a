# Tokenizer tests, included from tests/CMakeLists.txt.
# test_tokenizer: hand-made vocabularies, IO round trips, malformed inputs, chat templates.
cc_add_test(test_tokenizer
  SOURCES unit/test_tokenizer.cpp unit/test_tokenizer_io.cpp
  LABELS unit)
# test_tokenizer_vectors: llama.cpp's vocab test vectors and the stories260K tokenizer from
# $CACHECLIP_SHARED (skips when absent).
cc_add_test(test_tokenizer_vectors
  SOURCES unit/test_tokenizer_vectors.cpp
  LABELS model)
